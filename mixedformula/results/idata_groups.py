"""ArviZ-native groups of ``fit.idata``: ``observed_data``, ``constant_data``, ``log_likelihood``.

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

  The values are those of :mod:`.loo` (its public pointwise functions). Fits with different
  kinds carry different variable names and dims, and ``az.compare`` refuses them (different
  numbers of observations): LOO over observations and over groups estimate different things.
"""

from __future__ import annotations

import numpy as np

from ..errors import MixedFormulaError

KINDS = ("observation", "group")


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


def add_log_likelihood(fit, kind: str | None = None, group: str | None = None) -> str:
    """Put exactly one pointwise log-likelihood variable into ``fit.idata.log_likelihood``
    (replacing what was there); returns its name. See the module docstring."""
    import xarray as xr
    from . import loo
    if kind is None:
        kind = "group" if fit.likelihood == "marginal" else "observation"
    if kind not in KINDS:
        raise MixedFormulaError(f"kind must be 'observation' or 'group', not {kind!r}")
    resp = "_".join(fit.design.response_names)
    if kind == "observation":
        if group is not None:
            raise MixedFormulaError("group= goes with kind='group' (leave-one-group-out)")
        ll = loo.pointwise_loglik(fit)
        name, dim, labels = resp, "obs", np.arange(ll.shape[1])
    elif fit.likelihood == "marginal":
        ll, group, labels = loo.marginal_group_loglik(fit, group)
        name, dim = f"{resp}__{group}__marginal", f"{group}__level"
    else:
        if group is None:
            factors = list(dict.fromkeys(t.name for t in fit.design.terms))
            if len(factors) != 1:
                raise MixedFormulaError(
                    "kind='group' needs group='<factor>' when the model has "
                    + ("no grouping factor" if not factors else
                       "several grouping factors (" + ", ".join(factors) + ")"))
            group = factors[0]
        ll, labels = loo.conditional_group_loglik(fit, group)
        name, dim = f"{resp}__{group}__conditional", f"{group}__level"
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(np.asarray(ll).reshape(C, D, -1), dims=("chain", "draw", dim),
                      coords={"chain": post.coords["chain"].values,
                              "draw": post.coords["draw"].values, dim: list(labels)})
    idata = fit.idata
    if "log_likelihood" in idata.groups():
        del idata.log_likelihood            # InferenceData.__delattr__ drops the group
    idata.add_groups({"log_likelihood": da.to_dataset(name=name)})
    return name
