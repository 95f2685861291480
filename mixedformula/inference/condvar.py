r"""Conditional variances of the random effects given θ and β (lme4's ``ranef(condVar = TRUE)``).

With b = Λ(θ) u and, at the estimates, the penalised weighted least-squares system of the fit,

    Var(b | y, θ̂, β̂) ≈ s² Λ (Λᵀ Zᵀ W Z Λ + I)⁻¹ Λᵀ,

* ``lmer``: W = I and s = σ̂ (exact for the Gaussian model, conditional on θ̂ and β̂);
* ``glmer``: W = the PIRLS weights at the conditional modes (prior weight × the family's
  information about η, Fisher's for lme4's families, observed for the glmmTMB ones: the
  matrix of the Laplace approximation) and s = 1.

Λ is block diagonal over the levels, so the q × q block of level j of term k is
s² T_k (M⁻¹)_{jj} T_kᵀ, T_k the template of that level and (M⁻¹)_{jj} the matching diagonal
block of M⁻¹, M = ΛᵀZᵀWZΛ + I. That is the array lme4 stores in
``attr(ranef(fit, condVar = TRUE)[[g]], "postVar")`` (q × q × J there, J × q × q here).
M⁻¹'s blocks come from a dense inverse for up to :data:`DENSE_MAX` columns, else from a sparse
LU solve (scipy's ``splu``) of the identity's columns in chunks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from ..linalg.pirls import z_matrix

DENSE_MAX = 3000
CHUNK = 256


@dataclass
class CondVar:
    """One random-effects term: its group, coefficient names, levels, conditional modes
    (J × q) and conditional variances (J × q × q)."""

    group: str
    coefs: list[str]
    levels: list[str]
    modes: np.ndarray
    var: np.ndarray

    @property
    def sd(self) -> np.ndarray:
        """Conditional standard deviations (J × q): √ of the variances' diagonals."""
        return np.sqrt(np.maximum(np.einsum("jqq->jq", self.var), 0.0))

    def frame(self) -> pd.DataFrame:
        """Long table: grp, term, grp level, condval, condsd (lme4's ``as.data.frame(ranef)``)."""
        J, q = self.modes.shape
        sd = self.sd
        return pd.DataFrame({"grpvar": self.group, "term": np.tile(self.coefs, J),
                             "grp": np.repeat(self.levels, q),
                             "condval": self.modes.ravel(), "condsd": sd.ravel()})


def working_weights(fit) -> tuple[np.ndarray | None, float]:
    """(W's diagonal or None for I, s²) of the fit (module docstring)."""
    family = getattr(fit, "family", None)
    if family is None:                                   # lmer
        return None, float(fit.sigma) ** 2
    eta = fit.predict(type="link")
    _, w = family.score_information(fit.design.y[:, 0], eta, fit.params, fit.design.trials,
                                    observed=family.laplace_information == "observed")
    w = np.maximum(np.asarray(w, dtype=float), 0.0)
    if getattr(fit, "prior_weights", None) is not None:
        w = w * fit.prior_weights
    return w, 1.0


def _inverse_blocks(M: sp.csc_matrix, sizes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Diagonal blocks of M⁻¹ for the column ranges ``(start, width)``."""
    n = M.shape[0]
    if n <= DENSE_MAX:
        Minv = np.linalg.inv(M.toarray())
        return [Minv[s:s + w, s:s + w] for s, w in sizes]
    lu = splu(M.tocsc())
    out = []
    for s, w in sizes:
        E = np.zeros((n, w))
        E[s:s + w, :] = np.eye(w)
        out.append(lu.solve(E)[s:s + w, :])
    return out


def _reduced_ztz(pls) -> sp.csc_matrix:
    """ZᵀZ assembled from the cross-products a :class:`~mixedformula.linalg.penalized.PenalizedLS`
    keeps (first term: the per-level blocks A0, block diagonal; the others: ZrtZ0, ZrtZr), in
    Λ's column order; no rows needed (``mf.lmer`` on a Dask DataFrame)."""
    A0 = sp.block_diag(list(pls.A0), format="csc")
    if not pls.rest:
        return A0
    C = sp.csr_matrix(pls.ZrtZ0)
    return sp.bmat([[A0, C.T], [C, pls.ZrtZr]], format="csc")


def conditional_variances(fit) -> list[CondVar]:
    """One :class:`CondVar` per random-effects term of an lmer / glmer fit, in lme4's order."""
    lam = fit.lambda_factor
    theta = fit.theta.to_numpy()
    L = lam.sparse(theta)
    w, s2 = working_weights(fit)
    if getattr(fit.design, "rows_in_memory", True):
        Z = z_matrix([(t.X, t.codes, len(t.levels)) for t in fit.terms], fit.nobs)
        ZL = (Z @ L).tocsc()
        WZL = ZL if w is None else sp.diags(w) @ ZL
        M = (ZL.T @ WZL + sp.identity(ZL.shape[1])).tocsc()
    else:                       # a Dask lmer fit: ZᵀZ from its reduced cross-products
        M = (L.T @ _reduced_ztz(fit.penalized_ls()) @ L + sp.identity(L.shape[1])).tocsc()
    out = []
    for k, (t, b) in enumerate(zip(fit.terms, fit.b)):
        J, q = b.shape
        off = int(lam.col_offsets[k])
        blocks = _inverse_blocks(M, [(off + j * q, q) for j in range(J)])
        Lk = L[off:off + J * q, off:off + J * q].toarray()
        var = np.empty((J, q, q))
        for j, Bj in enumerate(blocks):
            T = Lk[j * q:(j + 1) * q, j * q:(j + 1) * q]
            var[j] = s2 * T @ Bj @ T.T
        out.append(CondVar(t.group, list(t.coefs), [str(v) for v in t.levels],
                           np.asarray(b, dtype=float), var))
    return out
