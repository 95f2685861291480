"""zero_one_inflated_beta: y ∈ {0, 1} with probability zoi (y = 1 with probability coi among
those), else y ~ Beta(μφ, (1 − μ)φ), 0 ≤ y ≤ 1, μ = g⁻¹(η); links logit (default), probit,
cloglog; ``phi`` > 0 (gamma(0.01, 0.01)), ``zoi``, ``coi`` in (0, 1) (beta(1, 1)) as brms.

log p(0) = log zoi + log(1 − coi), log p(1) = log zoi + log coi,
log p(0 < y < 1) = log(1 − zoi) + log Beta(y | μφ, (1 − μ)φ) (brms' zero_one_inflated_beta_lpdf);
E y = zoi·coi + (1 − zoi) μ, E y² = zoi·coi + (1 − zoi)(μ(1 − μ)/(1 + φ) + μ²).
"""

from __future__ import annotations

import numpy as np

from .logdensity import LogDensityFamily, beta_log_f, safe
from .registry import register


@register
class ZeroOneInflatedBeta(LogDensityFamily):
    name = "zero_one_inflated_beta"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    dpars = ("phi", "zoi", "coi")
    mean_dpars = ("zoi", "coi")
    mu_domain = (0.0, 1.0)

    def _check_y(self, y, trials, fail):
        bad = ~((y >= 0) & (y <= 1))
        if bad.any():
            fail("values in [0, 1]", bad)

    def _logdensity(self, o, y, eta, p, trials):
        zoi, coi = p["zoi"], p["coi"]
        lmu, l1mu = o.log_p(self.link_obj, eta)
        edge0, edge1 = y <= 0.0, y >= 1.0
        ys = safe(o, y, edge0 | edge1, 0.5)
        inner = o.log1p(-zoi) + beta_log_f(o, ys, lmu, l1mu, p["phi"])
        return o.where(edge0, o.log(zoi) + o.log1p(-coi),
                       o.where(edge1, o.log(zoi) + o.log(coi), inner))

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        phi = params["phi"]
        y = rng.beta(mu * phi, (1 - mu) * phi)
        edge = rng.random(mu.shape) < params["zoi"]
        one = rng.random(mu.shape) < params["coi"]
        return np.where(edge, one.astype(float), y)

    def mean(self, mu, params=None, trials=None):
        zoi, coi = params["zoi"], params["coi"]
        return zoi * coi + (1 - zoi) * mu

    def variance(self, mu, params=None, trials=None):
        zoi, coi, phi = params["zoi"], params["coi"], params["phi"]
        e2 = zoi * coi + (1 - zoi) * (mu * (1 - mu) / (1 + phi) + mu ** 2)
        return e2 - self.mean(mu, params) ** 2
