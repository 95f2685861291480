r"""Prior and prior predictive draws as results: ``sample_prior="only"`` / ``"yes"``,
``Model.prior_predictive``.

The draws themselves are forward draws of the conditional form of the model
(:func:`mixedformula.backends.pymc.prior.forward_draws`: exact, independent, proper priors
only); here they are renamed to brms names, split into chains and wrapped as a :class:`Fit`
(or an ``idata.prior`` group), so that ``summary``, ``predict`` and ``pp_check`` show the prior
and the prior predictive distribution.
"""

from __future__ import annotations

import json

import arviz as az
import numpy as np
import xarray as xr

from ..backends.pymc.names import brms_posterior
from ..backends.pymc.prior import check_proper, forward_draws
from .fit import Fit
from .idata_groups import set_group


def check_proper_priors(model) -> None:
    """Raise before sampling when ``sample_prior`` cannot work (flat priors)."""
    check_proper(model.built.model)


def prior_predictive(model, draws: int = 500, seed=None):
    """Forward draws from the priors: InferenceData with ``prior`` (brms names, plus the
    internal variables) and ``prior_predictive`` (the response(s), dims chain, draw, obs)."""
    built, idata = forward_draws(model, draws, seed)
    prior = brms_posterior(idata.prior, built)
    prior = xr.merge([prior, idata.prior[[v for v in idata.prior.data_vars
                                          if v not in prior]]], compat="override")
    if "prior_predictive" in idata.groups():
        pp = idata.prior_predictive
    else:
        fit = fit_from_forward(model, built, idata, int(draws), 1, seed)
        y = fit.predict(kind="response", seed=seed)
        y = y if y.ndim == 3 else y[..., None]
        pp = xr.Dataset({"y": xr.DataArray(y[None], dims=("chain", "draw", "obs", "response"),
                                           coords={"response": list(model.design.response_names)})})
    groups = {"prior": prior, "prior_predictive": pp}
    if "observed_data" in idata.groups():
        groups["observed_data"] = idata.observed_data
    return az.InferenceData(**groups)


def prior_fit(model, draws: int = 1000, chains: int = 4, seed=None):
    """``sample_prior="only"``: a :class:`Fit` whose "posterior" holds ``chains × draws``
    independent forward draws from the prior (brms names), so that ``summary``, ``predict``,
    ``pp_check`` etc. show the prior and the prior predictive distribution."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    built, idata = forward_draws(model, draws * chains, seed)
    return fit_from_forward(model, built, idata, draws, chains, seed)


def fit_from_forward(model, built, idata, draws: int, chains: int, seed=None):
    """A :class:`Fit` from forward draws (``idata.prior`` chain 0 split in ``chains``)."""
    raw = idata.prior
    raw = raw.isel(chain=0, drop=True)
    raw = raw.assign_coords(draw=np.arange(raw.sizes["draw"]))
    split = {}
    for v in raw.data_vars:
        a = raw[v].values
        dims = raw[v].dims[1:]
        split[v] = xr.DataArray(a.reshape((chains, draws) + a.shape[1:]),
                                dims=("chain", "draw") + dims)
    raw = xr.Dataset(split, coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    posterior = brms_posterior(raw, built)
    ss = xr.Dataset({"diverging": xr.DataArray(np.zeros((chains, draws), dtype=bool),
                                               dims=("chain", "draw"))},
                    coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    out = az.InferenceData(posterior=posterior, sample_stats=ss)
    info = {"sampler": "prior (independent forward draws)", "draws": draws, "tune": 0,
            "chains": chains, "seed": seed, "seconds": 0.0, "sample_prior": "only",
            "engine_note": "sample_prior='only': draws from the prior, no likelihood",
            "likelihood": model.likelihood, "formula": model.formula.text,
            "family": model.family.name, "link": model.family.link,
            "nobs": model.design.nobs,
            "rescor_by": model.residual_by.column if model.residual_by else None}
    out.attrs["mixedformula"] = json.dumps(info)
    return Fit(out, model.design, model.family, built.priors, model.likelihood, info,
               data=model.data)


def add_prior_group(fit, model, seed=None) -> None:
    """``sample_prior="yes"``: store forward prior draws (brms names) as ``fit.idata.prior``."""
    post = fit.idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    built, idata = forward_draws(model, n, seed)
    set_group(fit.idata, "prior", brms_posterior(idata.prior, built))
