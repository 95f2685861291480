"""confint (Wald, profile, bootstrap) and the parametric bootstrap of glmer fits (issue 20),
against lme4 1.1-31's ``confint(gm, method = "Wald" | "profile")`` on cbpp
(tests/data/freq_reference.json, made by tests/data/r/freq_reference.R)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "freq_reference.json").read_text())["cbpp_confint"]
FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _table(entry):
    cols = {k: [np.nan if v == "NA" else v for v in vals] for k, vals in entry["columns"].items()}
    return pd.DataFrame(cols, index=pd.Index(entry["rows"], dtype=object)).astype(float)


@pytest.fixture(scope="module")
def gm():
    d = pd.read_csv(DATA / "cbpp.csv", dtype={"herd": str, "period": str})
    return mf.glmer(FORMULA, d, family="binomial")


def test_wald_matches_lme4(gm):
    ours, ref = gm.confint(method="wald"), _table(REF["wald"])
    assert list(ours.index) == list(ref.index)          # .sig01, fixed effects; no .sigma
    assert list(ours.columns) == ["2.5 %", "97.5 %"]
    assert np.isnan(ours.loc[".sig01"]).all()
    # β̂ ± 1.96 SE: our SEs are lme4's to 2e-6 relative (lme4's own step-1e-4 Hessian), so the
    # limits agree to ~3e-6 absolute
    assert np.max(np.abs(ours.to_numpy()[1:] - ref.to_numpy()[1:])) < 5e-6


def test_profile_matches_lme4(gm):
    ours, ref = gm.confint(method="profile"), _table(REF["profile"])
    assert list(ours.index) == list(ref.index)
    assert np.max(np.abs(ours.to_numpy() - ref.to_numpy())) < 1e-3


def test_bootstrap_semantics(gm):
    """Replicate count, columns, reproducibility (replicate r depends only on (seed, r), not on
    nsim or the number of processes), and the bootstrap mean of β̂* near β̂.

    The mean check: |mean(β̂*_j) − β̂_j| < 3.5 sd(β̂*_j)/√nsim for the 4 coefficients; with
    mean(β̂*) ≈ normal around β̂ (ML bias here is a small fraction of an SE) each fails with
    probability 4.7e-4, so the family-wise false-failure rate is below 0.2 % (plus the error of
    sd estimated from 30 replicates: t₂₉ tail at 3.5 is 1.5e-3 per coefficient, < 1 % over 4)."""
    nsim = 30
    boot = gm.bootstrap(nsim=nsim, seed=2020, workers=2)
    assert len(boot) == nsim
    assert list(boot.columns) == (["objective"] + list(gm.fixef_names) + [".sig01"]
                                  + ["theta.herd.(Intercept)"])
    assert np.all(np.isfinite(boot.to_numpy()))
    assert np.all(boot[".sig01"] >= 0)
    first = gm.bootstrap(nsim=5, seed=2020, workers=1)
    pd.testing.assert_frame_equal(first, boot.iloc[:5].reset_index(drop=True))
    other = gm.bootstrap(nsim=5, seed=2021, workers=1)
    assert not np.allclose(other["(Intercept)"], first["(Intercept)"])
    b = boot[list(gm.fixef_names)]
    err = np.abs(b.mean() - gm.beta) / (b.std(ddof=1) / np.sqrt(nsim))
    assert np.all(err < 3.5), err
    # confint(method="boot") = percentiles of the same replicates
    ci = gm.confint(method="boot", nsim=5, seed=2020, workers=1)
    assert list(ci.index) == [".sig01"] + list(gm.fixef_names)
    np.testing.assert_allclose(ci["2.5 %"], first[list(ci.index)].quantile(0.025), rtol=1e-12)


def test_verbagg_se_is_the_hessian_of_lme4s_deviance():
    """How lme4 gets glmer SEs (tests/data/r/verbagg_hessian.R): vcov = the β block of 2 H⁻¹,
    H = deriv12(devfun, c(θ, β), delta = 1e-4) at its optimum — recomputed in R it reproduces
    vcov exactly. The same devfun's Richardson-extrapolated Hessian (numDeriv) at the same
    point gives SEs up to 3.8e-4 away from vcov's: step-1e-4 second differences amplify the
    ~1e-9 noise of PIRLS-computed deviances. Our SEs (central differences, step 1e-3 on β
    scaled by the columns' sd, deviances to ~1e-12) are the Richardson ones to 1e-5; lme4's
    vcov within 5e-4."""
    ref = json.loads((DATA / "verbagg_hessian.json").read_text())
    assert ref["se_vcov"] == ref["se_deriv12_again"]
    va = pd.read_csv(DATA / "glmer_verbagg.csv.gz", dtype={"id": str, "item": str})
    va["r2"] = (va["r2"] == "Y").astype(float)
    fit = mf.glmer("r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)", va,
                   family="bernoulli")
    se = fit.fixef()["Std. Error"].to_numpy()
    assert np.max(np.abs(se / ref["se_richardson"] - 1)) < 1e-5
    assert np.max(np.abs(se / ref["se_vcov"] - 1)) < 5e-4
    assert abs(fit.deviance - ref["deviance"]) < 1e-6 * ref["deviance"]
