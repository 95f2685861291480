r"""Satterthwaite's denominator degrees of freedom for contrasts of an lmer fit, as lmerTest.

Variance parameters ψ = (θ, σ) (lme4's θ, the residual standard deviation σ). The deviance
with β profiled out but σ free (lmerTest's ``devfun_vp``) is

    ML:    d(θ, σ) = log|L_θ|² + r²_θ / σ² + n log(2πσ²)
    REML:  d(θ, σ) + log|L_X|² − p log(2πσ²)

(:mod:`mixedformula.linalg.penalized` for L_θ, L_X, r²_θ). Its Hessian H at ψ̂ gives the
asymptotic covariance A = 2 H⁻¹ of ψ̂ (the pseudo-inverse over eigenvalues > 10⁻⁸; negative or
near-zero eigenvalues are warned about, as lmerTest does). With C(ψ) = σ² (L_X L_Xᵀ)⁻¹ the
covariance of β̂ and its Jacobian J_k = ∂C/∂ψ_k, a contrast l has

    Var(lᵀβ̂) = lᵀCl,   g_k = lᵀ J_k l,   ν = 2 (lᵀCl)² / (gᵀ A g).

An F-test of the rows of L (q of them, rank q after dropping eigenvalues of LCLᵀ below
√ε × the largest): with LCLᵀ = P D Pᵀ, the rows of PᵀL give q independent t-statistics
tₘ with νₘ as above; F = Σ tₘ² / q and, with E = Σ νₘ / (νₘ − 2), the denominator df is
2E / (E − q) (2 if some νₘ ≤ 2; the common ν when all are equal; ν₁ when q = 1).

Derivatives are numDeriv's Richardson differences (:mod:`.numderiv`), as lmerTest's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats

from .numderiv import hessian, jacobian

_LOG2PI = math.log(2 * math.pi)


class Satterthwaite:
    """Satterthwaite df of an :class:`~mixedformula.reml.LmerFit` (built once per fit)."""

    def __init__(self, fit):
        pls = fit.penalized_ls()
        n, p = pls.n, pls.p
        reml = fit.reml

        def dev(vp):
            theta, s2 = vp[:-1], vp[-1] ** 2
            f = pls.factor(theta)
            d = f.logdet_L + f.r2 / s2 + n * (_LOG2PI + math.log(s2))
            if reml:
                d += f.logdet_X - p * (_LOG2PI + math.log(s2))
            return d

        def covbeta(vp):
            f = pls.factor(vp[:-1])
            return vp[-1] ** 2 * np.linalg.inv(pls.beta_precision(f)).ravel()

        self.varpar = np.concatenate([fit.theta.to_numpy(), [fit.sigma]])
        H = hessian(dev, self.varpar)
        vals, vecs = np.linalg.eigh(H)
        tol = 1e-8
        neg, zero = vals < -tol, np.abs(vals) <= tol
        if neg.any():
            warnings.warn(f"the deviance's Hessian in the variance parameters has "
                          f"{int(neg.sum())} negative eigenvalue(s) "
                          f"({', '.join(f'{v:.1e}' for v in vals[neg])}): the fit is not at a "
                          f"minimum, so the Satterthwaite df are unreliable", RuntimeWarning,
                          stacklevel=3)
        if zero.any():
            warnings.warn(f"the deviance's Hessian in the variance parameters has "
                          f"{int(zero.sum())} eigenvalue(s) close to zero "
                          f"({', '.join(f'{v:.1e}' for v in vals[zero])}): some variance "
                          f"parameter is not determined (a singular fit?); the Satterthwaite "
                          f"df ignore that direction", RuntimeWarning, stacklevel=3)
        pos = vals > tol
        self.hessian = H
        self.vcov_varpar = 2 * (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
        J = jacobian(covbeta, self.varpar)
        self.jac = [J[:, k].reshape(p, p) for k in range(J.shape[1])]
        self.vcov_beta = np.asarray(fit.vcov_beta, dtype=float)
        self.beta = np.asarray(fit.beta, dtype=float)
        self.sigma = float(fit.sigma)

    def df(self, l) -> float:
        """ν of the contrast lᵀβ (one row)."""
        l = np.asarray(l, dtype=float).ravel()
        var = l @ self.vcov_beta @ l
        g = np.array([l @ Jk @ l for Jk in self.jac])
        return float(2 * var ** 2 / (g @ self.vcov_varpar @ g))

    def ttest(self, l) -> dict:
        """Estimate, SE, df, t and two-sided p of lᵀβ (lmerTest's ``contest1D``)."""
        l = np.asarray(l, dtype=float).ravel()
        return ttable_row(float(l @ self.beta), math.sqrt(l @ self.vcov_beta @ l), self.df(l))

    def ftest(self, L) -> dict:
        """F-test of Lβ = 0 (lmerTest's ``contestMD``): Sum Sq, Mean Sq, NumDF, DenDF, F, p."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if L.shape[0] == 1:
            r = self.ttest(L[0])
            return ftable_row(r["t value"] ** 2, 1, r["df"], self.sigma)
        d, P = np.linalg.eigh(L @ self.vcov_beta @ L.T)
        d, P = d[::-1], P[:, ::-1]
        q = int(np.sum(d > max(np.sqrt(np.finfo(float).eps) * d[0], 0)))
        PtL = (P.T @ L)[:q]
        if q == 1:
            r = self.ttest(PtL[0])
            return ftable_row(r["t value"] ** 2, 1, r["df"], self.sigma)
        F = float(np.sum((PtL @ self.beta) ** 2 / d[:q]) / q)
        nu = np.array([self.df(PtL[m]) for m in range(q)])
        return ftable_row(F, q, fstat_ddf(nu), self.sigma)


def fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of F = mean of q squared t's with df νₘ (lmerTest's ``get_Fstat_ddf``)."""
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - len(nu))


def ttable_row(est: float, se: float, df: float) -> dict:
    """lmerTest's t-table row: Estimate, Std. Error, df, t = est / se and two-sided
    p = 2 P(T_df > |t|)."""
    t = est / se
    return {"Estimate": est, "Std. Error": se, "df": df, "t value": t,
            "Pr(>|t|)": 2 * stats.t.sf(abs(t), df)}


def ftable_row(F: float, ndf: int, ddf: float, sigma: float, scale: float = 1.0) -> dict:
    """lmerTest's F-table row: Mean Sq = F σ², Sum Sq = Mean Sq × NumDF (F before scaling)."""
    ms = F * sigma ** 2
    Fs = F * scale
    return {"Sum Sq": ms * ndf, "Mean Sq": ms, "NumDF": ndf, "DenDF": ddf, "F value": Fs,
            "Pr(>F)": float(stats.f.sf(Fs, ndf, ddf))}
