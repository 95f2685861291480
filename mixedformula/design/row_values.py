r"""Per-row arguments of ``mf.lmer`` / ``mf.glmer`` given beside the formula (``weights=``,
``offset=``): a column name or one value per row of the data, mapped onto the rows the design
kept (rows dropped for missing values are dropped here too).

Prior weights a_i (lme4's ``weights``) come from ``weights=`` or from brms' ``y | weights(w)``
in the formula (``design.weights``, when the formula parser provides it); they must be finite
and ≥ 0 (lme4 refuses negative weights). Their meaning is the fitting function's: Var(ε_i) =
σ²/a_i in lmer, a_i multiplying row i's log-density in glmer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError

__all__ = ["row_values", "prior_weights"]


def row_values(values, what: str, data, design) -> np.ndarray | None:
    """``values`` (a column name of ``data`` or an array with one value per row of ``data``)
    as an array over the design's rows; None stays None. Missing or infinite values are refused
    naming the argument (and column) and the number of bad rows."""
    if values is None:
        return None
    df = data if isinstance(data, pd.DataFrame) else None
    label = what
    if isinstance(values, str):
        if df is None or values not in df.columns:
            raise DataError(f"{what}={values!r} is not a column of the data")
        arr = df[values].to_numpy(dtype=float)
        label = f"{what} (column {values!r})"
    else:
        arr = np.asarray(values, dtype=float).ravel()
    n_data = len(df) if df is not None else len(arr)
    if arr.shape != (n_data,):
        raise DataError(f"{what} has {arr.size} values for {n_data} rows of data")
    if df is not None and design.row_index is not None and len(design.row_index) != n_data:
        pos = pd.Index(df.index).get_indexer(design.row_index)
        if np.any(pos < 0) or not df.index.is_unique:
            raise DataError(f"{what}: rows were dropped and the data's index is not unique, so "
                            "the values cannot be matched to the rows used")
        arr = arr[pos]
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"{label} has {int(bad.sum())} missing or infinite value(s) "
                        f"(first at row {int(np.nonzero(bad)[0][0])} of the rows used)")
    return arr


def prior_weights(weights, data, design) -> np.ndarray | None:
    """Prior weights over the design's rows from ``weights=`` or the formula's
    ``weights()`` term (``design.weights``); None when neither is given. Refuses both at once,
    and negative, missing or infinite weights (naming the column and the count of bad rows)."""
    from_formula = getattr(design, "weights", None)
    if weights is not None and from_formula is not None:
        raise DataError("prior weights are given twice: by weights= and by weights() in the "
                        "formula; use one")
    if weights is not None:
        w = row_values(weights, "weights", data, design)
        label = f"weights (column {weights!r})" if isinstance(weights, str) else "weights"
    elif from_formula is not None:
        w = np.asarray(from_formula, dtype=float).ravel()
        label = "weights() of the formula"
        bad = ~np.isfinite(w)
        if bad.any():
            raise DataError(f"{label} has {int(bad.sum())} missing or infinite value(s)")
    else:
        return None
    neg = w < 0
    if neg.any():
        raise DataError(f"{label} has {int(neg.sum())} negative value(s) (first at row "
                        f"{int(np.nonzero(neg)[0][0])} of the rows used); prior weights must "
                        "be >= 0")
    return w
