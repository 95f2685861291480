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
===================  ==========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .effects import coef as _coef
from .effects import fixef as _fixef
from .effects import ranef as _ranef
from .params import GroupInfo, ParamIndex, index_params
from .summary import Summary, build_summary
from .varcorr import VarCorr, varcorr as _varcorr


@dataclass
class FitMeta:
    """What the reports need from the design (kept when a fit is saved without its data)."""

    formula: str
    nobs: int
    response_names: list[str]
    groups: list[GroupInfo] = field(default_factory=list)
    n_dropped: int = 0

    @classmethod
    def from_design(cls, design) -> "FitMeta":
        groups: dict[str, GroupInfo] = {}
        for t in design.terms:
            if t.name in groups:
                continue
            by = t.term.by if getattr(t, "by_levels", None) else None
            groups[t.name] = GroupInfo(t.name, int(t.J), by,
                                       list(t.by_levels) if by else None)
        return cls(formula=design.formula.text, nobs=int(design.nobs),
                   response_names=list(design.response_names), groups=list(groups.values()),
                   n_dropped=int(getattr(design, "n_dropped", 0) or 0))

    def to_dict(self) -> dict:
        return {"formula": self.formula, "nobs": self.nobs,
                "response_names": self.response_names, "n_dropped": self.n_dropped,
                "groups": [{"name": g.name, "nlevels": g.nlevels, "by": g.by,
                            "by_levels": g.by_levels} for g in self.groups]}

    @classmethod
    def from_dict(cls, d: dict) -> "FitMeta":
        return cls(formula=d["formula"], nobs=int(d["nobs"]),
                   response_names=list(d["response_names"]), n_dropped=int(d.get("n_dropped", 0)),
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
    """

    def __init__(self, idata, design, family, priors, likelihood: str, info: dict | None = None,
                 *, data=None):
        self.idata = idata
        self.design = design
        self.family = family
        self.priors = priors
        self.likelihood = likelihood
        self.info = dict(info or {})
        self.data = data
        self._meta: FitMeta | None = FitMeta.from_design(design) if design is not None else None
        self._prior_table = None          # set by load(): the stored prior_summary
        self._index: ParamIndex | None = None
        self._summaries: dict = {}

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
        for f in fams:
            lk = getattr(f, "links", None)
            if not isinstance(lk, dict) or not lk:
                lk = {"mu": getattr(f, "link", "identity")}
            links.append("; ".join(f"{k} = {v}" for k, v in lk.items()))
        fam = names[0] if len(names) == 1 else f"MV({', '.join(names)})"
        return fam, links

    def _sampler_text(self) -> str:
        s = self.info.get("sampler")
        if not s:
            return "sampling(NUTS)"
        s = str(s)
        return s if "(" in s else f"{s}(NUTS)"

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
                prob=prob, digits=digits)
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

    def prior_summary(self):
        """brms' ``prior_summary()`` table."""
        if self._prior_table is not None:
            return self._prior_table.copy()
        return self.priors.summary()

    # -- display ------------------------------------------------------------------------
    def __repr__(self) -> str:
        return str(self.summary())

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()
