"""The relative covariance factor Λ(θ) of lme4 (Bates et al. 2015, JSS 67(1), section 2.2).

Model: y = Xβ + Zb + ε, ε ~ N(0, σ²I), b = Λ(θ) u with spherical u ~ N(0, σ²I), so

    Var(b) = σ² Λ(θ) Λ(θ)ᵀ.

Group term k has q_k coefficients over J_k levels; its columns of Z are level-major
(column ``offset_k + j q_k + c``). Λ is block diagonal with one q_k × q_k lower-triangular block
T_{k,j} per level j of term k:

    Λ = diag(T_{1,1}, …, T_{1,J_1}, T_{2,1}, …),   Var(b_{k,j}) = σ² T_{k,j} T_{k,j}ᵀ.

Without ``by`` every level of a term shares one template T_k; with ``gr(g, by = h)`` the levels
of g inside level h' of h share T_{k,h'} (one template per by-level).

θ layout (lme4's ``getME(fit, "theta")``): per term, per template, the lower triangle of T read
column by column — for q = 2: (T₁₁, T₂₁, T₂₂). Uncorrelated terms (``||``, ``cor = FALSE``) have
diagonal T: θ holds only (T₁₁, …, T_qq), which is exactly lme4's θ for the split terms
``(1 | g) + (0 + x | g)``. Diagonal entries are bounded below by 0, off-diagonal entries are free;
lme4 starts at θ = 1 on diagonals and 0 elsewhere (T = I). The layout of one block
(:class:`~mixedformula.design.reterms.TermLayout`) is its covariance block's
(:attr:`mixedformula.design.reterms.CovBlock.layout`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..design.reterms import TermLayout


class LambdaFactor:
    """θ ↔ Λ(θ) for a list of group terms (in the order of Z's column blocks)."""

    def __init__(self, terms: list[TermLayout]):
        self.terms = list(terms)
        sizes = [t.n_theta for t in self.terms]
        self.theta_offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.n_theta = int(self.theta_offsets[-1])
        self.col_offsets = np.concatenate(
            [[0], np.cumsum([t.J * t.q for t in self.terms])]).astype(int)
        diag = []
        for t in self.terms:
            rows, cols = t.entries
            diag.append(np.tile(rows == cols, t.n_blocks))
        self.is_diagonal = np.concatenate(diag) if diag else np.zeros(0, bool)
        self._sparse_cache: dict[tuple[int, ...], tuple] = {}

    # -- θ vector ------------------------------------------------------------------------------
    @property
    def theta0(self) -> np.ndarray:
        """lme4's starting value: 1 on diagonals, 0 off the diagonal (T = I)."""
        return self.is_diagonal.astype(float)

    @property
    def lower(self) -> np.ndarray:
        """Lower bounds: 0 for diagonal entries, −∞ otherwise."""
        return np.where(self.is_diagonal, 0.0, -np.inf)

    def term_theta(self, theta: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(theta)[self.theta_offsets[k]:self.theta_offsets[k + 1]]

    # -- templates -----------------------------------------------------------------------------
    def templates(self, theta: np.ndarray, k: int) -> np.ndarray:
        """(n_blocks, q, q) lower-triangular templates T of term k."""
        t = self.terms[k]
        rows, cols = t.entries
        T = np.zeros((t.n_blocks, t.q, t.q))
        T[:, rows, cols] = self.term_theta(theta, k).reshape(t.n_blocks, len(rows))
        return T

    def level_factors(self, theta: np.ndarray, k: int) -> np.ndarray:
        """T per level of term k: (J, q, q), or (1, q, q) broadcastable when all levels share T."""
        T = self.templates(theta, k)
        t = self.terms[k]
        if t.n_blocks == 1:
            return T
        return T[t.block_of_level]

    def theta_from_templates(self, Ts: list[np.ndarray]) -> np.ndarray:
        """Inverse of :meth:`templates`: θ from a list of (n_blocks, q, q) arrays."""
        parts = []
        for t, T in zip(self.terms, Ts):
            rows, cols = t.entries
            parts.append(np.asarray(T)[:, rows, cols].ravel())
        return np.concatenate(parts) if parts else np.zeros(0)

    # -- sparse Λ ------------------------------------------------------------------------------
    def _structure(self, which: tuple[int, ...]):
        if which not in self._sparse_cache:
            R, C, ind = [], [], []
            col0 = 0
            for k in which:
                t = self.terms[k]
                rows, cols = t.entries
                m = len(rows)
                lev = np.arange(t.J)
                base = col0 + lev[:, None] * t.q
                R.append((base + rows[None, :]).ravel())
                C.append((base + cols[None, :]).ravel())
                blk = np.zeros(t.J, int) if t.n_blocks == 1 else np.asarray(t.block_of_level)
                ind.append((self.theta_offsets[k] + blk[:, None] * m
                            + np.arange(m)[None, :]).ravel())
                col0 += t.J * t.q
            R = np.concatenate(R) if R else np.zeros(0, int)
            C = np.concatenate(C) if C else np.zeros(0, int)
            ind = np.concatenate(ind) if ind else np.zeros(0, int)
            pattern = sp.csc_matrix((np.arange(1, len(R) + 1, dtype=float), (R, C)),
                                    shape=(col0, col0))
            perm = pattern.data.astype(np.int64) - 1
            self._sparse_cache[which] = (pattern, ind[perm])
        return self._sparse_cache[which]

    def sparse(self, theta: np.ndarray, which=None) -> sp.csc_matrix:
        """Λ(θ) (sparse, block diagonal) restricted to the terms ``which`` (default: all)."""
        which = tuple(range(len(self.terms))) if which is None else tuple(which)
        pattern, lind = self._structure(which)
        out = pattern.copy()
        out.data = np.asarray(theta, dtype=float)[lind]
        return out
