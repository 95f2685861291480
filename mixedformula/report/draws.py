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
    from ..errors import FamilyError
    design = fit.design
    draws = PosteriorDraws.of_fit(fit, idx)
    eta = linpred(draws, design, new_groups="zero")
    rng = np.random.default_rng(seed)
    fam = fit.family
    if not hasattr(fam, "rvs"):
        return None, f"replicated data are not implemented for family {fam.name!r}"
    mu = fam.inverse_link(eta)
    out = np.empty_like(eta)
    trials = None if design.trials is None else \
        np.asarray(design.trials, dtype=float).reshape(-1)[None, :]
    for k, resp in enumerate(design.response_names):
        params = {}
        for d in fam.dpars:
            if (d, k) in design.dpar_keys:         # its own formula: per row
                from ..families.links import get_link
                params[d] = draws.dpar_rows(d, k, design, get_link(fam.dpar_link(d)))
            elif d == "sigma":
                params[d] = residual_sd_rows(draws, k)
                if params[d] is None:
                    return None, ("the residual sd varies by a grouping column that is not "
                                  "stored with this fit, so replicated data cannot be drawn")
            elif d == "thres":                     # ordinal: per row with cs() effects
                params[d] = draws.threshold_rows(design)
            else:
                params[d] = draws.dpar(d, resp if draws.multivariate else None,
                                       fam.fixed_dpars.get(d))[:, None]
        try:
            out[:, :, k] = fam.rvs(mu[:, :, k], params, rng, trials)
        except FamilyError as e:
            return None, str(e)
    return out, ""
