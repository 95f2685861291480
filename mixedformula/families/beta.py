"""beta: 0 < y < 1 ~ Beta(μφ, (1 − μ)φ), μ = g⁻¹(η); links logit (default), probit, cloglog;
precision φ (``phi``, brms' default prior gamma(0.01, 0.01), φ > 0).

log p(y) = (μφ − 1) log y + ((1 − μ)φ − 1) log(1 − y) − log B(μφ, (1 − μ)φ), with log μ and
log(1 − μ) from η in log space (:mod:`.links`); E y = μ, Var y = μ(1 − μ)/(1 + φ).
y = 0 or 1 is refused (brms: use zero_inflated_beta or zero_one_inflated_beta).
"""

from __future__ import annotations


from .logdensity import LogDensityFamily, beta_log_f
from .registry import register


def unit_open_check(y, fail, name="beta"):
    bad = ~((y > 0) & (y < 1))
    if bad.any():
        fail("values strictly between 0 and 1 (0 or 1 needs zero_inflated_beta or "
             "zero_one_inflated_beta)" if name == "beta" else "values in (0, 1)", bad)


@register
class Beta(LogDensityFamily):
    name = "beta"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    dpars = ("phi",)
    mu_domain = (0.0, 1.0)

    def _check_y(self, y, trials, fail):
        unit_open_check(y, fail)

    def _logdensity(self, o, y, eta, p, trials):
        lmu, l1mu = o.log_p(self.link_obj, eta)
        return beta_log_f(o, y, lmu, l1mu, p["phi"])

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        phi = params["phi"]
        return rng.beta(mu * phi, (1 - mu) * phi)

    def variance(self, mu, params=None, trials=None):
        return mu * (1 - mu) / (1 + params["phi"])



