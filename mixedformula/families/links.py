r"""Link functions g (η = g(μ)), their inverses in numpy and PyTensor, and log-space forms.

==========  =====================  =========================  ====================================
link        g(μ)                   g⁻¹(η)                     log-space forms used by log-densities
==========  =====================  =========================  ====================================
identity    μ                      η                          log μ = log η
log         log μ                  exp η                      log μ = η
sqrt        √μ                     η²                         log μ = 2 log|η|
inverse     1/μ                    1/η                        log μ = −log η
logit       log(μ/(1−μ))           1/(1+e^{−η})               log μ = −softplus(−η),
                                                             log(1−μ) = −softplus(η)
probit      Φ⁻¹(μ)                 Φ(η)                       log μ = log Φ(η), log(1−μ) = log Φ(−η)
cloglog     log(−log(1−μ))         1 − exp(−e^η)              log(1−μ) = −e^η, log μ = log1mexp(e^η)
tan_half    tan(μ/2)               2 atan(η)                  (an angle in (−π, π): von_mises)
==========  =====================  =========================  ====================================

``log1mexp(x) = log(1 − e^{−x})`` (x > 0) is evaluated as ``log(−expm1(−x))`` for x < log 2 and
``log1p(−e^{−x})`` otherwise (Mächler 2012), so none of these forms rounds a probability to 0 or
1 before taking its logarithm: a cloglog Bernoulli with y = 0 and η = 7.49 has log-density
−e^{7.49} ≈ −1790, where ``log(1 − clip(p))`` would give −36.7.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import log_expit, log_ndtr, ndtr, ndtri

from ..errors import FamilyError

LOG2 = float(np.log(2.0))


def log1mexp(x):
    """log(1 − exp(−x)) for x ≥ 0, accurate for every x (Mächler 2012)."""
    x = np.asarray(x, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(x < LOG2, np.log(-np.expm1(-np.minimum(x, LOG2))),
                        np.log1p(-np.exp(-np.maximum(x, LOG2))))


def _log_abs(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(np.asarray(x, dtype=float))


@dataclass(frozen=True)
class Link:
    """One link function: ``fn`` (μ → η), ``inverse`` (η → μ, numpy), ``inverse_tensor``
    (PyTensor), ``log_mu`` (η → log μ without forming μ where possible) and, for links onto
    (0, 1), ``log_p`` (η → (log μ, log(1 − μ)))."""

    name: str
    fn: Callable
    inverse: Callable
    inverse_tensor: Callable
    log_mu: Callable
    dmu_deta: Callable                      # dμ/dη as a function of μ (working weights)
    log_p: Callable | None = None
    log_p_tensor: Callable | None = None    # the same in PyTensor (the sampler's likelihood)
    mu_range: tuple[float, float] = (-np.inf, np.inf)   # range of g⁻¹ on the real line


def _pt():
    import pytensor.tensor as pt
    return pt


def _logit_fn(p):
    p = np.asarray(p, dtype=float)
    return np.log(p) - np.log1p(-p)


def log_ndtr_tensor(z):
    """log Φ(z) in PyTensor with erfc only (PyTensor's JAX backend has no erfcx):
    ``log1p(−erfc(z/√2)/2)`` for z ≥ −1, ``log(erfc(−z/√2)/2)`` for −20 ≤ z < −1 and the
    asymptotic series −z²/2 − log(−z) − ½ log 2π + log(1 − z⁻² + 3z⁻⁴ − 15z⁻⁶ + 105z⁻⁸)
    below (relative error < 1e-10 there); each branch sees its input clamped to its range so
    that no branch produces inf or NaN (nor NaN gradients through ``switch``)."""
    pt = _pt()
    r2 = np.sqrt(2.0)
    hi = pt.log1p(-0.5 * pt.erfc(pt.maximum(z, -1.0) / r2))
    mid = pt.log(0.5 * pt.erfc(-pt.clip(z, -20.0, -1.0) / r2))
    zl = pt.minimum(z, -20.0)
    w = 1.0 / pt.sqr(zl)
    low = (-0.5 * pt.sqr(zl) - pt.log(-zl) - 0.5 * np.log(2 * np.pi)
           + pt.log1p(w * (-1.0 + w * (3.0 + w * (-15.0 + 105.0 * w)))))
    return pt.switch(pt.ge(z, -1.0), hi, pt.switch(pt.ge(z, -20.0), mid, low))


def _probit_log_p_tensor(x):
    return log_ndtr_tensor(x), log_ndtr_tensor(-x)


def _cloglog_log_p_tensor(x):
    e = _pt().exp(x)
    return _pt().log1mexp(-e), -e


def _logit_log_p_tensor(x):
    pt = _pt()
    return -pt.softplus(-x), -pt.softplus(x)


def _cloglog_log_p(eta):
    e = np.exp(np.asarray(eta, dtype=float))
    return log1mexp(e), -e


LINKS: dict[str, Link] = {
    "identity": Link("identity", lambda m: m, lambda x: x, lambda x: x, _log_abs,
                     lambda m: np.ones_like(m)),
    "log": Link("log", np.log, np.exp, lambda x: _pt().exp(x),
                lambda x: np.asarray(x, dtype=float), lambda m: m, mu_range=(0.0, np.inf)),
    "sqrt": Link("sqrt", np.sqrt, np.square, lambda x: _pt().sqr(x),
                 lambda x: 2.0 * _log_abs(np.abs(x)), lambda m: 2.0 * np.sqrt(m),
                 mu_range=(0.0, np.inf)),
    "inverse": Link("inverse", lambda m: 1.0 / m, lambda x: 1.0 / x, lambda x: 1.0 / x,
                    lambda x: -_log_abs(x), lambda m: -np.square(m)),
    "logit": Link("logit", _logit_fn, lambda x: 1.0 / (1.0 + np.exp(-x)),
                  lambda x: _pt().sigmoid(x), log_expit, lambda m: m * (1 - m),
                  log_p=lambda x: (log_expit(x), log_expit(-np.asarray(x, dtype=float))),
                  log_p_tensor=_logit_log_p_tensor, mu_range=(0.0, 1.0)),
    "probit": Link("probit", ndtri, ndtr,
                   lambda x: 0.5 * (1.0 + _pt().erf(x / np.sqrt(2.0))), log_ndtr,
                   lambda m: np.exp(-0.5 * ndtri(m) ** 2) / np.sqrt(2 * np.pi),
                   log_p=lambda x: (log_ndtr(x), log_ndtr(-np.asarray(x, dtype=float))),
                   log_p_tensor=_probit_log_p_tensor, mu_range=(0.0, 1.0)),
    "cloglog": Link("cloglog", lambda p: np.log(-np.log1p(-np.asarray(p, dtype=float))),
                    lambda x: 1.0 - np.exp(-np.exp(x)),
                    lambda x: 1.0 - _pt().exp(-_pt().exp(x)),
                    lambda x: _cloglog_log_p(x)[0],
                    lambda m: -(1 - m) * np.log1p(-m),
                    log_p=_cloglog_log_p, log_p_tensor=_cloglog_log_p_tensor,
                    mu_range=(0.0, 1.0)),
    # brms' link of student's nu (> 1): η = log(ν − 1), ν = 1 + exp(η)
    "logm1": Link("logm1", lambda m: np.log(np.asarray(m, dtype=float) - 1.0),
                  lambda x: 1.0 + np.exp(x), lambda x: 1.0 + _pt().exp(x),
                  lambda x: np.log1p(np.exp(np.asarray(x, dtype=float))),
                  lambda m: m - 1.0, mu_range=(1.0, np.inf)),
    "tan_half": Link("tan_half", lambda m: np.tan(np.asarray(m, dtype=float) / 2.0),
                     lambda x: 2.0 * np.arctan(x), lambda x: 2.0 * _pt().arctan(x), _log_abs,
                     lambda m: 1.0 + np.cos(m), mu_range=(-np.pi, np.pi)),
}


def get_link(name: str) -> Link:
    try:
        return LINKS[name]
    except KeyError:
        raise FamilyError(f"unknown link {name!r}; known: {', '.join(LINKS)}") from None


def inverse_link_numpy(link: str):
    """g⁻¹ as a numpy function."""
    return get_link(link).inverse


def inverse_link_tensor(link: str, eta):
    """g⁻¹(η) as a PyTensor expression."""
    return get_link(link).inverse_tensor(eta)
