"""Scenario 3: conditional or marginal likelihood? The same model, written two ways.

    conditional:  y | u ~ N(Xβ + Zu, σ² I),   u ~ N(0, G)     (u sampled)
    marginal:     y     ~ N(Xβ, Z G Zᵀ + σ² I)                (u integrated out)

Integrating u out of the conditional form gives exactly the marginal form, so the posterior of
β, G and σ is the same; the marginal fit then draws u from p(u | y, β, G, σ), which is Gaussian,
so the group effects agree too. What differs is the *pointwise* likelihood: per observation in
the conditional form, per group in the marginal one; LOO on the two therefore answers different
questions (leave one observation out vs leave one group out). See docs/engines.md.

Run:  python examples/scenario3_conditional_vs_marginal.py
"""

import numpy as np
import pandas as pd

import mixedformula as mf
from _settings import report_path, sampling

formula = "Reaction ~ Days + (Days | Subject)"
data = mf.datasets.load("sleepstudy")

fits = {}
for likelihood in ("conditional", "marginal"):
    fits[likelihood] = mf.fit(formula, data, likelihood=likelihood, **sampling())
    print(fits[likelihood].summary())
    print()

print("Posterior means and sds, side by side (they agree within Monte-Carlo error):")
names = ["b_Intercept", "b_Days", "sd_Subject__Intercept", "sd_Subject__Days",
         "cor_Subject__Intercept__Days", "sigma"]
rows = []
for n in names:
    c = fits["conditional"].posterior[n].values.ravel()
    m = fits["marginal"].posterior[n].values.ravel()
    rows.append((n, c.mean(), c.std(), m.mean(), m.std()))
print(pd.DataFrame(rows, columns=["parameter", "conditional", "(sd)", "marginal", "(sd)"])
      .to_string(index=False, float_format=lambda x: f"{x:.3f}"))

rc = fits["conditional"].ranef()["Subject"]
rm = fits["marginal"].ranef()["Subject"]
diff = np.abs(rc.xs("Estimate", axis=1, level=1).to_numpy()
              - rm.xs("Estimate", axis=1, level=1).to_numpy()).max()
print(f"\nLargest difference between the group effects' posterior means: {diff:.2f} ms")

print("\nImplied marginal covariance of one subject's 10 observations, Var[y] = Z G Zᵀ + σ² I")
vc = fits["marginal"].varcorr()
G = vc["Subject"]["cov"].to_numpy()
sigma2 = float((fits["marginal"].posterior["sigma"].values ** 2).mean())
Zj = np.column_stack([np.ones(10), np.arange(10)])          # intercept and Days 0..9
V = Zj @ G @ Zj.T + sigma2 * np.eye(10)
print(pd.DataFrame(V[:4, :4], index=[f"day {d}" for d in range(4)],
                   columns=[f"day {d}" for d in range(4)]).round(0))

print("\nREML point estimates (lme4) from the same formula:")
print(mf.lmer(formula, data))

path = report_path("scenario3")
if path:
    from mixedformula.report import write_report
    write_report(fits["marginal"], path)
    print(f"report: {path}")
