"""zero_inflated_poisson: y = 0 with probability zi, else y ~ Poisson(μ), μ = g⁻¹(η); links log
(default), identity, sqrt; ``zi`` in (0, 1) (brms' default prior beta(1, 1)).

log p(0) = logaddexp(log zi, log(1 − zi) − μ), log p(y > 0) = log(1 − zi) + y log μ − μ − log y!
(brms' zero_inflated_poisson_log_lpmf), log μ from η; E y = (1 − zi) μ,
Var y = (1 − zi) μ (1 + zi μ). ``zi`` may be a scalar or one value per row.
"""

from __future__ import annotations

import numpy as np

from .logdensity import (
    LogDensityFamily, in_domain, poisson_log_f, zero_inflated)
from .poisson import CountResponse, poisson_draws
from .registry import register


@register
class ZeroInflatedPoisson(CountResponse, LogDensityFamily):
    name = "zero_inflated_poisson"
    dpars = ("zi",)
    mean_dpars = ("zi",)

    def _logdensity(self, o, y, eta, p, trials):
        mu = o.mu(self.link_obj, eta)
        lmu = o.log_mu(self.link_obj, eta)
        return in_domain(self, o, eta, zero_inflated(o, y, poisson_log_f(o, y, lmu, mu), -mu,
                                                     p["zi"]))

    def working_weights(self, y, trials):
        """Fisher information about η = log μ per row at the intercept-only fit (the rule
        that centres group effects, :func:`...backends.pymc.build.level_information`): with
        zi = π and p₀ = π + (1 − π) e^{−μ},

            I = (1 − π) μ − (1 − π) π μ² e^{−μ} / p₀,

        μ̂ and π̂ from the moments ȳ = (1 − π) μ and the share of zeros p̂₀ = π + (1 − π) e^{−μ}
        (π̂ = 0 when there are no more zeros than a Poisson of mean ȳ gives)."""
        if self.link != "log":
            return None
        from scipy.optimize import brentq
        y = np.asarray(y, dtype=float)
        m, p0 = max(float(np.mean(y)), 1e-3), float(np.mean(y == 0))
        if p0 <= np.exp(-m) or p0 >= 1.0:
            return np.full(len(y), m)
        # ȳ (1 − e^{−μ}) / μ = 1 − p̂₀: positive at μ = ȳ, negative beyond ȳ / (1 − p̂₀)
        mu = brentq(lambda u: m * -np.expm1(-u) / u - (1.0 - p0), m, 2.0 * m / (1.0 - p0) + 1.0)
        pi = 1.0 - m / mu
        info = (1 - pi) * mu - (1 - pi) * pi * mu ** 2 * np.exp(-mu) / (pi + (1 - pi) * np.exp(-mu))
        return np.full(len(y), max(info, 1e-3))

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        zero = rng.random(mu.shape) < params["zi"]
        return np.where(zero, 0.0, poisson_draws(rng, mu))

    def mean(self, mu, params=None, trials=None):
        return (1 - params["zi"]) * mu

    def variance(self, mu, params=None, trials=None):
        zi = params["zi"]
        return (1 - zi) * mu * (1 + zi * mu)
