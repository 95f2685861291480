"""The marginal engine for ar()/cosy() residuals and gr(cov = A) terms (issue 23).

References: scipy.stats.multivariate_normal with the dense V = Z G Zᵀ + σ² C written here
from the data (C from the lag matrix M of brms' regression form, C = (MᵀM)⁻¹, or the
compound-symmetric blocks; G = I ⊗ Σ or A ⊗ Σ), at random parameter points; the conditional
engine's posterior on the same data; brms 2.18 (tests/data/brms_autocor.json,
tests/data/known_cov_brms.json).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import mixedformula as mf
from mixedformula.backends.pymc.marginal_structured import structured_lambda, structured_loglik
from mixedformula.design.structured_crossprod import loglik_numpy
from sim import dense_Z_of_column, py_mode

HERE = os.path.dirname(__file__)


def _data(seed=0, G=7, crossed=False):
    """Groups of unequal sizes (3..9 rows), times with gaps, rows shuffled."""
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(G):
        n = 3 + (j * 5) % 7
        t = np.sort(rng.choice(np.arange(1, 20), size=n, replace=False))
        for k in range(n):
            rows.append((f"s{j}", float(t[k])))
    d = pd.DataFrame(rows, columns=["g", "time"])
    d["x"] = rng.normal(size=len(d))
    d["h"] = rng.choice(["a", "b", "c"], size=len(d))
    d["y"] = 1 + 0.5 * d.x + rng.normal(size=len(d))
    return d.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _ar_C(d, rho):
    """(MᵀM)⁻¹: ε_n = e_n − Σ_k ρ_k e_(k-th earlier row of n's group in time order)."""
    n = len(d)
    M = np.eye(n)
    for _, idx in d.sort_values("time").groupby("g").groups.items():
        idx = list(idx)
        for pos, r in enumerate(idx):
            for k, rk in enumerate(rho, start=1):
                if pos - k >= 0:
                    M[r, idx[pos - k]] -= rk
    return np.linalg.inv(M.T @ M)


def _cosy_C(d, rho):
    same = (d.g.to_numpy()[:, None] == d.g.to_numpy()[None, :])
    return np.where(same, rho, 0.0) + (1 - rho) * np.eye(len(d))


def _check(model, V_of, Tshape, rho_of, rng, k=4, A=None):
    """numpy and pytensor log-likelihoods = scipy's MVN with V_of(T, sigma, rho)."""
    import pytensor
    import pytensor.tensor as pt
    stats = model.engine.stats
    assert stats.kind == "structured"
    blocks = model.built.blocks
    assert len(blocks) == 1
    b = blocks[0]
    X = model.design.X
    y = model.design.y[:, 0]
    beta_t, T_t, sig_t = pt.vector("beta"), pt.matrix("T"), pt.scalar("sigma")
    rho_t = pt.vector("rho") if stats.structure == "ar" else pt.scalar("rho")
    lam = structured_lambda(stats, blocks, {b.key: T_t[None]}, pt)
    f = pytensor.function([beta_t, T_t, sig_t, rho_t],
                          structured_loglik(stats, beta_t, lam, sig_t,
                                            rho_t if stats.structure else None),
                          on_unused_input="ignore", mode=py_mode())
    for _ in range(k):
        beta = rng.normal(size=X.shape[1])
        T = np.tril(rng.normal(size=Tshape)) + 1.5 * np.eye(Tshape[0])
        sigma = float(rng.uniform(0.4, 1.5))
        rho = rho_of(rng)
        ref = st.multivariate_normal(X @ beta, V_of(T, sigma, rho)).logpdf(y)
        Lam = structured_lambda(stats, blocks, {b.key: T[None]}, np)
        ours = loglik_numpy(stats, beta, Lam, sigma, rho)
        assert abs(ours - ref) <= 1e-9 * max(1.0, abs(ref)), (ours, ref)
        val = float(f(beta, T, sigma, np.atleast_1d(rho) if stats.structure == "ar" else rho))
        assert abs(val - ref) <= 1e-9 * max(1.0, abs(ref)), (val, ref)


@pytest.mark.parametrize("p", [1, 2])
def test_ar_marginal_matches_scipy(p):
    d = _data(1)
    m = mf.Model(f"y ~ x + (1 + x | g) + ar(time, g, p = {p})", d)
    assert m.likelihood == "marginal" and m.engine.stats.layout == "block"
    assert "ar(time, g" in m.engine_note and "per-level blocks" in m.engine_note
    Z, J = dense_Z_of_column(d, "g", True)
    _check(m, lambda T, s, r: Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + s ** 2 * _ar_C(d, r),
           (2, 2), lambda rng: rng.uniform(-0.6, 0.6, size=p), np.random.default_rng(p))


@pytest.mark.parametrize("term,C_of,rho", [("ar(time, g, p = 2)", _ar_C, np.array([0.4, -0.3])),
                                          ("cosy(time, g)", _cosy_C, 0.35)])
def test_group_loglik_matches_scipy_per_level(term, C_of, rho):
    """Leave-one-group-out's per-level terms: log N(y_j; X_jβ, V_jj) of scipy, each level."""
    from mixedformula.design.structured_crossprod import group_loglik_numpy
    d = _data(8)
    m = mf.Model(f"y ~ x + (1 + x | g) + {term}", d)
    stats = m.engine.stats
    rng = np.random.default_rng(9)
    beta = rng.normal(size=2)
    T = np.array([[0.9, 0.0], [0.3, 0.5]])
    sigma = 0.8
    ll = group_loglik_numpy(stats, beta, T, sigma, rho)
    Z, J = dense_Z_of_column(d, "g", True)
    V = Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + sigma ** 2 * C_of(d, rho)
    X, y = m.design.X, m.design.y[:, 0]
    lev = sorted(d.g.unique())
    for j, g in enumerate(lev):
        r = np.nonzero(d.g.to_numpy() == g)[0]
        ref = st.multivariate_normal(X[r] @ beta, V[np.ix_(r, r)]).logpdf(y[r])
        assert abs(ll[j] - ref) <= 1e-9 * max(1.0, abs(ref)), (g, ll[j], ref)
    assert abs(ll.sum() - loglik_numpy(stats, beta, T, sigma, rho)) <= 1e-9 * abs(ll.sum())


def test_ar_marginal_dense_when_series_cross_levels():
    """(1 | h) with h varying within the AR series: ZᵀPZ couples levels (dense layout)."""
    d = _data(2)
    m = mf.Model("y ~ x + (1 | h) + ar(time, g, p = 2)", d, likelihood="marginal")
    assert m.engine.stats.layout == "dense"
    Z, J = dense_Z_of_column(d, "h", False)
    _check(m, lambda T, s, r: Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + s ** 2 * _ar_C(d, r),
           (1, 1), lambda rng: rng.uniform(-0.6, 0.6, size=2), np.random.default_rng(3))


@pytest.mark.parametrize("formula,col,slope", [("y ~ x + (1 + x | g) + cosy(time, g)", "g", True),
                                               ("y ~ x + (1 | h) + cosy(time, g)", "h", False)])
def test_cosy_marginal_matches_scipy(formula, col, slope):
    d = _data(4)
    m = mf.Model(formula, d, likelihood="marginal")
    assert m.engine.stats.layout == ("block" if col == "g" else "dense")
    Z, J = dense_Z_of_column(d, col, slope)
    q = 2 if slope else 1
    _check(m, lambda T, s, r: Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + s ** 2 * _cosy_C(d, r),
           (q, q), lambda rng: float(rng.uniform(0.05, 0.9)), np.random.default_rng(5))


@pytest.fixture(scope="module")
def phylo():
    A = pd.read_csv(os.path.join(HERE, "data", "known_cov_A.csv"), index_col=0)
    d = pd.read_csv(os.path.join(HERE, "data", "known_cov_data.csv"))
    return A, d


@pytest.mark.parametrize("slope", [False, True])
def test_known_cov_marginal_matches_scipy(phylo, slope):
    A, d = phylo
    f = "y ~ x + (1 + x | gr(phylo, cov = A))" if slope else "y ~ x + (1 | gr(phylo, cov = A))"
    m = mf.Model(f, d, data2={"A": A})
    assert m.likelihood == "marginal" and m.engine.stats.layout == "dense"
    lev = sorted(d.phylo.unique())
    Al = A.loc[lev, lev].to_numpy()
    Z, J = dense_Z_of_column(d, "phylo", slope)
    q = 2 if slope else 1
    _check(m, lambda T, s, r: Z @ np.kron(Al, T @ T.T) @ Z.T + s ** 2 * np.eye(len(d)),
           (q, q), lambda rng: None, np.random.default_rng(6), k=3)


# --------------------------------------------------------------------------- engines agree

def _ar_data(seed=0, J=16, n=8, rho=0.5):
    rng = np.random.default_rng(seed)
    rows = []
    for j in range(J):
        u0, u1, e = rng.normal(0, 1.0), rng.normal(0, 0.5), 0.0
        for t in range(1, n + 1 + (j % 3)):                  # 8..10 rows per group
            x = rng.normal()
            e = rho * e + rng.normal(0, 0.7)
            rows.append((f"s{j:02d}", t, x, 1 + u0 + (0.5 + u1) * x + e))
    return pd.DataFrame(rows, columns=["g", "time", "x", "y"])


def _agree(fm, fc, names):
    """|mean_m − mean_c| ≤ 4.5 · sqrt(mcse_m² + mcse_c²) for every parameter, ESS ≥ 100 each
    (the conditional engine's sd_g reaches 160-240 from 2 x 1000 draws). With the MCSE
    estimated from ≥ 100 effective draws (relative error ≲ 15 %), 4.5 estimated standard
    errors are ≥ 3.9 true ones: a false-failure rate ≤ 1e-4 per parameter, ≤ 1.2e-3 over the
    ≤ 12 parameters of a test (Bonferroni), for any seed."""
    import arviz as az
    pm_, pc = fm.idata.posterior, fc.idata.posterior
    for name in names:
        a, b = pm_[name].values, pc[name].values
        ea, eb = float(az.ess(pm_[[name]])[name]), float(az.ess(pc[[name]])[name])
        assert min(ea, eb) >= 100, (name, ea, eb)
        se = np.hypot(float(az.mcse(pm_[[name]])[name]), float(az.mcse(pc[[name]])[name]))
        assert abs(a.mean() - b.mean()) <= 4.5 * se, (name, a.mean(), b.mean(), se)


@pytest.mark.parametrize("formula", ["y ~ x + (1 + x | g) + ar(time, g)",
                                     "y ~ x + (1 | g) + ar(time, g, p = 2)",
                                     "y ~ x + (1 | g) + cosy(time, g)"])
def test_engines_agree_autocor(formula):
    """cosy(time, g) beside (1 | g): both make rows of a group exchangeable, so sigma, cosy
    and sd_g trade off and the conditional engine mixes slowly (sigma's ESS 43 from 2 × 1000
    draws in one run): 4000 draws per chain there (ESS ≈ 170 at that rate), for _agree's
    ESS ≥ 100."""
    d = _ar_data(7)
    draws = 4000 if "cosy" in formula else 1000
    kw = dict(chains=2, draws=draws, tune=1000, seed=2, progressbar=False)
    fm = mf.fit(formula, d, likelihood="marginal", **kw)
    fc = mf.fit(formula, d, likelihood="conditional", **kw)
    assert fm.likelihood == "marginal" and fc.likelihood == "conditional"
    post = fm.idata.posterior
    names = [n for n in post.data_vars if n.startswith(("b_", "sd_", "cor_", "sigma", "ar[",
                                                          "cosy"))]
    assert "sigma" in names and len(names) >= 5
    _agree(fm, fc, names)
    # the recovered group effects have the conditional engine's posterior means too (same
    # 4.5-MCSE rule per entry: ≤ 6.4e-5 each, ≤ 2.6e-3 over the ≤ 40 entries)
    import arviz as az
    um, uc = fm.idata.posterior["r_g"], fc.idata.posterior["r_g"]
    se = np.hypot(az.mcse(um.to_dataset())["r_g"].values, az.mcse(uc.to_dataset())["r_g"].values)
    assert np.all(np.abs(um.values.mean(axis=(0, 1)) - uc.values.mean(axis=(0, 1))) <= 4.5 * se)
    lo = fm.loo()                       # leave-one-group-out, marginal likelihood per level
    assert lo.unit == "g" and lo.likelihood == "marginal" and len(lo.labels) == 16
    assert np.isfinite(lo.elpd)


def test_engines_agree_known_cov(phylo):
    A, d = phylo
    kw = dict(chains=2, draws=1000, tune=1000, seed=4, progressbar=False, data2={"A": A})
    f = "y ~ x + (1 | gr(phylo, cov = A))"
    fm = mf.fit(f, d, **kw)
    fc = mf.fit(f, d, likelihood="conditional", **kw)
    assert fm.likelihood == "marginal"
    _agree(fm, fc, ["b_Intercept", "b_x", "sd_phylo__Intercept", "sigma"])


# --------------------------------------------------------------------------- brms 2.18

BRMS = json.loads(open(os.path.join(HERE, "data", "brms_autocor.json")).read())
FORMULAS = {"ar1": "y_ar ~ x + ar(time, g)", "ar2": "y_ar ~ x + ar(time, g, p = 2)",
            "cosy": "y_cs ~ x + cosy(time, g)"}


@pytest.mark.parametrize("key", list(FORMULAS))
def test_marginal_matches_brms_autocor(key):
    """brms' ar1/ar2/cosy references (tests/test_autocor.py's, no group terms) on the marginal
    engine, same rule: means within 0.2 posterior sd of brms (4 x 2000 draws, MCSE/sd ≤ 0.016),
    ours ESS ≥ 400 so the MC error of the difference is ≤ 0.053 sd; 0.2 sd = 3.8 of those:
    ≤ 1.5e-4 per parameter, 2e-3 over the 13 (Bonferroni), any seed; sds within 15 %."""
    import arviz as az
    d = pd.read_csv(os.path.join(HERE, "data", "brms_autocor.csv"))
    fit = mf.fit(FORMULAS[key], d, likelihood="marginal", chains=2, draws=1000, tune=1000,
                 seed=11, progressbar=False)
    assert fit.likelihood == "marginal"
    post = fit.idata.posterior
    ref = BRMS[key]["pars"]
    assert set(ref) <= set(post.data_vars)
    for name, r in ref.items():
        x = post[name].values
        assert float(az.ess(post[[name]])[name]) >= 400, name
        assert abs(x.mean() - r["mean"]) <= 0.2 * r["sd"], (name, x.mean(), r)
        assert abs(x.std() - r["sd"]) <= 0.15 * r["sd"], (name, x.std(), r)


def test_weights_keep_structured_models_conditional():
    """The structured statistics are of the unscaled rows: brms' weights() with ar() goes to the
    conditional engine (which weights each row's log-density), with the reason; without the
    ar() term the same weighted model is marginal (the √w-scaled statistics)."""
    from mixedformula.model import specify
    rng = np.random.default_rng(1)
    n = 120
    d = pd.DataFrame({"g": np.repeat(np.arange(12), 10), "t": np.tile(np.arange(10), 12),
                      "x": rng.normal(size=n)})
    d["y"] = d.x + rng.normal(size=n)
    d["w"] = rng.uniform(0.5, 2, n)
    s = specify("y | weights(w) ~ x + (1 | g) + ar(time = t, gr = g)", d)
    assert s.engine.likelihood == "conditional" and s.engine.reason
    assert specify("y ~ x + (1 | g) + ar(time = t, gr = g)", d).engine.likelihood == "marginal"
    assert specify("y | weights(w) ~ x + (1 | g)", d).engine.likelihood == "marginal"
    from mixedformula.engine import marginal_reason
    from mixedformula.families import get_family
    why = marginal_reason(s.design, get_family("gaussian"), structured=True)
    assert "weights() / se()" in why
