r"""The Schur-complement update Σ_j C_j W_j C_jᵀ of crossed/nested designs, as one sparse matvec.

In the blocked factorisation of ΛᵀZᵀZΛ + I (:mod:`.penalized`) the first grouping factor
(J₁ levels, q₁ coefficients) is eliminated level by level, leaving for the other r columns

    M = Z_rᵀZ_r − C W Cᵀ = Z_rᵀZ_r − Σ_j C_j W_j C_jᵀ,

with C = Z_rᵀZ₁ (r × J₁q₁, sparse), C_j its q₁ columns of level j and W_j = T_j(T_jᵀA_jT_j + I)⁻¹T_jᵀ
(q₁ × q₁, depends on θ). The *pattern* of C does not depend on θ, so every entry

    (C W Cᵀ)_{ik} = Σ_j Σ_{a,b} C_{i,ja} C_{k,jb} W_{j,ab}

is a fixed linear function of vec(W): ``vec_lower(C W Cᵀ) = P vec(W)`` with P sparse
(one row per structurally non-zero (i, k), i ≥ k; Σ_j (nnz of C_j)² entries, made once).
Each evaluation then costs one sparse matvec plus a scatter into the dense r × r matrix,
instead of two sparse-sparse products and their conversions (measured on InstEval-shaped data,
r = 1142: 0.1 s → 0.01 s per evaluation; see benchmarks/README.md).

Why the remaining r × r system is factored densely (LAPACK) and not by a sparse Cholesky
(CHOLMOD, SuperLU): eliminating the first factor connects every pair of columns that share one of
its levels, so M is already dense-ish before any fill (InstEval shape: 37 % of the 1142² entries
structurally non-zero) and a fill-reducing ordering cannot recover sparsity; a dense
single-threaded ``potrf`` of 1142 × 1142 takes ≈ 0.06 s and needs no optional compiled extra.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp

#: most (i, k, j) products P may hold (≈ 24 bytes each); larger designs use sparse products
MAX_PRODUCTS = 10_000_000
#: largest key range (r²) for which the distinct keys are found by a presence map, not a sort
MAX_DENSE_KEYS = 50_000_000


def _unique_inverse(flat: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(flat, return_inverse=True)`` for integer keys in [0, size): a presence map
    and a running count, O(size + len(flat)) without sorting the ≈ 10⁶ products (InstEval
    shape: 0.30 s → 0.03 s); ``np.unique`` when ``size`` exceeds :data:`MAX_DENSE_KEYS`."""
    if size > MAX_DENSE_KEYS:
        return np.unique(flat, return_inverse=True)
    present = np.zeros(size, dtype=bool)
    present[flat] = True
    keys = np.flatnonzero(present)
    index = np.cumsum(present, dtype=np.int64) - 1
    return keys, index[flat]


@dataclass
class SchurUpdate:
    """Z_rᵀZ_r − C W Cᵀ (lower triangle) from vec(W) by one sparse matvec."""

    base: np.ndarray          # (r, r) dense Z_rᵀZ_r
    keys: np.ndarray          # (m,) flat indices i·r + k (i ≥ k) of the structural non-zeros
    P: sp.csr_matrix          # (m, J₁q₁²)

    @classmethod
    def build(cls, C: sp.spmatrix, ZrtZr: sp.spmatrix, q: int) -> "SchurUpdate | None":
        """P from the pattern of C = Z_rᵀZ₁ (columns level-major, q per level); None if it would
        hold more than :data:`MAX_PRODUCTS` products."""
        C = sp.csc_matrix(C)
        C.sort_indices()
        r, ncols = C.shape
        J = ncols // q
        # the entries of level j's q columns are contiguous in CSC order
        start = C.indptr[0:ncols:q]
        n = C.indptr[q::q] - start                               # entries per level
        if int(np.sum(n.astype(np.int64) ** 2)) > MAX_PRODUCTS:
            return None
        level = np.repeat(np.arange(J), n)                       # level of each entry
        col = np.repeat(np.arange(ncols), np.diff(C.indptr))     # column of each entry
        m = n[level]                                             # group size per entry
        I = np.repeat(np.arange(C.nnz), m)                       # every (entry, entry) pair
        pos = np.arange(len(I)) - np.repeat(np.cumsum(m) - m, m)
        K = start[level[I]] + pos
        rows = C.indices
        keep = rows[I] >= rows[K]
        I, K = I[keep], K[keep]
        coef = C.data[I] * C.data[K]
        widx = level[I] * q * q + (col[I] % q) * q + (col[K] % q)
        keys, row = _unique_inverse(rows[I].astype(np.int64) * r + rows[K], r * r)
        P = sp.csr_matrix((coef, (row, widx)), shape=(len(keys), J * q * q))
        return cls(base=np.asarray(sp.csr_matrix(ZrtZr).toarray()), keys=keys, P=P)

    def product(self, W: np.ndarray) -> np.ndarray:
        """Dense (r, r) matrix whose lower triangle is C W Cᵀ (zeros above the diagonal)."""
        J = self.P.shape[1] // (W.shape[-1] ** 2)
        w = np.broadcast_to(W, (J,) + W.shape[1:]).ravel()
        S = np.zeros_like(self.base)
        S.ravel()[self.keys] = self.P @ w
        return S

    def trace_product(self, W: np.ndarray, M: np.ndarray) -> float:
        """Σ_ab (C W Cᵀ)_ab M_ab for a symmetric M of which only the lower triangle is read
        (tr(M C W Cᵀ), without forming C W Cᵀ densely)."""
        J = self.P.shape[1] // (W.shape[-1] ** 2)
        w = np.broadcast_to(W, (J,) + W.shape[1:]).ravel()
        vals = self.P @ w
        m = M.ravel()[self.keys]
        # off-diagonal keys count twice (the upper triangle is not stored)
        return float(2.0 * (vals @ m) - vals[self._diagonal] @ m[self._diagonal])

    @cached_property
    def _diagonal(self) -> np.ndarray:
        """Positions of the diagonal (i, i) keys (computed once)."""
        r = self.base.shape[0]
        return np.flatnonzero(self.keys // r == self.keys % r)

    def apply(self, W: np.ndarray) -> np.ndarray:
        """Dense (r, r) matrix whose lower triangle is Z_rᵀZ_r − C W Cᵀ (upper: not meaningful).

        ``W``: (J₁, q₁, q₁), or (1, q₁, q₁) broadcast to all levels."""
        J = self.P.shape[1] // (W.shape[-1] ** 2)
        w = np.broadcast_to(W, (J,) + W.shape[1:]).ravel()
        S = self.base.copy()
        S.ravel()[self.keys] -= self.P @ w
        return S
