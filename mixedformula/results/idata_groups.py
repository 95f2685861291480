"""ArviZ-native groups of ``fit.idata``: ``observed_data``, ``constant_data``, ``log_likelihood``;
:func:`set_group` replaces or adds one group (public arviz API only).

So that ArviZ's own functions work on a fit (``az.loo(fit.idata)``, ``az.compare``,
``az.plot_ppc`` after ``fit.posterior_predictive()``, ``az.plot_trace``):

* ``observed_data``: one variable per response (brms name), dims ``obs`` (every fit);
* ``constant_data``: ``X`` (dims ``obs``, ``X__coef``: the fixed-effects design, brms column
  names) and, per grouping factor g, a variable ``g`` with each row's level label (dims
  ``obs``) (every fit);
* ``log_likelihood`` (on request: ``fit(..., log_likelihood=True)`` or
  ``fit.add_log_likelihood(kind=...)``), exactly one variable, so that ``az.loo`` needs no
  ``var_name``:

  - ``kind="observation"`` (default for the conditional engine): log p(y_i | β, u, σ) per
    observation, variable ``<response>``, dims ``obs``;
  - ``kind="group"`` (default for the marginal engine): leave-one-group-out over a grouping
    factor g: marginal engine log p(y_j | β, G, σ) (u_j integrated out), variable
    ``<response>__<g>__marginal``; conditional engine Σ_{i ∈ j} log p(y_i | β, u_j, σ),
    variable ``<response>__<g>__conditional``; dims ``<g>__level``.

  The values are those of :mod:`.loo` (its public pointwise functions;
  :func:`mixedformula.results.loo.add_log_likelihood` writes the group). Fits with different
  kinds carry different variable names and dims, and ``az.compare`` refuses them (different
  numbers of observations): LOO over observations and over groups estimate different things.
"""

from __future__ import annotations

import numpy as np


KINDS = ("observation", "group")


def set_group(idata, name: str, ds) -> None:
    """``idata.<name> = ds``: an existing group of that name is deleted first (arviz'
    ``InferenceData.__delattr__`` also drops it from the group list)."""
    if name in idata.groups():
        delattr(idata, name)
    idata.add_groups({name: ds})


def add_data_groups(idata, design) -> None:
    """Add ``observed_data`` and ``constant_data`` (see the module docstring); nothing for a
    design whose rows stayed in a Dask DataFrame."""
    import xarray as xr
    if not getattr(design, "rows_in_memory", True) or design.y is None:
        return
    y = np.asarray(design.y, dtype=float)
    n = y.shape[0]
    obs = {"obs": np.arange(n)}
    observed = xr.Dataset({r: xr.DataArray(y[:, k], dims=("obs",), coords=obs)
                           for k, r in enumerate(design.response_names)})
    const = {"X": xr.DataArray(np.asarray(design.X, dtype=float), dims=("obs", "X__coef"),
                               coords={**obs, "X__coef": list(design.X_names)})}
    for t in design.terms:
        if t.name not in const:
            codes = np.asarray(t.codes)
            labels = np.asarray([str(v) for v in t.levels] + [""], dtype=object)
            const[t.name] = xr.DataArray(labels[codes].astype(str), dims=("obs",),
                                         coords=obs)             # code -1 (missing): ""
    groups = {}
    if "observed_data" not in idata.groups():
        groups["observed_data"] = observed
    if "constant_data" not in idata.groups():
        groups["constant_data"] = xr.Dataset(const)
    if groups:
        idata.add_groups(groups)
