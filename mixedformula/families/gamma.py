"""gamma: y > 0 ~ Gamma(shape a, rate a/μ), μ = g⁻¹(η); links log (default here), identity,
inverse (brms' default; pass ``link="inverse"``).

log p(y) = a log a − a log μ − log Γ(a) + (a − 1) log y − a y/μ, with log μ from η;
E y = μ, Var y = μ²/a.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .base import Family
from .censoring import log_pair
from .logdensity import gamma_log_f
from .registry import register


@register
class Gamma(Family):
    name = "gamma"
    default_link = "log"
    allowed_links = ("log", "identity", "inverse")
    dpars = ("shape",)
    aliases = ("Gamma",)
    mu_domain = (0.0, np.inf)
    ml_glmm = True
    #: the ML reference is glmmTMB's Gamma (TMB's Laplace, observed information; log is not
    #: the canonical link); lme4's glmer does not estimate the shape by ML
    laplace_information = "observed"

    def ml_start(self, y, trials=None):
        """Moment estimate ȳ² / s², kept in [0.01, 10⁶]."""
        m, v = float(np.mean(y)), float(np.var(y))
        return {"shape": float(np.clip(m * m / max(v, 1e-12), 0.01, 1e6))}

    def _check_y(self, y, trials, fail):
        bad = y <= 0
        if bad.any():
            fail("positive values", bad)

    def logpdf(self, y, eta, params=None, trials=None):
        a = params["shape"]
        mu = self.inverse_link(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            lmu = self.link_obj.log_mu(eta)
            out = (a * (np.log(a) - lmu) - gammaln(a) + (a - 1) * np.log(y)
                   - a * y * np.exp(-lmu))
        return np.where(mu > 0, out, -np.inf)

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        shape = params["shape"]
        return rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape)

    def truncated_mean(self, mu, params, lb, ub, trials=None):
        """μ (P(k+1, u/θ) − P(k+1, l/θ)) / (P(k, u/θ) − P(k, l/θ)), θ = μ/k, P the regularised
        lower incomplete gamma (bounds below 0 read as 0; brms' posterior_epred_trunc_gamma)."""
        from scipy.special import gammainc
        k = params["shape"]
        th = mu / k
        lo, hi = np.maximum(lb, 0.0) / th, ub / th
        return mu * (gammainc(k + 1, hi) - gammainc(k + 1, lo)) / (gammainc(k, hi)
                                                                   - gammainc(k, lo))

    def variance(self, mu, params=None, trials=None):
        return mu ** 2 / params["shape"]

    support_lower = 0.0

    def log_density(self, o, y, eta, params, trials=None):
        return gamma_log_f(o, y, o.log_mu(self.link_obj, eta), params["shape"])

    def log_cdf(self, o, y, eta, params, trials=None):
        a = params["shape"]
        x = a * y * o.exp(-o.log_mu(self.link_obj, eta))
        return log_pair(o, o.gammainc(a, x), o.gammaincc(a, x))

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        import pymc as pm
        mu = self.inverse_link_tensor(eta)
        return pm.Gamma(name, alpha=params["shape"], beta=params["shape"] / mu,
                        observed=observed, dims=dims)
