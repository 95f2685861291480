"""Posterior summary statistics and brms' table printing.

For draws θ⁽¹⁾…θ⁽ˢ⁾ (all chains pooled):

* ``Estimate`` = mean, ``Est.Error`` = sd with divisor S − 1 (R's ``sd``);
* ``l-95% CI`` / ``u-95% CI`` (summary) or ``Q2.5`` / ``Q97.5`` (fixef/ranef/coef): quantiles
  with linear interpolation (R's type 7, numpy's default, as ``posterior::quantile2``);
* ``Rhat``: rank-normalised split R-hat, the maximum of bulk and folded (Vehtari et al. 2021,
  ``posterior::rhat`` = ``arviz.rhat(method="rank")``); for one chain (where arviz gives NaN)
  the same statistic over its two halves, as ``posterior::rhat`` (:func:`one_chain_rhat`);
* ``Bulk_ESS`` / ``Tail_ESS``: ``arviz.ess(method="bulk" | "tail")`` (= ``posterior::ess_*``).

Printing follows ``brms:::print_format``: every column ``sprintf("%.2f")`` except the ESS
columns (``"%.0f"``), then R's ``print(quote = FALSE, right = TRUE)`` of the character matrix —
row names left-aligned, columns right-aligned to the wider of header and values, one space apart.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import xarray as xr

SUMMARY_STATS = ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS", "Tail_ESS"]
NO_DIGITS = ("Bulk_ESS", "Tail_ESS")


def ci_names(prob: float) -> tuple[str, str]:
    """brms' interval column names: ``prob = 0.95`` → ``("l-95% CI", "u-95% CI")``."""
    p = _num(prob * 100)
    return f"l-{p}% CI", f"u-{p}% CI"


def q_names(probs) -> list[str]:
    """brms' quantile column names: ``(0.025, 0.975)`` → ``["Q2.5", "Q97.5"]``."""
    return [f"Q{_num(p * 100)}" for p in probs]


def _num(x: float) -> str:
    x = round(float(x), 10)
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _check_prob(prob: float) -> None:
    if not (0.0 < float(prob) < 1.0):
        raise ValueError(f"prob must lie strictly between 0 and 1, not {prob!r}")


def flat_draws(da) -> np.ndarray:
    """(chain, draw, ...) → (chain·draw, ...)."""
    a = np.asarray(da)
    return a.reshape((-1,) + a.shape[2:])


def draws_summary(draws: np.ndarray, probs=(0.025, 0.975)) -> np.ndarray:
    """Mean, sd (S − 1) and quantiles along axis 0: shape (2 + len(probs),) + draws.shape[1:]."""
    draws = np.asarray(draws, dtype=float)
    mean = draws.mean(axis=0)
    sd = draws.std(axis=0, ddof=1) if draws.shape[0] > 1 else np.full_like(mean, np.nan)
    qs = np.quantile(draws, list(probs), axis=0)
    return np.concatenate([mean[None], sd[None], qs], axis=0)


def posterior_table(posterior: xr.Dataset, var_names: list[str], labels: list[str],
                    prob: float = 0.95) -> pd.DataFrame:
    """The summary columns for scalar variables ``var_names``, rows labelled ``labels``."""
    _check_prob(prob)
    lo, hi = ci_names(prob)
    cols = ["Estimate", "Est.Error", lo, hi, "Rhat", "Bulk_ESS", "Tail_ESS"]
    if not var_names:
        return pd.DataFrame(columns=cols, index=pd.Index([], dtype=object), dtype=float)
    import arviz as az

    from ..arviz_numba import numpy_diagnostics
    ds = posterior[var_names]
    draws = np.stack([flat_draws(ds[v].values) for v in var_names], axis=1)
    stats = draws_summary(draws, ((1 - prob) / 2, 1 - (1 - prob) / 2))
    one_chain = ds.sizes.get("chain", 1) == 1
    with np.errstate(invalid="ignore", divide="ignore"), numpy_diagnostics():
        rhat = None if one_chain else az.rhat(ds)
        bulk = az.ess(ds, method="bulk")
        tail = az.ess(ds, method="tail")
    out = pd.DataFrame({
        "Estimate": stats[0], "Est.Error": stats[1], lo: stats[2], hi: stats[3],
        "Rhat": [one_chain_rhat(ds[v].values.ravel()) if one_chain else float(rhat[v])
                 for v in var_names],
        "Bulk_ESS": [float(bulk[v]) for v in var_names],
        "Tail_ESS": [float(tail[v]) for v in var_names],
    }, index=pd.Index(labels, dtype=object))
    return out


def one_chain_rhat(x: np.ndarray) -> float:
    """Rank-normalised split R-hat of one chain (Vehtari et al. 2021; ``posterior::rhat``).

    The chain is split into halves (the middle draw dropped when the length is odd), M = 2
    sequences of N draws. Bulk: z = Φ⁻¹((rank − 3/8) / (2N + 1/4)) (average ranks over both
    halves); folded: the same of |x − median(x)|. For each, with W the mean within-half
    variance and B = N · var(half means) (both divisor − 1),
    R̂ = √(((N − 1)/N · W + B/N) / W); the result is the larger of bulk and folded.
    NaN with fewer than 4 draws or a constant chain."""
    from scipy.special import ndtri
    from scipy.stats import rankdata
    x = np.asarray(x, dtype=float).ravel()
    half = len(x) // 2
    if half < 2 or not np.all(np.isfinite(x)):
        return float("nan")
    halves = np.stack([x[:half], x[-half:]])

    def rhat(a):
        z = ndtri((rankdata(a, axis=None).reshape(a.shape) - 0.375) / (a.size + 0.25))
        w = z.var(axis=1, ddof=1).mean()
        if not w > 0:
            return float("nan")
        b = half * z.mean(axis=1).var(ddof=1)
        return float(np.sqrt(((half - 1) / half * w + b / half) / w))

    return max(rhat(halves), rhat(np.abs(halves - np.median(halves))))


def format_cells(df: pd.DataFrame, digits: int = 2) -> pd.DataFrame:
    """Strings as brms prints them: ``%.2f`` (``-0.00`` kept), ESS ``%.0f``, missing → ``NA``."""
    out = {}
    for c in df.columns:
        fmt = "{:.0f}" if c in NO_DIGITS else "{:.%df}" % digits
        out[c] = [("NA" if not np.isfinite(x) else fmt.format(x)) for x in
                  df[c].to_numpy(dtype=float)]
    return pd.DataFrame(out, index=df.index, columns=df.columns)


def format_table(df: pd.DataFrame, digits: int = 2) -> list[str]:
    """Lines of R's ``print(<character matrix>, quote = FALSE, right = TRUE)``."""
    cells = format_cells(df, digits)
    rows = [str(r) for r in cells.index]
    wrow = max([len(r) for r in rows] + [0])
    widths = [max([len(str(c))] + [len(v) for v in cells[c]]) for c in cells.columns]
    lines = [" " * wrow + "".join(" " + str(c).rjust(w) for c, w in zip(cells.columns, widths))]
    for i, r in enumerate(rows):
        lines.append(r.ljust(wrow) + "".join(
            " " + cells.iloc[i, j].rjust(w) for j, w in enumerate(widths)))
    return lines


def html_table(df: pd.DataFrame, digits: int = 2) -> str:
    """A compact HTML table with the printed (rounded) values."""
    cells = format_cells(df, digits)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in cells.columns)
    body = []
    for i, r in enumerate(cells.index):
        tds = "".join(f"<td style='text-align:right'>{html.escape(v)}</td>"
                      for v in cells.iloc[i])
        body.append(f"<tr><th style='text-align:left'>{html.escape(str(r))}</th>{tds}</tr>")
    return (f"<table class='mixedformula-summary'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")
