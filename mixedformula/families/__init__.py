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
==============  ==========  =================================================================

The interface (numpy log-density, draws, mean and variance, links, working weights, response
checks, default priors, PyMC likelihood) is :class:`~.base.Family`; links are in :mod:`.links`;
adding a family: docs/dev/adding-a-family.md.
"""

from __future__ import annotations

# importing a family module registers it
from . import bernoulli, binomial, gamma, gaussian, lognormal, negbinomial, poisson  # noqa: F401
from . import student  # noqa: F401
from .base import Family, brms_scale_prior, r_mad, r_round
from .links import LINKS, Link, get_link, inverse_link_numpy, inverse_link_tensor, log1mexp
from .registry import family_names, get_family, register

__all__ = ["Family", "Link", "LINKS", "family_names", "get_family", "get_link",
           "inverse_link_numpy", "inverse_link_tensor", "log1mexp", "register",
           "brms_scale_prior", "r_mad", "r_round"]
