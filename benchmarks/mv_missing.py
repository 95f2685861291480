"""Cost of per-response missing values in a multivariate model (issue #5), by hand.

Per-gradient time of the conditional-engine log-density (pytensor C backend, logp + gradient)
for ``bf(y1 ~ x + (1|p|g)) + bf(y2 ~ z + (1|p|g))`` with rescor on n rows, complete and with y2
missing in 20% of the rows (rows grouped by observed pattern: one MvNormal block, one Normal
block), against ``mvbind(y1, y2) ~ x + z + (1|p|g)`` on complete data.

    python benchmarks/mv_missing.py [n]
"""

import sys
import time
import warnings

import numpy as np
import pandas as pd

import mixedformula as mf

n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
rng = np.random.default_rng(1)
df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                   "g": np.repeat(np.arange(n // 20), 20).astype(str)})
truth = {"b_y1_Intercept": 1.0, "b_y1_x": 0.5, "b_y2_Intercept": -1.0, "b_y2_z": 0.8,
         "sd_g__y1_Intercept": 1.0, "sd_g__y2_Intercept": 0.6,
         "cor_g__y1_Intercept__y2_Intercept": 0.5, "sigma_y1": 0.5, "sigma_y2": 0.8,
         "rescor__y1__y2": 0.4}
BF = "bf(y1 ~ x + (1 | p | g)) + bf(y2 ~ z + (1 | p | g))"
df = mf.simulate(BF, df, truth, seed=2)
missing = df.copy()
missing.loc[rng.choice(n, n // 5, replace=False), "y2"] = np.nan


def per_gradient(formula, data, reps=300):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mf.Model(formula, data, likelihood="conditional").pymc_model
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
    fn(x)
    t0 = time.perf_counter()
    for _ in range(reps):
        fn(x)
    return (time.perf_counter() - t0) / reps * 1e3


for label, formula, data in [("mvbind, complete", "mvbind(y1, y2) ~ x + z + (1 | p | g)", df),
                             ("bf + bf, complete", BF, df),
                             ("bf + bf, 20% y2 missing", BF, missing)]:
    print(f"{label:28s} n={n}: {per_gradient(formula, data):.3f} ms per logp+gradient")
