"""brms' addition terms weights(), cens(), trunc(), se(): parsing, per-row checks, the log
CDFs against scipy.stats (extreme values too), and our PyMC model's log-density and gradient
against hand-written PyMC models (pm.Censored, pm.Truncated, pm.Potential, pm.Normal with the
known sd) with the same priors, at random points (no sampling here)."""

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
import scipy.stats as st
from scipy.special import gamma as gamma_fn
from scipy.special import gammaln

import mixedformula as mf
from mixedformula.design import design_matrices
from mixedformula.design.additions import loglik_rows
from mixedformula.engine import decide
from mixedformula.errors import DataError, FamilyError, FormulaError
from mixedformula.families.logdensity import NUMPY
from mixedformula.families.registry import get_family
from mixedformula.formula import parse
from mixedformula.results.loo import pointwise_loglik

PRIORS = [mf.prior("normal(0, 5)"), mf.prior("normal(0, 3)", class_="Intercept")]


def _data(n=40, seed=3):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"x": rng.normal(size=n), "g": rng.choice(list("abcd"), n)})
    d["y"] = np.exp(0.4 + 0.3 * d.x + 0.5 * rng.normal(size=n))
    d["w"] = rng.uniform(0.2, 3.0, n)
    d["s"] = rng.uniform(0.1, 0.6, n)
    d["c"] = rng.choice(["none", "left", "right", "interval"], n, p=[0.5, 0.15, 0.2, 0.15])
    d["y2"] = np.where(d.c == "interval", d.y + rng.uniform(0.1, 1.0, n), np.nan)
    d["k"] = rng.poisson(np.exp(1.0 + 0.3 * d.x))
    return d


# ----------------------------------------------------------------------------- parsing

def test_parse_addition_terms():
    s = parse("y | weights(w) + cens(c, y2) + trunc(lb = 0, ub = u) ~ x + (1 | g)")
    a = s.additions
    assert (a.weights, a.cens, a.cens_y2, a.lb.value, a.ub.text) == ("`w`", "c", "y2", 0.0,
                                                                      "`u`")
    assert set(s.variables) >= {"w", "c", "y2", "u"}
    s = parse("y | trials(n) + weights(w) ~ x")
    assert s.trials == "`n`" and s.additions.weights == "`w`"
    s = parse("y | se(sei, sigma = TRUE) ~ 1 + (1 | study)")
    assert s.additions.se == "`sei`" and s.additions.se_sigma
    assert not parse("y | se(sei) ~ 1").additions.se_sigma
    assert parse("y | weights(2 * w) ~ x").additions.weights == "I(2 * `w`)"


@pytest.mark.parametrize("text", [
    "y | cens(2 * c) ~ x",              # cens() takes a column name
    "y | cens('c') ~ x",
    "y | weights(w) + weights(v) ~ x",  # twice
    "y | trunc() ~ x",
    "y | trunc(lb = 3, ub = 1) ~ x",
    "y | se(s, sigma = 2) ~ x",
    "y | foo(w) ~ x",
    "y | weights(__import__) ~ x",
    "y | weights(w, z) ~ x",
])
def test_parse_refuses(text):
    with pytest.raises(FormulaError):
        parse(text)


# ----------------------------------------------------------------------------- bad input

def _raises(formula, d, *words, family=None):
    with pytest.raises((DataError, FamilyError)) as e:
        if family is None:
            design_matrices(formula, d)
        else:
            mf.Model(formula, d, family=family).built
    for w in words:
        assert w in str(e.value), str(e.value)


def test_bad_weights():
    d = _data()
    d.loc[[1, 5, 7], "w"] = [-1.0, -0.5, -2.0]
    _raises("y | weights(w) ~ x", d, "'w'" if False else "weights(w)", "negative", "3 row")
    d = _data()
    d.loc[[2, 3], "w"] = np.nan
    _raises("y | weights(w) ~ x", d, "weights(w)", "missing", "2 row")
    d = _data()
    d.loc[4, "w"] = np.inf
    _raises("y | weights(w) ~ x", d, "infinite", "1 row")


def test_bad_censoring():
    d = _data()
    d.loc[[0, 9], "c"] = "lft"
    _raises("y | cens(c, y2) ~ x", d, "'c'", "'lft'", "2 row")
    d = _data()
    d["c"] = np.where(np.arange(len(d)) < 3, 5, 0)
    _raises("y | cens(c) ~ x", d, "'c'", "3 row", "-1 left")
    d = _data()
    iv = np.nonzero((d.c == "interval").to_numpy())[0][:2]
    d.loc[iv, "y2"] = d.loc[iv, "y"] - 0.1
    _raises("y | cens(c, y2) ~ x", d, "'y2'", "2 row", "y2 > y")
    d = _data()
    d.loc[iv[0], "y2"] = np.nan
    _raises("y | cens(c, y2) ~ x", d, "'y2'", "1 row", "missing")
    _raises("y | cens(c) ~ x", _data(), "interval", "cens(c, y2)")
    d = _data()
    d.loc[3, "c"] = None
    _raises("y | cens(c, y2) ~ x", d, "'c'", "missing", "1 row")


def test_bad_truncation_and_se():
    d = _data()
    n_out = int((d.y > 2.0).sum())
    _raises("y | trunc(ub = 2) ~ x", d, f"{n_out} value(s)", "truncation bounds")
    _raises("y | trunc(lb = 1, ub = 2) ~ x", d, "truncation bounds")
    d = _data()
    d.loc[[1, 2, 3], "s"] = [0.0, -1.0, 0.0]
    _raises("y | se(s) ~ x", d, "se(s)", "<= 0", "3 row")
    d = _data()
    d.loc[6, "s"] = np.nan
    _raises("y | se(s) ~ x", d, "se(s)", "missing", "1 row")
    d = _data()
    _raises("k | se(s) ~ x", d, "se()", family="poisson")
    _raises("k | trials(n) + cens(cc) ~ x", d.assign(n=d.k + 5, cc=np.where(d.k > 3, 1, 0)),
            "cumulative distribution", family="binomial")


def test_bad_offset():
    d = _data()
    d.loc[[2, 8], "w"] = [0.0, -1.0]
    with pytest.raises(DataError, match=r"offset\(w\) is not finite in 2 row"):
        design_matrices("k ~ x + offset(log(w))", d)


def _bad(column, rows, value):
    d = _data()
    d[column] = d[column].astype(object) if isinstance(value, str) else d[column]
    d.loc[rows, column] = value
    return d


@pytest.mark.parametrize("formula,family,data,words", [
    ("y | weights(w) ~ x + (1 | g)", "gaussian", lambda: _bad("w", [1, 4], -1.0),
     ["weights(w)", "negative", "2 row"]),
    ("y | weights(w) ~ x + (1 | g)", "gaussian", lambda: _bad("w", [0, 2, 9], np.nan),
     ["weights(w)", "missing", "3 row"]),
    ("y | cens(c, y2) ~ x + (1 | g)", "lognormal", lambda: _bad("c", [3, 5], "interv"),
     ["'c'", "'interv'", "2 row"]),
    ("y | cens(c, y2) ~ x + (1 | g)", "lognormal",
     lambda: _data().assign(y2=lambda d: np.where(d.c == "interval", d.y - 0.01, np.nan)),
     ["'y2'", f"{int((_data().c == 'interval').sum())} row", "y2 > y"]),
    ("y | trunc(lb = 0.5, ub = ub) ~ x + (1 | g)", "gaussian",
     lambda: _data().assign(ub=4.0), [f"{int((_data().y < 0.5).sum())} value(s)", "'y'",
                                      "truncation bounds"]),
    ("y | se(s) ~ x + (1 | g)", "gaussian", lambda: _bad("s", [2, 3, 7, 8], 0.0),
     ["se(s)", "<= 0", "4 row"]),
    ("y | se(s, sigma = TRUE) ~ x + (1 | g)", "gaussian", lambda: _bad("s", [6], -0.2),
     ["se(s)", "<= 0", "1 row"]),
    ("k ~ x + offset(log(w)) + (1 | g)", "poisson", lambda: _bad("w", [1, 2, 3], 0.0),
     ["offset(w)", "not finite", "3 row"]),
])
def test_bad_input_is_refused_by_fit_before_compiling(formula, family, data, words):
    """The issue's bad-input checklist through mf.fit itself: each an error naming the column
    and the count of bad rows, raised while the design is read (before any model is built or
    compiled: mf.fit would otherwise take seconds), nothing dropped."""
    import time
    t0 = time.perf_counter()
    with pytest.raises(DataError) as e:
        mf.fit(formula, data(), family=family, draws=10, tune=10, chains=1)
    assert time.perf_counter() - t0 < 5.0
    for w in words:
        assert w in str(e.value), str(e.value)


def test_bad_truncation_bound_columns_are_named():
    d = _data().assign(lo=0.0, hi=50.0)
    d.loc[[2, 5], "hi"] = np.nan
    _raises("y | trunc(lb = lo, ub = hi) ~ x", d, "ub = hi", "missing", "2 row")
    d = _data().assign(lo=0.0, hi=50.0)
    d.loc[[1, 3, 4], "hi"] = -1.0
    _raises("y | trunc(lb = lo, ub = hi) ~ x", d, "lb = lo", "not below", "ub = hi", "3 row")
    # new data: the bounds are checked the same way
    spec = design_matrices("y | trunc(lb = lo, ub = hi) ~ x", _data().assign(lo=0.0, hi=50.0)).spec
    new = _data(5).assign(lo=0.0, hi=50.0)
    new.loc[[0], "hi"] = np.nan
    with pytest.raises(DataError, match=r"ub = hi is missing in 1 row\(s\) of the new data"):
        spec.transform(new)
    d = _data()
    d.loc[4, "s"] = np.inf
    _raises("y | se(s) ~ x", d, "se(s)", "infinite", "1 row")


def test_missing_response_still_drops_row_and_keeps_additions_aligned():
    d = _data()
    d.loc[0, "y"] = np.nan
    with pytest.warns(UserWarning, match="1 of 40 rows"):
        D = design_matrices("y | weights(w) ~ x", d)
    assert np.array_equal(D.weights, d.w.to_numpy()[1:])


# ----------------------------------------------------------------------------- CDFs vs scipy

@pytest.mark.parametrize("z", [-40.0, -8.0, -1.0, 0.0, 1.5, 8.0, 40.0])
def test_gaussian_log_cdf_tails(z):
    f = get_family("gaussian")
    lc, ls = f.log_cdf(NUMPY, np.array([z * 0.7 + 0.2]), np.array([0.2]), {"sigma": 0.7})
    assert lc[0] == pytest.approx(st.norm.logcdf(z), rel=1e-10, abs=1e-300)
    assert ls[0] == pytest.approx(st.norm.logsf(z), rel=1e-10, abs=1e-300)


def _accurate(log_f, other, y):
    """scipy's log F, or log1p(-(1 - F)) where F > 1/2 (scipy's logcdf rounds there)."""
    o = other(y)
    return np.where(o < 0.5, np.log1p(-o), log_f(y))


def test_log_cdfs_against_scipy():
    rng = np.random.default_rng(0)
    y = np.array([0.01, 0.3, 1.0, 2.5, 9.0, 60.0])
    eta = rng.normal(0, 0.5, y.size)
    mu = np.exp(eta)
    k, a, s, nu = 1.7, 2.3, 0.6, 3.5
    cases = {
        "student": ({"sigma": s, "nu": nu}, eta, st.t(nu, eta, s)),
        "lognormal": ({"sigma": s}, eta, st.lognorm(s, scale=np.exp(eta))),
        "gamma": ({"shape": a}, eta, st.gamma(a, scale=mu / a)),
        "weibull": ({"shape": k}, eta, st.weibull_min(k, scale=mu / gamma_fn(1 + 1 / k))),
        "exponential": ({}, eta, st.expon(scale=mu)),
    }
    for name, (p, e, ref) in cases.items():
        lc, ls = get_family(name).log_cdf(NUMPY, y, e, p)
        np.testing.assert_allclose(lc, _accurate(ref.logcdf, ref.sf, y), rtol=1e-9,
                                   atol=1e-300, err_msg=name)
        np.testing.assert_allclose(ls, _accurate(ref.logsf, ref.cdf, y), rtol=1e-9,
                                   atol=1e-300, err_msg=name)
    yk = np.array([0.0, 1.0, 3.0, 10.0, 40.0])
    ek = np.full(yk.size, 1.2)
    for name, p, ref in (("poisson", {}, st.poisson(np.exp(1.2))),
                         ("negbinomial", {"shape": a},
                          st.nbinom(a, a / (a + np.exp(1.2))))):
        lc, ls = get_family(name).log_cdf(NUMPY, yk, ek, p)
        np.testing.assert_allclose(lc, _accurate(ref.logcdf, ref.sf, yk), rtol=1e-9,
                                   err_msg=name)
        np.testing.assert_allclose(ls, _accurate(ref.logsf, ref.cdf, yk), rtol=1e-9,
                                   err_msg=name)


def test_weibull_far_right_tail_stays_finite():
    # H = (y/s)^k = 1e4: log S = -1e4 exactly (1 - F would round to 0)
    f = get_family("weibull")
    k = 2.0
    s = np.exp(0.0) / gamma_fn(1 + 1 / k)
    y = np.array([100.0 * s])
    lc, ls = f.log_cdf(NUMPY, y, np.array([0.0]), {"shape": k})
    assert ls[0] == pytest.approx(-1e4, rel=1e-12)
    assert lc[0] == 0.0 or lc[0] > -1e-300


def test_censored_truncated_weighted_loglik_against_scipy():
    d = _data()
    D = design_matrices("y | weights(w) + cens(c, y2) ~ x", d)
    f = get_family("lognormal")
    eta = 0.3 + 0.2 * d.x.to_numpy()
    sig = 0.55
    out = loglik_rows(f, D.y[:, 0], eta, {"sigma": sig}, D)
    ref = st.lognorm(sig, scale=np.exp(eta))
    y, y2, c = D.y[:, 0], d.y2.to_numpy(), d.c.to_numpy()
    want = np.where(c == "none", ref.logpdf(y), np.where(
        c == "left", ref.logcdf(y), np.where(c == "right", ref.logsf(y),
                                             np.log(ref.cdf(np.nan_to_num(y2, nan=1.0))
                                                    - ref.cdf(y)))))
    np.testing.assert_allclose(out, d.w.to_numpy() * want, rtol=1e-9)
    # truncation (continuous) and a count family (brms: lb is included: P(lb <= Y <= ub))
    D = design_matrices("y | trunc(lb = 0.5, ub = 20) ~ x", d.assign(y=np.clip(d.y, 0.5, 20)))
    out = loglik_rows(f, D.y[:, 0], eta, {"sigma": sig}, D)
    want = ref.logpdf(D.y[:, 0]) - np.log(ref.cdf(20) - ref.cdf(0.5))
    np.testing.assert_allclose(out, want, rtol=1e-9)
    dk = d.assign(k=np.clip(d.k, 1, 12))
    D = design_matrices("k | trunc(lb = 1, ub = 12) + cens(c2) ~ x",
                        dk.assign(c2=np.where(dk.k >= 5, 1, 0)))
    pois = st.poisson(np.exp(eta))
    out = loglik_rows(get_family("poisson"), D.y[:, 0], eta, {}, D)
    kk = D.y[:, 0]
    want = np.where(kk >= 5, pois.logsf(kk), pois.logpmf(kk)) - np.log(pois.cdf(12)
                                                                         - pois.cdf(0))
    np.testing.assert_allclose(out, want, rtol=1e-9)
    # se(): residual sd sqrt(se^2 + sigma^2); without sigma = TRUE sigma is 0
    D = design_matrices("y | se(s, sigma = TRUE) ~ x", d)
    out = loglik_rows(get_family("gaussian"), D.y[:, 0], eta, {"sigma": 0.3}, D)
    np.testing.assert_allclose(out, st.norm.logpdf(D.y[:, 0], eta,
                                                   np.sqrt(d.s ** 2 + 0.09)), rtol=1e-12)


# ----------------------------------------------------------------------------- vs hand PyMC

def _compare(ours: pm.Model, hand: pm.Model, seed=0, k=5, grad_rtol=1e-9):
    """log-density and gradient of two models with the same free variables, at k points."""
    assert sorted(v.name for v in ours.value_vars) == sorted(v.name for v in hand.value_vars)
    lo, ho = ours.compile_logp(), hand.compile_logp()
    gdo, gdh = ours.compile_dlogp(), hand.compile_dlogp()
    rng = np.random.default_rng(seed)
    start = ours.initial_point()
    for _ in range(k):
        pt_ = {n: np.asarray(v + rng.normal(0, 0.4, np.shape(v))) for n, v in start.items()}
        assert lo(pt_) == pytest.approx(ho(pt_), rel=1e-9, abs=1e-9)
        # the gradients are in each model's value_vars order
        go = dict(zip([v.name for v in ours.value_vars],
                      np.split(gdo(pt_), np.cumsum([np.size(pt_[v.name])
                                                    for v in ours.value_vars])[:-1])))
        gh = dict(zip([v.name for v in hand.value_vars],
                      np.split(gdh(pt_), np.cumsum([np.size(pt_[v.name])
                                                    for v in hand.value_vars])[:-1])))
        for n in go:
            np.testing.assert_allclose(go[n], gh[n], rtol=grad_rtol, atol=1e-9, err_msg=n)


def _hand_eta(d):
    X = d.x.to_numpy()
    b = pm.Normal("b", 0, 5, shape=1)
    icpt = pm.Normal("Intercept", 0, 3)
    return icpt + (X - X.mean()) * b[0]


def test_weighted_gaussian_logp_matches_potential():
    d = _data()
    ours = mf.Model("y | weights(w) ~ x", d, priors=PRIORS + [
        mf.prior("student_t(3, 0, 2.5)", class_="sigma")]).built.model
    with pm.Model() as hand:
        eta = _hand_eta(d)
        sigma = pm.HalfStudentT("sigma", nu=3, sigma=2.5)
        pm.Potential("wll", pt.sum(d.w.to_numpy() * pm.logp(pm.Normal.dist(eta, sigma),
                                                            d.y.to_numpy())))
    _compare(ours, hand)


def test_censored_weibull_logp_matches_pm_censored():
    d = _data()
    ours = mf.Model("y | cens(c, y2) ~ x", d, family="weibull", priors=PRIORS + [
        mf.prior("gamma(2, 1)", class_="shape")]).built.model
    y, y2, c = d.y.to_numpy(), d.y2.to_numpy(), d.c.to_numpy()
    with pm.Model() as hand:
        eta = _hand_eta(d)
        k = pm.Gamma("shape", 2, 1)
        scale = pt.exp(eta) / pt.exp(pt.gammaln(1 + 1 / k))
        lower = np.where(c == "left", y, -np.inf)
        upper = np.where(c == "right", y, np.inf)
        keep = c != "interval"
        pm.Censored("lr", pm.Weibull.dist(alpha=k, beta=scale[keep]), lower=lower[keep],
                    upper=upper[keep], observed=y[keep])
        iv = ~keep
        # interval (y, y2]: log(F(y2) - F(y)), F = 1 - exp(-(y/scale)^k)
        H1, H2 = (y[iv] / scale[iv]) ** k, (y2[iv] / scale[iv]) ** k
        pm.Potential("iv", pt.sum(pm.math.logdiffexp(pt.log1mexp(-H2), pt.log1mexp(-H1))))
    _compare(ours, hand)


def test_truncated_gaussian_logp_matches_pm_truncated():
    d = _data()
    d["y"] = np.clip(d.y, 0.2, 4.0)
    ours = mf.Model("y | trunc(lb = 0.2, ub = 4) ~ x", d, priors=PRIORS + [
        mf.prior("student_t(3, 0, 2.5)", class_="sigma")]).built.model
    with pm.Model() as hand:
        eta = _hand_eta(d)
        sigma = pm.HalfStudentT("sigma", nu=3, sigma=2.5)
        # pm.Truncated's normaliser (logdiffexp of PyMC's normal logcdf) is off by up to
        # 5e-8 here against scipy (ours: 1e-15), so the hand model writes Φ(b) − Φ(a) with erf
        # (no cancellation: the bounds are within a few sd of η)
        pm.Normal("yt", eta, sigma, observed=d.y.to_numpy())
        za, zb = (0.2 - eta) / sigma, (4.0 - eta) / sigma
        pm.Potential("norm", -pt.sum(pt.log(0.5 * (pt.erf(zb / np.sqrt(2))
                                                   - pt.erf(za / np.sqrt(2))))))
    _compare(ours, hand)


def test_poisson_weights_cens_trunc_logp_matches_hand():
    d = _data()
    d["k"] = np.clip(d.k, 1, 15)
    d["cc"] = np.where(d.k >= 6, "right", "none")
    ours = mf.Model("k | weights(w) + cens(cc) + trunc(lb = 1) ~ x", d, family="poisson",
                    priors=PRIORS).built.model
    k, right, w = d.k.to_numpy(), (d.cc == "right").to_numpy(), d.w.to_numpy()
    with pm.Model() as hand:
        eta = _hand_eta(d)
        mu = pt.exp(eta)
        # P(Y > k) as the sum of the pmf over j > k (j < 400 holds all the mass here)
        j = np.arange(400.0)
        logpmf = j[None, :] * eta[:, None] - mu[:, None] - pt.gammaln(j + 1.0)[None, :]
        lsf = pt.logsumexp(pt.switch(j[None, :] > k[:, None], logpmf, -np.inf), axis=1)
        own = k * eta - mu - pt.gammaln(k + 1.0)
        ll = pt.switch(right, lsf, own)                     # right: P(Y > k)
        norm = pt.log1mexp(-mu)                             # log P(Y >= 1)
        pm.Potential("ll", pt.sum(w * (ll - norm)))
    _compare(ours, hand)


@pytest.mark.parametrize("with_sigma", [False, True])
def test_se_meta_analysis_logp_matches_hand(with_sigma):
    d = _data()
    formula = "y | se(s, sigma = TRUE) ~ x" if with_sigma else "y | se(s) ~ x"
    pri = PRIORS + ([mf.prior("student_t(3, 0, 2.5)", class_="sigma")] if with_sigma else [])
    ours = mf.Model(formula, d, priors=pri).built.model
    s = d.s.to_numpy()
    with pm.Model() as hand:
        eta = _hand_eta(d)
        if with_sigma:
            sigma = pm.HalfStudentT("sigma", nu=3, sigma=2.5)
            sd = pt.sqrt(s ** 2 + sigma ** 2)
        else:
            sd = s
        pm.Normal("yy", eta, sd, observed=d.y.to_numpy())
    _compare(ours, hand)
    assert ("sigma" in [v.name for v in ours.free_RVs]) == with_sigma


def test_engine_reasons():
    d = _data()
    # weights() and se() without sigma = TRUE are exact on the marginal engine
    # (tests/test_addition_marginal.py); the others keep the conditional engine and say why
    for formula in ("y | weights(w) ~ x + (1 | g)", "y | se(s) ~ x + (1 | g)",
                    "y | weights(w) + se(s) ~ x + (1 | g)"):
        dec = decide(design_matrices(formula, d), get_family("gaussian"))
        assert dec.likelihood == "marginal" and dec.reason == "", dec
    # se(sigma = TRUE): the group effects integrated out per row (tests/test_se_sigma_marginal.py)
    # with weights() too (exact: w log N(r | m, d) = log N(r | m, d/w) + a term in sigma)
    for formula in ("y | se(s, sigma = TRUE) ~ x + (1 | g)",
                    "y | se(s, sigma = TRUE) + weights(w) ~ x + (1 | g)"):
        for likelihood in ("auto", "marginal"):
            dec = decide(design_matrices(formula, d), get_family("gaussian"),
                         likelihood=likelihood)
            assert dec.likelihood == "marginal" and dec.integrate is not None, dec
            assert "se(sigma = TRUE)" in dec.note, dec
    for formula, word in (("y | weights(w) + cens(c, y2) ~ x + (1 | g)", "cens()"),
                          ("y | cens(c, y2) ~ x + (1 | g)", "cens()"),
                          ("y | trunc(lb = 0) ~ x + (1 | g)", "trunc()")):
        dec = decide(design_matrices(formula, d), get_family("gaussian"))
        assert dec.likelihood == "conditional" and word in dec.reason, dec
        assert word in dec.note, dec
    with pytest.raises(mf.errors.MixedFormulaError, match="trunc"):
        decide(design_matrices("y | trunc(lb = 0) ~ x + (1 | g)", d),
               get_family("gaussian"), likelihood="marginal")
    dec = decide(design_matrices("y | weights(w) ~ x + (1 | g)", d), get_family("student"))
    assert dec.likelihood == "conditional" and "not Gaussian" in dec.reason
    with pytest.raises(NotImplementedError, match="addition terms"):
        mf.lmer("y | weights(w) ~ x + (1 | g)", d)


# ----------------------------------------------------------------------------- results

def test_fit_results_with_addition_terms(tmp_path):
    """One small fit: LOO's pointwise log-likelihood is w · (censored, truncated log p) as
    brms' log_lik (checked with scipy at every draw), save/load keeps the addition columns
    (y2 is missing on non-interval rows), predictions draw inside trunc() and need se()."""
    d = _data(60, seed=5)
    d["y"] = np.clip(d.y, 0.05, 20)
    fit = mf.fit("y | weights(w) + cens(c, y2) + trunc(ub = 20) ~ x", d, family="lognormal",
                 draws=100, tune=100, chains=1, seed=3, progressbar=False)
    post = fit.idata.posterior
    D = fit.design
    eta = (post["b_Intercept"].values.reshape(-1, 1)
           + post["b_x"].values.reshape(-1, 1) * D.X[:, 1][None, :])
    sig = post["sigma"].values.reshape(-1, 1)
    ref = st.lognorm(sig, scale=np.exp(eta))
    y, c = D.y[:, 0][None, :], d.c.to_numpy()[None, :]
    y2 = np.nan_to_num(d.y2.to_numpy(), nan=1.0)[None, :]
    want = np.where(c == "none", ref.logpdf(y), np.where(
        c == "left", ref.logcdf(y), np.where(c == "right", ref.logsf(y),
                                             np.log(ref.cdf(y2) - ref.cdf(y)))))
    want = d.w.to_numpy()[None, :] * (want - ref.logcdf(20.0))
    np.testing.assert_allclose(pointwise_loglik(fit), want, rtol=1e-8, atol=1e-10)
    path = tmp_path / "f.nc"
    mf.save(fit, path)
    back = mf.load(path)
    np.testing.assert_array_equal(back.design.cens.codes, D.cens.codes)
    np.testing.assert_allclose(back.design.weights, D.weights)
    draws = fit.predict(d.drop(columns=["w", "c", "y2", "y"]), kind="response", seed=1)
    assert np.all(draws <= 20.0) and np.all(draws > 0)
    # epred of a trunc() model is brms' truncated mean E[y | y <= 20] (scipy's conditional
    # expectation of the lognormal at a few draws and rows)
    ep = fit.predict(kind="epred")
    for s_, i in ((0, 0), (17, 5), (99, 59)):
        want = st.lognorm(sig[s_, 0], scale=np.exp(eta[s_, i])).expect(
            lambda v: v, lb=0, ub=20.0, conditional=True)
        assert ep[s_, i] == pytest.approx(want, rel=1e-7)
    se_fit = mf.fit("y | se(s) ~ x", d, draws=50, tune=50, chains=1, seed=3,
                    progressbar=False)
    with pytest.raises(DataError, match="se"):
        se_fit.predict(d[["x"]], kind="response")
    assert se_fit.predict(d[["x", "s"]], kind="response", seed=1).shape == (50, len(d))


@pytest.mark.parametrize("family, dist", [
    ("gaussian", lambda mu, p: st.norm(mu, p["sigma"])),
    ("student", lambda mu, p: st.t(p["nu"], mu, p["sigma"])),
    ("lognormal", lambda mu, p: st.lognorm(p["sigma"], scale=np.exp(mu))),
    ("gamma", lambda mu, p: st.gamma(p["shape"], scale=mu / p["shape"])),
    ("weibull", lambda mu, p: st.weibull_min(
        p["shape"], scale=mu / np.exp(gammaln(1 + 1 / p["shape"])))),
    ("exponential", lambda mu, p: st.expon(scale=mu)),
])
def test_truncated_mean_against_scipy(family, dist):
    """Family.truncated_mean (brms' posterior_epred of trunc() models) equals scipy's
    conditional expectation E[y | lb <= y <= ub] for one- and two-sided bounds."""
    fam = get_family(family)
    rng = np.random.default_rng(4)
    positive = family not in ("gaussian", "student")
    for _ in range(4):
        mu = float(rng.uniform(0.5, 3.0))
        p = {"sigma": float(rng.uniform(0.3, 1.5)), "nu": float(rng.uniform(2.5, 8)),
             "shape": float(rng.uniform(0.7, 4))}
        rv = dist(mu, p)
        m = rv.mean()
        for lb, ub in ((m - 0.3 * m, m + 0.8 * m), (-np.inf if not positive else 0.0, m),
                       (0.5 * m, np.inf)):
            want = rv.expect(lambda v: v, lb=lb, ub=ub, conditional=True)
            got = fam.truncated_mean(np.array([mu]), {k: np.array([v]) for k, v in p.items()},
                                     np.array([lb]), np.array([ub]))
            assert got[0] == pytest.approx(want, rel=1e-7), (family, lb, ub)
    with pytest.raises(mf.errors.FamilyError, match="truncated 'poisson'"):
        get_family("poisson").truncated_mean(np.ones(1), {}, np.zeros(1), np.ones(1) * 5)


def test_simulate_with_addition_terms():
    """mf.simulate draws as brms' posterior_predict: trunc() from the truncated distribution
    (Kolmogorov–Smirnov against scipy's truncnorm, p ≥ 0.001), se() with the residual sd
    sqrt(se² + σ²) (σ = 0 without sigma = TRUE; the χ² interval of the standardised variance
    at 0.1% per side), weights() and cens() ignored. False-failure rate ≤ 0.3% in all."""
    rng = np.random.default_rng(8)
    n = 3000
    d = pd.DataFrame({"x": rng.normal(size=n), "s": rng.uniform(0.2, 1.0, n),
                      "c": rng.choice(["none", "right"], n)})
    sim = mf.simulate("y | trunc(lb = 0, ub = 4) + cens(c) ~ x", d,
                      {"b_Intercept": 0.5, "b_x": 0.8, "sigma": 1.2})
    mu = 0.5 + 0.8 * d.x.to_numpy()
    a, b = (0 - mu) / 1.2, (4 - mu) / 1.2
    u = st.truncnorm.cdf(sim.y.to_numpy(), a, b, loc=mu, scale=1.2)  # uniform if correct
    assert st.kstest(u, "uniform").pvalue >= 1e-3
    lo, hi = st.chi2.ppf([1e-3, 1 - 1e-3], n) / n
    for formula, sigma in (("y | se(s) ~ x", 0.0), ("y | se(s, sigma = TRUE) + weights(s) ~ x",
                                                    0.5)):
        sim = mf.simulate(formula, d, {"b_Intercept": 0.5, "b_x": 0.8, "sigma": 0.5})
        z = (sim.y.to_numpy() - mu) / np.sqrt(d.s.to_numpy() ** 2 + sigma ** 2)
        assert lo <= np.mean(z ** 2) <= hi, formula


@pytest.mark.parametrize("formula", ["bf(y1 | weights(w) ~ x) + bf(y2 | cens(c) ~ x)",
                                     "mvbind(y1, y2) | se(s) ~ x"])
def test_multivariate_addition_terms_are_per_response(formula):
    """brms takes them per response (tests/test_multivariate_additions.py fits them)."""
    spec = parse(formula)
    assert spec.multivariate and len(spec.parts) == 2
    assert any(p.additions.any for p in spec.parts)
