r"""``fit.conditional_effects("x")``: expected response over a grid of one predictor (brms).

Grid: a numeric ``x`` takes ``resolution`` equally spaced values over its observed range, a
categorical one its levels. The other predictors are held at their mean (numeric) or their
reference level (categorical: the first level, as R's treatment contrasts), and per draw s

    μ⁽ˢ⁾(x_g) = E[y | x_g, others, θ⁽ˢ⁾]        (``fit.predict(kind="epred")``)

is summarised by its mean and central ``prob`` interval. ``groups=False``: population level
(group effects 0, brms' ``re_formula = NA``). ``groups=True`` (the first grouping factor) or
``groups="g"``: one curve per level of g with that level's group effects (other grouping
factors at u = 0). A categorical model gives one curve per category c, μ = P(y = c) (brms'
``categorical = TRUE``; the category in the column ``group``, one panel per category); an
ordinal model does the same with ``categorical=True``, P(y = k) for k = 1..K, and refuses
without it (brms' default there is the category index treated as a continuous score, which
brms itself warns is likely invalid). ``categorical=True`` for any other family is refused
(brms: "may only be used for categorical or ordinal models").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MixedFormulaError


def _reference_frame(fit, effect: str, grid, group: str | None, levels) -> pd.DataFrame:
    from ..design import as_pandas
    if fit.data is None:
        raise MixedFormulaError("conditional_effects needs the data the model was fitted to")
    data = as_pandas(fit.data)
    if fit.design.row_index is not None:
        data = data.loc[fit.design.row_index]
    spec = fit.design.spec
    cols = {}
    predictors = [c for c in spec.columns
                  if c not in spec.formula.response_variables
                  and c not in spec.formula.trials_variables]
    group_cols = {f for t in fit.design.terms for f in t.term.factors}
    by_cols = {t.term.by for t in fit.design.terms if t.term.by}
    for c in predictors:
        if c == effect or c in group_cols or c in by_cols:
            continue
        col = data[c]
        if c in spec.factor_levels:
            ref = spec.factor_levels[c][0]
            match = col[col.astype(str) == ref]
            cols[c] = match.iloc[0] if len(match) else ref
        else:
            cols[c] = float(col.mean())
    for c in spec.formula.trials_variables:
        cols[c] = 1.0
    rows = []
    glevels = levels if group is not None else [None]
    for lev in glevels:
        for x in grid:
            row = dict(cols)
            row[effect] = x
            for g in group_cols | by_cols:
                row[g] = None
            if group is not None:
                row.update(lev)
            rows.append(row)
    return pd.DataFrame(rows)


def conditional_effects(fit, effect: str, groups=False, prob: float = 0.95,
                        resolution: int = 100, ndraws: int | None = None, seed=None, ax=None,
                        categorical: bool | None = None):
    """Returns ``(matplotlib Figure, DataFrame)``; see the module docstring."""
    from ..design import as_pandas
    polytomous = fit.family.thresholds or fit.family.mean_categories() is not None
    if categorical and not polytomous:
        raise MixedFormulaError("categorical=True may only be used for categorical or ordinal "
                                f"models, not family {fit.family.name!r} (brms' rule)")
    if fit.family.thresholds and not categorical:
        raise MixedFormulaError(
            f"conditional_effects of an ordinal model ({fit.family.name}) needs "
            "categorical=True: its expected value is K category probabilities, one curve per "
            "category P(y = k) (brms' conditional_effects(fit, categorical = TRUE)); brms' "
            "default treats the categories as a continuous score, which it warns is likely "
            "invalid, so it is not offered here")
    spec = fit.design.spec
    if effect not in spec.columns or effect in spec.formula.response_variables:
        preds = [c for c in spec.columns if c not in spec.formula.response_variables]
        raise MixedFormulaError(f"{effect!r} is not a predictor of the model (predictors: "
                                f"{', '.join(preds)})")
    data = as_pandas(fit.data)
    if fit.design.row_index is not None:
        data = data.loc[fit.design.row_index]
    factor_effect = effect in spec.factor_levels
    if factor_effect:
        known = spec.factor_levels[effect]
        col = data[effect]
        grid = [col[col.astype(str) == lev].iloc[0] for lev in known]
    else:
        col = data[effect].astype(float)
        grid = list(np.linspace(col.min(), col.max(), int(resolution)))
    group = None
    levels = None
    if groups:
        names = list(dict.fromkeys(t.name for t in fit.design.terms))
        if not names:
            raise MixedFormulaError("the model has no group terms")
        group = names[0] if groups is True else str(groups)
        if group not in names:
            raise MixedFormulaError(f"no grouping factor {group!r} (have: {', '.join(names)})")
        t = next(t for t in fit.design.terms if t.name == group)
        cols = list(t.term.factors) + ([t.term.by] if t.term.by else [])
        first = data.drop_duplicates(subset=list(t.term.factors))
        lab = first[list(t.term.factors)].astype(str).agg("_".join, axis=1)
        first = first.set_index(pd.Index([str(v) for v in lab]))
        levels = [{c: first.loc[lev, c] for c in cols} for lev in t.levels]
        labels = list(t.levels)
    frame = _reference_frame(fit, effect, grid, group, levels)
    draws = fit.predict(frame, kind="epred", re_formula=None if group else "~0",
                        ndraws=ndraws, seed=seed)
    if draws.ndim == 2:
        draws = draws[..., None]
    a = (1 - prob) / 2
    lo, hi = np.quantile(draws, [a, 1 - a], axis=0)
    resp = list(fit.design.response_names)
    cats = fit.family.mean_categories(draws.shape[-1] - 1)
    if cats is not None:     # categorical, ordinal: one curve per category, P(y = c) (S × n × K)
        resp = [f"P({resp[0]} = {c})" for c in cats]
    out = []
    for k, rn in enumerate(resp):
        df = pd.DataFrame({effect: frame[effect].values})
        if group is not None:
            df[group] = np.repeat(labels, len(grid))
        if cats is not None:
            df["group"] = cats[k]
            df["response"] = rn
        elif len(resp) > 1:
            df["response"] = rn
        df["Estimate"] = draws[..., k].mean(axis=0)
        df["Est.Error"] = draws[..., k].std(axis=0, ddof=1)
        df["lower"] = lo[:, k]
        df["upper"] = hi[:, k]
        out.append(df)
    table = pd.concat(out, ignore_index=True)
    fig = _plot(table, effect, group, resp, factor_effect, prob, ax)
    return fig, table


def _plot(table, effect, group, resp, categorical, prob, ax):
    from matplotlib.figure import Figure
    if ax is not None:
        fig = ax.figure
        axes = [ax] * len(resp)
    else:
        fig = Figure(figsize=(5 * len(resp), 3.6), layout="constrained")
        axes = [fig.add_subplot(1, len(resp), k + 1) for k in range(len(resp))]
    for k, rn in enumerate(resp):
        sub = table[table["response"] == rn] if "response" in table else table
        a = axes[k]
        parts = [(None, sub)] if group is None else list(sub.groupby(group, sort=False))
        for lev, d in parts:
            x = d[effect].astype(str) if categorical else d[effect]
            if categorical:
                a.errorbar(x, d["Estimate"], yerr=[d["Estimate"] - d["lower"],
                                                   d["upper"] - d["Estimate"]],
                           fmt="o", capsize=3, label=lev)
            else:
                line, = a.plot(x, d["Estimate"], lw=1.5, label=lev)
                a.fill_between(x, d["lower"], d["upper"], alpha=0.25 if group is None else 0.08,
                               color=line.get_color(), lw=0)
        a.set_xlabel(effect)
        a.set_ylabel(rn)
        a.set_title(f"{rn}: expected value, {int(round(prob * 100))}% interval", fontsize=9)
        if group is not None and len(parts) <= 20:
            a.legend(title=group, fontsize=7, ncols=2)
    return fig
