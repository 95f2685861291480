"""exponential: y > 0 ~ Exponential(rate 1/μ), μ = g⁻¹(η); links log (default), identity,
inverse.

log p(y) = −log μ − y/μ, with log μ from η (log link: log μ = η; −∞ where μ ≤ 0);
E y = μ, Var y = μ².
"""

from __future__ import annotations

import numpy as np

from .censoring import cumulative_hazard_log_cdf
from .logdensity import LogDensityFamily
from .registry import register


def positive_check(y, fail):
    bad = ~(y > 0)
    if bad.any():
        fail("positive values", bad)


@register
class Exponential(LogDensityFamily):
    name = "exponential"
    default_link = "log"
    allowed_links = ("log", "identity", "inverse")
    mu_domain = (0.0, np.inf)

    def _check_y(self, y, trials, fail):
        positive_check(y, fail)

    def _logdensity(self, o, y, eta, p, trials):
        lmu = o.log_mu(self.link_obj, eta)
        out = -lmu - y * o.exp(-lmu)
        if self.link == "log":
            return out
        return o.where(o.mu(self.link_obj, eta) > 0, out, -np.inf)

    support_lower = 0.0

    def log_cdf(self, o, y, eta, params, trials=None):
        return cumulative_hazard_log_cdf(o, y * o.exp(-o.log_mu(self.link_obj, eta)))

    def rvs(self, mu, params, rng, trials=None):
        return rng.exponential(self.check_mean(mu))

    def truncated_mean(self, mu, params, lb, ub, trials=None):
        """μ (P(2, u/μ) − P(2, l/μ)) / (exp(−l/μ) − exp(−u/μ)) (bounds below 0 read as 0;
        brms' posterior_epred_trunc_exponential)."""
        from scipy.special import gammainc
        lo, hi = np.maximum(lb, 0.0) / mu, ub / mu
        return mu * (gammainc(2.0, hi) - gammainc(2.0, lo)) / (np.exp(-lo) - np.exp(-hi))

    def variance(self, mu, params=None, trials=None):
        return mu ** 2
