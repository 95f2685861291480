r"""The ordinal families' shared math and base class: brms' ``cumulative``, ``sratio``,
``cratio``, ``acat`` (brms 2.18, inst/chunks/fun_<family>_<link>.stan and the code brms
generates for them).

A response with K ordered categories 1..K, a linear predictor η (no intercept: the K − 1
thresholds τ_1..τ_{K−1} take its place), a discrimination ``disc`` (fixed at 1 unless
modelled), F the link's inverse (logit: expit, probit: Φ, cloglog: 1 − exp(−eˣ)), S = 1 − F:

* cumulative: P(y ≤ k) = F(disc (τ_k − η)), so with a_k = disc (τ_k − η)
  P(y = k) = F(a_k) − F(a_{k−1}) (a_0 = −∞, a_K = +∞); τ ordered (``ordered`` in brms);
* sratio (stopping ratio), a_k = disc (τ_k − η):
  P(y = k) = F(a_k) ∏_{j<k} S(a_j), P(y = K) = ∏_{j<K} S(a_j);
* cratio (continuation ratio), a_k = disc (η − τ_k):
  P(y = k) = S(a_k) ∏_{j<k} F(a_j), P(y = K) = ∏_{j<K} F(a_j);
* acat (adjacent category), a_k = disc (η − τ_k):
  P(y = k) ∝ ∏_{j<k} F(a_j) ∏_{j≥k} S(a_j) (logit: ∝ exp Σ_{j<k} a_j, brms' form).

Everything is computed as log-probabilities of all K categories from log F and log S
(the link's ``log_p``: log_expit, log_ndtr, −eˣ / log1mexp(eˣ)), never from rounded
probabilities: a difference F(u) − F(l) (u > l) is taken in the tail where it is not
cancelled, log F(u) + log1m_exp(log F(l) − log F(u)) when u + l < 0 and
log S(l) + log1m_exp(log S(u) − log S(l)) otherwise (logit: the exact
log expit(u) + log expit(−l) + log1m_exp(l − u)).

The thresholds reach the family as the further parameter ``thres`` of shape (..., K − 1)
(per row with category-specific effects ``cs(x)``: τ_k − x_csᵀ b_k, brms'
``Intercept - transpose(mucs[n])``; with cumulative, crossing per-row thresholds give the
category probability 0); the posterior names them ``b_Intercept[k]`` (brms),
on the scale of the uncentred predictors: the sampler's centred thresholds τ_c (the linear
predictor uses X − x̄) give τ = τ_c + x̄ᵀ b, brms' ``b_Intercept = Intercept + dot(means_X, b)``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..errors import FamilyError
from ..priors import Prior
from .base import Family
from .logdensity import observed_log_prob


class _Np:
    concat = staticmethod(lambda xs: np.concatenate(xs, axis=-1))
    cumsum = staticmethod(lambda x: np.cumsum(x, axis=-1))
    where = staticmethod(np.where)
    minimum = staticmethod(np.minimum)

    @staticmethod
    def log1m_exp(x):
        from .links import log1mexp
        return log1mexp(-np.asarray(x, dtype=float))

    @staticmethod
    def logsumexp(x):
        from scipy.special import logsumexp
        return logsumexp(x, axis=-1, keepdims=True)

    @staticmethod
    def log_p(link, x):
        return link.log_p(x)

    @staticmethod
    def zeros_like_last(x):
        return np.zeros(x.shape[:-1] + (1,))


class _Pt:
    @staticmethod
    def concat(xs):
        import pytensor.tensor as pt
        return pt.concatenate(xs, axis=-1)

    @staticmethod
    def cumsum(x):
        import pytensor.tensor as pt
        return pt.cumsum(x, axis=-1)

    @staticmethod
    def where(c, a, b):
        import pytensor.tensor as pt
        return pt.switch(c, a, b)

    @staticmethod
    def minimum(a, b):
        import pytensor.tensor as pt
        return pt.minimum(a, b)

    @staticmethod
    def log1m_exp(x):
        import pytensor.tensor as pt
        return pt.log1mexp(x)

    @staticmethod
    def logsumexp(x):
        import pytensor.tensor as pt
        return pt.logsumexp(x, axis=-1, keepdims=True)

    @staticmethod
    def log_p(link, x):
        return link.log_p_tensor(x)

    @staticmethod
    def zeros_like_last(x):
        import pytensor.tensor as pt
        return pt.zeros_like(x[..., :1])


NP, PT = _Np(), _Pt()
#: keeps log1m_exp's argument below 0 in the branch of a difference that is not selected
_TINY = -1e-300


def _log_diff_cdf(o, link, u, lu, l, ll):
    """log(F(u) − F(l)) for u > l, from (log F, log S) pairs ``lu``, ``ll`` (module docstring)."""
    if link.name == "logit":
        return lu[0] + ll[1] + o.log1m_exp(o.minimum(l - u, _TINY))
    lower = (u + l) < 0
    d_low = o.minimum(ll[0] - lu[0], _TINY)
    d_up = o.minimum(lu[1] - ll[1], _TINY)
    return o.where(lower, lu[0] + o.log1m_exp(d_low), ll[1] + o.log1m_exp(d_up))


def cumulative_log_probs(o, link, eta, thres, disc=1.0):
    """log P(y = k), k = 1..K, (..., K) for η (...) and thresholds (..., K − 1)."""
    a = disc * (thres - eta[..., None])
    lF, lS = o.log_p(link, a)
    mids = _log_diff_cdf(o, link, a[..., 1:], (lF[..., 1:], lS[..., 1:]),
                         a[..., :-1], (lF[..., :-1], lS[..., :-1]))
    if getattr(thres, "ndim", 0) > 1:
        # per-row thresholds (cs()): where they cross, P(y = k) = F(a_k) − F(a_{k−1}) < 0,
        # which brms' Stan code rejects; here the category has no probability
        mids = o.where(a[..., 1:] > a[..., :-1], mids, -np.inf)
    return o.concat([lF[..., :1], mids, lS[..., -1:]])


def cumulative_observed_log_prob(link, eta, thres, disc, y):
    """log P(y = k) of the observed category k = y only (PyTensor; the sampler's likelihood):
    the two thresholds of the category gathered by its code before any log-space arithmetic,
    log F(a_1) for k = 1, log S(a_{K−1}) for k = K, else log(F(a_k) − F(a_{k−1})) in the
    stable form of :func:`_log_diff_cdf` (−∞ where per-row thresholds cross) — the entry of
    :func:`cumulative_log_probs` at y, for 2 link evaluations per row instead of K − 1."""
    import pytensor.tensor as pt
    o = PT
    k = pt.cast(y, "int64")
    n_thres = thres.shape[-1]
    iu = pt.minimum(k, n_thres) - 1                  # τ_k (τ_{K−1} for the last category)
    il = pt.maximum(k - 1, 1) - 1                     # τ_{k−1} (τ_1 for the first)
    if thres.ndim > 1:                                # per-row thresholds
        rows = pt.arange(thres.shape[0])
        tu, tl = thres[rows, iu], thres[rows, il]
    else:
        tu, tl = thres[iu], thres[il]
    u, l = disc * (tu - eta), disc * (tl - eta)
    lu, ll = o.log_p(link, u), o.log_p(link, l)
    mid = _log_diff_cdf(o, link, u, lu, l, ll)
    if thres.ndim > 1:
        mid = pt.switch(u > l, mid, -np.inf)
    return pt.switch(pt.eq(k, 1), lu[0], pt.switch(pt.gt(k, n_thres), ll[1], mid))


def _gather(thres, i):
    """τ at the 0-based index i of each row (thresholds shared, (K − 1,), or per row)."""
    import pytensor.tensor as pt
    if thres.ndim > 1:
        return thres[pt.arange(thres.shape[0]), i]
    return thres[i]


def _sequential_observed(link, eta, thres, disc, y, sign, stop):
    """log P(y = k) of the observed category of a sequential model (PyTensor): with
    a_j = sign · disc (τ_j − η) and (log F, log S)(a_j) = (ℓ₀, ℓ₁),

        log P(y = k) = Σ_{j<k} ℓ_pass(a_j) + [k < K] ℓ_stop(a_k),   pass = 1 − stop,

    the entry at y of :func:`_sequential`'s cumulative sum: the passing terms masked by j < k
    (one link evaluation per threshold, only the one of the two log-probabilities used) and
    the stopping term at the gathered τ_k alone (no K-wide log-probabilities, concatenation
    or one-hot sum). sratio: sign +1, stop = log F; cratio: sign −1, stop = log S."""
    import pytensor.tensor as pt
    k = pt.cast(y, "int64")
    n_thres = thres.shape[-1]
    a = sign * disc[..., None] * (thres - eta[..., None])
    passing = PT.log_p(link, a)[1 - stop]
    before = pt.sum(pt.switch(pt.lt(pt.arange(n_thres), k[..., None] - 1), passing, 0.0),
                    axis=-1)
    tk = _gather(thres, pt.minimum(k, n_thres) - 1)
    last = PT.log_p(link, sign * disc * (tk - eta))[stop]
    return before + pt.switch(pt.gt(k, n_thres), 0.0, last)


def sratio_observed_log_prob(link, eta, thres, disc, y):
    """sratio's log P(y = k) of the observed category: :func:`_sequential_observed` with
    a_j = disc (τ_j − η), stopping with log F, passing with log S."""
    return _sequential_observed(link, eta, thres, disc, y, 1.0, 0)


def cratio_observed_log_prob(link, eta, thres, disc, y):
    """cratio's log P(y = k) of the observed category: :func:`_sequential_observed` with
    a_j = disc (η − τ_j), stopping with log S, passing with log F."""
    return _sequential_observed(link, eta, thres, disc, y, -1.0, 1)


def acat_observed_log_prob(link, eta, thres, disc, y):
    """acat's log P(y = k) of the observed category (PyTensor): u_k − logsumexp(u) with the
    K unnormalised log-probabilities u of :func:`acat_log_probs` (the normaliser needs all K:
    one logsumexp), u_y gathered by the response code instead of a one-hot sum. Logit link
    with shared thresholds: u_k = Σ_{j<k} disc (η − τ_j) = disc ((k − 1) η − C_{k−1}),
    C_m = τ_1 + ... + τ_m computed once for all rows, so no per-row cumulative sum; other
    links: log F and log S of every threshold (module docstring), the entry y gathered."""
    import pytensor.tensor as pt
    k = pt.cast(y, "int64")
    d = disc[..., None]
    if link.name == "logit" and thres.ndim == 1:
        C = pt.concatenate([pt.zeros((1,), dtype=thres.dtype), pt.cumsum(thres)])
        steps = pt.arange(thres.shape[0] + 1).astype("float64")
        u = d * (eta[..., None] * steps - C)
        uy = disc * ((k - 1).astype("float64") * eta - C[k - 1])
        return uy - pt.logsumexp(u, axis=-1)
    lp = acat_log_probs(PT, link, eta, thres, d)      # (n, K), normalised
    return lp[pt.arange(lp.shape[0]), k - 1]


def _sequential(o, first, rest):
    """log P for the sequential models: category k < K stops with ``first`` (log of the
    stopping probability at k) after passing 1..k−1 with ``rest``; K passes all."""
    c = o.cumsum(rest)
    before = o.concat([o.zeros_like_last(rest), c[..., :-1]])
    return o.concat([first + before, c[..., -1:]])


def sratio_log_probs(o, link, eta, thres, disc=1.0):
    lF, lS = o.log_p(link, disc * (thres - eta[..., None]))
    return _sequential(o, lF, lS)


def cratio_log_probs(o, link, eta, thres, disc=1.0):
    lF, lS = o.log_p(link, disc * (eta[..., None] - thres))
    return _sequential(o, lS, lF)


def acat_log_probs(o, link, eta, thres, disc=1.0):
    a = disc * (eta[..., None] - thres)
    if link.name == "logit":
        u = o.concat([o.zeros_like_last(a), o.cumsum(a)])
    else:
        lF, lS = o.log_p(link, a)
        z = o.zeros_like_last(a)
        # Σ_{j<k} log F_j + Σ_{j≥k} log S_j, the second as a reversed cumulative sum (a
        # difference of totals would cancel: log S = −e^a is huge for cloglog)
        tail = o.cumsum(lS[..., ::-1])[..., ::-1]
        u = o.concat([z, o.cumsum(lF)]) + o.concat([tail, z])
    return u - o.logsumexp(u)


def category_codes(values, name: str, ordered_needed: bool = True):
    """An ordinal response as floats 1..K: integers as they are, an ordered pandas
    Categorical (or R factor) by its category order; anything else a FamilyError."""
    import pandas as pd
    s = pd.Series(values)
    if isinstance(s.dtype, pd.CategoricalDtype):
        if ordered_needed and not s.cat.ordered:
            raise FamilyError(
                f"response {name!r} is an unordered categorical: an ordinal family needs the "
                "categories in order (pd.Categorical(..., ordered=True) or integers 1..K)")
        codes = s.cat.codes.to_numpy().astype(float) + 1.0
        codes[s.isna().to_numpy()] = np.nan
        return codes, [str(c) for c in s.cat.categories]
    if not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        raise FamilyError(
            f"response {name!r} holds {s.dtype} values: an ordinal family needs integer "
            "categories 1..K or an ordered categorical (pd.Categorical(values, "
            "categories=[...], ordered=True))")
    return s.to_numpy(dtype=float), None


class OrdinalFamily(Family):
    """Shared behaviour of the ordinal families (module docstring): ``mu`` is the linear
    predictor itself (identity inverse link, as brms' ``posterior_linpred``); the link goes
    into F; ``thres`` is the vector of K − 1 thresholds; ``disc`` is 1 unless given."""

    allowed_links = ("logit", "probit", "cloglog")
    default_link = "logit"
    dpars = ("thres", "disc")
    mean_dpars = ("thres", "disc")
    #: disc = 1 unless ``disc ~ ...`` (brms: exp of its linear predictor, log link)
    fixed_dpars = {"disc": 1.0}
    discrete = True
    #: the model's intercept is replaced by K − 1 thresholds (build: no Intercept; posterior:
    #: ``b_Intercept[k]``); predictions have a category axis
    thresholds: ClassVar[bool] = True
    #: thresholds ordered by construction (cumulative)
    ordered_thresholds: ClassVar[bool] = False
    #: category-specific effects cs() allowed (sratio, cratio, acat)
    allows_cs: ClassVar[bool] = True

    @staticmethod
    def _log_probs(o, link, eta, thres, disc):
        raise NotImplementedError

    #: log P(y | η, τ, disc) of the observed category alone in PyTensor,
    #: ``(link, eta, thres, disc, y) -> (n,)``, where the family's formula allows it
    #: without the other categories (cumulative); None: the entry y of all K log-probabilities
    _observed_log_prob = None

    def response_data(self, values, name: str):
        return category_codes(values, name)

    @property
    def links(self) -> dict[str, str]:
        return {"mu": self.link, "disc": "identity"}     # "log" when disc has a formula

    # μ is η (brms: the link applies to τ − η, not to η)
    def inverse_link(self, eta):
        return np.asarray(eta, dtype=float)

    def inverse_link_tensor(self, eta):
        return eta

    @property
    def link_can_leave_domain(self) -> bool:
        return False

    def n_categories(self, y) -> int:
        y = np.asarray(y, dtype=float)
        y = y[np.isfinite(y)]
        return int(np.max(y)) if y.size else 0

    def log_probs(self, eta, params) -> np.ndarray:
        """log P(y = k | η, τ), (..., K) (numpy)."""
        eta = np.asarray(eta, dtype=float)
        thres = np.asarray(params["thres"], dtype=float)
        disc = np.asarray(params.get("disc", 1.0), dtype=float)
        if disc.ndim:                 # per draw / row, broadcasting against η: a K axis
            disc = np.broadcast_to(disc, np.broadcast_shapes(disc.shape, eta.shape))[..., None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._log_probs(NP, self.link_obj, eta, thres, disc)

    def logpdf(self, y, eta, params=None, trials=None):
        return observed_log_prob(self.log_probs(eta, params), y)

    def mean(self, mu, params=None, trials=None):
        """The category probabilities P(y = k), (..., K) (brms' posterior_epred)."""
        return np.exp(self.log_probs(mu, params))

    def variance(self, mu, params=None, trials=None):
        p = self.mean(mu, params)
        k = np.arange(1, p.shape[-1] + 1)
        m = (p * k).sum(-1)
        return (p * k ** 2).sum(-1) - m ** 2

    def rvs(self, mu, params, rng, trials=None):
        p = self.mean(mu, params)
        c = np.cumsum(p, axis=-1)
        u = rng.random(c.shape[:-1] + (1,)) * c[..., -1:]
        return (u > c).sum(-1).astype(float) + 1.0

    def _check_y(self, y, trials, fail):
        bad = ~((y >= 1) & (y == np.round(y)))
        if bad.any():
            fail("integer categories 1, 2, ..., K (or an ordered categorical)", bad)
        if y.size and np.unique(y).size < 2:
            raise FamilyError(f"family {self.name!r} needs at least two response categories; "
                              f"the response has only {np.unique(y).size}")

    def default_intercept(self, y, centre=None) -> Prior:
        return Prior("student_t", (3.0, 0.0, 2.5), "Intercept")

    def default_sd_scale(self, y, centre=None) -> float:
        return 2.5

    def threshold_init(self, K: int) -> np.ndarray:
        """Starting thresholds: the logistic quantiles of equal category shares (ordered)."""
        p = np.arange(1, K) / K
        return np.log(p / (1 - p))

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        import pymc as pm
        import pytensor.tensor as pt
        fam, link = self, self.link_obj

        def logp(value, eta_, thres_, disc_):
            if fam._observed_log_prob is not None:
                return fam._observed_log_prob(link, eta_, thres_, disc_, value)
            lp = fam._log_probs(PT, link, eta_, thres_, disc_[..., None])
            onehot = pt.eq(pt.cast(value, "int64")[..., None] - 1,
                           pt.arange(thres_.shape[-1] + 1))
            return pt.sum(pt.switch(onehot, lp, 0.0), axis=-1)

        def random(eta_, thres_, disc_, rng=None, size=None):
            eta_ = np.asarray(eta_, dtype=float)
            if size is not None:
                eta_ = np.broadcast_to(eta_, size)
            return fam.rvs(eta_, {"thres": thres_, "disc": disc_}, rng)

        thres = pt.cast(pt.as_tensor_variable(params["thres"]), "float64")
        disc = pt.cast(pt.as_tensor_variable(params.get("disc", 1.0)), "float64")
        return pm.CustomDist(name, eta, thres, disc, logp=logp, random=random,
                             signature="(),(k),()->()", observed=observed, dims=dims)
