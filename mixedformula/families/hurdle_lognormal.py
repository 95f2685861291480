"""hurdle_lognormal: y = 0 with probability hu, else log y ~ Normal(μ, σ), μ = g⁻¹(η); links
identity (default), inverse; ``sigma`` (brms' data-based student_t on log y: "logscale"),
``hu`` in (0, 1) (beta(1, 1)).

log p(0) = log hu, log p(y > 0) = log(1 − hu) + log LogNormal(y | μ, σ);
E y = (1 − hu) exp(μ + σ²/2), E y² = (1 − hu) exp(2μ + 2σ²).
"""

from __future__ import annotations

import numpy as np

from .logdensity import LogDensityFamily, hurdle, lognormal_log_f, o_eq0, safe
from .lognormal import LogScaleMu
from .registry import register


def non_negative_check(y, fail):
    bad = ~(y >= 0)
    if bad.any():
        fail("non-negative values", bad)


@register
class HurdleLognormal(LogScaleMu, LogDensityFamily):
    name = "hurdle_lognormal"
    dpars = ("sigma", "hu")
    mean_dpars = ("sigma", "hu")

    def _check_y(self, y, trials, fail):
        non_negative_check(y, fail)

    def _logdensity(self, o, y, eta, p, trials):
        ys = safe(o, y, o_eq0(o, y), 1.0)
        return hurdle(o, y, lognormal_log_f(o, ys, o.mu(self.link_obj, eta), p["sigma"]),
                      p["hu"])

    def rvs(self, mu, params, rng, trials=None):
        mu = np.asarray(mu, dtype=float)
        y = np.exp(rng.normal(mu, params["sigma"]))
        return np.where(rng.random(mu.shape) < params["hu"], 0.0, y)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["hu"]) * np.exp(mu + 0.5 * params["sigma"] ** 2)

    def variance(self, mu, params=None, trials=None):
        hu, s2 = params["hu"], params["sigma"] ** 2
        return (1 - hu) * np.exp(2 * mu + 2 * s2) - self.mean(mu, params) ** 2
