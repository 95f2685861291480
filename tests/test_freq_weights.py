"""Prior weights in mf.lmer / mf.glmer against lme4 1.1-31 (tests/data/freq_reference.json,
made by tests/data/r/freq_reference.R with tightened optimiser tolerances).

lmer: Var(ε_i) = σ²/a_i and lme4's criteria with the −Σ log a_i term; glmer: a_i multiplies
row i's log-density, and a binomial proportion with weights = trials is cbind(successes,
failures)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import DataError

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "freq_reference.json").read_text())
FORMULA = "Reaction ~ Days + (Days | Subject)"


def _sleep():
    return pd.read_csv(DATA / "weights_sleepstudy.csv", dtype={"Subject": str})


def _rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300))


@pytest.mark.parametrize("reml", [True, False])
def test_lmer_weights_match_lme4(reml):
    ref = REF["lmer_w"]["reml" if reml else "ml"]
    fit = mf.lmer(FORMULA, _sleep(), reml=reml, weights="w")
    assert _rel(fit.beta, ref["beta"]) < 1e-6
    assert _rel(fit.fixef()["Std. Error"], ref["se"]) < 1e-6
    assert _rel(fit.sigma, ref["sigma"]) < 1e-6
    assert abs(fit.logLik - ref["logLik"]) < 1e-6 * abs(ref["logLik"])
    assert abs(fit.AIC - ref["AIC"]) < 1e-6 * abs(ref["AIC"])
    assert abs(fit.deviance - ref["deviance"]) < 1e-6 * abs(ref["deviance"])
    # lme4's θ is only as precise as its optimiser (the small off-diagonal entry)
    assert np.max(np.abs(fit.theta.to_numpy() - ref["theta"])) < 1e-5
    if reml:
        pearson = fit.residuals() * np.sqrt(fit.weights)
        assert np.max(np.abs(pearson - ref.get("pearson", REF["lmer_w"]["pearson"]))) < 1e-4


def test_lmer_weights_array_and_scalar_term():
    d = _sleep()
    ref = REF["lmer_w_int"]["reml"]
    fit = mf.lmer("Reaction ~ Days + (1 | Subject)", d, weights=d["w"].to_numpy())
    assert _rel(fit.beta, ref["beta"]) < 1e-6
    assert _rel(fit.fixef()["Std. Error"], ref["se"]) < 1e-6
    assert _rel(fit.sigma, ref["sigma"]) < 1e-6
    assert abs(fit.logLik - ref["logLik"]) < 1e-6 * abs(ref["logLik"])
    # weights 1 are the unweighted fit
    one = mf.lmer("Reaction ~ Days + (1 | Subject)", d, weights=np.ones(len(d)))
    plain = mf.lmer("Reaction ~ Days + (1 | Subject)", d)
    assert abs(one.logLik - plain.logLik) < 1e-9
    # the Satterthwaite df and the bootstrap read the weights (smoke: finite, reproducible)
    ct = fit.coef_table()
    assert np.all(np.isfinite(ct["df"]))
    b1 = fit.bootstrap(nsim=4, seed=3, workers=1)
    assert b1.equals(fit.bootstrap(nsim=4, seed=3, workers=1))


def test_lmer_weights_bad_input():
    d = _sleep()
    bad = d.copy()
    bad.loc[[1, 5], "w"] = -1.0
    with pytest.raises(DataError, match=r"column 'w'.* 2 negative"):
        mf.lmer(FORMULA, bad, weights="w")
    bad = d.copy()
    bad.loc[[4], "w"] = np.nan
    with pytest.raises(DataError, match=r"column 'w'.* 1 missing"):
        mf.lmer(FORMULA, bad, weights="w")
    # lme4's criterion is -Inf with zero weights (its fit fails: REF["lmer_w0"]): refused
    assert REF["lmer_w0"]["logLik"] == "-Inf"
    with pytest.raises(DataError, match="3 zero value"):
        mf.lmer(FORMULA, d, weights="w0")
    with pytest.raises(DataError, match="not a column"):
        mf.lmer(FORMULA, d, weights="nope")
    with pytest.raises(DataError, match="179 values for 180 rows"):
        mf.lmer(FORMULA, d, weights=np.ones(179))
    with pytest.raises(ValueError, match="prior weights"):
        mf.lmer(FORMULA, d, weights="w").coef_table("kenward-roger")


def _cbpp():
    d = pd.read_csv(DATA / "cbpp.csv", dtype={"herd": str, "period": str})
    d["prop"] = d["incidence"] / d["size"]
    return d


def test_glmer_binomial_proportion_with_weights_is_cbind():
    d = _cbpp()
    ref = REF["cbpp_prop"]
    assert REF["cbpp_cbind"]["logLik"] == ref["logLik"]      # lme4: the same model
    fp = mf.glmer("prop ~ period + (1 | herd)", d, family="binomial", weights="size")
    fc = mf.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", d,
                  family="binomial")
    assert abs(fp.logLik - fc.logLik) < 1e-9
    assert np.max(np.abs(fp.beta - fc.beta)) < 1e-7
    # the issue's glmer tolerance (lme4's own finite-difference Hessian limits the SEs)
    assert _rel(fp.beta, ref["beta"]) < 1e-4
    assert _rel(fp.fixef()["Std. Error"], ref["se"]) < 1e-4
    assert _rel(fp.theta, ref["theta"]) < 1e-4
    assert abs(fp.logLik - ref["logLik"]) < 1e-6 * abs(ref["logLik"])
    assert fp.nobs == ref["nobs"]
    bad = d.copy()
    bad.loc[0, "prop"] = 0.33
    with pytest.raises(DataError, match="1 row"):
        mf.glmer("prop ~ period + (1 | herd)", bad, family="binomial", weights="size")


def test_glmer_poisson_weights_match_lme4():
    d = pd.read_csv(DATA / "weights_grouse.csv", dtype={"YEAR": str, "BROOD": str})
    ref = REF["grouse_w"]
    fit = mf.glmer(ref["formula"], d, family="poisson", weights="w")
    assert _rel(fit.beta, ref["beta"]) < 1e-4
    assert _rel(fit.fixef()["Std. Error"], ref["se"]) < 1e-4
    assert _rel(fit.theta, ref["theta"]) < 1e-4
    assert abs(fit.logLik - ref["logLik"]) < 1e-6 * abs(ref["logLik"])
    assert abs(fit.AIC - ref["AIC"]) < 1e-6 * abs(ref["AIC"])
    # zero weights (lme4): the rows stay in nobs and df.resid and add nothing to the likelihood
    r0 = REF["grouse_w0"]
    f0 = mf.glmer(ref["formula"], d, family="poisson", weights="w0")
    assert _rel(f0.beta, r0["beta"]) < 1e-4
    assert _rel(f0.fixef()["Std. Error"], r0["se"]) < 1e-4
    assert abs(f0.logLik - r0["logLik"]) < 1e-6 * abs(r0["logLik"])
    assert f0.nobs == r0["nobs"] and f0.nobs - f0.n_params == r0["df_resid"]
    bad = d.copy()
    bad.loc[[0, 1, 2], "w"] = -0.5
    with pytest.raises(DataError, match=r"column 'w'.* 3 negative"):
        mf.glmer(ref["formula"], bad, family="poisson", weights="w")


def test_weights_from_the_design(monkeypatch):
    """brms' ``y | weights(w)`` lands as ``design.weights``: lmer reads it like weights=."""
    import mixedformula.reml as reml
    d = _sleep()
    real = reml.design_matrices

    def with_weights(*a, **k):
        des = real(*a, **k)
        des.weights = d["w"].to_numpy()
        return des

    monkeypatch.setattr(reml, "design_matrices", with_weights)
    fit = mf.lmer(FORMULA, d)
    assert abs(fit.logLik - REF["lmer_w"]["reml"]["logLik"]) < 1e-6 * 900
    with pytest.raises(DataError, match="given twice"):
        mf.lmer(FORMULA, d, weights="w")
