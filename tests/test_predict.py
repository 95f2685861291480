"""Predictions (fit.predict), posterior/prior predictive, pp_check, conditional_effects.

Exact checks (1e-9) compare predictions with the arithmetic b_Intercept + b_Days·Days +
r_Subject[level] done by hand on the same posterior draws; distributional checks (new groups,
response draws) use tolerances of a few Monte-Carlo standard errors.
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import mixedformula as mf  # noqa: E402

FORMULA = "Reaction ~ Days + (Days | Subject)"
NEW_SUBJECT = "372"


@pytest.fixture(scope="module")
def split(sleepstudy):
    """Training rows: Days 0-7 of 17 subjects; held out: Days 8-9 and all of subject 372."""
    df = sleepstudy
    held = (df["Days"] >= 8) | (df["Subject"] == NEW_SUBJECT)
    return df[~held].reset_index(drop=True), df[held].reset_index(drop=True)


@pytest.fixture(scope="module")
def cond(split):
    train, _ = split
    return mf.fit(FORMULA, train, likelihood="conditional", draws=300, tune=400, chains=2,
                  seed=11)


def _draws(fit, name):
    v = fit.idata.posterior[name].values
    return v.reshape((-1,) + v.shape[2:])


def _by_hand(fit, df, with_groups=True, coefs=(0, 1)):
    b0, b1 = _draws(fit, "b_Intercept"), _draws(fit, "b_Days")
    out = b0[:, None] + b1[:, None] * df["Days"].to_numpy()[None]
    if with_groups:
        r = fit.idata.posterior["r_Subject"]
        levels = [str(x) for x in r.coords["Subject"].values]
        R = _draws(fit, "r_Subject")
        j = np.array([levels.index(s) for s in df["Subject"]])
        days = df["Days"].to_numpy()[None]
        if 0 in coefs:
            out = out + R[:, j, 0]
        if 1 in coefs:
            out = out + R[:, j, 1] * days
    return out


def test_heldout_rows_equal_fixef_plus_ranef(cond, split):
    _, test = split
    seen = test[test["Subject"] != NEW_SUBJECT]
    pred = cond.predict(seen, kind="linpred")
    assert pred.shape == (600, len(seen))
    np.testing.assert_allclose(pred, _by_hand(cond, seen), rtol=0, atol=1e-9)
    # Gaussian identity link: epred = linpred
    np.testing.assert_allclose(cond.predict(seen), pred, rtol=0, atol=1e-12)
    # fitted rows by default
    assert cond.predict(kind="linpred").shape == (600, cond.nobs)


def test_re_formula_population_and_subset(cond, split):
    _, test = split
    seen = test[test["Subject"] != NEW_SUBJECT]
    pop = cond.predict(seen, kind="linpred", re_formula="~0")
    np.testing.assert_allclose(pop, _by_hand(cond, seen, with_groups=False), atol=1e-9)
    np.testing.assert_allclose(cond.predict(seen, kind="linpred", re_formula="NA"), pop)
    icpt = cond.predict(seen, kind="linpred", re_formula="~ (1 | Subject)")
    np.testing.assert_allclose(icpt, _by_hand(cond, seen, coefs=(0,)), atol=1e-9)
    # population-level predictions do not need the grouping column
    np.testing.assert_allclose(cond.predict(seen[["Days"]], kind="linpred", re_formula="~0"),
                               pop, atol=1e-12)
    with pytest.raises(mf.MixedFormulaError, match="Item"):
        cond.predict(seen, re_formula="~ (1 | Item)")


def test_new_group_variance_includes_G(cond):
    """60 unseen subjects at Days = 5: Var over draws and subjects of η equals
    Var(b_Intercept + 5 b_Days) + E[sd0² + 2·5·ρ sd0 sd1 + 25 sd1²] (law of total variance)."""
    d = 5.0
    new = pd.DataFrame({"Days": d, "Subject": [f"new{k}" for k in range(60)]})
    eta = cond.predict(new, kind="linpred", seed=1)
    b = _draws(cond, "b_Intercept") + d * _draws(cond, "b_Days")
    sd0, sd1 = _draws(cond, "sd_Subject__Intercept"), _draws(cond, "sd_Subject__Days")
    rho = _draws(cond, "cor_Subject__Intercept__Days")
    g = sd0 ** 2 + 2 * d * rho * sd0 * sd1 + d ** 2 * sd1 ** 2
    expected = b.var() + g.mean()
    assert eta.var() == pytest.approx(expected, rel=0.06)
    assert expected > 5 * b.var()          # G dominates: a new subject is far less certain
    # per draw, the new-subject effects have mean 0 and variance G(d) (pooled z-scores)
    z = (eta - b[:, None]) / np.sqrt(g)[:, None]
    assert abs(z.mean()) < 4 / np.sqrt(z.size) * 3
    assert z.var() == pytest.approx(1.0, abs=0.03)
    # the same new subject on two days shares its draw of u: correlation follows G
    two = pd.DataFrame({"Days": [0.0, 9.0] * 40,
                        "Subject": np.repeat([f"n{k}" for k in range(40)], 2)})
    e2 = cond.predict(two, kind="linpred", re_formula="~ (1 | Subject)", seed=2)
    pop = cond.predict(two, kind="linpred", re_formula="~0")
    u = e2 - pop
    np.testing.assert_allclose(u[:, 0::2], u[:, 1::2], atol=1e-9)   # intercept only: same u


def test_new_groups_error_zero_and_missing(cond, split):
    _, test = split
    new = test[test["Subject"] == NEW_SUBJECT]
    with pytest.raises(mf.DataError, match="'372'"):
        cond.predict(new, new_groups="error")
    zero = cond.predict(new, kind="linpred", new_groups="zero")
    pop = cond.predict(new, kind="linpred", re_formula="~0")
    np.testing.assert_allclose(zero, pop, atol=1e-12)
    missing = new.assign(Subject=None)
    np.testing.assert_allclose(cond.predict(missing, kind="linpred"), pop, atol=1e-12)
    # re_formula="~0" ignores new levels even with new_groups="error"
    cond.predict(new, re_formula="~0", new_groups="error")


def test_summary_table_and_ndraws(cond, split):
    _, test = split
    draws = cond.predict(test, kind="epred", seed=3)
    tab = cond.predict(test, kind="epred", summary=True, seed=3)
    assert list(tab.columns) == ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
    assert len(tab) == len(test)
    np.testing.assert_allclose(tab["Estimate"], draws.mean(axis=0))
    np.testing.assert_allclose(tab["Q97.5"], np.quantile(draws, 0.975, axis=0))
    assert cond.predict(test, ndraws=100, seed=1).shape == (100, len(test))


def test_response_draws_add_residual_variance(cond, split):
    _, test = split
    seen = test[test["Subject"] != NEW_SUBJECT]
    mu = cond.predict(seen, kind="epred")
    y = cond.predict(seen, kind="response", seed=4)
    sigma = _draws(cond, "sigma")
    resid = (y - mu) / sigma[:, None]                   # standard normal draws
    assert abs(resid.mean()) < 4 / np.sqrt(resid.size)
    assert resid.var() == pytest.approx(1.0, abs=0.05)


def test_marginal_engine_same_api(sleep_marginal, split):
    """The marginal engine's r_Subject are exact draws of u | y: same arithmetic."""
    _, test = split
    seen = test[test["Subject"] != NEW_SUBJECT]
    pred = sleep_marginal.predict(seen, kind="linpred")
    np.testing.assert_allclose(pred, _by_hand(sleep_marginal, seen), atol=1e-9)
    tab = sleep_marginal.predict(pd.DataFrame({"Days": [3.0], "Subject": ["new"]}),
                                 summary=True, seed=1)
    assert tab["Est.Error"].iloc[0] > 20          # sd(Intercept) ≈ 25 ms enters


def test_posterior_predictive_and_pp_check(cond):
    idata = cond.posterior_predictive(seed=5)
    pp = idata.posterior_predictive["Reaction"]
    assert pp.shape == (2, 300, cond.nobs)
    obs = idata.observed_data["Reaction"].values
    np.testing.assert_allclose(obs, cond.design.y[:, 0])
    # replicated data have the spread of the data (sd ratio within 15%)
    assert float(pp.std(dim="obs").mean()) / obs.std() == pytest.approx(1.0, abs=0.15)
    ax = cond.pp_check(ndraws=20, seed=1)
    assert hasattr(np.ravel(ax)[0], "get_lines") and len(np.ravel(ax)[0].get_lines()) >= 21


def test_conditional_effects(cond):
    fig, df = cond.conditional_effects("Days", resolution=25)
    assert len(df) == 25
    b0, b1 = _draws(cond, "b_Intercept"), _draws(cond, "b_Days")
    x = df["Days"].to_numpy()
    mu = b0[:, None] + b1[:, None] * x[None]
    np.testing.assert_allclose(df["Estimate"], mu.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(df["lower"], np.quantile(mu, 0.025, axis=0), atol=1e-9)
    assert fig.axes and fig.axes[0].get_xlabel() == "Days"
    fig2, dfg = cond.conditional_effects("Days", groups=True, resolution=10)
    assert len(dfg) == 17 * 10 and dfg["Subject"].nunique() == 17
    one = dfg[dfg["Subject"] == "308"]
    byhand = _by_hand(cond, pd.DataFrame({"Days": one["Days"].to_numpy(), "Subject": "308"}))
    np.testing.assert_allclose(one["Estimate"], byhand.mean(axis=0), atol=1e-9)


# --------------------------------------------------------------------------- prior draws
# Forward draws from the prior (sample_prior="only": exact, no MCMC) give a Fit whose
# predictions can be checked against arithmetic without sampling a posterior.

PRIORS = [mf.prior("normal(0, 1)", class_="b"), mf.prior("normal(0, 1)", class_="Intercept"),
          mf.prior("exponential(2)", class_="sd"), mf.prior("exponential(1)", class_="sigma")]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(5)
    n = 80
    return pd.DataFrame({"x": rng.normal(size=n), "f": rng.choice(["a", "b", "c"], n),
                         "g": np.repeat([f"g{j}" for j in range(8)], 10),
                         "y1": rng.normal(size=n), "y2": rng.normal(size=n)})


def test_sample_prior_only_and_unseen_fixed_level(small):
    fit = mf.fit("y1 ~ x + f + (1 | g)", small, priors=PRIORS, sample_prior="only", draws=250,
                 chains=2, seed=1)
    assert fit.idata.posterior["b_x"].shape == (2, 250)
    sd = fit.idata.posterior["b_x"].values.std()
    assert sd == pytest.approx(1.0, abs=0.1)         # the normal(0, 1) prior, ~500 draws
    assert "sample_prior='only'" in str(fit.summary())
    new = pd.DataFrame({"x": [0.0, 1.0], "f": ["a", "d"], "g": ["g0", "g1"]})
    with pytest.raises(mf.DataError, match="'d'"):
        fit.predict(new)
    ok = fit.predict(new.iloc[:1].assign(f="c"), kind="linpred")
    P = fit.idata.posterior
    hand = (P["b_Intercept"] + P["b_fc"] + P["r_g"].sel(g="g0", g__coef="Intercept")).values
    np.testing.assert_allclose(ok[:, 0], hand.ravel(), atol=1e-12)


def test_flat_prior_refuses_prior_sampling(small):
    with pytest.raises(mf.MixedFormulaError, match="flat prior"):
        mf.fit("y1 ~ x + (1 | g)", small, sample_prior="only", draws=10, chains=1)
    # sample_prior="yes" refuses before any sampling
    with pytest.raises(mf.MixedFormulaError, match="flat prior"):
        mf.fit("y1 ~ x + (1 | g)", small, sample_prior="yes", draws=10, chains=1)


def test_prior_group_added_next_to_draws(small):
    from mixedformula.results.prior import add_prior_group, prior_fit
    model = mf.Model("y1 ~ x + (1 | g)", small, priors=PRIORS)
    fit = prior_fit(model, draws=100, chains=2, seed=4)
    add_prior_group(fit, model, seed=5)
    prior = fit.idata.prior
    assert prior["b_x"].shape == (1, 200) and "sd_g__Intercept" in prior
    assert float(prior["sd_g__Intercept"].mean()) == pytest.approx(0.5, abs=0.1)  # exp(2)


def test_prior_predictive_of_model(small):
    model = mf.Model("y1 ~ x + (1 | g)", small, priors=PRIORS)       # marginal engine
    assert model.likelihood == "marginal"
    idata = model.prior_predictive(draws=300, seed=2)
    y = idata.prior_predictive["y"].values
    assert y.shape == (1, 300, len(small))
    assert "b_x" in idata.prior and "sd_g__Intercept" in idata.prior
    # Var(y_i) = Var(Intercept) + x_i² Var(b) + E[sd²] + E[σ²] = 1 + x² + 0.5 + 2
    x = small["x"].to_numpy()
    v = y[0].var(axis=0).mean()
    assert v == pytest.approx(np.mean(1 + x ** 2 + 0.5 + 2.0), rel=0.15)


def test_multivariate_predict_with_rescor(small):
    pri = PRIORS + [mf.prior("lkj(1)", class_="rescor")]
    fit = mf.fit("mvbind(y1, y2) ~ x + (1 | p | g)", small, priors=pri, sample_prior="only",
                 draws=500, chains=2, seed=3)
    new = pd.DataFrame({"x": [0.5, -1.0], "g": ["g2", "zz"]})
    eta = fit.predict(new, kind="linpred", seed=1)
    assert eta.shape == (1000, 2, 2)
    P = fit.idata.posterior
    hand = (P["b_y2_Intercept"] + 0.5 * P["b_y2_x"]
            + P["r_g"].sel(g="g2", g__coef="y2_Intercept")).values.ravel()
    np.testing.assert_allclose(eta[:, 0, 1], hand, atol=1e-12)
    tab = fit.predict(new, summary=True)
    assert list(tab.columns.get_level_values(0).unique()) == ["y1", "y2"]
    # response draws: E[e1 e2 / (σ1 σ2)] = E[rescor]
    many = pd.DataFrame({"x": np.zeros(200), "g": "g0"})
    y = fit.predict(many, kind="response", seed=2)
    mu = fit.predict(many, kind="linpred")
    s1 = P["sigma_y1"].values.ravel()[:, None]
    s2 = P["sigma_y2"].values.ravel()[:, None]
    prod = (y[..., 0] - mu[..., 0]) / s1 * (y[..., 1] - mu[..., 1]) / s2
    rc = P["rescor__y1__y2"].values.ravel()
    assert prod.mean() == pytest.approx(rc.mean(), abs=4 * prod.mean(axis=1).std()
                                        / np.sqrt(len(rc)) + 0.01)
