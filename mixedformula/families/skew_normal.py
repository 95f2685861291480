"""skew_normal: y ~ SkewNormal(ξ, ω, α) with μ = g⁻¹(η) the mean and σ the sd (brms):
δ = α/√(1 + α²), ω = σ/√(1 − 2δ²/π), ξ = μ − ωδ√(2/π); links identity (default), log,
inverse; ``sigma`` (brms' data-based student_t), ``alpha`` (normal(0, 4)).

log p(y) = log 2 − log ω + log φ(z) + log Φ(α z), z = (y − ξ)/ω (log Φ in log space);
E y = μ, Var y = σ².
"""

from __future__ import annotations

import numpy as np

from .logdensity import LogDensityFamily
from .registry import register

SQRT_2_PI = float(np.sqrt(2.0 / np.pi))


def skew_normal_xi_omega(o, mu, sigma, alpha):
    """(ξ, ω) of brms' skew_normal from the mean μ, sd σ and skewness α."""
    delta = alpha / o.sqrt(1.0 + alpha * alpha)
    omega = sigma / o.sqrt(1.0 - (2.0 / np.pi) * delta * delta)
    return mu - omega * delta * SQRT_2_PI, omega


@register
class SkewNormal(LogDensityFamily):
    name = "skew_normal"
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    dpars = ("sigma", "alpha")

    def _logdensity(self, o, y, eta, p, trials):
        xi, omega = skew_normal_xi_omega(o, o.mu(self.link_obj, eta), p["sigma"], p["alpha"])
        z = (y - xi) / omega
        return (np.log(2.0) - o.log(omega) - 0.5 * z * z - 0.5 * np.log(2 * np.pi)
                + o.log_ndtr(p["alpha"] * z))

    def rvs(self, mu, params, rng, trials=None):
        from scipy import stats
        mu = np.asarray(mu, dtype=float)
        alpha = np.asarray(params["alpha"], dtype=float)
        xi, omega = skew_normal_xi_omega(np, mu, params["sigma"], alpha)
        return stats.skewnorm.rvs(np.broadcast_to(alpha, mu.shape), xi, omega,
                                  random_state=rng)

    def variance(self, mu, params=None, trials=None):
        return params["sigma"] ** 2 + 0 * mu
