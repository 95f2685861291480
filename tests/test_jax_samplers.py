"""JAX samplers (issue 10, part 3): ``sampler="numpyro"`` / ``"blackjax"`` on the CPU.

Both engines compile to JAX (the marginal likelihood's unrolled Cholesky and the conditional
engine's gathers, the lean logit-binomial CustomDist). Posterior means are compared with brms
within four combined Monte-Carlo standard errors, sd·√(1/ESS + 1/ESS_brms), using each
parameter's own bulk ESS; draws are kept small because every fit compiles the NUTS loop.
"""

import arviz as az
import numpy as np
import pytest

import mixedformula as mf
from mixedformula.backends.pymc import jax_sampling
from mixedformula.errors import MixedFormulaError
from mixedformula.results.summary import count_divergences, count_treedepth
from sim import BERNOULLI_TRUTH, bernoulli_glmm, familywise_misses, seeds

FORMULA = "Reaction ~ Days + (Days | Subject)"
BRMS_PARAMS = ["b_Intercept", "b_Days", "sd_Subject__Intercept", "sd_Subject__Days",
               "cor_Subject__Intercept__Days", "sigma"]
# 2 × (1000 + 1000): at 2 × (400 + 400) the bulk-ESS estimate of 800 draws (and numpyro's
# adaptation in 400 warm-up steps) was too rough for the 4-MCSE bound to hold at its stated rate
SMALL = dict(draws=1000, tune=1000, chains=2, seed=5)


@pytest.fixture(scope="module")
def sleep_jax(sleepstudy):
    """Sleepstudy fitted by each JAX sampler with each engine (fitted on first use)."""
    cache = {}

    def get(sampler, likelihood):
        if (sampler, likelihood) not in cache:
            cache[sampler, likelihood] = mf.fit(FORMULA, sleepstudy, likelihood=likelihood,
                                                sampler=sampler, **SMALL)
        return cache[sampler, likelihood]
    return get


@pytest.mark.parametrize("sampler,likelihood", [("numpyro", "marginal"),
                                                ("numpyro", "conditional"),
                                                ("blackjax", "marginal")])
def test_sleepstudy_matches_brms(sleep_jax, brms_ref, lme4_ref, sampler, likelihood):
    fit = sleep_jax(sampler, likelihood)
    assert fit.likelihood == likelihood and fit.info["sampler"] == sampler
    ref = brms_ref["sleepstudy_corr"]["params"]
    post = fit.idata.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == SMALL["draws"]
    for name in BRMS_PARAMS:
        ess = float(az.ess(post[name])[name])
        assert ess > 100, (name, ess)
        mcse = ref[name]["sd"] * np.sqrt(1 / ess + 1 / ref[name]["ess_bulk"])
        assert abs(float(post[name].mean()) - ref[name]["mean"]) < 4 * mcse, name
        assert float(az.rhat(post[name])[name]) < 1.05, name
    # group effects: sampled (conditional) or drawn exactly after sampling (marginal)
    r = post["r_Subject"]
    assert r.shape[-2:] == (18, 2)
    assert list(r.coords["Subject"].values[:2]) == ["308", "309"]
    # lme4's conditional modes lie inside the 95% intervals of r_Subject
    for row in lme4_ref["sleepstudy_corr"]["ranef"]["Subject"][:3]:
        draws = r.sel(Subject=row["level"]).values.reshape(-1, 2)
        lo, hi = np.quantile(draws, [0.025, 0.975], axis=0)
        mode = np.array([row["(Intercept)"], row["Days"]])
        assert np.all(lo < mode) and np.all(mode < hi), row["level"]


def test_jax_sample_stats_feed_the_summary(sleep_jax):
    fit = sleep_jax("numpyro", "marginal")
    ss = fit.idata.sample_stats
    assert ss["diverging"].dtype == bool and ss["diverging"].shape == (2, SMALL["draws"])
    depth = ss["tree_depth"].values
    assert np.array_equal(ss["reached_max_treedepth"].values,
                          depth >= jax_sampling.MAX_TREE_DEPTH)
    assert count_divergences(fit.idata) == int(ss["diverging"].values.sum())
    text = str(fit.summary())
    assert "Draws were sampled using numpyro(NUTS)" in text


def test_summary_warns_from_jax_divergences(sleepstudy):
    """Without warmup (step size 1, unit mass matrix) every transition diverges."""
    fit = mf.fit(FORMULA, sleepstudy, likelihood="conditional", sampler="numpyro",
                 draws=40, tune=0, chains=2, seed=1)
    n_div = int(fit.idata.sample_stats["diverging"].sum())
    assert n_div > 0
    assert count_divergences(fit.idata) == n_div
    assert any(w.startswith(f"There were {n_div} divergent transitions after warmup")
               for w in fit.summary().warnings)


def test_tree_depth_limit_is_passed_and_flagged(monkeypatch):
    """A strongly correlated Gaussian needs long trajectories; with the limit at 2 numpyro
    stops there and the flag the summary counts is set on those draws."""
    import pymc as pm
    monkeypatch.setattr(jax_sampling, "MAX_TREE_DEPTH", 2)
    with pm.Model() as model:
        pm.MvNormal("x", mu=np.zeros(2), cov=np.array([[1.0, 0.999], [0.999, 1.0]]))
    idata = jax_sampling.sample_jax(model, "numpyro", draws=50, tune=100, chains=2, seed=1)
    depth = idata.sample_stats["tree_depth"].values
    assert depth.max() == 2
    flag = idata.sample_stats["reached_max_treedepth"].values
    assert np.array_equal(flag, depth >= 2) and flag.sum() > 0
    assert count_treedepth(idata) == int(flag.sum())


def test_bernoulli_glmm_numpyro_vectorized_recovers_truth():
    """A bernoulli GLMM of its own (not the data set of test_core_sampling's nutpie test):
    5 truths in family-wise intervals, false-failure rate ≤ 1% for any seed (Bonferroni, each
    at 1 − 0.01/5, z_crit ≈ 3.09 on the log/atanh/identity scale; sim.familywise_misses);
    60 groups × 50 rows keep the posteriors close to normal on those scales."""
    truth = BERNOULLI_TRUTH
    x_seed, y_seed, fit_seed = seeds("bernoulli-numpyro", 18, 19, 4)
    data = bernoulli_glmm(x_seed, y_seed)
    fit = mf.fit("y ~ x + (1 + x | g)", data, family="bernoulli", sampler="numpyro",
                 draws=400, tune=400, chains=4, seed=fit_seed)
    assert fit.likelihood == "conditional"
    post = fit.idata.posterior
    assert post.sizes["chain"] == 4
    assert familywise_misses(post, truth) == {}
    assert post["r_g"].shape[-2:] == (60, 2)


def test_cli_numpyro_same_seed_same_draws(sleep_jax, sleepstudy, tmp_path, capsys):
    """The command line fits with numpyro and reproduces the API fit's draws for the seed."""
    from mixedformula.cli import main
    sleepstudy.to_csv(tmp_path / "sleep.csv", index=False)
    rc = main(["fit", str(tmp_path / "sleep.csv"), FORMULA, "--sampler", "numpyro",
               "--draws", str(SMALL["draws"]), "--tune", str(SMALL["tune"]), "--chains", "2",
               "--seed", str(SMALL["seed"]),
               "--save", str(tmp_path / "fit.nc")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "Draws were sampled using numpyro(NUTS)" in out
    loaded = mf.load(tmp_path / "fit.nc")
    api = sleep_jax("numpyro", "marginal").idata.posterior
    for name in [*BRMS_PARAMS, "r_Subject"]:
        np.testing.assert_array_equal(loaded.idata.posterior[name].values, api[name].values)


def _jax_data():
    import pandas as pd
    rng = np.random.default_rng(1)
    n = 120
    df = pd.DataFrame({f"x{k}": rng.normal(size=n) for k in range(1, 5)})
    df["g"] = np.repeat([f"g{j:02d}" for j in range(12)], 10)
    df["a"] = rng.integers(0, 6, n).astype(str)
    df["b"] = rng.integers(0, 5, n).astype(str)
    df["y"], df["y2"] = rng.normal(size=n), rng.normal(size=n)
    df["k"], df["nt"] = rng.integers(0, 6, n).astype(float), 6.0
    return df


# the code paths the sampling tests above do not reach
JAX_MODELS = [
    ("y ~ x1 + (1 | a) + (1 | b)", "gaussian", "marginal"),           # crossed: Schur complement
    ("y ~ x1 + x2 + x3 + x4 + (1 + x1 + x2 + x3 + x4 | g)", "gaussian", "marginal"),  # Q = 5
    ("mvbind(y, y2) ~ x1 + (1 | p | g)", "gaussian", "marginal"),     # marginal_mv
    ("mvbind(y, y2) ~ x1 + (1 | p | g)", "gaussian", "conditional"),  # row-wise MvNormal
    ("k | trials(nt) ~ x1 + (1 | g)", "binomial", "conditional"),     # lean logit-binomial
]


@pytest.mark.parametrize("formula,family,likelihood", JAX_MODELS)
def test_model_compiles_to_jax_with_the_same_density(formula, family, likelihood):
    """JAX's log-density and gradient equal pytensor's at the initial point."""
    import jax
    from pymc.sampling.jax import get_jaxified_logp
    m = mf.Model(formula, _jax_data(), family=family, likelihood=likelihood)
    assert m.likelihood == likelihood
    model = m.pymc_model
    point = model.initial_point()
    x = [point[v.name] for v in model.value_vars]
    # negative_logp=False gives the potential −log p (numpyro's convention)
    value, grad = jax.jit(jax.value_and_grad(get_jaxified_logp(model, negative_logp=False)))(x)
    ref = model.compile_logp(mode="FAST_COMPILE")(point)
    dref = model.compile_dlogp(mode="FAST_COMPILE")(point)
    np.testing.assert_allclose(-float(value), ref, rtol=1e-10)
    np.testing.assert_allclose(-np.concatenate([np.ravel(g) for g in grad]), dref, rtol=1e-8,
                               atol=1e-8)


def test_missing_jax_library_is_a_clear_error(sleepstudy, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "blackjax", None)       # import blackjax → ImportError
    with pytest.raises(MixedFormulaError, match=r"blackjax.*pip install 'mixedformula\[jax\]'"):
        mf.fit(FORMULA, sleepstudy, sampler="blackjax", draws=10, tune=10, chains=1)
