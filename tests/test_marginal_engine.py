"""Marginal engine: same posterior as the conditional engine; exact group effects; stability."""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

PARAMS = ["b_Intercept", "b_Days", "sd_Subject__Intercept", "sd_Subject__Days",
          "cor_Subject__Intercept__Days", "sigma"]


def _assert_same_posterior(a, b, names, tol=0.15):
    """|mean_a − mean_b| < tol · posterior sd (MC error of the difference ≈ 0.04 sd here)."""
    for name in names:
        x, y = a[name].values, b[name].values
        sd = np.sqrt(0.5 * (x.var() + y.var()))
        assert abs(x.mean() - y.mean()) < tol * sd, (name, x.mean(), y.mean(), sd)


def test_marginal_is_default_for_gaussian(sleep_marginal):
    assert sleep_marginal.likelihood == "marginal"
    assert "marginal" in str(sleep_marginal.summary()).splitlines()[6]


def test_sleepstudy_engines_agree(sleep_marginal, sleep_conditional):
    pm_, pc = sleep_marginal.idata.posterior, sleep_conditional.idata.posterior
    _assert_same_posterior(pm_, pc, PARAMS)
    # group effects: every level and coefficient
    um = pm_["r_Subject"].values.reshape(-1, 18, 2)
    uc = pc["r_Subject"].values.reshape(-1, 18, 2)
    sd = np.sqrt(0.5 * (um.var(axis=0) + uc.var(axis=0)))
    assert np.all(np.abs(um.mean(axis=0) - uc.mean(axis=0)) < 0.15 * sd)
    assert np.all(np.abs(um.std(axis=0) / uc.std(axis=0) - 1) < 0.15)


def test_marginal_group_effects_match_lme4_modes(sleep_marginal, lme4_ref):
    """Posterior means of u are close to lme4's conditional modes (flat-ish priors, 18 groups):
    within 0.25 posterior sd for every level."""
    ref = pd.DataFrame(lme4_ref["sleepstudy_corr"]["ranef"]["Subject"]).set_index("level")
    u = sleep_marginal.idata.posterior["r_Subject"]
    mean = u.mean(("chain", "draw")).to_pandas()
    sd = u.std(("chain", "draw")).to_pandas()
    for coef, lme4_name in [("Intercept", "(Intercept)"), ("Days", "Days")]:
        diff = (mean[coef] - ref[lme4_name].values) / sd[coef]
        assert np.all(np.abs(diff) < 0.25), diff


def test_engines_agree_with_two_correlated_slopes():
    rng = np.random.default_rng(41)
    df = pd.DataFrame({"x1": rng.normal(size=600), "x2": rng.normal(size=600),
                       "g": np.repeat([f"g{j:02d}" for j in range(30)], 20)})
    truth = {"b_Intercept": 2.0, "b_x1": 1.0, "b_x2": -1.0, "sigma": 1.0,
             "sd_g__Intercept": 1.0, "sd_g__x1": 0.7, "sd_g__x2": 0.5,
             "cor_g__x1__x2": 0.6, "cor_g__Intercept__x1": -0.3}
    formula = "y ~ x1 + x2 + (1 + x1 + x2 | g)"
    data = mf.simulate(formula, df, truth, seed=42)
    fm = mf.fit(formula, data, likelihood="marginal", draws=1000, tune=1000, chains=2, seed=1)
    fc = mf.fit(formula, data, likelihood="conditional", draws=1000, tune=1000, chains=2,
                seed=1)
    names = [n for n in fm.idata.posterior.data_vars if n.startswith(("b_", "sd_", "cor_"))]
    names.append("sigma")
    assert len(names) == 10
    _assert_same_posterior(fm.idata.posterior, fc.idata.posterior, names, tol=0.2)
    um = fm.idata.posterior["r_g"].values.reshape(-1, 30, 3)
    uc = fc.idata.posterior["r_g"].values.reshape(-1, 30, 3)
    sd = np.sqrt(0.5 * (um.var(axis=0) + uc.var(axis=0)))
    assert np.all(np.abs(um.mean(axis=0) - uc.mean(axis=0)) < 0.2 * sd)


def test_near_zero_variance_is_stable():
    """dyestuff2-like data: the between-batch variance is zero (lme4 reports a singular fit)."""
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"Batch": np.repeat(list("ABCDEF"), 5),
                       "Yield": 5.6 + rng.normal(0, 3.7, 30)})
    fit = mf.fit("Yield ~ 1 + (1 | Batch)", df, draws=1000, tune=1000, chains=2, seed=3)
    post = fit.idata.posterior
    for name in post.data_vars:
        assert np.all(np.isfinite(post[name].values)), name
    n_div = int(fit.idata.sample_stats.diverging.sum())
    assert n_div <= 20, n_div          # ≤ 1% of 2000 draws
    import arviz as az
    assert float(az.rhat(post["sd_Batch__Intercept"])["sd_Batch__Intercept"]) <= 1.01
    # the posterior of the batch sd piles up near zero, as the data say
    assert float(np.median(post["sd_Batch__Intercept"].values)) < 2.0


def test_marginal_refused_where_it_does_not_apply():
    df = pd.DataFrame({"y": [0, 1, 1, 0, 1, 0], "g": list("aabbcc")})
    with pytest.raises(mf.MixedFormulaError, match="marginal likelihood does not apply"):
        mf.Model("y ~ 1 + (1 | g)", df, family="bernoulli", likelihood="marginal")
    m = mf.Model("y ~ 1 + (1 | g)", df, family="bernoulli")
    assert m.likelihood == "conditional"


def test_engine_choice_for_crossed_factors_follows_cost():
    """Small crossed designs stay marginal; 1000 × 300 crossed levels go conditional (the dense
    Schur complement would cost more per gradient than the N-row likelihood) and say why."""
    rng = np.random.default_rng(0)
    n = 100_000
    df = pd.DataFrame({"x": rng.normal(size=n), "a": rng.integers(0, 1000, n),
                       "b": rng.integers(0, 300, n)})
    df["y"] = df.x + rng.normal(size=n)
    big = mf.Model("y ~ x + (1 | a) + (1 | b)", df)
    assert big.likelihood == "conditional"
    assert "crossed/nested factorisation" in big.engine_note
    small = mf.Model("y ~ x + (1 | a) + (1 | b)", df.assign(a=df.a % 20, b=df.b % 10))
    assert small.likelihood == "marginal"
