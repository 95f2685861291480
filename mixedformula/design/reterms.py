r"""Group terms and their covariance blocks: the one representation every engine reads.

One object per group term — :class:`~mixedformula.design.types.GroupBlock` (MixedModels.jl's
``ReMat``): its levels, its design columns (the per-row multipliers ``X``, brms names
``coef_names``) and its integer codes. Two groupings over those terms, both given by term
indices into ``design.terms``:

**Covariance blocks** (:class:`CovBlock`, :func:`covariance_blocks`). A *part* is one term for
one response; its q coefficients vary over the levels of the term's grouping factor. Parts form
one block — one sd vector and, if correlated, one correlation matrix over all their Q = Σ q
coefficients, G = T Tᵀ with T lower triangular — when they share an ID (``|p|`` or
``gr(id=)``), across responses too; otherwise each part is its own block (brms). For
``gr(g, by = h)`` a block has one T per level of h (``H`` templates, ``by_codes`` maps each
level of g to its template). With ``bf() + bf()`` formulas each term belongs to one response
(``GroupBlock.response``); with ``mvbind`` every term is a part of every response. A term of a
distributional formula (``sigma ~ x + (1 | g)``, ``GroupBlock.dpar``) is a part like a
response's, so a shared ID gives one correlation matrix over the mean's and the parameter's
coefficients. Coefficient labels are brms': ``Intercept`` in univariate models,
``y1_Intercept`` in multivariate ones, ``sigma_Intercept`` / ``sigma_y1_Intercept`` for a
distributional parameter.

The block's parameters are the free entries of its templates T (:attr:`CovBlock.layout`,
lme4's θ layout for the block: the lower triangle column by column for a correlated block, the
diagonal otherwise), so the PyMC backend (one ``LKJCholeskyCov`` or sd vector per template),
REML (Λ(θ), :mod:`mixedformula.linalg.lambda_factor`) and LOO read the same object.

**Segments** (:class:`Segment`, :func:`segments`). Terms whose grouping factor has the same
codes (``(1 | g) + (0 + x | g)``, ``(x || g)``, terms sharing an ID, ``gr(g, by = h)`` next to
``(1 | g)``) share one level structure; merged, their columns form one Q-column block per level
(level-major, term by term inside each level). The marginal statistics
(:mod:`mixedformula.design.crossprod`) and the marginal group likelihood of LOO are computed per
segment (MixedModels.jl amalgamates terms of one grouping factor the same way).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import FormulaError


def term_columns(design, terms, J: int) -> tuple[np.ndarray, np.ndarray]:
    """(codes, W): the level of each row for terms sharing one grouping factor (the first
    term's codes; −1 where missing or unseen, i.e. outside [0, J)) and their per-row
    multipliers side by side, W (n, Σ q) float."""
    t0 = design.terms[terms[0]]
    codes = np.asarray(t0.codes).copy()
    codes[(codes < 0) | (codes >= J)] = -1
    W = np.concatenate([design.terms[k].X for k in terms], axis=1) if len(terms) > 1 \
        else design.terms[terms[0]].X
    return codes, np.asarray(W, dtype=float)


# ----------------------------------------------------------------------------- λ layout
@dataclass(frozen=True)
class TermLayout:
    """Shape of one block of Λ (one covariance block, univariate): q coefficients over J
    levels, ``n_blocks`` templates T (by-levels), ``block_of_level`` (J,) each level's template
    when ``n_blocks > 1``."""

    q: int
    J: int
    correlated: bool = True
    n_blocks: int = 1
    block_of_level: np.ndarray | None = None

    @property
    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the free entries of T, in θ order (column-major lower triangle)."""
        q = self.q
        if not self.correlated or q == 1:
            idx = np.arange(q)
            return idx, idx.copy()
        cols, rows = [], []
        for c in range(q):
            for r in range(c, q):
                rows.append(r)
                cols.append(c)
        return np.array(rows), np.array(cols)

    @property
    def n_per_block(self) -> int:
        return len(self.entries[0])

    @property
    def n_theta(self) -> int:
        return self.n_per_block * self.n_blocks


# ----------------------------------------------------------------------------- blocks
@dataclass
class Part:
    term: int            # index into design.terms
    response: int        # index of the response
    offset: int          # first column of this part inside the block
    q: int
    dpar: str | None = None   # distributional formula's parameter (None: the mean)


@dataclass
class CovBlock:
    """One covariance block: the parts (term, response) whose coefficients share G."""

    key: str                       # internal, identifier-safe name
    group: str                     # brms name of the grouping factor
    correlated: bool
    parts: list[Part] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)   # coefficient labels, length Q
    levels: list[str] = field(default_factory=list)
    by: str | None = None
    by_levels: list[str] | None = None
    by_codes: np.ndarray | None = None
    #: gr(g, cov = A): lower Cholesky factor L_A (J, J) of the known covariance across levels,
    #: Cov(vec u) = A ⊗ G (:mod:`.known_cov`); None: levels independent (block-diagonal)
    cov_factor: np.ndarray | None = None
    #: glmmTMB's structure of G (``ar1``, ``cs``, ``toep``; :mod:`.covstruct`); None: lme4's
    #: unstructured (or, uncorrelated, diagonal) G
    structure: str | None = None

    @property
    def Q(self) -> int:
        return len(self.labels)

    @property
    def J(self) -> int:
        return len(self.levels)

    @property
    def H(self) -> int:
        """Number of covariance matrices (levels of the by-factor; 1 without by)."""
        return len(self.by_levels) if self.by_levels else 1

    @property
    def terms(self) -> list[int]:
        """The design terms of the block's parts, in column order."""
        return [p.term for p in self.parts]

    @property
    def layout(self) -> TermLayout:
        """The block's templates T as a block of Λ (the free entries: its parameters)."""
        return TermLayout(q=self.Q, J=self.J, correlated=self.correlated, n_blocks=self.H,
                          block_of_level=None if self.by_levels is None
                          else np.asarray(self.by_codes))

    def columns(self, design) -> tuple[np.ndarray, np.ndarray]:
        """(codes, W (n, Q)): each row's level (−1: missing or unseen) and the block's per-row
        multipliers, its parts side by side (univariate blocks: the parts share the codes)."""
        return term_columns(design, self.terms, self.J)


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def covariance_blocks(design, n_responses: int = 1,
                      response_names: list[str] | None = None) -> list[CovBlock]:
    """Group the (term, response) parts of ``design`` into covariance blocks."""
    multivariate = n_responses > 1
    blocks: list[CovBlock] = []
    by_id: dict[str, CovBlock] = {}
    used_keys: set[str] = set()
    pairs = [(r, k) for r in range(n_responses) for k, t in enumerate(design.terms)
             if t.response is None or t.response == r]
    for r, k in pairs:
        t = design.terms[k]
        term = t.term
        block = by_id.get(term.id) if term.id is not None else None
        if block is None:
            key = _safe(t.name)
            base, i = key, 1
            while key in used_keys:
                i += 1
                key = f"{base}_{i}"
            used_keys.add(key)
            block = CovBlock(key=key, group=t.name, correlated=term.correlated,
                             levels=list(t.levels), by=term.by, by_levels=t.by_levels,
                             by_codes=t.by_codes, cov_factor=t.cov_factor,
                             structure=term.structure)
            blocks.append(block)
            if term.id is not None:
                by_id[term.id] = block
        elif block.levels != list(t.levels):
            raise FormulaError(f"terms sharing ID {term.id!r} must use the same grouping "
                               f"factor with the same levels")
        resp = response_names[r] if multivariate else ""
        head = "_".join(x for x in (term.dpar, resp) if x)
        prefix = f"{head}_" if head else ""
        block.parts.append(Part(term=k, response=r, offset=block.Q, q=t.q, dpar=term.dpar))
        block.labels.extend(prefix + c for c in t.coef_names)
    for b in blocks:
        if len(set(b.labels)) != len(b.labels):
            dup = sorted({x for x in b.labels if b.labels.count(x) > 1})
            raise FormulaError(f"coefficient(s) {', '.join(dup)} appear twice in the group "
                               f"terms for {b.group}")
    return blocks


# ----------------------------------------------------------------------------- segments
@dataclass
class Segment:
    """Design terms sharing one grouping factor (same codes), merged into one Q-column block.

    ``terms[i]`` (index into ``design.terms``) occupies columns
    ``offsets[i] : offsets[i] + qs[i]`` of the Q columns of every level.
    """

    terms: tuple[int, ...]
    offsets: tuple[int, ...]
    qs: tuple[int, ...]
    J: int
    group: str
    start: int = 0                 # first column of this segment in the stats' M columns

    @property
    def Q(self) -> int:
        return int(sum(self.qs))

    @property
    def size(self) -> int:
        return self.J * self.Q

    def offset_of(self, term: int) -> int:
        """First column of design term ``term`` inside the segment's Q columns."""
        return self.offsets[self.terms.index(term)]

    def columns(self, design) -> tuple[np.ndarray, np.ndarray]:
        """(codes with missing/unseen rows set to −1, W (n, Q) = the segment's per-row
        multipliers)."""
        return term_columns(design, self.terms, self.J)


def segments(design) -> list[Segment]:
    """Merge design terms with the same grouping factor and identical codes (design order)."""
    groups: list[list[int]] = []
    for k, t in enumerate(design.terms):
        for g in groups:
            t0 = design.terms[g[0]]
            if (t0.term.factors == t.term.factors and t0.J == t.J
                    and np.array_equal(t0.codes, t.codes)):
                g.append(k)
                break
        else:
            groups.append([k])
    segs = []
    for g in groups:
        qs = tuple(design.terms[k].q for k in g)
        offs = tuple(int(x) for x in np.concatenate([[0], np.cumsum(qs)[:-1]]))
        segs.append(Segment(terms=tuple(g), offsets=offs, qs=qs, J=design.terms[g[0]].J,
                            group=design.terms[g[0]].name))
    return segs


__all__ = ["CovBlock", "Part", "Segment", "TermLayout", "covariance_blocks", "segments",
           "term_columns"]
