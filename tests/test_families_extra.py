"""The families of issue 19 beyond the basic eight, against independent references.

* ``family.logpdf`` for each family × allowed link at moderate η and at extreme η (|η| up to
  30 where the link allows it), to 1e-9 (relative), against scipy.stats in brms' parametrisation;
  the zero-inflated and hurdle mixtures are built from scipy pieces exactly as brms' Stan
  functions (inst/chunks/fun_zero_inflated_*.stan, fun_hurdle_*.stan) combine them, with the
  negative binomial at extreme η from mpmath (scipy's nbinom takes p = a/(a + μ), which rounds);
* the PyMC likelihood (``family.pymc_likelihood``, evaluated by ``pm.logp``) against scipy
  directly, and its gradient finite at |η| = 30;
* mean and variance against scipy (``dist.mean/var`` and ``dist.expect`` for the truncated
  parts), draws against the mean (5 standard errors: false-failure 6e-7 per check);
* response checks, brms' default priors and bounds, the model builds.
"""

from __future__ import annotations

import zlib

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import gamma as gamma_fn, gammaln

import mixedformula as mf
from mixedformula.errors import FamilyError
from mixedformula.families import family_names, get_family
from sim import py_mode

RTOL = 1e-9
P = {"phi": 3.1, "shape": 2.3, "zi": 0.27, "hu": 0.35, "sigma": 0.8, "zoi": 0.3, "coi": 0.4,
     "ndt": 0.02, "beta": 0.9, "alpha": 2.5, "kappa": 2.3}
TRIALS = 9.0
EXTRA = ("beta", "exponential", "weibull", "zero_inflated_poisson",
         "zero_inflated_negbinomial", "zero_inflated_binomial", "zero_inflated_beta",
         "hurdle_poisson", "hurdle_negbinomial", "hurdle_lognormal", "hurdle_gamma",
         "zero_one_inflated_beta", "shifted_lognormal", "exgaussian", "skew_normal",
         "von_mises")
BASIC = ("gaussian", "student", "lognormal", "bernoulli", "binomial", "poisson", "negbinomial",
         "gamma")
LATENT = {"logit": stats.logistic, "probit": stats.norm, "cloglog": stats.gumbel_l}


#: covered by tests/test_ordinal.py and tests/test_ordinal_brms.py
ORDINAL = ("cumulative", "sratio", "cratio", "acat")
#: covered by tests/test_categorical.py
CATEGORICAL = ("categorical",)


def test_every_registered_family_is_covered():
    """tests/test_families.py covers BASIC, this file EXTRA, tests/test_ordinal.py ORDINAL:
    together every registered family."""
    assert set(family_names()) == set(BASIC) | set(EXTRA) | set(ORDINAL) | set(CATEGORICAL)


# --------------------------------------------------------------------------- references

def _unit(link, eta):
    """(μ, 1 − μ) for a link onto (0, 1), each from scipy's latent cdf / sf (no rounding)."""
    d = LATENT[link]
    return d.cdf(eta), d.sf(eta)


def _nbinom_mp(y, mu, a):
    """log NegBinomial₂(y | μ, a) and log f(0) at 50 digits."""
    mp.mp.dps = 50
    mu, a = mp.mpf(mu), mp.mpf(a)
    l0 = a * mp.log(a / (a + mu))
    out = mp.loggamma(y + a) - mp.loggamma(a) - mp.loggamma(y + 1) + l0 + \
        y * mp.log(mu / (a + mu))
    return float(out), l0


def _nb_hurdle_mp(y, mu, a, hu):
    if y == 0:
        return float(mp.log(hu))
    lf, l0 = _nbinom_mp(y, mu, a)
    return float(mp.log(1 - mp.mpf(hu)) + lf - mp.log(1 - mp.e ** l0))


def _nb_zi_mp(y, mu, a, zi):
    lf, l0 = _nbinom_mp(y, mu, a)
    zi = mp.mpf(zi)
    if y == 0:
        return float(mp.log(zi + (1 - zi) * mp.e ** l0))
    return float(mp.log(1 - zi) + lf)


def _beta_mp(y, lmu, l1mu, phi):
    """log Beta(y | μφ, (1 − μ)φ) at 50 digits from log μ, log(1 − μ) (scipy's latent
    log-cdf / log-sf), so that a (1 − μ) below 1e-308 does not underflow."""
    mp.mp.dps = 50
    a, b = phi * mp.e ** mp.mpf(lmu), phi * mp.e ** mp.mpf(l1mu)
    y = mp.mpf(y)
    return float((a - 1) * mp.log(y) + (b - 1) * mp.log(1 - y) - mp.log(mp.beta(a, b)))


def _beta_ref(link, y, eta, phi):
    lp, lq = LATENT[link].logcdf(eta), LATENT[link].logsf(eta)
    return np.vectorize(lambda yy, a, b: _beta_mp(yy, a, b, phi))(y, lp, lq)


def reference(name, link, y, eta, p=P, n=TRIALS):
    """log p(y | η, p) from scipy.stats (mpmath for the negative binomial), elementwise over
    the broadcast of y (column) and η (row)."""
    y, eta = np.broadcast_arrays(np.asarray(y, dtype=float), np.asarray(eta, dtype=float))
    fam = get_family(name, link)
    mu = fam.inverse_link(eta)
    zero = y == 0
    if name == "beta":
        m, q = _unit(link, eta)
        if np.all(m * q > 1e-300):
            return stats.beta.logpdf(y, m * p["phi"], q * p["phi"])
        return _beta_ref(link, y, eta, p["phi"])
    if name == "exponential":
        return stats.expon.logpdf(y, scale=mu)
    if name == "weibull":
        k = p["shape"]
        return stats.weibull_min.logpdf(y, k, scale=mu / gamma_fn(1 + 1 / k))
    if name == "zero_inflated_poisson":
        zi = p["zi"]
        return np.where(zero, np.log(zi + (1 - zi) * stats.poisson.pmf(0, mu)),
                        np.log1p(-zi) + stats.poisson.logpmf(y, mu))
    if name in ("zero_inflated_negbinomial", "hurdle_negbinomial"):
        f = _nb_zi_mp if name.startswith("zero") else _nb_hurdle_mp
        w = p["zi"] if name.startswith("zero") else p["hu"]
        return np.vectorize(lambda yy, mm: f(yy, mm, p["shape"], w))(y, mu)
    if name == "zero_inflated_binomial":
        zi = p["zi"]
        lp, lq = LATENT[link].logcdf(eta), LATENT[link].logsf(eta)
        lc = gammaln(n + 1) - gammaln(y + 1) - gammaln(n - y + 1)
        lf = lc + y * lp + (n - y) * lq
        return np.where(zero, np.logaddexp(np.log(zi), np.log1p(-zi) + n * lq),
                        np.log1p(-zi) + lf)
    if name == "zero_inflated_beta":
        m, q = _unit(link, eta)
        yy = np.where(zero, 0.5, y)
        lb = stats.beta.logpdf(yy, m * p["phi"], q * p["phi"]) if np.all(m * q > 1e-300) \
            else _beta_ref(link, yy, eta, p["phi"])
        return np.where(zero, np.log(p["zi"]), np.log1p(-p["zi"]) + lb)
    if name == "zero_one_inflated_beta":
        m, q = _unit(link, eta)
        edge = (y == 0) | (y == 1)
        yy = np.where(edge, 0.5, y)
        lb = stats.beta.logpdf(yy, m * p["phi"], q * p["phi"]) if np.all(m * q > 1e-300) \
            else _beta_ref(link, yy, eta, p["phi"])
        zoi, coi = p["zoi"], p["coi"]
        return np.where(y == 0, np.log(zoi * (1 - coi)),
                        np.where(y == 1, np.log(zoi * coi), np.log1p(-zoi) + lb))
    if name == "shifted_lognormal":
        return stats.lognorm.logpdf(y - p["ndt"], p["sigma"], scale=np.exp(mu))
    if name == "von_mises":
        return stats.vonmises.logpdf(y, p["kappa"], loc=mu)
    if name == "exgaussian":
        b, s = p["beta"], p["sigma"]
        return stats.exponnorm.logpdf(y, b / s, loc=mu - b, scale=s)
    if name == "skew_normal":
        a, s = p["alpha"], p["sigma"]
        delta = a / np.sqrt(1 + a * a)
        omega = s / np.sqrt(1 - 2 / np.pi * delta ** 2)
        return stats.skewnorm.logpdf(y, a, loc=mu - omega * delta * np.sqrt(2 / np.pi),
                                     scale=omega)
    hu = p["hu"]
    if name == "hurdle_poisson":
        pos = np.log1p(-hu) + stats.poisson.logpmf(y, mu) - stats.poisson.logsf(0, mu)
    elif name == "hurdle_lognormal":
        pos = np.log1p(-hu) + stats.lognorm.logpdf(np.where(zero, 1, y), p["sigma"],
                                                   scale=np.exp(mu))
    elif name == "hurdle_gamma":
        a = p["shape"]
        pos = np.log1p(-hu) + stats.gamma.logpdf(np.where(zero, 1, y), a, scale=mu / a)
    else:
        raise AssertionError(name)
    return np.where(zero, np.log(hu), pos)


def responses(name):
    if name in ("beta",):
        return np.array([1e-6, 0.02, 0.31, 0.77, 0.999])
    if name == "zero_inflated_beta":
        return np.array([0.0, 0.02, 0.31, 0.77, 0.999])
    if name == "zero_one_inflated_beta":
        return np.array([0.0, 0.02, 0.31, 0.999, 1.0])
    if name == "shifted_lognormal":
        return np.array([0.05, 0.5, 1.0, 2.7, 40.0])
    if name in ("exgaussian", "skew_normal"):
        return np.array([-3.2, -0.4, 0.0, 1.1, 7.5])
    if name == "von_mises":
        return np.array([-3.1, -1.0, 0.0, 0.5, 3.1])
    if name in ("exponential", "weibull"):
        return np.array([0.03, 0.5, 1.0, 2.7, 40.0])
    if name in ("hurdle_lognormal", "hurdle_gamma"):
        return np.array([0.0, 0.03, 0.5, 2.7, 40.0])
    if name == "zero_inflated_binomial":
        return np.array([0.0, 1.0, 4.0, 8.0, 9.0])
    return np.array([0.0, 1.0, 3.0, 17.0, 250.0])


def moderate_eta(name, link):
    if link in ("identity", "sqrt", "inverse") and name not in (
            "hurdle_lognormal", "shifted_lognormal", "exgaussian", "skew_normal", "von_mises"):
        return np.array([0.05, 0.4, 1.0, 2.5, 9.0])
    if link == "inverse":
        return np.array([-2.0, -0.3, 0.2, 1.0, 4.0])
    return np.array([-4.0, -1.3, 0.0, 0.7, 1.9])


EXTREME = np.array([-30.0, -12.0, 12.0, 30.0])
CASES = [(name, link) for name in EXTRA for link in get_family(name).allowed_links]


@pytest.mark.parametrize("name,link", CASES)
def test_logpdf_matches_scipy(name, link):
    fam = get_family(name, link)
    y = responses(name)[:, None]
    eta = moderate_eta(name, link)[None, :]
    ours = fam.logpdf(y, eta, P, trials=TRIALS)
    ref = reference(name, link, y, eta)
    assert np.all(np.isfinite(ref))
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("name,link", [c for c in CASES if c[1] in ("log", "logit", "probit",
                                                                      "cloglog", "tan_half")])
def test_logpdf_extreme_eta(name, link):
    fam = get_family(name, link)
    y = responses(name)[:, None]
    eta = EXTREME[None, :]
    ours = fam.logpdf(y, eta, P, trials=TRIALS)
    assert np.all(np.isfinite(ours))
    np.testing.assert_allclose(ours, reference(name, link, y, eta), rtol=RTOL, atol=1e-12)


def test_per_row_zero_inflation():
    """zi (and hu) may be one value per row: the density is the same as row by row."""
    y = np.array([0.0, 0.0, 3.0, 5.0])
    eta = np.array([0.3, -1.0, 1.2, 2.0])
    zi = np.array([0.1, 0.5, 0.2, 0.9])
    for name, key in (("zero_inflated_poisson", "zi"), ("hurdle_poisson", "hu")):
        fam = get_family(name)
        ours = fam.logpdf(y, eta, {key: zi})
        ref = [reference(name, "log", y[i], eta[i], {key: zi[i]})[()] for i in range(4)]
        np.testing.assert_allclose(ours, ref, rtol=RTOL)
        # the sampler's likelihood takes the same (n,) vector
        import pymc as pm
        import pytensor.tensor as pt
        with pm.Model():
            v = fam.pymc_likelihood("y", pt.as_tensor_variable(eta), {key: zi}, y, dims=None)
        np.testing.assert_allclose(pm.logp(v, y).eval(), ref, rtol=RTOL)


# --------------------------------------------------------------------------- PyMC likelihood

def _pymc_logp(name, link, y, eta, p):
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    fam = get_family(name, link)
    e = pt.dvector("eta")
    with pm.Model():
        v = fam.pymc_likelihood("y", e, {d: pt.as_tensor_variable(float(p[d]))
                                         for d in fam.dpars},
                                y, trials=np.full(y.shape, TRIALS) if fam.uses_trials
                                else None, dims=None)
    lp = pm.logp(v, y)
    f = pytensor.function([e], [lp, pytensor.grad(pt.sum(lp), e)])
    return f(eta)


@pytest.mark.parametrize("name,link", CASES)
def test_pymc_likelihood_matches_scipy(name, link):
    """The sampler's likelihood at random points (y from the family's support, η moderate and
    extreme where the link allows) against scipy directly, and its gradient finite."""
    rng = np.random.default_rng(zlib.crc32(f"{name}/{link}".encode()))
    ys = responses(name)
    etas = moderate_eta(name, link)
    if link in ("log", "logit", "probit", "cloglog", "tan_half"):
        etas = np.r_[etas, EXTREME]
    y = rng.choice(ys, 40)
    eta = rng.choice(etas, 40)
    y[:len(ys)] = ys                     # every response value at least once
    lp, grad = _pymc_logp(name, link, y, eta, P)
    ref = reference(name, link, y, eta)
    np.testing.assert_allclose(lp, ref, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(lp, get_family(name, link).logpdf(y, eta, P, TRIALS),
                               rtol=1e-12, atol=1e-12)
    assert np.all(np.isfinite(grad))


# --------------------------------------------------------------------------- moments, draws

def _truncated(dist):
    """(E y, E y²) of a count distribution given y ≥ 1, by scipy's summation."""
    return (dist.expect(lambda k: k, lb=1, conditional=True),
            dist.expect(lambda k: k * k, lb=1, conditional=True))


def moments(name, mu, p=P, n=TRIALS):
    """(E y, Var y) from scipy.stats pieces."""
    if name == "beta":
        d = stats.beta(mu * p["phi"], (1 - mu) * p["phi"])
        return d.mean(), d.var()
    if name == "exponential":
        d = stats.expon(scale=mu)
        return d.mean(), d.var()
    if name == "weibull":
        k = p["shape"]
        d = stats.weibull_min(k, scale=mu / gamma_fn(1 + 1 / k))
        return d.mean(), d.var()
    if name.startswith("zero_inflated"):
        zi = p["zi"]
        a = p["shape"]
        d = {"zero_inflated_poisson": stats.poisson(mu),
             "zero_inflated_negbinomial": stats.nbinom(a, a / (a + mu)),
             "zero_inflated_binomial": stats.binom(n, mu),
             "zero_inflated_beta": stats.beta(mu * p["phi"], (1 - mu) * p["phi"])}[name]
        m, v = d.mean(), d.var()
        e1, e2 = (1 - zi) * m, (1 - zi) * (v + m * m)
        return e1, e2 - e1 ** 2
    if name == "zero_one_inflated_beta":
        d = stats.beta(mu * p["phi"], (1 - mu) * p["phi"])
        zoi, coi = p["zoi"], p["coi"]
        e1 = zoi * coi + (1 - zoi) * d.mean()
        e2 = zoi * coi + (1 - zoi) * (d.var() + d.mean() ** 2)
        return e1, e2 - e1 ** 2
    if name in ("shifted_lognormal", "exgaussian", "skew_normal"):
        a, s, b = p["alpha"], p["sigma"], p["beta"]
        if name == "shifted_lognormal":
            d = stats.lognorm(s, loc=p["ndt"], scale=np.exp(mu))
        elif name == "exgaussian":
            d = stats.exponnorm(b / s, loc=mu - b, scale=s)
        else:
            delta = a / np.sqrt(1 + a * a)
            omega = s / np.sqrt(1 - 2 / np.pi * delta ** 2)
            d = stats.skewnorm(a, loc=mu - omega * delta * np.sqrt(2 / np.pi), scale=omega)
        return d.mean(), d.var()
    hu = p["hu"]
    a = p["shape"]
    if name in ("hurdle_poisson", "hurdle_negbinomial"):
        d = stats.poisson(mu) if name == "hurdle_poisson" else stats.nbinom(a, a / (a + mu))
        t1, t2 = _truncated(d)
    else:
        d = stats.lognorm(p["sigma"], scale=np.exp(mu)) if name == "hurdle_lognormal" \
            else stats.gamma(a, scale=mu / a)
        t1, t2 = d.mean(), d.var() + d.mean() ** 2
    e1, e2 = (1 - hu) * t1, (1 - hu) * t2
    return e1, e2 - e1 ** 2


def test_von_mises_mean_and_draws():
    """E y = μ (brms' epred: the circular mean); draws: the mean resultant vector of 40 000
    draws, (mean cos(y − μ), mean sin(y − μ)), within 5 standard errors of (I₁(κ)/I₀(κ), 0)
    (scipy.special.i1e / i0e; false-failure probability < 2e-6 for a correct sampler)."""
    from scipy.special import i0e, i1e
    fam = get_family("von_mises")
    k, mu = P["kappa"], 1.7
    assert fam.mean(np.array([mu]), P)[0] == mu
    y = fam.rvs(np.full(40_000, mu), P, np.random.default_rng(0))
    c, s_ = np.cos(y - mu), np.sin(y - mu)
    assert abs(c.mean() - i1e(k) / i0e(k)) < 5 * c.std() / np.sqrt(y.size)
    assert abs(s_.mean()) < 5 * s_.std() / np.sqrt(y.size)
    fam.check_response(y, None, "y")
    with pytest.raises(FamilyError, match="variance of an angle"):
        fam.variance(np.array([mu]), P)


@pytest.mark.parametrize("name", [n for n in EXTRA if n != "von_mises"])
def test_mean_variance_and_draws_agree_with_scipy(name):
    fam = get_family(name)
    mu = 0.3 if fam.mu_domain == (0.0, 1.0) else 1.7
    if name == "hurdle_lognormal":
        mu = 0.4
    m_ref, v_ref = moments(name, mu)
    m = fam.mean(np.array([mu]), P, TRIALS)[0]
    v = fam.variance(np.array([mu]), P, TRIALS)[0]
    np.testing.assert_allclose(m, m_ref, rtol=1e-9)
    np.testing.assert_allclose(v, v_ref, rtol=1e-9)
    # draws: the sample mean of 40 000 draws within 5 standard errors of the mean and the share
    # of zeros within 5 standard errors of p(0) (false-failure probability < 2e-6 together for
    # a correct sampler; every variance here is finite)
    rng = np.random.default_rng(0)
    y = fam.rvs(np.full(40_000, mu), P, rng, np.full(40_000, TRIALS))
    assert abs(y.mean() - m_ref) < 5 * np.sqrt(v_ref / y.size)
    p0 = np.exp(fam.logpdf(np.array(0.0), fam.link_fn(np.array(mu)), P, TRIALS)) \
        if name not in ("beta", "exponential", "weibull", "shifted_lognormal", "exgaussian",
                        "skew_normal") else 0.0
    if name == "zero_inflated_beta":
        p0 = P["zi"]
    share = np.mean(y == 0)
    assert abs(share - p0) <= 5 * np.sqrt(max(p0 * (1 - p0), 1e-12) / y.size)
    fam.check_response(y, np.full(y.size, TRIALS) if fam.uses_trials else None, "y")


def test_hurdle_mean_is_brms_epred():
    """brms' posterior_epred: hurdle_poisson (1 − hu) μ/(1 − e^{−μ}); hurdle_negbinomial
    (1 − hu) μ/(1 − (a/(a + μ))^a); zero_inflated_poisson (1 − zi) μ (hand values)."""
    mu = np.array([0.5, 3.0])
    np.testing.assert_allclose(get_family("hurdle_poisson").mean(mu, {"hu": 0.2}),
                               0.8 * mu / (1 - np.exp(-mu)), rtol=1e-12)
    a = 2.0
    np.testing.assert_allclose(
        get_family("hurdle_negbinomial").mean(mu, {"hu": 0.2, "shape": a}),
        0.8 * mu / (1 - (a / (a + mu)) ** a), rtol=1e-12)
    np.testing.assert_allclose(get_family("zero_inflated_poisson").mean(mu, {"zi": 0.3}),
                               0.7 * mu, rtol=1e-12)


# --------------------------------------------------------------------------- checks, priors

@pytest.mark.parametrize("family,y,msg", [
    ("beta", [0.2, 0.0, 0.5, 0.4], "strictly between 0 and 1"),
    ("beta", [0.2, 1.0, 0.5, 0.4], "strictly between 0 and 1"),
    ("zero_inflated_beta", [0.2, 1.0, 0.0, 0.4], r"\[0, 1\)"),
    ("exponential", [1.0, 0.0, 2.0, 3.0], "positive"),
    ("weibull", [1.0, -2.0, 2.0, 3.0], "positive"),
    ("zero_inflated_poisson", [0, -1, 2, 1], "non-negative whole counts"),
    ("zero_inflated_negbinomial", [0, 1.5, 2, 1], "non-negative whole counts"),
    ("hurdle_poisson", [0, 2.5, 2, 1], "non-negative whole counts"),
    ("hurdle_negbinomial", [0, -3, 2, 1], "non-negative whole counts"),
    ("hurdle_gamma", [0, -3, 2, 1], "non-negative"),
    ("hurdle_lognormal", [0, -0.1, 2, 1], "non-negative"),
    ("zero_one_inflated_beta", [0, 1, 1.2, 0.5], r"\[0, 1\]"),
    ("zero_one_inflated_beta", [0, 1, -0.1, 0.5], r"\[0, 1\]"),
    ("shifted_lognormal", [0.5, 0.0, 2, 1], "positive"),
    ("von_mises", [0.5, 4.0, 2, 1], r"angles in \[-pi, pi\]"),
])
def test_impossible_response_is_refused_before_sampling(family, y, msg):
    df = pd.DataFrame({"y": y, "x": [0.1, 0.2, 0.3, 0.4], "g": list("aabb")})
    with pytest.raises(FamilyError, match=msg):
        mf.Model("y ~ x + (1 | g)", df, family=family).pymc_model


def test_zero_inflated_binomial_needs_trials():
    df = pd.DataFrame({"y": [1, 2, 0, 3], "n": [3, 3, 3, 3], "x": [0.1, 0.2, 0.3, 0.4],
                       "g": list("aabb")})
    with pytest.raises(FamilyError, match="trials"):
        mf.Model("y ~ x + (1 | g)", df, family="zero_inflated_binomial").pymc_model
    df.loc[0, "y"] = 4
    with pytest.raises(FamilyError, match="no larger than trials"):
        mf.Model("y | trials(n) ~ x + (1 | g)", df, family="zero_inflated_binomial").pymc_model


def test_default_priors_are_brms():
    """brms R/priors.R (def_dprior): phi, shape gamma(0.01, 0.01); zi, hu beta(1, 1); bounds
    phi, shape > 0, zi, hu in (0, 1)."""
    want = {"phi": ("gamma", (0.01, 0.01)), "shape": ("gamma", (0.01, 0.01)),
            "zi": ("beta", (1.0, 1.0)), "hu": ("beta", (1.0, 1.0)),
            "zoi": ("beta", (1.0, 1.0)), "coi": ("beta", (1.0, 1.0)),
            "beta": ("gamma", (1.0, 0.1)), "alpha": ("normal", (0.0, 4.0)),
            "kappa": ("gamma", (2.0, 0.01))}
    for name in EXTRA:
        fam = get_family(name)
        for d in fam.dpars:
            if d in want:
                pr = fam.default_prior(d)
                assert (pr.dist, pr.args) == want[d], (name, d)
                assert fam.dpar_bounds(d) == ((0.0, 1.0) if d in ("zi", "hu", "zoi", "coi")
                                              else (None, None) if d == "alpha"
                                              else (0.0, None))


def test_shifted_lognormal_ndt_is_below_the_smallest_response():
    """brms: ndt ~ uniform(0, min_Y) with upper bound min_Y; y ≤ ndt has density 0."""
    fam = get_family("shifted_lognormal")
    y = np.array([0.41, 0.3, 1.2])
    pr = fam.default_prior("ndt", y)
    assert (pr.dist, pr.args) == ("uniform", (0.0, 0.3))
    assert fam.dpar_bounds("ndt", y) == (0.0, 0.3)
    assert fam.logpdf(np.array([0.2, 0.3]), np.array(0.0), {"sigma": 1.0, "ndt": 0.3})[0] \
        == -np.inf
    df = pd.DataFrame({"y": np.r_[y, 2.0], "x": [0.1, 0.2, 0.3, 0.4], "g": list("aabb")})
    model = mf.Model("y ~ x + (1 | g)", df, family="shifted_lognormal")
    ps = model.prior_summary()
    assert ps.loc[ps["class"] == "ndt", "prior"].iloc[0] == "uniform(0, 0.3)"
    # a user prior is truncated to (0, min y); a uniform reaching beyond it is refused
    m2 = mf.Model("y ~ x + (1 | g)", df, family="shifted_lognormal",
                  priors=[mf.prior("normal(0.1, 0.1)", class_="ndt")])
    assert np.isfinite(m2.pymc_model.compile_logp(mode=py_mode())(m2.pymc_model.initial_point()))
    with pytest.raises(Exception, match="outside the parameter's bounds"):
        mf.Model("y ~ x + (1 | g)", df, family="shifted_lognormal",
                 priors=[mf.prior("uniform(0, 1)", class_="ndt")]).pymc_model


def test_every_new_family_builds():
    rng = np.random.default_rng(0)
    n = 40
    df = pd.DataFrame({"x": rng.normal(size=n), "g": np.repeat(list("abcd"), 10), "n": 5})
    df["yc"] = rng.poisson(2, size=n).astype(float)
    df["yp"] = rng.gamma(2, 1, size=n)
    df["yu"] = rng.beta(2, 3, size=n)
    df["yz"] = np.where(df.yc == 0, 0.0, df.yp)
    df["yu0"] = np.where(df.yc == 0, 0.0, df.yu)
    df["yk"] = np.minimum(df.yc, 5)
    df["yu01"] = np.where(df.yc == 0, 0.0, np.where(df.yc > 3, 1.0, df.yu))
    col = {"beta": "yu", "exponential": "yp", "weibull": "yp", "zero_inflated_beta": "yu0",
           "hurdle_lognormal": "yz", "hurdle_gamma": "yz", "zero_one_inflated_beta": "yu01",
           "shifted_lognormal": "yp", "exgaussian": "yp", "skew_normal": "yp",
           "von_mises": "ya"}
    df["ya"] = rng.vonmises(0.5, 2.0, size=n)
    for fam in EXTRA:
        c = col.get(fam, "yc")
        f = f"{'yk | trials(n)' if fam == 'zero_inflated_binomial' else c} ~ x + (1 | g)"
        m = mf.Model(f, df, family=fam)
        pm_model = m.pymc_model
        logp = pm_model.compile_logp(mode=py_mode())(pm_model.initial_point())
        assert np.isfinite(logp), fam
        free = {v.name for v in pm_model.free_RVs}
        assert set(get_family(fam).dpars) <= free, fam
        ps = m.prior_summary()
        for d in get_family(fam).dpars:
            assert (ps["class"] == d).sum() == 1, (fam, d)


# --------------------------------------------------------------------------- recovery fits

def _groups_data(seed, n_groups=40, n_per=10):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n_groups * n_per),
                         "g": np.repeat([f"s{j:02d}" for j in range(n_groups)], n_per)})


RECOVERY = {
    "beta": {"b_Intercept": 0.3, "b_x": 0.5, "sd_g__Intercept": 0.5, "sd_g__x": 0.3,
             "cor_g__Intercept__x": 0.3, "phi": 8.0},
    "weibull": {"b_Intercept": 1.0, "b_x": 0.4, "sd_g__Intercept": 0.4, "sd_g__x": 0.25,
                "cor_g__Intercept__x": 0.3, "shape": 2.0},
    "zero_inflated_poisson": {"b_Intercept": 1.0, "b_x": 0.4, "sd_g__Intercept": 0.5,
                              "sd_g__x": 0.3, "cor_g__Intercept__x": 0.3, "zi": 0.25},
    "hurdle_poisson": {"b_Intercept": 1.0, "b_x": 0.4, "sd_g__Intercept": 0.5,
                       "sd_g__x": 0.3, "cor_g__Intercept__x": 0.3, "hu": 0.3},
    "exgaussian": {"b_Intercept": 1.0, "b_x": 0.5, "sd_g__Intercept": 0.5, "sd_g__x": 0.3,
                   "cor_g__Intercept__x": 0.3, "sigma": 0.4, "beta": 0.8},
}
#: the further parameter's row and the expected value brms' posterior_epred gives
EPRED = {
    "beta": lambda post, eta: 1 / (1 + np.exp(-eta)),
    "weibull": lambda post, eta: np.exp(eta),
    "zero_inflated_poisson": lambda post, eta: (1 - post["zi"][:, None]) * np.exp(eta),
    "hurdle_poisson": lambda post, eta: (1 - post["hu"][:, None]) * np.exp(eta)
    / -np.expm1(-np.exp(eta)),
    "exgaussian": lambda post, eta: eta,
}


@pytest.mark.parametrize("name", list(RECOVERY))
def test_recovery_with_correlated_group_effects(name):
    """``y ~ x + (1 + x | g)``, 40 groups × 10 rows simulated at RECOVERY[name]; its 6 (7)
    truths in family-wise intervals: false-failure rate ≤ 1% for any seed (Bonferroni over
    k = 6 (7), each at 1 − 0.01/k, z_crit ≈ 3.14 (3.19) posterior sd on the
    log/logit/atanh/identity scale (sim.unconstrained), widened by
    the Monte-Carlo error of z; sim.familywise_misses). The truths are fixed, so calibration
    is approximate (Bernstein–von Mises with 400 rows and 40 groups).

    The same fit checks that the results layer works through the family object:
    ``predict(kind="epred", re_formula="~0")`` equals brms' posterior_epred computed by hand
    from the draws (e.g. (1 − zi) exp(η) for ZIP), ``loo()`` gives a finite elpd over the 400
    rows, and the summary lists the further parameter under "Further Distributional
    Parameters" with the link line ``mu = <link>; <dpar> = identity``."""
    from sim import familywise_misses, seeds
    data_seed, sim_seed, fit_seed = seeds(f"families_extra_{name}", 21, 22, 23)
    truth = RECOVERY[name]
    formula = "y ~ x + (1 + x | g)"
    df = mf.simulate(formula, _groups_data(data_seed), truth, family=name, seed=sim_seed)
    fit = mf.fit(formula, df, family=name, draws=400, tune=400, chains=2, seed=fit_seed,
                 progressbar=False)
    post = fit.idata.posterior
    assert familywise_misses(post, truth) == {}

    ep = fit.predict(df.iloc[:5], kind="epred", re_formula="~0")
    flat = {k: post[k].values.reshape(-1) for k in ("b_Intercept", "b_x", *get_family(
        name).dpars)}
    eta = flat["b_Intercept"][:, None] + flat["b_x"][:, None] * df["x"].to_numpy()[None, :5]
    np.testing.assert_allclose(ep, EPRED[name](flat, eta), rtol=1e-10)

    loo = fit.loo()
    assert np.isfinite(loo.elpd) and loo.unit == "observation"
    s = fit.summary()
    dpar = get_family(name).dpars[0]
    assert dpar in s.spec_pars.index
    assert f"{dpar} = identity" in s.links[0]
    assert dpar in str(s)


def test_cli_offers_the_new_families(tmp_path, capsys):
    """``--family`` lists every registered family; a response the family cannot produce is a
    one-line error (exit 2) before any sampling."""
    from mixedformula.cli import build_parser, main
    text = " ".join(build_parser().format_help().split())
    sub = " ".join(build_parser()._subparsers._group_actions[0].choices["fit"]
                   .format_help().split())
    for name in EXTRA:
        assert name in sub or name in text, name
    csv = tmp_path / "d.csv"
    pd.DataFrame({"y": [0.2, 0.0, 0.5, 0.4], "x": [0.1, 0.2, 0.3, 0.4],
                  "g": list("aabb")}).to_csv(csv, index=False)
    rc = main(["fit", str(csv), "y ~ x + (1 | g)", "--family", "beta"])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and "strictly between 0 and 1" in errors[0]
