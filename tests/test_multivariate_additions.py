"""Addition terms and offsets per response in multivariate models (issue #18).

brms takes ``weights()``, ``cens()``, ``trunc()``, ``se()`` and ``offset()`` per response inside
each ``bf()`` (``mvbind(y1, y2) | adds ~ rhs`` copies them to every response, brms'
``split_bf``); without correlated residuals each response has its own likelihood. References:
scipy.stats per response, summed, and simulation truth.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedformula as mf
from sim import familywise_misses, py_mode, seeds

FORMULA = ("bf(y1 | weights(w) + cens(c) ~ x + offset(log(t)) + (1 | g)) + "
           "bf(y2 | trunc(lb = 0) + se(s, sigma = TRUE) ~ z + (1 | g))")


def _data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "g": np.repeat([f"g{j}" for j in range(n // 5)], 5),
                       "w": rng.uniform(0.5, 2, n), "s": rng.uniform(0.3, 1, n),
                       "t": rng.uniform(1, 3, n)})
    df["y1"] = 1 + 0.5 * df.x + rng.normal(size=n)
    df["y2"] = np.abs(rng.normal(size=n)) + 0.1
    df["c"] = rng.choice([-1, 0, 1], n)
    return df


def _values(pm_model, names, point):
    outs = pm_model.replace_rvs_by_values([pm_model[v] for v in names])
    fn = pm_model.compile_fn(outs, inputs=pm_model.value_vars, on_unused_input="ignore",
                             mode=py_mode())
    return fn(point)


def _points(pm_model, rng, k=3):
    return [{key: v + rng.normal(scale=0.4, size=np.shape(v))
             for key, v in pm_model.initial_point().items()} for _ in range(k)]


# ---------------------------------------------------------------------------- syntax (fast)

def test_mvbind_with_additions_is_bf_per_response():
    """brms' split_bf: the addition terms and the right-hand side (offset too) go to every
    response."""
    s = mf.parse("mvbind(y1, y2) | se(s) + weights(w) ~ x + offset(log(t)) + (1 | g)")
    assert s.multivariate and len(s.parts) == 2
    assert [p.responses for p in s.parts] == [("`y1`",), ("`y2`",)]
    assert all(p.additions.se == "`s`" and p.additions.weights == "`w`" for p in s.parts)
    assert all(p.offset_variables == ("t",) for p in s.parts)
    assert [g.response for g in s.groups] == [0, 1]
    assert {"s", "w", "t"} <= set(s.variables)
    b = mf.parse("bf(y1 | cens(c) ~ x + offset(o)) + bf(y2 | trunc(lb = 0) ~ z)")
    assert b.parts[0].additions.cens == "c" and b.parts[1].additions.lb.value == 0.0
    assert b.parts[0].offset_variables == ("o",) and not b.parts[1].offset
    assert {"c", "o"} <= set(b.variables)


# ---------------------------------------------------------------------------- likelihood (fast)

def test_per_response_loglik_is_scipy_summed_over_responses():
    """rescor=False: log p(y) = Σ_i w_i·[log φ / log Φ / log(1 − Φ) of y1 by its censoring code,
    η₁ = Xβ₁ + u + log t] + Σ_i [log φ((y2 − η₂)/s̃)/s̃ − log(1 − Φ(−η₂/s̃))], s̃ = √(s² + σ₂²),
    by scipy at random points, to 1e-9."""
    df = _data()
    m = mf.Model(FORMULA, df, rescor=False)
    assert m.likelihood == "conditional" and "per response" in m.engine.reason
    pm_model = m.pymc_model
    assert sorted(v.name for v in pm_model.observed_RVs) == ["y__y1", "y__y2"]
    logp = pm_model.compile_logp(vars=pm_model.observed_RVs, jacobian=False, mode=py_mode())
    d = m.design
    for point in _points(pm_model, np.random.default_rng(3)):
        names = ["_beta__y1", "_beta__y2", "sigma__y1", "sigma__y2"] + [
            v.name for v in pm_model.deterministics if v.name.startswith("u__")]
        vals = dict(zip(names, _values(pm_model, names, point)))
        us = [vals[n] for n in names[4:]]
        eta = np.column_stack([d.fixed(0)[0] @ vals["_beta__y1"],
                               d.fixed(1)[0] @ vals["_beta__y2"]])
        for t, u in zip(d.terms, us):
            eta[:, t.response] += u[t.codes, 0] * t.X[:, 0]
        eta[:, 0] += np.log(df.t.to_numpy())
        y1, y2 = df.y1.to_numpy(), df.y2.to_numpy()
        n1 = stats.norm(eta[:, 0], vals["sigma__y1"])
        c = df.c.to_numpy()
        ll1 = np.where(c == 0, n1.logpdf(y1), np.where(c == -1, n1.logcdf(y1), n1.logsf(y1)))
        sd2 = np.sqrt(df.s.to_numpy() ** 2 + vals["sigma__y2"] ** 2)
        n2 = stats.norm(eta[:, 1], sd2)
        ll2 = n2.logpdf(y2) - n2.logsf(0.0)
        expected = float((df.w.to_numpy() * ll1).sum() + ll2.sum())
        assert np.isclose(logp(point), expected, rtol=1e-9, atol=1e-9)


def test_se_without_sigma_per_response_and_missing_rows():
    """se(s) without sigma = TRUE on y1 only: sigma_y1 ≡ 0 (brms), y2 keeps its sigma; rows
    with y2 missing still inform y1 (each response on its own rows)."""
    df = _data()
    df.loc[[3, 8, 11], "y2"] = np.nan
    with pytest.warns(UserWarning, match="y2"):
        m = mf.Model("bf(y1 | se(s) ~ x) + bf(y2 | weights(w) ~ z)", df, rescor=False)
    pm_model = m.pymc_model
    assert "sigma__y1" not in [v.name for v in pm_model.free_RVs]
    logp = pm_model.compile_logp(vars=pm_model.observed_RVs, jacobian=False, mode=py_mode())
    keep = df.y2.notna().to_numpy()
    for point in _points(pm_model, np.random.default_rng(5), 2):
        b1, b2, s1, s2 = _values(pm_model, ["_beta__y1", "_beta__y2", "sigma__y1",
                                            "sigma__y2"], point)
        assert s1 == 0.0
        d = m.design
        e1 = d.fixed(0)[0] @ b1
        e2 = (d.fixed(1)[0] @ b2)[keep]
        expected = stats.norm(e1, df.s).logpdf(df.y1).sum() + (
            df.w[keep] * stats.norm(e2, s2).logpdf(df.y2[keep])).sum()
        assert np.isclose(logp(point), expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- refusals (fast)

def test_rescor_refuses_cens_and_trunc_with_brms_rule():
    df = _data()
    with pytest.raises(mf.MixedFormulaError, match="only se\\(\\) and weights\\(\\).*y1 has "
                       "cens\\(\\).*rescor=False"):
        mf.Model(FORMULA, df).pymc_model          # rescor defaults to TRUE (brms)


def test_rescor_needs_the_same_weights():
    df = _data()
    df["w2"] = df.w + 1
    with pytest.raises(mf.MixedFormulaError, match="same\\s+weights"):
        mf.Model("bf(y1 | weights(w) ~ x) + bf(y2 | weights(w2) ~ z)", df).pymc_model


@pytest.mark.parametrize("col, value, message", [
    ("w", -1.0, "response y2: weights\\(w\\) is negative in 2 row"),
    ("c", 7, "response y1: cens\\(\\) column 'c' is not a censoring code.* in 2 row"),
    ("s", 0.0, "response y2: se\\(s\\) is <= 0 in 2 row"),
    ("t", -1.0, "response y1: offset"),
])
def test_bad_addition_values_name_the_response_column_and_count(col, value, message):
    df = _data()
    df.loc[[4, 9], col] = value
    formula = ("bf(y1 | cens(c) ~ x + offset(log(t))) + "
               "bf(y2 | weights(w) + se(s) ~ z)")
    with pytest.raises(mf.DataError, match=message), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mf.Model(formula, df, rescor=False)


def test_missing_addition_value_is_an_error_not_a_dropped_row():
    df = _data()
    df.loc[[2, 6], "w"] = np.nan
    with pytest.raises(mf.DataError, match="response y2: weights\\(w\\) is missing in 2 row"):
        mf.Model("bf(y1 ~ x) + bf(y2 | weights(w) ~ z)", df, rescor=False)


def test_rescor_se_and_weights_loglik_is_scipy():
    """rescor with se() and one weights(): log p(y) = Σ_i w_i log N(y_i; η_i, diag(s_i) Ω
    diag(s_i)), s_i1 = se_i (y1: se without sigma, σ₁ ≡ 0), s_i2 = √(σ₂² + se2_i²) (brms'
    LSigma[n] = diag_pre_multiply(sigma[n], Lrescor)); scipy at random points, to 1e-9."""
    df = _data()
    df["s2"] = df.s[::-1].to_numpy()
    m = mf.Model("bf(y1 | se(s) + weights(w) ~ x) + bf(y2 | se(s2, sigma = TRUE) + "
                 "weights(w) ~ z)", df)
    assert m.likelihood == "conditional"
    pm_model = m.pymc_model
    logp = pm_model.compile_logp(vars=pm_model.observed_RVs, jacobian=False, mode=py_mode())
    d = m.design
    for point in _points(pm_model, np.random.default_rng(7), 2):
        b1, b2, s1, s2, cor = _values(pm_model, ["_beta__y1", "_beta__y2", "sigma__y1",
                                                 "sigma__y2", "_corr__rescor"], point)
        assert s1 == 0.0
        eta = np.column_stack([d.fixed(0)[0] @ b1, d.fixed(1)[0] @ b2])
        sd = np.column_stack([df.s, np.sqrt(s2 ** 2 + df.s2 ** 2)])
        expected = sum(w * stats.multivariate_normal(e, np.outer(v, v) * cor).logpdf(y)
                       for w, e, v, y in zip(df.w, eta, sd, df[["y1", "y2"]].to_numpy()))
        assert np.isclose(logp(point), expected, rtol=1e-9, atol=1e-9)


def test_rescor_weights_only_loglik_is_scipy():
    """rescor with weights() alone: w_i log N(y_i; η_i, R), R = diag(σ) Ω diag(σ)."""
    df = _data()
    m = mf.Model("mvbind(y1, y2) | weights(w) ~ x", df)
    pm_model = m.pymc_model
    logp = pm_model.compile_logp(vars=pm_model.observed_RVs, jacobian=False, mode=py_mode())
    d = m.design
    point = _points(pm_model, np.random.default_rng(9), 1)[0]
    b1, b2, sd, cor = _values(pm_model, ["_beta__y1", "_beta__y2", "_std__rescor",
                                         "_corr__rescor"], point)
    eta = np.column_stack([d.fixed(0)[0] @ b1, d.fixed(1)[0] @ b2])
    R = np.outer(sd, sd) * cor
    expected = sum(w * stats.multivariate_normal(e, R).logpdf(y)
                   for w, e, y in zip(df.w, eta, df[["y1", "y2"]].to_numpy()))
    assert np.isclose(logp(point), expected, rtol=1e-9, atol=1e-9)


# ---------------------------------------------------------------------------- fit (sampling)

RECOVERY = ("bf(y1 | cens(c) ~ x + offset(o) + (1 | g)) + "
            "bf(y2 | trunc(lb = 0) + se(s, sigma = TRUE) ~ z + (1 | g))")
TRUTH = {"b_y1_Intercept": 0.5, "b_y1_x": 0.8, "sd_g__y1_Intercept": 0.7, "sigma_y1": 0.6,
         "b_y2_Intercept": 0.3, "b_y2_z": 0.5, "sd_g__y2_Intercept": 0.5, "sigma_y2": 0.4}


def _simulate(seed, n_groups=30, n_per=10):
    """y1 ~ N(0.5 + 0.8x + u1_g + o, 0.6²), right-censored at 1.5 (c = 1, y1 = 1.5);
    y2 ~ N(0.3 + 0.5z + u2_g, s² + 0.4²) truncated to y2 ≥ 0 (redrawn until inside)."""
    rng = np.random.default_rng(seed)
    n = n_groups * n_per
    g = np.repeat(np.arange(n_groups), n_per)
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n),
                       "o": rng.uniform(-0.5, 0.5, n), "s": rng.uniform(0.2, 0.6, n),
                       "g": [f"g{j:02d}" for j in g]})
    u1 = rng.normal(0, TRUTH["sd_g__y1_Intercept"], n_groups)[g]
    u2 = rng.normal(0, TRUTH["sd_g__y2_Intercept"], n_groups)[g]
    y1 = (TRUTH["b_y1_Intercept"] + TRUTH["b_y1_x"] * df.x + u1 + df.o
          + rng.normal(0, TRUTH["sigma_y1"], n)).to_numpy()
    df["c"] = (y1 > 1.5).astype(int)
    df["y1"] = np.minimum(y1, 1.5)
    mu2 = (TRUTH["b_y2_Intercept"] + TRUTH["b_y2_z"] * df.z + u2).to_numpy()
    sd2 = np.sqrt(df.s.to_numpy() ** 2 + TRUTH["sigma_y2"] ** 2)
    y2 = rng.normal(mu2, sd2)
    while (y2 < 0).any():
        bad = y2 < 0
        y2[bad] = rng.normal(mu2[bad], sd2[bad])
    df["y2"] = y2
    return df


@pytest.fixture(scope="module")
def recovery_fit():
    data_seed, fit_seed = seeds("mv_additions_recovery", 21, 22)
    df = _simulate(data_seed)
    fit = mf.fit(RECOVERY, df, rescor=False, draws=500, tune=500, chains=2, seed=fit_seed)
    return fit, df


def test_mv_additions_recover_truth(recovery_fit):
    """8 parameters, each in its family-wise interval (sim.familywise_misses, Bonferroni over
    k = 8 at α = 0.01: z_crit ≈ 3.23 on the log/identity scale): false-failure rate ≤ 1% for
    any seed, for a calibrated posterior (300 rows in 30 groups per response; the sds' rate
    is approximate, Bernstein–von Mises)."""
    fit, _ = recovery_fit
    assert familywise_misses(fit.idata.posterior, TRUTH) == {}


def test_mv_additions_results(recovery_fit):
    """brms names; LOO's pointwise log-likelihood per row is scipy's per-response terms summed
    (y1: log Φ̄ on censored rows, log φ otherwise, η₁ with the offset; y2: truncated normal
    with sd √(s² + σ₂²)) at the posterior draws; epred of y2 is the truncated mean (> 0);
    response draws of y2 lie inside the bound; new data without the se column are an
    error naming it."""
    fit, df = recovery_fit
    post = fit.idata.posterior
    assert set(TRUTH) <= set(post.data_vars)
    assert "per response" in fit.info["engine_note"]
    from mixedformula.results.loo import pointwise_loglik
    ll = pointwise_loglik(fit)
    v = {k: post[k].values.reshape(-1, *post[k].shape[2:])[:5] for k in TRUTH}
    r = post["r_g"].values.reshape(-1, *post["r_g"].shape[2:])[:5]
    codes = pd.Index(post["g"].values).get_indexer(df.g)
    for d in range(5):
        e1 = v["b_y1_Intercept"][d] + v["b_y1_x"][d] * df.x + r[d][codes, 0] + df.o
        e2 = v["b_y2_Intercept"][d] + v["b_y2_z"][d] * df.z + r[d][codes, 1]
        n1 = stats.norm(e1, v["sigma_y1"][d])
        l1 = np.where(df.c == 1, n1.logsf(df.y1), n1.logpdf(df.y1))
        n2 = stats.norm(e2, np.sqrt(df.s ** 2 + v["sigma_y2"][d] ** 2))
        l2 = n2.logpdf(df.y2) - n2.logsf(0.0)
        np.testing.assert_allclose(ll[d], l1 + l2, rtol=1e-9, atol=1e-9)
    assert np.isfinite(fit.loo().elpd)
    ep = fit.predict(kind="epred", ndraws=50, seed=1)
    assert ep.shape == (50, len(df), 2) and (ep[..., 1] > 0).all()
    yr = fit.predict(kind="response", ndraws=50, seed=1)
    assert (yr[..., 1] >= 0).all() and np.isfinite(yr).all()
    nd = df.head(4)
    assert fit.predict(nd, kind="response", ndraws=10, seed=1).shape == (10, 4, 2)
    with pytest.raises(mf.DataError, match="se\\(s\\)"):
        fit.predict(nd.drop(columns=["s"]), kind="response", ndraws=10)
    assert "sigma_y2" in str(fit.summary())
