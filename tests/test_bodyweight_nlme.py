"""ar() / cosy() residuals in mf.lmer against nlme::lme on BodyWeight (issue 23).

Reference: nlme 3.1-162, ``lme(weight ~ Time * Diet, BodyWeight, random = ~ Time | Rat,
correlation = corAR1(form = ~ t | Rat))`` and ``corCompSymm`` (with ``~ 0 + Time | Rat``), REML
and ML (tests/data/r/bodyweight_nlme.R -> tests/data/bodyweight_nlme.json). BodyWeight's Time is
unequally spaced (…, 36, 43, 44, 50, …): brms' ``ar()`` counts rows in time order (a gap is one
step), which is nlme's corAR1 on the rank ``t`` of Time within Rat; ``ar(time = Time)`` and
``ar(time = t)`` are the same model. nlme's ``corAR1(form = ~ Time | Rat)`` (turned into
corARMA on day distances) and ``corCAR1`` are time-distance AR(1) models, a different
likelihood that ar() does not fit. Tolerances: logLik 1e-9 relative, estimates 1e-4 relative
(nlme's own convergence is about 1e-6).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

HERE = os.path.dirname(__file__)
REF = json.load(open(os.path.join(HERE, "data", "bodyweight_nlme.json")))
FORMULAS = {
    "ar1": "weight ~ Time * Diet + (Time | Rat) + ar(time = t, gr = Rat)",
    "cs": "weight ~ Time * Diet + (0 + Time | Rat) + cosy(time = t, gr = Rat)",
}


@pytest.fixture(scope="module")
def bodyweight():
    return pd.read_csv(os.path.join(HERE, "data", "bodyweight.csv"),
                       dtype={"Rat": str, "Diet": str})


@pytest.mark.parametrize("key", ["ar1_reml", "ar1_ml", "cs_reml", "cs_ml"])
def test_matches_nlme(bodyweight, key):
    ref = REF[key]
    kind, method = key.split("_")
    fit = mf.lmer(FORMULAS[kind], bodyweight, reml=method == "reml")
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-9)
    assert fit.n_params == ref["df"]
    assert list(fit.fixef().index) == ["(Intercept)", "Time", "Diet2", "Diet3", "Time:Diet2",
                                       "Time:Diet3"] == ref["beta_names"]
    assert fit.beta == pytest.approx(ref["beta"], rel=1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    sd = np.atleast_1d(ref["sd_Rat"])
    vc = fit.varcorr()
    assert list(vc.sdcor[:len(sd)]) == pytest.approx(list(sd), rel=1e-4)
    if kind == "ar1":
        assert vc.sdcor[2] == pytest.approx(ref["cor_Rat"], rel=1e-4)
    (rho,) = fit.corpars().estimate
    assert rho == pytest.approx(ref["rho"], rel=1e-4)


def test_gaps_count_as_one_step(bodyweight):
    """ar(time = Time) orders by Time and ignores the gaps: the same fit as on the rank t, and
    not nlme's time-distance AR(1) (corAR1 on ~ Time | Rat, corCAR1)."""
    fit = mf.lmer(FORMULAS["ar1"].replace("time = t", "time = Time"), bodyweight)
    assert fit.logLik == pytest.approx(REF["ar1_reml"]["logLik"], rel=1e-9)
    for other in ("ar1_time_distance_reml", "car1_reml"):
        assert abs(fit.logLik - REF[other]["logLik"]) > 0.2
        assert abs(fit.corpars().estimate[0] - REF[other]["rho"]) > 0.2
