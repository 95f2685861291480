"""shifted_lognormal: log(y − ndt) ~ Normal(μ, σ), μ = g⁻¹(η); links identity (default),
inverse; ``sigma`` (brms' data-based student_t on log y: "logscale"), the non-decision time
``ndt`` in (0, min y) with brms' default prior uniform(0, min y) (its upper bound is the
smallest response, as brms' ``min_Y``).

log p(y) = log LogNormal(y − ndt | μ, σ) for y > ndt, −∞ otherwise;
E y = ndt + exp(μ + σ²/2), Var y = (exp(σ²) − 1) exp(2μ + σ²).
"""

from __future__ import annotations

import numpy as np

from .exponential import positive_check
from .logdensity import LogDensityFamily, lognormal_log_f, safe
from .lognormal import LogScaleMu
from .registry import register


@register
class ShiftedLognormal(LogScaleMu, LogDensityFamily):
    name = "shifted_lognormal"
    dpars = ("sigma", "ndt")
    mean_dpars = ("sigma", "ndt")

    def _check_y(self, y, trials, fail):
        positive_check(y, fail)

    def _logdensity(self, o, y, eta, p, trials):
        d = y - p["ndt"]
        above = d > 0
        out = lognormal_log_f(o, safe(o, d, d <= 0, 1.0), o.mu(self.link_obj, eta), p["sigma"])
        return o.where(above, out, -np.inf)

    def rvs(self, mu, params, rng, trials=None):
        mu = np.asarray(mu, dtype=float)
        return params["ndt"] + np.exp(rng.normal(mu, params["sigma"]))

    def mean(self, mu, params=None, trials=None):
        return params["ndt"] + np.exp(mu + 0.5 * params["sigma"] ** 2)

    def variance(self, mu, params=None, trials=None):
        s2 = params["sigma"] ** 2
        return np.expm1(s2) * np.exp(2 * mu + s2)
