"""Response families and links (brms names and parametrisations).

==============  ==========  =================================================================
family          mu link     likelihood (brms parametrisation)
==============  ==========  =================================================================
gaussian        identity    y ~ Normal(mu, sigma)
student         identity    y ~ StudentT(nu, mu, sigma)
lognormal       identity    log y ~ Normal(mu, sigma)
bernoulli       logit       y ~ Bernoulli(inv_link(eta))
binomial        logit       y ~ Binomial(trials, inv_link(eta))      (``y | trials(n) ~ ...``)
poisson         log         y ~ Poisson(exp(eta))
negbinomial     log         y ~ NegBinomial(mu = exp(eta), shape)    (Var = mu + mu²/shape)
gamma           log         y ~ Gamma(shape, rate = shape / mu)      (brms' default link is
                                                                     inverse; log is the
                                                                     numerically safe choice,
                                                                     pass link="inverse" for brms')
==============  ==========  =================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import FamilyError

_LINKS = {
    "identity": (lambda x: x, lambda x: x),
    "log": (np.log, np.exp),
    "logit": (lambda p: np.log(p) - np.log1p(-p), lambda x: 1.0 / (1.0 + np.exp(-x))),
    "probit": (None, None),
    "cloglog": (lambda p: np.log(-np.log1p(-p)), lambda x: 1.0 - np.exp(-np.exp(x))),
    "inverse": (lambda x: 1.0 / x, lambda x: 1.0 / x),
    "sqrt": (np.sqrt, np.square),
}


def inverse_link_numpy(link: str):
    if link == "probit":
        from scipy.special import ndtr
        return ndtr
    return _LINKS[link][1]


def inverse_link_tensor(link: str, eta):
    import pytensor.tensor as pt
    if link == "identity":
        return eta
    if link == "log":
        return pt.exp(eta)
    if link == "logit":
        return pt.sigmoid(eta)
    if link == "probit":
        return 0.5 * (1.0 + pt.erf(eta / np.sqrt(2.0)))
    if link == "cloglog":
        return 1.0 - pt.exp(-pt.exp(eta))
    if link == "inverse":
        return 1.0 / eta
    if link == "sqrt":
        return pt.sqr(eta)
    raise FamilyError(f"unknown link {link!r}")


@dataclass(frozen=True)
class Family:
    """A response family: its name, the link of mu, and its further distributional parameters."""

    name: str
    link: str
    dpars: tuple[str, ...] = ()           # further parameters besides mu: sigma, nu, shape
    allowed_links: tuple[str, ...] = field(default=(), repr=False)

    @property
    def links(self) -> dict[str, str]:
        return {"mu": self.link}

    @property
    def gaussian(self) -> bool:
        return self.name == "gaussian"

    def check_response(self, y: np.ndarray, trials: np.ndarray | None, response: str) -> None:
        """Raise FamilyError, before any sampling, when y cannot come from this family."""
        y = np.asarray(y, dtype=float)
        name = self.name

        def fail(what: str, bad: np.ndarray) -> None:
            idx = np.nonzero(bad)[0]
            raise FamilyError(f"family {name!r} needs {what}; response {response!r} has "
                              f"{len(idx)} value(s) that are not (first at row {idx[0]}: "
                              f"{y[idx[0]]!r})")

        if name == "bernoulli":
            bad = ~np.isin(y, (0.0, 1.0))
            if bad.any():
                fail("0/1 values", bad)
        if name in ("poisson", "negbinomial", "binomial"):
            bad = (y < 0) | (y != np.round(y))
            if bad.any():
                fail("non-negative whole counts", bad)
        if name == "binomial":
            if trials is None:
                raise FamilyError("family 'binomial' needs the number of trials: write "
                                  "y | trials(n) ~ ... (use 'bernoulli' for 0/1 data)")
            t = np.asarray(trials, dtype=float)
            bad = (t < 0) | (t != np.round(t))
            if bad.any():
                raise FamilyError("trials(n) must be non-negative whole numbers")
            over = y > t
            if over.any():
                fail("counts no larger than trials(n)", over)
        elif trials is not None:
            raise FamilyError(f"trials() only goes with family 'binomial', not {name!r}")
        if name in ("gamma", "lognormal"):
            bad = y <= 0
            if bad.any():
                fail("positive values", bad)


_FAMILIES = {
    "gaussian": Family("gaussian", "identity", ("sigma",), ("identity", "log", "inverse")),
    "student": Family("student", "identity", ("sigma", "nu"), ("identity", "log", "inverse")),
    "lognormal": Family("lognormal", "identity", ("sigma",), ("identity", "inverse")),
    "bernoulli": Family("bernoulli", "logit", (), ("logit", "probit", "cloglog")),
    "binomial": Family("binomial", "logit", (), ("logit", "probit", "cloglog")),
    "poisson": Family("poisson", "log", (), ("log", "identity", "sqrt")),
    "negbinomial": Family("negbinomial", "log", ("shape",), ("log", "identity", "sqrt")),
    "gamma": Family("gamma", "log", ("shape",), ("log", "identity", "inverse")),
}
_ALIASES = {"normal": "gaussian", "student_t": "student", "logistic": "bernoulli",
            "negative_binomial": "negbinomial", "negbin": "negbinomial", "Gamma": "gamma"}


def get_family(family: "str | Family", link: str | None = None) -> Family:
    """``"gaussian"``, ``"bernoulli"``, ``Family`` objects; ``link=`` overrides the default."""
    if isinstance(family, Family):
        fam = family
    else:
        if not isinstance(family, str):
            raise FamilyError(f"family must be a string like 'gaussian', not {family!r}")
        key = _ALIASES.get(family, family).lower()
        if key not in _FAMILIES:
            raise FamilyError(f"unknown family {family!r}; known: {', '.join(sorted(_FAMILIES))}")
        fam = _FAMILIES[key]
    if link is not None and link != fam.link:
        if link not in fam.allowed_links:
            raise FamilyError(f"link {link!r} is not available for family {fam.name!r} "
                              f"(allowed: {', '.join(fam.allowed_links)})")
        fam = Family(fam.name, link, fam.dpars, fam.allowed_links)
    return fam


def family_names() -> list[str]:
    return sorted(_FAMILIES)
