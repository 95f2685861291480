r"""Log CDFs, censored and truncated log-likelihoods in log space, written once for numpy and
PyTensor (the arithmetic ``o`` of :mod:`.logdensity`).

Per family (``Family.log_cdf``) the pair (log F(y), log S(y)) = (log P(Y ≤ y), log P(Y > y)):

==============  ============================================================================
gaussian        z = (y − μ)/σ: (log Φ(z), log Φ(−z)) (``log_ndtr``: no underflow in the tails)
student         t = (y − μ)/σ, tail = log P(T > |t|) = log(½ I_{ν/(ν+t²)}(ν/2, ½)):
                (tail, log1m_exp(tail)) for t < 0, swapped for t ≥ 0
lognormal       gaussian's with z = (log y − μ)/σ
gamma           x = a y/μ: (log P(a, x), log Q(a, x)) (regularized incomplete gamma)
weibull         H = (y/s)^k, s = μ/Γ(1 + 1/k): (log1m_exp(−H), −H)
exponential     H = y/μ: (log1m_exp(−H), −H)
poisson         (log Q(y + 1, μ), log P(y + 1, μ))
negbinomial     (log I_{a/(a+μ)}(a, y + 1), log I_{μ/(a+μ)}(y + 1, a))
==============  ============================================================================

Censoring (brms' Stan code, ``stan_log_lik_cens``; codes of :mod:`mixedformula.design.additions`):
none log p(y); left (−1) log F(y); right (1) log S(y) (for counts P(Y > y), Stan's lccdf);
interval (2) log(F(y2) − F(y)) = log P(y < Y ≤ y2).

Truncation (brms' ``T[lb, ub]``): log p(y) − log(F(ub) − F(lb)) for continuous y; counts
include lb: − log(F(ub) − F(lb − 1)) = −log P(lb ≤ Y ≤ ub). Only ub: − log F(ub); only lb:
− log S(lb) (counts S(lb − 1)). Censored rows in a truncated model are normalised likewise.

A difference of CDFs in log space: log(F(b) − F(a)) = log F(b) + log1m_exp(log F(a) − log F(b))
where F(b) ≤ ½, else log S(a) + log1m_exp(log S(b) − log S(a)) (no cancellation in either tail).

Weights (brms): each row's term is multiplied by w (``weights``), the pointwise log-likelihood
too (brms' ``log_lik``).
"""

from __future__ import annotations

import numpy as np

from .base import CDF_FAMILIES  # noqa: F401  (re-exported: the families with a log CDF)


LOG_HALF = float(np.log(0.5))


def normal_log_cdf(o, z):
    """(log Φ(z), log Φ(−z))."""
    return o.log_ndtr(z), o.log_ndtr(-z)


def student_log_cdf(o, t, nu):
    """(log P(T ≤ t), log P(T > t)) for Student's t with ν degrees of freedom."""
    x = nu / (nu + t * t)
    tail = LOG_HALF + o.log(o.betainc(0.5 * nu, 0.5, x))
    other = o.log1m_exp(o.where(tail < LOG_HALF, tail, LOG_HALF - 1e-300))
    neg = t < 0
    return o.where(neg, tail, other), o.where(neg, other, tail)


def log_pair(o, P, Q):
    """(log P, log Q) for P + Q = 1 given both (incomplete gamma/beta functions): each from
    the smaller of the two, log P = log1p(−Q) where P > ½ (no rounding of P to 1)."""
    Pc, Qc = o.where(P < 0.5, P, 0.5), o.where(Q < 0.5, Q, 0.5)
    return (o.where(P > 0.5, o.log1p(-Qc), o.log(o.where(P > 0.5, 0.5, P))),
            o.where(Q > 0.5, o.log1p(-Pc), o.log(o.where(Q > 0.5, 0.5, Q))))


def cumulative_hazard_log_cdf(o, H):
    """(log(1 − e^{−H}), −H) from the cumulative hazard H ≥ 0."""
    return o.log1m_exp(-H), -H


def log_diff_cdf(o, lcdf_a, lccdf_a, lcdf_b, lccdf_b):
    """log(F(b) − F(a)) for a < b from both tails (module docstring)."""
    low = lcdf_b + o.log1m_exp(o.where(lcdf_a < lcdf_b, lcdf_a - lcdf_b, -1e-300))
    high = lccdf_a + o.log1m_exp(o.where(lccdf_b < lccdf_a, lccdf_b - lccdf_a, -1e-300))
    return o.where(lcdf_b <= LOG_HALF, low, high)


def censored_loglik(o, family, y, eta, params, trials, codes, y2):
    """Per row: log p(y), log F(y), log S(y) or log(F(y2) − F(y)) by the censoring code."""
    lp = family.log_density(o, y, eta, params, trials)
    lcdf, lccdf = family.log_cdf(o, y, eta, params, trials)
    lcdf2, lccdf2 = family.log_cdf(o, y2, eta, params, trials)
    interval = log_diff_cdf(o, lcdf, lccdf, lcdf2, lccdf2)
    return o.where(o.eq(codes, 0), lp, o.where(o.eq(codes, -1), lcdf,
                                                  o.where(o.eq(codes, 1), lccdf, interval)))



def truncation_normaliser(o, family, eta, params, trials, lb, ub, sides):
    """log P(lb ≤ Y ≤ ub) (continuous: log(F(ub) − F(lb))); ``sides`` = (has lb, has ub)."""
    has_lb, has_ub = sides
    if family.discrete and has_lb:
        lb = lb - 1.0
    if has_lb:
        lcdf_a, lccdf_a = family.log_cdf(o, lb, eta, params, trials)
    if has_ub:
        lcdf_b, lccdf_b = family.log_cdf(o, ub, eta, params, trials)
    if has_lb and has_ub:
        return log_diff_cdf(o, lcdf_a, lccdf_a, lcdf_b, lccdf_b)
    if has_lb:
        return lccdf_a
    return lcdf_b


def addition_loglik(o, family, y, eta, params, trials=None, weights=None, codes=None, y2=None,
                    lb=None, ub=None, sides=(False, False)):
    """The per-row log-likelihood with brms' addition terms (module docstring): censored by
    ``codes``/``y2`` (None: uncensored), truncated to [lb, ub] on the ``sides`` given,
    multiplied by ``weights`` (None: 1)."""
    if codes is not None:
        out = censored_loglik(o, family, y, eta, params, trials, codes, y2)
    else:
        out = family.log_density(o, y, eta, params, trials)
    if sides[0] or sides[1]:
        out = out - truncation_normaliser(o, family, eta, params, trials, lb, ub, sides)
    if weights is not None:
        out = weights * out
    return out


def truncation_sides(family, additions, lb=None) -> tuple[bool, bool]:
    """Which bounds are real: a constant bound at or beyond the support's end (−∞, or ≤ 0 for
    positive and count families) is no bound."""
    def real(bound, lower):
        if bound is None:
            return False
        if bound.text is not None:
            return True
        v = float(bound.value)
        if lower:
            return np.isfinite(v) and v > family.support_lower
        return np.isfinite(v)
    return real(additions.lb, True), real(additions.ub, False)
