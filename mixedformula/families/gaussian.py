"""gaussian: y ~ Normal(μ, σ), μ = g⁻¹(η); links identity (default), log, inverse.

log p = −(y − μ)²/(2σ²) − log σ − ½ log 2π;  E y = μ, Var y = σ².
"""

from __future__ import annotations

import numpy as np

from .base import Family
from .censoring import normal_log_cdf
from .registry import register

LOG_2PI = float(np.log(2 * np.pi))


@register
class Gaussian(Family):
    name = "gaussian"
    allows_rescor = True
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    dpars = ("sigma",)
    autocor_terms = ("ar", "arma", "cov_arma", "cosy", "unstr")
    aliases = ("normal",)
    #: brms' bayes_R2 has a model-based residual variance for this family (results/r2.py)
    bayes_r2_model = True

    @property
    def gaussian(self) -> bool:
        return True

    def dpar_working_weight(self, dpar):
        """log σ (brms' link of ``sigma ~``): −E ∂²/∂(log σ)² log p = 2 per row."""
        return 2.0 if dpar == "sigma" and self.dpar_link(dpar) == "log" else None

    def logpdf(self, y, eta, params=None, trials=None):
        sigma = params["sigma"]
        z = (y - self.inverse_link(eta)) / sigma
        return -0.5 * z ** 2 - np.log(sigma) - 0.5 * LOG_2PI

    def rvs(self, mu, params, rng, trials=None):
        return rng.normal(mu, params["sigma"])

    def truncated_rvs(self, mu, params, lb, ub, rng, trials=None):
        """N(μ, σ²) restricted to [lb, ub] by the inverse CDF (scipy's truncnorm, accurate far
        in the tails, where drawing again until inside would take ~1/P(lb ≤ y ≤ ub) rounds)."""
        from scipy.stats import truncnorm
        s = np.asarray(params["sigma"], dtype=float)
        mu = np.asarray(mu, dtype=float)
        a, b = (lb - mu) / s, (ub - mu) / s
        a, b, mu, s = np.broadcast_arrays(a, b, mu, s)
        return truncnorm.rvs(a, b, loc=mu, scale=s, random_state=rng)

    def truncated_mean(self, mu, params, lb, ub, trials=None):
        """μ + σ (φ(a) − φ(b)) / (Φ(b) − Φ(a)), a, b the standardised bounds (brms)."""
        from scipy.stats import norm
        s = params["sigma"]
        a, b = (lb - mu) / s, (ub - mu) / s
        return mu + s * (norm.pdf(a) - norm.pdf(b)) / (norm.cdf(b) - norm.cdf(a))

    def variance(self, mu, params=None, trials=None):
        return np.broadcast_to(np.asarray(params["sigma"], dtype=float) ** 2, np.shape(mu))

    def log_density(self, o, y, eta, params, trials=None):
        z = (y - o.mu(self.link_obj, eta)) / params["sigma"]
        return -0.5 * z * z - o.log(params["sigma"]) - 0.5 * LOG_2PI

    def log_cdf(self, o, y, eta, params, trials=None):
        return normal_log_cdf(o, (y - o.mu(self.link_obj, eta)) / params["sigma"])

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        import pymc as pm
        return pm.Normal(name, mu=self.inverse_link_tensor(eta), sigma=params["sigma"],
                         observed=observed, dims=dims)
