"""brms-style priors: ``prior("normal(0, 5)", class_="b", coef="Days")``, defaults, prior_summary.

Defaults follow brms (``get_prior``):

* ``Intercept`` (of the centred predictors): ``student_t(3, round(median(g(y)), 1), s)``;
* ``sd`` and ``sigma``: ``student_t(3, 0, s)``, half (lower bound 0);
* ``cor``, ``rescor`` and ``cortime`` (unstr()): ``lkj(1)``; ``b``: flat; ``nu``: ``gamma(2, 0.1)`` with lower bound 1;
  ``shape``: ``gamma(0.01, 0.01)``;

where ``s = max(2.5, round(mad(g(y)), 1))`` for links g among identity, log, inverse, sqrt (zeros
replaced by 0.1 for log and inverse), location 0 and s = 2.5 for the others: brms'
``def_scale_prior``, computed by each family (:mod:`mixedformula.families.base`).

Prior strings are parsed here (never evaluated): ``name(number, ...)`` with a name from
:data:`DISTRIBUTIONS`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .errors import PriorError

#: brms/Stan name → (number of arguments, positive support)
DISTRIBUTIONS = {
    "normal": (2, False), "student_t": (3, False), "cauchy": (2, False),
    "exponential": (1, True), "gamma": (2, True), "inv_gamma": (2, True),
    "lognormal": (2, True), "uniform": (2, False), "beta": (2, False), "lkj": (1, False),
    "lkj_corr_cholesky": (1, False), "flat": (0, False), "logistic": (2, False),
    "weibull": (2, True), "double_exponential": (2, False),
}
CLASSES = ("b", "Intercept", "sd", "cor", "sigma", "nu", "shape", "rescor", "phi", "zi", "hu",
           "zoi", "coi", "ndt", "beta", "alpha", "kappa", "ar", "ma", "cosy", "rho", "cortime")
_UNIT_SUPPORT = ("beta",)      # support (0, 1): a lower bound at or below 0 needs no truncation
_POSITIVE_CLASSES = {"sd": 0.0, "sigma": 0.0, "shape": 0.0, "nu": 1.0, "phi": 0.0, "zi": 0.0,
                     "hu": 0.0, "zoi": 0.0, "coi": 0.0, "ndt": 0.0, "beta": 0.0, "kappa": 0.0,
                     "cosy": 0.0}
_UPPER_BOUNDS = {"cosy": 1.0}      # brms' bounds shown by prior_summary (cosy in (0, 1))
_LKJ_CLASSES = ("cor", "rescor", "cortime")     # cortime: unstr()'s time correlations
_SPEC = re.compile(r"^\s*([A-Za-z_][A-Za-z_0-9]*)\s*\(([^()]*)\)\s*$")


@dataclass(frozen=True)
class Prior:
    """One prior statement, as brms' ``prior()`` / ``set_prior()``."""

    dist: str
    args: tuple[float, ...]
    class_: str = "b"
    coef: str = ""
    group: str = ""
    resp: str = ""
    dpar: str = ""

    def __str__(self) -> str:
        if self.dist == "flat":
            return "(flat)"
        return f"{self.dist}({', '.join(_fmt(a) for a in self.args)})"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"] = str(self)
        return d


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def parse_prior(spec: str) -> tuple[str, tuple[float, ...]]:
    """``"normal(0, 5)"`` → ``("normal", (0.0, 5.0))``; raises PriorError on anything else."""
    if not isinstance(spec, str):
        raise PriorError(f"a prior is a string like 'normal(0, 5)', not {spec!r}")
    if spec.strip() in ("", "(flat)", "flat"):
        return "flat", ()
    m = _SPEC.match(spec)
    if not m:
        raise PriorError(f"cannot read prior {spec!r}: write it like 'normal(0, 5)'")
    name, body = m.group(1), m.group(2)
    if name not in DISTRIBUTIONS:
        raise PriorError(f"unknown prior distribution {name!r} in {spec!r}; known: "
                         f"{', '.join(sorted(DISTRIBUTIONS))}")
    try:
        args = tuple(float(a) for a in body.split(",")) if body.strip() else ()
    except ValueError:
        raise PriorError(f"prior arguments must be numbers: {spec!r}") from None
    if len(args) != DISTRIBUTIONS[name][0]:
        raise PriorError(f"{name}() takes {DISTRIBUTIONS[name][0]} argument(s), "
                         f"{len(args)} given in {spec!r}")
    if not all(np.isfinite(args)):
        raise PriorError(f"prior arguments must be finite: {spec!r}")
    return name, args


def prior(spec: str, class_: str = "b", coef: str = "", group: str = "", resp: str = "",
          dpar: str = "") -> Prior:
    """A brms-style prior statement, e.g. ``prior("exponential(1)", class_="sd", group="g")``."""
    if class_ not in CLASSES:
        raise PriorError(f"unknown prior class {class_!r}; known: {', '.join(CLASSES)}")
    dist, args = parse_prior(spec)
    if class_ in _LKJ_CLASSES and dist not in ("lkj", "lkj_corr_cholesky"):
        raise PriorError(f"class {class_!r} takes an lkj(eta) prior, not {spec!r}")
    if class_ not in _LKJ_CLASSES and dist in ("lkj", "lkj_corr_cholesky"):
        raise PriorError(f"lkj() is a prior for class 'cor', 'rescor' or 'cortime' (unstr()), "
                         f"not {class_!r}")
    if dist == "flat" and class_ not in ("b", "ar", "ma", "cosy", "rho"):
        raise PriorError(f"a flat prior is only allowed for classes 'b', 'ar', 'ma', 'cosy' and "
                         f"'rho', not {class_!r}")
    if dist in ("lkj", "lkj_corr_cholesky"):
        dist = "lkj"
    return Prior(dist, args, class_, coef or "", group or "", resp or "", dpar or "")


@dataclass
class ResolvedPrior:
    """The prior of one model parameter (a row of prior_summary)."""

    prior: Prior
    class_: str
    coef: str = ""
    group: str = ""
    resp: str = ""
    dpar: str = ""
    source: str = "default"
    #: (lower, upper) of a parameter whose range is not its class's (``rho`` of a glmmTMB
    #: structure: ar1 (−1, 1), cs (−1/(Q − 1), 1)); None: the class's bounds
    bounds: tuple | None = None

    @property
    def lb(self) -> float | None:
        if self.bounds is not None:
            return self.bounds[0]
        return _POSITIVE_CLASSES.get(self.class_)

    @property
    def ub(self) -> float | None:
        if self.bounds is not None:
            return self.bounds[1]
        return _UPPER_BOUNDS.get(self.class_)


class PriorSet:
    """User priors plus brms defaults, resolved per parameter while the model is built."""

    def __init__(self, priors=None):
        if priors is None:
            priors = []
        if isinstance(priors, Prior):
            priors = [priors]
        self.user: list[Prior] = []
        for p in priors:
            if isinstance(p, dict):
                p = prior(p.get("spec") or p["prior"], p.get("class_", p.get("class", "b")),
                          p.get("coef", ""), p.get("group", ""), p.get("resp", ""),
                          p.get("dpar", ""))
            if not isinstance(p, Prior):
                raise PriorError(f"priors must be made with mf.prior(...), got {p!r}")
            self.user.append(p)
        self.rows: list[ResolvedPrior] = []
        self._used: set[int] = set()

    @classmethod
    def from_strings(cls, items: list[dict]) -> "PriorSet":
        return cls(items)

    def to_strings(self) -> list[dict]:
        return [p.to_dict() for p in self.user]

    def resolve(self, class_: str, default: Prior, coef: str = "", group: str = "",
                resp: str = "", dpar: str = "") -> ResolvedPrior:
        """Most specific user prior for this parameter (coef > group > class), else default."""
        best, best_score = None, -1
        for i, p in enumerate(self.user):
            if p.class_ != class_:
                continue
            if p.resp and p.resp != resp:
                continue
            if (p.dpar or "") != (dpar or ""):   # dpar = "sigma": its formula's b, Intercept, sd
                continue
            if p.coef and p.coef != coef:
                continue
            if p.group and p.group != group:
                continue
            score = 2 * bool(p.coef) + bool(p.group) + bool(p.resp)
            if score > best_score:
                best, best_score, best_i = p, score, i
        if best is None:
            row = ResolvedPrior(default, class_, coef, group, resp, dpar, "default")
        else:
            self._used.add(best_i)
            row = ResolvedPrior(best, class_, coef, group, resp, dpar, "user")
        self.rows.append(row)
        return row

    def check_all_used(self) -> None:
        """brms refuses priors that match no parameter; so do we."""
        unused = [p for i, p in enumerate(self.user) if i not in self._used]
        if unused:
            p = unused[0]
            where = ", ".join(f"{k}={v!r}" for k, v in
                              (("class", p.class_), ("coef", p.coef), ("group", p.group),
                               ("resp", p.resp), ("dpar", p.dpar)) if v)
            raise PriorError(f"prior {p} ({where}) does not match any parameter of the model")

    def summary(self) -> pd.DataFrame:
        """The table brms' ``prior_summary()`` prints."""
        out = []
        for r in self.rows:
            out.append({"prior": str(r.prior), "class": r.class_, "coef": r.coef,
                        "group": r.group, "resp": r.resp, "dpar": r.dpar,
                        "lb": "" if r.lb is None else _fmt(r.lb),
                        "ub": "" if r.ub is None else _fmt(r.ub),
                        "source": r.source})
        return pd.DataFrame(out, columns=["prior", "class", "coef", "group", "resp", "dpar",
                                          "lb", "ub", "source"])


# -- PyMC distributions ---------------------------------------------------------------------

def _stack(values):
    return np.asarray(values, dtype=float)


#: Stan name → (PyMC class, PyMC parameter names in Stan's argument order)
_PYMC_DISTS = {
    "exponential": ("Exponential", ("lam",)), "gamma": ("Gamma", ("alpha", "beta")),
    "inv_gamma": ("InverseGamma", ("alpha", "beta")), "lognormal": ("LogNormal", ("mu", "sigma")),
    "beta": ("Beta", ("alpha", "beta")), "logistic": ("Logistic", ("mu", "s")),
    "double_exponential": ("Laplace", ("mu", "b")), "weibull": ("Weibull", ("alpha", "beta")),
}


#: Name prefix of the shared variables holding prior arguments (``<prefix><parameter>__mu``):
#: the PyMC backend's prefix of re-fittable data (``build.DATA_PREFIX`` = ``"data__"``), so that
#: brms' data-dependent default priors (``student_t(3, median(y), mad(y))``, the sd and sigma
#: scales) are values fed to a compiled model, not part of its structure.
PRIOR_DATA_PREFIX = "data__prior__"
#: Arguments held as shared data: the location and scale of the location-scale priors (the
#: ones brms' data-dependent defaults use); degrees of freedom and the other families'
#: arguments stay graph constants.
_DATA_ARGS = {"normal": (0, 1), "student_t": (1, 2), "cauchy": (0, 1)}


def pymc_dist(priors: list[Prior], lower: float | None = None, shape=None,
              upper: float | None = None, data: str | None = None):
    """An unnamed PyMC distribution (``.dist``) for one or several parameters with priors of the
    same family (parameters vectorised). ``lower`` = 0 gives brms' half distributions; ``upper``
    truncates above (zi, hu in (0, 1), ndt below min y) unless the prior's support already
    ends there (beta ≤ 1, uniform ≤ upper).

    ``data``: a name (the parameter's); then the location and scale of a normal, student_t or
    cauchy prior are shared variables of the current model, ``PRIOR_DATA_PREFIX + data +
    "__" + k`` (k the argument's position), instead of constants: a model of the same
    structure fitted to other data reuses the compiled one (brms' default priors change with
    the data).  Which distribution is used (half or truncated) still follows the values."""
    import pymc as pm
    names = {p.dist for p in priors}
    if len(names) != 1:
        raise PriorError("parameters drawn together (one correlated block) need priors of one "
                         f"family; got {', '.join(sorted(names))}")
    dist = priors[0].dist
    a = [_stack([p.args[k] for p in priors]) for k in range(len(priors[0].args))]
    a = [x[0] if len(priors) == 1 and shape is None else x for x in a]
    kw = {} if shape is None else {"shape": shape}
    location = {"normal": 0, "student_t": 1, "cauchy": 0}.get(dist)
    at_zero = lower == 0.0 and location is not None and bool(np.all(a[location] == 0))
    if data is not None:          # the half distributions have no location argument
        held = [k for k in _DATA_ARGS.get(dist, ()) if not (at_zero and k == location)]
        if held and np.any(a[held[-1]] <= 0):
            # the sampler drops PyMC's scale > 0 checks on these shared arguments
            # (backends/pymc/prior_checks.py): refuse here what they would have caught
            raise PriorError(f"the scale of prior {priors[0]} must be positive")
        a = [pm.Data(f"{PRIOR_DATA_PREFIX}{data}__{k}", np.asarray(x, dtype=float))
             if k in held else x for k, x in enumerate(a)]
    if dist == "normal":
        if at_zero:
            return pm.HalfNormal.dist(sigma=a[1], **kw)
        base = pm.Normal.dist(mu=a[0], sigma=a[1], **kw)
    elif dist == "student_t":
        if at_zero:
            return pm.HalfStudentT.dist(nu=a[0], sigma=a[2], **kw)
        base = pm.StudentT.dist(nu=a[0], mu=a[1], sigma=a[2], **kw)
    elif dist == "cauchy":
        if at_zero:
            return pm.HalfCauchy.dist(beta=a[1], **kw)
        base = pm.Cauchy.dist(alpha=a[0], beta=a[1], **kw)
    elif dist == "uniform":
        if upper is not None and np.any(a[1] > upper) or lower is not None and \
                np.any(a[0] < lower):
            raise PriorError(f"prior uniform({a[0]}, {a[1]}) reaches outside the parameter's "
                             f"bounds ({lower}, {upper})")
        return pm.Uniform.dist(lower=a[0], upper=a[1], **kw)
    elif dist in _PYMC_DISTS:
        cls_name, params = _PYMC_DISTS[dist]
        base = getattr(pm, cls_name).dist(**dict(zip(params, a)), **kw)
    elif dist == "flat":
        return pm.Flat.dist(**kw)
    else:
        raise PriorError(f"prior {dist!r} cannot be used here")
    positive_support = DISTRIBUTIONS[dist][1] or dist in _UNIT_SUPPORT
    need_lower = lower is not None and not (positive_support and lower <= 0.0)
    need_upper = upper is not None and not (dist in _UNIT_SUPPORT and upper >= 1.0)
    if need_lower or need_upper:
        return pm.Truncated.dist(base, lower=lower if need_lower else None,
                                 upper=upper if need_upper else None)
    return base


def pymc_rv(name: str, priors: list[Prior], lower: float | None = None, dims=None, shape=None,
            upper: float | None = None):
    """A named random variable in the current model with the given prior(s); their location
    and scale are shared data named after it (see :func:`pymc_dist`)."""
    import pymc as pm
    return pm.modelcontext(None).register_rv(pymc_dist(priors, lower, shape=shape, upper=upper,
                                                       data=name),
                                             name, dims=dims)
