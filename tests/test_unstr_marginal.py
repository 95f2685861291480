"""unstr(time, gr) on the structured marginal engine (issue 23).

References: scipy.stats.multivariate_normal of the whole y with the dense
V = Z G Zᵀ + σ² blockdiag_g C[s_g, s_g] written here from the data, at random parameter points
(numpy statistics and the sampler's pytensor graph, 1e-9), per level for the
leave-one-group-out terms. The engines' posteriors are not compared by a fit: the marginal
log-density is exactly the conditional one with u integrated out (checked here to 1e-9), and
both engines take the same priors from the same functions (``cortime_parameter`` for cortime,
the blocks, σ and β of ``build``), so the posteriors of the shared parameters are the same
distribution; a short marginal fit checks the wiring (names, u drawn afterwards, LOGO).
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import mixedformula as mf
from mixedformula.backends.pymc.marginal_structured import (structured_lambda,
                                                            structured_loglik, unstr_weights)
from mixedformula.design.structured_crossprod import (group_loglik_numpy, loglik_numpy,
                                                      unstr_weights_numpy)
from mixedformula.design.unstr import time_patterns
from sim import dense_Z_of_column, py_mode


def _data(seed=0, G=12, T=3):
    """Groups with missing time points (three patterns), rows shuffled; h: a level holding
    several groups (series nested in it), k: crossing the groups (dense layout)."""
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(G):
        for t in range(T):
            if (g % 4 == 1 and t == 1) or (g % 4 == 2 and t == 0):
                continue
            rows.append(dict(g=f"s{g}", t=t + 1, x=rng.normal(), h=f"h{g % 5}"))
    d = pd.DataFrame(rows).sample(frac=1.0, random_state=2).reset_index(drop=True)
    d["k"] = np.arange(len(d)) % 3
    d["y"] = 1 + 0.5 * d.x + rng.normal(size=len(d))
    return d


def _R(design, C):
    n = len(design.autocor.codes)
    R = np.zeros((n, n))
    for p in time_patterns(design.autocor):
        for rows in p.rows:
            R[np.ix_(rows, rows)] = C[np.ix_(p.times, p.times)]
    return R


def _random_corr(rng, T=3):
    B = np.eye(T)
    B[np.tril_indices(T, -1)] = rng.normal(size=T * (T - 1) // 2)
    L = B / np.linalg.norm(B, axis=1, keepdims=True)
    return L @ L.T


@pytest.mark.parametrize("formula, col, slope, layout", [
    ("y ~ x + (1 + x | h) + unstr(t, g)", "h", True, "block"),
    ("y ~ x + (1 | k) + unstr(t, g)", "k", False, "dense"),
])
def test_marginal_matches_scipy(formula, col, slope, layout):
    import pytensor
    import pytensor.tensor as pt
    d = _data()
    m = mf.Model(formula, d, likelihood="marginal")
    stats = m.engine.stats
    assert stats.kind == "structured" and stats.structure == "unstr" and stats.layout == layout
    blocks = m.built.blocks
    b = blocks[0]
    X, y = m.design.X, m.design.y[:, 0]
    Z, J = dense_Z_of_column(d, col, slope)
    q = 2 if slope else 1
    beta_t, T_t, sig_t, C_t = pt.vector("beta"), pt.matrix("T"), pt.scalar("s"), pt.matrix("C")
    lam = structured_lambda(stats, blocks, {b.key: T_t[None]}, pt)
    rho_t = unstr_weights(stats, C_t, pt.linalg.cholesky(C_t))
    f = pytensor.function([beta_t, T_t, sig_t, C_t],
                          structured_loglik(stats, beta_t, lam, sig_t, rho_t), mode=py_mode())
    rng = np.random.default_rng(7)
    for _ in range(4):
        beta = rng.normal(size=X.shape[1])
        T = np.tril(rng.normal(size=(q, q))) + 1.5 * np.eye(q)
        sigma = float(rng.uniform(0.4, 1.5))
        C = _random_corr(rng)
        V = Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + sigma ** 2 * _R(m.design, C)
        ref = st.multivariate_normal(X @ beta, V).logpdf(y)
        Lam = structured_lambda(stats, blocks, {b.key: T[None]}, np)
        ours = loglik_numpy(stats, beta, Lam, sigma, unstr_weights_numpy(stats, C))
        assert abs(ours - ref) <= 1e-9 * max(1.0, abs(ref)), (ours, ref)
        val = float(f(beta, T, sigma, C))
        assert abs(val - ref) <= 1e-9 * max(1.0, abs(ref)), (val, ref)
        if layout == "block":            # the leave-one-group-out terms, level by level
            per = group_loglik_numpy(stats, beta, Lam, sigma, unstr_weights_numpy(stats, C))
            codes = pd.Index(sorted(d.h.unique())).get_indexer(d.h)
            for j in range(J):
                r = np.nonzero(codes == j)[0]
                want = st.multivariate_normal(X[r] @ beta, V[np.ix_(r, r)]).logpdf(y[r])
                assert per[j] == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_no_group_terms_exact_likelihood():
    """Without group terms (explicit likelihood="marginal"): log N(y; Xβ, σ²R)."""
    d = _data(1)
    m = mf.Model("y ~ x + unstr(t, g)", d, likelihood="marginal")
    stats = m.engine.stats
    rng = np.random.default_rng(2)
    beta, sigma, C = rng.normal(size=2), 0.7, _random_corr(rng)
    ref = st.multivariate_normal(m.design.X @ beta, sigma ** 2 * _R(m.design, C)).logpdf(
        m.design.y[:, 0])
    ours = loglik_numpy(stats, beta, np.zeros((0, 0)), sigma, unstr_weights_numpy(stats, C))
    assert ours == pytest.approx(ref, rel=1e-9)


def test_auto_takes_marginal_and_fit_wiring():
    """"auto" picks the structured engine for a Gaussian unstr() model with group terms; a
    short fit has brms' names, the group effects drawn afterwards and leave-one-group-out."""
    import warnings
    d = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("y ~ x + (1 | h) + unstr(t, g)", d, chains=1, draws=100, tune=100,
                     seed=3, progressbar=False)
    assert fit.likelihood == "marginal"
    post = fit.idata.posterior
    for name in ["b_Intercept", "b_x", "sd_h__Intercept", "sigma", "cortime__1__2",
                 "cortime__1__3", "cortime__2__3"]:
        assert name in post.data_vars, name
        assert np.all(np.isfinite(post[name].values))
    assert np.all(np.abs(post["cortime__1__2"].values) < 1)
    assert post["r_h"].shape[-2:] == (5, 1) and np.all(np.isfinite(post["r_h"].values))
    assert float(post["r_h"].std()) > 0
    lo = fit.loo()
    assert lo.unit == "h" and lo.likelihood == "marginal" and np.isfinite(lo.elpd)
