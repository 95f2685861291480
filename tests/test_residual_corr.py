"""ar() / cosy() residual structures in mf.lmer against nlme::lme (issue 23, part 3).

Reference: nlme 3.1-162 on Ovary (tests/data/r/residual_corr.R; corAR1 / corCompSymm with
form = ~ t | Mare, REML and ML), stored in tests/data/residual_corr_nlme.json. Tolerances:
logLik 1e-9 relative; estimates 1e-4 relative (nlme's optimiser tolerance is about 1e-7).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import DataError, FormulaError
from mixedformula.formula import parse
from mixedformula.linalg.residual_corr import ResidualCorrelation

HERE = os.path.dirname(__file__)
REF = json.load(open(os.path.join(HERE, "data", "residual_corr_nlme.json")))
FORMULAS = {
    "ar1": "follicles ~ s + c + (1 | Mare) + ar(time = t, gr = Mare)",
    "cs": "follicles ~ s + c + (0 + s | Mare) + cosy(time = t, gr = Mare)",
}


@pytest.fixture(scope="module")
def ovary():
    d = pd.read_csv(os.path.join(HERE, "data", "ovary.csv"))
    d["Mare"] = d["Mare"].astype(str)
    return d


@pytest.mark.parametrize("key", ["ar1_reml", "ar1_ml", "cs_reml", "cs_ml"])
def test_matches_nlme(ovary, key):
    ref = REF[key]
    kind, method = key.split("_")
    fit = mf.lmer(FORMULAS[kind], ovary, reml=method == "reml")
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-9)
    assert fit.n_params == ref["df"]
    assert fit.beta == pytest.approx(ref["beta"], rel=1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    assert fit.varcorr().sdcor[0] == pytest.approx(ref["sd_Mare"], rel=1e-4)
    cp = fit.corpars()
    assert cp.to_dict("records") == [
        {"grp": "Residual", "structure": "ar" if kind == "ar1" else "cosy",
         "parameter": "ar[1]" if kind == "ar1" else "cosy", "estimate": pytest.approx(
             ref["rho"], rel=1e-4)}]
    assert "Residual structure: " in fit.summary()


def test_whitening_is_exact():
    """Wᵀ W = R⁻¹ and log|R| against the dense matrices."""
    groups = np.array([0, 0, 1, 0, 1, 1, 1])
    time = np.array([3, 1, 2, 2, 1, 5, 4])
    for kind, rho in (("ar", 0.6), ("ar", -0.4), ("cosy", 0.3), ("cosy", -0.2)):
        rc = ResidualCorrelation(kind, groups, time)
        R = np.zeros((7, 7))
        for g in (0, 1):
            idx = np.nonzero(groups == g)[0]
            pos = np.argsort(np.argsort(time[idx]))
            lag = np.abs(np.subtract.outer(pos, pos))
            R[np.ix_(idx, idx)] = rho ** lag if kind == "ar" else \
                np.where(lag == 0, 1.0, rho)
        W = rc.whiten(np.eye(7), rho)
        assert W.T @ W == pytest.approx(np.linalg.inv(R), abs=1e-12)
        assert rc.logdet(rho) == pytest.approx(np.linalg.slogdet(R)[1], abs=1e-12)


def test_bad_input(ovary):
    with pytest.raises(DataError, match="must be integer"):
        mf.lmer("follicles ~ s + (1 | Mare) + ar(time = Time, gr = Mare)", ovary)
    dup = ovary.copy()
    dup.loc[1, "t"] = 1
    with pytest.raises(DataError, match="1 row\\(s\\) of .* repeat a time point within their "
                                        "group .*of group '1'"):
        mf.lmer(FORMULAS["ar1"], dup)
    with pytest.raises(NotImplementedError, match="order p = 1 only"):
        mf.lmer(FORMULAS["ar1"].replace("gr = Mare)", "gr = Mare, p = 2)"), ovary)
    with pytest.raises(FormulaError, match="orders p and q of at most one"):
        parse("y ~ x + ma(t, g, q = 2, cov = TRUE)")   # q = 1 is fitted (tests/test_arma_cov.py)
    with pytest.raises(FormulaError, match="only one residual structure"):
        parse("y ~ x + ar(t, g) + cosy(t, g)")
    # Bayesian: brms' ar() with one grouping factor holding the series -> the exact structured
    # marginal engine (design/structured_crossprod.py)
    assert mf.Model(FORMULAS["ar1"], ovary).likelihood == "marginal"
    fit = mf.lmer(FORMULAS["ar1"], ovary)
    with pytest.raises(NotImplementedError, match="ar\\(\\)/cosy\\(\\)"):
        fit.coef_table()
