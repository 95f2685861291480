"""The materialised model: y, X and one :class:`GroupBlock` per (expanded) group term.

Notation (lme4 / DESIGN.md): y = Xβ + Zu + ε. For group term k with q_k coefficients over J_k
levels, row i contributes ``X_k[i] · u_k[codes_k[i]]``; Z_k is the sparse n × (J_k q_k) matrix with
``Z_k[i, codes_k[i] * q_k + c] = X_k[i, c]`` (columns level-major, as lme4's Zᵀ rows), and
``Z = [Z_1 … Z_K]``. A dense n × Σ J_k q_k matrix is never built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..formula import FormulaSpec, GroupTerm

if TYPE_CHECKING:
    from .additions import Censoring
    from .spec import DesignSpec


@dataclass
class GroupBlock:
    """One group term evaluated on data."""

    term: GroupTerm
    coef_names: list[str]          # brms names of the q coefficients, e.g. ["Intercept", "Days"]
    X: np.ndarray                  # (n, q) per-row coefficient multipliers
    codes: np.ndarray              # (n,) int64 level index; -1 missing, >= J unseen (new data)
    levels: list[str]              # J level labels (g1:g2 levels joined with "_", as brms)
    by_levels: list[str] | None = None   # levels of the by-factor of gr(g, by = h)
    by_codes: np.ndarray | None = None   # (J,) index into by_levels for each level of g
    new_levels: list[str] = field(default_factory=list)  # unseen labels (code J + k)
    #: gr(g, cov = A): lower Cholesky factor (J, J) of the known covariance across levels
    #: (:mod:`.known_cov`); None: levels independent
    cov_factor: np.ndarray | None = None

    @property
    def response(self) -> int | None:
        """bf() formulas: the one response this term belongs to (None: every response)."""
        return self.term.response

    @property
    def dpar(self) -> str | None:
        """Distributional formulas: the parameter this term belongs to (None: the mean)."""
        return self.term.dpar

    @property
    def name(self) -> str:
        return self.term.group

    @property
    def q(self) -> int:
        return self.X.shape[1]

    @property
    def J(self) -> int:
        return len(self.levels)

    @property
    def correlated(self) -> bool:
        return self.term.correlated

    def Z(self) -> sp.csr_matrix:
        """Sparse n × (J·q) block of Z; rows with missing or unseen levels are all zero."""
        n, q = self.X.shape
        ok = (self.codes >= 0) & (self.codes < self.J)
        rows = np.repeat(np.nonzero(ok)[0], q)
        cols = (self.codes[ok, None] * q + np.arange(q)[None, :]).ravel()
        vals = self.X[ok].ravel()
        return sp.csr_matrix((vals, (rows, cols)), shape=(n, self.J * q))


@dataclass
class Design:
    """Everything the engines need, built once from (formula, data)."""

    formula: FormulaSpec
    y: np.ndarray | None           # (n, r) responses; None for new data without responses
    response_names: list[str]      # brms names of the responses
    X: np.ndarray                  # (n, p)
    X_names: list[str]             # brms names of X's columns ("Intercept", "Days", "fb")
    terms: list[GroupBlock]
    spec: "DesignSpec"
    trials: np.ndarray | None = None
    offset: np.ndarray | None = None      # (n,) added to the linear predictor (offset(), offset=)
    row_index: np.ndarray | None = None   # index labels of the rows kept from the input
    n_dropped: int = 0
    # multivariate models: X columns of each response (None: every column for every response,
    # as mvbind's one right-hand side), which entries of y are observed (None: all), and why
    # rows were not used for a response ({response: message}).
    fixed_cols: list[list[int]] | None = None
    observed: np.ndarray | None = None
    not_used: dict[str, str] = field(default_factory=dict)
    #: distributional formulas (``sigma ~ x``): (parameter, response k) → (X, brms names) of
    #: the parameter's fixed part on the same rows (multivariate: zero outside response k's
    #: rows); its group terms are in ``terms`` with ``GroupBlock.dpar`` set
    dpar_X: dict = field(default_factory=dict)
    # brms' addition terms (design/additions.py): weights w (n,), Censoring (codes, y2),
    # truncation bounds (lb, ub) each (n,), known standard errors se (n,); None: not given
    weights: np.ndarray | None = None
    cens: "Censoring | None" = None
    trunc: tuple[np.ndarray, np.ndarray] | None = None
    se: np.ndarray | None = None
    autocor: object | None = None   # design/autocor.AutocorStructure of an ar()/cosy() term
    #: bf() + bf() with addition terms: one univariate Design per response on the rows where
    #: it is observed (``rows(k)``), carrying that response's weights/cens/trunc/se (brms takes
    #: them per response); None otherwise. ``offset`` of a multivariate design is (n, r).
    response_parts: list["Design"] | None = None
    #: bf() + bf(): every response's univariate Design (as ``response_parts``, also without
    #: addition terms), read where each response has its own family (its trials(n)); None
    #: for one-formula designs
    part_designs: list["Design"] | None = None

    @property
    def nobs(self) -> int:
        return self.X.shape[0]

    #: False for a design reduced from out-of-memory data (:mod:`.distributed`): X, y and the
    #: group codes then have no rows, and what needs them raises instead.
    rows_in_memory = True

    def column_means(self, k: int = 0, columns: list[int] | None = None) -> np.ndarray:
        """Mean of each (or the given) column of response k's X (``fixed(k)``) over the rows
        where response k is observed (brms centres X by these)."""
        X = self.fixed(k)[0]
        if columns is not None:
            X = X[:, columns]
        return X[self.rows(k)].mean(axis=0)

    def response_centre(self, k: int) -> tuple[float, float] | None:
        """(median, MAD) of response k for the default priors; None: computed from ``y``."""
        return None

    @property
    def cs_names(self) -> list[str]:
        """The columns of X from ``cs(x)`` terms (ordinal category-specific effects)."""
        return list(getattr(self.spec, "cs_names", None) or [])

    def fixed(self, k: int = 0) -> tuple[np.ndarray, list[str]]:
        """X and brms names of the fixed part of response k (all of X without bf() parts)."""
        if self.fixed_cols is None:
            return self.X, list(self.X_names)
        cols = self.fixed_cols[k]
        return self.X[:, cols], [self.X_names[j] for j in cols]

    def dpar_fixed(self, dpar: str, k: int = 0) -> tuple[np.ndarray, list[str]]:
        """X and brms names of the fixed part of parameter ``dpar`` of response k."""
        X, names = self.dpar_X[(dpar, k)]
        return X, list(names)

    def dpar_column_means(self, dpar: str, k: int, columns: list[int]) -> np.ndarray:
        """Column means of ``dpar_fixed(dpar, k)`` over response k's rows (brms centring)."""
        return self.dpar_fixed(dpar, k)[0][:, columns][self.rows(k)].mean(axis=0)

    @property
    def dpar_keys(self) -> list[tuple[str, int]]:
        """(parameter, response) of every distributional formula, in formula order."""
        return list(self.dpar_X)

    def rows(self, k: int = 0) -> "np.ndarray | slice":
        """The rows where response k is observed: indices, or ``slice(None)`` when every row is
        (a view, so that e.g. ``y[rows, k]`` reduces in the same order — and the same seed
        gives the same draws — as before per-response rows existed)."""
        if self.observed is None:
            return slice(None)
        return np.nonzero(self.observed[:, k])[0]

    @property
    def nobs_by_response(self) -> dict[str, int]:
        if self.observed is None:
            return {r: self.nobs for r in self.response_names}
        return {r: int(self.observed[:, k].sum()) for k, r in enumerate(self.response_names)}

    @property
    def has_intercept(self) -> bool:
        return "Intercept" in self.X_names

    @property
    def Z(self) -> sp.csr_matrix:
        """All group terms side by side (sparse)."""
        if not self.terms:
            return sp.csr_matrix((self.nobs, 0))
        return sp.hstack([t.Z() for t in self.terms], format="csr")

    def __repr__(self) -> str:
        parts = [f"Design: {self.nobs} rows, responses {self.response_names}",
                 f"  X: {self.X.shape[0]} x {self.X.shape[1]}  {self.X_names}"]
        for t in self.terms:
            extra = f", by {t.term.by} ({len(t.by_levels)} levels)" if t.by_levels else ""
            parts.append(f"  {t.dpar + ': ' if t.dpar else ''}"
                         f"({' + '.join(t.coef_names)} {'|' if t.correlated else '||'} "
                         f"{t.name}): {t.J} levels x {t.q} coefficients{extra}")
        nz = sum(t.J * t.q for t in self.terms)
        parts.append(f"  Z: {self.nobs} x {nz} (sparse)")
        for (dp, k), (Xd, names) in self.dpar_X.items():
            parts.append(f"  {dp}{'_' + self.response_names[k] if len(self.response_names) > 1 else ''}"
                         f": X {Xd.shape[0]} x {Xd.shape[1]}  {names}")
        if self.n_dropped:
            parts.append(f"  {self.n_dropped} rows dropped for missing values")
        for r, msg in self.not_used.items():
            parts.append(f"  {r}: {msg}")
        return "\n".join(parts)

