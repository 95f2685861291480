"""Every family's log-density and every link against scipy.stats (independent references).

* ``family.logpdf`` for each family × allowed link on a grid of moderate η, against
  ``scipy.stats.<dist>.logpdf/logpmf`` at μ = g⁻¹(η), to 1e-9 (relative);
* extreme η (|η| up to 30 where the link allows it): probabilities against the log-cdf/log-sf of
  the latent distributions in scipy.stats (logistic, norm, gumbel_l: P(y = 1) = F(η) for logit,
  probit, cloglog), counts and densities against scipy.stats at μ = g⁻¹(η) where μ is exactly
  representable, and the negative binomial against mpmath at 50 digits (scipy's nbinom takes
  p = a/(a + μ), which rounds 1 − p at η = −30);
* the pointwise log-likelihood of :func:`mixedformula.results.loo.pointwise_loglik` for each
  family × link on a hand-built fit, against scipy.stats;
* brms' default Intercept prior rule, against numbers computed by hand from brms' R code.
"""

from __future__ import annotations

import arviz as az
import mpmath as mp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats
from scipy.special import gammaln

import mixedformula as mf
from mixedformula.errors import FamilyError
from mixedformula.families import family_names, get_family, get_link, r_round
from mixedformula.priors import PriorSet
from mixedformula.results import Fit
from mixedformula.results.loo import pointwise_loglik

RTOL = 1e-9
PARAMS = {"sigma": 1.7, "nu": 4.5, "shape": 2.3}
TRIALS = 12.0


def scipy_logpdf(name: str, y, mu, p=PARAMS, trials=TRIALS):
    """log p(y | μ, params) from scipy.stats, in brms' parametrisation of each family."""
    if name == "gaussian":
        return stats.norm.logpdf(y, mu, p["sigma"])
    if name == "student":
        return stats.t.logpdf(y, p["nu"], mu, p["sigma"])
    if name == "lognormal":
        return stats.lognorm.logpdf(y, p["sigma"], scale=np.exp(mu))
    if name == "bernoulli":
        return stats.bernoulli.logpmf(y, mu)
    if name == "binomial":
        return stats.binom.logpmf(y, trials, mu)
    if name == "poisson":
        return stats.poisson.logpmf(y, mu)
    if name == "negbinomial":
        a = p["shape"]
        return stats.nbinom.logpmf(y, a, a / (a + mu))
    if name == "gamma":
        a = p["shape"]
        return stats.gamma.logpdf(y, a, scale=mu / a)
    raise AssertionError(name)


def responses(name: str) -> np.ndarray:
    if name in ("gaussian", "student"):
        return np.array([-3.2, -0.4, 0.0, 1.1, 7.5])
    if name in ("lognormal", "gamma"):
        return np.array([0.03, 0.5, 1.0, 2.7, 40.0])
    if name == "bernoulli":
        return np.array([0.0, 1.0])
    if name == "binomial":
        return np.array([0.0, 1.0, 5.0, 11.0, 12.0])
    return np.array([0.0, 1.0, 3.0, 17.0, 250.0])


def moderate_eta(name: str, link: str) -> np.ndarray:
    """η where μ is inside the family's domain and well away from rounding."""
    if link in ("identity", "inverse", "sqrt") and name in ("poisson", "negbinomial", "gamma"):
        return np.array([0.05, 0.4, 1.0, 2.5, 9.0])
    if link == "inverse":
        return np.array([-2.0, -0.3, 0.2, 1.0, 4.0])
    if link in ("logit", "probit", "cloglog"):    # p and 1 − p exact enough for scipy
        return np.array([-4.0, -1.3, 0.0, 0.7, 1.9])
    return np.array([-4.0, -1.3, 0.0, 0.7, 3.5])


#: the families this file covers; tests/test_families_extra.py covers the others (and checks
#: that the two together cover every registered family)
BASIC = ("gaussian", "student", "lognormal", "bernoulli", "binomial", "poisson", "negbinomial",
         "gamma")
CASES = [(name, link) for name in family_names() if name in BASIC
         for link in get_family(name).allowed_links]


def test_every_family_and_link_is_covered():
    assert {n for n, _ in CASES} == {"gaussian", "student", "lognormal", "bernoulli",
                                     "binomial", "poisson", "negbinomial", "gamma"}
    assert len(CASES) == 23


@pytest.mark.parametrize("name,link", CASES)
def test_logpdf_matches_scipy(name, link):
    fam = get_family(name, link)
    y = responses(name)[:, None]
    eta = moderate_eta(name, link)[None, :]
    mu = fam.inverse_link(eta)
    ours = fam.logpdf(y, eta, PARAMS, trials=TRIALS)
    ref = scipy_logpdf(name, y, mu)
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-12)


EXTREME = np.array([-30.0, -12.0, 12.0, 30.0])


def _nbinom_mp(y, eta, a):
    mp.mp.dps = 50
    mu, a = mp.e ** mp.mpf(eta), mp.mpf(a)
    out = (mp.loggamma(y + a) - mp.loggamma(a) - mp.loggamma(y + 1)
           + a * mp.log(a / (a + mu)) + y * mp.log(mu / (a + mu)))
    return float(out)


@pytest.mark.parametrize("name,link", [c for c in CASES if c[1] in ("logit", "probit",
                                                                      "cloglog", "log")])
def test_logpdf_extreme_eta(name, link):
    fam = get_family(name, link)
    y = responses(name)[:, None]
    eta = EXTREME[None, :]
    ours = fam.logpdf(y, eta, PARAMS, trials=TRIALS)
    assert np.all(np.isfinite(ours))
    if link in ("logit", "probit", "cloglog"):
        latent = {"logit": stats.logistic, "probit": stats.norm, "cloglog": stats.gumbel_l}[link]
        lp, lq = latent.logcdf(eta), latent.logsf(eta)
        n = 1.0 if name == "bernoulli" else TRIALS
        lc = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
        ref = lc + np.where(y > 0, y * lp, 0.0) + np.where(n - y > 0, (n - y) * lq, 0.0)
    elif name == "negbinomial":
        ref = np.array([[_nbinom_mp(yi, e, PARAMS["shape"]) for e in EXTREME]
                        for yi in y[:, 0]])
    else:
        ref = scipy_logpdf(name, y, np.exp(eta))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-12)


def test_cloglog_probability_is_not_clipped():
    """log(1 − p) = −e^η exactly for cloglog (y = 0): −e^7.49 = −1790.05, not log(1e-16)."""
    fam = get_family("bernoulli", "cloglog")
    assert fam.logpdf(np.array(0.0), np.array(7.49)) == pytest.approx(-np.exp(7.49), rel=1e-12)
    assert fam.logpdf(np.array(1.0), np.array(-30.0)) == pytest.approx(
        stats.gumbel_l.logcdf(-30.0), rel=1e-12)
    probit = get_family("bernoulli", "probit")
    assert probit.logpdf(np.array(0.0), np.array(9.0)) == pytest.approx(
        stats.norm.logsf(9.0), rel=1e-12)


@pytest.mark.parametrize("link", ["identity", "log", "sqrt", "inverse", "logit", "probit",
                                  "cloglog"])
def test_links_invert(link):
    L = get_link(link)
    eta = np.array([0.3, 1.2, 2.0]) if link in ("identity", "inverse", "sqrt") \
        else np.array([-3.0, 0.1, 2.5])
    np.testing.assert_allclose(L.fn(L.inverse(eta)), eta, rtol=1e-10)
    import pytensor.tensor as pt
    x = pt.dvector("x")
    np.testing.assert_allclose(L.inverse_tensor(x).eval({x: eta}), L.inverse(eta), rtol=1e-12)
    # log(g⁻¹(η)) formed in log space; log of the rounded μ agrees to its rounding error
    np.testing.assert_allclose(L.log_mu(eta), np.log(L.inverse(eta)), rtol=1e-9)


@pytest.mark.parametrize("name", ["gaussian", "student", "lognormal", "bernoulli", "binomial",
                                  "poisson", "negbinomial", "gamma"])
def test_mean_variance_and_draws_agree_with_scipy(name):
    fam = get_family(name)
    mu = np.array([0.3]) if fam.mu_domain == (0.0, 1.0) else np.array([1.7])
    dist = {
        "gaussian": stats.norm(mu, PARAMS["sigma"]),
        "student": stats.t(PARAMS["nu"], mu, PARAMS["sigma"]),
        "lognormal": stats.lognorm(PARAMS["sigma"], scale=np.exp(mu)),
        "bernoulli": stats.bernoulli(mu),
        "binomial": stats.binom(TRIALS, mu),
        "poisson": stats.poisson(mu),
        "negbinomial": stats.nbinom(PARAMS["shape"], PARAMS["shape"] / (PARAMS["shape"] + mu)),
        "gamma": stats.gamma(PARAMS["shape"], scale=mu / PARAMS["shape"]),
    }[name]
    np.testing.assert_allclose(fam.mean(mu, PARAMS, TRIALS), dist.mean(), rtol=1e-12)
    np.testing.assert_allclose(fam.variance(mu, PARAMS, TRIALS), dist.var(), rtol=1e-12)
    # draws: the sample mean of 40 000 draws within 5 standard errors of the mean
    # (false-failure probability 6e-7 for a correct sampler; lognormal's variance is finite)
    rng = np.random.default_rng(0)
    y = fam.rvs(np.full(40_000, mu[0]), PARAMS, rng, TRIALS)
    se = np.sqrt(dist.var()[0] / y.size)
    assert abs(y.mean() - dist.mean()[0]) < 5 * se


def test_draws_outside_the_mean_domain_are_a_clear_error():
    fam = get_family("poisson", "identity")
    with pytest.raises(FamilyError, match="outside"):
        fam.rvs(np.array([1.0, -0.5]), {}, np.random.default_rng(0))
    with pytest.raises(FamilyError, match="outside"):
        get_family("gamma", "inverse").rvs(np.array([-2.0]), {"shape": 2.0},
                                           np.random.default_rng(0))


# --------------------------------------------------------------------------- pointwise loglik

def _hand_fit(name: str, link: str, b0: np.ndarray, b1: float = 0.4, seed: int = 0):
    """A fit of ``y ~ x`` (binomial: ``y | trials(n) ~ x``) with known draws of β and dpars."""
    rng = np.random.default_rng(seed)
    n = 7
    x = np.linspace(-1.0, 1.0, n)
    y = np.resize(responses(name), n)
    df = pd.DataFrame({"y": y, "x": x, "n": TRIALS})
    formula = "y | trials(n) ~ x" if name == "binomial" else "y ~ x"
    design = mf.design_matrices(formula, df)
    S = len(b0)
    post = {"b_Intercept": b0, "b_x": np.full(S, b1)}
    fam = get_family(name, link)
    for d in fam.dpars:
        post[d] = PARAMS[d] * np.exp(rng.normal(0, 0.2, S))
    ds = xr.Dataset({k: xr.DataArray(np.asarray(v, dtype=float)[None, :], dims=("chain", "draw"))
                     for k, v in post.items()})
    fit = Fit(az.InferenceData(posterior=ds), design, fam, PriorSet(), "conditional",
              {"chains": 1, "draws": S}, data=df)
    return fit, x, y, post


@pytest.mark.parametrize("name,link", CASES)
def test_pointwise_loglik_matches_scipy(name, link):
    b0 = moderate_eta(name, link)[1:4] + 1.0 if (
        link in ("identity", "inverse", "sqrt") and name in ("poisson", "negbinomial",
                                                             "gamma")) \
        else moderate_eta(name, link)[1:4]
    fit, x, y, post = _hand_fit(name, link, b0, b1=0.3 if b0.min() > 0.9 else 0.1)
    ours = pointwise_loglik(fit)
    fam = get_family(name, link)
    ref = np.empty_like(ours)
    for s in range(len(b0)):
        eta = post["b_Intercept"][s] + post["b_x"][s] * x
        p = {d: post[d][s] for d in fam.dpars}
        ref[s] = scipy_logpdf(name, y, fam.inverse_link(eta), p)
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-12)


def test_pointwise_loglik_cloglog_extreme_eta():
    """Issue 17 item 5: y = 0 at η = 7.49 gives log(1 − p) = −e^7.49 (main: −36.74)."""
    fit, x, y, post = _hand_fit("bernoulli", "cloglog", np.array([7.49]), b1=0.0)
    ours = pointwise_loglik(fit)[0]
    zero = y == 0
    assert zero.any()
    np.testing.assert_allclose(ours[zero], -np.exp(7.49), rtol=1e-12)
    np.testing.assert_allclose(ours[~zero], stats.gumbel_l.logcdf(7.49), atol=1e-15)


# --------------------------------------------------------------------------- default priors

def _salamander_like() -> np.ndarray:
    """Counts shaped like glmmTMB's Salamanders (644 rows, mostly zeros)."""
    return np.array([0] * 400 + [1] * 100 + [2] * 60 + [3] * 40 + [5] * 24 + [12] * 20,
                    dtype=float)


def test_r_round_is_rs():
    # values printed by R 4.2.2: round(c(288.65, 0.15, 0.25, 2.45, -2.35, 1.05, 0.95), 1)
    assert [r_round(v) for v in (288.65, 0.15, 0.25, 2.45, -2.35, 1.05, 0.95)] == \
        [288.6, 0.1, 0.2, 2.5, -2.4, 1.0, 0.9]


def test_default_intercept_prior_follows_brms():
    """brms (R/priors.R, def_scale_prior): y' = y with zeros → 0.1 for log/inverse links,
    location round(median(g(y')), 1), scale max(2.5, round(mad(g(y')), 1)); logit & co: 0, 2.5.

    Hand computation for the Salamanders-like counts (644 values, 400 zeros): more than half
    are 0 → 0.1, so median(log y') = log 0.1 = −2.303 → −2.3 (brms prints student_t(3, −2.3,
    2.5) for glmmTMB's Salamanders Poisson model); mad = 1.4826 · median|log y' + 2.303| = 0
    (over half the values sit at the median) → scale 2.5.
    """
    y = _salamander_like()
    for fam in ("poisson", "negbinomial"):
        p = get_family(fam).default_intercept(y)
        assert (p.dist, p.args) == ("student_t", (3.0, -2.3, 2.5))
    # identity link: median(y) = 0 (400 of 644 are 0); mad(y) = 0 → scale 2.5
    assert get_family("poisson", "identity").default_intercept(y).args == (3.0, 0.0, 2.5)
    # sqrt link (no zero replacement): median sqrt(y) = 0
    assert get_family("poisson", "sqrt").default_intercept(y).args == (3.0, 0.0, 2.5)
    # counts 1..9: log: median log(1..9) = log 5 = 1.609 → 1.6, mad = 1.4826 · median|log(k/5)|
    # = 1.4826 · log(8/5) = 0.70 → scale 2.5; sqrt: median = √5 = 2.236 → 2.2
    k = np.arange(1.0, 10.0)
    assert get_family("poisson").default_intercept(k).args == (3.0, 1.6, 2.5)
    assert get_family("poisson", "sqrt").default_intercept(k).args == (3.0, 2.2, 2.5)
    # wide spread on the log scale: y = 10^(0..8): median log = log 10^4 = 9.21 → 9.2,
    # mad = 1.4826 · 2 log 10 = 6.83 → 6.8
    w = 10.0 ** np.arange(9)
    assert get_family("poisson").default_intercept(w).args == (3.0, 9.2, 6.8)
    assert get_family("poisson").default_sd_scale(w) == 6.8
    # gamma, inverse link: median(1/y) for y = 1, 2, 4, 5, 10 → 1/4 = 0.25 → R: round(0.25, 1)
    # = 0.2 (tie to even); mad(1/y) = 1.4826 · median|1/y − 0.25| = 1.4826 · 0.15 = 0.22 → 2.5
    g = np.array([1.0, 2.0, 4.0, 5.0, 10.0])
    assert get_family("gamma", "inverse").default_intercept(g).args == (3.0, 0.2, 2.5)
    # gamma, log link: median log y = log 4 = 1.386 → 1.4
    assert get_family("gamma").default_intercept(g).args == (3.0, 1.4, 2.5)
    # lognormal ("logscale" in brms): from log y, not y: median log y = 1.4, sigma prior from
    # mad(log y) = 1.4826 · median|log(y/4)| = 1.4826 · log 2 = 1.03 → 2.5
    ln = get_family("lognormal")
    assert ln.default_intercept(g).args == (3.0, 1.4, 2.5)
    assert ln.default_prior("sigma", g).args == (3.0, 0.0, 2.5)
    # bernoulli/binomial: logit, probit, cloglog are not data links
    for link in ("logit", "probit", "cloglog"):
        assert get_family("bernoulli", link).default_intercept(np.r_[1.0, 1, 1, 0]).args == \
            (3.0, 0.0, 2.5)
    # gaussian, identity: sleepstudy's brms prior student_t(3, 288.7, 59.3)
    sleep = mf.datasets.load("sleepstudy")["Reaction"].to_numpy()
    assert get_family("gaussian").default_intercept(sleep).args == (3.0, 288.7, 59.3)
    # gaussian with log link: sigma's prior uses the identity (brms: sigma is not predicted)
    gl = get_family("gaussian", "log")
    assert gl.default_prior("sigma", sleep).args == (3.0, 0.0, 59.3)
    assert gl.default_intercept(sleep).args[:2] == (3.0, r_round(np.median(np.log(sleep))))
    # negative responses with a log link: log gives NaN, brms keeps 0 and 2.5
    assert get_family("gaussian", "log").default_intercept(np.r_[-1.0, 2, 3]).args == \
        (3.0, 0.0, 2.5)


def test_salamanders_like_model_uses_brms_intercept_prior():
    y = _salamander_like()
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"count": y, "site": rng.choice(list("abcdefgh"), y.size),
                       "x": rng.normal(size=y.size)})
    model = mf.Model("count ~ x + (1 | site)", df, family="poisson")
    ps = model.prior_summary()
    row = ps[ps["class"] == "Intercept"].iloc[0]
    assert row["prior"] == "student_t(3, -2.3, 2.5)"


@pytest.mark.parametrize("family,link,col", [("poisson", "identity", "y"),
                                             ("gamma", "inverse", "yg")])
def test_prior_sampling_outside_the_mean_domain_is_a_clear_error(family, link, col):
    """Issue 17 item 7: sample_prior='only' raised PyTensor's ValueError ('lam < 0')."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"y": rng.poisson(3, 60).astype(float), "yg": rng.gamma(2, 1, 60),
                       "x": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10)})
    model = mf.Model(f"{col} ~ x + (1 | g)", df, family=family, link=link,
                     priors=[mf.prior("normal(0, 1)", class_="b")])
    with pytest.raises(FamilyError, match=f"link {link!r}.*outside"):
        model.fit(sample_prior="only", draws=200, chains=2, seed=1)


@pytest.mark.parametrize("name", ["bernoulli", "binomial"])
@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_pymc_likelihood_in_log_space(name, link):
    """The sampler's likelihood, evaluated by PyMC, against scipy's latent log-cdf/log-sf:
    pm.Bernoulli(p=g⁻¹(η)) gave −∞ for y = 0 once p rounds to 1 (cloglog η > 3.6)."""
    eta = np.array([-30.0, -3.0, 0.0, 3.0, 7.49, 30.0])
    eta = np.repeat(eta, 2)
    n = 1.0 if name == "bernoulli" else 5.0
    y = np.tile([0.0, 1.0 if name == "bernoulli" else 3.0], 6)
    df = pd.DataFrame({"y": y, "x": eta, "n": n})
    formula = "y | trials(n) ~ 0 + x" if name == "binomial" else "y ~ 0 + x"
    model = mf.Model(formula, df, family=name, link=link)
    m = model.pymc_model
    point = m.initial_point()
    point["b"] = np.array([1.0]) if np.ndim(point["b"]) else np.array(1.0)
    ours = m.compile_logp(vars=m.observed_RVs, sum=False)(point)[0]
    latent = {"logit": stats.logistic, "probit": stats.norm, "cloglog": stats.gumbel_l}[link]
    lp, lq = latent.logcdf(eta), latent.logsf(eta)
    lc = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
    ref = lc + np.where(y > 0, y * lp, 0.0) + np.where(n - y > 0, (n - y) * lq, 0.0)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA", "JAX"])
@pytest.mark.parametrize("link", ["logit", "probit", "cloglog"])
def test_log_p_tensor_on_every_backend(mode, link):
    """log p, log(1 − p) and their gradient in the PyTensor backends the samplers use (C,
    numba, JAX: the JAX backend has no erfcx, so probit is built from erfc), |η| up to 60."""
    import pytensor
    import pytensor.tensor as pt
    x = pt.dvector("x")
    lp, lq = get_link(link).log_p_tensor(x)
    f = pytensor.function([x], [lp, lq, pytensor.grad(pt.sum(lp + lq), x)], mode=mode)
    eta = np.array([-60.0, -30.0, -20.0, -19.9, -5.0, -1.0, -0.99, 0.0, 3.0, 7.49, 30.0, 60.0])
    a, b, g = f(eta)
    latent = {"logit": stats.logistic, "probit": stats.norm, "cloglog": stats.gumbel_l}[link]
    np.testing.assert_allclose(a, latent.logcdf(eta), rtol=1e-9, atol=1e-300)
    np.testing.assert_allclose(b, latent.logsf(eta), rtol=1e-9, atol=1e-300)
    assert np.all(np.isfinite(g))


COUNTS = ["poisson", "negbinomial", "zero_inflated_poisson", "zero_inflated_negbinomial",
          "hurdle_poisson", "hurdle_negbinomial"]


def _count_reference(name, y, mu, p):
    """scipy.stats' log pmf in brms' parametrisation (mixtures from scipy pieces)."""
    if "negbinomial" in name:
        a = p["shape"]
        base = stats.nbinom(a, a / (a + mu))
    else:
        base = stats.poisson(mu)
    lf = base.logpmf(y)
    if name.startswith("zero_inflated"):
        zi = p["zi"]
        return np.where(y == 0, np.log(zi + (1 - zi) * base.pmf(0)), np.log1p(-zi) + lf)
    if name.startswith("hurdle"):
        hu = p["hu"]
        return np.where(y == 0, np.log(hu), np.log1p(-hu) + lf - base.logsf(0))
    return lf


@pytest.mark.parametrize("name", COUNTS)
@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_count_likelihood_with_shared_log_factorial_matches_scipy(name, mode):
    """The builder's count likelihood, whose −log y! is computed once as shared data
    (``Family.y_constant`` → ``data__y_const``) and which evaluates no check on the observed
    value per gradient: its log-density per row equals scipy.stats to 1e-9 at random points
    (y up to 60, μ from e^−4 to e^4), and (log link) its gradient equals the hand-derived
    ∂/∂η: y − μ (Poisson), a(y − μ)/(a + μ) (negative binomial), finite for the mixtures."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    from mixedformula.backends.pymc.prior_checks import with_rewrite
    rng = np.random.default_rng(zlib_crc(name))
    eta = rng.uniform(-4, 4, 50)
    y = np.r_[0.0, 1.0, 2.0, 60.0, rng.poisson(np.exp(eta[4:]) * rng.uniform(0.3, 3, 46))]
    if name.startswith("hurdle"):
        eta = np.maximum(eta, -3.0)      # scipy's logsf(0) of tiny μ rounds
    df = pd.DataFrame({"y": y, "x": eta})
    m = mf.Model("y ~ 0 + x", df, family=name).pymc_model
    assert "data__y_const" in m.named_vars
    point = m.initial_point()
    point["b"] = np.ones_like(point["b"])
    values = m.compile_fn(m.unobserved_value_vars, inputs=m.value_vars,
                          on_unused_input="ignore")(point)
    names = [v.name for v in m.unobserved_value_vars]
    dp = {d: float(values[names.index(d)]) for d in get_family(name).dpars}
    ours = m.compile_logp(vars=m.observed_RVs, sum=False)(point)[0]
    mu = np.exp(eta)
    np.testing.assert_allclose(ours, _count_reference(name, y, mu, dp), rtol=1e-9, atol=1e-9)
    # gradient with respect to η per row: the likelihood alone at η as an input
    fam = get_family(name)
    e = pt.dvector("eta")
    yc = pytensor.shared(fam.y_constant(y), name="data__y_const")
    ys = pytensor.shared(y, name="data__y")
    with pm.Model():
        v = fam.pymc_likelihood("y", e, {d: pt.as_tensor_variable(dp[d]) for d in fam.dpars},
                                ys, None, dims=None, y_const=yc)
    lp = pm.logp(v, ys)
    g = pytensor.function([e], [lp, pytensor.grad(pt.sum(lp), e)], mode=with_rewrite(mode))
    lp_e, grad = g(eta)
    np.testing.assert_allclose(lp_e, _count_reference(name, y, mu, dp), rtol=1e-9, atol=1e-9)
    assert np.all(np.isfinite(grad))
    if name == "poisson":
        np.testing.assert_allclose(grad, y - mu, rtol=1e-9, atol=1e-9)
    if name == "negbinomial":
        a = dp["shape"]
        np.testing.assert_allclose(grad, a * (y - mu) / (a + mu), rtol=1e-9, atol=1e-9)


def zlib_crc(text: str) -> int:
    import zlib
    return zlib.crc32(text.encode())
