"""LOO that says what it compares: pointwise log-likelihoods and PSIS against PyMC/arviz.

* Pointwise conditional log-likelihood (numpy, all families) = PyMC's own
  ``pm.compute_log_likelihood`` on the conditional model, draw by draw (1e-8), on forward draws
  from the prior (exact, no MCMC) and on a sampled sleepstudy posterior.
* ``fit.loo()`` = ``arviz.loo`` on PyMC's log-likelihood (elpd to 1e-6).
* Marginal group log-likelihood: Σ_j log p(y_j | β, G, σ) = the marginal engine's pytensor
  ``marginal_loglik`` (1e-8) and each term = a dense multivariate normal density (1e-8).
"""

import arviz as az
import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.results.loo import marginal_group_loglik, pointwise_loglik
from mixedformula.backends.pymc.prior import forward_draws as _forward
from mixedformula.results.prior import fit_from_forward

FORMULA = "Reaction ~ Days + (Days | Subject)"
PRIORS = [mf.prior("normal(0, 0.5)", class_="b"), mf.prior("normal(0, 1)", class_="Intercept"),
          mf.prior("exponential(2)", class_="sd")]


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(2)
    n = 60
    df = pd.DataFrame({"x": rng.normal(size=n), "g": np.repeat(list("abcdef"), 10),
                       "f": rng.choice(["u", "v", "w"], n), "h": np.repeat(["A", "B"], 30)})
    df["y"] = rng.poisson(3, n).astype(float)
    df["yb"] = (rng.random(n) < 0.4).astype(float)
    df["t"] = rng.integers(5, 10, n)
    df["yt"] = rng.binomial(df["t"], 0.3).astype(float)
    df["yp"] = rng.gamma(2.0, 1.0, n)
    df["y2"] = rng.normal(size=n)
    return df


CASES = [("y ~ x + f + (1 + x | g)", "poisson", {}),
         ("yb ~ x + (1 | g)", "bernoulli", {}),
         ("yt | trials(t) ~ x + (1 | g)", "binomial", {}),
         ("y ~ x + (1 | g)", "negbinomial", {}),
         ("yp ~ x + (1 | g)", "gamma", {}),
         ("yp ~ x + (1 | g)", "lognormal", {}),
         ("y2 ~ x + (1 | g)", "student", {}),
         ("y2 ~ x + (1 | gr(g, by = h))", "gaussian", {"likelihood": "conditional"}),
         ("y2 ~ x + (1 | g)", "gaussian", {"rescor_by": "h"}),
         ("mvbind(y2, yp) ~ x + (1 | p | g)", "gaussian", {})]


@pytest.mark.parametrize("formula,family,kw", CASES, ids=[f"{c[1]}-{c[0]}" for c in CASES])
def test_pointwise_loglik_equals_pymc(small, formula, family, kw):
    import pymc as pm
    pri = PRIORS + ([mf.prior("gamma(2, 1)", class_="shape")]
                    if family in ("gamma", "negbinomial") else [])
    model = mf.Model(formula, small, family=family, priors=pri, **kw)
    built, idata = _forward(model, 100, 1)
    fit = fit_from_forward(model, built, idata, 50, 2, 1)
    ours = pointwise_loglik(fit)
    ref = pm.compute_log_likelihood(az.InferenceData(posterior=idata.prior), model=built.model,
                                    progressbar=False)
    theirs = ref.log_likelihood["y"].values.reshape(100, len(small))
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-8)


# --------------------------------------------------------------------------- sleepstudy


@pytest.fixture(scope="module")
def raw_conditional(sleepstudy):
    """Conditional sleepstudy fit, keeping PyMC's raw draws (what Model.fit does, step by step)."""
    from mixedformula.backends.pymc.names import brms_posterior
    from mixedformula.model import _replace_posterior, _sample
    from mixedformula.results import Fit
    model = mf.Model(FORMULA, sleepstudy, likelihood="conditional")
    raw = _sample(model.pymc_model, "nutpie", 300, 400, 2, 7, False, 2, None)
    idata = _replace_posterior(raw, brms_posterior(raw.posterior, model.built))
    fit = Fit(idata, model.design, model.family, model.built.priors, "conditional",
              {"draws": 300, "chains": 2}, data=sleepstudy)
    return model, raw, fit


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_conditional_loo_matches_arviz_on_pymc_loglik(raw_conditional):
    import pymc as pm
    model, raw, fit = raw_conditional
    ref = pm.compute_log_likelihood(az.InferenceData(posterior=raw.posterior),
                                    model=model.pymc_model, progressbar=False)
    ll_ref = ref.log_likelihood["y"].values
    res = fit.loo()
    ll = fit.idata.log_likelihood["Reaction"].values
    np.testing.assert_allclose(ll, ll_ref, rtol=1e-10, atol=1e-8)
    # arviz's relative efficiency (reff) is computed from the posterior group, so the reference
    # gets the same posterior as the fit and PyMC's own log-likelihood
    expected = az.loo(az.InferenceData(posterior=fit.idata.posterior,
                                       log_likelihood=ref.log_likelihood), pointwise=True)
    assert res.elpd == pytest.approx(float(expected["elpd_loo"]), abs=1e-6)
    assert res.p_loo == pytest.approx(float(expected["p_loo"]), abs=1e-6)
    assert res.se == pytest.approx(float(expected["se"]), abs=1e-6)
    np.testing.assert_allclose(res.pareto_k, expected["pareto_k"].values, atol=1e-9)
    text = repr(res)
    assert text.startswith("LOO over observations (conditional likelihood): 180 observations")
    assert "Pareto k diagnostics:" in text and "k > 0.7" in text
    assert res.n_units == 180 and not res.grouped


def _T(fit, s):
    """Cholesky factor of G for flat draw s."""
    P = fit.idata.posterior
    f = {k: P[k].values.ravel()[s] for k in ("sd_Subject__Intercept", "sd_Subject__Days",
                                             "cor_Subject__Intercept__Days")}
    sd = np.array([f["sd_Subject__Intercept"], f["sd_Subject__Days"]])
    C = np.array([[1.0, f["cor_Subject__Intercept__Days"]],
                  [f["cor_Subject__Intercept__Days"], 1.0]])
    return np.linalg.cholesky(sd[:, None] * C * sd[None, :])


@pytest.mark.parametrize("which", ["raw_conditional", "sleep_marginal"])
def test_marginal_group_loglik_sums_to_marginal_loglik(which, request):
    from scipy.stats import multivariate_normal

    from mixedformula.backends.pymc.marginal import marginal_loglik
    from mixedformula.design.crossprod import sufficient_statistics
    obj = request.getfixturevalue(which)
    fit = obj[2] if which == "raw_conditional" else obj
    ll, group, levels = marginal_group_loglik(fit)
    assert group == "Subject" and ll.shape[1] == 18 and levels[0] == "308"
    stats = sufficient_statistics(fit.design)
    P = fit.idata.posterior
    d = fit.design
    codes = d.terms[0].codes
    for s in (0, 17, 401):
        beta = np.array([P["b_Intercept"].values.ravel()[s], P["b_Days"].values.ravel()[s]])
        sigma = P["sigma"].values.ravel()[s]
        T = _T(fit, s)
        total = float(marginal_loglik(stats, beta, T, sigma).eval())
        assert ll[s].sum() == pytest.approx(total, rel=1e-10, abs=1e-8)
        j = 5                                              # one group, densely
        rows = codes == j
        Zj = d.terms[0].X[rows]
        V = Zj @ T @ T.T @ Zj.T + sigma ** 2 * np.eye(rows.sum())
        dense = multivariate_normal(d.X[rows] @ beta, V).logpdf(d.y[rows, 0])
        assert ll[s, j] == pytest.approx(dense, rel=1e-10, abs=1e-8)


def test_loo_kinds_and_compare(raw_conditional, sleep_marginal):
    _, _, cond = raw_conditional
    marg = sleep_marginal.loo()
    text = repr(marg)
    assert text.startswith("leave-one-group-out over Subject (marginal likelihood): 18 levels")
    assert marg.n_units == 18 and marg.grouped
    obs = cond.loo()
    with pytest.raises(mf.MixedFormulaError, match="not on a common scale"):
        mf.compare(cond, sleep_marginal)
    with pytest.raises(mf.MixedFormulaError, match="observation"):
        mf.compare(obs, marg)
    # the conditional fit's group LOO (summed conditional log-lik) targets the same elpd
    logo_c = cond.loo(group="Subject")
    assert "conditional likelihood summed within groups" in repr(logo_c)
    cmp = mf.compare(conditional=logo_c, marginal=marg)
    assert "leave-one-group-out over Subject" in repr(cmp)
    assert set(cmp.table.index) == {"conditional", "marginal"}
    # ... but its importance weights are much worse (u_j is conditioned on): more high k
    assert np.sum(logo_c.pareto_k > 0.7) > np.sum(marg.pareto_k > 0.7)
    assert any(w.startswith("conditional:") for w in cmp.warnings)
    # sum of the conditional pointwise log-lik within groups, draw by draw
    ll_obs = cond.idata.log_likelihood["Reaction"].values
    ll_grp = cond.idata.log_likelihood["Reaction__Subject__conditional"].values
    codes = cond.design.terms[0].codes
    np.testing.assert_allclose(ll_grp[..., 3], ll_obs[..., codes == 3].sum(-1), rtol=1e-12)
    # the marginal group LOO from the conditional fit's draws estimates the same elpd as the
    # marginal fit's (same posterior): within a few standard errors of the difference
    m_from_c = cond.loo(likelihood="marginal")
    assert m_from_c.elpd == pytest.approx(marg.elpd, abs=3 * marg.se / np.sqrt(18) + 3.0)
    # observation-wise LOO from the marginal fit's exact u draws
    assert sleep_marginal.loo(likelihood="conditional").n_units == 180
    # two observation-wise LOOs compare fine
    cmp2 = mf.compare(cond, sleep_marginal.loo(likelihood="conditional"))
    assert "LOO over observations" in cmp2.description


def test_several_grouping_factors_are_refused_for_marginal_group_loo():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=40), "g": np.tile(list("abcd"), 10),
                       "h": np.repeat(list("pqrstuvwxy"), 4), "y": rng.normal(size=40)})
    model = mf.Model("y ~ x + (1 | g) + (1 | h)", df, priors=PRIORS
                     + [mf.prior("exponential(1)", class_="sigma")])
    from mixedformula.results.prior import prior_fit
    fit = prior_fit(model, draws=20, chains=1, seed=1)
    with pytest.raises(mf.MixedFormulaError, match="ONE grouping factor"):
        fit.loo()
    with pytest.raises(mf.MixedFormulaError, match="does not factor over the levels of 'g'"):
        fit.loo(group="g", likelihood="marginal")
    assert fit.loo(group="g", likelihood="conditional").n_units == 4
