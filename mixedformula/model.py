"""``Model`` and ``fit``: formula + data → sampled :class:`~mixedformula.results.fit.Fit`.

>>> fit = mf.fit("Reaction ~ Days + (Days | Subject)", data)          # doctest: +SKIP
>>> model = mf.Model(formula, data, family="gaussian", priors=[mf.prior("normal(0, 5)")])
>>> model.pymc_model                                                  # the emitted pm.Model
>>> fit = model.fit(draws=1000, tune=1000, chains=4, seed=1, sampler="auto")

Likelihood engines: ``"conditional"`` (any family; group effects sampled) and
``"marginal"`` (Gaussian; group effects integrated out and drawn exactly afterwards). The default
``"auto"`` takes the marginal engine wherever it applies and says in the summary header when it
falls back to the conditional one, and why.

``parametrization`` (conditional engine): ``"noncentred"`` samples z ~ N(0, I), u = chol z
(brms); ``"centred"`` samples each level's coefficients around the fixed effects; ``"auto"``
(default) centres a grouping block when every level's data are informative (approximate Fisher
information per level, :func:`mixedformula.backends.pymc.build.choose_parametrization`) —
non-Gaussian families only. The choice is in ``fit.info["parametrization"]`` and, when anything
is centred, in the summary header.
"""

from __future__ import annotations

import functools
import json
import os
import time

import numpy as np

from .design import Design, design_matrices
from .errors import MixedFormulaError
from .families import Family, get_family
from .formula import FormulaSpec, parse
from .priors import Prior, PriorSet
from .progress import bars, phase, with_phases

SAMPLERS = ("auto", "nutpie", "pymc", "numpyro", "blackjax")   # numpyro/blackjax: the jax extra
LIKELIHOODS = ("auto", "conditional", "marginal")


def marginal_applies(design: Design, family: Family) -> tuple[bool, str]:
    """Whether the marginal engine can fit this model, and if not, why not."""
    if not family.gaussian or family.link != "identity":
        return False, (f"family {family.name} ({family.link} link) is not Gaussian with "
                       "identity link")
    if not design.terms:
        return False, "the model has no group terms"
    try:
        from .backends.pymc.marginal_model import marginal_support
    except ImportError:  # pragma: no cover - the marginal module is part of the package
        return False, "the marginal engine is not available"
    return marginal_support(design)


class Model:
    """A mixed model from one formula: design built once, PyMC model built on first use."""

    def __init__(self, formula: "str | FormulaSpec", data, family: "str | Family" = "gaussian",
                 priors=None, likelihood: str = "auto", link: str | None = None,
                 rescor: bool | None = None, rescor_by: str | None = None,
                 na_action: str = "drop", parametrization: str = "auto"):
        from .backends.pymc.build import normalise_parametrization
        # what Fit.update re-fits with (brms' update(newdata = ...))
        self._args = dict(formula=formula, family=family, priors=priors, likelihood=likelihood,
                          link=link, rescor=rescor, rescor_by=rescor_by, na_action=na_action,
                          parametrization=parametrization)
        self.parametrization = normalise_parametrization(parametrization)
        if likelihood not in LIKELIHOODS:
            raise MixedFormulaError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                                    f"not {likelihood!r}")
        self.formula = formula if isinstance(formula, FormulaSpec) else parse(formula)
        self.data = data
        self.family = get_family(family, link)
        from .design.distributed import is_dask_frame
        if is_dask_frame(data):
            self._init_dask(data, priors, likelihood, rescor, rescor_by, na_action)
            return
        self.design = design_matrices(self.formula, data, na_action=na_action,
                                      drop_aliased=True)
        self.prior_list = list(priors) if isinstance(priors, (list, tuple)) else (
            [] if priors is None else [priors])
        self.rescor = rescor
        self.residual_by = _residual_by(rescor_by, data, self.design)
        ok, why = marginal_applies(self.design, self.family)
        if ok and self.residual_by is not None:
            ok, why = False, "rescor_by is not supported by the marginal engine yet"
        self._stats = None
        if ok and likelihood != "conditional":
            from .backends.pymc.marginal_model import statistics
            self._stats, reason = statistics(self.design,
                                             cost_rule=likelihood == "auto")
            if reason:
                ok, why = False, reason
        if likelihood == "marginal" and not ok:
            raise MixedFormulaError(f"the marginal likelihood does not apply: {why}")
        self.likelihood = ("marginal" if ok else "conditional") if likelihood == "auto" \
            else likelihood
        self.engine_note = "" if (likelihood != "auto" or ok or not self.design.terms
                                  or not self.family.gaussian) else \
            f"marginal engine not used: {why}"
        self._built = None

    def _init_dask(self, data, priors, likelihood, rescor, rescor_by, na_action):
        """Dask DataFrame: statistics reduced on the cluster (design/distributed.py); only the
        marginal engine runs from them, so anything else is refused before any pass."""
        hint = ("; the conditional engine needs the rows in memory: pass data.compute() "
                "(a pandas DataFrame)")
        why = None
        if not self.family.gaussian or self.family.link != "identity":
            why = (f"family {self.family.name} ({self.family.link} link) is not Gaussian "
                   "with identity link")
        elif likelihood == "conditional":
            why = "likelihood='conditional' was asked for"
        elif not self.formula.groups:
            why = "the model has no group terms"
        elif self.formula.multivariate or self.formula.trials:
            why = "mvbind()/trials() models are not reduced to statistics"
        elif rescor_by is not None:
            why = "rescor_by is not supported by the marginal engine"
        if why:
            raise MixedFormulaError(f"a Dask DataFrame is fitted from sufficient statistics "
                                    f"by the marginal engine, which does not apply: {why}"
                                    f"{hint}")
        from .backends.pymc.marginal_model import statistics
        from .design.crossprod import MarginalTooLargeError
        from .design.distributed import reduce_statistics
        try:
            self.design, stats = reduce_statistics(self.formula, data, na_action=na_action)
        except MarginalTooLargeError as e:
            raise MixedFormulaError(f"the marginal factorisation is too large ({e}){hint}") \
                from None
        # the conditional engine cannot run on a Dask frame: no cost comparison here
        self._stats, reason = statistics(self.design, stats, cost_rule=False)
        if reason:
            raise MixedFormulaError(f"the marginal likelihood does not apply: {reason}{hint}")
        self.prior_list = list(priors) if isinstance(priors, (list, tuple)) else (
            [] if priors is None else [priors])
        self.rescor = rescor
        self.residual_by = None
        self.likelihood = "marginal"
        self.engine_note = ""
        self._built = None

    # -- building -------------------------------------------------------------------------
    @property
    def built(self):
        if self._built is None:
            from .backends.pymc.build import build_model
            self.priors = PriorSet(self.prior_list)
            self._built = build_model(self.design, self.family, self.priors,
                                      likelihood=self.likelihood, rescor=self.rescor,
                                      residual_by=self.residual_by, stats=self._stats,
                                      parametrization=self.parametrization)
        return self._built

    def parametrization_choice(self) -> dict[str, str]:
        """Grouping factor → ``"centred"``/``"noncentred"`` as built (empty for the marginal
        engine, where the group effects are not sampled)."""
        chosen = self.built.extras.get("parametrization") or {}
        return {b.group if len([c for c in self.built.blocks if c.group == b.group]) == 1
                else b.key: chosen[b.key][0] for b in self.built.blocks if b.key in chosen}

    @property
    def pymc_model(self):
        """The emitted ``pm.Model`` (inspect it, sample it yourself, add to it)."""
        return self.built.model

    def prior_summary(self):
        return self.built.priors.summary()

    def prior_predictive(self, draws: int = 500, seed: int | None = None):
        """Independent forward draws from the priors and of y (InferenceData with ``prior``,
        brms-named, and ``prior_predictive``); see :mod:`mixedformula.results.predict`."""
        self._need_rows("prior_predictive()")
        from .results.predict import prior_predictive
        return prior_predictive(self, draws=draws, seed=seed)

    def _need_rows(self, what: str) -> None:
        if not self.design.rows_in_memory:
            raise MixedFormulaError(f"{what} draws y for every row, and the rows stayed in the "
                                    "Dask DataFrame (only sufficient statistics were reduced); "
                                    "use data.compute() for it")

    # -- sampling -------------------------------------------------------------------------
    @with_phases
    def fit(self, draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int | None = None,
            sampler: str = "auto", progressbar: bool | None = None, cores: int | None = None,
            target_accept: float | None = None, sample_prior: str = "no",
            backend: str = "auto", log_likelihood: bool = False):
        """Sample the posterior and return a :class:`~mixedformula.results.fit.Fit`.

        ``fit.idata`` has ``posterior``, ``sample_stats``, ``observed_data`` and
        ``constant_data``; ``log_likelihood=True`` adds the pointwise log-likelihood
        (:meth:`~mixedformula.results.fit.Fit.add_log_likelihood`: per observation for the
        conditional engine, per group for the marginal one) for ``az.loo`` / ``az.compare``.

        ``backend`` (nutpie only): ``"c"`` compiles the log-density with PyTensor's C backend
        (seconds to compile, ~0.1–0.3 ms overhead per evaluation), ``"numba"`` with numba
        (15–40 s to compile a new structure, fastest evaluations, chains in parallel);
        ``"auto"`` picks by expected cost, from the model and these settings alone (never from
        what the caches hold: the backends' draws differ for a seed)
        (:func:`mixedformula.backends.pymc.sampling.choose_backend`).  A second fit of the
        same model structure reuses the compiled model: in the same process from memory, in
        another process from the disk cache of compiled functions.

        ``sample_prior`` (brms): ``"no"``; ``"yes"`` also stores prior draws in ``idata.prior``;
        ``"only"`` returns a Fit of ``chains × draws`` independent forward draws from the prior
        (no likelihood, no MCMC; needs proper priors).
        """
        from .results.fit import Fit
        if sample_prior not in ("no", "yes", "only"):
            raise MixedFormulaError("sample_prior must be 'no', 'yes' or 'only'")
        if sample_prior != "no":
            self._need_rows(f"sample_prior={sample_prior!r}")
        if sample_prior == "only":
            from .results.predict import prior_fit
            return prior_fit(self, draws=draws, chains=chains, seed=seed)
        if sample_prior == "yes":
            from .results.predict import check_proper_priors
            check_proper_priors(self)
        if sampler not in SAMPLERS:
            raise MixedFormulaError(f"sampler must be one of {', '.join(SAMPLERS)}")
        if sampler == "auto":
            sampler = "nutpie" if _has_nutpie() else "pymc"
        progressbar = bars(progressbar)
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        cores = cores or min(chains, os.cpu_count() or 1)
        from .backends.pymc.sampling import choose_backend, evaluation_size
        requested_backend = backend
        if self._built is None:
            phase("building the model")
        built = self.built
        backend = choose_backend(backend, self.likelihood,
                                 evaluation_size(self.design, self.likelihood), draws, tune,
                                 chains)
        if sampler != "nutpie":     # nutpie's phase line follows its compile
            phase(f"sampling {chains} chain{'s' * (chains > 1)} x ({tune} warm-up + {draws} "
                  f"draws) with {sampler}")
        t0 = time.perf_counter()
        idata = _sample(built.model, sampler, draws, tune, chains, seed, progressbar, cores,
                        target_accept, backend=backend)
        seconds = time.perf_counter() - t0
        group_effects = None
        if self.likelihood == "marginal":
            from .backends.pymc.marginal_model import recover_group_effects
            group_effects = recover_group_effects(built, idata.posterior, seed)
        from .backends.pymc.names import brms_posterior
        posterior = brms_posterior(idata.posterior, built, group_effects)
        idata = _replace_posterior(idata, posterior)
        param = self.parametrization_choice()
        engine_note = self.engine_note
        centred = [g for g, c in param.items() if c == "centred"]
        if centred:
            engine_note = "; ".join(x for x in (engine_note, "group effects centred for "
                                                + ", ".join(centred)) if x)
        info = {"sampler": sampler, "draws": draws,
                "backend": backend if sampler == "nutpie" else None, "tune": tune, "chains": chains,
                "seed": seed, "seconds": round(seconds, 3), "engine_note": engine_note,
                "parametrization": param,
                "likelihood": self.likelihood, "formula": self.formula.text,
                "family": self.family.name, "link": self.family.link,
                "nobs": self.design.nobs, "target_accept": target_accept or 0.8,
                "rescor_by": self.residual_by.column if self.residual_by else None}
        idata.attrs["mixedformula"] = json.dumps(info)
        from .results.idata_groups import add_data_groups
        add_data_groups(idata, self.design)
        out = Fit(idata, self.design, self.family, built.priors, self.likelihood, info,
                  data=self.data if self.design.rows_in_memory else None)
        if log_likelihood:
            out.add_log_likelihood()
        out._refit = functools.partial(_refit, self._args, dict(
            draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler, cores=cores,
            target_accept=target_accept, backend=requested_backend,
            log_likelihood=log_likelihood))
        if sample_prior == "yes":
            from .results.predict import add_prior_group
            add_prior_group(out, self, seed=seed)
        from .results.convergence import warn_if_not_converged
        warn_if_not_converged(idata, 'or parametrization="noncentred" (group effects of '
                              + ", ".join(centred) + " were centred)" if centred else "")
        return out


def _refit(model_args: dict, fit_args: dict, newdata, **changes):
    """``Fit.update``: the same model options and sampler settings on ``newdata``."""
    return Model(data=newdata, **model_args).fit(**{**fit_args, **changes})


def _residual_by(column: str | None, data, design: Design):
    """Codes of ``rescor_by`` for the rows the design kept (levels sorted, as lme4 factors)."""
    if column is None:
        return None
    import pandas as pd
    from .backends.pymc.build import ResidualBy
    from .design import as_pandas
    from .errors import DataError
    df = as_pandas(data)
    if column not in df.columns:
        raise DataError(f"rescor_by column {column!r} is not in the data")
    col = df.loc[design.row_index, column]
    if col.isna().any():
        raise DataError(f"rescor_by column {column!r} has {int(col.isna().sum())} missing "
                        "values in the rows used")
    codes, levels = pd.factorize(col, sort=True)
    return ResidualBy(column, [str(x) for x in levels], codes.astype(np.int64))


def _has_nutpie() -> bool:
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


def _sample(model, sampler, draws, tune, chains, seed, progress, cores, target_accept,
            backend="c"):
    """Sampling lives in :mod:`mixedformula.backends.pymc.sampling` (nutpie's C or numba
    backend, compiled models cached by structure, or ``pm.sample``) and, for the JAX samplers,
    in :mod:`mixedformula.backends.pymc.jax_sampling`."""
    if sampler in ("numpyro", "blackjax"):
        from .backends.pymc.jax_sampling import sample_jax
        return sample_jax(model, sampler, draws, tune, chains, seed, progress, target_accept)
    from .backends.pymc.sampling import sample
    return sample(model, sampler, draws, tune, chains, seed, progress, cores, target_accept,
                  backend=backend)


def _replace_posterior(idata, posterior):
    import arviz as az
    groups = {"posterior": posterior}
    for g in ("sample_stats", "observed_data"):
        if g in idata.groups():
            groups[g] = idata[g]
    return az.InferenceData(**groups)


def fit(formula, data, family="gaussian", priors=None, likelihood: str = "auto",
        link: str | None = None, rescor: bool | None = None, rescor_by: str | None = None,
        na_action: str = "drop", parametrization: str = "auto",
        draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int | None = None,
        sampler: str = "auto", progressbar: bool | None = None, cores: int | None = None,
        target_accept: float | None = None, sample_prior: str = "no", backend: str = "auto",
        log_likelihood: bool = False):
    """One line: ``Model(formula, data, ...).fit(draws, tune, chains, seed, sampler, ...)``."""
    model = Model(formula, data, family=family, priors=priors, likelihood=likelihood, link=link,
                  rescor=rescor, rescor_by=rescor_by, na_action=na_action,
                  parametrization=parametrization)
    return model.fit(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                     progressbar=progressbar, cores=cores, target_accept=target_accept,
                     sample_prior=sample_prior, backend=backend,
                     log_likelihood=log_likelihood)


__all__ = ["Model", "fit", "Prior", "marginal_applies"]
