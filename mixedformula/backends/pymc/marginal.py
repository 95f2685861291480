r"""Marginal likelihood of a Gaussian mixed model (u integrated out) and exact group effects.

Model: y = Xβ + Zu + ε, u ~ N(0, G), ε ~ N(0, σ²I), so y ~ N(Xβ, V), V = ZGZᵀ + σ²I. Write
G = ΛΛᵀ, with Λ block diagonal: one Q×Q factor T_j per level j of each segment (see
:mod:`mixedformula.design.crossprod`; T_j = T for all levels, or T_{h(j)} for ``gr(g, by = h)``).
T need not be triangular — only G = TTᵀ matters. Woodbury and the matrix determinant lemma give,
with L Lᵀ = ΛᵀZᵀZΛ/σ² + I (≥ I, so well conditioned even when G is singular), s = Zᵀ(y − Xβ),
rᵀr = ‖y − Xβ‖²:

    −2 log p(y | β, G, σ) = N log(2πσ²) + 2 log|L| + (rᵀr − σ⁻² ‖L⁻¹ Λᵀ s‖²) / σ².

One grouping factor (``stats.kind == "block"``): L is block diagonal, L_j L_jᵀ = T_jᵀA_jT_j/σ² + I,
s_j = c_j − B_jβ, and the cost per log-density + gradient is O(J Q³), independent of N.  It is
one fused op with a hand-derived gradient (:mod:`.marginal_block_op`: a numba kernel, also
behind its ``perform``, and a JAX version).  The first segment of the general case below is built from pytensor ops: for
Q ≤ 4 the J small Cholesky factors and triangular solves are unrolled into elementwise ops on
length-J vectors; larger Q uses batched ``pt.linalg.cholesky`` / ``solve_triangular``.

Several factors (``"general"``: nested, crossed): the first segment (most columns J₁Q₁) is
factored block-wise as above; the other r columns by a Schur complement,

    L₂₁ = (Λ₂ᵀ Z₂ᵀZ₁ Λ₁ / σ²) L₁⁻ᵀ,    L₂₂L₂₂ᵀ = Λ₂ᵀ Z₂ᵀZ₂ Λ₂ / σ² + I − L₂₁L₂₁ᵀ   (dense r×r),

costing O(J₁Q₁³ + r² J₁Q₁ + r³) per evaluation and O(r J₁Q₁ + r²) memory;
:func:`~mixedformula.design.crossprod.sufficient_statistics` raises ``MarginalTooLargeError`` when
r > 4000 (or the coupling exceeds 2.5·10⁷ entries), so the caller can fall back to the
conditional engine.

Numerics: rᵀr and s use the OLS-centred statistics (rᵀr = eᵀe + dᵀXᵀXd, s = Zᵀe − ZᵀXd with
d = β − β̂_ols), avoiding cancellation when y has a large mean.

Group effects (after sampling), exactly: u | y, β, G, σ ~ N(μ, Σ) with Σ = Λ(LLᵀ)⁻¹Λᵀ,
μ = Σ Zᵀ(y − Xβ)/σ²; a draw is u = Λ L⁻ᵀ(L⁻¹Λᵀs/σ² + z), z ~ N(0, I).

What the builder passes
-----------------------
* ``stats = sufficient_statistics(design)`` (numpy, once).
* ``beta``: pytensor vector (p,) — coefficients of the columns of ``design.X`` *as built*
  (un-centred; if the sampler uses centred columns, pass β on the original scale).
* ``sigma``: pytensor scalar, residual sd.
* ``T``: one factor per segment, in ``stats.segments`` order — a (Q, Q) tensor (same G for all
  levels) or a (J, Q, Q) stack (per level); a bare tensor when there is one segment. Build it from
  the covariance blocks with :func:`segment_factors`: ``factors = [(term_indices, chol, by_codes),
  ...]``, where ``chol`` is the block's (Q_b, Q_b) Cholesky factor of its G block (e.g. the
  ``pm.LKJCholeskyCov`` factor or ``diag(sd)``) or (H, Q_b, Q_b) for ``gr(by=)`` with
  ``by_codes`` (J,) mapping levels to by-levels, and ``term_indices`` the design terms whose
  columns the block covers, in the block's coefficient order.
* ``pm.Potential("marginal_loglik", marginal_loglik(stats, beta, T, sigma))`` (or
  ``pm.CustomDist``); data enter as constants, or as shared variables via
  ``stats_tensors(stats, shared=True)`` passed as ``data=`` (lets a compiled function be reused).
* After sampling: ``draw_group_effects(stats, beta_draws (D,p), T_draws, sigma_draws (D,), rng)``
  with ``T_draws`` from ``segment_factors`` on numpy draws ((D,Q_b,Q_b) or (D,H,Q_b,Q_b));
  returns one array (D, J_k, q_k) per design term.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt

from ...design.crossprod import MarginalStats, MarginalTooLargeError

__all__ = ["MarginalTooLargeError", "draw_group_effects", "marginal_loglik", "segment_factors",
           "stats_tensors"]

UNROLL_MAX = 4          # unrolled elementwise Cholesky for Q ≤ this


# --------------------------------------------------------------------------- factors

def segment_factors(stats: MarginalStats, factors) -> list:
    """Assemble per-segment factors from per-covariance-block Cholesky factors.

    ``factors``: iterable of ``(term_indices, chol, by_codes)``. ``chol`` is (…, Q_b, Q_b), or
    (…, H, Q_b, Q_b) when ``by_codes`` (J,) is given; leading dims (…) are draws for numpy input
    and absent for pytensor input. Block b's columns are the columns of its terms, in order. The
    result has one entry per segment: (…, Q, Q), or (…, J, Q, Q) if any block of it is per level.
    Works on numpy arrays and on pytensor tensors.
    """
    factors = list(factors)
    is_np = all(isinstance(f[1], np.ndarray) for f in factors)
    xp = np if is_np else pt
    per_seg: list[list] = [[] for _ in stats.segments]
    for terms, chol, by_codes in factors:
        terms = [int(t) for t in np.atleast_1d(terms)]
        locs = [stats.locate(t) for t in terms]
        segs = {si for si, _, _ in locs}
        if len(segs) != 1:
            raise ValueError("a covariance block must lie in one segment (same grouping factor)")
        si = segs.pop()
        pos = np.concatenate([np.arange(off, off + q) for _, off, q in locs])
        if not is_np:
            chol = pt.as_tensor_variable(chol)
        if by_codes is not None:
            by_codes = np.asarray(by_codes, dtype=np.int64)
            chol = xp.take(chol, by_codes, axis=chol.ndim - 3)
        per_seg[si].append((pos, chol, by_codes is not None))
    out = []
    for si, seg in enumerate(stats.segments):
        Q = seg.Q
        items = per_seg[si]
        covered = np.sort(np.concatenate([p for p, _, _ in items])) if items else np.zeros(0)
        if not np.array_equal(covered, np.arange(Q)):
            raise ValueError(f"the covariance blocks do not cover the columns of segment "
                             f"{seg.group} exactly once")
        if len(items) == 1 and np.array_equal(items[0][0], np.arange(Q)):
            out.append(items[0][1])
            continue
        per_level = any(pl for _, _, pl in items)
        total = None
        for pos, chol, pl in items:
            P = np.zeros((Q, len(pos)))
            P[pos, np.arange(len(pos))] = 1.0
            if per_level and not pl:
                chol = chol[..., None, :, :]
            placed = xp.matmul(xp.matmul(P, chol), P.T)
            total = placed if total is None else total + placed
        out.append(total)
    return out


def _as_list(stats: MarginalStats, T) -> list:
    if isinstance(T, (list, tuple)):
        T = list(T)
    else:
        T = [T]
    if len(T) != len(stats.segments):
        raise ValueError(f"expected {len(stats.segments)} factor(s) (one per segment), "
                         f"got {len(T)}")
    return T


# --------------------------------------------------------------------------- data as tensors

_FIELDS = ("N", "XtX", "beta_ols", "ete", "A", "B", "ce", "C22", "C21", "B2", "c2e", "const")


def shared_values(stats: MarginalStats) -> dict:
    """Name → value of each shared variable ``stats_tensors(stats, shared=True)`` makes (what
    a compiled model of the same structure takes for other data, nutpie's ``with_data``)."""
    return {f"marginal_{name}": np.asarray(getattr(stats, name), dtype=float)
            for name in _FIELDS if getattr(stats, name) is not None}


def stats_tensors(stats: MarginalStats, shared: bool = False) -> dict:
    """The statistics the graph reads, as pytensor constants (default) or shared variables.

    With ``shared=True`` a compiled function can be reused for other data of the same structure
    (same segments, J, Q and p; N may differ) by ``set_value`` on each variable.
    """
    out = {}
    for name in _FIELDS:
        val = getattr(stats, name)
        if val is None:
            continue
        val = np.asarray(val, dtype=float)
        out[name] = (pytensor.shared(val, name=f"marginal_{name}") if shared
                     else pt.constant(val, name=f"marginal_{name}"))
    return out


# --------------------------------------------------------------------------- small kernels

def chol_unrolled(M):
    """Cholesky of a Q×Q matrix given as nested lists of (broadcastable) tensors, M[a][b]."""
    Q = len(M)
    L = [[None] * Q for _ in range(Q)]
    for j in range(Q):
        s = M[j][j]
        for k in range(j):
            s = s - L[j][k] * L[j][k]
        L[j][j] = pt.sqrt(s)
        for i in range(j + 1, Q):
            s = M[i][j]
            for k in range(j):
                s = s - L[i][k] * L[j][k]
            L[i][j] = s / L[j][j]
    return L


def forward_unrolled(L, w):
    """Solve L v = w (L lower triangular, nested lists); w a list of Q tensors."""
    v = []
    for i in range(len(w)):
        s = w[i]
        for k in range(i):
            s = s - L[i][k] * v[k]
        v.append(s / L[i][i])
    return v


def _as3(T):
    T = pt.as_tensor_variable(T)
    if T.ndim == 2:
        return T[None]
    if T.ndim == 3:
        return T
    raise ValueError(f"a factor must be (Q, Q) or (J, Q, Q), got {T.ndim} dimensions")


class _BlockFactor:
    """L_j L_jᵀ = T_jᵀ A_j T_j / σ² + I for all levels j of one segment (pytensor)."""

    def __init__(self, A, T3, sigma2, Q: int):
        self.Q = Q
        AT = sum(A[:, :, b, None] * T3[:, None, b, :] for b in range(Q))        # (J,Q,Q)
        K = sum(T3[:, a, :, None] * AT[:, a, None, :] for a in range(Q))        # TᵀAT
        Mj = K / sigma2 + pt.eye(Q)[None]
        if Q <= UNROLL_MAX:
            self.L = chol_unrolled([[Mj[:, a, b] for b in range(Q)] for a in range(Q)])
            self.logdet = 2.0 * sum(pt.log(self.L[a][a]).sum() for a in range(Q))
        else:
            self.Lm = pt.linalg.cholesky(Mj)
            diag = pt.diagonal(self.Lm, axis1=-2, axis2=-1)
            self.logdet = 2.0 * pt.log(diag).sum()

    def solve(self, W):
        """L_j⁻¹ W[..., j, :] for W (..., J, Q); returns the same shape."""
        Q = self.Q
        if Q <= UNROLL_MAX:
            v = forward_unrolled(self.L, [W[..., a] for a in range(Q)])
            return pt.stack(v, axis=-1)
        if W.ndim == 2:
            return pt.linalg.solve_triangular(self.Lm, W[..., None], lower=True)[..., 0]
        # W (r, J, Q) → (J, Q, r)
        Wt = W.transpose(1, 2, 0)
        return pt.linalg.solve_triangular(self.Lm, Wt, lower=True).transpose(2, 0, 1)


def _lambda_t_rows(stats: MarginalStats, Ts3, C):
    """Λ₂ᵀ C for C with one row per column of the non-first segments (r rows)."""
    parts = []
    row = 0
    for seg, T3 in zip(stats.segments[1:], Ts3):
        Q, J = seg.Q, seg.J
        Cs = C[row:row + seg.size].reshape((J, Q, -1))
        parts.append(sum(T3[:, a, :, None] * Cs[:, a, None, :] for a in range(Q))
                     .reshape((seg.size, -1)))
        row += seg.size
    return pt.concatenate(parts, axis=0) if len(parts) > 1 else parts[0]


def _lambda_t_vec(stats: MarginalStats, Ts3, s):
    parts = []
    row = 0
    for seg, T3 in zip(stats.segments[1:], Ts3):
        Ss = s[row:row + seg.size].reshape((seg.J, seg.Q))
        parts.append((T3 * Ss[:, :, None]).sum(axis=1).reshape((seg.size,)))
        row += seg.size
    return pt.concatenate(parts) if len(parts) > 1 else parts[0]


# --------------------------------------------------------------------------- log-likelihood

def marginal_loglik(stats: MarginalStats, beta, T, sigma, data: dict | None = None):
    """log p(y | β, G, σ) with u integrated out (pytensor scalar; see module docstring).

    ``beta`` (p,), ``sigma`` scalar, ``T`` one factor per segment ((Q,Q) or (J,Q,Q); a bare
    tensor for one segment). Nothing in the graph has length N. With weights()/se() the
    statistics are those of the scaled rows and ``const`` is added (design/crossprod.py).
    """
    d = data if data is not None else stats_tensors(stats)
    out = _scaled_loglik(stats, beta, T, sigma, d)
    return out + d["const"] if "const" in d else out


def _scaled_loglik(stats: MarginalStats, beta, T, sigma, d: dict):
    beta = pt.as_tensor_variable(beta)
    sigma = pt.as_tensor_variable(sigma)
    sigma2 = sigma ** 2
    N = d["N"]
    p = stats.p
    if p:
        dv = beta - d["beta_ols"]
        rtr = d["ete"] + pt.dot(dv, pt.dot(d["XtX"], dv))
    else:
        dv = None
        rtr = d["ete"]
    const = N * (math.log(2 * math.pi) + pt.log(sigma2))   # N is data, not baked in
    if not stats.segments:
        return -0.5 * (const + rtr / sigma2)
    Ts = _as_list(stats, T)
    Ts3 = [_as3(t) for t in Ts]
    for seg, t in zip(stats.segments, Ts3):
        if t.type.shape[-1] is not None and t.type.shape[-1] != seg.Q:
            raise ValueError(f"factor for {seg.group} must be {seg.Q}x{seg.Q}")
    if stats.kind == "block":
        from .marginal_block_op import block_loglik
        return block_loglik(beta, Ts3[0], sigma, d)
    A = d["A"]
    s1 = d["ce"] - (d["B"] * dv[None, None, :]).sum(axis=-1) if p else d["ce"]
    fac = _BlockFactor(A, Ts3[0], sigma2, stats.segments[0].Q)
    w1 = (Ts3[0] * s1[:, :, None]).sum(axis=1)                                 # (J1, Q1)
    v1 = fac.solve(w1)
    quad = (v1 ** 2).sum()
    logdet = fac.logdet
    # several grouping factors: Schur complement of the first segment's block factor
    seg1 = stats.segments[0]
    J1, Q1 = seg1.J, seg1.Q
    r = stats.r
    T1 = Ts3[0]
    # K = Λ₂ᵀ C21 Λ₁ / σ²  (r, J1, Q1)
    Y = _lambda_t_rows(stats, Ts3[1:], d["C21"]).reshape((r, J1, Q1))
    K = sum(Y[:, :, a, None] * T1[None, :, a, :] for a in range(Q1)) / sigma2
    L21 = fac.solve(K).reshape((r, J1 * Q1))
    C22l = _lambda_t_rows(stats, Ts3[1:], d["C22"])                   # Λ₂ᵀ C22
    M22 = _lambda_t_rows(stats, Ts3[1:], C22l.T) / sigma2             # Λ₂ᵀ C22 Λ₂ / σ²
    M22 = M22 + pt.eye(r) - pt.dot(L21, L21.T)
    M22 = 0.5 * (M22 + M22.T)
    L22 = pt.linalg.cholesky(M22)
    s2 = d["c2e"] - pt.dot(d["B2"], dv) if p else d["c2e"]
    w2 = _lambda_t_vec(stats, Ts3[1:], s2)
    v2 = pt.linalg.solve_triangular(L22, w2 - pt.dot(L21, v1.reshape((J1 * Q1,))),
                                    lower=True)
    quad = quad + (v2 ** 2).sum()
    logdet = logdet + 2.0 * pt.log(pt.diagonal(L22)).sum()
    return -0.5 * (const + logdet + (rtr - quad / sigma2) / sigma2)


# --------------------------------------------------------------------------- group effects

def _np3(T, D):
    """numpy factor draws (D,Q,Q) or (D,J,Q,Q) → (D, J or 1, Q, Q)."""
    T = np.asarray(T, dtype=float)
    if T.ndim == 3:
        T = T[:, None]
    if T.ndim != 4 or T.shape[0] != D:
        raise ValueError("factor draws must be (draws, Q, Q) or (draws, J, Q, Q)")
    return T


def _split_terms(stats: MarginalStats, seg_draws: list) -> list:
    """Per-segment draws (D, J, Q) → per design term (D, J, q_k), in design term order."""
    n_terms = 1 + max(k for s in stats.segments for k in s.terms)
    out = [None] * n_terms
    for s, u in zip(stats.segments, seg_draws):
        for k, off, q in zip(s.terms, s.offsets, s.qs):
            out[k] = u[:, :, off:off + q]
    return out


def draw_group_effects(stats: MarginalStats, beta_draws, T_draws, sigma_draws, rng=None,
                       chunk: int = 2_000_000) -> list:
    """Exact draws of u | y, β, G, σ for each posterior draw (numpy).

    ``beta_draws`` (D, p), ``sigma_draws`` (D,), ``T_draws`` one entry per segment, (D, Q, Q) or
    (D, J, Q, Q) (a bare array for one segment). Returns one array (D, J_k, q_k) per design term.
    Block path: vectorised over draws and levels (in chunks of ~``chunk`` numbers). General
    path: vectorised over levels, one dense r×r factorisation per draw.
    """
    rng = np.random.default_rng(rng)
    beta_draws = np.atleast_2d(np.asarray(beta_draws, dtype=float))
    sigma_draws = np.asarray(sigma_draws, dtype=float).ravel()
    D = sigma_draws.shape[0]
    if stats.p and beta_draws.shape != (D, stats.p):
        raise ValueError(f"beta_draws must be ({D}, {stats.p})")
    if not stats.segments:
        return []
    Ts = [_np3(t, D) for t in _as_list(stats, T_draws)]
    dv = beta_draws - stats.beta_ols[None, :] if stats.p else np.zeros((D, 0))
    if stats.kind == "block":
        seg = stats.segments[0]
        J, Q = seg.J, seg.Q
        out = np.empty((D, J, Q))
        step = max(1, int(chunk // max(1, J * Q * Q)))
        for a in range(0, D, step):
            b = min(D, a + step)
            out[a:b] = _draw_block(stats.A, stats.B, stats.ce, dv[a:b], Ts[0][a:b],
                                   sigma_draws[a:b], rng)
        return _split_terms(stats, [out])
    segs = stats.segments
    outs = [np.empty((D, s.J, s.Q)) for s in segs]
    for i in range(D):
        us = _draw_general(stats, dv[i], [t[i] for t in Ts], sigma_draws[i], rng)
        for o, u in zip(outs, us):
            o[i] = u
    return _split_terms(stats, outs)


def _draw_block(A, B, ce, dv, T, sigma, rng):
    """Vectorised over draws (D) and levels (J): u = T L⁻ᵀ(L⁻¹Tᵀs/σ² + z)."""
    D = T.shape[0]
    J, Q = A.shape[0], A.shape[1]
    s2 = (sigma ** 2)[:, None, None]
    s = ce[None] - np.einsum("jqp,dp->djq", B, dv)                          # (D,J,Q)
    Tt = np.swapaxes(T, -1, -2)
    M = Tt @ A[None] @ T / s2[..., None] + np.eye(Q)                        # (D,J,Q,Q)
    L = np.linalg.cholesky(M)
    w = (Tt @ s[..., None])[..., 0] / s2                                     # Tᵀs/σ²
    a = np.linalg.solve(L, w[..., None])[..., 0]
    z = rng.standard_normal((D, J, Q))
    v = np.linalg.solve(np.swapaxes(L, -1, -2), (a + z)[..., None])
    return (np.broadcast_to(T, (D, J, Q, Q)) @ v)[..., 0]


def _seg_lambda_t(seg, T, x):
    """Λ_segᵀ x for x (J·Q, k) with T (J or 1, Q, Q)."""
    X = x.reshape(seg.J, seg.Q, -1)
    return np.einsum("jab,jak->jbk", np.broadcast_to(T, (seg.J, seg.Q, seg.Q)), X) \
        .reshape(seg.size, -1)


def _draw_general(stats: MarginalStats, dv, Ts, sigma, rng):
    """One draw of all group effects for the nested/crossed case (Schur complement)."""
    segs = stats.segments
    s1seg = segs[0]
    J1, Q1, r = s1seg.J, s1seg.Q, stats.r
    s2_ = sigma ** 2
    T1 = np.broadcast_to(Ts[0], (J1, Q1, Q1))
    T1t = np.swapaxes(T1, -1, -2)
    L1 = np.linalg.cholesky(T1t @ stats.A @ T1 / s2_ + np.eye(Q1))
    L1inv = np.linalg.inv(L1)
    s1 = stats.ce - stats.B @ dv
    w1 = np.einsum("jab,ja->jb", T1, s1)
    # rest
    def lam2t(x):
        parts, row = [], 0
        for seg, T in zip(segs[1:], Ts[1:]):
            parts.append(_seg_lambda_t(seg, T, x[row:row + seg.size]))
            row += seg.size
        return np.concatenate(parts, axis=0)
    Y = lam2t(stats.C21).reshape(r, J1, Q1)
    K = np.einsum("rja,jab->rjb", Y, T1) / s2_
    L21 = np.einsum("jab,rjb->rja", L1inv, K).reshape(r, J1 * Q1)
    M22 = lam2t(lam2t(stats.C22).T) / s2_ + np.eye(r) - L21 @ L21.T
    L22 = np.linalg.cholesky(0.5 * (M22 + M22.T))
    s2 = stats.c2e - stats.B2 @ dv
    w2 = lam2t(s2[:, None])[:, 0]
    a1 = np.einsum("jab,jb->ja", L1inv, w1 / s2_)
    a2 = np.linalg.solve(L22, w2 / s2_ - L21 @ a1.ravel())
    b1 = a1 + rng.standard_normal((J1, Q1))
    b2 = a2 + rng.standard_normal(r)
    v2 = np.linalg.solve(L22.T, b2)
    v1 = np.einsum("jba,jb->ja", L1inv, b1 - (L21.T @ v2).reshape(J1, Q1))
    out = [np.einsum("jab,jb->ja", T1, v1)]
    row = 0
    for seg, T in zip(segs[1:], Ts[1:]):
        vs = v2[row:row + seg.size].reshape(seg.J, seg.Q)
        out.append(np.einsum("jab,jb->ja", np.broadcast_to(T, (seg.J, seg.Q, seg.Q)), vs))
        row += seg.size
    return out
