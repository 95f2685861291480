r"""Predictions and the pointwise log-likelihood of a model with one family per response
(brms' ``MV(poisson, gaussian)``; :class:`~mixedformula.families.multivariate.MultivariateFamily`).

Response k has its own family F_k, inverse link h_k and parameters θ_k (``sigma_y2``,
``shape_y1``, read from the posterior by name), and is evaluated on its own rows (where it is
observed):

* epred: E[y_ik] = F_k.mean(h_k(η_ik), θ_k, trials_ik) (h_k(η_ik) where the mean needs
  nothing else);
* response draws: y_ik⁽ˢ⁾ ~ F_k(h_k(η_ik⁽ˢ⁾), θ_k⁽ˢ⁾), independently across responses (no
  residual correlation between different families);
* pointwise log-likelihood (LOO): log p(y_i) = Σ_k log p_k(y_ik | η_ik, θ_k) over the
  responses observed in row i (with response k's addition terms where it has them).

Every family-specific formula is the family object's; nothing here looks at family names.
"""

from __future__ import annotations

import numpy as np


def is_mixed(family) -> bool:
    """One family per response (the family object answers ``response(k)`` per response)."""
    return getattr(family, "families", None) is not None


def response_params(draws, fam, rname: str, tags, n: int, names=None) -> dict:
    """Response ``rname``'s further parameters per draw, broadcasting to (S, n): σ from
    ``sigma_<resp>`` (per row with rescor_by tags), the others ``<dpar>_<resp>``
    (a family's fixed value, e.g. the ordinal disc, where it has no draws)."""
    out = {}
    for d in (fam.dpars if names is None else names):
        if d == "sigma":
            out[d] = draws.sigma_rows(rname, tags, n)
        else:
            out[d] = draws.dpar(d, rname, fixed=fam.fixed_dpars.get(d))[:, None]
    return out


def _part(design, k: int):
    parts = getattr(design, "response_parts", None) or design.part_designs
    return parts[k]


def _trials(design, k: int) -> np.ndarray | None:
    t = _part(design, k).trials
    return None if t is None else np.asarray(t, dtype=float)[None, :]


def _each(family, draws, eta, design, newdata):
    """(k, family, rows, η on those rows (S, n_k), parameters) per response."""
    S, n, r = eta.shape
    tags = draws.residual_tags(design, newdata)
    for k, rname in enumerate(design.response_names):
        fam = family.response(k)
        rows = design.rows(k)
        idx = np.arange(n)[rows]
        params = response_params(draws, fam, rname, None if tags is None else tags[idx],
                                 len(idx))
        yield k, fam, rows, eta[:, rows, k], params


def expected_value(family, draws, eta: np.ndarray, design, newdata) -> np.ndarray:
    """E[y | η, θ] per draw (S, n, r), each response with its own family."""
    out = np.full(eta.shape, np.nan)
    for k, fam, rows, e, params in _each(family, draws, eta, design, newdata):
        mu = fam.inverse_link(e)
        if fam.mean_dpars or fam.uses_trials:
            mu = fam.mean(mu, {d: params[d] for d in fam.mean_dpars}, _trials(design, k))
        out[:, rows, k] = mu
    return out


def draw_response(family, draws, eta: np.ndarray, design, newdata, rng) -> np.ndarray:
    """One response draw per posterior draw and row (S, n, r), response k from its family."""
    out = np.full(eta.shape, np.nan)
    for k, fam, rows, e, params in _each(family, draws, eta, design, newdata):
        S, m = e.shape
        p = {d: np.broadcast_to(v, (S, m)) for d, v in params.items()}
        t = _trials(design, k)
        out[:, rows, k] = fam.rvs(fam.inverse_link(e), p, rng,
                                  None if t is None else np.broadcast_to(t, (S, m)))
    return out


def loglik_rows(family, draws, eta: np.ndarray, design) -> np.ndarray:
    """log p(y_i | θ⁽ˢ⁾) per draw and row (S, n): the sum over the responses observed in row
    i of each response's own log-density (its addition terms included)."""
    from ..design.additions import has_additions
    from ..design.additions import loglik_rows as addition_rows
    y = np.asarray(design.y, dtype=float)
    S, n, r = eta.shape
    out = np.zeros((S, n))
    for k, fam, rows, e, params in _each(family, draws, eta, design, None):
        part = _part(design, k)
        yk = y[rows, k][None, :]
        t = _trials(design, k)
        if has_additions(part):
            out[:, rows] += addition_rows(fam, yk, e, params, part, t)
        else:
            out[:, rows] += fam.logpdf(yk, e, params, trials=t)
    return out
