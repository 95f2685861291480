r"""Nakagawa's R² for Gaussian linear mixed models (Nakagawa & Schielzeth 2013; Nakagawa,
Johnson & Schielzeth 2017; random slopes as Johnson 2014), what ``performance::r2_nakagawa``
reports for an ``lmerMod``:

    σ²_f = var_i(x_iᵀ β̂)                       (n − 1 denominator)
    σ²_r = Σ_k mean_i( z_{k,i}ᵀ Σ_k z_{k,i} )   (Σ_k = σ̂² T_k T_kᵀ, z_{k,i} term k's multipliers)
    σ²_ε = σ̂²
    R²_marginal = σ²_f / (σ²_f + σ²_r + σ²_ε),   R²_conditional = (σ²_f + σ²_r) / (same)

For a random-intercept term σ²_r is the intercept variance. ``gr(g, by = h)`` blocks use the
Σ of each row's level of h.

glmer fits (Nakagawa, Johnson & Schielzeth 2017), on the link scale: Σ_k = T_k T_kᵀ (no σ), and
σ²_ε is the family's distribution-specific variance σ²_d (``Family.r2_distribution_variance``:
π²/3 for logit binomial, log(1 + 1/λ) for log Poisson with λ = exp(β̂₀) of the null model —
the same random part, intercept only, refitted by ML — as insight 0.19 / performance 0.10).
"""

from __future__ import annotations

import numpy as np

from ..errors import MixedFormulaError


def r2_nakagawa(fit) -> dict:
    X = np.asarray(fit.design.X, dtype=float)
    vf = float(np.var(X @ fit.beta, ddof=1))
    lam = fit.lambda_factor
    theta = fit.theta.to_numpy()
    s2 = fit.sigma ** 2
    vr = 0.0
    for k, t in enumerate(fit.terms):
        Ts = lam.templates(theta, k)
        Z = np.asarray(t.X, dtype=float)
        if t.by_levels is None:
            S = s2 * Ts[0] @ Ts[0].T
            vr += float(np.mean(np.einsum("iq,qr,ir->i", Z, S, Z)))
        else:
            per = np.zeros(len(Z))
            lev = np.asarray(t.block.by_codes)
            for h, T in enumerate(Ts):
                m = lev == h
                per[m] = np.einsum("iq,qr,ir->i", Z[m], s2 * T @ T.T, Z[m])
            vr += float(per.mean())
    family = getattr(fit, "family", None)
    ve = s2 if family is None else family.r2_distribution_variance(lambda: _null_mean(fit))
    if ve is None:
        raise MixedFormulaError(f"Nakagawa's R² is not available for family {family.name!r} "
                                f"with link {family.link!r} (no distribution-specific variance)")
    tot = vf + vr + ve
    return {"marginal": vf / tot, "conditional": (vf + vr) / tot, "var_fixed": vf,
            "var_random": vr, "var_residual": ve}


def _null_mean(fit) -> float:
    """g⁻¹(β̂₀) of the null model (``fit.null_fit()``: the same random part, intercept only)."""
    if fit.data is None:
        raise MixedFormulaError("Nakagawa's R² for this family needs the fitted data (a null "
                                "model is refitted)")
    return float(fit.family.inverse_link(fit.null_fit().beta[0]))
