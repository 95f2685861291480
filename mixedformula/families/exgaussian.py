"""exgaussian: y = u + v, u ~ Normal(μ − β, σ), v ~ Exponential(mean β), μ = g⁻¹(η) the mean
(brms: exp_mod_normal(μ − β, σ, 1/β)); links identity (default), log, inverse; ``sigma``
(brms' data-based student_t), ``beta`` > 0 (gamma(1, 0.1)).

With λ = 1/β, m = μ − β: log p(y) = log λ + λ (m − y) + λ²σ²/2 + log erfc((m + λσ² − y)/(√2 σ))
− log 2 (Stan's exp_mod_normal_lpdf), log erfc(x) = log Φ(−√2 x) + log 2 in log space;
E y = μ, Var y = σ² + β².
"""

from __future__ import annotations

import numpy as np

from .logdensity import LogDensityFamily
from .registry import register


@register
class ExGaussian(LogDensityFamily):
    name = "exgaussian"
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    dpars = ("sigma", "beta")

    def _logdensity(self, o, y, eta, p, trials):
        s, b = p["sigma"], p["beta"]
        lam = 1.0 / b
        m = o.mu(self.link_obj, eta) - b
        return (-o.log(b) + lam * (m - y) + 0.5 * (lam * s) ** 2
                + o.log_ndtr((y - m) / s - lam * s))

    def rvs(self, mu, params, rng, trials=None):
        mu = np.asarray(mu, dtype=float)
        b = params["beta"]
        return rng.normal(mu - b, params["sigma"]) + rng.exponential(
            np.broadcast_to(b, mu.shape))

    def variance(self, mu, params=None, trials=None):
        return params["sigma"] ** 2 + params["beta"] ** 2 + 0 * mu
