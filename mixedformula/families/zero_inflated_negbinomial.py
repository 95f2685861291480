"""zero_inflated_negbinomial: y = 0 with probability zi, else y ~ NegBinomial(μ, shape a)
(Stan's neg_binomial_2, Var = μ + μ²/a), μ = g⁻¹(η); links log (default), identity, sqrt;
``shape`` > 0 (gamma(0.01, 0.01)), ``zi`` in (0, 1) (beta(1, 1)) as brms.

log f(0) = a (log a − log(a + μ)); log p(0) = logaddexp(log zi, log(1 − zi) + log f(0)),
log p(y > 0) = log(1 − zi) + log f(y); E y = (1 − zi) μ, Var y = (1 − zi) μ (1 + μ/a + zi μ).
"""

from __future__ import annotations

import numpy as np

from .logdensity import (
    LogDensityFamily, in_domain, negbinomial_log_f, zero_inflated)
from .poisson import CountResponse, poisson_draws
from .registry import register


@register
class ZeroInflatedNegBinomial(CountResponse, LogDensityFamily):
    name = "zero_inflated_negbinomial"
    dpars = ("shape", "zi")
    mean_dpars = ("zi",)

    def _logdensity(self, o, y, eta, p, trials):
        lmu = o.log_mu(self.link_obj, eta)
        log_f, l0 = negbinomial_log_f(o, y, lmu, p["shape"])
        return in_domain(self, o, eta, zero_inflated(o, y, log_f, l0, p["zi"]))

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        a = np.broadcast_to(params["shape"], mu.shape)
        y = poisson_draws(rng, rng.gamma(a, mu / a))
        return np.where(rng.random(mu.shape) < params["zi"], 0.0, y)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["zi"]) * mu

    def variance(self, mu, params=None, trials=None):
        zi, a = params["zi"], params["shape"]
        return (1 - zi) * mu * (1 + mu / a + zi * mu)
