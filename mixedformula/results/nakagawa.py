r"""Nakagawa's R² for Gaussian linear mixed models (Nakagawa & Schielzeth 2013; Nakagawa,
Johnson & Schielzeth 2017; random slopes as Johnson 2014), what ``performance::r2_nakagawa``
reports for an ``lmerMod``:

    σ²_f = var_i(x_iᵀ β̂)                       (n − 1 denominator)
    σ²_r = Σ_k mean_i( z_{k,i}ᵀ Σ_k z_{k,i} )   (Σ_k = σ̂² T_k T_kᵀ, z_{k,i} term k's multipliers)
    σ²_ε = σ̂²
    R²_marginal = σ²_f / (σ²_f + σ²_r + σ²_ε),   R²_conditional = (σ²_f + σ²_r) / (same)

For a random-intercept term σ²_r is the intercept variance. ``gr(g, by = h)`` blocks use the
Σ of each row's level of h.
"""

from __future__ import annotations

import numpy as np


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
    ve = s2
    tot = vf + vr + ve
    return {"marginal": vf / tot, "conditional": (vf + vr) / tot, "var_fixed": vf,
            "var_random": vr, "var_residual": ve}
