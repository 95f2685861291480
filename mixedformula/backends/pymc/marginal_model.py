"""Wire the marginal likelihood (:mod:`.marginal`) into the model builder, and recover u after.

The model keeps exactly the parameters of the conditional engine (β with brms' centring, the
covariance blocks, σ) but replaces ``z`` and the N-row likelihood by

    log p(y | β, G, σ) = log N(y; Xβ, Z G Zᵀ + σ² I)

evaluated from sufficient statistics (a ``pm.Potential``; nothing of length N in the graph).
After sampling, u is drawn exactly from u | y, β, G, σ for every posterior draw, so ``ranef``,
``coef`` and predictions work as with the conditional engine.
"""

from __future__ import annotations

import numpy as np

from ...design import Design
from ...design.crossprod import MarginalTooLargeError, sufficient_statistics
from .marginal import draw_group_effects, marginal_loglik, segment_factors, stats_tensors
from .structure import Block


def marginal_support(design: Design) -> tuple[bool, str]:
    """Structural conditions the marginal engine needs (family is checked by the caller)."""
    if design.y is None or design.y.shape[1] != 1:
        return False, "multivariate responses are not yet supported by the marginal engine"
    if design.trials is not None:
        return False, "trials() belongs to the binomial family"
    return True, ""


def statistics(design: Design):
    """Sufficient statistics, or (None, reason) when the dense part would be too large."""
    try:
        return sufficient_statistics(design), ""
    except MarginalTooLargeError as e:
        return None, f"the marginal factorisation is too large ({e})"


def _factor_tensor(block: Block, T):
    """(H, Q, Q) Cholesky factors or (H, Q) sds → what segment_factors takes for this block."""
    import pytensor.tensor as pt
    if not (block.correlated and block.Q > 1):
        T = T[:, :, None] * pt.eye(block.Q)[None]
    return T if block.by_levels else T[0]


def add_marginal_likelihood(design: Design, blocks: list[Block], chols: dict, betas, dpars,
                            resp, stats) -> dict:
    import pymc as pm
    factors = [([p.term for p in b.parts], _factor_tensor(b, chols[b.key]),
                b.by_codes if b.by_levels else None) for b in blocks]
    T = segment_factors(stats, factors)
    data = stats_tensors(stats, shared=True)
    sigma = dpars["sigma"][0][0]
    pm.Potential("marginal_loglik", marginal_loglik(stats, betas[0], T, sigma, data=data))
    return {"stats": stats}


def _packed_to_chol(packed: np.ndarray, Q: int) -> np.ndarray:
    """PyMC's LKJCholeskyCov packs the lower triangle row by row (np.tril_indices order)."""
    out = np.zeros(packed.shape[:-1] + (Q, Q))
    rows, cols = np.tril_indices(Q)
    out[..., rows, cols] = packed
    return out


def recover_group_effects(built, posterior, seed) -> dict:
    """Exact draws of u for every posterior draw: block key → (chain, draw, J, Q)."""
    stats = built.extras["stats"]
    C, D = posterior.sizes["chain"], posterior.sizes["draw"]
    beta = posterior["_beta"].values.reshape(C * D, -1)
    sigma = posterior["sigma"].values.reshape(C * D)
    factors = []
    for b in built.blocks:
        Ts = []
        for h in range(b.H):
            hs = f"__{h}" if b.by_levels else ""
            if b.correlated and b.Q > 1:
                Ts.append(_packed_to_chol(posterior[f"chol__{b.key}{hs}"].values
                                          .reshape(C * D, -1), b.Q))
            else:
                sd = posterior[f"sd__{b.key}{hs}"].values.reshape(C * D, b.Q)
                Ts.append(sd[:, :, None] * np.eye(b.Q)[None])
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
