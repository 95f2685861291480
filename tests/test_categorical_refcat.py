"""A fitted categorical model with brms' ``refcat`` and a per-category formula:
``bf(y ~ x, muA ~ z + (1 | g))`` with ``family = categorical(refcat = "C")`` (issue 19).

With ``refcat = "C"`` the predicted categories are A and B (brms' ``muA``, ``muB``; η_C = 0);
``y ~ x`` is copied to ``muB`` and ``muA`` has its own formula. One small fit (module
fixture, 2 × 150 draws) serves every check; the checks are exact identities of the draws
(softmax by hand, rows summing to 1, save/load, the CLI's re-fit with the same seed), not
statistical bounds, so they cannot fail by chance.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

import mixedformula as mf
from mixedformula.errors import FamilyError

DATA = Path(__file__).parent / "data"
FORMULA = "bf(y ~ x, muA ~ z + (1 | g))"
FAMILY = "categorical(refcat = 'C')"
SMALL = dict(chains=2, draws=150, tune=150, seed=5)


def _data():
    d = pd.read_csv(DATA / "categorical_sim.csv")
    # a second covariate for muA: a fixed function of the row, nothing random
    d["z"] = np.cos(np.arange(len(d)) * 0.7)
    return d


@pytest.fixture(scope="module")
def fitted():
    d = _data()
    return mf.fit(FORMULA, d, family=FAMILY, progressbar=False, **SMALL), d


def test_names_follow_brms(fitted):
    fit, _ = fitted
    assert fit.family.categories == ("A", "B", "C") and fit.family.refcat == "C"
    post = set(fit.idata.posterior.data_vars)
    assert {"b_muA_Intercept", "b_muA_z", "b_muB_Intercept", "b_muB_x",
            "sd_g__muA_Intercept"} <= post
    assert not any("muC" in n for n in post)              # the reference has no predictor
    assert not any(n.startswith("sd_g__muB") for n in post)  # muB has no group term
    assert list(fit.fixef().index) == ["muA_Intercept", "muA_z", "muB_Intercept", "muB_x"]
    text = str(fit.summary())
    assert "Links: muA = logit; muB = logit" in text
    for name in ("muA_z", "muB_x", "sd(muA_Intercept)"):
        assert name in text, name
    ps = fit.prior_summary().fillna("")
    assert set(ps.loc[ps["class"] == "b", "dpar"]) == {"muA", "muB"}
    with pytest.raises(FamilyError, match="no parameter 'muC'"):
        mf.Model("bf(y ~ x, muC ~ z)", _data(), family=FAMILY)


def test_epred_order_and_rows_sum_to_one(fitted):
    """epred[..., k] is P(y = categories[k]) in the order A, B, C with the reference C at
    η = 0: equal to softmax(μA, μB, 0) computed by hand from the draws (population level,
    and with the group effect of the row's group)."""
    fit, d = fitted
    new = d.iloc[[0, 7, 123, 456]]
    post = fit.idata.posterior
    flat = {k: post[k].values.reshape(-1) for k in
            ("b_muA_Intercept", "b_muA_z", "b_muB_Intercept", "b_muB_x")}
    S = flat["b_muA_z"].size
    z, x = new["z"].to_numpy(), new["x"].to_numpy()
    eta_a = flat["b_muA_Intercept"][:, None] + flat["b_muA_z"][:, None] * z
    eta_b = flat["b_muB_Intercept"][:, None] + flat["b_muB_x"][:, None] * x
    ep0 = fit.predict(new, kind="epred", re_formula="~0")
    assert ep0.shape == (S, 4, 3)
    np.testing.assert_allclose(ep0.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ep0, softmax(np.stack([eta_a, eta_b, 0 * eta_a], -1), -1),
                               rtol=1e-10)
    r = post["r_g"].sel(g__coef="muA_Intercept")         # (chain, draw, level)
    levels = [str(v) for v in r.coords["g"].values]
    u = r.values.reshape(S, len(levels))[:, [levels.index(g) for g in new["g"]]]
    ep = fit.predict(new, kind="epred")
    np.testing.assert_allclose(ep.sum(-1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(ep, softmax(np.stack([eta_a + u, eta_b, 0 * eta_a], -1), -1),
                               rtol=1e-10)
    table = fit.predict(new, kind="epred", summary=True)
    assert list(table.columns.get_level_values(0).unique()) == ["P(Y = A)", "P(Y = B)",
                                                              "P(Y = C)"]
    yrep = fit.predict(new, kind="response", seed=1)
    assert yrep.shape == (S, 4) and set(np.unique(yrep)) <= {1.0, 2.0, 3.0}


def test_loo_and_save_load_round_trip(fitted, tmp_path):
    fit, d = fitted
    loo = fit.loo()
    assert np.isfinite(loo.elpd) and loo.unit == "observation" and loo.n_units == len(d)
    # 3 categories: a model no better than chance has elpd = 600 log(1/3) ≈ -659
    assert len(d) * np.log(1 / 3) < loo.elpd < 0 and 0 < loo.p_loo < 60
    path = tmp_path / "refcat.nc"
    mf.save(fit, path)
    back = mf.load(path)
    assert back.family == fit.family and back.family.refcat == "C"
    assert str(back.summary()) == str(fit.summary())
    new = d.iloc[:3]
    np.testing.assert_allclose(back.predict(new, kind="epred"), fit.predict(new, kind="epred"),
                               rtol=1e-12)


def test_cli_fits_the_same_model(fitted, tmp_path, capsys):
    """``mixedformula fit data.csv FORMULA --family "categorical(refcat = 'C')"`` prints the
    same brms summary as the Python fit with the same seed and draws (one compiled model:
    the structure is the fixture's)."""
    from mixedformula.cli import main
    fit, d = fitted
    csv = tmp_path / "cat.csv"
    d.to_csv(csv, index=False)
    nc = tmp_path / "cli.nc"
    rc = main(["fit", str(csv), FORMULA, "--family", FAMILY, "--chains", "2", "--draws",
               "150", "--tune", "150", "--seed", "5", "--save", str(nc)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Family: categorical" in out and "Links: muA = logit; muB = logit" in out
    block = str(fit.summary()).split("Regression Coefficients:")[1]
    assert block.strip() in out
    back = mf.load(nc)
    assert back.family.refcat == "C"
    np.testing.assert_allclose(back.fixef()["Estimate"], fit.fixef()["Estimate"])
