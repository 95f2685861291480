"""Sampler diagnostics for the report, each with a status and advice.

=====================  ==============================================  =========================
check                  computed from                                   thresholds (ok / warning)
=====================  ==============================================  =========================
divergent transitions  ``sample_stats.diverging`` (post-warmup)        0 / any (bad)
max tree depth         ``reached_max_treedepth`` / ``maxdepth_reached``  0 / any (warning)
Rhat                   rank-normalised split R-hat (summary tables)    ≤ 1.01 / ≤ 1.05 / > 1.05
Bulk_ESS, Tail_ESS     summary tables                                  ≥ 400 / ≥ 100 / < 100
E-BFMI                 Σ(E_t − E_{t−1})² / Σ(E_t − Ē)² per chain       ≥ 0.3 / < 0.3
=====================  ==============================================  =========================

Thresholds: Vehtari et al. (2021) for R-hat and ESS (the brms summary itself warns only beyond
1.05 and 100, so the report is stricter), Betancourt (2016) for E-BFMI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..results.summary import DIVERGENCE_STATS, TREEDEPTH_STATS, count_flag

RHAT_OK, RHAT_BAD = 1.01, 1.05
ESS_OK, ESS_BAD = 400, 100
BFMI_MIN = 0.3


@dataclass
class Check:
    name: str
    value: str
    status: str          # "ok", "warn" or "bad"
    advice: str = ""


def rhat_status(x: float) -> str:
    if not np.isfinite(x):
        return "warn"
    return "ok" if x <= RHAT_OK else ("warn" if x <= RHAT_BAD else "bad")


def ess_status(x: float) -> str:
    if not np.isfinite(x):
        return "warn"
    return "ok" if x >= ESS_OK else ("warn" if x >= ESS_BAD else "bad")


def _stat(ss, names) -> np.ndarray | None:
    for n in names:
        if ss is not None and n in ss:
            return np.asarray(ss[n].values)
    return None


def checks(idata, tables: list[pd.DataFrame]) -> list[Check]:
    """The diagnostics table of the report."""
    out: list[Check] = []
    ss = idata.sample_stats if "sample_stats" in idata.groups() else None
    post = idata.posterior
    total = int(post.sizes["chain"]) * int(post.sizes["draw"])
    n = count_flag(idata, DIVERGENCE_STATS)
    if n is None:
        out.append(Check("Divergent transitions", "not recorded", "warn",
                         "The sampler did not store divergence information."))
    else:
        out.append(Check("Divergent transitions", f"{n} of {total} draws",
                         "ok" if n == 0 else "bad",
                         "" if n == 0 else
                         "Draws near divergences are biased. Raise target_accept (e.g. "
                         "fit(..., target_accept=0.95) or --target-accept 0.95), put stronger "
                         "priors on the group-level sd (e.g. prior('exponential(1)', "
                         "class_='sd')), or, for a Gaussian model, use "
                         "likelihood='marginal', which has no funnel."))
    n = count_flag(idata, TREEDEPTH_STATS)
    if n is not None:
        out.append(Check("Maximum tree depth reached", f"{n} of {total} draws",
                         "ok" if n == 0 else "warn",
                         "" if n == 0 else
                         "The sampler hit its trajectory length limit: the posterior is hard to "
                         "traverse (strong correlations or very different scales). Centre or "
                         "scale predictors, or use more informative priors."))
    rows = pd.concat([t for t in tables if len(t)]) if any(len(t) for t in tables) else None
    if rows is not None:
        rhat = rows["Rhat"].to_numpy(dtype=float)
        worst = float(np.nanmax(rhat)) if np.isfinite(rhat).any() else float("nan")
        where = str(rows.index[int(np.nanargmax(rhat))]) if np.isfinite(rhat).any() else ""
        st = rhat_status(worst)
        out.append(Check("Largest Rhat", f"{worst:.3f} ({where})", st,
                         "" if st == "ok" else
                         "Chains disagree: run more iterations (draws, tune), check the trace "
                         "and rank plots, and consider stronger priors."))
        for col in ("Bulk_ESS", "Tail_ESS"):
            ess = rows[col].to_numpy(dtype=float)
            low = float(np.nanmin(ess)) if np.isfinite(ess).any() else float("nan")
            where = str(rows.index[int(np.nanargmin(ess))]) if np.isfinite(ess).any() else ""
            st = ess_status(low)
            out.append(Check(f"Smallest {col}", f"{low:.0f} ({where})", st,
                             "" if st == "ok" else
                             "Too few effective draws for stable "
                             + ("means" if col == "Bulk_ESS" else "interval ends")
                             + ": run more draws; for group-level sd parameters a Gaussian "
                               "model may mix better with likelihood='marginal'."))
    energy = _stat(ss, ("energy",))
    if energy is not None and energy.ndim == 2 and energy.shape[1] > 2:
        e = energy.astype(float)
        bfmi = np.sum(np.diff(e, axis=1) ** 2, axis=1) / np.sum(
            (e - e.mean(axis=1, keepdims=True)) ** 2, axis=1)
        low = float(np.min(bfmi))
        st = "ok" if low >= BFMI_MIN else "warn"
        out.append(Check("Smallest E-BFMI (per chain)", f"{low:.2f}", st,
                         "" if st == "ok" else
                         "Low energy fraction of missing information: the sampler explores the "
                         "tails slowly; reparametrise or use stronger priors on scale "
                         "parameters."))
    return out
