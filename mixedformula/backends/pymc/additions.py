"""The conditional engine's likelihood with brms' addition terms (weights, cens, trunc, se).

One observed ``pm.CustomDist`` named ``y`` whose logp per row is
:func:`mixedformula.families.censoring.addition_loglik` in PyTensor: w_i · [log p(y_i), log F,
log S or log(F(y2) − F(y)) by the censoring code, minus the truncation normaliser], so
``log_likelihood`` (LOO) holds w_i · log p(y_i) as brms' ``log_lik``. With ``se()`` the residual
sd of row i is sqrt(se_i² + σ²) (σ ≡ 0 without ``se(sigma = TRUE)``, brms). The addition
columns are shared data (re-fittable like y and X).
"""

from __future__ import annotations

import numpy as np

from ...design.additions import residual_sd
from ...families.censoring import addition_loglik, truncation_sides


def add_addition_likelihood(family, eta, params: dict, y: np.ndarray, design, data,
                            name: str = "y", dims: str | None = "obs") -> None:
    """Add the observed ``y`` of a univariate model with addition terms (module docstring);
    ``data(name, value)`` makes the model's shared data. ``name``: the observed variable
    (``y__<resp>`` for one response of a multivariate model, whose shared data then carry
    the suffix ``__<resp>``; ``design`` is then that response's part, ``eta`` and ``y`` its
    rows)."""
    sfx = name[1:] if name != "y" else ""
    _data = data

    def data(key, value):
        return _data(key + sfx, value)
    import pymc as pm
    import pytensor.tensor as pt
    from ...families.logdensity import TENSOR
    adds = design.formula.additions
    if (design.cens is not None or design.trunc is not None) and not family.has_cdf:
        raise family.no_cdf("cens()/trunc()")
    trials = None if design.trials is None else np.asarray(design.trials, dtype=float)
    extra = {}
    if design.weights is not None:
        extra["weights"] = data("weights", np.asarray(design.weights, dtype=float))
    if design.cens is not None:
        extra["codes"] = data("cens", np.asarray(design.cens.codes, dtype=np.int64))
        extra["y2"] = data("cens_y2", np.asarray(design.cens.y2, dtype=float))
    sides = (False, False)
    if design.trunc is not None:
        sides = truncation_sides(family, adds)
        if sides[0]:
            extra["lb"] = data("trunc_lb", np.asarray(design.trunc[0], dtype=float))
        if sides[1]:
            extra["ub"] = data("trunc_ub", np.asarray(design.trunc[1], dtype=float))
    params = dict(params)
    if design.se is not None:
        params["sigma"] = residual_sd(params["sigma"], data("se", np.asarray(design.se,
                                                                              dtype=float)))
    pnames = tuple(params)
    keys = tuple(extra)
    ps = [pt.cast(pt.as_tensor_variable(params[k]), "float64") for k in pnames]

    def logp(value, eta_, *args):
        p = dict(zip(pnames, args[:len(pnames)]))
        kw = dict(zip(keys, args[len(pnames):]))
        return addition_loglik(TENSOR, family, value, eta_, p, trials, sides=sides, **kw)

    def random(eta_, *args, rng=None, size=None):
        p = {k: np.asarray(v, dtype=float) for k, v in zip(pnames, args[:len(pnames)])}
        eta_ = np.asarray(eta_, dtype=float)
        if size is not None:
            eta_ = np.broadcast_to(eta_, size)
        return family.rvs(family.inverse_link(eta_), p, rng, trials)

    obs = data("y", y[:, 0])
    pm.CustomDist(name, eta, *ps, *[extra[k] for k in keys], logp=logp, random=random,
                  observed=obs, dims=dims)
