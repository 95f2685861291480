"""Posterior draws of the linear predictor and of replicated data, from brms-named draws.

For draw s and response k (univariate: k = 0, no prefix; multivariate: prefix ``<resp>_``)

    η⁽ˢ⁾_ik = Σ_c X_ic b⁽ˢ⁾_{k,c} + Σ_t Σ_c X_t,ic r⁽ˢ⁾_{g(t)}[codes_t,i, <prefix><coef_c>]

where t runs over the group terms of the design (``GroupBlock``: per-row multipliers ``X_t``,
integer level ``codes_t``; rows with a missing or unseen level contribute 0) and
``r_<group>`` holds the group effects u (dims level × coefficient). Replicated data draw
y_rep⁽ˢ⁾ from the family with mean g⁻¹(η⁽ˢ⁾):

* gaussian: y_rep = η + σ ε; student: η + σ t_ν; lognormal: exp(η + σ ε);
* bernoulli / binomial(trials) / poisson: their usual draws with p or λ = g⁻¹(η);
* negbinomial: Poisson(Gamma(shape, μ / shape)); gamma: Gamma(shape, μ / shape).

Per-response marginals only are drawn (residual correlations do not change them). Nothing here
rebuilds a design matrix: ``fit.design`` is read as it is.
"""

from __future__ import annotations

import numpy as np


def draw_indices(posterior, max_draws: int, seed: int = 0) -> np.ndarray:
    """Up to ``max_draws`` indices into the pooled (chain·draw) axis, spread evenly."""
    total = int(posterior.sizes["chain"]) * int(posterior.sizes["draw"])
    if total <= max_draws:
        return np.arange(total)
    return np.unique(np.linspace(0, total - 1, max_draws).round().astype(int))


def _flat(da) -> np.ndarray:
    a = np.asarray(da.values)
    return a.reshape((-1,) + a.shape[2:])


def _prefix(design) -> list[str]:
    resp = list(design.response_names)
    return [f"{r}_" for r in resp] if len(resp) > 1 else [""]


def fixed_part(posterior, design, X: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """X β per draw: array (S, n, r)."""
    pre = _prefix(design)
    out = np.zeros((len(idx), X.shape[0], len(pre)))
    for k, p in enumerate(pre):
        cols = design.fixed_cols[k] if design.fixed_cols is not None else range(X.shape[1])
        names = [design.X_names[j] for j in cols]
        B = np.stack([_flat(posterior[f"b_{p}{c}"])[idx] for c in names], axis=1) \
            if names else np.zeros((len(idx), 0))
        out[:, :, k] = B @ X[:, list(cols)].T
    return out


def group_part(posterior, design, idx: np.ndarray) -> np.ndarray:
    """Z u per draw: array (S, n, r); 0 where a row's level is missing or unseen."""
    pre = _prefix(design)
    n = design.nobs
    out = np.zeros((len(idx), n, len(pre)))
    cache: dict[str, tuple[np.ndarray, dict[str, int]]] = {}
    for t in design.terms:
        var = f"r_{t.name}"
        if var not in posterior:
            continue
        if var not in cache:
            da = posterior[var]
            labels = [str(x) for x in da.coords[da.dims[3]].values]
            cache[var] = (_flat(da)[idx], {lab: i for i, lab in enumerate(labels)})
        r, pos = cache[var]
        ok = (t.codes >= 0) & (t.codes < r.shape[1])
        rows = np.nonzero(ok)[0]
        codes = t.codes[ok]
        for k, p in enumerate(pre):
            if t.response is not None and t.response != k:
                continue                      # bf() formulas: the term of another response
            for c, name in enumerate(t.coef_names):
                j = pos.get(p + name)
                if j is None:
                    continue
                out[:, rows, k] += r[:, codes, j] * t.X[ok, c][None, :]
    return out


def linear_predictor(fit, idx: np.ndarray) -> np.ndarray:
    """η = Xβ + Zu for the fitted rows, draws ``idx``: array (S, n, r)."""
    design = fit.design
    post = fit.posterior
    return fixed_part(post, design, design.X, idx) + group_part(post, design, idx)


def _dpar(posterior, name: str, resp: str, multivariate: bool, idx) -> np.ndarray | None:
    var = f"{name}_{resp}" if multivariate else name
    if var in posterior:
        return _flat(posterior[var])[idx]
    return None


def residual_sd_rows(fit, k: int, idx: np.ndarray) -> np.ndarray | None:
    """σ per draw and row (S, n) for response k, or None if it cannot be mapped to rows.

    ``rescor_by`` fits have one σ per level (``sigma_x:groupA``); rows are mapped through
    ``fit.info["rescor_by"]`` and the column of ``fit.data`` when both are there.
    """
    post, design = fit.posterior, fit.design
    resp = design.response_names[k]
    mv = len(design.response_names) > 1
    s = _dpar(post, "sigma", resp, mv, idx)
    if s is not None:
        return np.repeat(s[:, None], design.nobs, axis=1)
    base = f"sigma_{resp}:" if mv else "sigma:"
    by_vars = [v for v in post.data_vars if str(v).startswith(base)]
    column = fit.info.get("rescor_by")
    data = getattr(fit, "data", None)
    if not by_vars or column is None or data is None or column not in data.columns:
        return None
    rows = data.loc[design.row_index, column].astype(str).to_numpy() \
        if design.row_index is not None else data[column].astype(str).to_numpy()
    out = np.full((len(idx), design.nobs), np.nan)
    for v in by_vars:
        level = str(v)[len(base) + len(column):]
        out[:, rows == level] = _flat(post[v])[idx][:, None]
    return None if np.isnan(out).any() else out


def replicate(fit, idx: np.ndarray, seed: int = 0) -> tuple[np.ndarray | None, str]:
    """Replicated responses y_rep (S, n, r) and a note ('' if all fine)."""
    from ..errors import FamilyError
    design = fit.design
    eta = linear_predictor(fit, idx)
    rng = np.random.default_rng(seed)
    fam = fit.family
    if not hasattr(fam, "rvs"):
        return None, f"replicated data are not implemented for family {fam.name!r}"
    mu = fam.inverse_link(eta)
    post = fit.posterior
    mv = len(design.response_names) > 1
    out = np.empty_like(eta)
    trials = None if design.trials is None else \
        np.asarray(design.trials, dtype=float).reshape(-1)[None, :]
    for k, resp in enumerate(design.response_names):
        params = {}
        for d in fam.dpars:
            if d == "sigma":
                params[d] = residual_sd_rows(fit, k, idx)
                if params[d] is None:
                    return None, ("the residual sd varies by a grouping column that is not "
                                  "stored with this fit, so replicated data cannot be drawn")
            else:
                params[d] = _dpar(post, d, resp, mv, idx)[:, None]
        try:
            out[:, :, k] = fam.rvs(mu[:, :, k], params, rng, trials)
        except FamilyError as e:
            return None, str(e)
    return out, ""
