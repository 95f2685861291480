"""Response families: one module per family, each a :class:`Family` registered by name.

==============  ==========  =================================================================
family          mu link     likelihood (brms parametrisation)
==============  ==========  =================================================================
gaussian        identity    y ~ Normal(mu, sigma)
student         identity    y ~ StudentT(nu, mu, sigma)
lognormal       identity    log y ~ Normal(mu, sigma)
bernoulli       logit       y ~ Bernoulli(inv_link(eta))
binomial        logit       y ~ Binomial(trials, inv_link(eta))      (``y | trials(n) ~ ...``)
poisson         log         y ~ Poisson(inv_link(eta))
negbinomial     log         y ~ NegBinomial(mu = inv_link(eta), shape)  (Var = mu + mu²/shape)
gamma           log         y ~ Gamma(shape, rate = shape / mu)      (brms' default link is
                                                                     inverse; log is the
                                                                     numerically safe choice,
                                                                     pass link="inverse" for brms')
beta            logit       y ~ Beta(mu phi, (1 - mu) phi)                 (0 < y < 1)
exponential     log         y ~ Exponential(rate 1 / mu)
weibull         log         y ~ Weibull(shape, scale = mu / Gamma(1 + 1/shape))  (mu the mean)
zero_inflated_  log/logit   y = 0 with probability zi, else poisson / negbinomial / binomial /
 poisson, ...               beta (beta: a two-part model, y = 0 has probability zi exactly)
hurdle_poisson  log/ident.  y = 0 with probability hu, else the zero-truncated poisson /
 ..., _gamma                negbinomial, or lognormal / gamma for y > 0
zero_one_infl.  logit       y in {0, 1} with probability zoi (1 with probability coi), else
 _beta                      Beta(mu phi, (1 - mu) phi)
shifted_lognorm identity    log(y - ndt) ~ Normal(mu, sigma), 0 < ndt < min y
exgaussian      identity    y ~ Normal(mu - beta, sigma) + Exponential(mean beta)  (mu the mean)
skew_normal     identity    y ~ SkewNormal with mean mu, sd sigma, skewness alpha  (brms)
von_mises       tan_half    y (an angle) ~ VonMises(mu = 2 atan(eta), kappa)
cumulative,     logit       ordinal y in 1..K: K - 1 thresholds replace the intercept
 sratio, cratio,            (``b_Intercept[k]``), P(y = k) from F(disc (thres - eta)) as brms
 acat                       (families/ordinal.py); links logit, probit, cloglog
categorical     logit       y one of K unordered categories: log P(y = k) = eta_k - logsumexp(eta),
                            eta = (0, muB, ..., muK), one linear predictor mu<cat> per
                            non-reference category (the formula copied to each; brms' names)
==============  ==========  =================================================================

Families built from one log-density for numpy and PyTensor derive from
:class:`~.logdensity.LogDensityFamily`.

The interface (numpy log-density, draws, mean and variance, links, working weights, response
checks, default priors, PyMC likelihood) is :class:`~.base.Family`; links are in :mod:`.links`;
adding a family: docs/dev/adding-a-family.md.
"""

from __future__ import annotations

# importing a family module registers it
from . import bernoulli, binomial, gamma, gaussian, lognormal, negbinomial, poisson  # noqa: F401
from . import student  # noqa: F401
from . import beta, exponential, weibull  # noqa: F401
from . import (hurdle_gamma, hurdle_lognormal, hurdle_negbinomial, hurdle_poisson,  # noqa: F401
               zero_inflated_beta, zero_inflated_binomial, zero_inflated_negbinomial,
               zero_inflated_poisson)
from . import exgaussian, shifted_lognormal, skew_normal, zero_one_inflated_beta  # noqa: F401
from . import von_mises  # noqa: F401
from . import acat, cratio, cumulative, sratio  # noqa: F401
from . import categorical as _categorical_module  # noqa: F401
from .categorical import NA
from .base import Family, brms_scale_prior, r_mad, r_round
from .links import LINKS, Link, get_link, inverse_link_numpy, inverse_link_tensor, log1mexp
from .registry import family_names, get_family, register



def categorical(link: str = "logit", refcat=None):     # noqa: F811 (the module stays importable)
    """brms' ``categorical(link = "logit", refcat = NULL)``: ``refcat`` the reference
    category's label, None for the first category, ``NA`` (:data:`NA`, ``pandas.NA`` or a
    NaN) for none (every category predicted). families/categorical.py."""
    return _categorical_module.Categorical(link, refcat=refcat)


__all__ = ["categorical", "NA", "Family", "Link", "LINKS", "family_names", "get_family", "get_link",
           "inverse_link_numpy", "inverse_link_tensor", "log1mexp", "register",
           "brms_scale_prior", "r_mad", "r_round"]
