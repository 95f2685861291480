"""negbinomial: y ~ NegBinomial(μ, shape), μ = g⁻¹(η); links log (default), identity, sqrt.

brms' parametrisation (Stan's neg_binomial_2): Var y = μ + μ²/shape;
log p(y) = log Γ(y + a) − log Γ(a) − log y! + a (log a − log(a + μ)) + y (log μ − log(a + μ)),
a = shape, with log μ from η and log(a + μ) = logaddexp(log a, log μ).
Draws: y ~ Poisson(λ), λ ~ Gamma(a, scale μ/a).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .base import Family
from .censoring import log_pair
from .logdensity import log_density_dist, negbinomial_log_f
from .poisson import CountResponse, poisson_draws
from .registry import register


@register
class NegBinomial(CountResponse, Family):
    name = "negbinomial"
    dpars = ("shape",)
    aliases = ("negative_binomial", "negbin")
    ml_glmm = True
    #: the ML reference is glmmTMB's nbinom2 (TMB's Laplace, observed information); lme4's
    #: glmer.nb uses Fisher's (the two differ: log is not the canonical link here)
    laplace_information = "observed"

    def score_information(self, y, eta, params=None, trials=None, observed=False):
        """Log link in closed form (a = shape, μ = e^η): s = a(y − μ)/(a + μ), Fisher
        w = aμ/(a + μ), observed −∂s/∂η = aμ(y + a)/(a + μ)²; other links: the generic form."""
        if self.link != "log":
            return super().score_information(y, eta, params, trials, observed)
        a = params["shape"]
        mu = np.exp(np.asarray(eta, dtype=float))
        den = a + mu
        s = a * (y - mu) / den
        w = a * mu * (y + a) / den ** 2 if observed else a * mu / den
        return s, w

    def ml_start(self, y, trials=None):
        """Moment estimate ȳ² / (s² − ȳ), kept in [0.01, 1000]."""
        m, v = float(np.mean(y)), float(np.var(y))
        return {"shape": float(np.clip(m * m / max(v - m, 1e-3 * max(m, 1e-3)), 0.01, 1e3))}

    def logpdf(self, y, eta, params=None, trials=None):
        a = params["shape"]
        mu = self.inverse_link(eta)
        with np.errstate(divide="ignore", invalid="ignore"):
            lmu = self.link_obj.log_mu(eta)
            la = np.log(a)
            lam = np.logaddexp(la, lmu)
            out = (gammaln(y + a) - gammaln(a) - gammaln(y + 1) + a * (la - lam)
                   + np.where(y > 0, y * (lmu - lam), 0.0))
        return np.where(mu >= 0, out, -np.inf)

    def rvs(self, mu, params, rng, trials=None):
        mu = self.check_mean(mu)
        shape = params["shape"]
        return poisson_draws(rng, rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape))

    def variance(self, mu, params=None, trials=None):
        return mu + mu ** 2 / params["shape"]

    support_lower = 0.0

    def log_density(self, o, y, eta, params, trials=None):
        return negbinomial_log_f(o, y, o.log_mu(self.link_obj, eta), params["shape"])[0]

    def log_cdf(self, o, y, eta, params, trials=None):
        a, mu = params["shape"], o.mu(self.link_obj, eta)
        return log_pair(o, o.betainc(a, y + 1.0, a / (a + mu)),
                        o.betainc(y + 1.0, a, mu / (a + mu)))

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs",
                        y_const=None):
        """:func:`.logdensity.negbinomial_log_f` with −log y! precomputed (``y_const``) as a
        CustomDist; ``pm.NegativeBinomial`` when no ``y_const`` is given (ar() terms)."""
        if y_const is not None:
            return log_density_dist(self, name, eta, params, observed, trials, dims,
                                    y_const, domain=True)
        import pymc as pm
        return pm.NegativeBinomial(name, mu=self.inverse_link_tensor(eta), alpha=params["shape"],
                                   observed=observed, dims=dims)
