r"""Marginal likelihood of a multivariate Gaussian mixed model with residual covariance R.

Rows i of group j (one grouping factor) carry r responses,

    y_i = B x_i + U_j z_i + e_i,   e_i ~ N(0, R),   u_j = vec(U_j) ~ N(0, G) = N(0, Λ Λᵀ),

with u_j stacked response-major (entry k·q + c is response k, coefficient c), so that
y_i = B x_i + (I_r ⊗ z_iᵀ) u_j + e_i. With P = R⁻¹, per group

    Σ_i (I ⊗ z_i) P (I ⊗ z_iᵀ) = P ⊗ A_j,          A_j = Σ_i z_i z_iᵀ          (q × q)
    Σ_i (I ⊗ z_i) P e_i      = vec_rm(P S_j),      S_j = Σ_i e_i z_iᵀ           (r × q)

and Woodbury / the determinant lemma give, with L_j L_jᵀ = I + Λᵀ (P ⊗ A_j) Λ, w_j = Λᵀ vec(P S_j):

    −2 log p(Y) = N r log 2π + N log|R| + Σ_j 2 log|L_j| + tr(P EᵀE) − Σ_j ‖L_j⁻¹ w_j‖².

Everything comes from statistics computed once: per group A_j, Z_jᵀE₀ (q × r), Z_jᵀX (q × p),
and globally XᵀX, E₀ᵀE₀ with E₀ = Y − X B̂ (least squares; the centring avoids cancellation),
E = E₀ − X (B − B̂)ᵀ. Cost per gradient O(J (r q)³), independent of N.

Group effects after sampling: u_j = Λ L_j⁻ᵀ (L_j⁻¹ w_j + z), z ~ N(0, I), exactly u_j | Y, B, G, R.

Written by hand: no library evaluates a multivariate mixed-model likelihood from sufficient
statistics inside a PyMC graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...design import Design
from ...design.reterms import CovBlock as Block


@dataclass
class MvStats:
    N: int
    r: int
    q: int
    J: int
    XtX: np.ndarray          # (p, p)
    B_ols: np.ndarray        # (r, p)
    E0tE0: np.ndarray        # (r, r)
    A: np.ndarray            # (J, q, q)
    ZtE0: np.ndarray         # (J, q, r)
    ZtX: np.ndarray          # (J, q, p)
    positions: list          # per block: indices into the r·q stacked coefficients


def mv_statistics(design: Design, blocks: list[Block]) -> MvStats:
    Y = np.asarray(design.y, dtype=float)
    X = np.asarray(design.X, dtype=float)
    N, r = Y.shape
    codes = design.terms[0].codes
    J = design.terms[0].J
    W = np.concatenate([t.X for t in design.terms], axis=1)       # z_i, (N, q)
    q = W.shape[1]
    offsets = np.cumsum([0] + [t.q for t in design.terms])
    XtX = X.T @ X
    B_ols = np.linalg.lstsq(X, Y, rcond=None)[0].T if X.shape[1] else np.zeros((r, 0))
    E0 = Y - X @ B_ols.T
    order = np.argsort(codes, kind="stable")
    starts = np.searchsorted(codes[order], np.arange(J))

    def per_group(U, V):
        prod = (U[:, :, None] * V[:, None, :])[order]
        return np.add.reduceat(prod, starts, axis=0)

    positions = []
    for b in blocks:
        pos = []
        for part in b.parts:
            off = offsets[part.term]
            pos.extend(part.response * q + off + np.arange(part.q))
        positions.append(np.asarray(pos, dtype=np.int64))
    return MvStats(N=N, r=r, q=q, J=J, XtX=XtX, B_ols=B_ols, E0tE0=E0.T @ E0,
                   A=per_group(W, W), ZtE0=per_group(W, E0), ZtX=per_group(W, X),
                   positions=positions)


def assemble_lambda(stats: MvStats, chols: list, xp):
    """Λ (rq × rq) with each block's factor placed at its coefficient positions."""
    rq = stats.r * stats.q
    total = None
    for pos, chol in zip(stats.positions, chols):
        P = np.zeros((rq, len(pos)))
        P[pos, np.arange(len(pos))] = 1.0
        placed = xp.matmul(xp.matmul(P, chol), P.T)
        total = placed if total is None else total + placed
    return total


def _s_matrix(stats: MvStats, dB, xp):
    """S_j = Σ_i e_i z_iᵀ = (Z_jᵀE₀)ᵀ − dB (Z_jᵀX)ᵀ, shape (…, J, r, q)."""
    S = xp.swapaxes(stats.ZtE0, -1, -2) if xp is np else stats.ZtE0.transpose(0, 2, 1)
    if stats.XtX.shape[0]:
        S = S - xp.matmul(dB[..., None, :, :], xp.swapaxes(stats.ZtX, -1, -2)
                          if xp is np else stats.ZtX.transpose(0, 2, 1))
    return S


def _inverse_from_chol(L, r: int):
    """R⁻¹ = L⁻ᵀ L⁻¹ for a small r × r lower-triangular L, by unrolled forward substitution
    (scipy's solve_triangular on a 2×2 cost 10 ms per call through the threaded BLAS here)."""
    import pytensor.tensor as pt
    inv = [[None] * r for _ in range(r)]         # inv[i][j] = (L⁻¹)[i, j]
    for j in range(r):
        for i in range(r):
            if i < j:
                inv[i][j] = pt.zeros(())
            elif i == j:
                inv[i][j] = 1.0 / L[i, i]
            else:
                acc = sum(L[i, k] * inv[k][j] for k in range(j, i))
                inv[i][j] = -acc / L[i, i]
    Linv = pt.stack([pt.stack(row) for row in inv])
    return pt.dot(Linv.T, Linv)


UNROLL_MAX = 6    # r·q up to this: Cholesky and solves unrolled into elementwise ops over J


def mv_marginal_loglik(stats: MvStats, B, Lam, L_R):
    """log p(Y | B, G = ΛΛᵀ, R = L_R L_Rᵀ) (pytensor scalar).

    Only 2-d products and elementwise ops over the J groups: batched (Blockwise) Cholesky and
    matmul were ~100× slower per gradient for J = 16, r·q = 4 (7 ms vs 0.07 ms in numba)."""
    import pytensor.tensor as pt
    from pytensor.tensor.slinalg import cholesky, solve_triangular
    from .marginal import chol_unrolled, forward_unrolled
    r, q, J = stats.r, stats.q, stats.J
    rq = r * q
    dB = B - stats.B_ols                                                   # (r, p)
    EtE = pt.as_tensor_variable(stats.E0tE0)
    if stats.XtX.shape[0]:
        EtE = EtE + pt.dot(pt.dot(dB, stats.XtX), dB.T)
    P = _inverse_from_chol(L_R, r)                                         # R⁻¹
    logdet_R = 2.0 * pt.sum(pt.log(pt.diagonal(L_R)))
    A = pt.as_tensor_variable(stats.A)
    PA = (P[None, :, None, :, None] * A[:, None, :, None, :]).reshape((J, rq, rq))
    PAL = pt.dot(PA.reshape((J * rq, rq)), Lam).reshape((J, rq, rq))      # (P⊗A_j) Λ
    K = pt.dot(Lam.T, PAL.transpose(1, 0, 2).reshape((rq, J * rq)))       # Λᵀ (P⊗A_j) Λ
    M = K.reshape((rq, J, rq)).transpose(1, 0, 2) + pt.eye(rq)[None]
    S = stats.ZtE0.transpose(0, 2, 1)                                      # (J, r, q)
    if stats.XtX.shape[0]:
        S = S - pt.tensordot(stats.ZtX, dB, axes=[[2], [1]]).transpose(0, 2, 1)
    PS = pt.tensordot(S, P, axes=[[1], [1]]).transpose(0, 2, 1).reshape((J, rq))
    w = pt.dot(PS, Lam)                                                    # Λᵀ vec(P S_j)
    if rq <= UNROLL_MAX:
        L = chol_unrolled([[M[:, a, b] for b in range(rq)] for a in range(rq)])
        v = forward_unrolled(L, [w[:, a] for a in range(rq)])
        logdet_L = 2.0 * sum(pt.log(L[a][a]).sum() for a in range(rq))
        vv = sum((x ** 2).sum() for x in v)
    else:
        L = cholesky(M)
        v = solve_triangular(L, w[..., None], lower=True)[..., 0]
        logdet_L = 2.0 * pt.sum(pt.log(pt.diagonal(L, axis1=-2, axis2=-1)))
        vv = pt.sum(v ** 2)
    quad = pt.sum(P * EtE) - vv
    N = stats.N
    return -0.5 * (N * r * math.log(2 * math.pi) + N * logdet_R + logdet_L + quad)


def mv_draw_group_effects(stats: MvStats, B_draws, Lam_draws, LR_draws, rng) -> np.ndarray:
    """Exact draws u_j | Y, B, G, R; returns (D, J, r·q) response-major."""
    D = B_draws.shape[0]
    r, q, J = stats.r, stats.q, stats.J
    rq = r * q
    out = np.empty((D, J, rq))
    eye = np.eye(r)
    for d in range(D):
        Lr = LR_draws[d]
        Linv = np.linalg.solve(Lr, eye)
        P = Linv.T @ Linv
        Lam = Lam_draws[d]
        dB = B_draws[d] - stats.B_ols
        PA = (P[None, :, None, :, None] * stats.A[:, None, :, None, :]).reshape(J, rq, rq)
        M = np.eye(rq)[None] + Lam.T[None] @ PA @ Lam[None]
        L = np.linalg.cholesky(M)
        S = _s_matrix(stats, dB, np)
        w = (P[None] @ S).reshape(J, rq) @ Lam
        z = rng.standard_normal((J, rq))
        v = np.linalg.solve(L, w[..., None])[..., 0] + z
        x = np.linalg.solve(np.swapaxes(L, -1, -2), v[..., None])[..., 0]
        out[d] = x @ Lam.T
    return out
