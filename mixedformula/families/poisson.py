"""poisson: y ~ Poisson(μ), μ = g⁻¹(η); links log (default), identity, sqrt.

log p(y) = y log μ − μ − log y!, with log μ taken from η directly (log link: log μ = η, so
|η| up to hundreds is exact); E y = Var y = μ.
Working weights (log link): μ̂ = max(ȳ, 0.001) per row (the intercept-only fit).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from ..errors import FamilyError
from .base import Family
from .censoring import log_pair
from .logdensity import log_density_dist, log_factorial_constant, poisson_log_f
from .registry import register

#: numpy's Generator.poisson refuses larger means (about 2^63 − 10 √2^63)
POISSON_LAM_MAX = 9.2e18


def poisson_draws(rng, lam) -> np.ndarray:
    """``rng.poisson(lam)`` as floats; FamilyError (not numpy's ValueError) for means too large."""
    lam = np.asarray(lam, dtype=float)
    big = ~(lam < POISSON_LAM_MAX)
    if big.any():
        raise FamilyError(f"{int(big.sum())} Poisson mean(s) are too large to draw counts from "
                          f"(e.g. {lam[big][0]!r}; the largest is {POISSON_LAM_MAX:g})")
    return rng.poisson(lam).astype(float)


def count_check(y, fail):
    bad = (y < 0) | (y != np.round(y))
    if bad.any():
        fail("non-negative whole counts", bad)


class CountResponse:
    """What the count families share (poisson, negbinomial and their zero-inflated and hurdle
    forms): links log (default), identity, sqrt; μ in (0, ∞); y a non-negative whole number;
    the y-only term −log y! computed once (0 at y = 0, so a zero-inflated or hurdle zero
    branch is unchanged)."""

    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")
    discrete = True
    mu_domain = (0.0, np.inf)

    def _check_y(self, y, trials, fail):
        count_check(y, fail)

    def y_constant(self, y, trials=None):
        """−log y!"""
        return log_factorial_constant(y)


@register
class Poisson(CountResponse, Family):
    name = "poisson"
    ml_glmm = True

    emmeans_label = "rate"

    def r2_distribution_variance(self, null_mean) -> float | None:
        """σ²_d = log(1 + 1/λ) for the log link (the lognormal approximation; λ the mean of the
        null model, as insight 0.19's ``.variance_distributional``), 0.25 for the sqrt link."""
        if self.link == "log":
            lam = float(null_mean())
            if lam < 6:                  # insight / performance warn the same
                import warnings
                warnings.warn(f"Nakagawa's R²: the null model's mean λ = {lam:.1f} is below 6, "
                              "where the approximation log(1 + 1/λ) of the distribution-"
                              "specific variance is unreliable", RuntimeWarning, stacklevel=3)
            return float(np.log1p(1.0 / lam))
        return 0.25 if self.link == "sqrt" else None

    def logpdf(self, y, eta, params=None, trials=None):
        mu = self.inverse_link(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(y > 0, y * self.link_obj.log_mu(eta), 0.0) - mu - gammaln(y + 1)
        return np.where(mu >= 0, out, -np.inf)

    def rvs(self, mu, params, rng, trials=None):
        return poisson_draws(rng, self.check_mean(mu))

    def variance(self, mu, params=None, trials=None):
        return mu

    def working_weights(self, y, trials):
        if self.link != "log":
            return None
        return np.full(len(y), max(float(np.mean(y)), 1e-3))

    support_lower = 0.0

    def log_density(self, o, y, eta, params, trials=None):
        return poisson_log_f(o, y, o.log_mu(self.link_obj, eta), o.mu(self.link_obj, eta))

    def log_cdf(self, o, y, eta, params, trials=None):
        mu = o.mu(self.link_obj, eta)
        return log_pair(o, o.gammaincc(y + 1.0, mu), o.gammainc(y + 1.0, mu))

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs",
                        y_const=None):
        """y log μ − μ + (−log y! precomputed, ``y_const``) as a CustomDist, without
        ``pm.Poisson``'s per-gradient check of the observed value; ``pm.Poisson`` when no
        ``y_const`` is given (ar() terms)."""
        if y_const is not None:
            return log_density_dist(self, name, eta, params, observed, trials, dims,
                                    y_const, domain=True)
        import pymc as pm
        return pm.Poisson(name, mu=self.inverse_link_tensor(eta), observed=observed, dims=dims)
