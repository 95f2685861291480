"""hurdle_poisson: y = 0 with probability hu, else y ~ Poisson(μ) truncated to y ≥ 1,
μ = g⁻¹(η); links log (default), identity, sqrt; ``hu`` in (0, 1) (brms' default beta(1, 1)).

log p(0) = log hu, log p(y > 0) = log(1 − hu) + y log μ − μ − log y! − log(1 − e^{−μ})
(brms' hurdle_poisson_log_lpmf; log(1 − e^{−μ}) = log1m_exp(−μ));
E y = (1 − hu) μ/(1 − e^{−μ}) (brms' posterior_epred), E y² = (1 − hu)(μ + μ²)/(1 − e^{−μ}).
Draws above zero: the inverse survival function of the Poisson at u (1 − e^{−μ}).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .logdensity import LogDensityFamily, hurdle, in_domain, poisson_log_f
from .poisson import CountResponse
from .registry import register


def truncated_count_draws(rng, dist, p_pos, shape) -> np.ndarray:
    """Draws of a count distribution truncated to y ≥ 1: ``dist.isf(u · P(y > 0))``, u uniform
    (isf, not ppf, so P(y > 0) near 0 keeps its digits); ``p_pos`` = P(y > 0)."""
    u = rng.random(shape)
    return np.maximum(dist.isf(u * p_pos), 1.0)


@register
class HurdlePoisson(CountResponse, LogDensityFamily):
    name = "hurdle_poisson"
    dpars = ("hu",)
    mean_dpars = ("hu",)

    def _logdensity(self, o, y, eta, p, trials):
        mu = o.mu(self.link_obj, eta)
        lmu = o.log_mu(self.link_obj, eta)
        return in_domain(self, o, eta, hurdle(o, y, poisson_log_f(o, y, lmu, mu), p["hu"],
                                              log_f0=-mu))

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        pos = truncated_count_draws(rng, stats.poisson(mu), -np.expm1(-mu), mu.shape)
        return np.where(rng.random(mu.shape) < params["hu"], 0.0, pos)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["hu"]) * mu / -np.expm1(-mu)

    def variance(self, mu, params=None, trials=None):
        hu = params["hu"]
        m = self.mean(mu, params)
        return (1 - hu) * (mu + mu ** 2) / -np.expm1(-mu) - m ** 2
