"""lognormal: log y ~ Normal(μ, σ), μ = g⁻¹(η); links identity (default), inverse.

log p = −(log y − μ)²/(2σ²) − log σ − ½ log 2π − log y;
E y = exp(μ + σ²/2), Var y = (exp(σ²) − 1) exp(2μ + σ²). brms treats it as modelled on the log
scale ("logscale"): default priors come from log y.
"""

from __future__ import annotations

import numpy as np

from .base import Family
from .censoring import normal_log_cdf
from .logdensity import lognormal_log_f
from .gaussian import LOG_2PI
from .registry import register


class LogScaleMu:
    """What the lognormal families share (lognormal, hurdle_lognormal, shifted_lognormal): μ is
    the mean of log y (any real), on brms' identity (default) or inverse link, so a link
    cannot leave μ's domain; y itself lies in (0, ∞)."""

    default_link = "identity"
    allowed_links = ("identity", "inverse")
    logscale = True
    mu_domain = (0.0, np.inf)      # of y; μ itself is any real (log scale)

    @property
    def link_can_leave_domain(self) -> bool:
        return False


@register
class Lognormal(LogScaleMu, Family):
    name = "lognormal"
    dpars = ("sigma",)
    mean_dpars = ("sigma",)

    def _check_y(self, y, trials, fail):
        bad = y <= 0
        if bad.any():
            fail("positive values", bad)

    def logpdf(self, y, eta, params=None, trials=None):
        sigma = params["sigma"]
        ly = np.log(y)
        z = (ly - self.inverse_link(eta)) / sigma
        return -0.5 * z ** 2 - np.log(sigma) - 0.5 * LOG_2PI - ly

    def rvs(self, mu, params, rng, trials=None):
        return np.exp(rng.normal(mu, params["sigma"]))

    def mean(self, mu, params=None, trials=None):
        return np.exp(mu + 0.5 * params["sigma"] ** 2)

    def truncated_mean(self, mu, params, lb, ub, trials=None):
        """exp(μ + σ²/2) (Φ(β_u − σ) − Φ(β_l − σ)) / (Φ(β_u) − Φ(β_l)), β = (log bound − μ)/σ
        (bounds below 0 read as 0; brms)."""
        from scipy.stats import norm
        s = params["sigma"]
        with np.errstate(divide="ignore"):
            bl = (np.log(np.maximum(lb, 0.0)) - mu) / s
            bu = (np.log(ub) - mu) / s
        return (np.exp(mu + 0.5 * s ** 2) * (norm.cdf(bu - s) - norm.cdf(bl - s))
                / (norm.cdf(bu) - norm.cdf(bl)))

    def variance(self, mu, params=None, trials=None):
        s2 = params["sigma"] ** 2
        return np.expm1(s2) * np.exp(2 * mu + s2)

    support_lower = 0.0

    def log_density(self, o, y, eta, params, trials=None):
        return lognormal_log_f(o, y, o.mu(self.link_obj, eta), params["sigma"])

    def log_cdf(self, o, y, eta, params, trials=None):
        return normal_log_cdf(o, (o.log(y) - o.mu(self.link_obj, eta)) / params["sigma"])

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        import pymc as pm
        return pm.LogNormal(name, mu=self.inverse_link_tensor(eta), sigma=params["sigma"],
                            observed=observed, dims=dims)
