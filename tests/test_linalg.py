"""Kernels in mixedformula.linalg: Λ(θ) layout (lme4's θ order) and the blocked PLS factor."""

import numpy as np
import pytest
import scipy.sparse as sp

from mixedformula.linalg import LambdaFactor, PenalizedLS, TermLayout
from mixedformula.linalg.penalized import chol_blocks


def test_theta_layout_is_lme4_column_major_lower_triangle():
    lam = LambdaFactor([TermLayout(q=3, J=2), TermLayout(q=2, J=4, correlated=False),
                        TermLayout(q=1, J=5)])
    assert lam.n_theta == 6 + 2 + 1
    np.testing.assert_array_equal(lam.theta0, [1, 0, 0, 1, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(lam.lower[[0, 3, 5, 6, 7, 8]], 0)
    assert np.all(np.isneginf(lam.lower[[1, 2, 4]]))
    theta = np.arange(1.0, 10.0)
    T = lam.templates(theta, 0)[0]
    np.testing.assert_array_equal(T, [[1, 0, 0], [2, 4, 0], [3, 5, 6]])
    np.testing.assert_array_equal(lam.templates(theta, 1)[0], np.diag([7, 8]))
    Lam = lam.sparse(theta).toarray()
    assert Lam.shape == (3 * 2 + 2 * 4 + 5,) * 2
    np.testing.assert_array_equal(Lam[3:6, 3:6], T)           # level 2 of term 1
    np.testing.assert_array_equal(Lam[6:8, 6:8], np.diag([7, 8]))
    np.testing.assert_array_equal(np.diag(Lam)[-5:], 9)
    np.testing.assert_array_equal(lam.theta_from_templates(
        [lam.templates(theta, k) for k in range(3)]), theta)


def test_by_levels_get_their_own_templates():
    lam = LambdaFactor([TermLayout(q=2, J=4, n_blocks=2, block_of_level=np.array([0, 1, 1, 0]))])
    theta = np.array([1.0, 2, 3, 4, 5, 6])
    Ts = lam.level_factors(theta, 0)
    np.testing.assert_array_equal(Ts[0], [[1, 0], [2, 3]])
    np.testing.assert_array_equal(Ts[1], [[4, 0], [5, 6]])
    np.testing.assert_array_equal(Ts[3], Ts[0])
    np.testing.assert_array_equal(lam.sparse(theta).toarray()[2:4, 2:4], Ts[1])


@pytest.mark.parametrize("q", [1, 2, 3])
def test_chol_blocks(q):
    rng = np.random.default_rng(q)
    A = rng.normal(size=(7, q, q))
    M = A @ np.swapaxes(A, 1, 2) + np.eye(q)
    L, Li = chol_blocks(M)
    np.testing.assert_allclose(L, np.linalg.cholesky(M), rtol=1e-12)
    np.testing.assert_allclose(Li @ L, np.broadcast_to(np.eye(q), M.shape), atol=1e-12)


def test_pls_factor_reproduces_dense_system():
    """L Lᵀ = ΛᵀZᵀZΛ + I, β̂ and û solve the penalized normal equations (two crossed terms)."""
    rng = np.random.default_rng(0)
    n = 120
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + 100.0
    Xa, ca = np.column_stack([np.ones(n), rng.normal(size=n)]), rng.integers(0, 9, n)
    Xb, cb = np.ones((n, 1)), rng.integers(0, 5, n)
    lam = LambdaFactor([TermLayout(q=2, J=9), TermLayout(q=1, J=5)])
    pls = PenalizedLS(X, y, [(Xa, ca), (Xb, cb)], lam)
    theta = np.array([0.8, -0.3, 0.5, 1.3])
    f = pls.factor(theta)

    def z(Xk, c, J):
        q = Xk.shape[1]
        Z = np.zeros((n, J * q))
        for i in range(n):
            Z[i, c[i] * q:(c[i] + 1) * q] = Xk[i]
        return Z
    Z = np.hstack([z(Xa, ca, 9), z(Xb, cb, 5)])
    ZL = Z @ lam.sparse(theta).toarray()
    M = ZL.T @ ZL + np.eye(ZL.shape[1])
    assert f.logdet_L == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-12)
    K = np.block([[M, ZL.T @ X], [X.T @ ZL, X.T @ X]])
    sol = np.linalg.solve(K, np.concatenate([ZL.T @ y, X.T @ y]))
    u0, ur = pls.spherical_modes(f)
    np.testing.assert_allclose(np.concatenate([u0.ravel(), ur]), sol[:-2], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pls.beta(f), sol[-2:], rtol=1e-10)
    r2 = np.sum((y - X @ sol[-2:] - ZL @ sol[:-2]) ** 2) + np.sum(sol[:-2] ** 2)
    assert f.r2 == pytest.approx(r2, rel=1e-10)
    assert sp.issparse(f.L21)


@pytest.mark.parametrize("q0,qr,correlated", [(1, 1, True), (2, 2, True), (1, 2, False),
                                               (3, 2, True)])
def test_pls_schur_update_matches_dense_system(q0, qr, correlated):
    """Crossed terms with scalar / correlated / uncorrelated second terms: log|L|², r² and the
    modes equal the dense (J₁q₁ + J₂q₂ + p) system (covers the precomputed Schur update, its
    diagonal-Λ shortcut and the general Λ_rᵀ S Λ_r)."""
    from mixedformula.linalg.schur import SchurUpdate
    rng = np.random.default_rng(q0 * 10 + qr)
    n, Ja, Jb = 150, 11, 6
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = rng.normal(size=n) + 50.0
    Xa = np.column_stack([np.ones(n), rng.normal(size=(n, q0 - 1))])
    Xb = np.column_stack([np.ones(n), rng.normal(size=(n, qr - 1))])
    ca, cb = rng.integers(0, Ja, n), rng.integers(0, Jb, n)
    lam = LambdaFactor([TermLayout(q=q0, J=Ja), TermLayout(q=qr, J=Jb, correlated=correlated)])
    pls = PenalizedLS(X, y, [(Xa, ca), (Xb, cb)], lam)
    assert isinstance(pls._schur, SchurUpdate)
    theta = np.where(lam.is_diagonal, rng.uniform(0.3, 1.5, lam.n_theta),
                     rng.normal(0, 0.5, lam.n_theta))
    f = pls.factor(theta)

    def z(Xk, c, J):
        Z = np.zeros((n, J * Xk.shape[1]))
        for i in range(n):
            Z[i, c[i] * Xk.shape[1]:(c[i] + 1) * Xk.shape[1]] = Xk[i]
        return Z
    ZL = np.hstack([z(Xa, ca, Ja), z(Xb, cb, Jb)]) @ lam.sparse(theta).toarray()
    M = ZL.T @ ZL + np.eye(ZL.shape[1])
    assert f.logdet_L == pytest.approx(np.linalg.slogdet(M)[1], rel=1e-12)
    K = np.block([[M, ZL.T @ X], [X.T @ ZL, X.T @ X]])
    sol = np.linalg.solve(K, np.concatenate([ZL.T @ y, X.T @ y]))
    u0, ur = pls.spherical_modes(f)
    np.testing.assert_allclose(np.concatenate([u0.ravel(), ur]), sol[:-2], rtol=1e-9,
                               atol=1e-11)
    r2 = np.sum((y - X @ sol[-2:] - ZL @ sol[:-2]) ** 2) + np.sum(sol[:-2] ** 2)
    assert f.r2 == pytest.approx(r2, rel=1e-10)


def test_blas_threads_only_for_a_large_dense_block():
    """lmer runs on one BLAS thread, except inside :func:`dense_blas_threads` for a dense Schur
    block of at least LARGE_DENSE columns (every core); below it the outer limit stays."""
    import os
    from threadpoolctl import threadpool_info
    from mixedformula.linalg.threads import LARGE_DENSE, dense_blas_threads, one_blas_thread

    def blas_threads():
        return {d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"}

    if not blas_threads():
        pytest.fail("threadpoolctl finds no BLAS library to limit")
    cores = len(os.sched_getaffinity(0))
    with one_blas_thread():
        assert blas_threads() == {1}
        with dense_blas_threads(LARGE_DENSE - 1):
            assert blas_threads() == {1}
        with dense_blas_threads(LARGE_DENSE):
            assert blas_threads() == {cores}
        assert blas_threads() == {1}
