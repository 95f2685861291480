"""A formula per response (brms' bf() + bf()), with one response missing in some rows.

y1 depends on x, y2 on z; both share correlated group intercepts (ID ``p``) and a residual
correlation. y2 is missing in 20% of the rows and z in 3 more: those rows still inform y1, and
with the residual correlation a row that has only y1 contributes N(y1; μ1, σ1²), the marginal of
the bivariate normal. The summary header says how many rows each response used.

brms:  brm(bf(y1 ~ x + (1 | p | g)) + bf(y2 | mi() ~ z + (1 | p | g)) + set_rescor(TRUE), ...)

Run:  python examples/multivariate_bf_missing.py
"""

import warnings

import numpy as np
import pandas as pd

import mixedformula as mf
from _settings import report_path, sampling

formula = mf.bf("y1 ~ x + (1 | p | g)") + mf.bf("y2 ~ z + (1 | p | g)")
truth = {"b_y1_Intercept": 1.0, "b_y1_x": 0.5, "b_y2_Intercept": -1.0, "b_y2_z": 0.8,
         "sd_g__y1_Intercept": 1.0, "sd_g__y2_Intercept": 0.6,
         "cor_g__y1_Intercept__y2_Intercept": 0.5,
         "sigma_y1": 0.5, "sigma_y2": 0.8, "rescor__y1__y2": 0.4}

rng = np.random.default_rng(3)
predictors = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300),
                           "g": np.repeat([f"g{j:02d}" for j in range(20)], 15)})
data = mf.simulate(formula, predictors, truth, seed=12)
missing = rng.choice(300, 60, replace=False)
data.loc[missing, "y2"] = np.nan
data.loc[np.setdiff1d(np.arange(300), missing)[:3], "z"] = np.nan

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", UserWarning)
    fit = mf.fit(formula, data, **sampling())
for w in caught:
    if "rows not used" in str(w.message):
        print("warning:", w.message)
print(fit.summary())

post = fit.idata.posterior
print("\nTruth against the 90% intervals:")
for name, value in truth.items():
    lo, hi = np.quantile(post[name].values, [0.05, 0.95])
    print(f"  {name:36s} truth {value:5.2f}   90% [{lo:5.2f}, {hi:5.2f}]"
          f"{'' if lo < value < hi else '  (outside)'}")

path = report_path("multivariate_bf_missing")
if path:
    from mixedformula.report import write_report
    write_report(fit, path)
    print(f"report: {path}")
