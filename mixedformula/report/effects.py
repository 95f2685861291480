"""Conditional effect of the main predictor (brms' ``conditional_effects``, population level).

The main predictor is the first variable of the fixed part that is a column of X on its own
(``Days`` in ``Reaction ~ Days + (Days | Subject)``); failing that, the first non-intercept
column of X (e.g. a factor dummy ``groupB``). On a grid x_1…x_G over its observed range (0 and 1
for a 0/1 column) the other columns of X are held at their means (factor dummies: averaged over
levels), interaction columns ``x:z`` at x · mean(z), and per draw s

    μ⁽ˢ⁾(x_g) = g⁻¹(x̃_gᵀ β⁽ˢ⁾)      (group effects set to 0: re_formula = NA in brms)

is summarised by its mean and 2.5% / 97.5% quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..families import inverse_link_numpy
from ..results.posterior import PosteriorDraws
from .draws import draw_indices


@dataclass
class ConditionalEffect:
    xname: str
    x: np.ndarray            # (G,)
    mean: np.ndarray         # (G, r)
    lower: np.ndarray
    upper: np.ndarray
    categorical: bool
    x_obs: np.ndarray        # (n,)
    y_obs: np.ndarray | None  # (n, r)
    responses: list[str]


def main_predictor(design) -> int | None:
    """Column index of X to vary, or None when X has nothing but an intercept."""
    names = list(design.X_names)
    for v in design.formula.fixed_variables:
        if v in names and v != "Intercept":
            return names.index(v)
    for j, n in enumerate(names):
        if n != "Intercept":
            return j
    return None


def conditional_effect(fit, ngrid: int = 60, max_draws: int = 1000) -> ConditionalEffect | None:
    design = fit.design
    if design is None:
        return None
    if fit.family.mean_categories() is not None:
        return None   # ordinal, categorical: K category probabilities, not one expected value
    if design.fixed_cols is not None:
        return None   # bf() formulas: each response has its own predictors; no shared x-axis
    j = main_predictor(design)
    if j is None:
        return None
    X = np.asarray(design.X, dtype=float)
    names = list(design.X_names)
    main = names[j]
    col = X[:, j]
    categorical = bool(np.all(np.isin(col, (0.0, 1.0))))
    grid = np.array([0.0, 1.0]) if categorical else np.linspace(col.min(), col.max(), ngrid)
    means = X.mean(axis=0)
    Xg = np.tile(means, (len(grid), 1))
    Xg[:, j] = grid
    pos = {n: k for k, n in enumerate(names)}
    for k, n in enumerate(names):
        parts = n.split(":")
        if k != j and main in parts:
            others = [p for p in parts if p != main]
            if others and all(p in pos for p in others):
                Xg[:, k] = grid * np.prod([means[pos[p]] for p in others])
    idx = draw_indices(fit.posterior, max_draws)
    eta = PosteriorDraws.of_fit(fit, idx).xb(Xg)               # (S, G, r)
    mu = inverse_link_numpy(fit.family.link)(eta)
    q = np.quantile(mu, [0.025, 0.975], axis=0)
    y = None if design.y is None else np.asarray(design.y, dtype=float)
    return ConditionalEffect(main, grid, mu.mean(axis=0), q[0], q[1], categorical, col, y,
                             list(design.response_names))
