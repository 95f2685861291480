"""The fitted model: draws (arviz InferenceData, brms names) plus what produced them.

``Fit`` only reads ``idata.posterior`` (names in docs/dev/CONTRACT.md) and ``idata.sample_stats``;
every table is computed from the draws on demand:

===================  ==========================================================================
method               returns
===================  ==========================================================================
``summary()``        :class:`~mixedformula.results.summary.Summary` (prints like brms)
``fixef()``          DataFrame: coefficient × [Estimate, Est.Error, Q2.5, Q97.5]
``ranef()``          dict group → DataFrame: level × (coef, stat) columns
``coef()``           same layout as ranef, b + r per draw (brms' coef)
``varcorr()``        :class:`~mixedformula.results.varcorr.VarCorr`: G per group, R ("residual")
``prior_summary()``  DataFrame in brms' prior_summary layout
``update()``         the same model re-fitted on ``newdata`` (brms' update; compiled model reused)
===================  ==========================================================================

``add_log_likelihood()`` fills ``idata.log_likelihood`` for az.loo / az.compare
(:mod:`.idata_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import arviz as az

from ..errors import MixedFormulaError
from ..report import write_report
from .effects import coef as _coef
from .effects import fixef as _fixef
from .effects import ranef as _ranef
from .effects_plot import conditional_effects as _ce
from .info import FitInfo
from .loo import add_log_likelihood as _add_log_likelihood
from .loo import loo as _loo
from .moments import marginal_moments
from .params import GroupInfo, ParamIndex, index_params
from .predict import posterior_predictive as _pp
from .predict import predict as _predict
from .summary import Summary, build_summary
from .varcorr import VarCorr, varcorr as _varcorr


def _without_attrs(data):
    """``data`` (a shallow copy) with empty ``.attrs``; anything else unchanged."""
    if getattr(data, "attrs", None) and hasattr(data, "copy"):
        data = data.copy(deep=False)
        data.attrs = {}
    return data


@dataclass
class FitMeta:
    """What the reports need from the design (kept when a fit is saved without its data)."""

    formula: str
    nobs: int
    response_names: list[str]
    groups: list[GroupInfo] = field(default_factory=list)
    n_dropped: int = 0
    # multivariate models with missing values: rows used per response, and why not all
    nobs_by_response: dict[str, int] = field(default_factory=dict)
    not_used: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_design(cls, design) -> "FitMeta":
        groups: dict[str, GroupInfo] = {}
        for t in design.terms:
            if t.name in groups:
                continue
            by = t.term.by if t.by_levels else None
            groups[t.name] = GroupInfo(t.name, int(t.J), by,
                                       list(t.by_levels) if by else None)
        return cls(formula=design.formula.text, nobs=int(design.nobs),
                   response_names=list(design.response_names), groups=list(groups.values()),
                   n_dropped=int(design.n_dropped or 0),
                   nobs_by_response=({k: int(v) for k, v in design.nobs_by_response.items()}
                                     if design.observed is not None else {}),
                   not_used=dict(design.not_used or {}))

    def to_dict(self) -> dict:
        return {"formula": self.formula, "nobs": self.nobs,
                "response_names": self.response_names, "n_dropped": self.n_dropped,
                "nobs_by_response": self.nobs_by_response, "not_used": self.not_used,
                "groups": [{"name": g.name, "nlevels": g.nlevels, "by": g.by,
                            "by_levels": g.by_levels} for g in self.groups]}

    @classmethod
    def from_dict(cls, d: dict) -> "FitMeta":
        return cls(formula=d["formula"], nobs=int(d["nobs"]),
                   response_names=list(d["response_names"]), n_dropped=int(d.get("n_dropped", 0)),
                   nobs_by_response=dict(d.get("nobs_by_response", {})),
                   not_used=dict(d.get("not_used", {})),
                   groups=[GroupInfo(g["name"], int(g["nlevels"]), g.get("by"),
                                     g.get("by_levels")) for g in d.get("groups", [])])


class Fit:
    """A fitted mixed model with brms-named draws.

    Parameters
    ----------
    idata : arviz.InferenceData
        ``posterior`` with brms names (CONTRACT.md) and ``sample_stats``.
    design : mixedformula.design.Design
        The design the model was built from.
    family : object with ``.name`` and ``.links`` (dict, e.g. ``{"mu": "identity"}``).
    priors : object with ``.summary()`` → DataFrame (brms prior_summary layout).
    likelihood : ``"conditional"`` or ``"marginal"``.
    info : dict, optional
        Sampler facts: ``sampler``, ``draws``, ``tune``, ``chains``, ``seed``, ``seconds``,
        ``target_accept``, ``engine_note``, ``data_name`` (used in the summary header).
    data : DataFrame, optional (keyword)
        The data the model was fitted to; :func:`mixedformula.save` stores the columns the
        formula uses so that :func:`mixedformula.load` can rebuild the design for prediction.
        A pandas frame is kept without its ``attrs`` (e.g. ``mf.simulate``'s
        ``attrs["true_ranef"]``, a dict of DataFrames): pandas compares the attrs of frames it
        concatenates with ``==``, which raises for DataFrame values, and the answers
        (slopes per category, the report) concatenate copies of the data.
    """

    def __init__(self, idata, design, family, priors, likelihood: str, info: dict | None = None,
                 *, data=None):
        self.idata = idata
        self.design = design
        self.family = family
        self.priors = priors
        self.likelihood = likelihood
        self.info = FitInfo.of(info)
        self.data = data
        self._meta: FitMeta | None = FitMeta.from_design(design) if design is not None else None
        self._prior_table = None          # from_stored(): the stored prior_summary
        self._index: ParamIndex | None = None
        self._summaries: dict = {}

    @property
    def data(self):
        """The fitted data (None when not kept); set without its ``attrs``."""
        return self._data

    @data.setter
    def data(self, value):
        self._data = _without_attrs(value)

    @classmethod
    def from_stored(cls, idata, design, family, priors, likelihood: str, info: dict,
                    meta: FitMeta, prior_table=None, *, data=None) -> "Fit":
        """A Fit read back from a file (:func:`mixedformula.load`): ``meta`` are the stored
        design facts (used as they are when there is no design; otherwise only the rows
        dropped before fitting, which the rebuilt design cannot know), ``prior_table`` the
        stored prior_summary."""
        fit = cls(idata, design, family, priors, likelihood, info, data=data)
        if design is None:
            fit._meta = meta
        else:
            fit._meta.n_dropped = meta.n_dropped
        fit._prior_table = prior_table
        return fit

    # -- facts --------------------------------------------------------------------------
    @property
    def posterior(self):
        return self.idata.posterior

    @property
    def meta(self) -> FitMeta:
        if self._meta is None:
            raise ValueError("this Fit has neither a design nor stored design facts")
        return self._meta

    @property
    def formula(self) -> str:
        return self.meta.formula

    @property
    def nobs(self) -> int:
        return self.meta.nobs

    @property
    def ngrps(self) -> dict[str, int]:
        """Number of levels per grouping factor (brms' ``ngrps``)."""
        out = {g.name: g.nlevels for g in self.meta.groups}
        for g, info in self.index.groups.items():
            out.setdefault(g, info.nlevels)
        return out

    @property
    def index(self) -> ParamIndex:
        if self._index is None:
            self._index = index_params(self.idata.posterior, self.meta.groups,
                                       self.meta.response_names)
        return self._index

    def _family_text(self) -> tuple[str, list[str]]:
        fams = getattr(self.family, "families", None)
        nresp = len(self.meta.response_names)
        if fams is None:
            fams = [self.family] * (nresp if nresp > 1 else 1)
        names = [str(getattr(f, "name", f)) for f in fams]
        links = []
        keys = self.design.dpar_keys if self.design is not None else []
        for k, f in enumerate(fams):
            lk = getattr(f, "links", None)
            if not isinstance(lk, dict) or not lk:
                lk = {"mu": getattr(f, "link", "identity")}
            lk = dict(lk)
            # a distributional formula: brms' link for it (sigma = log; categorical mu<cat>:
            # logit, the softmax)
            lk.update(f.summary_links([d for d, kk in keys if kk == k]))
            links.append("; ".join(f"{k} = {v}" for k, v in lk.items()))
        fam = names[0] if len(names) == 1 else f"MV({', '.join(names)})"
        return fam, links

    def _sampler_text(self) -> str:
        s = self.info.get("sampler")
        if not s:
            return "sampling(NUTS)"
        s = str(s)
        return s if "(" in s else f"{s}(NUTS)"

    def _need_rows(self, what: str) -> None:
        """Fits from Dask statistics (design/distributed.py) hold no rows of the data."""
        if self.design is not None and not self.design.rows_in_memory:
            raise MixedFormulaError(
                f"{what} needs the rows of the data, which stayed in the Dask DataFrame this "
                "model was fitted from (only sufficient statistics were reduced); use "
                "predict(newdata) on a pandas frame, or refit on data.compute()")

    # -- brms methods -------------------------------------------------------------------
    def summary(self, prob: float = 0.95, digits: int = 2) -> Summary:
        """brms' ``summary()``; ``prob`` sets the interval (columns ``l-95% CI``/``u-95% CI``)."""
        key = (float(prob), int(digits))
        if key not in self._summaries:
            fam, links = self._family_text()
            info = self.info
            self._summaries[key] = build_summary(
                self.idata, self.index, family=fam, links=links, formula=self.formula,
                data_name=str(info.get("data_name", "data")), nobs=self.nobs,
                ngrps=self.ngrps, likelihood=self.likelihood,
                engine_note=str(info.get("engine_note") or ""), sampler=self._sampler_text(),
                warmup=int(info.get("tune", info.get("warmup", 0)) or 0),
                thin=int(info.get("thin", 1) or 1),
                target_accept=float(info.get("target_accept", 0.8) or 0.8),
                prob=prob, digits=digits, nobs_by_response=self.meta.nobs_by_response,
                not_used=self.meta.not_used)
            from .structures import residual_structure
            view = residual_structure(self) if self.design is not None else None
            if view is not None:
                self._summaries[key].structure_lines = view.lines(digits)
        return self._summaries[key]

    def fixef(self, probs=(0.025, 0.975), summary: bool = True):
        """DataFrame coefficient × [Estimate, Est.Error, Q2.5, Q97.5] (draws if not summary)."""
        return _fixef(self.idata.posterior, self.index, probs, summary)

    def ranef(self, probs=(0.025, 0.975), summary: bool = True, groups=None):
        """dict group → DataFrame (index: levels; columns: (coef, stat)).

        ``fit.ranef()["Subject"]["Days"]`` is brms' ``ranef(fit)$Subject[, , "Days"]``.
        ``summary=False``: dict group → DataArray (sample, level, coef) of draws.
        """
        return _ranef(self.idata.posterior, self.index, probs, summary, groups)

    def coef(self, probs=(0.025, 0.975), summary: bool = True, groups=None):
        """Per-level coefficients b + r computed per draw (brms' ``coef()``), layout of ranef."""
        return _coef(self.idata.posterior, self.index, probs, summary, groups)

    def varcorr(self, probs=(0.025, 0.975)) -> VarCorr:
        """G per grouping factor (sd table, cor and cov matrices) and R under ``"residual"``."""
        return _varcorr(self.idata.posterior, self.index, self.meta.response_names, probs)

    def marginal_cov(self, rows=None, group: str | None = None, level=None):
        """Implied moments E[y] = Xβ and Var[y] = Z G Zᵀ + R (posterior means) for ``rows``
        (positions in the fitted data) or for all rows of ``level`` of ``group``."""
        self._need_rows("marginal_cov()")
        return marginal_moments(self, rows=rows, group=group, level=level)

    def report(self, path):
        """Write a self-contained HTML report (tables, diagnostics, plots) to ``path``."""
        self._need_rows("the HTML report (fitted values, pp_check)")
        return write_report(self, path)

    def prior_summary(self):
        """brms' ``prior_summary()`` table."""
        if self._prior_table is not None:
            return self._prior_table.copy()
        return self.priors.summary()

    # -- predictions, checks, comparison (results/predict.py, loo.py, effects_plot.py) ------
    def predict(self, newdata=None, kind: str = "epred", re_formula=None,
                new_groups: str = "sample", summary: bool = False, ndraws: int | None = None,
                seed=None, probs=(0.025, 0.975), dpar: str | None = None):
        """Posterior draws of predictions for ``newdata`` (default: the fitted rows).

        ``kind``: ``"linpred"`` (η = Xβ + Zu), ``"epred"`` (E[y] = g⁻¹(η), brms'
        posterior_epred) or ``"response"`` (draws of y, brms' posterior_predict).
        ``dpar``: a family parameter instead of the mean (brms' ``dpar =``): ``"sigma"`` gives
        σ per row (``kind="epred"``) or, with its own formula, its linear predictor
        (``kind="linpred"``, log scale).
        ``re_formula``: None (all group terms), ``"~0"`` (none), ``"~ (1 | g)"`` (a subset).
        ``new_groups``: levels not seen in fitting get u drawn from N(0, G) (``"sample"``),
        u = 0 (``"zero"``) or raise (``"error"``); missing group values get u = 0.
        Returns an array draws × rows (× responses for mvbind models), or with
        ``summary=True`` a DataFrame (Estimate, Est.Error, Q2.5, Q97.5). Math:
        :mod:`mixedformula.results.predict`.
        """
        if newdata is None:
            self._need_rows("predict() on the fitted rows")
        return _predict(self, newdata, kind=kind, re_formula=re_formula,
                        new_groups=new_groups, summary=summary, ndraws=ndraws, seed=seed,
                        probs=probs, dpar=dpar)

    def posterior_predictive(self, seed=None):
        """Add ``posterior_predictive`` (one y draw per posterior draw) and ``observed_data`` to
        ``self.idata``; returns the InferenceData."""
        self._need_rows("posterior_predictive()")
        return _pp(self, seed=seed)

    def update(self, newdata=None, **changes):
        """brms' ``update(fit, newdata = ...)``: the same model (formula, family, priors,
        engine options) and sampler settings fitted to ``newdata`` (default: the data of this
        fit), with ``changes`` to the sampler settings (``seed=``, ``draws=``, ...). A model of
        the same structure reuses the compiled model (no recompiling; the conditional
        engine's rows are data, so other rows of the same shape need no compile)."""
        refit = getattr(self, "_refit", None)
        if refit is None:
            from ..errors import MixedFormulaError
            raise MixedFormulaError("update() needs a fit made by mf.fit() / Model.fit() in "
                                    "this session (a loaded fit does not keep the model "
                                    "options)")
        if newdata is None:
            self._need_rows("update()")
            newdata = self.data
        return refit(newdata, **changes)

    def add_log_likelihood(self, kind: str | None = None, group: str | None = None):
        """Put the pointwise log-likelihood into ``self.idata.log_likelihood`` (one variable,
        replacing what was there) so that ``az.loo(fit.idata)`` and ``az.compare`` work:
        ``kind="observation"`` (default for the conditional engine) per observation,
        ``kind="group"`` (default for the marginal engine) leave-one-group-out over ``group``
        (see :mod:`mixedformula.results.idata_groups`). Returns the InferenceData."""
        self._need_rows("add_log_likelihood()")
        _add_log_likelihood(self, kind=kind, group=group)
        return self.idata

    def pp_check(self, ax=None, ndraws: int = 50, kind: str = "kde", seed=None):
        """Posterior predictive check (``arviz.plot_ppc``): density of y against ``ndraws``
        replicated data sets. Returns the matplotlib axes."""
        self._need_rows("pp_check()")
        if "posterior_predictive" not in self.idata.groups():
            self.posterior_predictive(seed=seed)
        return az.plot_ppc(self.idata, ax=ax, kind=kind, num_pp_samples=ndraws,
                           var_names=list(self.design.response_names), random_seed=seed,
                           show=False)

    def loo(self, group: str | None = None, likelihood: str | None = None):
        """PSIS-LOO that states what it leaves out (see :mod:`mixedformula.results.loo`).

        Default: conditional engine → LOO over observations (conditional likelihood);
        marginal engine → leave-one-group-out over its grouping factor (marginal likelihood).
        ``group="g"``: leave-one-group-out over g; ``likelihood=`` chooses the pointwise
        likelihood. The pointwise log-likelihood is stored in ``idata.log_likelihood``.
        """
        self._need_rows("loo()")
        return _loo(self, group=group, likelihood=likelihood)

    def conditional_effects(self, effect: str, groups=False, prob: float = 0.95,
                            resolution: int = 100, ndraws: int | None = None, seed=None,
                            ax=None, categorical: bool | None = None):
        """Expected response over a grid of ``effect`` (others at mean / reference level), with
        ``prob`` bands; ``groups=True`` (or a grouping factor name) draws one curve per level;
        ``categorical=True`` (brms): one curve per response category, P(y = k), of an ordinal
        model (categorical models give these by default). Returns ``(figure, DataFrame)``."""
        self._need_rows("conditional_effects()")
        return _ce(self, effect, groups=groups, prob=prob, resolution=resolution,
                   ndraws=ndraws, seed=seed, ax=ax, categorical=categorical)

    # -- answers: marginaleffects, hypothesis, R² (results/marginaleffects.py, hypothesis.py,
    #    r2.py) --------------------------------------------------------------------------
    def predictions(self, newdata=None, grid=None, by=None, re_formula=None,
                    kind: str = "response", new_groups: str = "sample",
                    conf_level: float = 0.95, seed=0):
        """marginaleffects' ``predictions()`` (``by=True`` or columns: averaged within groups);
        ``grid``: a dict column → values for :func:`~mixedformula.results.marginaleffects.datagrid`.
        Returns an :class:`~mixedformula.results.answer_frame.AnswerFrame` (``estimate`` = the
        posterior median, ``conf.low``/``conf.high`` equal-tailed; ``.draws()``)."""
        from .marginaleffects import predictions
        return predictions(self, newdata, grid, by, re_formula, kind, new_groups, conf_level,
                           seed)

    def comparisons(self, variable: str, contrast="+1", newdata=None, grid=None, by=None,
                    re_formula=None, kind: str = "response", new_groups: str = "sample",
                    conf_level: float = 0.95, seed=0):
        """marginaleffects' ``comparisons()``: ``contrast`` ``"+1"``, ``"sd"``, ``{x: (a, b)}``
        or, for a factor, ``"pairwise"``/``"revpairwise"``/``"reference"``."""
        from .marginaleffects import comparisons
        return comparisons(self, variable, contrast, newdata, grid, by, re_formula, kind,
                           new_groups, conf_level, seed)

    def slopes(self, variable: str, newdata=None, grid=None, by=None, re_formula=None,
               kind: str = "response", new_groups: str = "sample", conf_level: float = 0.95,
               seed=0, eps=None):
        """marginaleffects' ``slopes()`` (centred difference x ± h/2, h = 1e-4 × range of x)."""
        from .marginaleffects import slopes
        return slopes(self, variable, newdata, grid, by, re_formula, kind, new_groups,
                      conf_level, seed, eps)

    def hypothesis(self, hypotheses, class_: str = "b", group: str = "",
                   scope: str = "standard", alpha: float = 0.05, robust: bool = False):
        """brms' ``hypothesis()``: ``"Days > 0"``, ``"Intercept - 250 = 0"``, ... (parsed by
        our own parser, never evaluated as Python); columns Hypothesis, Estimate, Est.Error,
        CI.Lower, CI.Upper, Evid.Ratio, Post.Prob, Star (see
        :mod:`mixedformula.results.hypothesis`)."""
        from .hypothesis import hypothesis
        return hypothesis(self, hypotheses, class_, group, scope, alpha, robust)

    def bayes_r2(self, re_formula=None, method: str | None = None, probs=(0.025, 0.975),
                 summary: bool = True):
        """brms' ``bayes_R2()`` (``re_formula="NA"``: marginal, None: conditional); a table
        Estimate, Est.Error, Q2.5, Q97.5 (row ``R2``) or the per-draw values."""
        from .r2 import bayes_r2
        return bayes_r2(self, re_formula, method, probs, summary)

    def emmeans(self, specs, by=None, at: dict | None = None, type: str = "link",
                level: float = 0.95):
        """emmeans' marginal means over the reference grid (equal weights over the other
        factors, covariates at their means): posterior median and HPD interval
        (``emmean``, ``lower.HPD``, ``upper.HPD``); ``.pairs(adjust=)`` on the result."""
        from .emmeans import BayesSource, emm_table
        return emm_table(BayesSource(self), specs, by, at, type, None, level)

    def emtrends(self, specs, var: str, by=None, at: dict | None = None, level: float = 0.95):
        """emmeans' ``emtrends()``: the slope of the linear predictor in ``var``."""
        from .emmeans import BayesSource, emm_table
        return emm_table(BayesSource(self), specs, by, at, "link", var, level)

    # -- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
