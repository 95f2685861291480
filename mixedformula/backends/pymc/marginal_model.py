"""Wire the marginal likelihood (:mod:`.marginal`) into the model builder, and recover u after.

The model keeps exactly the parameters of the conditional engine (β with brms' centring, the
covariance blocks, σ) but replaces ``z`` and the N-row likelihood by

    log p(y | β, G, σ) = log N(y; Xβ, Z G Zᵀ + σ² I)

(with brms' ``weights()`` / ``se()``: the same of the √w/se-scaled rows plus a σ term,
:class:`~mixedformula.design.additions.RowScaling`) evaluated from sufficient statistics (a ``pm.Potential``; nothing of length N in the graph),
made when the engine is chosen (:func:`mixedformula.engine.decide`).
After sampling, u is drawn exactly from u | y, β, G, σ for every posterior draw, so ``ranef``,
``coef`` and predictions work as with the conditional engine.
"""

from __future__ import annotations

import numpy as np

from ...design import Design
from .marginal import draw_group_effects, marginal_loglik, segment_factors, stats_tensors
from .marginal_mv import (assemble_lambda, mv_draw_group_effects, mv_marginal_loglik,
                          mv_statistics)
from ...design.reterms import CovBlock as Block
from .factor_draws import block_factor_draws, packed_to_chol


def _factor_tensor(block: Block, T):
    """(H, Q, Q) Cholesky factors or (H, Q) sds → what segment_factors takes for this block."""
    import pytensor.tensor as pt
    if not (block.correlated and block.Q > 1):
        T = T[:, :, None] * pt.eye(block.Q)[None]
    return T if block.by_levels else T[0]


def add_marginal_likelihood(design: Design, blocks: list[Block], chols: dict, betas, dpars,
                            resp, stats):
    """Add the marginal log-likelihood to the model in context; returns the statistics it
    reads (``stats``, or the multivariate ones made here from the blocks)."""
    import pymc as pm
    import pytensor.tensor as pt
    if len(resp) > 1:
        mv = mv_statistics(design, blocks)
        lam = assemble_lambda(mv, [_factor_tensor(b, chols[b.key]) for b in blocks], pt)
        L_R = dpars["chol_R"][0] if "chol_R" in dpars else pt.diag(
            pt.stack([s_[0] for s_ in dpars["sigma"]]))
        pm.Potential("marginal_loglik", mv_marginal_loglik(mv, pt.stack(betas), lam, L_R))
        return mv
    factors = [([p.term for p in b.parts], _factor_tensor(b, chols[b.key]),
                b.by_codes if b.by_levels else None) for b in blocks]
    T = segment_factors(stats, factors)
    data = stats_tensors(stats, shared=True)
    # se() without sigma = TRUE: the rows are scaled by 1/se, σ ≡ 1 there (design/crossprod.py)
    sigma = 1.0 if stats.sigma_known else dpars["sigma"][0][0]
    pm.Potential("marginal_loglik", marginal_loglik(stats, betas[0], T, sigma, data=data))
    return stats


def _recover_mv(built, posterior, seed) -> dict:
    stats = built.stats
    resp = built.design.response_names
    C, D = posterior.sizes["chain"], posterior.sizes["draw"]
    n = C * D
    B = np.stack([posterior[f"_beta__{rn}"].values.reshape(n, -1) for rn in resp], axis=1)
    lam = assemble_lambda(stats, [block_factor_draws(b, posterior, n)[0]
                                  for b in built.blocks], np)
    if "chol__rescor" in posterior:
        L_R = packed_to_chol(posterior["chol__rescor"].values.reshape(n, -1), len(resp))
    else:
        sig = np.stack([posterior[f"sigma__{rn}"].values.reshape(n) for rn in resp], axis=1)
        L_R = sig[:, :, None] * np.eye(len(resp))[None]
    rng = np.random.default_rng([int(seed), 20240611])
    u = mv_draw_group_effects(stats, B, lam, L_R, rng)
    return {b.key: u[..., pos].reshape(C, D, b.J, b.Q)
            for b, pos in zip(built.blocks, stats.positions)}


def recover_group_effects(built, posterior, seed) -> dict:
    """Exact draws of u for every posterior draw: block key → (chain, draw, J, Q)."""
    if built.multivariate_marginal:
        return _recover_mv(built, posterior, seed)
    if getattr(built.stats, "kind", None) == "structured":      # ar()/cosy(), gr(cov = A)
        from .marginal_structured import recover_structured
        return recover_structured(built, posterior, seed)
    stats = built.stats
    C, D = posterior.sizes["chain"], posterior.sizes["draw"]
    beta = posterior["_beta"].values.reshape(C * D, -1)
    sigma = np.ones(C * D) if stats.sigma_known else posterior["sigma"].values.reshape(C * D)
    factors = []
    for b in built.blocks:
        Ts = block_factor_draws(b, posterior, C * D)
        T = np.stack(Ts, axis=1) if b.by_levels else Ts[0]
        factors.append(([p.term for p in b.parts], T, b.by_codes if b.by_levels else None))
    T_draws = segment_factors(stats, factors)
    rng = np.random.default_rng([int(seed), 20240611])
    per_term = draw_group_effects(stats, beta, T_draws if len(T_draws) > 1 else T_draws[0],
                                  sigma, rng)
    out = {}
    for b in built.blocks:
        u = np.concatenate([per_term[p.term] for p in b.parts], axis=-1)
        out[b.key] = u.reshape(C, D, b.J, b.Q)
    return out
