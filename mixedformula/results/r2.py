r"""Bayesian R² (Gelman, Goodrich, Gabry & Vehtari 2019), as brms' ``bayes_R2()``.

Per posterior draw s, with ŷ⁽ˢ⁾ = E[y | θ⁽ˢ⁾] (posterior_epred, ``re_formula`` as in
predictions: ``None`` conditional on the group effects, ``"NA"``/``"~0"`` marginal) over the
fitted rows i = 1..n:

    R²⁽ˢ⁾ = V⁽ˢ⁾_ŷ / (V⁽ˢ⁾_ŷ + V⁽ˢ⁾_res),   V_ŷ = var_i(ŷ_i⁽ˢ⁾)  (n − 1 denominator)

with brms' (≥ 2.22) residual variance ``method``:

* ``"model"`` (default where brms has it: gaussian, bernoulli — families with
  ``bayes_r2_model``): V_res = mean_i Var(y_i | μ_i⁽ˢ⁾, θ⁽ˢ⁾) = σ² (gaussian; brms takes
  (mean_i σ_i)², equal unless σ varies by row) or mean_i μ_i(1 − μ_i) (bernoulli);
* ``"residual"`` (other families, with brms' warning): V_res = var_i(y_i − ŷ_i⁽ˢ⁾).

Summary (brms' ``posterior_summary``): ``Estimate`` = mean, ``Est.Error`` = sd, ``Q2.5``,
``Q97.5``; one row ``R2``. Chunked over draws like :mod:`.marginaleffects`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..errors import MixedFormulaError
from .answer_frame import AnswerFrame
from .marginaleffects import CHUNK_VALUES, normalise_re_formula, fitted_rows
from .posterior import PosteriorDraws, linpred
from .predict import design_for, expected_value, family_params, re_selection, trials


def bayes_r2(fit, re_formula=None, method: str | None = None, probs=(0.025, 0.975),
             summary: bool = True, seed=0):
    fam = fit.family
    if fit.family.mean_categories() is not None:
        raise MixedFormulaError(
            f"bayes_r2 of a {fit.family.name} model is not available: its expected "
            "value is K category probabilities; use fit.predictions(grid=..., by=...) (one row "
            "per category, column 'group') or fit.predict(kind='epred') (draws × rows × K)")
    if len(fit.design.response_names) > 1:
        raise MixedFormulaError("bayes_r2 is for models with one response")
    if method is None:
        method = "model" if getattr(fam, "bayes_r2_model", False) else "residual"
        if method == "residual":
            warnings.warn(f"No model-based residual variance is implemented for family "
                          f"{fam.name!r} in bayes_r2 (as in brms): using the residual-based "
                          "R² (var of y − E[y])", UserWarning, stacklevel=3)
    if method not in ("model", "residual"):
        raise MixedFormulaError("method must be 'model' or 'residual'")
    if method == "model" and not getattr(fam, "bayes_r2_model", False):
        raise MixedFormulaError(f"no model-based residual variance for family {fam.name!r}; "
                                "use method='residual'")
    fit._need_rows("bayes_r2()")
    df = fitted_rows(fit)
    keep = re_selection(fit, normalise_re_formula(re_formula), df)
    design = design_for(fit, df, keep)
    y = np.asarray(fit.design.y, dtype=float).reshape(len(df), -1)[:, 0]
    post = fit.idata.posterior
    S = int(post.sizes["chain"]) * int(post.sizes["draw"])
    n = len(df)
    step = max(1, min(S, CHUNK_VALUES // max(n, 1)))
    r2 = np.empty(S)
    for k, start in enumerate(range(0, S, step)):
        idx = np.arange(start, min(S, start + step))
        draws = PosteriorDraws.of_fit(fit, idx)
        eta = linpred(draws, design, keep, "sample", np.random.default_rng([seed, k]))
        ep = expected_value(fit, draws, eta, design, df)[..., 0]
        v_fit = ep.var(axis=1, ddof=1)
        if method == "residual":
            v_res = (y[None] - ep).var(axis=1, ddof=1)
        else:
            mu = fam.inverse_link(eta[..., 0])
            params = family_params(draws, fam.dpars, draws.residual_tags(design, df), n,
                                   design, fam)
            t = trials(fit, design, df) if fam.uses_trials else None
            v_res = np.broadcast_to(fam.variance(mu, params, None if t is None else t[None]),
                                    mu.shape).mean(axis=1)
        r2[idx] = v_fit / (v_fit + v_res)
    if not summary:
        return r2
    q = np.quantile(r2, probs)
    cols = {"Estimate": [r2.mean()], "Est.Error": [r2.std(ddof=1)]}
    for p, v in zip(probs, q):
        cols[f"Q{100 * p:g}"] = [v]
    return AnswerFrame.of(pd.DataFrame(cols, index=["R2"]), r2[None], "bayes_r2")
