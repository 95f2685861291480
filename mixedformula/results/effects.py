"""brms' ``fixef()``, ``ranef()`` and ``coef()`` from the draws.

* ``fixef``: per coefficient k the draws of ``b_k``, summarised (Estimate, Est.Error, Q2.5, Q97.5).
* ``ranef``: per grouping factor g, level j and coefficient k the draws of ``r_g[j, k]``.
* ``coef``: per draw s, ``b_k⁽ˢ⁾ + r_g[j, k]⁽ˢ⁾`` — brms' ``coef.brmsfit``: the union of the
  group's coefficients (first, in their order) and the fixed coefficients (after), a missing
  term counting as 0; the sums are summarised afterwards (never mean + mean for the quantiles).

Summaries per group are DataFrames indexed by level (index name = the grouping factor) with
two-level columns ``(coefficient, statistic)``: ``ranef()["Subject"]["Days"]`` is brms'
``ranef(fit)$Subject[, , "Days"]``. ``summary=False`` returns the draws instead:
``xarray.DataArray`` with dims (sample, <group>, coef) for ranef/coef and a DataFrame
(draws × coefficients) for fixef.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from .naming import fixed_label
from .params import ParamIndex
from .tables import draws_summary, flat_draws, q_names

STATS = ["Estimate", "Est.Error"]


def _stat_names(probs) -> list[str]:
    return STATS + q_names(probs)


def fixef_draws(posterior, index: ParamIndex) -> pd.DataFrame:
    """Draws (chain·draw) × coefficient names."""
    data = {fixed_label(v): flat_draws(posterior[v].values) for v in index.fixed}
    return pd.DataFrame(data, columns=[fixed_label(v) for v in index.fixed])


def fixef(posterior, index: ParamIndex, probs=(0.025, 0.975), summary: bool = True):
    d = fixef_draws(posterior, index)
    if not summary:
        return d
    stats = draws_summary(d.to_numpy(), probs) if d.shape[1] else np.zeros((2 + len(probs), 0))
    return pd.DataFrame(stats.T, index=pd.Index(list(d.columns), dtype=object),
                        columns=_stat_names(probs))


def ranef_draws(posterior, index: ParamIndex) -> dict[str, xr.DataArray]:
    out = {}
    for g, var in index.ranef.items():
        da = posterior[var]
        gdim, cdim = da.dims[2], da.dims[3]
        levels = [str(x) for x in da.coords[gdim].values]
        coefs = [str(x) for x in da.coords[cdim].values]
        out[g] = xr.DataArray(flat_draws(da.values), dims=("sample", g, "coef"),
                              coords={g: levels, "coef": coefs})
    return out


def _summarise_group(g: str, draws: xr.DataArray, probs) -> pd.DataFrame:
    stats = draws_summary(draws.values, probs)           # (n_stats, J, Q)
    names = _stat_names(probs)
    coefs = [str(c) for c in draws.coords["coef"].values]
    levels = [str(x) for x in draws.coords[g].values]
    data = stats.transpose(1, 2, 0).reshape(len(levels), len(coefs) * len(names))
    cols = pd.MultiIndex.from_product([coefs, names], names=["coef", "stat"])
    return pd.DataFrame(data, index=pd.Index(levels, name=g, dtype=object), columns=cols)


def ranef(posterior, index: ParamIndex, probs=(0.025, 0.975), summary: bool = True,
          groups=None):
    draws = ranef_draws(posterior, index)
    if groups is not None:
        draws = {g: draws[g] for g in _as_list(groups, draws)}
    if not summary:
        return draws
    return {g: _summarise_group(g, d, probs) for g, d in draws.items()}


def coef(posterior, index: ParamIndex, probs=(0.025, 0.975), summary: bool = True,
         groups=None):
    fx = fixef_draws(posterior, index)
    out = {}
    for g, r in ranef(posterior, index, summary=False, groups=groups).items():
        rcoefs = [str(c) for c in r.coords["coef"].values]
        names = rcoefs + [c for c in fx.columns if c not in rcoefs]
        S, J = r.shape[0], r.shape[1]
        vals = np.zeros((S, J, len(names)))
        vals[:, :, : len(rcoefs)] = r.values
        for k, name in enumerate(names):
            if name in fx.columns:
                vals[:, :, k] += fx[name].to_numpy()[:, None]
        out[g] = xr.DataArray(vals, dims=("sample", g, "coef"),
                              coords={g: r.coords[g].values, "coef": names})
    if not summary:
        return out
    return {g: _summarise_group(g, d, probs) for g, d in out.items()}


def _as_list(groups, available) -> list[str]:
    groups = [groups] if isinstance(groups, str) else list(groups)
    for g in groups:
        if g not in available:
            raise KeyError(f"no group effects for {g!r}; groups: {', '.join(available)}")
    return groups
