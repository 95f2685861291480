"""zero_inflated_beta: y = 0 with probability zi, else y ~ Beta(μφ, (1 − μ)φ), 0 ≤ y < 1,
μ = g⁻¹(η); links logit (default), probit, cloglog; ``phi`` > 0 (gamma(0.01, 0.01)), ``zi`` in
(0, 1) (beta(1, 1)) as brms.

log p(0) = log zi, log p(0 < y < 1) = log(1 − zi) + log Beta(y | μφ, (1 − μ)φ) (brms'
zero_inflated_beta_lpdf: the beta has no mass at 0, so this is a two-part model);
E y = (1 − zi) μ, Var y = (1 − zi) (μ(1 − μ)/(1 + φ) + zi μ²).
"""

from __future__ import annotations

import numpy as np

from .logdensity import LogDensityFamily, beta_log_f, hurdle, o_eq0, safe
from .registry import register


@register
class ZeroInflatedBeta(LogDensityFamily):
    name = "zero_inflated_beta"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    dpars = ("phi", "zi")
    mean_dpars = ("zi",)
    mu_domain = (0.0, 1.0)

    def _check_y(self, y, trials, fail):
        bad = ~((y >= 0) & (y < 1))
        if bad.any():
            fail("values in [0, 1) (y = 1 needs zero_one_inflated_beta)", bad)

    def _logdensity(self, o, y, eta, p, trials):
        lmu, l1mu = o.log_p(self.link_obj, eta)
        ys = safe(o, y, o_eq0(o, y), 0.5)
        return hurdle(o, y, beta_log_f(o, ys, lmu, l1mu, p["phi"]), p["zi"])

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        phi = params["phi"]
        y = rng.beta(mu * phi, (1 - mu) * phi)
        return np.where(rng.random(mu.shape) < params["zi"], 0.0, y)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["zi"]) * mu

    def variance(self, mu, params=None, trials=None):
        zi, phi = params["zi"], params["phi"]
        return (1 - zi) * (mu * (1 - mu) / (1 + phi) + zi * mu ** 2)
