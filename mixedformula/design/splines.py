"""``ns(x, df)``: R's natural cubic spline basis (``splines::ns``), as a stateful transform.

formulaic 1.2.2's ``bs`` already follows R's ``splines::bs`` (interior knots at quantiles of x,
boundary knots at range(x), the first B-spline dropped; checked to 1e-8 in
tests/test_r_idioms.py); it has no ``ns`` (its ``cr`` is mgcv's cubic regression spline, a
different basis). R's ``ns(x, df, intercept = FALSE)``:

* interior knots: ``k = df - 1 - intercept`` of them at the quantiles
  ``quantile(x, seq(0, 1, length = k + 2)[-c(1, k + 2)])`` (type 7, numpy's default), boundary
  knots ``(a, b) = range(x)`` (missing values ignored);
* ``B(x)``: the cubic B-spline basis on the knots ``(a, a, a, a, interior, b, b, b, b)``
  (``splineDesign(..., ord = 4)``), first column dropped without an intercept;
* natural constraint: the second derivatives at a and b are zero. With ``C`` the 2 × m matrix
  of second derivatives of the basis functions at a and b, and ``C' = Q R`` its Householder QR
  (Q square, the reflectors of R's ``qr``, which numpy's LAPACK QR reproduces), the basis is
  ``N(x) = B(x) Q[:, 2:]``: the columns of Q after the first two span the null space of C;
* outside [a, b] each B-spline function is continued linearly (value and slope at the
  boundary), as R does.

The knots are kept in formulaic's transform state, so new data get the same basis (R's
``predict(ns(...), newx)`` / ``makepredictcall``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from formulaic.materializers.types import FactorValues
from formulaic.utils.stateful_transforms import stateful_transform
from scipy.interpolate import BSpline

ORDER = 4   # cubic


def _spline_design(knots: np.ndarray, x: np.ndarray, deriv: int = 0) -> np.ndarray:
    """R's ``splineDesign(knots, x, ord = 4, derivs)``: every B-spline (or its derivative)."""
    m = len(knots) - ORDER
    spline = BSpline(knots, np.eye(m), ORDER - 1, extrapolate=True)
    return spline(x, nu=deriv) if deriv else spline(x)


def ns_basis(x: np.ndarray, interior: np.ndarray, boundary: tuple[float, float],
             intercept: bool = False) -> np.ndarray:
    """The natural-spline basis at x for given knots (module doc); NaN rows for missing x."""
    x = np.asarray(x, dtype=float)
    a, b = boundary
    knots = np.sort(np.concatenate([[a] * ORDER, interior, [b] * ORDER]))
    m = len(knots) - ORDER
    basis = np.full((len(x), m), np.nan)
    ok = ~np.isnan(x)
    inside = ok & (x >= a) & (x <= b)
    if inside.any():
        basis[inside] = _spline_design(knots, x[inside])
    for side, pivot in ((ok & (x < a), a), (ok & (x > b), b)):
        if side.any():
            value = _spline_design(knots, np.array([pivot]))[0]
            slope = _spline_design(knots, np.array([pivot]), 1)[0]
            basis[side] = value + np.outer(x[side] - pivot, slope)
    const = _spline_design(knots, np.array([a, b]), 2)
    if not intercept:
        basis, const = basis[:, 1:], const[:, 1:]
    q, _ = np.linalg.qr(const.T, mode="complete")
    return basis @ q[:, 2:]


@stateful_transform
def ns(data: Any, df: int | None = None, intercept: bool = False,
       _state: dict = {}) -> FactorValues:  # noqa: B006
    """R's ``splines::ns(x, df)`` (module doc); columns named 1..df like R's (one column:
    unnumbered)."""
    x = np.asarray(data, dtype=float)
    if "interior" not in _state:
        obs = x[~np.isnan(x)]
        if obs.size == 0:
            raise ValueError("ns() of a column with no observed values")
        k = 0 if df is None else int(df) - 1 - int(bool(intercept))
        if k < 0:
            raise ValueError(f"ns(): df = {df} is too small (at least {1 + int(intercept)})")
        probs = np.linspace(0, 1, k + 2)[1:-1]
        _state["interior"] = [float(v) for v in np.quantile(obs, probs)]
        _state["boundary"] = [float(obs.min()), float(obs.max())]
        _state["intercept"] = bool(intercept)
    basis = ns_basis(x, np.array(_state["interior"]), tuple(_state["boundary"]),
                     _state["intercept"])
    if basis.shape[1] == 1:
        return basis[:, 0]          # one column: R names it ns(x), without a number
    return FactorValues({j + 1: basis[:, j] for j in range(basis.shape[1])},
                        kind="numerical", spans_intercept=_state["intercept"], drop_field=None,
                        format="{name}[{field}]", encoded=False)
