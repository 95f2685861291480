"""``scale()``, ``center()`` and ``standardize()`` computed like R's ``scale`` on a model frame.

R builds the model frame (evaluating ``scale(x)`` on every row of the data) *before* rows with
missing values are dropped, and ``scale`` ignores missing values::

    center = mean(x[!is.na(x)]),   scale = sqrt(sum((x - center)^2, na.rm) / (n_obs - ddof))

with n_obs the number of non-missing x (R's ``scale.default``: ddof = 1). formulaic's versions
take the plain mean (NaN as soon as one value is missing), so these replace them in the
evaluation context. The state (center, scale) is kept by formulaic's ModelSpec, so new data are
transformed with the values of the data the model was built on, as R's ``predict`` does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from formulaic.utils.stateful_transforms import stateful_transform


@stateful_transform
def scale(data: Any, center: bool = True, scale: bool = True, ddof: float = 1,  # noqa: B006
          _state: dict = {}) -> np.ndarray:
    """R's ``scale(x, center, scale)`` ignoring missing values (see module doc)."""
    data = np.asarray(data, dtype=float)
    if "ddof" not in _state:
        _state["ddof"] = ddof
    ddof = _state["ddof"]
    if "center" not in _state:
        if isinstance(center, bool):
            _state["center"] = np.nanmean(data, axis=0) if center else None
        else:
            _state["center"] = np.asarray(center, dtype=float)
    if _state["center"] is not None:
        data = data - _state["center"]
    if "scale" not in _state:
        if isinstance(scale, bool):
            n_obs = np.sum(~np.isnan(data), axis=0)
            _state["scale"] = (np.sqrt(np.nansum(data ** 2, axis=0) / (n_obs - ddof))
                               if scale else None)
        else:
            _state["scale"] = np.asarray(scale, dtype=float)
    if _state["scale"] is not None:
        data = data / _state["scale"]
    return data


@stateful_transform
def center(data: Any, _state: dict = {}) -> np.ndarray:  # noqa: B006
    """``scale(x, scale = FALSE)``."""
    return scale(data, scale=False, _state=_state)


@stateful_transform
def standardize(data: Any, center: bool = True, rescale: bool = True,  # noqa: B006
                ddof: float = 0, _state: dict = {}) -> np.ndarray:
    """patsy's ``standardize`` (ddof = 0 by default), ignoring missing values."""
    return scale(data, center=center, scale=rescale, ddof=ddof, _state=_state)


#: what the evaluation context passes to formulaic in place of its own transforms
NA_AWARE = {"scale": scale, "center": center, "standardize": standardize}


def as_numeric(data: Any) -> np.ndarray:
    """R's ``as.numeric(x)`` of a numeric or logical column (missing stays missing). Of a
    factor R gives the level codes, seldom what is meant: refused."""
    if isinstance(getattr(data, "dtype", None), pd.CategoricalDtype):
        raise TypeError("as.numeric() of a categorical column would give its level codes "
                        "(R's meaning); convert the column to numbers in the data instead")
    return np.asarray(data, dtype=float)


def as_integer(data: Any) -> np.ndarray:
    """R's ``as.integer(x)``: truncation toward zero (missing stays missing)."""
    return np.trunc(as_numeric(data))


#: R functions that have no formulaic counterpart (written under these Python names)
R_CONVERSIONS = {"as_numeric": as_numeric, "as_integer": as_integer}
