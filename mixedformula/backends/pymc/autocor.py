"""The PyMC likelihood of a model with brms' ``ar()`` or ``cosy()`` term (math:
:mod:`mixedformula.design.autocor`).

``ar``: ``ar`` (p,) with brms' default flat prior (unbounded, as brms 2.18's ``cov = FALSE``);
μ = η + Σ_k ar[k] e_{lag_k}, e = y − η gathered through the lag rows (a zero appended for
missing lags), then the family's own likelihood at μ.

``arma`` (arma()/ma()): ``ar`` (p,) and ``ma`` (q,), both flat and unbounded (brms 2.18's
``get_prior`` for cov = FALSE); the errors err_n = (y − η)_n − Σ_k ma[k] err_{n−k} by a scan over
the time positions (one step per position, all groups at once: a (positions × groups) matrix of
the residuals in group order, the last q errors of every group carried), then
μ = η + Σ_k ma[k] err_{lag_k} + Σ_k ar[k] err_{lag_k} and the family's likelihood at μ.

``cosy``: ``cosy`` ∈ (0, 1) (brms' bounds; default flat = uniform(0, 1)); the compound-
symmetric MVN of each group as one normal per row at its sequential conditional mean and sd,
from the residual sums of the earlier rows of the group (a cumulative sum in group order).
"""

from __future__ import annotations

import numpy as np

from ...errors import FamilyError
from ...priors import Prior, pymc_rv


def check_autocor_family(structure, family) -> None:
    """Refuse families and links whose autocorrelation we do not fit (brms fits ar() on the
    link scale for some, e.g. poisson: we do not)."""
    if structure.kind not in family.autocor_terms or family.link != "identity":
        two = structure.kind in ("ar", "arma")
        ok = "gaussian and student" if two else "gaussian"
        raise FamilyError(f"{structure.text} is supported for the {ok} famil"
                          f"{'ies' if two else 'y'} with the identity link, "
                          f"not {family.name}({family.link})")


def add_autocor_likelihood(structure, family, eta, params: dict, y_obs, priors, data):
    """Add ``y`` for a model with an ar()/cosy() term; ``data(name, value)`` makes the
    shared data variables, ``params`` the family's parameters (sigma, nu)."""
    import pymc as pm
    import pytensor.tensor as pt
    check_autocor_family(structure, family)
    n = len(structure.codes)
    if structure.kind == "ar":
        p_ar = priors.resolve("ar", Prior("flat", (), "ar"))
        ar = pymc_rv("ar", [p_ar.prior] * structure.p, shape=structure.p)
        lags = np.where(structure.lags < 0, n, structure.lags)
        e = pt.concatenate([y_obs - eta, pt.zeros((1,))])
        mu = eta + pt.dot(e[data("ar_lags", lags.astype(np.int64))], ar)
        return family.pymc_likelihood("y", mu, params, y_obs, None, dims="obs")
    if structure.kind == "arma":
        mu = eta + _arma_part(structure, y_obs - eta, priors, data)
        return family.pymc_likelihood("y", mu, params, y_obs, None, dims="obs")
    p_cs = priors.resolve("cosy", Prior("flat", (), "cosy")).prior
    if p_cs.dist == "flat":
        rho = pm.Uniform("cosy", 0.0, 1.0)
    else:
        rho = pymc_rv("cosy", [p_cs], lower=0.0, upper=1.0)
    order = data("cosy_order", structure.order.astype(np.int64))
    starts = data("cosy_starts", structure.starts.astype(np.int64))
    k = data("cosy_pos", structure.pos.astype(float))
    r = y_obs - eta
    csum = pt.concatenate([pt.zeros((1,)), pt.cumsum(r[order])])      # prefix sums, group order
    inv = np.empty(n, dtype=np.int64)
    inv[structure.order] = np.arange(n)
    before = csum[data("cosy_rank", inv)] - csum[starts]              # Σ r of earlier rows
    mean = eta + rho / (1.0 + (k - 1.0) * rho) * before
    sd = params["sigma"] * pt.sqrt((1.0 - rho) * (1.0 + k * rho) / (1.0 + (k - 1.0) * rho))
    return pm.Normal("y", mu=mean, sigma=sd, observed=y_obs, dims="obs")


def _arma_part(structure, resid, priors, data):
    """Σ_k ma[k] err_{n−k} + Σ_k ar[k] err_{n−k} with brms' sequential errors (module doc)."""
    import pytensor
    import pytensor.tensor as pt
    n, p, q = len(structure.codes), structure.p, structure.q
    ar = None
    if p:
        ar = pymc_rv("ar", [priors.resolve("ar", Prior("flat", (), "ar")).prior] * p, shape=p)
    ma = pymc_rv("ma", [priors.resolve("ma", Prior("flat", (), "ma")).prior] * q, shape=q)
    T, G = int(structure.pos.max()) + 1, len(structure.levels)
    at = np.full((T, G), n, dtype=np.int64)                  # row at (position, group), or n
    at[structure.pos, structure.codes] = np.arange(n)
    r = pt.concatenate([resid, pt.zeros((1,))])[data("arma_at", at)]          # (T, G)

    def step(r_t, hist, ma_):                                # hist[:, k-1] = err_{t−k}
        err_t = r_t - pt.dot(hist, ma_)
        return pt.concatenate([err_t[:, None], hist[:, :-1]], axis=1)

    hist = pytensor.scan(step, sequences=[r], outputs_info=[pt.zeros((r.shape[1], q))],
                         non_sequences=[ma], strict=True, return_updates=False)
    err = hist[:, :, 0][data("arma_pos", structure.pos.astype(np.int64)),
                        data("arma_codes", structure.codes.astype(np.int64))]
    e = pt.concatenate([err, pt.zeros((1,))])
    lags = data("ar_lags", np.where(structure.lags < 0, n, structure.lags).astype(np.int64))
    out = pt.dot(e[lags[:, :q]], ma)
    if p:
        out = out + pt.dot(e[lags[:, :p]], ar)
    return out
