"""Category-specific effects ``cs(x)`` of the ordinal families (brms 2.18 semantics).

References, none from our own code:

* the log-density of a model with cs() against brms' generated Stan functions transcribed with
  mpmath (tests/test_ordinal.py's ``brms_lpmf``), the thresholds of row n being brms'
  ``Intercept - transpose(mucs[n])`` with ``mucs = Xcs * bcs``, |η| up to 30, to 1e-9;
* brms 2.18's fit of ``rating ~ period + cs(treat) + (1 | subject)`` (sratio, inhaler;
  tests/data/brms_ordinal.json ``inhaler_sratio_cs``, script tests/data/r/brms_ordinal.R):
  posterior means within 0.2 posterior sd;
* brms' ``get_prior()`` rows for the same formula (tests/data/brms_ordinal_cs_prior.json,
  script tests/data/r/brms_ordinal_cs_prior.R), and brms' warning for cumulative + cs();
* category probabilities written out by hand from the posterior draws.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import mixedformula as mf
from mixedformula.errors import MixedFormulaError
from test_ordinal import brms_lpmf

DATA = Path(__file__).parent / "data"
SEQUENTIAL = ("sratio", "cratio", "acat")


def _cs_data(n=24, seed=3):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"y": np.arange(n) % 4 + 1.0, "x": rng.normal(size=n),
                         "z": np.linspace(-3.0, 3.0, n)})


@pytest.mark.parametrize("name", SEQUENTIAL)
@pytest.mark.parametrize("link", ["logit", "cloglog"])
def test_cs_log_density_matches_brms_stan_functions(name, link):
    """The observed log-likelihood of ``y ~ x + cs(z)`` at a point where the per-row
    thresholds Intercept[k] − z bcs_z[k] reach ±30, against brms' lpmf row by row; finite
    gradient there."""
    import pytensor
    import pytensor.tensor as pt
    df = _cs_data()
    model = mf.Model("y ~ x + cs(z)", df, family=name, link=link)
    m = model.pymc_model
    tau, bcs, b = np.array([-2.0, 0.5, 3.0]), np.array([9.0, -4.0, 9.0]), 1.5
    point = {"Intercept": tau, "bcs__z": bcs, "b": np.array([b])}
    y_rv = m.observed_RVs[0]
    lp = m.logp(vars=[y_rv], sum=False)[0]
    values = [m.rvs_to_values[m[k]] for k in point]
    f = pytensor.function(values, [lp] + pt.grad(lp.sum(), values), mode="FAST_COMPILE")
    out, *grads = f(*point.values())
    x, z = df["x"].to_numpy(), df["z"].to_numpy()
    eta = b * (x - x.mean())                          # brms centres X, not Xcs
    ref = []
    for i in range(len(df)):
        thres = tau - z[i] * bcs                      # Intercept - transpose(mucs[n])
        ref.append(float(brms_lpmf(name, link, int(df["y"][i]), eta[i], list(thres))))
    assert max(abs(tau - z[i] * bcs).max() for i in range(len(df))) >= 29
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_cumulative_with_cs_warns_as_brms_and_crossing_thresholds_have_no_probability():
    ref = json.loads((DATA / "brms_ordinal_cs_prior.json").read_text())
    assert "experimental" in ref["cumulative_warning"]
    df = _cs_data()
    with pytest.warns(UserWarning, match="experimental and may have convergence issues"):
        m = mf.Model("y ~ x + cs(z)", df, family="cumulative")
    assert m.design.cs_names == ["z"]
    fam = m.family
    # row thresholds (-1, 2, 1): the 2nd and 3rd cross, so P(y = 3) would be F(1) − F(2) < 0
    lp = fam.log_probs(np.array([0.0, 0.0]), {"thres": np.array([[[-1.0, 2.0, 1.0],
                                                                   [-1.0, 1.0, 2.0]]])})
    assert lp[0, 0, 2] == -np.inf and np.isfinite(lp[0, 1]).all()
    np.testing.assert_allclose(np.exp(lp[0, 1]).sum(), 1.0)


def test_cs_takes_one_variable_in_ordinal_models():
    """cs(z, df = 3) would be formulaic's spline: refused in an ordinal model, where cs()
    means a category-specific effect; a factor in cs() keeps its treatment contrasts (brms'
    Xcs without the intercept column)."""
    df = _cs_data()
    with pytest.raises(MixedFormulaError, match="takes one variable, cs\\(x\\)"):
        mf.Model("y ~ x + cs(z, df = 3)", df, family="sratio")
    df["f"] = np.array(["a", "b", "c"])[np.arange(len(df)) % 3]
    m = mf.Model("y ~ x + cs(f)", df, family="acat")
    assert m.design.cs_names == ["fb", "fc"]


def _inhaler():
    return pd.read_csv(DATA / "inhaler.csv")


@pytest.fixture(scope="module")
def sratio_cs_fit():
    return mf.fit("rating ~ period + cs(treat) + (1 | subject)", _inhaler(), family="sratio",
                  draws=1500, tune=1000, chains=2, seed=11, progressbar=False)


def test_sratio_cs_matches_brms(sratio_cs_fit):
    """Posterior means within 0.2 brms posterior sd. Monte-Carlo error of the difference:
    brms 4000 draws, ours 3000 with bulk ESS ≥ ~500 (sd of the group term the lowest):
    ≈ 0.055 sd, so 0.2 sd is ≥ 3.6 standard errors (two-sided 3e-4 per parameter, < 1 %
    over the 8 compared)."""
    ref = json.loads((DATA / "brms_ordinal.json").read_text())["inhaler_sratio_cs"]
    post = sratio_cs_fit.idata.posterior
    names = [k for k in ref["mean"] if k != "disc"]
    assert set(names) <= set(post.data_vars)
    for k in names:
        assert abs(float(post[k].mean()) - ref["mean"][k]) < 0.2 * ref["sd"][k], k
    fe = sratio_cs_fit.fixef()
    assert list(fe.index) == ["Intercept[1]", "Intercept[2]", "Intercept[3]", "period",
                              "treat[1]", "treat[2]", "treat[3]"]
    text = str(sratio_cs_fit.summary())
    assert "treat[2]" in text and "b_treat" not in text


def test_sratio_cs_predictions_equal_hand_computation(sratio_cs_fit, tmp_path):
    """epred without group effects: P(y = k) = F(a_k) ∏_{j<k} (1 − F(a_j)), a_k = τ_k −
    treat·bcs_treat[k] − period·b_period (brms' sratio with cs), per draw."""
    df = _inhaler().iloc[[0, 100, 400]]
    ep = sratio_cs_fit.predict(df, kind="epred", re_formula="~0")
    post = sratio_cs_fit.idata.posterior

    def d(name):
        return post[name].values.reshape(-1)
    tau = np.stack([d(f"b_Intercept[{k}]") for k in (1, 2, 3)], -1)
    bcs = np.stack([d(f"bcs_treat[{k}]") for k in (1, 2, 3)], -1)
    eta = d("b_period")[:, None] * df["period"].to_numpy()[None, :]
    a = tau[:, None, :] - df["treat"].to_numpy()[None, :, None] * bcs[:, None, :] \
        - eta[..., None]
    F = expit(a)
    stay = np.cumprod(1 - F, axis=-1)
    hand = np.concatenate([F[..., :1], F[..., 1:] * stay[..., :-1], stay[..., -1:]], -1)
    np.testing.assert_allclose(ep, hand, rtol=1e-9, atol=1e-12)
    assert np.isfinite(sratio_cs_fit.loo().elpd)
    path = tmp_path / "cs.nc"                 # load rebuilds the design with cs() read as brms
    mf.save(sratio_cs_fit, path)
    back = mf.load(path)
    assert back.design.cs_names == ["treat"]
    np.testing.assert_allclose(back.predict(df, kind="epred", re_formula="~0"), ep)


@pytest.mark.parametrize("name", SEQUENTIAL)
def test_cs_prior_summary_rows_match_brms_get_prior(name):
    ref = pd.DataFrame(json.loads((DATA / "brms_ordinal_cs_prior.json").read_text())[name])
    m = mf.Model("rating ~ period + cs(treat) + (1 | subject)", _inhaler(), family=name,
                 priors=[mf.prior("normal(0, 2)", class_="b", coef="treat"),
                         mf.prior("student_t(3, 0, 5)", class_="Intercept", coef="2")])
    m.pymc_model
    ps = m.prior_summary()
    ours = {(r["class"], r["coef"]) for _, r in ps.iterrows()
            if r["class"] in ("b", "Intercept") and (r["coef"] or r["class"] == "Intercept")}
    theirs = {(r["class"], r["coef"]) for _, r in ref.iterrows()
              if r["class"] in ("b", "Intercept") and (r["coef"] or r["class"] == "Intercept")}
    assert ours == theirs == {("b", "period"), ("b", "treat"), ("Intercept", ""),
                              ("Intercept", "1"), ("Intercept", "2"), ("Intercept", "3")}
    brms_int = ref[(ref["class"] == "Intercept") & (ref["coef"] == "")]["prior"].iloc[0]

    def row(cls, coef):
        return ps[(ps["class"] == cls) & (ps["coef"] == coef)].iloc[0]
    assert row("Intercept", "").prior == row("Intercept", "1").prior == brms_int
    assert row("Intercept", "2").prior == "student_t(3, 0, 5)" and \
        row("Intercept", "2").source == "user"
    assert row("b", "treat").prior == "normal(0, 2)" and row("b", "period").prior == "(flat)"
    # the coefficient prior reaches every threshold's bcs_treat[k]: normal(0, 2) log-density
    import pymc as pm
    from scipy.stats import norm
    pm_model = m.pymc_model
    v = np.array([0.3, -1.2, 2.0])
    lp = pm.logp(pm_model["bcs__treat"], v).eval()
    np.testing.assert_allclose(lp, norm(0, 2).logpdf(v), rtol=1e-12)
