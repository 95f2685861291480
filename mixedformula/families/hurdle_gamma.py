"""hurdle_gamma: y = 0 with probability hu, else y ~ Gamma(shape a, rate a/μ), μ = g⁻¹(η);
links log (default), identity, inverse; ``shape`` > 0 (gamma(0.01, 0.01)), ``hu`` in (0, 1)
(beta(1, 1)) as brms.

log p(0) = log hu, log p(y > 0) = log(1 − hu) + log Gamma(y | a, a/μ) (log μ from η);
E y = (1 − hu) μ, Var y = (1 − hu) μ² (1 + 1/a) − (1 − hu)² μ².
"""

from __future__ import annotations

import numpy as np

from .hurdle_lognormal import non_negative_check
from .logdensity import LogDensityFamily, gamma_log_f, hurdle, in_domain, o_eq0, safe
from .registry import register


@register
class HurdleGamma(LogDensityFamily):
    name = "hurdle_gamma"
    default_link = "log"
    allowed_links = ("log", "identity", "inverse")
    dpars = ("shape", "hu")
    mean_dpars = ("hu",)
    mu_domain = (0.0, np.inf)

    def _check_y(self, y, trials, fail):
        non_negative_check(y, fail)

    def _logdensity(self, o, y, eta, p, trials):
        ys = safe(o, y, o_eq0(o, y), 1.0)
        lmu = o.log_mu(self.link_obj, eta)
        out = hurdle(o, y, gamma_log_f(o, ys, lmu, p["shape"]), p["hu"])
        return in_domain(self, o, eta, out) if self.link != "log" else out

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        a = np.broadcast_to(params["shape"], mu.shape)
        y = rng.gamma(a, mu / a)
        return np.where(rng.random(mu.shape) < params["hu"], 0.0, y)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["hu"]) * mu

    def variance(self, mu, params=None, trials=None):
        hu, a = params["hu"], params["shape"]
        return (1 - hu) * mu ** 2 * (1 + 1 / a) - ((1 - hu) * mu) ** 2
