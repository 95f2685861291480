r"""lme4's profiled (RE)ML deviance with dense Z* for terms whose levels are correlated.

For a term ``(1 + x | gr(g, cov = A))`` the group effects are b = (L_A ⊗ I_q) b* with
b* = Λ(θ) u, u ~ N(0, σ² I), so Var(b) = σ² A ⊗ T Tᵀ (:mod:`mixedformula.design.known_cov`).
Writing Z b = Z (L_A ⊗ I_q) b* = Z* b*, the model is an ordinary lme4 model in Z* and the
usual Λ(θ) — how lme4-based phylogenetic packages (phyr, pez) fit it. Z* is no longer one
level per row, so the level-by-level factorisation of :mod:`.penalized` does not apply; here
the same equations are solved with dense matrices (M = Σ_k J_k q_k columns):

    L Lᵀ       = ΛᵀZ*ᵀZ*Λ + I,   R_ZX = L⁻¹ΛᵀZ*ᵀX,   L_X L_Xᵀ = XᵀX − R_ZXᵀR_ZX,
    c_u = L⁻¹ΛᵀZ*ᵀe,  c_β = L_X⁻¹(Xᵀe − R_ZXᵀc_u),  r²_θ = eᵀe − ‖c_u‖² − ‖c_β‖²

(e the OLS residual, as in :mod:`.penalized`), with the same objectives

    ML:    d(θ)   = log|L|² + n [1 + log(2π r²_θ / n)]
    REML:  d_R(θ) = log|L|² + log|L_X|² + (n − p) [1 + log(2π r²_θ / (n − p))].

Terms without a known covariance are included as they are (L_A = I). Cost per evaluation:
one dense M × M Cholesky (M³/3 flops); the cross-products are made once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from .lambda_factor import LambdaFactor
from .penalized import FixedEffectsAtTheta, ols_residual

_LOG2PI = math.log(2 * math.pi)
#: the dense system is refused above this many columns of Z* (memory ≈ 8 M² bytes)
DENSE_MAX = 8000


@dataclass
class DenseFactor:
    theta: np.ndarray
    Lam: np.ndarray          # (M, M) Λ(θ)
    L: np.ndarray            # (M, M)
    RZX: np.ndarray          # (M, p)
    cu: np.ndarray           # (M,)
    LX: np.ndarray           # (p, p)
    cb: np.ndarray           # (p,)
    logdet_L: float
    logdet_X: float
    r2: float


def star_columns(Xk: np.ndarray, codes: np.ndarray, J: int, cov_factor) -> np.ndarray:
    """Z*_k = Z_k (L_A ⊗ I_q) as a dense (n, J q) array (Z_k itself when cov_factor is None)."""
    n, q = Xk.shape
    Z = np.zeros((n, J * q))
    ok = (codes >= 0) & (codes < J)
    rows = np.nonzero(ok)[0]
    for c in range(q):
        Z[rows, codes[ok] * q + c] = Xk[ok, c]
    if cov_factor is None:
        return Z
    K = np.kron(np.asarray(cov_factor, dtype=float), np.eye(q))
    return Z @ K


class DensePLS(FixedEffectsAtTheta):
    """The interface of :class:`~.penalized.PenalizedLS` (factor, deviance, β̂, b̂) for
    blocks ``(Xk, codes, cov_factor)`` in the order of ``lam.terms``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, blocks, lam: LambdaFactor,
                 row_transform=None):
        """``row_transform``: W applied to the rows of X, y and Z* (whitened residuals,
        :mod:`.residual_corr`); blocks may have ``cov_factor`` None."""
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        W = row_transform if row_transform is not None else (lambda M: M)
        X, y = W(X), W(y)
        self.n, self.p = X.shape
        self.lam = lam
        self._X = X
        self._covs = [b[2] for b in blocks]
        Zs = [star_columns(np.asarray(b[0], dtype=float), np.asarray(b[1]), t.J, b[2])
              for b, t in zip(blocks, lam.terms)]
        self.Z = W(np.concatenate(Zs, axis=1))
        self.M = self.Z.shape[1]
        if self.M > DENSE_MAX:
            raise MemoryError(f"gr(cov = ...) needs a dense {self.M} x {self.M} factorisation "
                              f"(more than {DENSE_MAX} group effects)")
        self.ZtZ = self.Z.T @ self.Z
        self.ZtX = self.Z.T @ X
        self.XtX = X.T @ X
        self._set_response(y)

    def _set_response(self, y):
        X = self._X
        self.beta_ols, e = ols_residual(X, y)
        self.Xte = X.T @ e
        self.Zte = self.Z.T @ e
        self.ete = float(e @ e)

    def with_response(self, y: np.ndarray) -> "DensePLS":
        import copy
        new = copy.copy(self)
        new._set_response(np.asarray(y, dtype=float).ravel())
        return new

    def factor(self, theta: np.ndarray) -> DenseFactor:
        theta = np.asarray(theta, dtype=float)
        Lam = self.lam.sparse(theta).toarray()
        A = Lam.T @ self.ZtZ @ Lam
        A[np.diag_indices_from(A)] += 1.0
        L = sla.cholesky(A, lower=True, check_finite=False)
        RZX = sla.solve_triangular(L, Lam.T @ self.ZtX, lower=True, check_finite=False)
        cu = sla.solve_triangular(L, Lam.T @ self.Zte, lower=True, check_finite=False)
        logdet_L = 2.0 * float(np.sum(np.log(np.diag(L))))
        r2 = self.ete - float(cu @ cu)
        if self.p:
            LX = np.linalg.cholesky(self.XtX - RZX.T @ RZX)
            cb = sla.solve_triangular(LX, self.Xte - RZX.T @ cu, lower=True,
                                      check_finite=False)
            logdet_X = 2.0 * float(np.sum(np.log(np.diag(LX))))
            r2 -= float(cb @ cb)
        else:
            LX, cb, logdet_X = np.zeros((0, 0)), np.zeros(0), 0.0
        return DenseFactor(theta, Lam, L, RZX, cu, LX, cb, logdet_L, logdet_X, r2)

    def deviance_from(self, f: DenseFactor, reml: bool) -> float:
        if not f.r2 > 0:
            return math.inf
        if reml:
            nu = self.n - self.p
            return f.logdet_L + f.logdet_X + nu * (1.0 + _LOG2PI + math.log(f.r2 / nu))
        return f.logdet_L + self.n * (1.0 + _LOG2PI + math.log(f.r2 / self.n))

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        try:
            f = self.factor(theta)
        except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
            return math.inf
        return self.deviance_from(f, reml)

    def deviance_and_gradient(self, theta, reml: bool = True):
        """No exact gradient here (the caller differentiates numerically)."""
        return None

    def deviance_batch(self, thetas, reml: bool = True):
        return None

    def conditional_modes(self, f: DenseFactor) -> list[np.ndarray]:
        """b̂_k = (L_A ⊗ I) Λ_k û_k per term, each (J_k, q_k): the effects on the levels."""
        db = self.beta(f) - self.beta_ols if self.p else np.zeros(0)
        w = f.cu - f.RZX @ db if self.p else f.cu
        u = sla.solve_triangular(f.L, w, lower=True, trans="T", check_finite=False)
        bstar = f.Lam @ u
        out = []
        for k, t in enumerate(self.lam.terms):
            lo = self.lam.col_offsets[k]
            bk = bstar[lo:lo + t.J * t.q].reshape(t.J, t.q)
            if self._covs[k] is not None:
                bk = np.asarray(self._covs[k]) @ bk
            out.append(bk)
        return out


__all__ = ["DenseFactor", "DensePLS", "star_columns"]
