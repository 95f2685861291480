r"""The marginal engine for ``ar()`` / ``cosy()`` / ``unstr()`` residuals and ``gr(g, cov = A)``
terms.

y ~ N(Xβ, ZGZᵀ + σ²C(ρ)) evaluated from the statistics of
:mod:`mixedformula.design.structured_crossprod` (math there): with H = ΛᵀZᵀPZΛ/σ² + I = LLᵀ,

    −2 log p = N log(2πσ²) + log|C| + 2 log|L| + (rᵀPr − ‖L⁻¹Λᵀs‖²/σ²)/σ²,

the statistics being quadratic in ar's ρ (or Sherman–Morrison in cosy's ρ) with coefficients
computed once, so nothing of length N is in the graph. Block layout (one grouping factor,
series inside levels): J Q×Q factors, unrolled for Q ≤ 4; dense layout (gr(cov = A), series
across levels): one M×M Cholesky, Λ = Σ_b L_b ⊗ T_b (L_b = L_A or I) per segment.

unstr(): the entries of P_s = C[s, s]⁻¹ and log|C[s, s]| per time pattern s from the
conditional engine's unrolled factor L_s (:func:`.unstr.pattern_factor`), P_s = L_s⁻ᵀL_s⁻¹ by
unrolled forward substitution of the identity's columns (scalar ops: no Cholesky / solve op
for nutpie's chain threads to race on).

The parameters are the conditional engine's (``ar`` with brms' flat default, ``cosy`` on
(0, 1), ``cortime`` ~ LKJ, β, the covariance blocks, σ), so names, summaries and predictions read the same
draws. After sampling u is drawn exactly from u | y, β, G, σ, ρ (Gaussian, mean ΛH⁻¹Λᵀs/σ²,
covariance ΛH⁻¹Λᵀ), one draw per posterior draw.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ...design.structured_crossprod import (DATA_FIELDS, StructuredStats, draw_effects_numpy,
                                            statistics_at, unstr_weights_numpy)
from ...design.unstr import correlation_matrix, cortime_pairs
from .autocor import check_autocor_family, coefficients, cosy_parameter
from .marginal import chol_unrolled, forward_unrolled, segment_factors
from .factor_draws import block_factor_draws

UNROLL_MAX = 4


def _as_factor(block, T, xp):
    """(H, Q, Q) Cholesky factors or (H, Q) sds → (H, Q, Q)."""
    if T.ndim == 2:
        T = T[..., :, None] * xp.eye(block.Q)
    return T


def _block_lambda(stats, blocks, chols, xp):
    """Block layout: the one segment's factor, (Q, Q) or (J, Q, Q) (leading draw axis for
    numpy draws)."""
    factors = []
    for b in blocks:
        T = _as_factor(b, chols[b.key], xp)
        factors.append(([p.term for p in b.parts], T if b.by_levels else T[..., 0, :, :],
                        b.by_codes if b.by_levels else None))
    return segment_factors(stats, factors)[0]


def _dense_lambda(stats, blocks, chols, xp):
    """Dense layout: Λ (M, M), block diagonal over segments, Σ_b L_b ⊗ (E_b T_b E_bᵀ) in each
    (level-major columns; L_b = L_A for gr(cov = A), I otherwise; by-levels per level)."""
    per_seg = [None] * len(stats.segments)
    for b in blocks:
        locs = [stats.locate(p.term) for p in b.parts]
        si = locs[0][0]
        seg = stats.segments[si]
        pos = np.concatenate([np.arange(off, off + q) for _, off, q in locs])
        E = np.zeros((seg.Q, len(pos)))
        E[pos, np.arange(len(pos))] = 1.0
        T = _as_factor(b, chols[b.key], xp)                       # (H, Qb, Qb)
        if b.by_levels:
            Tp = xp.matmul(xp.matmul(E, T[np.asarray(b.by_codes, dtype=np.int64)]), E.T)
            lam4 = np.eye(seg.J)[:, None, :, None] * Tp[:, :, None, :]
        else:
            Tp = xp.matmul(xp.matmul(E, T[0]), E.T)
            L = b.cov_factor if b.cov_factor is not None else np.eye(seg.J)
            lam4 = L[:, None, :, None] * Tp[None, :, None, :]
        lam = lam4.reshape((seg.size, seg.size))
        per_seg[si] = lam if per_seg[si] is None else per_seg[si] + lam
    if xp is np:
        return scipy.linalg.block_diag(*per_seg)
    return per_seg[0] if len(per_seg) == 1 else xp.linalg.block_diag(*per_seg)


def structured_lambda(stats: StructuredStats, blocks, chols, xp):
    """Λ for ``stats.layout`` from the blocks' factors (pytensor, or numpy for one draw)."""
    if stats.Qb == 0:
        return None
    if stats.layout == "block":
        return _block_lambda(stats, blocks, chols, xp)
    return _dense_lambda(stats, blocks, chols, xp)


def structured_loglik(stats: StructuredStats, beta, Lam, sigma, rho=None):
    """log p(y | β, Λ, σ, ρ) as a pytensor expression (module docstring)."""
    import pytensor
    import pytensor.tensor as pt
    # shared variables, as the plain marginal engine's statistics (with the arrays as graph
    # constants, two nutpie chains sampling the dense path in PyTensor's C backend failed)
    data = {name: pytensor.shared(np.asarray(getattr(stats, name), dtype=float),
                                  name=f"marginal_structured_{name}")
            for name in DATA_FIELDS if getattr(stats, name) is not None}
    A, B, c, XX, Xe, ee, logdet = statistics_at(stats, rho, pt, data)
    d = beta - data["beta_ols"]
    rPr = ee - 2.0 * pt.dot(d, Xe) + pt.dot(d, pt.dot(XX, d))
    out = stats.N * pt.log(2 * np.pi * sigma ** 2) + logdet
    if stats.Qb:
        s = c - pt.sum(B * d[None, None, :], axis=-1)                   # (nb, Qb)
        Q = stats.Qb
        if stats.layout == "block" and Q <= UNROLL_MAX:
            LtAL = pt.matmul(pt.matmul(pt.swapaxes(Lam, -1, -2), A), Lam) / sigma ** 2
            H = [[LtAL[:, a, b] + (1.0 if a == b else 0.0) for b in range(Q)]
                 for a in range(Q)]
            L = chol_unrolled(H)
            v = pt.sum(s[:, :, None] * Lam, axis=1)                     # Λᵀ s per block
            w = forward_unrolled(L, [v[:, a] for a in range(Q)])
            logdetL = sum(pt.sum(pt.log(L[a][a])) for a in range(Q))
            ww = sum(pt.sum(wa * wa) for wa in w)
        elif stats.nb == 1:
            # one dense system: plain 2-D ops (no batch dimension to carry through Blockwise)
            Lam2 = Lam if Lam.ndim == 2 else Lam[0]
            H = pt.dot(pt.dot(Lam2.T, A[0]), Lam2) / sigma ** 2 + pt.eye(Q)
            L = pt.linalg.cholesky(H)
            w = pt.linalg.solve_triangular(L, pt.dot(Lam2.T, s[0]), lower=True)
            logdetL = pt.sum(pt.log(pt.diagonal(L)))
            ww = pt.sum(w * w)
        else:
            Lam3 = Lam if Lam.ndim == 3 else Lam[None]
            H = (pt.matmul(pt.matmul(pt.swapaxes(Lam3, -1, -2), A), Lam3) / sigma ** 2
                 + pt.eye(Q)[None])
            L = pt.linalg.cholesky(H)
            v = pt.sum(s[:, :, None] * Lam3, axis=1)
            w = pt.linalg.solve_triangular(L, v[:, :, None], lower=True)
            logdetL = pt.sum(pt.log(pt.diagonal(L, axis1=-2, axis2=-1)))
            ww = pt.sum(w * w)
        out = out + 2.0 * logdetL - ww / sigma ** 4
    return -0.5 * (out + rPr / sigma ** 2)


def unstr_weights(stats: StructuredStats, corr, L_full):
    """(w, ld) of :func:`~mixedformula.design.structured_crossprod.statistics_at` for unstr()
    as pytensor expressions of ``cortime`` (module docstring)."""
    import pytensor.tensor as pt
    from .marginal import forward_unrolled
    from .unstr import pattern_factor
    w, ld = [], []
    for times in stats.unstr_times:
        n = len(times)
        L = pattern_factor(corr, L_full, times)
        cols = [forward_unrolled(L, [pt.as_tensor_variable(float(a == k)) for a in range(n)])
                for k in range(n)]                                  # cols[k][a] = (L⁻¹)[a, k]
        w += [sum(cols[a][m] * cols[b][m] for m in range(n)) for a in range(n)
              for b in range(n)]                                    # (L⁻ᵀL⁻¹)[a, b]
        ld.append(2.0 * sum(pt.log(L[a][a]) for a in range(n)))
    return pt.stack(w), pt.stack(ld)


def structured_parameter(structure, priors, stats=None):
    """``ar`` (p,) with brms' flat default, ``cosy`` on (0, 1) (as the conditional engine's
    :func:`.autocor.add_autocor_likelihood`), or unstr()'s ``cortime`` (as
    :func:`.unstr.cortime_parameter`) as its (w, ld); None without a residual structure."""
    if structure is None:
        return None
    if structure.kind == "ar":
        return coefficients("ar", structure.p, priors)
    if structure.kind == "unstr":
        from .unstr import cortime_parameter
        corr, L_full = cortime_parameter(len(structure.times), priors)
        return unstr_weights(stats, corr, L_full)
    return cosy_parameter(priors)


def unstr_rho_draws(stats: StructuredStats, posterior, S: int, times) -> list:
    """unstr(): (w, ld) per posterior draw from the sampler's ``_corr__cortime`` or brms'
    ``cortime__<t_a>__<t_b>`` draws (``times``: the T time labels)."""
    from ...results.naming import cortime_name
    names = [cortime_name(times[a], times[b]) for a, b in cortime_pairs(stats.unstr_T)]
    if "_corr__cortime" in posterior:
        C = np.asarray(posterior["_corr__cortime"].values).reshape(S, stats.unstr_T,
                                                                   stats.unstr_T)
    else:
        C = correlation_matrix(np.stack([np.asarray(posterior[v].values).reshape(S)
                                         for v in names], axis=-1), stats.unstr_T)
    return [unstr_weights_numpy(stats, C[i]) for i in range(S)]


def add_structured_likelihood(design, family, blocks, chols, betas, dpars, stats, priors):
    """Add ``ar``/``cosy`` and the marginal log-likelihood (a ``pm.Potential``) to the model
    in context."""
    import pymc as pm
    structure = getattr(design, "autocor", None)
    if structure is not None:
        check_autocor_family(structure, family)
    import pytensor.tensor as pt
    rho = structured_parameter(structure, priors, stats)
    Lam = structured_lambda(stats, blocks, chols, pt)
    sigma = dpars["sigma"][0][0]
    pm.Potential("marginal_loglik", structured_loglik(stats, betas[0], Lam, sigma, rho))
    return stats


def recover_structured(built, posterior, seed) -> dict:
    """Exact draws of u for every posterior draw: block key → (chain, draw, J, Q)."""
    stats = built.stats
    if stats.Qb == 0:
        return {}
    C, D = posterior.sizes["chain"], posterior.sizes["draw"]
    S = C * D
    beta = posterior["_beta"].values.reshape(S, -1)
    sigma = posterior["sigma"].values.reshape(S)
    rho = None
    if stats.structure == "ar":
        rho = posterior["ar"].values.reshape(S, -1)
    elif stats.structure == "cosy":
        rho = posterior["cosy"].values.reshape(S)
    elif stats.structure == "unstr":
        rho = unstr_rho_draws(stats, posterior, S, built.design.autocor.times)
    draws = {b.key: np.stack(block_factor_draws(b, posterior, S), axis=1)   # (S, H, Q, Q)
             for b in built.blocks}
    rng = np.random.default_rng([int(seed), 20240611])
    u = np.empty((S, stats.nb, stats.Qb))
    for i in range(S):
        chols = {k: v[i] for k, v in draws.items()}
        Lam = structured_lambda(stats, built.blocks, chols, np)
        u[i] = draw_effects_numpy(stats, beta[i], Lam, sigma[i],
                                  None if rho is None else rho[i], rng)
    out = {}
    for b in built.blocks:
        cols = []
        for p in b.parts:
            si, off, q = stats.locate(p.term)
            seg = stats.segments[si]
            if stats.layout == "block":
                us = u
            else:
                us = u[:, 0, seg.start:seg.start + seg.size].reshape(S, seg.J, seg.Q)
            cols.append(us[:, :, off:off + q])
        out[b.key] = np.concatenate(cols, axis=-1).reshape(C, D, b.J, b.Q)
    return out


__all__ = ["add_structured_likelihood", "recover_structured", "structured_lambda",
           "structured_loglik", "structured_parameter", "unstr_rho_draws", "unstr_weights"]
