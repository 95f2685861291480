r"""Penalized least squares and lme4's profiled (RE)ML deviance (Bates et al. 2015, JSS 67(1) §3).

With b = Λ(θ)u (see :mod:`.lambda_factor`), the conditional mode of u and the estimate of β
minimise the penalized residual sum of squares

    r²(θ, β, u) = ‖y − Xβ − ZΛu‖² + ‖u‖²,

i.e. solve the penalized normal equations

    [ ΛᵀZᵀZΛ + I   ΛᵀZᵀX ] [u]   [ΛᵀZᵀy]
    [ XᵀZΛ         XᵀX   ] [β] = [ Xᵀy ].

Its Cholesky factor is block lower triangular,

    [ L      0  ]        L Lᵀ       = ΛᵀZᵀZΛ + I          (q × q, q = Σ_k J_k q_k)
    [ R_ZXᵀ  L_X ],      R_ZX       = L⁻¹ ΛᵀZᵀX            (q × p)
                         L_X L_Xᵀ   = XᵀX − R_ZXᵀ R_ZX      (p × p)

and with c_u = L⁻¹ΛᵀZᵀy, c_β = L_X⁻¹(Xᵀy − R_ZXᵀ c_u):

    β̂ = L_X⁻ᵀ c_β,   û = L⁻ᵀ(c_u − R_ZX β̂),   r²_θ = min r² = yᵀy − ‖c_u‖² − ‖c_β‖².

Profiling σ out (σ̂² = r²_θ / n for ML, r²_θ / (n − p) for REML) gives lme4's objectives

    ML:    d(θ)   = log|L|² + n [1 + log(2π r²_θ / n)]                      (= −2 log-lik)
    REML:  d_R(θ) = log|L|² + log|L_X|² + (n − p) [1 + log(2π r²_θ / (n − p))]

which equal, with V_θ = I + ZΛΛᵀZᵀ, the dense forms log|σ²V_θ| + rᵀ(σ²V_θ)⁻¹r + n log 2π (ML)
and that plus log|Xᵀ(σ²V_θ)⁻¹X| − p log 2π (REML) at σ̂, since |V_θ| = |L|² and
XᵀV_θ⁻¹X = L_X L_Xᵀ.

Prior weights a_i (lme4's ``weights``: Var(ε_i) = σ²/a_i) scale the rows of X, Z and y by √a_i;
the deviances gain lme4's −log|W| = −Σ log a_i (so that they are −2 log-likelihoods of y, not of
√a y): d(θ) − Σ log a_i and d_R(θ) − Σ log a_i. Rows of weight 0 add nothing to the
cross-products (and nothing to Σ log a_i).

Everything is computed from cross-products made once (ZᵀZ, ZᵀX, Zᵀy, XᵀX, Xᵀy, yᵀy). To avoid
the cancellation in yᵀy − ‖c_u‖² − ‖c_β‖² when y has a large mean, y is first replaced by its
OLS residual e = y − Xβ_OLS (the PLS problem is equivariant: β̂(y) = β_OLS + β̂(e), r² unchanged).

Blocked factorisation (as MixedModels.jl): the first term's ZᵀZ block is block diagonal (one
q₁ × q₁ block A_j per level), so its part of L is J₁ small Cholesky factors
L_j = chol(T_jᵀ A_j T_j + I), computed vectorised over levels with numpy (cost O(J₁ q₁³)).
The other terms (nested or crossed factors, r = Σ_{k≥2} J_k q_k columns) form the Schur
complement

    L₂₁ = Λ₂ᵀ Z₂ᵀZ₁ Λ₁ L₁⁻ᵀ            (sparse, the pattern of Z₂ᵀZ₁)
    L₂₂ L₂₂ᵀ = Λ₂ᵀZ₂ᵀZ₂Λ₂ + I − L₂₁L₂₁ᵀ  (dense r × r Cholesky)

The update L₂₁L₂₁ᵀ = Λ₂ᵀ C W C ᵀΛ₂ (C = Z₂ᵀZ₁, W_j = T_j(T_jᵀA_jT_j + I)⁻¹T_jᵀ) is a fixed linear
function of the per-level W_j, precomputed once as a sparse matrix (:mod:`.schur`), so one
deviance evaluation costs one sparse matvec, O(r²) scaling and a dense r × r Cholesky (r³/3
flops, O(r²) memory) — fine for r up to a few thousand (InstEval shape, r = 1142: ≈ 0.06 s
single-threaded). One grouping factor: r = 0 and the cost is O(J q³), independent of the number
of rows. Why dense and not CHOLMOD: :mod:`.schur`.

How L₂₁ and the Schur complement are updated is one decision,
:func:`.blocked_cholesky.choose_update`: the precomputed map above (sparse coupling, InstEval),
a compiled accumulation of the same products for a scalar first factor whose map would not
fit (MovieLens-sized), or MixedModels.jl's dense blocks for densely crossed vector-valued terms
(kb07: batched products over the uniform q × q blocks and one BLAS ``dsyrk``), which also give
the exact gradient for any Λ (:func:`.blocked_cholesky.profiled_gradient`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .lambda_factor import LambdaFactor
from .blocked_cholesky import (DenseCoupling, ScatterSchur, choose_update, left_lambda_t,
                              profiled_gradient)
from .schur import SchurUpdate

#: above this size of the dense Schur complement a warning states the cost
DENSE_WARN = 3000
#: above this size the dense Schur complement is refused (memory ≈ 8 r² bytes)
DENSE_MAX = 12000

_LOG2PI = math.log(2 * math.pi)


def ols_residual(X, y) -> tuple[np.ndarray, np.ndarray]:
    """β̂ = argmin ‖y − Xβ‖ (least squares) and e = y − Xβ̂; with no columns β̂ is empty and
    e = y. The penalized systems are written for e, not y (a better-conditioned right side)."""
    if X.shape[1] == 0:
        return np.zeros(0), y
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    return beta, y - X @ beta


@dataclass
class PLSFactor:
    """The factorisation at one θ and what follows from it (on the OLS-residual scale)."""

    theta: np.ndarray
    T0: np.ndarray            # (J₁ or 1, q₁, q₁) per-level factor of term 1
    L0inv: np.ndarray         # (J₁, q₁, q₁) inverse of the per-level Cholesky factors
    L21: sp.csr_matrix | None  # (r, J₁q₁)
    L22: np.ndarray | None    # (r, r)
    Lr: sp.csc_matrix | None  # Λ of the remaining terms
    RZX0: np.ndarray          # (J₁, q₁, p)
    RZXr: np.ndarray          # (r, p)
    cu0: np.ndarray           # (J₁, q₁)
    cur: np.ndarray           # (r,)
    LX: np.ndarray            # (p, p)
    cb: np.ndarray            # (p,)
    logdet_L: float           # log|L|²
    logdet_X: float           # log|L_X|²
    r2: float                 # penalized residual sum of squares r²_θ


class FixedEffectsAtTheta:
    """β̂(θ) and its precision from a factor with the fixed-effect block L_X and c_β (the
    blocked :class:`PLSFactor` and the dense ``DensePLS`` factor alike); the system has ``p``
    and ``beta_ols``."""

    def beta(self, f) -> np.ndarray:
        """β̂(θ) = β_OLS + L_X⁻ᵀ c_β."""
        if not self.p:
            return np.zeros(0)
        return self.beta_ols + sla.solve_triangular(f.LX, f.cb, lower=True, trans="T",
                                                    check_finite=False)

    def beta_precision(self, f) -> np.ndarray:
        """L_X L_Xᵀ, so that Var(β̂) = σ² (L_X L_Xᵀ)⁻¹."""
        return f.LX @ f.LX.T


class PenalizedLS(FixedEffectsAtTheta):
    """Profiled deviance of a Gaussian linear mixed model from cross-products.

    Parameters
    ----------
    X : (n, p) fixed-effects matrix (full column rank).
    y : (n,) response.
    blocks : per group term, ``(Xk, codes)`` with Xk (n, q_k) and codes (n,) in [0, J_k),
        in the order of ``lam.terms``. Term 0 is factorised level by level.
    lam : the :class:`LambdaFactor` of the terms.
    weights : optional (n,) prior weights a_i ≥ 0 (module docstring); ``n`` counts the rows
        of positive weight.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, blocks, lam: LambdaFactor,
                 weights: np.ndarray | None = None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float).ravel()
        self.sqrt_w = None
        self.log_det_w = 0.0                  # Σ log a_i over the rows of positive weight
        self.n_zero_weight = 0
        if weights is not None:
            w = np.asarray(weights, dtype=float).ravel()
            sw = np.sqrt(w)
            self.sqrt_w = sw
            pos = w > 0
            self.log_det_w = float(np.sum(np.log(w[pos])))
            self.n_zero_weight = int(np.sum(~pos))
            X, y = X * sw[:, None], y * sw
            blocks = [(np.asarray(Xk, dtype=float) * sw[:, None], ck) for Xk, ck in blocks]
        self.n_rows, self.p = X.shape
        self.n = self.n_rows - self.n_zero_weight     # observations (rows of positive weight)
        self.lam = lam
        if not blocks:
            raise ValueError("PenalizedLS needs at least one group term")
        self.beta_ols, e = ols_residual(X, y)
        self.XtX = X.T @ X
        self.Xte = X.T @ e
        self.ete = float(e @ e)
        # term 1: per-level blocks A_j = Σ x xᵀ, B_j = Σ x X_iᵀ, c_j = Σ x e_i
        X0, codes0 = blocks[0]
        self._X, self._X0, self._codes0 = X, np.asarray(X0, dtype=float), np.asarray(codes0)
        t0 = lam.terms[0]
        self.J0, self.q0 = t0.J, t0.q
        W = np.concatenate([X0[:, :, None] * X0[:, None, :],
                            X0[:, :, None] * X[:, None, :],
                            (X0 * e[:, None])[:, :, None]], axis=2)   # (n, q, q + p + 1)
        flat = W.reshape(self.n_rows, -1)
        S = np.stack([np.bincount(codes0, weights=flat[:, k], minlength=self.J0)
                      for k in range(flat.shape[1])], axis=1).reshape(self.J0, self.q0, -1)
        self.A0 = S[:, :, :self.q0]
        self.B0 = S[:, :, self.q0:self.q0 + self.p]
        self.c0 = S[:, :, -1]
        # remaining terms: sparse cross-products
        self.rest = tuple(range(1, len(blocks)))
        #: how the other terms' blocks are updated: "one factor", or for crossed/nested terms
        #: "schur", "scatter", "dense", "sparse" (:func:`.blocked_cholesky.choose_update`)
        self.update_kind = "one factor"
        self._dense = None
        self._check_size()
        if self.rest:
            Z0 = _z(X0, codes0, self.J0)
            Zr = sp.hstack([_z(Xk, ck, lam.terms[k].J) for k, (Xk, ck) in
                            enumerate(blocks) if k > 0], format="csc")
            ZrT = Zr.T.tocsr()
            self._ZrT = ZrT
            self.ZrtZr = (ZrT @ Zr).tocsc()
            self.ZrtZ0 = (ZrT @ Z0).tocsr()
            self.ZrtX = np.asarray(ZrT @ X)
            self.Zrte = np.asarray(ZrT @ e).ravel()
        self._structures()

    @classmethod
    def from_crossproducts(cls, cp: dict, lam: LambdaFactor) -> "PenalizedLS":
        """The same system from the cross-products alone (rows never in memory: a Dask fit).

        ``cp``: N, XtX, Xty, yty and the R factor of qr([X y]) (for β_OLS = R_XX⁻¹R_Xy and
        eᵀe = R_yy², free of cancellation), the first term's per-level A0 = Σ x xᵀ (J₁, q₁, q₁),
        B0 = Σ x Xᵀ (J₁, q₁, p), c0 = Σ x y (J₁, q₁), and for the other terms ZrtZr, ZrtZ0
        (sparse), ZrtX, Zrty (:func:`crossproducts`). The OLS-residual forms follow:
        Xᵀe = Xᵀy − XᵀXβ, c0ₑ = c0 − B0β, Zᵣᵀe = Zᵣᵀy − ZᵣᵀXβ. Refitting another response
        (:meth:`with_response`) needs the rows and is refused."""
        self = cls.__new__(cls)
        self.sqrt_w, self.log_det_w, self.n_zero_weight = None, 0.0, 0
        self.n = self.n_rows = int(cp["N"])
        XtX = np.asarray(cp["XtX"], dtype=float)
        self.p = XtX.shape[0]
        self.lam = lam
        R = np.asarray(cp["R"], dtype=float)
        p = self.p
        if p:
            self.beta_ols = sla.solve_triangular(R[:p, :p], R[:p, p], lower=False)
        else:
            self.beta_ols = np.zeros(0)
        b = self.beta_ols
        self.XtX = XtX
        self.Xte = np.asarray(cp["Xty"], dtype=float) - XtX @ b
        self.ete = float(R[p, p] ** 2)
        self._X = self._X0 = self._codes0 = None
        t0 = lam.terms[0]
        self.J0, self.q0 = t0.J, t0.q
        self.A0 = np.asarray(cp["A0"], dtype=float)
        self.B0 = np.asarray(cp["B0"], dtype=float)
        self.c0 = np.asarray(cp["c0"], dtype=float) - self.B0 @ b
        self.rest = tuple(range(1, len(lam.terms)))
        self.update_kind = "one factor"
        self._dense = None
        self._check_size()
        if self.rest:
            self._ZrT = None
            self.ZrtZr = sp.csc_matrix(cp["ZrtZr"])
            self.ZrtZ0 = sp.csr_matrix(cp["ZrtZ0"])
            self.ZrtX = np.asarray(cp["ZrtX"], dtype=float)
            self.Zrte = np.asarray(cp["Zrty"], dtype=float) - self.ZrtX @ b
        self._structures()
        return self

    def _check_size(self) -> None:
        lam = self.lam
        self.r = int(sum(lam.terms[k].J * lam.terms[k].q for k in self.rest))
        if self.r > DENSE_MAX:
            raise MemoryError(
                f"the nested/crossed group terms need a dense {self.r} x {self.r} Cholesky "
                f"factor (more than {DENSE_MAX}); this needs a sparse Cholesky (not available)")
        if self.r > DENSE_WARN:
            warnings.warn(f"the nested/crossed group terms need a dense {self.r} x {self.r} "
                          f"Cholesky per deviance evaluation (~{self.r ** 3 / 3e9:.1f} Gflop, "
                          f"{8 * self.r ** 2 / 1e6:.0f} MB); this will be slow",
                          RuntimeWarning, stacklevel=4)

    def _structures(self) -> None:
        """The θ-independent structures of the factorisation (Schur update, patterns)."""
        lam = self.lam
        t0 = lam.terms[0]
        if self.rest:
            # block-diagonal sparse pattern (full q₁ × q₁ blocks) for Λ₁ L₁⁻ᵀ
            q, J = self.q0, self.J0
            lev = np.arange(J)[:, None, None] * q
            rows = np.broadcast_to(lev + np.arange(q)[None, :, None], (J, q, q)).ravel()
            cols = np.broadcast_to(lev + np.arange(q)[None, None, :], (J, q, q)).ravel()
            self._K_pattern = (rows, cols)
            self._Ir = sp.identity(self.r, format="csc")
            self._Lr_diagonal = all(not lam.terms[k].correlated or lam.terms[k].q == 1
                                    for k in self.rest)
            # how C W Cᵀ is updated per θ: one decision (blocked_cholesky.choose_update)
            self._update = self.update_kind = choose_update(self.ZrtZ0, q, self.r)
            self._schur = (SchurUpdate.build(self.ZrtZ0, self.ZrtZr, q)
                           if self._update == "schur" else
                           ScatterSchur.build(self.ZrtZ0, self.ZrtZr, q)
                           if self._update == "scatter" else None)
            self._dense = (DenseCoupling.from_crossproducts(self.ZrtZ0, self.ZrtZr, q,
                                         [(lam.terms[k].J, lam.terms[k].q) for k in self.rest])
                           if self._update == "dense" else None)
            # θ index of each column of the other terms (Λ_r diagonal: one entry per column)
            self._rest_theta = lam._structure(self.rest)[1]
        # exact gradient (deviance_and_gradient): Λ diagonal, first term one scalar template
        self._gradient_applies = (
            self.q0 == 1 and t0.n_blocks == 1
            and (not self.rest or (self._Lr_diagonal and self._schur is not None)))

    @property
    def has_exact_gradient(self) -> bool:
        """Whether :meth:`deviance_and_gradient` gives the exact gradient (Λ diagonal with a
        scalar first term, or the dense crossed update) rather than None."""
        return bool(self._gradient_applies or (self.rest and self._dense is not None))

    def with_response(self, y: np.ndarray) -> "PenalizedLS":
        """The same system for another response y (same X, Z, Λ layout): only the y-dependent
        cross-products (Xᵀe, eᵀe, Zᵀe with e the OLS residual) are recomputed, O(n(p + q)),
        so refitting simulated responses (parametric bootstrap) reuses everything else."""
        import copy
        if self._X is None:
            raise ValueError("refitting another response needs the rows (this system was "
                             "built from cross-products only, e.g. a Dask fit)")
        y = np.asarray(y, dtype=float).ravel()
        if self.sqrt_w is not None:
            y = y * self.sqrt_w
        new = copy.copy(self)
        # the restricted systems of :meth:`deviance` and the stacked [Z_rᵀX Z_rᵀe] hold e
        new.__dict__.pop("_active_cache", None)
        new._ZrtXe = None
        if self.p:
            new.beta_ols = np.linalg.lstsq(self._X, y, rcond=None)[0]
            e = y - self._X @ new.beta_ols
        else:
            e = y
        new.Xte = self._X.T @ e
        new.ete = float(e @ e)
        X0 = self._X0
        new.c0 = np.stack([np.bincount(self._codes0, weights=X0[:, c] * e, minlength=self.J0)
                           for c in range(self.q0)], axis=1)
        if self.rest:
            new.Zrte = np.asarray(self._ZrT @ e).ravel()
        return new

    def with_layout(self, lam: LambdaFactor) -> "PenalizedLS":
        """The same dense-update system (:class:`.blocked_cholesky.DenseCoupling`) with another
        Λ layout of the same columns, e.g. every term's zero-correlation version (diagonal T,
        whose deviance and exact gradient drop the columns at 0: :meth:`deviance`)."""
        import copy
        if self._dense is None or [(t.J, t.q) for t in lam.terms] != \
                [(t.J, t.q) for t in self.lam.terms]:
            raise ValueError("with_layout needs the dense update and the same terms (J, q)")
        new = copy.copy(self)
        new.__dict__.pop("_active_cache", None)
        new.lam = lam
        return new

    # -- factorisation -------------------------------------------------------------------------
    def factor(self, theta: np.ndarray) -> PLSFactor:
        """Factor the PLS system at θ (raises numpy/scipy LinAlgError if not positive definite)."""
        theta = np.asarray(theta, dtype=float)
        lam = self.lam
        return self._factor(theta, lam.level_factors(theta, 0),
                            [lam.level_factors(theta, k) for k in self.rest], True)

    def _factor(self, theta: np.ndarray, T0: np.ndarray, Ts: list, want_lr: bool) -> PLSFactor:
        """:meth:`factor` from the per-level factors T0 (J or 1, q, q) of the first term and Ts
        of the others; ``want_lr=False`` leaves out the sparse Λ_r where the dense update does
        not need it (the deviance alone)."""
        lam, p = self.lam, self.p
        T0t = np.swapaxes(T0, 1, 2)
        q = self.q0
        if q == 1:
            t = T0[:, 0, 0]
            m = t * t * self.A0[:, 0, 0] + 1.0
            l0 = np.sqrt(m)
            L0inv = (1.0 / l0)[:, None, None]
            logdet_L = 2.0 * float(np.sum(np.log(l0)))
            tl = (t / l0)[:, None, None]                      # T L⁻¹ (= L⁻¹ Tᵀ for q = 1)
            RZX0 = tl * self.B0
            cu0 = tl[:, :, 0] * self.c0
        else:
            M0 = T0t @ self.A0 @ T0
            M0[:, np.arange(q), np.arange(q)] += 1.0
            L0, L0inv = chol_blocks(M0)
            logdet_L = 2.0 * float(np.sum(np.log(np.diagonal(L0, axis1=1, axis2=2))))
            LT = L0inv @ T0t                                  # L⁻¹ Tᵀ per level
            RZX0 = LT @ self.B0
            cu0 = (LT @ self.c0[:, :, None])[:, :, 0]
        R0 = RZX0.reshape(self.J0 * q, p)
        XtX_s = self.XtX - R0.T @ R0
        rhs = self.Xte - R0.T @ cu0.ravel()
        r2 = self.ete - float(np.sum(cu0 * cu0))
        L21 = L22 = Lr = None
        RZXr = np.zeros((0, p))
        cur = np.zeros(0)
        if self.rest:
            Lr = lam.sparse(theta, self.rest) if want_lr or self._dense is None else None
            K = np.broadcast_to(T0 @ np.swapaxes(L0inv, 1, 2), (self.J0, q, q))  # T₁L₁⁻ᵀ
            if self._dense is not None:
                # densely crossed factors: L₂₁ and M₂₂ by batched/BLAS products (blocked_cholesky)
                L21, M22 = self._dense.update(K, Ts)
                # Λ_rᵀ[Z_rᵀX, Z_rᵀe] by the same batched per-term products (the sparse Λ_rᵀ
                # and its products cost ~0.6 ms of a 2.3 ms kb07 evaluation)
                blocks = [(lo, J, qk, T) for (lo, J, qk), T in zip(self._dense.rest, Ts)]
                if getattr(self, "_ZrtXe", None) is None:
                    self._ZrtXe = np.column_stack([self.ZrtX, self.Zrte])
                LtXe = left_lambda_t(blocks, self._ZrtXe)
            elif self._schur is not None:
                L21 = self._left_lambda(Lr, self._times_K(K))
                # W_j = K_j K_jᵀ = T_j(T_jᵀA_jT_j + I)⁻¹T_jᵀ; M = ZᵣᵀZᵣ − Σ_j C_j W_j C_jᵀ
                W = K @ np.swapaxes(K, 1, 2)
                S = self._schur.apply(W)
                if self._Lr_diagonal:
                    d = Lr.diagonal()
                    M22 = S * d[:, None] * d[None, :]
                else:
                    S = np.tril(S) + np.tril(S, -1).T
                    M22 = np.asarray(Lr.T @ np.asarray(Lr.T @ S).T)
                M22[np.diag_indices_from(M22)] += 1.0
            else:
                L21 = self._left_lambda(Lr, self._times_K(K))
                M22 = (Lr.T @ self.ZrtZr @ Lr + self._Ir).toarray()
                M22 -= (L21 @ L21.T).toarray()
            # LAPACK potrf directly (scipy.linalg.cholesky's checks and copies cost 3× the
            # factorisation itself at r = 256); M22's lower triangle is read, L22 returned clean
            L22, info = sla.lapack.dpotrf(M22, lower=1, clean=1, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError("the Schur complement is not positive definite")
            logdet_L += 2.0 * float(np.sum(np.log(np.diag(L22))))
            if self._dense is None:
                LrT = Lr.T.tocsr()
                LtXe = np.column_stack([LrT @ self.ZrtX, LrT @ self.Zrte])
            # [R_ZX,r  c_u,r] by one triangular solve (LAPACK trtrs) of both right-hand sides
            sol, info = sla.lapack.dtrtrs(L22, LtXe - L21 @ np.column_stack([R0, cu0.ravel()]),
                                          lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular factor of the Schur complement")
            RZXr, cur = sol[:, :p], sol[:, p]
            XtX_s -= RZXr.T @ RZXr
            rhs -= RZXr.T @ cur
            r2 -= float(cur @ cur)
        if p:
            LX, info = sla.lapack.dpotrf(XtX_s, lower=1, clean=1, overwrite_a=1)
            if info != 0:
                raise np.linalg.LinAlgError("the fixed-effects block is not positive definite")
            cb, info = sla.lapack.dtrtrs(LX, rhs, lower=1)
            logdet_X = 2.0 * float(np.sum(np.log(np.diag(LX))))
            r2 -= float(cb @ cb)
        else:
            LX, cb, logdet_X = np.zeros((0, 0)), np.zeros(0), 0.0
        return PLSFactor(theta=theta, T0=T0, L0inv=np.broadcast_to(L0inv, (self.J0, q, q)),
                         L21=L21, L22=L22, Lr=Lr, RZX0=RZX0, RZXr=RZXr, cu0=cu0, cur=cur,
                         LX=LX, cb=cb, logdet_L=logdet_L, logdet_X=logdet_X, r2=r2)

    def _times_K(self, K: np.ndarray) -> sp.csr_matrix:
        """Z_rᵀZ₁ · blockdiag(K_j): column scaling when q₁ = 1, a sparse product otherwise."""
        if self.q0 == 1:
            out = self.ZrtZ0.copy()
            out.data = out.data * K[:, 0, 0][out.indices]
            return out
        Ksp = sp.csc_matrix((K.ravel(), self._K_pattern), shape=(self.J0 * self.q0,) * 2)
        return (self.ZrtZ0 @ Ksp).tocsr()

    def _left_lambda(self, Lr: sp.csc_matrix, A: sp.csr_matrix) -> sp.csr_matrix:
        """Λ_rᵀ A: row scaling when Λ_r is diagonal, a sparse product otherwise."""
        if self._Lr_diagonal:
            out = A.copy()
            out.data = out.data * np.repeat(Lr.diagonal(), np.diff(out.indptr))
            return out
        return (Lr.T.tocsr() @ A).tocsr()

    # -- objectives ----------------------------------------------------------------------------
    def deviance_from(self, f: PLSFactor, reml: bool) -> float:
        """d(θ) (ML) or d_R(θ) (REML) from a factorisation (module docstring)."""
        if not f.r2 > 0:
            return math.inf
        if reml:
            nu = self.n - self.p
            return (f.logdet_L + f.logdet_X + nu * (1.0 + _LOG2PI + math.log(f.r2 / nu))
                    - self.log_det_w)
        return f.logdet_L + self.n * (1.0 + _LOG2PI + math.log(f.r2 / self.n)) - self.log_det_w

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance at θ; +∞ where the system is not positive definite.

        Dense crossed update (:class:`.blocked_cholesky.DenseCoupling`): coefficient columns
        whose row and column of T are 0 in every level (a variance at 0: Λ's column and the
        corresponding row of Λᵀ vanish) are dropped first. Their part of L is the identity
        and of R_ZX, c_u zero, so the restricted system has the same log|L|², L_X and r²_θ,
        i.e. the same deviance, at the cost of its size (kb07 zero-correlation near its
        optimum, 10 of 16 θ at 0: ``dsyrk`` 96² × 168 and ``potrf`` 96 instead of 256² × 448
        and 256). Restricted systems are kept per pattern of zero columns."""
        theta = np.asarray(theta, dtype=float)
        lam = self.lam
        try:
            T0 = lam.level_factors(theta, 0)
            Ts = [lam.level_factors(theta, k) for k in self.rest]
            sub = self._active_system(T0, Ts) if self._dense is not None else None
            if sub is None:
                f = self._factor(theta, T0, Ts, False)
            else:
                system, keep = sub
                f = system._factor(theta, T0[:, keep[0]][:, :, keep[0]],
                                   [T[:, a][:, :, a] for T, a in zip(Ts, keep[1:])], False)
        except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
            return math.inf
        return self.deviance_from(f, reml)

    def _active_system(self, T0: np.ndarray, Ts: list):
        """(restricted system, kept coefficient indices per term) for :meth:`deviance`, or None
        when no column can be dropped (or a whole term would go: the full system then)."""
        keep = [np.any(T != 0, axis=(0, 1)) | np.any(T != 0, axis=(0, 2)) for T in [T0] + Ts]
        if all(k.all() for k in keep) or not all(k.any() for k in keep):
            return None
        key = b"".join(k.tobytes() for k in keep)
        cache = self.__dict__.setdefault("_active_cache", {})
        hit = cache.get(key)
        if hit is None:
            import copy
            if len(cache) >= 64:
                cache.clear()
            sub = copy.copy(self)
            sub.__dict__.pop("_active_cache", None)
            a1 = np.nonzero(keep[0])[0]
            sub._dense, cols = self._dense.restrict(keep[0], keep[1:])
            sub.q0, sub.r = len(a1), len(cols)
            sub.A0 = np.ascontiguousarray(self.A0[:, a1][:, :, a1])
            sub.B0 = np.ascontiguousarray(self.B0[:, a1])
            sub.c0 = np.ascontiguousarray(self.c0[:, a1])
            sub.ZrtX, sub.Zrte = self.ZrtX[cols], self.Zrte[cols]
            sub._ZrtXe = np.column_stack([sub.ZrtX, sub.Zrte])
            sub._theta_index = None
            if bool(np.all(self.lam.is_diagonal)):
                # every T diagonal: the restricted system is a model of its own (the kept
                # columns' θ, in order), so its exact gradient applies (:meth:`_dense_deviance_and_gradient`)
                import dataclasses
                terms = [dataclasses.replace(t, q=int(np.sum(k)))
                         for t, k in zip(self.lam.terms, keep)]
                sub.lam = LambdaFactor(terms)
                sub._theta_index = np.concatenate([
                    (self.lam.theta_offsets[i] + t.q * np.arange(t.n_blocks)[:, None]
                     + np.nonzero(k)[0][None, :]).ravel()
                    for i, (t, k) in enumerate(zip(self.lam.terms, keep))])
            hit = cache[key] = (sub, [np.nonzero(k)[0] for k in keep])
        return hit

    def deviance_and_gradient(self, theta: np.ndarray, reml: bool = True, *,
                              nan_at_zero: bool = False):
        r"""(d(θ), ∇d(θ)) with an exact gradient where Λ is diagonal and the first term scalar
        (e.g. ``(1 | s) + (1 | d) + (1 | dept)``), else None (the caller differentiates
        numerically). Also None when some θ_k < 10⁻⁶ (the formula below divides by θ_k),
        except that with ``nan_at_zero`` the entries with θ_k = 0 exactly (a bound) are NaN
        and the others exact (the caller differentiates only those: 2 evaluations each
        instead of 2·len(θ) + 1).

        With Λ = Σ_k θ_k F_k (F_k: the columns scaled by θ_k, n_k of them) and the full PLS
        matrix A = [[ΛZᵀZΛ + I, ΛZᵀX], [XᵀZΛ, XᵀX]] (log|A| = log|L|² + log|L_X|²):

            ∂ log|A| / ∂θ_k = (2/θ_k) (n_k − Σ_{i∈k} (A⁻¹)_ii)      (ML: M = ΛZᵀZΛ + I for A)
            ∂ r²_θ / ∂θ_k   = −(2/θ_k) ‖û_k‖²                        (envelope theorem, ΛZᵀr̂ = û)

        so ∂d/∂θ_k = (2/θ_k)(n_k − Σ_{i∈k}(A⁻¹)_ii) − (2ν/θ_k)‖û_k‖²/r²_θ (ν = n − p or n).
        (A⁻¹)_uu = M⁻¹ + YYᵀ with Y = L⁻ᵀR_ZX L_X⁻ᵀ; diag(M⁻¹) is M₂₂⁻¹'s diagonal on the
        other terms and, summed over the first term's levels, Σ_j l_j⁻² + tr(M₂₂⁻¹ L₂₁D⁻²L₂₁ᵀ)
        (l_j its 1 × 1 factors, D = diag(l_j)); L₂₁D⁻²L₂₁ᵀ comes from the Schur update. The
        cost is about two deviance evaluations (``potri`` for M₂₂⁻¹), against 2·len(θ) for
        central differences.
        """
        theta = np.asarray(theta, dtype=float)
        if self.rest and self._dense is not None:
            return self._dense_deviance_and_gradient(theta, reml)
        if not self._gradient_applies:
            return None
        zero = theta == 0.0 if nan_at_zero else np.zeros(len(theta), bool)
        if np.any((theta < 1e-6) & ~zero) or np.all(zero):
            return None
        fd = self._factor_and_deviance(theta, reml)
        if fd is None:
            return None
        f, dev = fd
        p, nt = self.p, len(theta)
        l0inv = f.L0inv[:, 0, 0]
        diag_inv = np.zeros(nt)                                  # Σ_{i∈k} (A⁻¹)_ii
        diag_inv[0] = float(np.sum(l0inv ** 2))
        u0, ur = self.spherical_modes(f)
        unorm = np.zeros(nt)
        unorm[0] = float(np.sum(u0 ** 2))
        counts = np.zeros(nt)
        counts[0] = self.J0
        if self.rest:
            Minv, info = sla.lapack.dpotri(f.L22, lower=1)
            if info != 0:
                return None
            d = f.Lr.diagonal()
            k0 = (f.T0[:, 0, 0] * l0inv) ** 2 * l0inv ** 2     # K_j² / l_j²
            # tr(M₂₂⁻¹ L₂₁D⁻²L₂₁ᵀ) = Σ_ab (C diag(k0) Cᵀ)_ab (d_a d_b M₂₂⁻¹_ab)
            diag_inv[0] += self._schur.trace_product(k0[:, None, None],
                                                     Minv * d[:, None] * d[None, :])
            np.add.at(diag_inv, self._rest_theta, np.diag(Minv))
            np.add.at(unorm, self._rest_theta, ur ** 2)
            np.add.at(counts, self._rest_theta, 1.0)
        if reml and p:
            RZX = np.vstack([f.RZX0.reshape(-1, p), f.RZXr])
            Zm = sla.solve_triangular(f.LX, RZX.T, lower=True, check_finite=False).T
            Y0 = Zm[:self.J0]
            if self.rest:
                Yr = sla.solve_triangular(f.L22, Zm[self.J0:], lower=True, trans="T",
                                          check_finite=False)
                Y0 = Y0 - f.L21.T @ Yr
                np.add.at(diag_inv, self._rest_theta, np.sum(Yr ** 2, axis=1))
            diag_inv[0] += float(np.sum((l0inv[:, None] * Y0) ** 2))
        nu = self.n - self.p if reml else self.n
        th = np.where(zero, 1.0, theta)
        grad = 2.0 / th * (counts - diag_inv) - 2.0 * nu / th * unorm / f.r2
        grad[zero] = np.nan
        return dev, grad

    def _factor_and_deviance(self, theta: np.ndarray, reml: bool):
        """(factor, deviance) at θ, or None where the factorisation fails or the deviance is not
        finite (the gradient paths then fall back to differences)."""
        try:
            f = self.factor(theta)
        except (np.linalg.LinAlgError, sla.LinAlgError, ValueError):
            return None
        dev = self.deviance_from(f, reml)
        return (f, dev) if np.isfinite(dev) else None

    def _dense_deviance_and_gradient(self, theta: np.ndarray, reml: bool):
        """(d, ∇d) for the dense crossed update, any Λ: :func:`.blocked_cholesky.profiled_gradient`."""
        lam = self.lam
        sub = self._active_system(lam.level_factors(theta, 0),
                                  [lam.level_factors(theta, k) for k in self.rest])
        if sub is not None and sub[0]._theta_index is not None:
            # Λ diagonal with some θ_i = 0: the restricted system's (d, ∇d) on the other θ
            # (:meth:`deviance`); ∂d/∂θ_i = 0 at θ_i = 0 (d depends on θ_i² only: the sign of
            # that column of Λ is that of û_i)
            system = sub[0]
            out = system._dense_deviance_and_gradient(theta[system._theta_index], reml)
            if out is None:
                return None
            grad = np.zeros(len(theta))
            grad[system._theta_index] = out[1]
            return out[0], grad
        fd = self._factor_and_deviance(theta, reml)
        if fd is None:
            return None
        f, dev = fd
        grad = profiled_gradient(self, f, reml)
        return None if grad is None else (dev, grad)

    def deviance_batch(self, thetas: np.ndarray, reml: bool = True) -> np.ndarray | None:
        """Profiled deviances at K values of θ at once, (K, n_θ) → (K,), for models with one
        group term (None otherwise): the per-level factors of all K values in one batched
        LAPACK call, so that a central-difference gradient costs about one evaluation of
        Python overhead instead of 2 n_θ + 1 (the parametric bootstrap's refits).
        +∞ where a system is not positive definite."""
        if self.rest:
            return None
        thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
        K, q, p = len(thetas), self.q0, self.p
        T = np.stack([self.lam.level_factors(th, 0) for th in thetas])    # (K, J|1, q, q)
        Tt = np.swapaxes(T, -1, -2)
        M = Tt @ self.A0[None] @ T
        M[..., np.arange(q), np.arange(q)] += 1.0
        out = np.full(K, np.inf)
        try:
            L = np.linalg.cholesky(M)                                       # (K, J, q, q)
        except np.linalg.LinAlgError:
            return np.array([self.deviance(th, reml) for th in thetas])
        logdet_L = 2.0 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=(1, 2))
        LT = np.linalg.solve(L, np.broadcast_to(Tt, L.shape))            # L⁻¹ Tᵀ
        RZX = LT @ self.B0[None]                                           # (K, J, q, p)
        cu = (LT @ self.c0[None, :, :, None])[..., 0]                      # (K, J, q)
        r2 = self.ete - np.sum(cu * cu, axis=(1, 2))
        logdet_X = np.zeros(K)
        if p:
            XtX_s = self.XtX[None] - np.einsum("kjqa,kjqb->kab", RZX, RZX)
            rhs = self.Xte[None] - np.einsum("kjqa,kjq->ka", RZX, cu)
            try:
                LX = np.linalg.cholesky(XtX_s)
            except np.linalg.LinAlgError:
                return np.array([self.deviance(th, reml) for th in thetas])
            cb = np.linalg.solve(LX, rhs[..., None])[..., 0]
            logdet_X = 2.0 * np.sum(np.log(np.diagonal(LX, axis1=-2, axis2=-1)), axis=1)
            r2 = r2 - np.sum(cb * cb, axis=1)
        ok = r2 > 0
        r2s = np.where(ok, r2, 1.0)
        if reml:
            nu = self.n - p
            dev = logdet_L + logdet_X + nu * (1.0 + _LOG2PI + np.log(r2s / nu))
        else:
            dev = logdet_L + self.n * (1.0 + _LOG2PI + np.log(r2s / self.n))
        dev = dev - self.log_det_w
        out[ok] = dev[ok]
        return out

    # -- estimates at θ ------------------------------------------------------------------------
    def spherical_modes(self, f: PLSFactor) -> tuple[np.ndarray, np.ndarray]:
        """û = L⁻ᵀ(c_u − R_ZX β̂) by block back-substitution: (u₁ as (J₁, q₁), u_rest)."""
        db = self.beta(f) - self.beta_ols if self.p else np.zeros(0)
        w0 = f.cu0 - f.RZX0 @ db if self.p else f.cu0
        ur = np.zeros(0)
        if self.rest:
            wr = f.cur - f.RZXr @ db if self.p else f.cur
            ur = sla.solve_triangular(f.L22, wr, lower=True, trans="T", check_finite=False)
            w0 = w0 - (f.L21.T @ ur).reshape(self.J0, self.q0)
        u0 = (np.swapaxes(f.L0inv, 1, 2) @ w0[:, :, None])[:, :, 0]
        return u0, ur

    def conditional_modes(self, f: PLSFactor) -> list[np.ndarray]:
        """b̂ = Λû per term, each as (J_k, q_k)."""
        u0, ur = self.spherical_modes(f)
        out = [(f.T0 @ u0[:, :, None])[:, :, 0]]
        if self.rest:
            br = f.Lr @ ur
            for k in self.rest:
                lo = self.lam.col_offsets[k] - self.lam.col_offsets[1]
                t = self.lam.terms[k]
                out.append(br[lo:lo + t.J * t.q].reshape(t.J, t.q))
        return out


def chol_blocks(M: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors L_j (lower) of a stack of SPD matrices M_j and their inverses.

    Closed form for 2 × 2 blocks (elementwise over the stack, the common intercept + slope
    case); numpy's batched LAPACK otherwise. Raises LinAlgError if a block is not SPD."""
    q = M.shape[-1]
    if q == 2:
        a2 = M[:, 0, 0]
        if np.any(a2 <= 0):
            raise np.linalg.LinAlgError("block not positive definite")
        a = np.sqrt(a2)
        b = M[:, 1, 0] / a
        c2 = M[:, 1, 1] - b * b
        if np.any(c2 <= 0):
            raise np.linalg.LinAlgError("block not positive definite")
        c = np.sqrt(c2)
        L = np.zeros_like(M)
        L[:, 0, 0], L[:, 1, 0], L[:, 1, 1] = a, b, c
        Li = np.zeros_like(M)
        Li[:, 0, 0], Li[:, 1, 0], Li[:, 1, 1] = 1.0 / a, -b / (a * c), 1.0 / c
        return L, Li
    L = np.linalg.cholesky(M)
    return L, np.linalg.inv(L)


def _z(Xk: np.ndarray, codes: np.ndarray, J: int) -> sp.csr_matrix:
    n, q = Xk.shape
    rows = np.repeat(np.arange(n), q)
    cols = (codes[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((Xk.ravel(), (rows, cols)), shape=(n, J * q))


def crossproducts(X: np.ndarray, y: np.ndarray, blocks, J: list[int]) -> dict:
    """The cross-products :meth:`PenalizedLS.from_crossproducts` reads, for one chunk of rows
    (sums over chunks add up; ``R`` combines by qr of the stacked factors, :func:`add_crossproducts`).
    ``blocks``: per term (X_k (n, q_k), codes (n,)) in Λ's term order; J: levels per term."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    n, p = X.shape
    X0, codes0 = np.asarray(blocks[0][0], dtype=float), np.asarray(blocks[0][1])
    q0, J0 = X0.shape[1], J[0]
    W = np.concatenate([X0[:, :, None] * X0[:, None, :], X0[:, :, None] * X[:, None, :],
                        (X0 * y[:, None])[:, :, None]], axis=2)
    flat = W.reshape(n, -1)
    S = np.stack([np.bincount(codes0, weights=flat[:, k], minlength=J0)
                  for k in range(flat.shape[1])], axis=1).reshape(J0, q0, -1)
    out = {"N": n, "XtX": X.T @ X, "Xty": X.T @ y, "yty": float(y @ y),
           "R": np.linalg.qr(np.column_stack([X, y]), mode="r"),
           "A0": S[:, :, :q0], "B0": S[:, :, q0:q0 + p], "c0": S[:, :, -1]}
    if len(blocks) > 1:
        Z0 = _z(X0, codes0, J0)
        Zr = sp.hstack([_z(np.asarray(Xk, float), np.asarray(ck), Jk)
                        for (Xk, ck), Jk in zip(blocks[1:], J[1:])], format="csc")
        ZrT = Zr.T.tocsr()
        out.update(ZrtZr=(ZrT @ Zr).tocsc(), ZrtZ0=(ZrT @ Z0).tocsr(),
                   ZrtX=np.asarray(ZrT @ X), Zrty=np.asarray(ZrT @ y).ravel())
    return out


def add_crossproducts(a: dict | None, b: dict | None) -> dict | None:
    """Sum of two chunks' :func:`crossproducts` (None: an empty chunk)."""
    if a is None or b is None:
        return a if b is None else b
    out = {}
    for k, v in a.items():
        if k == "R":
            R = np.linalg.qr(np.vstack([v, b[k]]), mode="r")
            out[k] = R
        else:
            out[k] = v + b[k]
    return out
