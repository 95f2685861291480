"""Posterior draws of the linear predictor and of replicated data, from brms-named draws.

η⁽ˢ⁾ = Xβ⁽ˢ⁾ + Zu⁽ˢ⁾ of the fitted rows is :func:`mixedformula.results.posterior.linpred`
(rows with a missing level contribute 0), σ per row (``rescor_by``: the row's level)
:class:`~mixedformula.results.posterior.PosteriorDraws`. Replicated data draw
y_rep⁽ˢ⁾ from the family with mean g⁻¹(η⁽ˢ⁾):

* gaussian: y_rep = η + σ ε; student: η + σ t_ν; lognormal: exp(η + σ ε);
* bernoulli / binomial(trials) / poisson: their usual draws with p or λ = g⁻¹(η);
* negbinomial: Poisson(Gamma(shape, μ / shape)); gamma: Gamma(shape, μ / shape).

Per-response marginals only are drawn (residual correlations do not change them). Nothing here
rebuilds a design matrix: ``fit.design`` is read as it is.
"""

from __future__ import annotations

import numpy as np

from ..errors import MixedFormulaError
from ..families import inverse_link_numpy
from ..results.posterior import PosteriorDraws, linpred


def draw_indices(posterior, max_draws: int, seed: int = 0) -> np.ndarray:
    """Up to ``max_draws`` indices into the pooled (chain·draw) axis, spread evenly."""
    total = int(posterior.sizes["chain"]) * int(posterior.sizes["draw"])
    if total <= max_draws:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max_draws).round().astype(int))


def linear_predictor(fit, idx: np.ndarray) -> np.ndarray:
    """η = Xβ + Zu for the fitted rows, draws ``idx``: array (S, n, r)
    (:func:`mixedformula.results.posterior.linpred`)."""
    return linpred(PosteriorDraws.of_fit(fit, idx), fit.design, new_groups="zero")


def residual_sd_rows(draws: PosteriorDraws, k: int) -> np.ndarray | None:
    """σ per draw and row (S, n) for response k, or None if it cannot be mapped to rows
    (``rescor_by`` fits whose grouping column is not stored with the fit)."""
    design = draws.design
    resp = design.response_names[k] if draws.multivariate else None
    try:
        sig = draws.sigma_rows(resp, draws.residual_tags(design), design.nobs)
    except MixedFormulaError:
        return None
    return np.broadcast_to(sig, (draws.S, design.nobs))


def replicate(fit, idx: np.ndarray, seed: int = 0) -> tuple[np.ndarray | None, str]:
    """Replicated responses y_rep (S, n, r) and a note ('' if all fine)."""
    design = fit.design
    draws = PosteriorDraws.of_fit(fit, idx)
    eta = linpred(draws, design, new_groups="zero")
    rng = np.random.default_rng(seed)
    fam = fit.family
    name = fam.name
    mu = inverse_link_numpy(fam.link)(eta)
    out = np.empty_like(eta)
    for k, resp in enumerate(design.response_names):
        m = mu[:, :, k]
        if name in ("gaussian", "student", "lognormal"):
            sig = residual_sd_rows(draws, k)
            if sig is None:
                return None, ("the residual sd varies by a grouping column that is not stored "
                              "with this fit, so replicated data cannot be drawn")
            if name == "gaussian":
                out[:, :, k] = m + sig * rng.standard_normal(m.shape)
            elif name == "student":
                nu = draws.dpar("nu", resp)[:, None]
                out[:, :, k] = m + sig * rng.standard_t(nu, size=m.shape)
            else:
                out[:, :, k] = np.exp(m + sig * rng.standard_normal(m.shape))
        elif name == "bernoulli":
            out[:, :, k] = rng.random(m.shape) < m
        elif name == "binomial":
            trials = np.asarray(design.trials, dtype=float).reshape(-1)
            out[:, :, k] = rng.binomial(trials.astype(np.int64)[None, :], np.clip(m, 0, 1))
        elif name == "poisson":
            out[:, :, k] = rng.poisson(np.clip(m, 0, 1e12))
        elif name in ("negbinomial", "gamma"):
            shape = draws.dpar("shape", resp)[:, None]
            lam = rng.gamma(shape, np.clip(m, 1e-300, None) / shape)
            out[:, :, k] = rng.poisson(lam) if name == "negbinomial" else lam
        else:
            return None, f"replicated data are not implemented for family {name!r}"
    return out, ""
