r"""brms' ``unstr(time, gr)`` residuals for REML/ML (nlme's ``corSymm``).

Model: y = Xβ + Zb + ε, ε ~ N(0, σ² R), R block diagonal over the levels j of ``gr`` with
R_j = C[s_j, s_j], C the T × T correlation matrix over the distinct time points and s_j the
times at which level j is observed (:mod:`mixedformula.design.unstr`: groups sharing a time
pattern s share one factor C[s, s] = L_s L_sᵀ).

Parametrisation (unconstrained a ∈ ℝ^{T(T−1)/2}, every a a valid C): B unit lower triangular
with a below the diagonal (row-major, B[1,0], B[2,0], B[2,1], …), its rows scaled to unit length,
L = diag(‖B_k‖)⁻¹ B, C = L Lᵀ (L is C's Cholesky factor: every correlation Cholesky factor's
rows are unit vectors with a positive last entry, and each such row is B_k / ‖B_k‖ for exactly
one B_k). a = 0 is C = I. (nlme's corSymm uses spherical angles of the same rows; the fitted C
is the same.)

Whitening as in :mod:`.residual_corr`: W = blockdiag L_{s_j}⁻¹ (Wᵀ W = R⁻¹), and

    d(θ, a) = d_W(θ) + log|R(a)|,   log|R| = Σ_j 2 Σ_k log L_{s_j}[k, k].
"""

from __future__ import annotations

import numpy as np

from ..design.unstr import correlation_matrix, cortime_pairs, time_patterns


class UnstrCorrelation:
    """R(C) of one ``unstr()`` term over the design's rows (``structure``: the design's
    :class:`~mixedformula.design.autocor.AutocorStructure` of kind ``"unstr"``)."""

    kind = "unstr"

    def __init__(self, structure):
        self.structure = structure
        self.times = tuple(structure.times)
        self.T = len(self.times)
        self.patterns = time_patterns(structure)
        self.n_par = self.T * (self.T - 1) // 2
        self._tril = np.tril_indices(self.T, -1)

    def start(self) -> np.ndarray:
        """a at C = I."""
        return np.zeros(self.n_par)

    def value(self, a: np.ndarray) -> np.ndarray:
        """C (T, T) from the unconstrained a."""
        B = np.eye(self.T)
        B[self._tril] = np.asarray(a, dtype=float)
        L = B / np.linalg.norm(B, axis=1, keepdims=True)
        C = L @ L.T
        np.fill_diagonal(C, 1.0)
        return C

    def valid(self, C: np.ndarray) -> bool:
        """C numerically positive definite on every observed pattern."""
        try:
            for p in self.patterns:
                np.linalg.cholesky(C[np.ix_(p.times, p.times)])
        except np.linalg.LinAlgError:
            return False
        return True

    def logdet(self, C: np.ndarray) -> float:
        """log|R(C)|."""
        out = 0.0
        for p in self.patterns:
            L = np.linalg.cholesky(C[np.ix_(p.times, p.times)])
            out += len(p.groups) * 2.0 * float(np.sum(np.log(np.diag(L))))
        return out

    def whiten(self, M: np.ndarray, C: np.ndarray) -> np.ndarray:
        """W M for an (n,) or (n, k) array (rows in the data's order)."""
        M = np.asarray(M, dtype=float)
        vec = M.ndim == 1
        A = M[:, None] if vec else M
        out = np.empty_like(A)
        for p in self.patterns:
            L = np.linalg.cholesky(C[np.ix_(p.times, p.times)])
            Linv = np.linalg.solve(L, np.eye(len(p.times)))
            out[p.rows] = np.einsum("ab,gbk->gak", Linv, A[p.rows])
        return out[:, 0] if vec else out

    def correlations(self, C: np.ndarray) -> np.ndarray:
        """C's correlations in brms' order of ``cortime__<t_a>__<t_b>``."""
        return np.array([C[a, b] for a, b in cortime_pairs(self.T)])

    def matrix(self, values) -> np.ndarray:
        """C from the correlations in brms' order."""
        return correlation_matrix(values, self.T)


__all__ = ["UnstrCorrelation"]
