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


def _Z(d, col, slope):
    lev = sorted(d[col].unique())
    j = pd.Index(lev).get_indexer(d[col])
    q = 2 if slope else 1
    W = np.column_stack([np.ones(len(d)), d.x])[:, :q]
    Z = np.zeros((len(d), len(lev) * q))
    for c in range(q):
        Z[np.arange(len(d)), j * q + c] = W[:, c]
    return Z, len(lev)


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
                          on_unused_input="ignore")
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
    Z, J = _Z(d, "g", True)
    _check(m, lambda T, s, r: Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + s ** 2 * _ar_C(d, r),
           (2, 2), lambda rng: rng.uniform(-0.6, 0.6, size=p), np.random.default_rng(p))


def test_ar_marginal_dense_when_series_cross_levels():
    """(1 | h) with h varying within the AR series: ZᵀPZ couples levels (dense layout)."""
    d = _data(2)
    m = mf.Model("y ~ x + (1 | h) + ar(time, g, p = 2)", d, likelihood="marginal")
    assert m.engine.stats.layout == "dense"
    Z, J = _Z(d, "h", False)
    _check(m, lambda T, s, r: Z @ np.kron(np.eye(J), T @ T.T) @ Z.T + s ** 2 * _ar_C(d, r),
           (1, 1), lambda rng: rng.uniform(-0.6, 0.6, size=2), np.random.default_rng(3))


@pytest.mark.parametrize("formula,col,slope", [("y ~ x + (1 + x | g) + cosy(time, g)", "g", True),
                                               ("y ~ x + (1 | h) + cosy(time, g)", "h", False)])
def test_cosy_marginal_matches_scipy(formula, col, slope):
    d = _data(4)
    m = mf.Model(formula, d, likelihood="marginal")
    assert m.engine.stats.layout == ("block" if col == "g" else "dense")
    Z, J = _Z(d, col, slope)
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
    Z, J = _Z(d, "phylo", slope)
    q = 2 if slope else 1
    _check(m, lambda T, s, r: Z @ np.kron(Al, T @ T.T) @ Z.T + s ** 2 * np.eye(len(d)),
           (q, q), lambda rng: None, np.random.default_rng(6), k=3)
