"""Numpy draws of each covariance block's factor T (Σ = T Tᵀ) from the posterior, read by every
engine that draws group effects after sampling (the marginal, structured marginal and partial
engines): LKJ blocks from PyMC's packed Cholesky, glmmTMB structures (ar1/cs/toep) from their sd
and rho, diagonal blocks from the sds."""

from __future__ import annotations

import numpy as np

from ...design.reterms import CovBlock as Block


def packed_to_chol(packed: np.ndarray, Q: int) -> np.ndarray:
    """PyMC's LKJCholeskyCov packs the lower triangle row by row (np.tril_indices order)."""
    out = np.zeros(packed.shape[:-1] + (Q, Q))
    rows, cols = np.tril_indices(Q)
    out[..., rows, cols] = packed
    return out


def block_factor_draws(b: Block, posterior, n: int) -> list:
    """Per by-level numpy factor draws (n, Q, Q) of one block."""
    Ts = []
    for h in range(b.H):
        hs = f"__{h}" if b.by_levels else ""
        if f"_rho__{b.key}" in posterior:       # ar1/cs/toep (covstruct.py): chol(Σ)
            from ...design.covstruct import correlation_from_rho
            sd = posterior[f"_std__{b.key}"].values.reshape(n, b.Q)
            rho = posterior[f"_rho__{b.key}"].values.reshape(n, -1)
            R = correlation_from_rho(b.structure, b.Q, rho)
            Ts.append(np.linalg.cholesky(sd[:, :, None] * R * sd[:, None, :]))
        elif b.correlated and b.Q > 1:
            Ts.append(packed_to_chol(posterior[f"chol__{b.key}{hs}"].values.reshape(n, -1),
                                      b.Q))
        else:
            sd = posterior[f"sd__{b.key}{hs}"].values.reshape(n, b.Q)
            Ts.append(sd[:, :, None] * np.eye(b.Q)[None])
    return Ts
