r"""Log-densities written once for numpy and PyTensor, and the family base class that uses them.

A family derived from :class:`LogDensityFamily` writes its log-density once, as
``_logdensity(o, y, eta, p, trials)`` with the arithmetic taken from ``o`` (:data:`NUMPY` or
:data:`TENSOR`): ``logpdf`` evaluates it with numpy (LOO, tests) and ``pymc_likelihood`` adds a
``pm.CustomDist`` whose logp is the same expression in PyTensor (draws from ``family.rvs``), so
the sampler's likelihood and the pointwise log-likelihood cannot drift apart. ``p`` maps each
further parameter to a scalar or a per-row array (``zi`` may be (n,) once it is predicted).

Log-space pieces (Stan's names): ``log1m_exp(x)`` = log(1 − eˣ) for x < 0 (Mächler 2012),
``logaddexp``, ``log_mu`` / ``log_p`` from η through the link (:mod:`.links`), so no
probability is rounded to 0 or 1 before its logarithm is taken.

Mixture helpers (brms' inst/chunks/fun_zero_inflated_*.stan, fun_hurdle_*.stan):

* zero-inflated: log p(0) = logaddexp(log zi, log(1 − zi) + log f(0)),
  log p(y > 0) = log(1 − zi) + log f(y);
* hurdle: log p(0) = log hu, log p(y > 0) = log(1 − hu) + log f(y) − log(1 − f(0)) for counts
  (log1m_exp(log f(0))), log(1 − hu) + log f(y) for continuous f.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, gammaln

from .base import Family
from .links import Link, log1mexp


class _Numpy:
    """numpy arithmetic for :meth:`LogDensityFamily._logdensity`."""

    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    exp = staticmethod(np.exp)
    expm1 = staticmethod(np.expm1)
    sqrt = staticmethod(np.sqrt)
    square = staticmethod(np.square)
    cos = staticmethod(np.cos)
    gammaln = staticmethod(gammaln)
    betaln = staticmethod(betaln)

    @staticmethod
    def log_factorial(y):
        """log y! = log Γ(y + 1)."""
        return gammaln(np.asarray(y, dtype=float) + 1.0)

    @staticmethod
    def log_choose(n, y):
        """log C(n, y) = log Γ(n + 1) − log Γ(y + 1) − log Γ(n − y + 1)."""
        n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
        return gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)
    logaddexp = staticmethod(np.logaddexp)
    where = staticmethod(np.where)
    eq = staticmethod(np.equal)

    @staticmethod
    def softplus(x):
        """log(1 + eˣ)."""
        return np.logaddexp(0.0, x)

    @staticmethod
    def log1m_exp(x):
        """log(1 − eˣ), x ≤ 0."""
        return log1mexp(-np.asarray(x, dtype=float))

    @staticmethod
    def mu(link: Link, eta):
        return link.inverse(eta)

    @staticmethod
    def log_mu(link: Link, eta):
        return link.log_mu(eta)

    @staticmethod
    def log_p(link: Link, eta):
        return link.log_p(eta)

    @staticmethod
    def log_ndtr(x):
        from scipy.special import log_ndtr
        return log_ndtr(x)

    @staticmethod
    def gammainc(a, x):
        from scipy.special import gammainc
        return gammainc(a, x)

    @staticmethod
    def gammaincc(a, x):
        from scipy.special import gammaincc
        return gammaincc(a, x)

    @staticmethod
    def betainc(a, b, x):
        from scipy.special import betainc
        return betainc(a, b, x)

    @staticmethod
    def log_i0(x):
        """log I₀(x) = log(e⁻ˣ I₀(x)) + x (x ≥ 0; the scaled Bessel function does not
        overflow)."""
        from scipy.special import ive
        return np.log(ive(0, x)) + x


class _Tensor:
    """PyTensor arithmetic for :meth:`LogDensityFamily._logdensity` (same names as _Numpy)."""

    def __getattr__(self, name):
        import pytensor.tensor as pt
        table = {"log": pt.log, "log1p": pt.log1p, "exp": pt.exp, "expm1": pt.expm1,
                 "sqrt": pt.sqrt, "square": pt.sqr, "gammaln": pt.gammaln,
                 "logaddexp": pt.logaddexp, "where": pt.switch,
                 "log1m_exp": pt.log1mexp, "softplus": pt.softplus, "cos": pt.cos,
                 "eq": pt.eq, "gammainc": pt.gammainc, "gammaincc": pt.gammaincc, "betainc": pt.betainc}
        if name in table:
            return table[name]
        raise AttributeError(name)

    @staticmethod
    def betaln(a, b):
        import pytensor.tensor as pt
        return pt.gammaln(a) + pt.gammaln(b) - pt.gammaln(a + b)

    @staticmethod
    def log_factorial(y):
        import pytensor.tensor as pt
        return pt.gammaln(y + 1.0)

    @staticmethod
    def log_choose(n, y):
        import pytensor.tensor as pt
        return pt.gammaln(n + 1.0) - pt.gammaln(y + 1.0) - pt.gammaln(n - y + 1.0)

    @staticmethod
    def mu(link: Link, eta):
        return link.inverse_tensor(eta)

    @staticmethod
    def log_mu(link: Link, eta):
        import pytensor.tensor as pt
        if link.log_p_tensor is not None:
            return link.log_p_tensor(eta)[0]
        if link.name == "log":
            return eta
        return pt.log(link.inverse_tensor(eta))

    @staticmethod
    def log_p(link: Link, eta):
        return link.log_p_tensor(eta)

    @staticmethod
    def log_ndtr(x):
        from .links import log_ndtr_tensor
        return log_ndtr_tensor(x)

    @staticmethod
    def log_i0(x):
        import pytensor.tensor as pt
        return pt.log(pt.ive(0, x)) + x


class _TensorWithYConstant(_Tensor):
    """:class:`_Tensor` for the sampler's likelihood of an observed ``value`` whose y-only
    term (−log y!, or log C(n, y) of the binomial families) was computed once when the model
    was built (``Family.y_constant``, held as shared data ``data__y_const``):
    ``log_factorial(value)`` / ``log_choose(n, value)`` read it instead of evaluating
    log Γ(y + 1) over every row at every gradient (a constant y would be folded by PyTensor,
    shared data are not).  Any other argument (log f(0) of a mixture: y = 0) is computed."""

    def __init__(self, value, y_const):
        self._value, self._y_const = value, y_const

    def log_factorial(self, y):
        if y is self._value:
            return -self._y_const
        return _Tensor.log_factorial(y)

    def log_choose(self, n, y):
        """log C(n, y) of the binomial families: their y-only term (``Family.y_constant``)."""
        if y is self._value:
            return self._y_const
        return _Tensor.log_choose(n, y)


NUMPY = _Numpy()
TENSOR = _Tensor()


def log_factorial_constant(y) -> np.ndarray:
    """The y-only term −log y! of the count families' log-densities (``Family.y_constant``)."""
    return -NUMPY.log_factorial(y)


def zero_inflated(o, y, log_f, log_f0, zi):
    """log p(y) of a zero-inflated f: logaddexp(log zi, log(1 − zi) + log f(0)) at y = 0,
    log(1 − zi) + log f(y) above (``log_f`` must be finite at y = 0 too)."""
    lz, l1z = o.log(zi), o.log1p(-zi)
    return o.where(o_eq0(o, y), o.logaddexp(lz, l1z + log_f0), l1z + log_f)


def hurdle(o, y, log_f, hu, log_f0=None):
    """log p(y) of a hurdle model: log hu at y = 0, log(1 − hu) + log f(y) above, minus
    log(1 − f(0)) = log1m_exp(log f(0)) when f is a count distribution (``log_f0`` given)."""
    pos = o.log1p(-hu) + log_f
    if log_f0 is not None:
        pos = pos - o.log1m_exp(log_f0)
    return o.where(o_eq0(o, y), o.log(hu), pos)


def in_domain(family, o, eta, out):
    """``out`` where μ = g⁻¹(η) lies in the family's domain (μ ≥ its lower end), −∞ elsewhere;
    ``out`` itself for links that cannot leave it (log, logit, ...)."""
    if not family.link_can_leave_domain:
        return out
    return o.where(o.mu(family.link_obj, eta) >= family.mu_domain[0], out, -np.inf)


def o_eq0(o, y):
    if o is NUMPY:
        return np.asarray(y) == 0
    import pytensor.tensor as pt
    return pt.eq(y, 0)


def safe(o, y, bad, value):
    """y with the entries where ``bad`` holds replaced by ``value`` (a branch of ``where`` that
    is not selected must still be finite, or PyTensor's gradient through it is NaN)."""
    return o.where(bad, value, y)


def poisson_log_f(o, y, lmu, mu):
    """log Poisson(y | μ) from log μ: y log μ − μ − log y! (y log μ = 0 at y = 0)."""
    return o.where(o_eq0(o, y), 0.0, y * lmu) - mu - o.log_factorial(y)


def negbinomial_log_f(o, y, lmu, a):
    """log NegBinomial₂(y | μ, a) (Stan's neg_binomial_2) from log μ, and log f(0) =
    a log(a/(a + μ)) = −a softplus(log μ − log a) (not a difference of logs, which loses the
    digits of log f(0) ≈ −μ at μ = e^{−30}); log(μ/(a + μ)) = −softplus(log a − log μ)."""
    la = o.log(a)
    l0 = -a * o.softplus(lmu - la)
    return (o.gammaln(y + a) - o.gammaln(a) - o.log_factorial(y) + l0
            - o.where(o_eq0(o, y), 0.0, y * o.softplus(la - lmu))), l0


def beta_log_f(o, y, lmu, l1mu, phi):
    """log Beta(y | a = μφ, b = (1 − μ)φ), 0 < y < 1, with log μ and log(1 − μ) from η.

    log B(a, b) = log Γ(1 + a) + log Γ(1 + b) − log Γ(φ) − log a − log b (a + b = φ), with
    log a = log φ + log μ: finite when a or b underflows (cloglog at η = 12: 1 − μ = e^{−e¹²},
    log b = log φ − e¹²), where log Γ(b) would be log Γ(0) = ∞."""
    lphi = o.log(phi)
    la, lb = lphi + lmu, lphi + l1mu
    a, b = o.exp(la), o.exp(lb)
    lbeta = o.gammaln(1.0 + a) + o.gammaln(1.0 + b) - o.gammaln(phi) - la - lb
    return (a - 1.0) * o.log(y) + (b - 1.0) * o.log1p(-y) - lbeta


def gamma_log_f(o, y, lmu, a):
    """log Gamma(y | a, rate a/μ) from log μ."""
    return (a * (o.log(a) - lmu) - o.gammaln(a) + (a - 1.0) * o.log(y)
            - a * y * o.exp(-lmu))


def lognormal_log_f(o, y, mu, sigma):
    """log LogNormal(y | μ, σ)."""
    ly = o.log(y)
    z = (ly - mu) / sigma
    return -0.5 * z * z - o.log(sigma) - 0.5 * np.log(2 * np.pi) - ly


class LogDensityFamily(Family):
    """A family whose log-density is one expression for numpy and PyTensor (module docstring).

    Subclasses implement ``_logdensity(o, y, eta, p, trials)`` and ``rvs``; the further
    parameters get identity links in ``links`` (brms prints ``mu = logit; phi = identity``)."""

    @property
    def links(self) -> dict[str, str]:
        return {"mu": self.link, **{d: "identity" for d in self.dpars}}

    def _logdensity(self, o, y, eta, p, trials):
        raise NotImplementedError

    def log_density(self, o, y, eta, params, trials=None):
        return self._logdensity(o, y, eta, params, trials)

    def logpdf(self, y, eta, params=None, trials=None):
        y = np.asarray(y, dtype=float)
        eta = np.asarray(eta, dtype=float)
        p = {k: np.asarray(v, dtype=float) for k, v in (params or {}).items()}
        t = None if trials is None else np.asarray(trials, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = self._logdensity(NUMPY, y, eta, p, t)
        return np.asarray(out, dtype=float)

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs",
                        y_const=None):
        return log_density_dist(self, name, eta, params, observed, trials, dims, y_const)


def log_density_dist(family, name, eta, params, observed, trials=None, dims="obs",
                     y_const=None, domain=False):
    """``name`` ~ ``family`` observed at ``observed`` as one ``pm.CustomDist`` whose logp is
    ``family.log_density(TENSOR, ...)`` (the expression numpy's logpdf evaluates), restricted
    to μ's domain (:func:`in_domain`) when ``domain`` (``_logdensity`` of a
    :class:`LogDensityFamily` restricts it itself), draws from ``family.rvs``.  ``y_const``: the shared
    y-only term of ``family.y_constant`` (read in place of log y!, see
    :class:`_TensorWithYConstant`).  No check on the observed value is evaluated per gradient:
    the response was validated once (``Family.check_response``)."""
    import pymc as pm
    import pytensor.tensor as pt
    names = tuple(d for d in family.dpars)
    fam = family
    # trials(n) and the y-only term enter as parameters of the distribution (shared data from
    # the model builder: a re-fit on other data reuses the compiled model); numeric in random
    nt = 0 if trials is None else 1
    nc = 0 if y_const is None else 1
    k = len(names)

    def logp(value, eta_, *ps):
        o = TENSOR if y_const is None else _TensorWithYConstant(value, ps[-1])
        p = dict(zip(names, ps[:k]))
        out = fam.log_density(o, value, eta_, p, ps[k] if nt else None)
        return in_domain(fam, o, eta_, out) if domain else out

    def random(eta_, *ps, rng=None, size=None):
        eta_ = np.asarray(eta_, dtype=float)
        if size is not None:
            eta_ = np.broadcast_to(eta_, size)
        mu = fam.inverse_link(eta_)
        return fam.rvs(mu, {d: np.asarray(v, dtype=float) for d, v in zip(names, ps[:k])},
                       rng, np.asarray(ps[k], dtype=float) if nt else None)

    # float64 throughout: a Python float 2.5 would otherwise become a float32 constant
    ps = [pt.cast(pt.as_tensor_variable(params[d]), "float64") for d in names]
    if trials is not None:
        ps.append(pt.cast(pt.as_tensor_variable(trials), "float64"))
    if y_const is not None:
        ps.append(y_const)
    return pm.CustomDist(name, eta, *ps,
                         logp=logp, random=random, observed=observed, dims=dims)


def observed_log_prob(lp, y):
    """log P(Y = y) picked from the K category log-probabilities ``lp`` (..., K) by the integer
    code y in 1..K (broadcast against ``lp``'s leading axes); −∞ where y is not a code."""
    y = np.asarray(y, dtype=float)
    lp = np.broadcast_to(lp, np.broadcast_shapes(lp.shape[:-1], y.shape) + lp.shape[-1:])
    K = lp.shape[-1]
    yi = np.clip(np.nan_to_num(y, nan=1.0).astype(int), 1, K) - 1
    yi = np.broadcast_to(yi, lp.shape[:-1])
    out = np.take_along_axis(lp, yi[..., None], axis=-1)[..., 0]
    return np.where((y >= 1) & (y <= K) & (y == np.round(y)), out, -np.inf)
