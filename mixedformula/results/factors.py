r"""Which predictors the answers (comparisons, emmeans) treat as factors, with their levels.

A predictor is a factor when the design codes it as one (text, categorical, logical columns:
``design.spec.factor_levels``) or when the formula wraps a numeric column in ``factor()`` /
``as.factor()`` (``incidence | trials(size) ~ factor(period)`` with ``period`` read as integers
from a CSV, as cbpp's is): its levels are then the column's distinct values in increasing order,
R's ``factor()`` levels. The formula is read from its validated formulaic text of the fixed part,
where a column appears as ``factor(`period`)``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd


def _wrapped(fixed_text: str, variable: str) -> bool:
    name = re.escape(variable)
    inside = re.compile(r"(?:as\.)?factor\(\s*`?" + name + r"`?\s*\)")
    if not inside.search(fixed_text):
        return False
    rest = inside.sub("", fixed_text)        # used elsewhere as a number: not only a factor
    return re.search(r"(?<![\w.])`?" + name + r"`?(?![\w.])", rest) is None


def formula_factor_levels(design, df: pd.DataFrame, variable: str) -> list | None:
    """The levels of ``variable`` if the formula makes it a factor (module docstring)."""
    lv = getattr(design.spec, "factor_levels", {}) or {}
    if variable in lv:
        return list(lv[variable])
    s = df[variable] if variable in df.columns else None
    if s is None or not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        return None
    if not _wrapped(str(design.spec.formula.fixed), variable):
        return None
    vals = np.unique(s.dropna().to_numpy())
    return [v.item() if hasattr(v, "item") else v for v in vals]
