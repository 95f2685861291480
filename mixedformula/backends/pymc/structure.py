"""How group terms become covariance blocks: defined once in :mod:`mixedformula.design.reterms`
(:class:`~mixedformula.design.reterms.CovBlock`, one G per block; shared IDs, by-levels,
multivariate labels). The names here are that module's, kept for the callers that import them
from the backend."""

from __future__ import annotations

from ...design.reterms import CovBlock as Block
from ...design.reterms import Part
from ...design.reterms import covariance_blocks as build_blocks

__all__ = ["Block", "Part", "build_blocks"]
