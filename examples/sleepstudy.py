"""sleepstudy: reaction time by days of sleep deprivation, 18 subjects (lme4's classic).

    Reaction ~ Days + (Days | Subject)

Each subject gets its own intercept and slope; the two vary together (an LKJ-correlated
2 × 2 covariance G). Compare with brms:

    brm(Reaction ~ Days + (Days | Subject), data = sleepstudy)

Run:  python examples/sleepstudy.py
"""

import mixedformula as mf
from _settings import report_path, sampling

data = mf.datasets.load("sleepstudy")
fit = mf.fit("Reaction ~ Days + (Days | Subject)", data, **sampling())
fit.info["data_name"] = "sleepstudy"
print(fit.summary())

print("\nGroup-level covariance (lme4's VarCorr view, posterior means):")
print(fit.varcorr())

print("\nPer-subject coefficients (brms' coef(fit)$Subject), first rows:")
print(fit.coef()["Subject"].head())

print("\nREML point estimates for comparison (lme4's lmer):")
print(mf.lmer("Reaction ~ Days + (Days | Subject)", data))

path = report_path("sleepstudy")
if path:
    from mixedformula.report import write_report
    write_report(fit, path)
    print(f"\nreport: {path}")
