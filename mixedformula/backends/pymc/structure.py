"""How group terms become covariance blocks (one G per block).

A *part* is one group term for one response; its q coefficients vary over the levels of the
term's grouping factor. Parts form one *block* — one sd vector and, if correlated, one LKJ
correlation matrix over all their coefficients — when they share an ID (``|p|`` or
``gr(id=)``), across responses too; otherwise each part is its own block (brms). For
``gr(g, by = h)`` a block has one sd vector and correlation matrix per level of h.

With ``bf() + bf()`` formulas each term belongs to one response (``GroupBlock.response``);
with ``mvbind`` every term is a part of every response.

Coefficient labels are brms': ``Intercept`` in univariate models, ``y1_Intercept`` in
multivariate ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from ...design import Design
from ...errors import FormulaError


@dataclass
class Part:
    term: int            # index into design.terms
    response: int        # index of the response
    offset: int          # first column of this part inside the block
    q: int


@dataclass
class Block:
    key: str                       # internal, identifier-safe name
    group: str                     # brms name of the grouping factor
    correlated: bool
    parts: list[Part] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)   # coefficient labels, length Q
    levels: list[str] = field(default_factory=list)
    by: str | None = None
    by_levels: list[str] | None = None
    by_codes: np.ndarray | None = None

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


def _safe(name: str) -> str:
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def build_blocks(design: Design, n_responses: int = 1,
                 response_names: list[str] | None = None) -> list[Block]:
    """Group the (term, response) parts of ``design`` into covariance blocks."""
    multivariate = n_responses > 1
    blocks: list[Block] = []
    by_id: dict[str, Block] = {}
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
            block = Block(key=key, group=t.name, correlated=term.correlated,
                          levels=list(t.levels), by=term.by, by_levels=t.by_levels,
                          by_codes=t.by_codes)
            blocks.append(block)
            if term.id is not None:
                by_id[term.id] = block
        elif block.levels != list(t.levels):
            raise FormulaError(f"terms sharing ID {term.id!r} must use the same grouping "
                               f"factor with the same levels")
        prefix = f"{response_names[r]}_" if multivariate else ""
        block.parts.append(Part(term=k, response=r, offset=block.Q, q=t.q))
        block.labels.extend(prefix + c for c in t.coef_names)
    for b in blocks:
        if len(set(b.labels)) != len(b.labels):
            dup = sorted({x for x in b.labels if b.labels.count(x) > 1})
            raise FormulaError(f"coefficient(s) {', '.join(dup)} appear twice in the group "
                               f"terms for {b.group}")
    return blocks
