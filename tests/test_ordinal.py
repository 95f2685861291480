"""The ordinal families (cumulative, sratio, cratio, acat) against independent references.

* log P(y = k) of every family × link against a literal transcription of the Stan functions
  brms 2.18 generates (``cumulative_<link>_lpmf``, ``sratio_<link>_lpmf``, ... : the loops
  over thresholds, in probabilities) evaluated with mpmath at 60 digits, every 1 − F written as the link's survival function
  S so that no probability is rounded, for η and thresholds
  up to |30|, to 1e-9;
* the sampler's likelihood (``pm.logp`` of ``family.pymc_likelihood``) against the same
  reference, with a finite gradient at |η| = 30;
* draws against the probabilities; response checks with clear errors.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import FamilyError
from mixedformula.families import get_family

ORDINAL = ("cumulative", "sratio", "cratio", "acat")
LINKS = ("logit", "probit", "cloglog")
CASES = [(f, lk) for f in ORDINAL for lk in LINKS]


# --------------------------------------------------------------------------- reference

def _F(link, x):
    x = mp.mpf(x)
    if link == "logit":
        return 1 / (1 + mp.exp(-x))
    if link == "probit":
        return mp.ncdf(x)
    return -mp.expm1(-mp.exp(x))          # cloglog


def _S(link, x):
    """1 − F(x), written out per link (mpmath's exponent range keeps e^(−e^30) exact)."""
    x = mp.mpf(x)
    if link == "logit":
        return 1 / (1 + mp.exp(x))
    if link == "probit":
        return mp.ncdf(-x)
    return mp.exp(-mp.exp(x))


def brms_lpmf(family, link, y, mu, thres, disc=1.0):
    """brms 2.18's generated Stan function for one response, transcribed with mpmath."""
    mp.mp.dps = 60
    n = len(thres)
    th = [mp.mpf(t) for t in thres]
    mu, disc = mp.mpf(mu), mp.mpf(disc)
    if family == "cumulative":
        if y == 1:
            return mp.log(_F(link, disc * (th[0] - mu)))
        if y == n + 1:
            return mp.log(_S(link, disc * (th[n - 1] - mu)))
        u, l = disc * (th[y - 1] - mu), disc * (th[y - 2] - mu)
        if u + l > 0:          # F(u) − F(l) = S(l) − S(u)
            return mp.log(_S(link, l) - _S(link, u))
        return mp.log(_F(link, u) - _F(link, l))
    if family in ("sratio", "cratio"):
        # sratio: q[k] = log(1 - F(disc (thres[k] - mu))); cratio: q[k] = log F(disc (mu - thres[k]))
        q, p = [], []
        for k in range(min(y, n)):
            if family == "sratio":
                z = disc * (th[k] - mu)
                q.append(mp.log(_S(link, z)))
                pk = mp.log(_F(link, z))            # log1m_exp(q[k])
            else:
                z = disc * (mu - th[k])
                q.append(mp.log(_F(link, z)))
                pk = mp.log(_S(link, z))            # log1m_exp(q[k])
            for kk in range(k):
                pk += q[kk]
            p.append(pk)
        if y == n + 1:
            return mp.fsum(q)
        return p[y - 1]
    # acat: logit p = append_row(0, cumulative_sum(disc * (mu - thres))); other links:
    # q[k] = F(disc (mu - thres[k])), p[k] = prod(q[1:k-1]) prod(1 - q[k:n])
    if link == "logit":
        p = [mp.mpf(0)]
        for k in range(n):
            p.append(p[-1] + disc * (mu - th[k]))
        return p[y - 1] - mp.log(mp.fsum(mp.exp(v) for v in p))
    q = [_F(link, disc * (mu - th[k])) for k in range(n)]
    s = [_S(link, disc * (mu - th[k])) for k in range(n)]      # 1 - q
    p = []
    for k in range(n + 1):
        v = mp.mpf(1)
        for kk in range(k):
            v *= q[kk]
        for kk in range(k, n):
            v *= s[kk]
        p.append(v)
    return mp.log(p[y - 1]) - mp.log(mp.fsum(p))


THRES = [np.array([-1.3, 0.2, 1.9]), np.array([-25.0, -3.0, 4.0, 28.0]), np.array([0.5])]
ETAS = np.array([-30.0, -12.0, -2.5, 0.0, 0.7, 3.0, 12.0, 30.0])
DISC_ROWS = np.exp(np.array([0.0, -0.7, 0.4, 1.2, -1.5, 0.9, -0.2, 0.3]))   # one per η


@pytest.mark.parametrize("name,link", CASES)
def test_log_probs_match_brms_stan_functions(name, link):
    fam = get_family(name, link)
    for thres in THRES:
        K = len(thres) + 1
        # disc 1, a constant, and one value per row (a `disc ~ z` formula: exp(η_disc))
        for disc in (1.0, 0.6, DISC_ROWS):
            lp = fam.log_probs(ETAS, {"thres": thres, "disc": disc})
            assert lp.shape == (len(ETAS), K)
            for i, eta in enumerate(ETAS):
                d = disc[i] if np.ndim(disc) else disc
                ref = [float(brms_lpmf(name, link, y, eta, thres, d)) for y in range(1, K + 1)]
                np.testing.assert_allclose(lp[i], ref, rtol=1e-9, atol=1e-12,
                                           err_msg=f"eta={eta}, thres={thres}, disc={disc}")
            y = np.arange(len(ETAS)) % K + 1
            np.testing.assert_allclose(fam.logpdf(y, ETAS, {"thres": thres, "disc": disc}),
                                       lp[np.arange(len(ETAS)), y - 1], rtol=1e-12)


@pytest.mark.parametrize("name,link", CASES)
def test_pymc_likelihood_matches_reference_and_has_finite_gradient(name, link):
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    fam = get_family(name, link)
    thres = np.array([-2.0, 0.3, 1.1, 2.5])
    y = np.array([1, 2, 3, 4, 5, 5, 1, 3], dtype=float)
    with pm.Model():
        eta = pt.dvector("eta")
        th = pt.dvector("th")
        rv = fam.pymc_likelihood("y", eta, {"thres": th}, y, dims=None)
        lp = pm.logp(rv, y)
        f = pytensor.function([eta, th], [lp, pt.grad(lp.sum(), eta),
                                          pt.grad(lp.sum(), th)], mode="FAST_COMPILE")
    out, geta, gth = f(ETAS, thres)
    ref = [float(brms_lpmf(name, link, int(y[i]), ETAS[i], thres)) for i in range(len(y))]
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)
    assert np.all(np.isfinite(geta)) and np.all(np.isfinite(gth))


@pytest.mark.parametrize("name", ORDINAL)
def test_draws_follow_the_category_probabilities(name):
    """Category shares of 40 000 draws within 5 binomial standard errors of P(y = k)
    (false-failure rate about 6e-7 per check)."""
    fam = get_family(name)
    thres = np.array([-0.8, 0.4, 1.5])
    eta = np.full(40_000, 0.3)
    p = fam.mean(eta[:1], {"thres": thres})[0]
    y = fam.rvs(eta, {"thres": thres}, np.random.default_rng(3))
    share = np.array([(y == k).mean() for k in range(1, 5)])
    se = np.sqrt(p * (1 - p) / len(y))
    assert np.all(np.abs(share - p) < 5 * se), (share, p)
    assert np.isclose(p.sum(), 1.0)
    m = (p * np.arange(1, 5)).sum()
    assert np.isclose(fam.variance(eta[:1], {"thres": thres})[0],
                      (p * np.arange(1, 5) ** 2).sum() - m ** 2)


# --------------------------------------------------------------------------- bad input

def _data(y):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"y": y, "x": rng.normal(size=len(y))})


@pytest.mark.parametrize("y,msg", [
    (np.array([1, 2, 3, 0, 2, 1] * 3, dtype=float), "integer categories 1, 2, ..., K"),
    (np.array([1, 2, 3, 2.5, 2, 1] * 3), "integer categories"),
    (np.ones(18), "at least two response categories"),
    (pd.Categorical(list("abcabc") * 3), "unordered categorical"),
    (np.array(list("abcabc") * 3, dtype=object), "ordered categorical"),
])
def test_bad_ordinal_response_is_refused(y, msg):
    with pytest.raises(FamilyError, match=msg):
        mf.Model("y ~ x", _data(y), family="cumulative").pymc_model


def test_cs_and_no_intercept_errors():
    df = _data(np.array([1, 2, 3, 2, 3, 1] * 3, dtype=float))
    with pytest.raises(FamilyError, match="needs the intercept"):
        mf.Model("y ~ 0 + x", df, family="cumulative").pymc_model


def test_ordered_categorical_maps_to_its_category_order():
    cats = ["low", "mid", "high"]
    y = pd.Categorical(["mid", "low", "high", "high", "mid", "low"] * 3, categories=cats,
                       ordered=True)
    m = mf.Model("y ~ x", _data(y), family="cumulative")
    np.testing.assert_array_equal(m.design.y[:6, 0], [2, 1, 3, 3, 2, 1])
    assert m.engine.likelihood == "conditional"
    assert "gaussian" in m.engine.reason or "family" in m.engine.reason


# --------------------------------------------------------------------------- recovery

RECOVERY = {"cumulative": {"b_Intercept[1]": -1.0, "b_Intercept[2]": 0.2, "b_Intercept[3]": 1.4,
                           "b_x": 0.6, "sd_g__Intercept": 0.6, "sd_g__x": 0.4,
                           "cor_g__Intercept__x": 0.3},
            "sratio": {"b_Intercept[1]": -0.5, "b_Intercept[2]": 0.0, "b_Intercept[3]": 0.5,
                       "b_x": 0.5, "sd_g__Intercept": 0.6, "sd_g__x": 0.4,
                       "cor_g__Intercept__x": 0.3}}


@pytest.mark.parametrize("name", list(RECOVERY))
def test_recovery_with_correlated_group_effects(name):
    """``y ~ x + (1 + x | g)`` with 4 categories, 40 groups × 15 rows simulated at
    RECOVERY[name]; its 7 truths in family-wise intervals (sim.familywise_misses: Bonferroni
    over k = 7 at 1 − 0.01/7, z_crit ≈ 3.19 posterior sd on the log/atanh/identity scale,
    widened by the Monte-Carlo error of z): false-failure rate ≤ 1 % for any seed
    (MF_TEST_SEED), calibration approximate (fixed truths, Bernstein–von Mises with 600 rows
    and 40 groups). The same fit: epred rows sum to 1 and loo() is finite."""
    from sim import familywise_misses, seeds
    data_seed, sim_seed, fit_seed = seeds(f"ordinal_{name}", 31, 32, 33)
    rng = np.random.default_rng(data_seed)
    data = pd.DataFrame({"x": rng.normal(size=600),
                         "g": np.repeat([f"s{j:02d}" for j in range(40)], 15)})
    truth = RECOVERY[name]
    formula = "y ~ x + (1 + x | g)"
    df = mf.simulate(formula, data, truth, family=name, seed=sim_seed)
    assert set(np.unique(df["y"])) <= {1.0, 2.0, 3.0, 4.0}
    fit = mf.fit(formula, df, family=name, draws=400, tune=400, chains=2, seed=fit_seed,
                 progressbar=False)
    assert familywise_misses(fit.idata.posterior, truth) == {}
    ep = fit.predict(df.iloc[:5], kind="epred", re_formula="~0")
    assert ep.shape == (800, 5, 4)
    np.testing.assert_allclose(ep.sum(-1), 1.0)
    assert np.isfinite(fit.loo().elpd)


def test_cli_offers_the_ordinal_families(tmp_path, capsys):
    """``--family cumulative`` etc. are offered; a response that is not 1..K is a one-line
    error (exit 2) before any sampling."""
    from mixedformula.cli import build_parser, main
    sub = " ".join(build_parser()._subparsers._group_actions[0].choices["fit"]
                   .format_help().split())
    for name in ORDINAL:
        assert name in sub, name
    csv = tmp_path / "d.csv"
    pd.DataFrame({"y": [0, 1, 2, 3], "x": [0.1, 0.2, 0.3, 0.4],
                  "g": list("aabb")}).to_csv(csv, index=False)
    rc = main(["fit", str(csv), "y ~ x + (1 | g)", "--family", "cumulative"])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert rc == 2 and len(errors) == 1 and "integer categories 1, 2, ..., K" in errors[0]


@pytest.mark.parametrize("name", ["cumulative", "sratio"])
def test_cs_is_not_read_as_a_spline_in_ordinal_models(name):
    """cs(x) is brms' category-specific effect (one column x, one coefficient per
    threshold: tests/test_ordinal_cs.py), never formulaic's spline basis; cumulative warns as
    brms 2.18 does."""
    import warnings
    df = _data(np.array([1, 2, 3, 2, 3, 1] * 3, dtype=float))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = mf.Model("y ~ cs(x)", df, family=name)
    assert m.design.X_names == ["Intercept", "x"] and m.design.cs_names == ["x"]
    assert any("experimental" in str(w.message) for w in caught) == (name == "cumulative")


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_cumulative_observed_category_likelihood_matches_brms(link, mode):
    """The sampler's cumulative likelihood gathers the observed category's two thresholds
    (``cumulative_observed_log_prob``) instead of computing all K log-probabilities: every
    category of every threshold set, |η| up to 30, disc 1 and per row, and per-row thresholds,
    against the mpmath transcription of brms' Stan function to 1e-9, and ∂/∂η against
    its central difference in mpmath to 1e-7 (relative)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    fam = get_family("cumulative", link)
    for thres in THRES:
        K = len(thres) + 1
        y = np.tile(np.arange(1, K + 1, dtype=float), len(ETAS))
        eta_v = np.repeat(ETAS, K)
        disc_v = np.where(np.arange(len(y)) % 2 == 0, 1.0, 0.6)
        with pm.Model():
            eta = pt.dvector("eta")
            disc = pt.dvector("disc")
            rv = fam.pymc_likelihood("y", eta, {"thres": thres, "disc": disc}, y, dims=None)
            lp = pm.logp(rv, y)
            f = pytensor.function([eta, disc], [lp, pt.grad(lp.sum(), eta)], mode=mode)
        out, geta = f(eta_v, disc_v)
        ref = [float(brms_lpmf("cumulative", link, int(y[i]), eta_v[i], thres, disc_v[i]))
               for i in range(len(y))]
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12, err_msg=str(thres))
        h = mp.mpf("1e-20")             # central difference at 60 digits: error ~1e-40
        for i in range(0, len(y), 3):
            e = mp.mpf(eta_v[i])
            d = float((brms_lpmf("cumulative", link, int(y[i]), e + h, thres, disc_v[i])
                       - brms_lpmf("cumulative", link, int(y[i]), e - h, thres, disc_v[i]))
                      / (2 * h))
            assert abs(geta[i] - d) <= 1e-7 * max(1.0, abs(d)), (thres, i, geta[i], d)
    # per-row thresholds (shifted per row, still ordered)
    thres = np.array([-1.3, 0.2, 1.9])
    shift = np.linspace(-2, 2, 8)
    th_rows = thres[None, :] + shift[:, None] * np.array([1.0, 0.5, 0.2])[None, :]
    y = np.array([1, 2, 3, 4, 4, 3, 2, 1], dtype=float)
    with pm.Model():
        eta = pt.dvector("eta")
        th = pt.dmatrix("th")
        rv = fam.pymc_likelihood("y", eta, {"thres": th}, y, dims=None)
        f = pytensor.function([eta, th], pm.logp(rv, y), mode=mode)
    out = f(ETAS, th_rows)
    ref = [float(brms_lpmf("cumulative", link, int(y[i]), ETAS[i], th_rows[i]))
           for i in range(len(y))]
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12)


SEQ_CASES = [(f, lk, "FAST_RUN") for f in ("sratio", "cratio", "acat") for lk in LINKS] + \
    [("sratio", "logit", "NUMBA"), ("acat", "logit", "NUMBA")]


@pytest.mark.parametrize("name,link,mode", SEQ_CASES)
def test_sequential_observed_category_likelihood_matches_brms(name, link, mode):
    """sratio / cratio / acat: the sampler's likelihood of the observed category alone
    (``<family>_observed_log_prob``: the passing terms masked by j < k and the stopping term
    at the gathered threshold; acat: u_y gathered, one logsumexp) for every category of every
    threshold set, |η| up to 30, disc 1 and per row, shared and per-row thresholds, against the
    mpmath transcription of brms' Stan function to 1e-9, and ∂/∂η against its central
    difference in mpmath to 1e-7 (relative)."""
    import pymc as pm
    import pytensor
    import pytensor.tensor as pt
    fam = get_family(name, link)
    assert fam._observed_log_prob is not None
    with pm.Model():
        eta, disc, th = pt.dvector("eta"), pt.dvector("disc"), pt.dvector("th")
        yv = pt.dvector("yv")
        lp = fam._observed_log_prob(fam.link_obj, eta, th, disc, yv)
        f = pytensor.function([eta, th, disc, yv], [lp, pt.grad(lp.sum(), eta)], mode=mode)
        th_m = pt.dmatrix("th_m")
        lp_m = fam._observed_log_prob(fam.link_obj, eta, th_m, disc, yv)
        f_rows = pytensor.function([eta, th_m, disc, yv], lp_m, mode=mode)
    for thres in THRES:
        K = len(thres) + 1
        y = np.tile(np.arange(1, K + 1, dtype=float), len(ETAS))
        eta_v = np.repeat(ETAS, K)
        disc_v = np.where(np.arange(len(y)) % 2 == 0, 1.0, 0.6)
        out, geta = f(eta_v, thres, disc_v, y)
        ref = [float(brms_lpmf(name, link, int(y[i]), eta_v[i], thres, disc_v[i]))
               for i in range(len(y))]
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12, err_msg=str(thres))
        h = mp.mpf("1e-20")             # central difference at 60 digits: error ~1e-40
        for i in range(0, len(y), 3):
            e = mp.mpf(eta_v[i])
            d = float((brms_lpmf(name, link, int(y[i]), e + h, thres, disc_v[i])
                       - brms_lpmf(name, link, int(y[i]), e - h, thres, disc_v[i]))
                      / (2 * h))
            assert abs(geta[i] - d) <= 1e-7 * max(1.0, abs(d)), (thres, i, geta[i], d)
        # per-row thresholds (cs()): each row's own shifted set
        th_rows = thres[None, :] + np.linspace(-2, 2, len(y))[:, None] * \
            np.linspace(1.0, 0.2, len(thres))[None, :]
        out = f_rows(eta_v, th_rows, disc_v, y)
        ref = [float(brms_lpmf(name, link, int(y[i]), eta_v[i], th_rows[i], disc_v[i]))
               for i in range(len(y))]
        np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-12, err_msg=str(thres))


@pytest.mark.parametrize("name", ["cumulative", "sratio", "acat"])   # cratio: sratio's code
def test_disc_formula_likelihood_matches_brms(name):
    """``bf(y ~ x, disc ~ z)`` as built for the sampler: brms' Stan code (brms 2.18) is
    ``disc = exp(Intercept_disc + Xc_disc * b_disc)`` per row and
    ``<family>_logit_lpmf(Y[n] | mu[n], disc[n], Intercept)`` with ``mu = Xc * b`` (centred
    predictors, thresholds for them); the model's log-likelihood of y at random parameter
    values equals the sum of the mpmath transcription of brms' lpmf with disc ≠ 1 per row, to
    1e-9. Also the priors of the disc part: b_disc flat, Intercept_disc normal(0, 1)."""
    rng = np.random.default_rng(7)
    n = 30
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n) * 2,
                       "y": np.arange(n) % 4 + 1})
    model = mf.Model("bf(y ~ x, disc ~ z)", df, family=name).pymc_model
    assert sorted(v.name for v in model.free_RVs) == ["Intercept", "Intercept_disc", "b",
                                                      "b_disc"]
    params = model.replace_rvs_by_values([model[v] for v in
                                          ("Intercept", "b", "Intercept_disc", "b_disc")])
    f = model.compile_fn([model.logp(vars=[model["y"]], sum=True), *params,
                          model.logp(vars=[model["Intercept_disc"]], sum=True,
                                     jacobian=False)],
                         inputs=model.value_vars, on_unused_input="ignore")
    xc, zc = df.x - df.x.mean(), df.z - df.z.mean()
    for _ in range(3):
        point = {v.name: rng.normal(size=v.type.shape if v.type.ndim else ()) * 0.8
                 for v in model.value_vars}
        point = {k: np.asarray(v) for k, v in point.items()}
        lp, thres, b, a_d, b_d, lp_ad = f(point)
        disc = np.exp(a_d + b_d[0] * zc.to_numpy())
        assert disc.min() < 0.9 and disc.max() > 1.1            # disc really varies by row
        ref = sum(float(brms_lpmf(name, "logit", int(df.y[i]), b[0] * xc[i], thres, disc[i]))
                  for i in range(n))
        np.testing.assert_allclose(lp, ref, rtol=1e-9)
        from scipy.stats import norm
        np.testing.assert_allclose(lp_ad, norm.logpdf(a_d), rtol=1e-9)
