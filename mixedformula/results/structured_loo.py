r"""Leave-one-group-out log-likelihood of models with ``ar()`` / ``cosy()`` / ``unstr()``
residuals.

When every residual series lies inside one level of the model's single grouping factor (the
block layout of :mod:`mixedformula.design.structured_crossprod`), V = ZGZᵀ + σ²C is block
diagonal over the levels, and

    log p(y_j | β, G, σ, ρ) = −½[n_j log(2πσ²) + log|C_j| + 2 log|L_j| + (r_jᵀP_jr_j − ‖w_j‖²/σ²)/σ²]

(L_jL_jᵀ = Λ_jᵀZ_jᵀP_jZ_jΛ_j/σ² + I, w_j = L_j⁻¹Λ_jᵀZ_jᵀP_jr_j), the per-level terms of the
structured marginal likelihood, per posterior draw. Known covariances across levels
(``gr(cov = A)``) and series crossing levels do not factor: refused.
"""

from __future__ import annotations

import numpy as np

from ..design.reterms import covariance_blocks
from ..design.structured_crossprod import (group_loglik_numpy, structured_statistics,
                                           unstr_weights_numpy)
from ..design.unstr import correlation_matrix, cortime_pairs
from ..errors import MixedFormulaError
from .naming import ar_name, cortime_name, sigma_name
from .posterior import PosteriorDraws


def structured_group_loglik(fit, group: str | None = None) -> tuple[np.ndarray, str, list[str]]:
    """(S, J) log p(y_j | β, G, σ, ρ) per draw and level, the group and its level labels."""
    d = fit.design
    if any(getattr(t, "cov_factor", None) is not None for t in d.terms):
        raise MixedFormulaError("leave-one-group-out with the marginal likelihood does not "
                                "apply: gr(cov = ...) correlates the levels, so the likelihood "
                                "does not factor over them")
    if d.y is None or d.y.shape[1] != 1:
        raise MixedFormulaError("the marginal group likelihood is computed for univariate "
                                "models only")
    stats = structured_statistics(d)
    factors = list(dict.fromkeys(t.name for t in d.terms))
    if stats.layout != "block" or not factors or (group is not None and group != factors[0]):
        raise MixedFormulaError(
            "leave-one-group-out with the marginal likelihood does not apply: the residual "
            "series of " + (d.autocor.text if d.autocor is not None else "the model")
            + " are not nested in the levels of one grouping factor, so the likelihood does "
            "not factor over groups; use fit.loo(likelihood='conditional')")
    group = factors[0]
    seg = stats.segments[0]
    blocks = covariance_blocks(d)
    post = fit.idata.posterior
    S = post.sizes["chain"] * post.sizes["draw"]
    draws = PosteriorDraws.of_fit(fit, None)
    beta = draws.beta(0, list(d.X_names))
    sigma = draws.scalar(sigma_name())
    if stats.structure == "ar":
        rho = np.stack([draws.scalar(ar_name(k + 1)) for k in range(stats.K - 1)], axis=-1)
    elif stats.structure == "cosy":
        rho = draws.scalar("cosy")
    elif stats.structure == "unstr":
        times = d.autocor.times
        C = correlation_matrix(np.stack([draws.scalar(cortime_name(times[a], times[b]))
                                         for a, b in cortime_pairs(len(times))], axis=-1),
                               len(times))
        rho = [unstr_weights_numpy(stats, C[i]) for i in range(len(C))]
    else:
        rho = None
    T = np.zeros((S, seg.J, seg.Q, seg.Q))
    for b in blocks:
        Tb = draws.block_factor(b)                                      # (S, H, Qb, Qb)
        Tb = Tb[:, np.asarray(b.by_codes)] if b.by_levels else \
            np.broadcast_to(Tb[:, :1], (S, seg.J) + Tb.shape[2:])
        pos = np.concatenate([seg.offset_of(p.term) + np.arange(p.q) for p in b.parts])
        T[:, :, pos[:, None], pos[None, :]] = Tb
    out = np.empty((S, seg.J))
    for i in range(S):
        out[i] = group_loglik_numpy(stats, beta[i], T[i], sigma[i],
                                    None if rho is None else rho[i])
    return out, group, list(d.terms[seg.terms[0]].levels)


__all__ = ["structured_group_loglik"]
