"""Figures for the HTML report, drawn with matplotlib's object API (no pyplot state, Agg canvas).

Each function returns a :class:`matplotlib.figure.Figure`; :func:`to_data_uri` turns it into a
``data:image/png;base64,...`` URI so that the report is one self-contained file.

* :func:`trace_rank` — per parameter, the draws of every chain (trace) and their rank histograms
  (Vehtari et al. 2021: ranks of the pooled draws, histogrammed per chain; well-mixed chains
  give flat, overlapping histograms near the dashed uniform line).
* :func:`forest` — posterior mean, 50% and 95% intervals of the regression coefficients.
* :func:`caterpillar` — group effects u of one grouping factor, sorted by posterior mean, with
  95% intervals, one panel per coefficient.
* :func:`caterpillar_intervals` — the same from points and intervals (conditional modes of a
  point-estimate fit with ±1.96 conditional standard deviations).
* :func:`residual_plots` — residuals against fitted values and their normal Q–Q plot.
* :func:`correlation_heatmap` — posterior mean correlation matrix of G or R, values printed.
* :func:`ppc_density` — histograms of observed y against replicated y_rep draws.
* :func:`conditional_effect` — E[y | x] over the range of one predictor with a 95% band.
"""

from __future__ import annotations

import base64
import io

import numpy as np

BLUE = "#1f5a96"
LIGHT = "#9ec3e6"
CHAIN_COLORS = ["#1f5a96", "#d1495b", "#2a9d8f", "#e9c46a", "#6d597a", "#f4a261", "#264653",
                "#8ab17d"]


def _figure(width: float, height: float):
    from matplotlib.figure import Figure
    return Figure(figsize=(width, height), dpi=90, layout="constrained")


def to_data_uri(fig, fmt: str = "png") -> str:
    """The figure as a base64 ``data:`` URI (PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=fig.dpi, facecolor="white")
    return f"data:image/{fmt};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def trace_rank(draws: dict[str, np.ndarray], bins: int = 20):
    """draws: label → array (chain, draw). Rows: parameters; columns: trace, rank histogram."""
    labels = list(draws)
    n = len(labels)
    fig = _figure(9.5, max(1.6 * n, 2.0))
    axes = fig.subplots(n, 2, squeeze=False, gridspec_kw={"width_ratios": [2.2, 1]})
    for i, lab in enumerate(labels):
        a = np.asarray(draws[lab], dtype=float)
        C, D = a.shape
        ax = axes[i, 0]
        for c in range(C):
            ax.plot(np.arange(D), a[c], lw=0.6, alpha=0.8, color=CHAIN_COLORS[c % 8])
        ax.set_ylabel(lab, fontsize=8, rotation=0, ha="right", va="center")
        ax.tick_params(labelsize=7)
        ranks = _ranks(a.ravel()).reshape(C, D)
        edges = np.linspace(0, C * D, bins + 1)
        axr = axes[i, 1]
        for c in range(C):
            h, _ = np.histogram(ranks[c], bins=edges)
            axr.stairs(h, edges, color=CHAIN_COLORS[c % 8], lw=1.2, baseline=None)
        axr.axhline(D / bins, color="0.3", ls="--", lw=0.8)
        axr.set_yticks([])
        axr.tick_params(labelsize=7)
        if i == 0:
            ax.set_title("trace (one colour per chain)", fontsize=9)
            axr.set_title("rank histogram per chain", fontsize=9)
        if i < n - 1:
            ax.set_xticklabels([])
            axr.set_xticklabels([])
    axes[-1, 0].set_xlabel("draw", fontsize=8)
    axes[-1, 1].set_xlabel("rank of pooled draws", fontsize=8)
    return fig


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    r = np.empty_like(order)
    r[order] = np.arange(len(x))
    return r


def _intervals(draws: np.ndarray):
    q = np.quantile(draws, [0.025, 0.25, 0.75, 0.975], axis=0)
    return draws.mean(axis=0), q


def forest(draws: dict[str, np.ndarray], title: str = "Regression coefficients"):
    """draws: label → pooled draws (S,). Thick bar 50%, thin bar 95%, dot the mean."""
    labels = list(draws)
    n = len(labels)
    fig = _figure(7.5, 0.45 * n + 1.3)
    ax = fig.subplots()
    D = np.stack([np.asarray(draws[k], dtype=float) for k in labels], axis=1)
    mean, q = _intervals(D)
    y = np.arange(n)[::-1]
    ax.hlines(y, q[0], q[3], color=BLUE, lw=1.4)
    ax.hlines(y, q[1], q[2], color=BLUE, lw=4.5)
    ax.plot(mean, y, "o", color="white", mec=BLUE, ms=6, mew=1.6)
    lo, hi = float(np.min(q[0])), float(np.max(q[3]))
    if lo <= 0 <= hi:
        ax.axvline(0, color="0.5", ls="--", lw=0.8)
    ax.set_yticks(y, labels, fontsize=9)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("posterior mean, 50% and 95% intervals", fontsize=8)
    ax.grid(axis="x", color="0.9")
    return fig


def caterpillar(draws, levels: list[str], coefs: list[str], group: str, max_labels: int = 40):
    """draws: (S, J, q) group effects; one panel per coefficient, levels sorted by mean."""
    draws = np.asarray(draws, dtype=float)
    mean, qs = _intervals(draws)
    return caterpillar_intervals(mean, qs[0], qs[3], levels, coefs, group, max_labels)


def caterpillar_intervals(centre, low, high, levels: list[str], coefs: list[str], group: str,
                          max_labels: int = 40, title: str = "r_{group}[, {coef}]"):
    """centre, low, high: (J, q) point and interval per level and coefficient (posterior means
    and 95% intervals, or conditional modes ± 1.96 conditional sd); one panel per coefficient,
    levels sorted by the centre."""
    centre, low, high = (np.asarray(a, dtype=float) for a in (centre, low, high))
    J, q = centre.shape
    fig = _figure(min(3.6 * q + 1.2, 11), max(2.2, 0.16 * J + 1.2) if J <= 120 else 6.0)
    axes = fig.subplots(1, q, squeeze=False)[0]
    for c in range(q):
        ax = axes[c]
        mean = centre[:, c]
        order = np.argsort(mean)
        y = np.arange(J)
        ax.hlines(y, low[order, c], high[order, c], color=LIGHT, lw=1.0)
        ax.plot(mean[order], y, "o", color=BLUE, ms=3 if J <= 60 else 1.5)
        ax.axvline(0, color="0.4", ls="--", lw=0.8)
        if J <= max_labels:
            ax.set_yticks(y, [levels[j] for j in order], fontsize=7 if J > 20 else 8)
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{J} levels (sorted)", fontsize=8)
        ax.set_title(title.format(group=group, coef=coefs[c]), fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", color="0.92")
    return fig


def _diverging():
    from matplotlib import colormaps
    cmap = colormaps["RdBu_r"].copy()
    cmap.set_bad("#e8e8e8")
    return cmap


def correlation_heatmap(matrices: list[tuple[str, "object"]]):
    """matrices: (title, DataFrame q × q of correlations); one panel each, values printed."""
    n = len(matrices)
    size = max(len(m.index) for _, m in matrices)
    side = min(max(2.6, 0.75 * size + 1.4), 7.0)
    fig = _figure(min(side * n + 0.6, 11.5), side)
    axes = fig.subplots(1, n, squeeze=False)[0]
    im = None
    for ax, (title, m) in zip(axes, matrices):
        a = np.asarray(m, dtype=float)
        labs = [str(x) for x in m.index]
        shown = a.copy()
        np.fill_diagonal(shown, np.nan)          # the diagonal (1) would dominate the colours
        cmap = _diverging()
        im = ax.imshow(shown, vmin=-1, vmax=1, cmap=cmap)
        ax.set_xticks(range(len(labs)), labs, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labs)), labs, fontsize=8)
        if len(labs) <= 10:
            for i in range(len(labs)):
                for j in range(len(labs)):
                    ax.text(j, i, "1" if i == j else f"{a[i, j]:.2f}", ha="center",
                            va="center", fontsize=8,
                            color="white" if i != j and abs(a[i, j]) > 0.6 else "black")
        ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="posterior mean correlation")
    return fig


def _kde(x: np.ndarray, grid: np.ndarray, bw: float) -> np.ndarray:
    """Gaussian kernel density of x on grid (bandwidth bw)."""
    z = (grid[:, None] - x[None, :]) / bw
    return np.exp(-0.5 * z * z).sum(axis=1) / (len(x) * bw * np.sqrt(2 * np.pi))


def ppc_density(y: np.ndarray, yrep: np.ndarray, names: list[str], discrete: bool = False,
                max_points: int = 2000):
    """y: (n, r) observed; yrep: (S, n, r) replicated. Continuous responses: kernel densities
    (Silverman bandwidth of y, at most ``max_points`` rows); counts/0-1: frequency bars."""
    r = y.shape[1]
    fig = _figure(min(4.8 * r + 0.5, 11.5), 3.3)
    axes = fig.subplots(1, r, squeeze=False)[0]
    rng = np.random.default_rng(0)
    for k in range(r):
        ax = axes[k]
        seen = np.isfinite(y[:, k])          # rows where response k was observed
        obs, rep = y[seen, k], yrep[:, seen, k]
        if len(obs) > max_points:
            rows = rng.choice(len(obs), max_points, replace=False)
            obs, rep = obs[rows], rep[:, rows]
        if discrete:
            lo, hi = int(np.floor(min(obs.min(), rep.min()))), int(np.ceil(max(obs.max(),
                                                                               np.quantile(rep, 0.995))))
            edges = np.arange(lo - 0.5, hi + 1.5) if hi - lo <= 60 else np.linspace(lo, hi, 41)
            reps = np.stack([np.histogram(rep[s], bins=edges, density=True)[0]
                             for s in range(rep.shape[0])])
            centers = 0.5 * (edges[1:] + edges[:-1])
            width = edges[1] - edges[0]
            h, _ = np.histogram(obs, bins=edges, density=True)
            ax.bar(centers, h, width=0.9 * width, color="0.75", label="y (observed)")
            q = np.quantile(reps, [0.05, 0.5, 0.95], axis=0)
            ax.errorbar(centers, q[1], yerr=[q[1] - q[0], q[2] - q[1]], fmt="o", ms=3,
                        color=BLUE, lw=1.2, label=f"y_rep median, 90% ({rep.shape[0]} draws)")
        else:
            lo = min(obs.min(), np.quantile(rep, 0.002))
            hi = max(obs.max(), np.quantile(rep, 0.998))
            grid = np.linspace(lo, hi, 200)
            sd = obs.std(ddof=1) if len(obs) > 1 else 1.0
            iqr = np.subtract(*np.quantile(obs, [0.75, 0.25]))
            spread = min(sd, iqr / 1.349) if iqr > 0 else sd
            bw = 0.9 * (spread if spread > 0 else 1.0) * len(obs) ** -0.2
            for s in range(rep.shape[0]):
                ax.plot(grid, _kde(rep[s], grid, bw), color=LIGHT, lw=0.7, alpha=0.6)
            ax.plot(grid, _kde(obs, grid, bw), color="black", lw=2.0, label="y (observed)")
            ax.plot([], [], color=LIGHT, label=f"y_rep ({rep.shape[0]} draws)")
        ax.set_title(names[k], fontsize=9)
        ax.set_yticks([])
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False)
    return fig


def conditional_effect(ce):
    """E[y | x] with its 95% band over a grid of x (others held fixed), data points faint.

    ``ce``: :class:`~mixedformula.report.effects.ConditionalEffect`; one panel per response.
    """
    r = ce.mean.shape[1]
    fig = _figure(min(5.2 * r + 1.0, 11.5), 3.8)
    axes = fig.subplots(1, r, squeeze=False)[0]
    for k in range(r):
        ax = axes[k]
        if ce.y_obs is not None:
            jitter = 0.0
            if ce.categorical:
                jitter = np.random.default_rng(0).uniform(-0.08, 0.08, size=len(ce.x_obs))
            ax.plot(ce.x_obs + jitter, ce.y_obs[:, k], ".", color="0.6", ms=3, alpha=0.5,
                    label="data")
        m, lo, hi = ce.mean[:, k], ce.lower[:, k], ce.upper[:, k]
        if ce.categorical:
            ax.errorbar(ce.x, m, yerr=[m - lo, hi - m], fmt="o", color=BLUE, capsize=4, lw=1.6,
                        label="E[y] and 95% interval")
            ax.set_xticks(ce.x, [f"{ce.xname} = 0", f"{ce.xname} = 1"])
        else:
            ax.fill_between(ce.x, lo, hi, color=LIGHT, alpha=0.6, lw=0, label="95% interval")
            ax.plot(ce.x, m, color=BLUE, lw=2, label="E[y] (population level)")
            ax.set_xlabel(ce.xname, fontsize=9)
        ax.set_ylabel(ce.responses[k], fontsize=9)
        ax.tick_params(labelsize=8)
        ax.legend(fontsize=8, frameon=False)
        ax.grid(color="0.93")
    return fig


def residual_plots(fitted, resid, ylabel: str = "residual"):
    """Residuals against fitted values (with a zero line) and a normal Q–Q plot of the
    residuals (Blom's plotting positions (i − 3/8)/(n + 1/4), scipy's normal quantiles; the
    line through the quartiles, as R's ``qqline``)."""
    from scipy.stats import norm
    fitted, resid = np.asarray(fitted, dtype=float), np.asarray(resid, dtype=float)
    ok = np.isfinite(fitted) & np.isfinite(resid)
    fitted, resid = fitted[ok], resid[ok]
    fig = _figure(9.5, 3.6)
    ax, axq = fig.subplots(1, 2)
    ax.plot(fitted, resid, ".", color=BLUE, ms=3, alpha=0.6)
    ax.axhline(0, color="0.4", ls="--", lw=0.8)
    ax.set_xlabel("fitted value", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title("residuals vs fitted", fontsize=9)
    n = len(resid)
    theo = norm.ppf((np.arange(1, n + 1) - 0.375) / (n + 0.25))
    sample = np.sort(resid)
    axq.plot(theo, sample, ".", color=BLUE, ms=3)
    q1, q3 = np.quantile(sample, [0.25, 0.75])
    t1, t3 = norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (t3 - t1) if t3 > t1 else 1.0
    axq.plot(theo, q1 + slope * (theo - t1), color="0.4", lw=0.9)
    axq.set_xlabel("normal quantile", fontsize=8)
    axq.set_ylabel(f"sorted {ylabel}", fontsize=8)
    axq.set_title("normal Q–Q plot", fontsize=9)
    for a in (ax, axq):
        a.tick_params(labelsize=7)
        a.grid(color="0.93")
    return fig
