r"""The :class:`Family` interface every response family implements, and brms' default-prior rule.

A family is one object with one link for μ (``family.link``); everything that depends on which
family it is lives in its module (``families/<name>.py``), never in a switch on the name:

* numpy: ``logpdf(y, eta, params, trials)`` (log space, from η, stable for extreme η),
  ``rvs(mu, params, rng, trials)``, ``mean(mu, params, trials)``, ``variance(mu, params, trials)``
  (response scale, μ = g⁻¹(η)); ``params`` maps the family's further parameters (``dpars``:
  sigma, nu, shape) to arrays that broadcast against μ;
* links: ``inverse_link`` / ``inverse_link_tensor`` / ``link_fn`` (:mod:`.links`);
* ``working_weights(y, trials)``: GLM working weights at the intercept-only fit (the Fisher
  information per row about η), or None where the family has no rule;
* maximum likelihood (``mf.glmer``): ``ml_glmm`` (the family has an ML path: its further
  parameters, if any, are positive and estimated on the log scale), ``score_information(y, eta,
  params, trials, observed)`` → (∂ log p/∂η, the Fisher or observed information about η) per
  row for PIRLS, ``ml_start(y, trials)`` (starting values of the further parameters);
* ``check_response(y, trials, response)``: FamilyError before sampling when y cannot come from
  the family;
* priors: ``default_intercept``, ``default_sd_scale``, ``default_prior(dpar)`` (brms' defaults);
* PyMC: ``pymc_likelihood(name, eta, params, observed, trials, dims)`` adds the observed
  variable to the current model.

brms' default-prior rule (``def_scale_prior`` in brms' R/priors.R, brms 2.22): with the link g of
the parameter (``log`` for families with brms' "logscale" special, i.e. lognormal) and g one of
identity, log, inverse, sqrt: y' = y with zeros replaced by 0.1 for log and inverse,
``scale = max(2.5, round(mad(g(y')), 1))`` and, for the Intercept (not centred at 0),
``location = round(median(g(y')), 1)``, each kept only when finite; any other link (logit,
probit, cloglog) gives ``student_t(3, 0, 2.5)``. The link is μ's for the Intercept and the group
sds; for sigma (not itself predicted) it is the identity (log for lognormal). ``round`` is R's
(:func:`r_round`), ``mad`` R's (1.4826 × median absolute deviation).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..errors import FamilyError
from ..priors import Prior
from .links import Link, get_link

#: families with a log CDF (``Family.log_cdf``: cens(), trunc(); families/censoring.py)
CDF_FAMILIES = ("gaussian", "student", "lognormal", "gamma", "weibull", "exponential",
                "poisson", "negbinomial")

#: links for which brms computes the default location/scale from the response (R/priors.R)
DATA_LINKS = ("identity", "log", "inverse", "sqrt")

#: brms' default priors of further parameters on their identity link (R/priors.R, def_dprior)
DPAR_PRIORS = {"shape": ("gamma", (0.01, 0.01)), "nu": ("gamma", (2.0, 0.1)),
               "phi": ("gamma", (0.01, 0.01)), "kappa": ("gamma", (2.0, 0.01)),
               "beta": ("gamma", (1.0, 0.1)), "zi": ("beta", (1.0, 1.0)),
               "hu": ("beta", (1.0, 1.0)), "zoi": ("beta", (1.0, 1.0)),
               "coi": ("beta", (1.0, 1.0)), "alpha": ("normal", (0.0, 4.0))}
#: brms' bounds of further parameters (R/priors.R, dpar_bounds); ndt's upper bound is min y
DPAR_BOUNDS = {"sigma": (0.0, None), "shape": (0.0, None), "nu": (1.0, None),
               "phi": (0.0, None), "kappa": (0.0, None), "beta": (0.0, None),
               "zi": (0.0, 1.0), "hu": (0.0, 1.0), "zoi": (0.0, 1.0), "coi": (0.0, 1.0),
               "alpha": (None, None)}

#: brms' links of distributional parameters that have a formula (``sigma ~ x``; R/families.R,
#: ``link_sigma = "log"``, ``link_nu = "logm1"``, ``link_zi = "logit"``, ...)
DPAR_LINKS = {"sigma": "log", "shape": "log", "nu": "logm1", "phi": "log", "kappa": "log",
              "beta": "log", "ndt": "log", "disc": "log", "bs": "log", "xi": "identity",
              "zi": "logit", "hu": "logit", "zoi": "logit", "coi": "logit",
              "quantile": "logit", "alpha": "identity"}


def r_round(x: float, digits: int = 1) -> float:
    """R's ``round(x, digits)`` (R ≥ 4.0.0, src/nmath/fround.c): of the two neighbours
    floor(x·10ᵈ)/10ᵈ and ceil(x·10ᵈ)/10ᵈ the one closer to x in double arithmetic, a tie to
    the even last digit (``round(0.15, 1)`` = 0.1, ``round(2.45, 1)`` = 2.5, as R gives)."""
    x = float(x)
    if not math.isfinite(x) or x == 0.0:
        return x
    sgn = 1.0
    if x < 0:
        sgn, x = -1.0, -x
    if math.log10(x) + digits > 15:
        return sgn * x
    p10 = 10.0 ** digits
    x10 = p10 * x
    i10 = math.floor(x10)
    xd, xu = i10 / p10, math.ceil(x10) / p10
    du, dd = xu - x, x - xd
    return sgn * (xu if (du < dd or (du == dd and i10 % 2 == 1)) else xd)


def r_mad(x: np.ndarray) -> float:
    """R's ``mad``: 1.4826 × median |x − median(x)| (NaN if any x is NaN)."""
    x = np.asarray(x, dtype=float)
    med = np.median(x)
    return float(1.4826 * np.median(np.abs(x - med)))


def brms_scale_prior(y, link: str, centre: tuple[float, float] | None = None,
                     location: bool = False) -> tuple[float, float]:
    """(location, scale) of brms' default ``student_t(3, location, scale)`` (module docstring).

    ``location=False`` gives location 0 (sd and sigma priors). ``centre = (median, MAD)`` of y,
    when y is not in memory (Dask statistics), replaces y for the identity link."""
    loc, scale = 0.0, 2.5
    if link not in DATA_LINKS:
        return loc, scale
    if centre is not None and link == "identity":
        med, mad = float(centre[0]), float(centre[1])
    else:
        y = np.asarray(y, dtype=float).reshape(-1)
        if y.size == 0:
            return loc, scale
        if link in ("log", "inverse"):
            y = np.where(y == 0, y + 0.1, y)
        with np.errstate(divide="ignore", invalid="ignore"):
            yl = get_link(link).fn(y)
        med, mad = float(np.median(yl)), r_mad(yl)
    s = r_round(mad, 1)
    if math.isfinite(s):
        scale = max(scale, s)
    if location:
        m = r_round(med, 1)
        if math.isfinite(m):
            loc = m
    return loc, scale


class Family:
    """A response family with one link for μ; subclasses set the class attributes and
    implement the numpy and PyMC methods (see the module docstring)."""

    name: ClassVar[str] = ""
    default_link: ClassVar[str] = "identity"
    allowed_links: ClassVar[tuple[str, ...]] = ()
    dpars: ClassVar[tuple[str, ...]] = ()          # further parameters besides mu
    aliases: ClassVar[tuple[str, ...]] = ()
    discrete: ClassVar[bool] = False              # integer response (ppc plots, checks)
    uses_trials: ClassVar[bool] = False           # y | trials(n)
    logscale: ClassVar[bool] = False              # brms' "logscale" special (lognormal)
    mean_dpars: ClassVar[tuple[str, ...]] = ()    # dpars that ``mean`` needs
    #: dpars held at a constant unless they have their own formula (brms: the ordinal
    #: families' ``disc`` is 1 unless ``disc ~ ...`` is given); never sampled as scalars
    fixed_dpars: ClassVar[dict[str, float]] = {}
    #: where μ must lie (the mean of Poisson, negbinomial, gamma is positive)
    mu_domain: ClassVar[tuple[float, float]] = (-np.inf, np.inf)
    #: the family has a maximum-likelihood GLMM path (``mf.glmer``)
    ml_glmm: ClassVar[bool] = False
    #: information about η in PIRLS and the Laplace determinant: "expected" (Fisher's, lme4)
    #: or "observed" (TMB / glmmTMB)
    laplace_information: ClassVar[str] = "expected"
    #: brms' bayes_R2 uses Var(y | μ, θ) as the residual variance (gaussian, bernoulli)
    bayes_r2_model: ClassVar[bool] = False
    #: emmeans' name of a mean on the response scale (its ``inv.lbl``: "prob" for binomial
    #: families, "rate" for Poisson, else "response")
    emmeans_label: ClassVar[str] = "response"

    def r2_distribution_variance(self, null_mean) -> float | None:
        """The distribution-specific variance σ²_d of Nakagawa's R² for GLMMs on the link
        scale (Nakagawa, Johnson & Schielzeth 2017, as ``performance::r2_nakagawa``); None where
        this family has none. ``null_mean()`` returns g⁻¹ of the intercept of the model with the
        same random part and no predictors (computed only when asked for)."""
        return None

    #: ordinal families (families/ordinal.py): the intercept is replaced by K − 1 thresholds,
    #: the further parameter ``thres`` (posterior ``b_Intercept[1]``, ...), and ``mean`` gives
    #: the K category probabilities on a last axis
    thresholds: ClassVar[bool] = False
    ordered_thresholds: ClassVar[bool] = False
    allows_cs: ClassVar[bool] = False

    def response_data(self, values, name: str):
        """The response column as floats before the design is built, with its category labels
        (None: not categorical); the default leaves it to the design (numeric only)."""
        return None, None

    @property
    def recodes_response(self) -> bool:
        """The response is recoded by :meth:`response_data` before the design is built
        (ordinal and categorical families)."""
        return self.thresholds

    #: keyword arguments of the family call besides the link, given to the constructor
    #: (``"categorical(refcat = 'C')"``; :func:`~.registry.get_family`)
    family_arguments: ClassVar[tuple[str, ...]] = ()
    #: brms allows residual correlations (rescor) between responses of this family
    allows_rescor: ClassVar[bool] = False

    def for_response(self, labels) -> "Family":
        """The family for a response with these category labels (from :meth:`response_data`;
        categorical: one linear predictor per non-reference category); default: itself."""
        return self

    def response(self, k: int) -> "Family":
        """The family of response k of a multivariate model: this one (one family for every
        response; :class:`~.multivariate.MultivariateFamily` has one per response)."""
        return self

    def formula_for(self, spec):
        """The formula this family fits for the user's ``spec`` (categorical: the formula
        copied to each category's predictor, families/categorical.py); default: ``spec``."""
        return spec

    def state(self) -> dict:
        """What, besides name and link, makes this family object (stored by save; categorical:
        its categories); :meth:`with_state` rebuilds it."""
        return {}

    def with_state(self, state: dict) -> "Family":
        return self

    def response_values(self, codes):
        """Simulated responses as the user's data hold them (categorical: the category
        labels); default: the numbers themselves."""
        return codes

    def mean_categories(self, n_thresholds: int = 0) -> list[str] | None:
        """Labels of the category axis of :meth:`mean` (brms' posterior_epred S × N × K), or
        None when the mean is one value; ordinal families: "1".."K" from the thresholds."""
        if not self.thresholds:
            return None
        return [str(k) for k in range(1, n_thresholds + 2)]

    #: the lower end of y's support (0 for positive and count families): a truncation bound
    #: at or below it is no bound (families/censoring.py)
    support_lower: ClassVar[float] = -np.inf

    #: brms' residual autocorrelation terms this family fits (identity link only): "ar"
    #: (regression form on y − η), "arma" (arma()/ma(): the same with brms' sequential MA
    #: errors), "cosy" (compound-symmetric residuals)
    autocor_terms: ClassVar[tuple[str, ...]] = ()

    def __init__(self, link: str | None = None):
        link = self.default_link if link is None else link
        if link not in self.allowed_links:
            raise FamilyError(f"link {link!r} is not available for family {self.name!r} "
                              f"(allowed: {', '.join(self.allowed_links)})")
        self._link = link

    # ------------------------------------------------------------------ identity
    @property
    def link(self) -> str:
        return self._link

    @property
    def links(self) -> dict[str, str]:
        return {"mu": self._link}

    @property
    def link_obj(self) -> Link:
        return get_link(self._link)

    @property
    def gaussian(self) -> bool:
        """The response is Normal given η (any link)."""
        return False

    @property
    def linear_gaussian(self) -> bool:
        """y ~ N(η, σ²): Gaussian with identity link (the marginal engine and REML apply)."""
        return self.gaussian and self._link == "identity"

    def with_link(self, link: str | None) -> "Family":
        return self if link is None or link == self._link else type(self)(link)

    def __eq__(self, other) -> bool:
        return isinstance(other, Family) and (self.name, self.link) == (other.name, other.link)

    def __hash__(self) -> int:
        return hash((self.name, self.link))

    def __repr__(self) -> str:
        return f"Family(name={self.name!r}, link={self.link!r}, dpars={self.dpars!r})"

    # ------------------------------------------------------------------ links
    def inverse_link(self, eta):
        """μ = g⁻¹(η), numpy."""
        return self.link_obj.inverse(eta)

    def inverse_link_tensor(self, eta):
        """μ = g⁻¹(η), PyTensor."""
        return self.link_obj.inverse_tensor(eta)

    def link_fn(self, mu):
        """η = g(μ), numpy."""
        return self.link_obj.fn(mu)

    @property
    def link_can_leave_domain(self) -> bool:
        """Whether g⁻¹ maps some real η outside the family's μ domain (Poisson with identity
        link: η < 0; gamma with inverse link: η < 0)."""
        lo, hi = self.link_obj.mu_range
        dlo, dhi = self.mu_domain
        return lo < dlo or hi > dhi

    def check_mean(self, mu) -> np.ndarray:
        """μ as an array; FamilyError naming the count when some μ lie outside the family's
        domain (e.g. a negative Poisson mean from the identity link)."""
        mu = np.asarray(mu, dtype=float)
        lo, hi = self.mu_domain
        bad = ~((mu >= lo) & (mu <= hi))
        if bad.any():
            raise FamilyError(
                f"family {self.name!r} with link {self.link!r}: {int(bad.sum())} of {bad.size} "
                f"values of the mean g⁻¹(η) lie outside [{lo:g}, {hi:g}] (e.g. {mu[bad][0]!r}); "
                "responses cannot be drawn there (the link does not keep the mean in range: "
                f"use link={self.default_link!r} or priors that keep η inside)")
        return mu

    # ------------------------------------------------------------------ numpy
    def logpdf(self, y, eta, params: dict | None = None, trials=None) -> np.ndarray:
        """log p(y | η, params), elementwise (broadcasting)."""
        raise NotImplementedError

    def rvs(self, mu, params: dict | None, rng: np.random.Generator, trials=None) -> np.ndarray:
        """One draw of y per element of μ."""
        raise NotImplementedError

    def truncated_rvs(self, mu, params: dict | None, lb, ub, rng: np.random.Generator,
                      trials=None) -> np.ndarray | None:
        """One draw of y restricted to [lb, ub] per element of μ by the inverse CDF, or None
        when the family has none (callers then draw again until inside the bounds)."""
        return None

    def mean(self, mu, params: dict | None = None, trials=None):
        """E[y | μ, params] (brms' posterior_epred)."""
        return mu

    def variance(self, mu, params: dict | None = None, trials=None):
        """Var[y | μ, params]."""
        raise NotImplementedError

    def truncated_mean(self, mu, params: dict, lb, ub, trials=None):
        """E[y | μ, params, lb ≤ y ≤ ub]: brms' posterior_epred of a ``trunc()`` model
        (its ``posterior_epred_trunc_<family>``); families with a closed form override it."""
        raise FamilyError(f"the expected value of a truncated {self.name!r} model "
                          "(kind='epred' with trunc()) is not implemented here; response "
                          "draws (kind='response') respect the bounds")

    def working_weights(self, y: np.ndarray, trials) -> np.ndarray | None:
        """GLM working weights at the intercept-only fit, or None (no rule: non-centred)."""
        return None

    def dpar_working_weight(self, dpar: str) -> float | None:
        """Fisher information per row about the linear predictor of distributional parameter
        ``dpar`` (its own formula, on brms' link) when it does not depend on the data, or
        None (no rule: its group effects stay non-centred)."""
        return None

    def score_information(self, y, eta, params: dict | None = None, trials=None,
                          observed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        r"""(s, w) per row: the score s = ∂ log p(y | η)/∂η and the information about η,
        Fisher's w = (∂E y/∂η)² / Var y (``observed=False``, what lme4's PIRLS uses) or the
        observed −∂² log p/∂η² (``observed=True``, what TMB's Laplace approximation uses).

        Generic exponential-family form, valid when E y is linear in μ (μ, or n μ for the
        binomial) and the further parameters are held fixed: with m = E y, V = Var y,
        s = (y − m)(∂m/∂η)/V; rows where V = 0 (μ at the edge of its range) get s = w = 0.
        The observed information is −∂s/∂η by central differences (h = 10⁻⁵(1 + |η|)),
        equal to Fisher's for canonical links; families override it with exact forms."""
        eta = np.asarray(eta, dtype=float)
        if observed:
            h = 1e-5 * (1.0 + np.abs(eta))
            s = self.score_information(y, eta, params, trials)[0]
            sp_ = self.score_information(y, eta + h, params, trials)[0]
            sm = self.score_information(y, eta - h, params, trials)[0]
            return s, -(sp_ - sm) / (2 * h)
        mu = self.inverse_link(eta)
        dmu = self.link_obj.dmu_deta(mu)
        m = self.mean(mu, params, trials)
        dm = self.mean(dmu, params, trials)
        V = np.asarray(self.variance(mu, params, trials), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(V > 0, dm / V, 0.0)
        return (y - m) * ratio, dm * ratio

    def ml_start(self, y, trials=None) -> dict:
        """Starting values of the further parameters for maximum likelihood ({} if none)."""
        if self.dpars:
            raise NotImplementedError(f"family {self.name!r} has no ML starting values")
        return {}

    def _check_y(self, y: np.ndarray, trials, fail) -> None:
        """Family-specific checks of y; ``fail(what, bad_mask)`` raises."""

    def check_response(self, y: np.ndarray, trials: np.ndarray | None, response: str) -> None:
        """Raise FamilyError, before any sampling, when y cannot come from this family."""
        y = np.asarray(y, dtype=float)
        name = self.name

        def fail(what: str, bad: np.ndarray) -> None:
            idx = np.nonzero(bad)[0]
            raise FamilyError(f"family {name!r} needs {what}; response {response!r} has "
                              f"{len(idx)} value(s) that are not (first at row {idx[0]}: "
                              f"{y[idx[0]]!r})")

        if trials is not None and not self.uses_trials:
            raise FamilyError(f"trials() only goes with family 'binomial', not {name!r}")
        self._check_y(y, trials, fail)

    # ------------------------------------------------------------------ priors
    def default_intercept(self, y, centre: tuple[float, float] | None = None) -> Prior:
        """brms' default Intercept prior ``student_t(3, location, scale)`` (module docstring)."""
        link = "log" if self.logscale else self._link
        loc, scale = brms_scale_prior(y, link, centre, location=True)
        return Prior("student_t", (3.0, loc, scale), "Intercept")

    def default_sd_scale(self, y, centre: tuple[float, float] | None = None) -> float:
        """Scale of brms' default sd prior ``student_t(3, 0, scale)`` (μ's link)."""
        link = "log" if self.logscale else self._link
        return brms_scale_prior(y, link, centre)[1]

    def default_prior(self, dpar: str, y=None, centre=None) -> Prior:
        """brms' default prior of a further parameter (sigma from the data; the others from
        :data:`DPAR_PRIORS`; ndt: uniform(0, min y))."""
        if dpar == "sigma":
            link = "log" if self.logscale else "identity"
            return Prior("student_t", (3.0, 0.0, brms_scale_prior(y, link, centre)[1]), "sigma")
        if dpar == "ndt":
            return Prior("uniform", (0.0, self.dpar_bounds("ndt", y)[1]), "ndt")
        if dpar in DPAR_PRIORS:
            dist, args = DPAR_PRIORS[dpar]
            return Prior(dist, args, dpar)
        raise FamilyError(f"family {self.name!r} has no parameter {dpar!r}")

    def dpar_link(self, dpar: str) -> str:
        """brms' link of ``dpar`` when it has its own formula (:data:`DPAR_LINKS`)."""
        if dpar not in self.dpars:
            raise FamilyError(f"family {self.name!r} has no parameter {dpar!r} (its "
                              f"distributional parameters: "
                              f"{', '.join(self.dpars) if self.dpars else 'none'})")
        return DPAR_LINKS.get(dpar, "identity")

    def summary_links(self, dpars) -> dict[str, str]:
        """The summary's ``Links:`` entries of parameters with a formula (brms' names)."""
        return {d: self.dpar_link(d) for d in dpars}

    def default_dpar_intercept(self, dpar: str) -> Prior:
        """brms' default prior of the intercept of ``dpar``'s formula (``get_prior``,
        brms 2.18): logistic(0, 1) on the logit scale (zi, hu, zoi, coi), normal(2.7, 0.8) for
        nu (logm1 link), normal(0, 1) for the ordinal disc (log link; brms keeps the intercept
        of ``disc ~ z`` and identifies it by this prior), else student_t(3, 0, 2.5)."""
        link = self.dpar_link(dpar)
        if dpar == "disc":          # brms 2.18: Intercept_disc ~ normal(0, 1) (log scale)
            return Prior("normal", (0.0, 1.0), "Intercept")
        if link == "logit":
            return Prior("logistic", (0.0, 1.0), "Intercept")
        if link == "logm1":
            return Prior("normal", (2.7, 0.8), "Intercept")
        return Prior("student_t", (3.0, 0.0, 2.5), "Intercept")

    def dpar_bounds(self, dpar: str, y=None) -> tuple[float | None, float | None]:
        """(lower, upper) bound of a further parameter, brms' (R/priors.R): sigma, shape, phi,
        kappa, beta > 0; nu > 1; zi, hu, zoi, coi in (0, 1); ndt in (0, min y); None: unbounded."""
        if dpar == "ndt":
            y = np.asarray(y, dtype=float).reshape(-1) if y is not None else np.empty(0)
            if y.size == 0:
                raise FamilyError(f"family {self.name!r}: the bound of ndt (min y) needs the "
                                  "response values")
            return 0.0, float(np.min(y))
        return DPAR_BOUNDS.get(dpar, (None, None))

    # ------------------------------------------------------------------ CDF (cens, trunc)
    @property
    def has_cdf(self) -> bool:
        """The family has :meth:`log_cdf` (cens() and trunc() apply)."""
        return type(self).log_cdf is not Family.log_cdf

    def log_density(self, o, y, eta, params: dict, trials=None):
        """log p(y | η, params) with the arithmetic of ``o`` (numpy or PyTensor, see
        :mod:`.logdensity`); the families with :meth:`log_cdf` implement it."""
        raise self.no_cdf("cens()/trunc()/weights()/se()")

    def log_cdf(self, o, y, eta, params: dict, trials=None):
        """(log P(Y ≤ y), log P(Y > y)) with the arithmetic of ``o`` (numpy or PyTensor),
        each computed in log space (families/censoring.py has the pieces)."""
        raise self.no_cdf("cens()/trunc()")

    def no_cdf(self, what: str) -> FamilyError:
        return FamilyError(f"{what} need(s) the family's cumulative distribution function, "
                           f"which family {self.name!r} does not have here; available for "
                           f"{', '.join(CDF_FAMILIES)}")

    # ------------------------------------------------------------------ PyMC
    def y_constant(self, y: np.ndarray, trials=None) -> np.ndarray | None:
        """The term of log p(y) that depends on y alone (−log y! of the count families), one
        value per row, or None when there is none (the default).  The model builder computes
        it once with numpy and hands it to :meth:`pymc_likelihood` as shared data
        (``y_const``), so the sampler does not re-evaluate it at every gradient; ``logpdf``
        keeps computing the full normalised value."""
        return None

    def pymc_likelihood(self, name: str, eta, params: dict, observed, trials=None,
                        dims="obs", y_const=None):
        """Add ``name`` ~ family(g⁻¹(η), params) observed at ``observed`` to the current model.

        ``observed`` is a shared variable (``pm.Data``, the conditional engine's re-fittable
        data) unless ``trials`` is given: use it symbolically, never as a numpy array.
        ``y_const``: :meth:`y_constant` of the observed values as a shared variable (given
        only by families that define it), to be added in place of computing that term."""
        raise NotImplementedError
