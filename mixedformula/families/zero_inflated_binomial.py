"""zero_inflated_binomial: y = 0 with probability zi, else y ~ Binomial(n, p), p = g⁻¹(η), n from
``y | trials(n) ~ ...``; links logit (default), probit, cloglog; ``zi`` in (0, 1) (beta(1, 1)).

log f(y) = log C(n, y) + y log p + (n − y) log(1 − p) (log p, log(1 − p) from η in log space),
log f(0) = n log(1 − p); log p(0) = logaddexp(log zi, log(1 − zi) + log f(0)),
log p(y > 0) = log(1 − zi) + log f(y); E y = (1 − zi) n p,
Var y = (1 − zi) n p (1 − p) + zi (1 − zi) n² p².
"""

from __future__ import annotations

import numpy as np

from ..errors import FamilyError
from .binomial import Binomial
from .logdensity import NUMPY, LogDensityFamily, o_eq0, zero_inflated
from .registry import register


@register
class ZeroInflatedBinomial(LogDensityFamily):
    name = "zero_inflated_binomial"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    dpars = ("zi",)
    mean_dpars = ("zi",)
    discrete = True
    uses_trials = True
    mu_domain = (0.0, 1.0)

    def _check_y(self, y, trials, fail):
        if trials is None:
            raise FamilyError(f"family {self.name!r} needs the number of trials: write "
                              "y | trials(n) ~ ...")
        Binomial._check_y(self, y, trials, fail)

    def _trials(self, trials):
        if trials is None:
            raise FamilyError(f"family {self.name!r} needs the number of trials")
        return np.asarray(trials, dtype=float)

    def y_constant(self, y, trials=None):
        """log C(n, y) per row, read by the sampler's likelihood (``o.log_choose``)."""
        return NUMPY.log_choose(self._trials(trials), y)

    def _logdensity(self, o, y, eta, p, trials):
        if trials is None:
            raise FamilyError(f"family {self.name!r} needs the number of trials")
        n = trials          # as the caller holds it: an array, or the sampler's shared data
        lp, lq = o.log_p(self.link_obj, eta)
        lc = o.log_choose(n, y)
        log_f = lc + o.where(o_eq0(o, y), 0.0, y * lp) + o.where(o_eq0(o, n - y), 0.0,
                                                                 (n - y) * lq)
        log_f0 = o.where(n > 0, n * lq, 0.0)
        return zero_inflated(o, y, log_f, log_f0, p["zi"])

    def rvs(self, mu, params, rng, trials=None):
        n = self._trials(trials).astype(np.int64)
        mu = self.check_mean(mu)
        y = rng.binomial(n, np.clip(mu, 0, 1)).astype(float)
        return np.where(rng.random(y.shape) < params["zi"], 0.0, y)

    def mean(self, mu, params=None, trials=None):
        return (1 - params["zi"]) * mu * self._trials(trials)

    def variance(self, mu, params=None, trials=None):
        n, zi = self._trials(trials), params["zi"]
        return (1 - zi) * n * mu * (1 - mu) + zi * (1 - zi) * (n * mu) ** 2
