"""weibull: y > 0 ~ Weibull(shape k, scale s), s = μ/Γ(1 + 1/k), μ = g⁻¹(η) the mean (brms);
links log (default), identity, inverse; ``shape`` k > 0 (brms' default prior gamma(0.01, 0.01)).

log p(y) = log k − log s + (k − 1)(log y − log s) − exp(k (log y − log s)),
log s = log μ − log Γ(1 + 1/k) with log μ from η;
E y = μ, Var y = μ² (Γ(1 + 2/k)/Γ(1 + 1/k)² − 1).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .censoring import cumulative_hazard_log_cdf
from .exponential import positive_check
from .logdensity import LogDensityFamily
from .registry import register


@register
class Weibull(LogDensityFamily):
    name = "weibull"
    default_link = "log"
    allowed_links = ("log", "identity", "inverse")
    dpars = ("shape",)
    mu_domain = (0.0, np.inf)

    def _check_y(self, y, trials, fail):
        positive_check(y, fail)

    def _logdensity(self, o, y, eta, p, trials):
        k = p["shape"]
        ls = o.log_mu(self.link_obj, eta) - o.gammaln(1.0 + 1.0 / k)
        z = o.log(y) - ls
        out = o.log(k) - ls + (k - 1.0) * z - o.exp(k * z)
        if self.link == "log":
            return out
        return o.where(o.mu(self.link_obj, eta) > 0, out, -np.inf)

    support_lower = 0.0

    def log_cdf(self, o, y, eta, params, trials=None):
        k = params["shape"]
        ls = o.log_mu(self.link_obj, eta) - o.gammaln(1.0 + 1.0 / k)
        return cumulative_hazard_log_cdf(o, o.exp(k * (o.log(y) - ls)))

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        k = np.asarray(params["shape"], dtype=float)
        scale = mu / np.exp(gammaln(1.0 + 1.0 / k))
        return scale * rng.weibull(np.broadcast_to(k, np.shape(scale)))

    def truncated_mean(self, mu, params, lb, ub, trials=None):
        """μ (P(a, (u/s)^k) − P(a, (l/s)^k)) / (F(u) − F(l)), a = 1 + 1/k, s = μ/Γ(a),
        F(x) = 1 − exp(−(x/s)^k) (bounds below 0 read as 0; brms)."""
        from scipy.special import gammainc
        k = params["shape"]
        a = 1.0 + 1.0 / k
        s = mu / np.exp(gammaln(a))
        lo, hi = (np.maximum(lb, 0.0) / s) ** k, (ub / s) ** k
        return mu * (gammainc(a, hi) - gammainc(a, lo)) / (np.exp(-lo) - np.exp(-hi))

    def variance(self, mu, params=None, trials=None):
        k = params["shape"]
        return mu ** 2 * np.expm1(gammaln(1 + 2 / k) - 2 * gammaln(1 + 1 / k))
