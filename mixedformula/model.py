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
information per level, :func:`mixedformula.backends.pymc.build.choose_parametrization`:
families with an information rule); or a dict grouping factor → one of these, per factor
(``{"dept": "centred"}``; factors not named are ``"auto"``). The choice is in
``fit.info["parametrization"]`` and, when anything is centred, in the summary header.

Stages (named like lme4's pipeline; each a function of the one before's result, testable
alone; ``Model``/``fit`` run them in turn):

* :func:`specify` — formula + data → :class:`Specification` (the design and the engine
  decision, :func:`mixedformula.engine.decide`); pandas or Dask data;
* :func:`build` — Specification + priors → :class:`~mixedformula.backends.pymc.build.Built`
  (the ``pm.Model`` and what names its draws);
* :func:`sample` — Built → raw draws (InferenceData) and the :class:`Run` that made them;
* :func:`assemble` — Built + raw draws + Run → :class:`~mixedformula.results.fit.Fit`
  (group effects recovered for the marginal engine, brms names, ``fit.info``).
"""

from __future__ import annotations

import functools
import json
import os
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .design import Design, design_matrices
from .engine import REQUESTS, Decision, dask_refusal, dask_too_large, decide, marginal_reason
from .errors import MixedFormulaError
from .families import Family, get_family
from .formula import FormulaSpec, mvbind_as_parts, parse
from .priors import Prior, PriorSet
from .progress import bars, phase, with_phases

SAMPLERS = ("auto", "nutpie", "pymc", "numpyro", "blackjax")   # numpyro/blackjax: the jax extra
LIKELIHOODS = REQUESTS


def marginal_applies(design: Design, family: Family) -> tuple[bool, str]:
    """Whether the marginal engine can fit this model, and if not, why not
    (:func:`mixedformula.engine.marginal_reason`)."""
    why = marginal_reason(design, family)
    return not why, why


@dataclass
class Specification:
    """Stage 1 (:func:`specify`): what is fitted — the parsed formula, the family, the design
    (a :class:`~mixedformula.design.distributed.ReducedDesign` for Dask data), the engine
    decision and the ``rescor_by`` codes."""

    formula: FormulaSpec
    family: Family
    design: Design
    engine: Decision
    residual_by: object = None          # backends.pymc.build.ResidualBy
    data: object = None                 # the data with the response recoded by the family


def family_data(spec: FormulaSpec, fam: Family, data):
    """``data`` with the response column recoded by ``fam.response_data`` (ordinal families:
    an ordered categorical → 1..K in its category order), or ``data`` itself."""
    return family_response(spec, fam, data)[0]


def family_response(spec: FormulaSpec, fam: Family, data):
    """(data with the response recoded by ``fam.response_data``, the category labels or
    None); ``data`` itself when the family does not recode its response."""
    if not fam.recodes_response or len(spec.response_variables) != 1:
        return data, None
    from .design import as_pandas
    col = spec.response_variables[0]
    df = as_pandas(data)
    if col not in df.columns:
        return data, None
    codes, labels = fam.response_data(df[col], col)
    df = df.copy()
    df[col] = codes
    return df, labels


def category_specific(spec: FormulaSpec, fam: Family) -> FormulaSpec:
    """In an ordinal model, ``cs(x)`` is brms' category-specific effect (one coefficient per
    threshold, ``bcs_x[k]``), never formulaic's shrinkage spline: the spec with its cs() terms
    read that way (:meth:`FormulaSpec.with_category_specific`). Family ``cumulative``: brms 2.18
    fits it with a warning, and so do we (its per-row thresholds τ_k − x'b_k may cross, where
    the model has no probability)."""
    if not fam.thresholds:
        return spec
    import re
    calls = len(re.findall(r"(^|[^A-Za-z0-9._])cs\s*\(", spec.fixed))
    if calls > len(spec.cs_terms):
        raise MixedFormulaError("in an ordinal model cs() is a category-specific effect (brms) "
                                "and takes one variable, cs(x); it is not read as a spline "
                                "here: use the spline under another name (cr(), bs())")
    if not spec.cs_terms:
        return spec
    if spec.parts or spec.multivariate or spec.dpars:
        raise MixedFormulaError("category-specific effects cs() are supported in univariate "
                                "ordinal models without distributional formulas only")
    if not fam.allows_cs:
        warnings.warn(f"category-specific effects cs() for family {fam.name!r} are experimental "
                      "and may have convergence issues (brms 2.18 warns the same): the "
                      "thresholds of each row, Intercept[k] - x'b_x[k], must stay ordered, and "
                      "draws where they cross have zero probability; sratio, cratio and acat "
                      "have no such constraint", UserWarning, stacklevel=3)
    return spec.with_category_specific()


def check_distributional(spec: FormulaSpec, fam: Family, rescor_by: str | None = None) -> None:
    """brms' rules for distributional formulas (``sigma ~ x``): only parameters of the family
    (``Family.dpar_link`` names the family's parameters otherwise); no ``rescor_by`` (a
    per-level residual scale) next to a sigma formula."""
    from .errors import FamilyError
    for name in spec.dpar_names:
        if name not in fam.dpars:
            raise FamilyError(f"{name} ~ ... : the family {fam.name!r} has no parameter "
                              f"{name!r} (its distributional parameters: "
                              f"{', '.join(fam.dpars) if fam.dpars else 'none'})")
    if rescor_by is not None and "sigma" in spec.dpar_names:
        raise MixedFormulaError("rescor_by (one residual scale per level) cannot be combined "
                                "with a formula for sigma: put the factor into the sigma "
                                "formula instead (sigma ~ 0 + h)")


#: brms' message when rescor is asked for where it is not allowed
RESCOR_REFUSAL = ("rescor (residual correlation) is only possible when every response is "
                  "gaussian or every response is student (brms: 'Currently, estimating "
                  "'rescor' is only possible in multivariate gaussian or student models.')")


def response_family(spec: FormulaSpec, fam: Family) -> "Family | MultivariateFamily":
    """The family of the model given ``family=`` (``fam``) and brms' ``bf(..., family = ...)``
    in the formula: a univariate ``bf(y ~ x, family = poisson())`` or bf() parts that all
    name the same family give that family (``family=`` must then be the default gaussian or
    the same; ``mvbind(y1, y2) ~ x`` counts as one part per response); bf() parts with
    different families give brms' ``MV(poisson, gaussian)`` (:class:`~mixedformula.families.multivariate.MultivariateFamily`, one family per
    response; parts without ``family =`` take ``family=``). ``set_rescor(TRUE)`` with
    different families is refused (brms' rule)."""
    from .errors import FamilyError
    from .families.multivariate import MultivariateFamily
    # mvbind(y1, y2) ~ x is brms' bf(y1 ~ x) + bf(y2 ~ x) (its split_bf): one part per
    # response, each taking family=
    written = ([p.family for p in spec.parts] if spec.parts
               else [spec.family] * max(1, len(spec.responses)))
    if all(w is None for w in written):
        return _per_response(fam, len(written))
    fams = [get_family(w) if w is not None else fam for w in written]
    default = fam == get_family("gaussian")
    if any(w is None for w in written) and not default:
        pass                          # parts without family = take family=
    elif not default and any(f != fam for f in fams):
        raise FamilyError(f"family={fam.name!r} differs from the family written in the "
                          f"formula ({', '.join(f.name for f in fams)}): give it in one place")
    if any(f != fams[0] for f in fams):
        if spec.rescor:
            names = ", ".join(f"{r.strip(chr(96))}: {f.name}"
                              for r, f in zip(spec.responses, fams))
            raise MixedFormulaError(f"set_rescor(TRUE) with different families per response "
                                    f"({names}): {RESCOR_REFUSAL}")
        return MultivariateFamily(fams)
    return _per_response(fams[0], len(fams))


def _per_response(fam: Family, parts: int):
    """bf() parts sharing a family without brms' residual correlation (poisson, bernoulli,
    ...): brms' ``MV(poisson, poisson)``, each response its own parameters (``shape_y1``,
    ``shape_y2``); gaussian and student keep the one-family path (rescor, the marginal
    engine)."""
    if parts < 2 or fam.gaussian or fam.allows_rescor or fam.recodes_response:
        return fam
    from .families.multivariate import MultivariateFamily
    return MultivariateFamily([fam] * parts)


def model_rescor(spec: FormulaSpec, fam: Family, rescor: bool | None) -> bool | None:
    """``rescor=`` together with ``+ set_rescor()`` in the formula (they must agree); True is
    refused unless the family is gaussian or student (brms' rule); None: brms' default."""
    if spec.rescor is not None and rescor is not None and spec.rescor != rescor:
        raise MixedFormulaError(f"rescor={rescor} disagrees with set_rescor"
                                f"({'TRUE' if spec.rescor else 'FALSE'}) in the formula")
    value = spec.rescor if rescor is None else rescor
    if value and spec.multivariate and not fam.allows_rescor:
        raise MixedFormulaError(f"set_rescor(TRUE) with family {fam.name!r}: {RESCOR_REFUSAL}")
    return value


def specify(formula: "str | FormulaSpec", data, family: "str | Family" = "gaussian",
            likelihood: str = "auto", link: str | None = None, rescor_by: str | None = None,
            na_action: str = "drop", offset=None, data2: dict | None = None) -> Specification:
    """Formula + data → design + engine. ``data2``: named matrices the formula refers to
    (brms' ``data2``: the known covariance A of ``gr(g, cov = A)``). A Dask DataFrame is reduced to sufficient statistics
    on the cluster (design/distributed.py); only the marginal engine runs from them, so
    anything else is refused before any pass."""
    if likelihood not in LIKELIHOODS:
        raise MixedFormulaError(f"likelihood must be one of {', '.join(LIKELIHOODS)}, "
                                f"not {likelihood!r}")
    spec = formula if isinstance(formula, FormulaSpec) else parse(formula)
    fam = response_family(spec, get_family(family, link))
    if getattr(fam, "families", None) is not None:     # one family object per response
        spec = mvbind_as_parts(spec)
    from .design.distributed import is_dask_frame
    if is_dask_frame(data):
        check_distributional(spec, fam, rescor_by)
        why = dask_refusal(spec, fam, likelihood, rescor_by)
        if spec.offset or offset is not None:
            why = why or "an offset is not supported for Dask data yet; pass data.compute()"
        if why:
            raise MixedFormulaError(why)
        from .design.crossprod import MarginalTooLargeError
        from .design.distributed import reduce_statistics
        try:
            design, stats = reduce_statistics(spec, data, na_action=na_action)
        except MarginalTooLargeError as e:
            raise MixedFormulaError(dask_too_large(e)) from None
        engine = decide(design, fam, likelihood, stats=stats, dask=True)
        return Specification(spec, fam, design, engine)
    spec = category_specific(spec, fam)
    data, labels = family_response(spec, fam, data)
    fam = fam.for_response(labels)      # categorical: one predictor per category
    # (categorical: its mu<category> parameters are known once the response has been seen)
    check_distributional(spec, fam, rescor_by)
    spec = fam.formula_for(spec)
    design = design_matrices(spec, data, na_action=na_action, drop_aliased=True, data2=data2)
    if offset is not None:
        from .design.spec import add_offset
        add_offset(design, offset, data)
    from .identifiability import check_identifiability   # lme4's checks, as warnings
    # se(sei) without sigma = TRUE: the residual sd is known, nothing to confuse a group with
    known_sd = getattr(design, "se", None) is not None and not spec.additions.se_sigma
    check_identifiability(design, "sigma" in fam.dpars and not known_sd, bayesian=True)
    residual_by = _residual_by(rescor_by, data, design)
    engine = decide(design, fam, likelihood, rescor_by=residual_by)
    return Specification(spec, fam, design, engine, residual_by, data)


def build(specification: Specification, priors: PriorSet, rescor: bool | None = None,
          parametrization: str = "auto"):
    """Specification + priors → :class:`~mixedformula.backends.pymc.build.Built`."""
    from .backends.pymc.build import build_model
    s = specification
    rescor = model_rescor(s.formula, s.family, rescor)
    return build_model(s.design, s.family, priors, likelihood=s.engine.likelihood,
                       rescor=rescor, residual_by=s.residual_by, stats=s.engine.stats,
                       parametrization=parametrization, integrate=s.engine.integrate)


@dataclass(frozen=True)
class Run:
    """Stage 3 (:func:`sample`): how the draws were made."""

    sampler: str                 # "nutpie", "pymc", "numpyro", "blackjax"
    backend: str | None          # nutpie's "c"/"numba"; None for the other samplers
    draws: int
    tune: int
    chains: int
    seed: int
    seconds: float
    target_accept: float | None


def sample(built, draws: int = 1000, tune: int = 1000, chains: int = 4,
           seed: int | None = None, sampler: str = "auto", progressbar: bool | None = None,
           cores: int | None = None, target_accept: float | None = None,
           backend: str = "auto"):
    """Built → (raw InferenceData, :class:`Run`): the sampler on ``built.model``."""
    if sampler not in SAMPLERS:
        raise MixedFormulaError(f"sampler must be one of {', '.join(SAMPLERS)}")
    if sampler == "auto":
        sampler = "nutpie" if has_nutpie() else "pymc"
    progressbar = bars(progressbar)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    cores = cores or min(chains, os.cpu_count() or 1)
    from .backends.pymc.sampling import choose_backend, evaluation_size
    cost = "conditional" if built.reads_rows else built.likelihood
    backend = choose_backend(backend, cost, evaluation_size(built.design, cost), draws, tune,
                             chains)
    if sampler != "nutpie":     # nutpie's phase line follows its compile
        phase(f"sampling {chains} chain{'s' * (chains > 1)} x ({tune} warm-up + {draws} "
              f"draws) with {sampler}")
    t0 = time.perf_counter()
    idata = _sample(built.model, sampler, draws, tune, chains, seed, progressbar, cores,
                    target_accept, backend=backend, low_rank=low_rank_mass_matrix(built))
    seconds = time.perf_counter() - t0
    return idata, Run(sampler=sampler, backend=backend if sampler == "nutpie" else None,
                      draws=draws, tune=tune, chains=chains, seed=seed, seconds=seconds,
                      target_accept=target_accept)


def parametrization_choice(built) -> dict[str, str]:
    """Grouping factor → ``"centred"``/``"noncentred"`` as built (empty for the marginal
    engine, where the group effects are not sampled)."""
    chosen = built.parametrization
    return {b.group if len([c for c in built.blocks if c.group == b.group]) == 1
            else b.key: chosen[b.key][0] for b in built.blocks if b.key in chosen}


def assemble(built, idata, run: Run, formula: FormulaSpec, engine_note: str = "",
             data=None):
    """Built + raw draws + Run → :class:`~mixedformula.results.fit.Fit`: the marginal
    engine's group effects drawn exactly, brms names, the :class:`FitInfo` record."""
    from .results.fit import Fit
    from .results.info import FitInfo
    group_effects = None
    if built.integrated is not None:          # per row (partial, or se(sigma = TRUE))
        from .backends.pymc.partial_marginal import recover_integrated
        group_effects = {built.integrated: recover_integrated(built, idata.posterior, run.seed)}
    elif built.likelihood == "marginal":
        from .backends.pymc.marginal_model import recover_group_effects
        group_effects = recover_group_effects(built, idata.posterior, run.seed)
    from .backends.pymc.names import brms_posterior
    posterior = brms_posterior(idata.posterior, built, group_effects)
    idata = _replace_posterior(idata, posterior)
    param = parametrization_choice(built)
    centred = [g for g, c in param.items() if c == "centred"]
    if centred:
        engine_note = "; ".join(x for x in (engine_note, "group effects centred for "
                                            + ", ".join(centred)) if x)
    design, family = built.design, built.family
    info = FitInfo.record(
        sampler=run.sampler, draws=run.draws, backend=run.backend, tune=run.tune,
        chains=run.chains, seed=run.seed, seconds=round(run.seconds, 3),
        engine_note=engine_note, parametrization=param, likelihood=built.likelihood,
        formula=formula.text, family=family.name, link=family.link, nobs=design.nobs,
        target_accept=run.target_accept or 0.8,
        rescor_by=built.residual_by.column if built.residual_by else None)
    idata.attrs["mixedformula"] = json.dumps(info)
    from .results.idata_groups import add_data_groups
    add_data_groups(idata, design)
    return Fit(idata, design, family, built.priors, built.likelihood, info,
               data=data if design.rows_in_memory else None)


class Model:
    """A mixed model from one formula: design built once, PyMC model built on first use."""

    def __init__(self, formula: "str | FormulaSpec", data, family: "str | Family" = "gaussian",
                 priors=None, likelihood: str = "auto", link: str | None = None,
                 rescor: bool | None = None, rescor_by: str | None = None,
                 na_action: str = "drop", parametrization: str = "auto", offset=None,
                 data2: dict | None = None):
        from .backends.pymc.build import normalise_parametrization
        # what Fit.update re-fits with (brms' update(newdata = ...))
        self._args = dict(formula=formula, family=family, priors=priors, likelihood=likelihood,
                          link=link, rescor=rescor, rescor_by=rescor_by, na_action=na_action,
                          parametrization=parametrization, offset=offset, data2=data2)
        self.parametrization = normalise_parametrization(parametrization)
        self.specification = specify(formula, data, family, likelihood, link, rescor_by,
                                     na_action, offset, data2)
        s = self.specification
        self.formula, self.family, self.design = s.formula, s.family, s.design
        self.data = data if s.data is None else s.data
        self.prior_list = list(priors) if isinstance(priors, (list, tuple)) else (
            [] if priors is None else [priors])
        self.rescor = rescor
        self.residual_by = s.residual_by
        self.engine = s.engine
        self._stats = self.engine.stats
        self.likelihood = self.engine.likelihood
        self.engine_note = self.engine.note
        self._built = None

    # -- building -------------------------------------------------------------------------
    @property
    def built(self):
        if self._built is None:
            self.priors = PriorSet(self.prior_list)
            self._built = build(self.specification, self.priors, rescor=self.rescor,
                                parametrization=self.parametrization)
        return self._built

    def parametrization_choice(self) -> dict[str, str]:
        """Grouping factor → ``"centred"``/``"noncentred"`` as built (empty for the marginal
        engine, where the group effects are not sampled)."""
        return parametrization_choice(self.built)

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
        from .results.prior import prior_predictive
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
        if sample_prior not in ("no", "yes", "only"):
            raise MixedFormulaError("sample_prior must be 'no', 'yes' or 'only'")
        if sample_prior != "no":
            self._need_rows(f"sample_prior={sample_prior!r}")
        if sample_prior == "only":
            from .results.prior import prior_fit
            return prior_fit(self, draws=draws, chains=chains, seed=seed)
        if sample_prior == "yes":
            from .results.prior import check_proper_priors
            check_proper_priors(self)
        if sampler not in SAMPLERS:
            raise MixedFormulaError(f"sampler must be one of {', '.join(SAMPLERS)}")
        if self._built is None:
            phase("building the model")
        built = self.built
        idata, run = sample(built, draws, tune, chains, seed, sampler, progressbar, cores,
                            target_accept, backend)
        out = assemble(built, idata, run, self.formula, self.engine_note, data=self.data)
        if log_likelihood:
            out.add_log_likelihood()
        out._refit = functools.partial(_refit, self._args, dict(
            draws=draws, tune=tune, chains=chains, seed=run.seed, sampler=sampler, cores=cores,
            target_accept=target_accept, backend=backend,
            log_likelihood=log_likelihood))
        if sample_prior == "yes":
            from .results.prior import add_prior_group
            add_prior_group(out, self, seed=run.seed)
        from .results.convergence import warn_if_not_converged
        centred = [g for g, c in out.info["parametrization"].items() if c == "centred"]
        warn_if_not_converged(out.idata, 'or parametrization="noncentred" (group effects of '
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


def has_nutpie() -> bool:
    """Whether nutpie is installed (``sampler="auto"`` takes it then)."""
    try:
        import nutpie  # noqa: F401
    except ImportError:
        return False
    return True


def low_rank_mass_matrix(built) -> bool:
    """nutpie's low-rank mass matrix adaptation for the partial engine (one block integrated
    out, the rest sampled: crossed factors whose effects' means trade off with the intercept,
    a linear correlation; :func:`mixedformula.backends.pymc.sampling.sample_nutpie`)."""
    return built.likelihood == "conditional" and built.integrated is not None


def _sample(model, sampler, draws, tune, chains, seed, progress, cores, target_accept,
            backend="c", low_rank: bool = False):
    """Sampling lives in :mod:`mixedformula.backends.pymc.sampling` (nutpie's C or numba
    backend, compiled models cached by structure, or ``pm.sample``) and, for the JAX samplers,
    in :mod:`mixedformula.backends.pymc.jax_sampling`."""
    if sampler in ("numpyro", "blackjax"):
        from .backends.pymc.jax_sampling import sample_jax
        return sample_jax(model, sampler, draws, tune, chains, seed, progress, target_accept)
    from .backends.pymc.sampling import sample
    return sample(model, sampler, draws, tune, chains, seed, progress, cores, target_accept,
                  backend=backend, low_rank=low_rank)


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
        log_likelihood: bool = False, offset=None, data2: dict | None = None):
    """One line: ``Model(formula, data, ...).fit(draws, tune, chains, seed, sampler, ...)``.
    ``offset``: a column name or one value per row, added to the linear predictor (with the
    formula's ``offset()`` terms). ``data2``: named matrices the formula refers to, as brms'
    ``data2`` (``{"A": A}`` for ``gr(g, cov = A)``; A a DataFrame indexed by the levels)."""
    model = Model(formula, data, family=family, priors=priors, likelihood=likelihood, link=link,
                  rescor=rescor, rescor_by=rescor_by, na_action=na_action,
                  parametrization=parametrization, offset=offset, data2=data2)
    return model.fit(draws=draws, tune=tune, chains=chains, seed=seed, sampler=sampler,
                     progressbar=progressbar, cores=cores, target_accept=target_accept,
                     sample_prior=sample_prior, backend=backend,
                     log_likelihood=log_likelihood)


__all__ = ["Model", "Prior", "Run", "Specification", "assemble", "build", "fit",
           "marginal_applies", "sample", "specify"]
