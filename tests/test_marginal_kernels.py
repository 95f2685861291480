"""Marginal-likelihood kernels against brute-force dense Gaussian algebra.

Reference: y ~ N(Xβ, Z G Zᵀ + σ² I) evaluated densely with scipy; conditional of u:
μ = G Zᵀ V⁻¹ (y − Xβ), Σ = G − G Zᵀ V⁻¹ Z G.
"""

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.linalg as sla
from scipy.stats import multivariate_normal

from mixedformula.backends.pymc.marginal import (
    MarginalTooLargeError, draw_group_effects, marginal_loglik, segment_factors, stats_tensors)
from mixedformula.design import design_matrices
from mixedformula.design.crossprod import sufficient_statistics

# Numbers, not speed, are tested here: the Python linker avoids minutes of C compilation.
# (test_c_backend_compiled_function checks the compiled default mode once.)
MODE = "FAST_COMPILE"


# ----------------------------------------------------------------------------- data and helpers

def _data(n=240, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 12, n)
    a = rng.integers(0, 5, n)
    df = pd.DataFrame({
        "x": rng.normal(size=n), "z": rng.normal(size=n), "w": rng.normal(size=n),
        "v": rng.normal(size=n),
        "g": [f"g{k:02d}" for k in g], "h": [f"h{k // 4}" for k in g],
        "a": [f"a{k}" for k in a], "b": [f"b{k}" for k in rng.integers(0, 4, n)],
        "c": [f"c{k}" for k in rng.integers(0, 7, n)],
        "f": rng.choice(["lo", "mid", "hi"], n),
    })
    df["y"] = 50 + rng.normal(size=n) * 3 + df["x"]
    return df


def _rand_factor(rng, Q, diag=False):
    T = np.tril(rng.normal(size=(Q, Q)) * 0.7)
    T[np.diag_indices(Q)] = np.abs(T[np.diag_indices(Q)]) + 0.3
    return np.diag(np.diag(T)) if diag else T


def _dense_Z(design, stats):
    """Z with columns in the statistics' order (segments, level-major, terms inside a level)."""
    n = design.nobs
    blocks = []
    for seg in stats.segments:
        Zs = np.zeros((n, seg.J * seg.Q))
        for k, off, q in zip(seg.terms, seg.offsets, seg.qs):
            Zk = design.terms[k].Z().toarray()
            for j in range(seg.J):
                Zs[:, j * seg.Q + off: j * seg.Q + off + q] = Zk[:, j * q:(j + 1) * q]
        blocks.append(Zs)
    return np.hstack(blocks)


def _dense_Lambda(stats, Ts):
    """Block-diagonal Λ (M×M) from per-segment factors (Q,Q) or (J,Q,Q)."""
    mats = []
    for seg, T in zip(stats.segments, Ts):
        T = np.broadcast_to(T, (seg.J, seg.Q, seg.Q))
        mats.extend(T)
    return sla.block_diag(*mats)


def _dense_V(design, stats, Ts, sigma):
    Z = _dense_Z(design, stats)
    Lam = _dense_Lambda(stats, Ts)
    return Z @ Lam @ Lam.T @ Z.T + sigma ** 2 * np.eye(design.nobs)


def _dense_logpdf(design, stats, beta, Ts, sigma):
    """Brute-force N×N Gaussian log-density (dense Cholesky of V = ZGZᵀ + σ²I)."""
    V = _dense_V(design, stats, Ts, sigma)
    L = np.linalg.cholesky(V)
    r = sla.solve_triangular(L, design.y[:, 0] - design.X @ beta, lower=True)
    return -0.5 * (design.nobs * np.log(2 * np.pi) + 2 * np.log(np.diag(L)).sum() + r @ r)


def _pt_logp(stats, Ts_np):
    """Compile logp(beta, sigma, *T) and its gradient."""
    beta = pt.vector("beta")
    sigma = pt.scalar("sigma")
    Tv = [pt.tensor(f"T{i}", shape=(None,) * np.ndim(T)) for i, T in enumerate(Ts_np)]
    lp = marginal_loglik(stats, beta, Tv if len(Tv) > 1 else Tv[0], sigma)
    grads = pytensor.grad(lp, [beta, sigma, *Tv])
    return pytensor.function([beta, sigma, *Tv], [lp, *grads], mode=MODE)


def _check_logp(formula, df, Ts_fn, seed=0, rtol=1e-8):
    rng = np.random.default_rng(seed)
    design = design_matrices(formula, df)
    stats = sufficient_statistics(design)
    Ts = Ts_fn(stats, rng)
    beta = rng.normal(size=design.X.shape[1])
    beta[0] += 50
    sigma = 0.8
    f = _pt_logp(stats, Ts)
    out = f(beta, sigma, *Ts)
    ref = multivariate_normal.logpdf(design.y[:, 0], design.X @ beta,
                                     _dense_V(design, stats, Ts, sigma))
    assert abs(out[0] - ref) <= rtol * abs(ref), (out[0], ref)
    assert _dense_logpdf(design, stats, beta, Ts, sigma) == pytest.approx(ref, rel=1e-12)
    return design, stats, Ts, beta, sigma, f


def _shared_factors(*diags):
    """Ts_fn giving one shared random factor per segment (diagonal where asked)."""
    def fn(stats, rng):
        return [_rand_factor(rng, s.Q, diag=(i < len(diags) and diags[i]))
                for i, s in enumerate(stats.segments)]
    return fn


# ----------------------------------------------------------------------------- statistics

def test_statistics_equal_dense_products():
    df = _data()
    design = design_matrices("y ~ x + z + (1 + x | g) + (0 + z | g)", df)
    st = sufficient_statistics(design)
    assert st.kind == "block" and len(st.segments) == 1 and st.segments[0].Q == 3
    Z = _dense_Z(design, st)
    X, y = design.X, design.y[:, 0]
    J, Q = st.segments[0].J, 3
    ZtZ, ZtX, Zty = Z.T @ Z, Z.T @ X, Z.T @ y
    for j in range(J):
        sl = slice(j * Q, (j + 1) * Q)
        np.testing.assert_allclose(st.A[j], ZtZ[sl, sl], rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(st.B[j], ZtX[sl], rtol=1e-12, atol=1e-10)
        np.testing.assert_allclose(st.c[j], Zty[sl], rtol=1e-12, atol=1e-9)
    # block diagonal: nothing outside the per-level blocks
    mask = np.kron(np.eye(J), np.ones((Q, Q))) == 0
    assert np.all(ZtZ[mask] == 0)
    np.testing.assert_allclose(st.XtX, X.T @ X, rtol=1e-12)
    np.testing.assert_allclose(st.Xty, X.T @ y, rtol=1e-12)
    assert st.yty == pytest.approx(y @ y, rel=1e-12) and st.N == len(y)
    e = y - X @ st.beta_ols
    np.testing.assert_allclose(X.T @ e, 0, atol=1e-8)
    assert st.ete == pytest.approx(e @ e, rel=1e-10)
    np.testing.assert_allclose(st.ce.ravel(), Z.T @ e, atol=1e-9)


def test_statistics_general_equal_dense_products():
    df = _data()
    design = design_matrices("y ~ x + (1 | a/b) + (1 + x | c)", df)
    st = sufficient_statistics(design)
    assert st.kind == "general" and len(st.segments) == 3
    # the largest segment (a:b) first
    assert st.segments[0].group == "a:b"
    Z = _dense_Z(design, st)
    np.testing.assert_allclose(st.ZtZ.toarray(), Z.T @ Z, atol=1e-10)
    np.testing.assert_allclose(st.ZtX, Z.T @ design.X, atol=1e-10)
    np.testing.assert_allclose(st.Zty, Z.T @ design.y[:, 0], atol=1e-9)
    n1 = st.segments[0].size
    np.testing.assert_allclose(st.C22, (Z.T @ Z)[n1:, n1:], atol=1e-10)
    np.testing.assert_allclose(st.C21, (Z.T @ Z)[n1:, :n1], atol=1e-10)


def test_too_large_general_design_raises():
    df = _data()
    design = design_matrices("y ~ (1 | a) + (1 | c)", df)
    with pytest.raises(MarginalTooLargeError, match="conditional"):
        sufficient_statistics(design, max_dense=3)


# ----------------------------------------------------------------------------- log-likelihood

@pytest.mark.parametrize("formula", [
    "y ~ x + (1 | g)",                    # q = 1
    "y ~ x + (1 + x | g)",                # q = 2
    "y ~ x + z + (1 + x + z | g)",        # q = 3
    "y ~ x + (f | g)",                    # categorical slope, q = 3
    "y ~ x + (1 + x + z + w + v | g)",    # q = 5: batched (Blockwise) Cholesky path
])
def test_loglik_one_factor_matches_dense(formula):
    _check_logp(formula, _data(), _shared_factors())


def test_loglik_uncorrelated_and_split_terms():
    df = _data()
    # (x || g): one term, diagonal factor
    _check_logp("y ~ x + (x || g)", df, _shared_factors(True))
    # (1 | g) + (0 + x | g): two terms merged into one segment, factors placed by segment_factors
    design = design_matrices("y ~ x + (1 | g) + (0 + x | g)", df)
    st = sufficient_statistics(design)
    assert len(st.segments) == 1 and st.segments[0].terms == (0, 1)

    def fn(stats, rng):
        seg = segment_factors(stats, [([0], np.array([[0.9]]), None),
                                      ([1], np.array([[0.4]]), None)])
        np.testing.assert_allclose(seg[0], np.diag([0.9, 0.4]))
        return seg
    _check_logp("y ~ x + (1 | g) + (0 + x | g)", df, fn)


def test_loglik_shared_id_block_with_pytensor_factors():
    """(1 | p | g) + (0 + x + z | p | g): one correlated 3×3 G over two terms, built in pytensor."""
    df = _data()
    design = design_matrices("y ~ x + (0 + x + z | p | g) + (1 | p | g)", df)
    st = sufficient_statistics(design)
    rng = np.random.default_rng(3)
    chol_np = _rand_factor(rng, 3)                       # block order: terms [1, 0] = (1, x, z)
    chol = pt.matrix("chol")
    beta, sigma = pt.vector("beta"), pt.scalar("sigma")
    T = segment_factors(st, [([1, 0], chol, None)])
    f = pytensor.function([beta, sigma, chol], marginal_loglik(st, beta, T, sigma), mode=MODE)
    b = np.array([50.0, 0.5])
    # dense reference: G over (1, x, z) re-ordered into the segment's (x, z, 1) columns
    perm = np.array([1, 2, 0])
    G = (chol_np @ chol_np.T)[np.ix_(perm, perm)]
    ref = _dense_logpdf(design, st, b, [np.linalg.cholesky(G)], 0.7)
    assert f(b, 0.7, chol_np) == pytest.approx(ref, rel=1e-8)


def test_loglik_by_groups_per_level_factor():
    """gr(g, by = h): a different G per level of h, gathered by by_codes."""
    df = _data()
    design = design_matrices("y ~ x + (1 + x | gr(g, by = h))", df)
    st = sufficient_statistics(design)
    by_codes = design.terms[0].by_codes
    H = len(design.terms[0].by_levels)
    assert H == 3
    rng = np.random.default_rng(5)
    chols = np.stack([_rand_factor(rng, 2) for _ in range(H)])
    Tsym = pt.tensor3("chols")
    beta, sigma = pt.vector("beta"), pt.scalar("sigma")
    T = segment_factors(st, [([0], Tsym, by_codes)])
    lp = marginal_loglik(st, beta, T, sigma)
    f = pytensor.function([beta, sigma, Tsym], [lp, pytensor.grad(lp, Tsym)], mode=MODE)
    b = np.array([49.0, 1.2])
    val, grad = f(b, 1.1, chols)
    ref = _dense_logpdf(design, st, b, [chols[by_codes]], 1.1)
    assert val == pytest.approx(ref, rel=1e-8)
    # gradient w.r.t. the by-level factors (central differences of the dense reference)
    for h, (i, k) in [(0, (0, 0)), (1, (1, 0)), (2, (1, 1))]:
        e = np.zeros_like(chols)
        e[h, i, k] = 1e-5
        fd = (_dense_logpdf(design, st, b, [(chols + e)[by_codes]], 1.1)
              - _dense_logpdf(design, st, b, [(chols - e)[by_codes]], 1.1)) / 2e-5
        assert grad[h, i, k] == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("formula", [
    "y ~ x + (1 | a/b)",                  # nested
    "y ~ x + (1 | a) + (1 + x | c)",      # crossed, q = 2 in the dense part
    "y ~ x + (f | c) + (1 | a)",          # crossed, categorical slope in the block part
    "y ~ x + (1 + x + z + w + v | g) + (1 | a)",   # crossed, Q = 5 (Blockwise) block part
])
def test_loglik_nested_and_crossed_match_dense(formula):
    _check_logp(formula, _data(), _shared_factors())


def test_loglik_general_with_per_level_factor_in_rest():
    df = _data()
    design = design_matrices("y ~ x + (1 | c) + (1 + x | gr(g, by = h))", df)
    st = sufficient_statistics(design)
    rng = np.random.default_rng(8)
    H = len(design.terms[1].by_levels)
    chols = np.stack([_rand_factor(rng, 2) for _ in range(H)])
    Ts = segment_factors(st, [([0], np.array([[[0.6]]]), None),
                              ([1], chols[None], design.terms[1].by_codes)])
    Ts = [t[0] for t in Ts]      # numpy assembly keeps a draw axis; drop it
    _check_logp("y ~ x + (1 | c) + (1 + x | gr(g, by = h))", df, lambda s, r: Ts)


# ----------------------------------------------------------------------------- gradients

def _fd_check(design, stats, Ts, beta, sigma, f, rtol=1e-5):
    out = f(beta, sigma, *Ts)
    gb, gs, gT = out[1], out[2], out[3:]
    h = 1e-5
    for i in range(len(beta)):
        e = np.zeros_like(beta)
        e[i] = h
        fd = (_dense_logpdf(design, stats, beta + e, Ts, sigma)
              - _dense_logpdf(design, stats, beta - e, Ts, sigma)) / (2 * h)
        assert gb[i] == pytest.approx(fd, rel=rtol, abs=1e-6)
    fd = (_dense_logpdf(design, stats, beta, Ts, sigma + h)
          - _dense_logpdf(design, stats, beta, Ts, sigma - h)) / (2 * h)
    assert gs == pytest.approx(fd, rel=rtol, abs=1e-6)
    for t, (T, g) in enumerate(zip(Ts, gT)):
        for idx in zip(*np.tril_indices(T.shape[-1])):
            e = np.zeros_like(T)
            e[idx] = h
            Tp = [x + e if k == t else x for k, x in enumerate(Ts)]
            Tm = [x - e if k == t else x for k, x in enumerate(Ts)]
            fd = (_dense_logpdf(design, stats, beta, Tp, sigma)
                  - _dense_logpdf(design, stats, beta, Tm, sigma)) / (2 * h)
            assert g[idx] == pytest.approx(fd, rel=rtol, abs=1e-6)


@pytest.mark.parametrize("formula", ["y ~ x + (1 + x | g)", "y ~ x + z + (1 + x + z | g)",
                                     "y ~ x + (1 + x + z + w + v | g)",
                                     "y ~ x + (1 | a) + (1 + x | c)"])
def test_gradient_matches_finite_differences(formula):
    _fd_check(*_check_logp(formula, _data(), _shared_factors(), seed=2))


def test_verify_grad_block_path():
    df = _data()
    st = sufficient_statistics(design_matrices("y ~ x + (1 + x | g)", df))
    rng = np.random.default_rng(0)

    def fn(beta, logsigma, T):
        return marginal_loglik(st, beta, T, pt.exp(logsigma))
    pytensor.gradient.verify_grad(fn, [np.array([50.0, 1.0]), np.array(0.1),
                                       _rand_factor(rng, 2)], rng=rng, mode=MODE)


def test_near_singular_G_finite_and_accurate():
    """sd 1e-8 (singular fit): finite log-density and gradients, still equal to the dense form."""
    df = _data()

    def tiny(stats, rng):
        T = _rand_factor(rng, stats.segments[0].Q)
        T[1:, :] = 0.0
        T[1, 1] = 1e-8
        return [T]
    design, st, Ts, beta, sigma, f = _check_logp("y ~ x + (1 + x | g)", df, tiny)
    out = f(beta, sigma, *Ts)
    assert all(np.all(np.isfinite(o)) for o in out)
    # all sds 1e-8, and exactly 0
    for s in (1e-8, 0.0):
        T = np.eye(2) * s
        out = f(beta, sigma, T)
        assert all(np.all(np.isfinite(o)) for o in out)
        ref = multivariate_normal.logpdf(design.y[:, 0], design.X @ beta, sigma ** 2)
        assert np.sum(ref) == pytest.approx(out[0], rel=1e-10)
    # also in the general (crossed) path
    design = design_matrices("y ~ x + (1 | a) + (1 + x | c)", df)
    st = sufficient_statistics(design)
    assert [s.group for s in st.segments] == ["c", "a"]      # largest segment first
    Ts = [np.diag([1e-8, 0.0]), np.array([[1e-8]])]
    f = _pt_logp(st, Ts)
    out = f(beta, sigma, *Ts)
    assert all(np.all(np.isfinite(o)) for o in out)
    assert out[0] == pytest.approx(_dense_logpdf(design, st, beta, Ts, sigma), rel=1e-10)


def test_c_backend_compiled_function():
    """The default (C) mode gives the same value and gradient as the reference."""
    df = _data()
    design = design_matrices("y ~ x + (1 + x | g)", df)
    st = sufficient_statistics(design)
    beta, sigma, T = pt.vector("beta"), pt.scalar("sigma"), pt.matrix("T")
    lp = marginal_loglik(st, beta, T, sigma)
    f = pytensor.function([beta, sigma, T], [lp, pytensor.grad(lp, sigma)])
    T0 = np.array([[2.0, 0.0], [0.3, 0.5]])
    b0 = np.array([50.0, 1.0])
    val, gs = f(b0, 0.9, T0)
    assert val == pytest.approx(_dense_logpdf(design, st, b0, [T0], 0.9), rel=1e-8)
    fd = (_dense_logpdf(design, st, b0, [T0], 0.9 + 1e-5)
          - _dense_logpdf(design, st, b0, [T0], 0.9 - 1e-5)) / 2e-5
    assert gs == pytest.approx(fd, rel=1e-5)


def test_loglik_uses_no_length_N_tensor():
    df = _data(n=3000)
    st = sufficient_statistics(design_matrices("y ~ x + (1 + x | g)", df))
    beta, sigma, T = pt.vector("beta"), pt.scalar("sigma"), pt.matrix("T")
    lp = marginal_loglik(st, beta, T, sigma)
    from pytensor.graph.traversal import ancestors
    for v in ancestors([lp]):
        shape = getattr(v.type, "shape", ())
        assert 3000 not in (shape or ()), v


# ----------------------------------------------------------------------------- group effects

def _dense_conditional(design, stats, beta, Ts, sigma):
    Z = _dense_Z(design, stats)
    Lam = _dense_Lambda(stats, Ts)
    G = Lam @ Lam.T
    V = Z @ G @ Z.T + sigma ** 2 * np.eye(design.nobs)
    GZt = G @ Z.T
    mu = GZt @ np.linalg.solve(V, design.y[:, 0] - design.X @ beta)
    Sigma = G - GZt @ np.linalg.solve(V, GZt.T)
    return mu, Sigma


def _stack_terms(stats, draws):
    """Per-term draws → (D, M) in the statistics' column order."""
    cols = []
    for seg in stats.segments:
        u = np.concatenate([draws[k] for k in seg.terms], axis=2)
        cols.append(u.reshape(u.shape[0], -1))
    return np.concatenate(cols, axis=1)


def _check_draws(formula, Ts_fn, D=4000, seed=4):
    df = _data(n=150)
    design = design_matrices(formula, df)
    st = sufficient_statistics(design)
    rng = np.random.default_rng(seed)
    Ts = Ts_fn(st, rng)
    beta = np.array([50.0, 0.7])
    sigma = 1.3
    draws = draw_group_effects(st, np.tile(beta, (D, 1)),
                               [np.broadcast_to(T, (D,) + T.shape) for T in Ts],
                               np.full(D, sigma), rng)
    for k, t in enumerate(design.terms):
        assert draws[k].shape == (D, t.J, t.q)
    U = _stack_terms(st, draws)
    mu, Sigma = _dense_conditional(design, st, beta, Ts, sigma)
    sd = np.sqrt(np.diag(Sigma))
    z_mean = (U.mean(0) - mu) / (sd / np.sqrt(D))
    assert np.max(np.abs(z_mean)) < 4.5, np.max(np.abs(z_mean))
    C = np.cov(U.T)
    se_cov = np.sqrt((np.outer(sd ** 2, sd ** 2) + Sigma ** 2) / D)
    assert np.max(np.abs(C - Sigma) / se_cov) < 5.0


def test_draws_block_match_dense_conditional():
    _check_draws("y ~ x + (1 + x | g)", _shared_factors())


def test_draws_block_per_level_factor():
    def fn(stats, rng):
        H = 3
        chols = np.stack([_rand_factor(rng, 2) for _ in range(H)])
        by = stats.by_codes[0]
        return [chols[by]]
    _check_draws("y ~ x + (1 + x | gr(g, by = h))", fn)


def test_draws_general_match_dense_conditional():
    _check_draws("y ~ x + (1 | a) + (1 + x | c)", _shared_factors(), D=2500)


def test_draws_vary_with_parameters():
    """Each draw uses its own (β, T, σ): draws at σ → ∞ shrink to 0, at T → 0 vanish."""
    df = _data(n=150)
    design = design_matrices("y ~ x + (1 + x | g)", df)
    st = sufficient_statistics(design)
    T = np.stack([np.eye(2), np.zeros((2, 2))])
    u = draw_group_effects(st, np.tile([50.0, 1.0], (2, 1)), T, np.array([1.0, 1.0]), 0)[0]
    assert np.abs(u[0]).max() > 0.01 and np.all(u[1] == 0)


def test_shared_data_inputs_give_same_value():
    """Statistics as shared variables (reusable compiled function) == constants; swap data."""
    df = _data()
    st = sufficient_statistics(design_matrices("y ~ x + (1 | a) + (1 + x | c)", df))
    beta, sigma = pt.vector("beta"), pt.scalar("sigma")
    T = [pt.matrix("T1"), pt.matrix("T2")]
    data = stats_tensors(st, shared=True)
    f_sh = pytensor.function([beta, sigma, *T], marginal_loglik(st, beta, T, sigma, data=data),
                             mode=MODE)
    f_c = pytensor.function([beta, sigma, *T], marginal_loglik(st, beta, T, sigma), mode=MODE)
    args = (np.array([50.0, 1.0]), 0.9, np.array([[1.0, 0], [0.2, 0.4]]), np.array([[0.7]]))
    assert f_sh(*args) == pytest.approx(f_c(*args), rel=1e-12)
    # same structure, new data: only the shared values change
    df2 = df.assign(y=df["y"] * 2).iloc[:-7]          # other y and another N
    st2 = sufficient_statistics(design_matrices("y ~ x + (1 | a) + (1 + x | c)", df2))
    for name, var in data.items():
        var.set_value(np.asarray(getattr(st2, name), dtype=float))
    assert st2.N == st.N - 7
    f_c2 = pytensor.function([beta, sigma, *T], marginal_loglik(st2, beta, T, sigma), mode=MODE)
    assert f_sh(*args) == pytest.approx(f_c2(*args), rel=1e-12)
