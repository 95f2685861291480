"""hurdle_negbinomial: y = 0 with probability hu, else y ~ NegBinomial(μ, shape a) truncated to
y ≥ 1 (Stan's neg_binomial_2), μ = g⁻¹(η); links log (default), identity, sqrt; ``shape`` > 0
(gamma(0.01, 0.01)), ``hu`` in (0, 1) (beta(1, 1)) as brms.

log f(0) = a (log a − log(a + μ)); log p(0) = log hu,
log p(y > 0) = log(1 − hu) + log f(y) − log1m_exp(log f(0));
E y = (1 − hu) μ/(1 − f(0)), E y² = (1 − hu)(μ + μ²/a + μ²)/(1 − f(0)).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .hurdle_poisson import truncated_count_draws
from .logdensity import (
    LogDensityFamily, hurdle, in_domain, negbinomial_log_f)
from .poisson import CountResponse
from .registry import register


def _p_pos(mu, a):
    """1 − f(0) = 1 − (a/(a + μ))^a = −expm1(−a log1p(μ/a))."""
    return -np.expm1(-a * np.log1p(mu / a))


@register
class HurdleNegBinomial(CountResponse, LogDensityFamily):
    name = "hurdle_negbinomial"
    dpars = ("shape", "hu")
    mean_dpars = ("shape", "hu")

    def _logdensity(self, o, y, eta, p, trials):
        lmu = o.log_mu(self.link_obj, eta)
        log_f, l0 = negbinomial_log_f(o, y, lmu, p["shape"])
        return in_domain(self, o, eta, hurdle(o, y, log_f, p["hu"], log_f0=l0))

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        a = np.broadcast_to(params["shape"], mu.shape)
        pos = truncated_count_draws(rng, stats.nbinom(a, a / (a + mu)), _p_pos(mu, a),
                                    mu.shape)
        return np.where(rng.random(mu.shape) < params["hu"], 0.0, pos)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["hu"]) * mu / _p_pos(mu, params["shape"])

    def variance(self, mu, params=None, trials=None):
        hu, a = params["hu"], params["shape"]
        m = self.mean(mu, params)
        return (1 - hu) * (mu + mu ** 2 / a + mu ** 2) / _p_pos(mu, a) - m ** 2


