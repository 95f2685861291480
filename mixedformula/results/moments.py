"""Implied marginal moments of y: E[y] = Xβ and Var[y] = Z G Zᵀ + R for chosen rows.

The conditional and marginal formulations are one model: given β, G and R,

    y = Xβ + Zu + ε,  u ~ N(0, G),  ε ~ N(0, R)   ⇒   y ~ N(Xβ, Z G Zᵀ + R).

For each posterior draw we assemble G from the brms-named draws (``sd_<g>__<c>``,
``cor_<g>__<c1>__<c2>``; a correlation that is not a parameter is 0; ``gr(by=)`` uses the G of
the row's by-level) and R = σ² I (multivariate: R = diag(σ) Ω diag(σ) per row, responses
stacked row by row), and report the posterior means of E[y] and Var[y] over draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..design.names import cor_name


@dataclass
class MarginalMoments:
    mean: pd.Series          # posterior mean of E[y] for the chosen rows (× responses)
    cov: pd.DataFrame        # posterior mean of Var[y]
    G_part: pd.DataFrame     # posterior mean of Z G Zᵀ
    R_part: pd.DataFrame     # posterior mean of R

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 12):
            return (f"E[y] = Xβ (posterior mean):\n{self.mean.round(3)}\n\n"
                    f"Var[y] = Z G Zᵀ + R (posterior mean):\n{self.cov.round(3)}")


def _draws(post, name):
    return post[name].values.reshape(-1) if name in post else None


def marginal_moments(fit, rows=None, group: str | None = None, level=None,
                     max_rows: int = 500) -> MarginalMoments:
    """Moments for ``rows`` (positions in the fitted data) or all rows of ``level`` of ``group``."""
    design = fit.design
    if design is None:
        raise ValueError("this fit has no design (saved without data)")
    post = fit.idata.posterior
    if group is not None:
        terms = [t for t in design.terms if t.name == group]
        if not terms:
            raise ValueError(f"no group term for {group!r}")
        t0 = terms[0]
        if str(level) not in t0.levels:
            raise ValueError(f"{level!r} is not a level of {group}")
        rows = np.nonzero(t0.codes == t0.levels.index(str(level)))[0]
    rows = np.arange(min(design.nobs, 10)) if rows is None else np.asarray(rows, dtype=int)
    if len(rows) > max_rows:
        raise ValueError(f"{len(rows)} rows asked; at most {max_rows} (the matrix is dense)")
    resp = design.response_names
    mv = len(resp) > 1
    n, r = len(rows), len(resp)
    # E[y] = X β per response
    mean = np.zeros((n, r))
    for k, rn in enumerate(resp):
        pre = f"{rn}_" if mv else ""
        Xk, names = design.fixed(k)
        beta = np.array([post[f"b_{pre}{c}"].values.mean() for c in names])
        mean[:, k] = Xk[rows] @ beta
    # Z G Zᵀ: columns (term, coefficient) for the chosen rows, G per draw
    cols = []   # (group, label, response, values over rows, codes over rows, by tag per row)
    for t in design.terms:
        for k, rn in enumerate(resp):
            if t.response is not None and t.response != k:
                continue                      # bf() formulas: the term of another response
            for c, coef in enumerate(t.coef_names):
                label = f"{rn}_{coef}" if mv else coef
                if f"sd_{t.name}__{label}" not in post and not t.by_levels:
                    continue
                tags = [""] * n
                if t.by_levels:
                    tags = [f":{t.term.by}{t.by_levels[t.by_codes[j]]}" for j in t.codes[rows]]
                cols.append((t.name, label, k, t.X[rows, c], t.codes[rows], tags))
    GZ = np.zeros((n * r, n * r))
    cache: dict = {}
    for ga, la, ka, xa, ca, ta in cols:
        for gb, lb, kb, xb, cb, _ in cols:
            if ga != gb:
                continue
            # rows i, j share u only on the same level (then also the same by-tag)
            same = ca[:, None] == cb[None, :]
            v = np.array([cache.setdefault((ga, la, lb, tag),
                                           _cov_draws(post, ga, la, lb, tag).mean())
                          for tag in ta])
            GZ[ka::r, kb::r] += xa[:, None] * (same * v[:, None]) * xb[None, :]
    # R
    Rm = np.zeros((n * r, n * r))
    if mv:
        sig = [_draws(post, f"sigma_{rn}") for rn in resp]
        for k1 in range(r):
            for k2 in range(r):
                if k1 == k2:
                    v = (sig[k1] ** 2).mean()
                else:
                    a, b = sorted((k1, k2))
                    rc = _draws(post, f"rescor__{resp[a]}__{resp[b]}")
                    v = 0.0 if rc is None else (sig[k1] * sig[k2] * rc).mean()
                Rm[np.arange(n) * r + k1, np.arange(n) * r + k2] = v
    else:
        sigma = _draws(post, "sigma")
        s2 = (sigma ** 2).mean() if sigma is not None else 0.0
        Rm[np.arange(n), np.arange(n)] = s2
    index = [f"{i}" for i in rows] if not mv else [f"{i}:{rn}" for i in rows for rn in resp]
    return MarginalMoments(mean=pd.Series(mean.reshape(-1), index=index, name="E[y]"),
                           cov=pd.DataFrame(GZ + Rm, index=index, columns=index),
                           G_part=pd.DataFrame(GZ, index=index, columns=index),
                           R_part=pd.DataFrame(Rm, index=index, columns=index))


def _cov_draws(post, group, la, lb, tag):
    sa = post[f"sd_{group}__{la}{tag}"].values.reshape(-1)
    if la == lb:
        return sa ** 2
    sb = post[f"sd_{group}__{lb}{tag}"].values.reshape(-1)
    for name in (cor_name(group, la, lb, tag), cor_name(group, lb, la, tag)):
        if name in post:
            return sa * sb * post[name].values.reshape(-1)
    return np.zeros_like(sa)
