"""bernoulli: y ∈ {0, 1} ~ Bernoulli(p), p = g⁻¹(η); links logit (default), probit, cloglog.

log p(y) = log p if y = 1, log(1 − p) if y = 0, both from η in log space (:mod:`.links`);
E y = p, Var y = p(1 − p); working weights as binomial with n = 1.
"""

from __future__ import annotations

import numpy as np

from .base import Family
from .binomial import binomial_working_weights, log_space_binomial, logit_binomial
from .registry import register


@register
class Bernoulli(Family):
    name = "bernoulli"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    aliases = ("logistic",)
    discrete = True
    mu_domain = (0.0, 1.0)
    ml_glmm = True
    #: brms' bayes_R2 has a model-based residual variance for this family (results/r2.py)
    bayes_r2_model = True

    emmeans_label = "prob"

    def r2_distribution_variance(self, null_mean) -> float | None:
        """σ²_d of the latent-scale formulation: π²/3 (logit), 1 (probit), π²/6 (cloglog)."""
        return {"logit": np.pi ** 2 / 3, "probit": 1.0, "cloglog": np.pi ** 2 / 6}.get(self.link)

    def _check_y(self, y, trials, fail):
        bad = ~np.isin(y, (0.0, 1.0))
        if bad.any():
            fail("0/1 values", bad)

    def logpdf(self, y, eta, params=None, trials=None):
        lp, lq = self.link_obj.log_p(eta)
        return np.where(y > 0.5, lp, lq)

    def log_density(self, o, y, eta, params, trials=None):
        lp, lq = o.log_p(self.link_obj, eta)
        return o.where(y > 0.5, lp, lq)

    def rvs(self, mu, params, rng, trials=None):
        return (rng.random(np.shape(mu)) < mu).astype(float)

    def variance(self, mu, params=None, trials=None):
        return mu * (1 - mu)

    def working_weights(self, y, trials):
        return binomial_working_weights(self.link, y, None)

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        if self.link == "logit":
            return logit_binomial(name, eta, observed, None, dims)
        return log_space_binomial(name, self.link_obj, eta, observed, None, dims)
