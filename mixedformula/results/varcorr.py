"""Group-level covariance G (per grouping factor, per by-level) and residual covariance R.

For a block with coefficients 1…q, per draw s:

    Σ⁽ˢ⁾ = diag(sd⁽ˢ⁾) Ω⁽ˢ⁾ diag(sd⁽ˢ⁾),   Σ⁽ˢ⁾_ij = sd_i⁽ˢ⁾ sd_j⁽ˢ⁾ ρ_ij⁽ˢ⁾

with ρ_ii = 1 and ρ_ij = 0 for coefficients without a ``cor_`` parameter (``||`` terms, separate
terms of one factor: independent by construction). ``cov`` is the posterior mean of Σ⁽ˢ⁾ (not
the product of posterior means); ``cor`` the posterior mean of Ω⁽ˢ⁾. The residual part is the same
with sd = σ per response and Ω the residual correlation (``rescor``); univariate: R = σ².

:func:`varcorr` returns a :class:`VarCorr` (a dict) ::

    {"Subject": {"sd": DataFrame(coef × [Estimate, Est.Error, Q2.5, Q97.5]),
                 "cor": DataFrame(q × q), "cov": DataFrame(q × q)},
     "g": {"sd": <all by-levels, rows "Intercept:hA">, "by": "h",        # gr(g, by = h)
           "levels": {"A": {"sd", "cor", "cov"}, "B": {...}}},
     "residual": {"sd": DataFrame(response × stats), "cor", "cov"}}     # (+ "by"/"levels")

``str(varcorr)`` prints lme4's ``VarCorr`` view (posterior means of sd and cor).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .params import ParamIndex
from .tables import draws_summary, flat_draws, q_names


def _stats_frame(draws: np.ndarray, index: list[str], probs) -> pd.DataFrame:
    stats = draws_summary(draws, probs)
    return pd.DataFrame(stats.T, index=pd.Index(index, dtype=object),
                        columns=["Estimate", "Est.Error"] + q_names(probs))


def _block(names: list[str], sd: np.ndarray, pairs: dict[tuple[int, int], np.ndarray],
           probs) -> dict:
    """sd: (S, q); pairs: (i, j) → (S,) correlation draws."""
    S, q = sd.shape
    cor = np.broadcast_to(np.eye(q), (S, q, q)).copy()
    for (i, j), r in pairs.items():
        cor[:, i, j] = cor[:, j, i] = r
    cov = sd[:, :, None] * sd[:, None, :] * cor
    return {"sd": _stats_frame(sd, names, probs),
            "cor": pd.DataFrame(cor.mean(axis=0), index=names, columns=names),
            "cov": pd.DataFrame(cov.mean(axis=0), index=names, columns=names)}


def _partition(params, key):
    out: dict = {}
    for p in params:
        out.setdefault(key(p), []).append(p)
    return out


def _group_blocks(post, sds, cors, probs) -> dict:
    names = [p.coef for p in sds]
    pos = {n: k for k, n in enumerate(names)}
    sd = np.stack([flat_draws(post[p.var].values) for p in sds], axis=1)
    pairs = {}
    for c in cors:
        if c.coef1 in pos and c.coef2 in pos:
            pairs[(pos[c.coef1], pos[c.coef2])] = flat_draws(post[c.var].values)
    return _block(names, sd, pairs, probs)


class VarCorr(dict):
    """dict of group → G (and ``"residual"`` → R); prints like lme4's ``VarCorr``."""

    def __str__(self) -> str:
        rows = []   # (group, name, sd, [cors])
        for g, entry in self.items():
            label = "Residual" if g == "residual" else g
            subs = ([(f"{label}:{entry['by']}{lev}" if g != "residual" else f"{label}:{lev}", e)
                     for lev, e in entry["levels"].items()] if "levels" in entry
                    else [(label, entry)])
            for glabel, e in subs:
                if "cor" not in e:
                    continue
                est = e["sd"]["Estimate"].to_numpy()
                cor = e["cor"].to_numpy()
                for k, name in enumerate(e["sd"].index):
                    if g == "residual":
                        name = "" if len(est) == 1 else str(name)
                    else:
                        name = "(Intercept)" if name == "Intercept" else str(name)
                    rows.append((glabel if k == 0 else "", name, est[k], list(cor[k, :k])))
        if not rows:
            return "VarCorr: no group-level or residual standard deviations"
        finite = [abs(r[2]) for r in rows if np.isfinite(r[2]) and r[2] != 0]
        dec = max(0, 3 - math.floor(math.log10(min(finite)))) if finite else 3
        sds = [f"{r[2]:.{dec}f}" for r in rows]
        wv = max(len(s) for s in sds)
        sds = [s.rjust(wv) for s in sds]
        wg = max(len("Groups"), *(len(r[0]) for r in rows))
        wn = max(len("Name"), *(len(r[1]) for r in rows))
        ws = max(len("Std.Dev."), wv)
        has_cor = any(r[3] for r in rows)
        head = f" {'Groups'.ljust(wg)} {'Name'.ljust(wn)} {'Std.Dev.'.ljust(ws)}"
        lines = [head + (" Corr" if has_cor else "")]
        for r, s in zip(rows, sds):
            line = f" {r[0].ljust(wg)} {r[1].ljust(wn)} {s.ljust(ws)}"
            if r[3]:
                line += " " + " ".join(f"{c:5.2f}" for c in r[3])
            lines.append(line.rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def varcorr(posterior, index: ParamIndex, responses: list[str] | None = None,
            probs=(0.025, 0.975)) -> VarCorr:
    out = VarCorr()
    for g, info in index.groups.items():
        sds = index.sd.get(g, [])
        if not sds:
            continue
        cors = index.cor.get(g, [])
        parts = _partition(sds, lambda p: (p.by_label, p.by_level))
        if list(parts) == [(None, None)]:
            out[g] = _group_blocks(posterior, sds, cors, probs)
            continue
        labels = [p.coef + (f":{p.by_label}" if p.by_label else "") for p in sds]
        sd_all = np.stack([flat_draws(posterior[p.var].values) for p in sds], axis=1)
        entry = {"sd": _stats_frame(sd_all, labels, probs), "by": info.by, "levels": {}}
        for (label, level), ps in parts.items():
            cs = [c for c in cors if c.by_label == label]
            entry["levels"][level if level is not None else ""] = _group_blocks(
                posterior, ps, cs, probs)
        out[g] = entry
    sig = [p for p in index.spec if p.dpar == "sigma"]
    if sig:
        out["residual"] = _residual(posterior, index, sig, responses, probs)
    return out


def _residual(post, index: ParamIndex, sig, responses, probs) -> dict:
    def resp_name(p):
        if p.resp:
            return p.resp
        return responses[0] if responses and len(responses) == 1 else "sigma"

    def one(ps, label):
        names = [resp_name(p) for p in ps]
        pos = {n: k for k, n in enumerate(names)}
        sd = np.stack([flat_draws(post[p.var].values) for p in ps], axis=1)
        pairs = {}
        for r in index.rescor:
            if r.by_label == label and r.resp1 in pos and r.resp2 in pos:
                pairs[(pos[r.resp1], pos[r.resp2])] = flat_draws(post[r.var].values)
        return _block(names, sd, pairs, probs)

    parts = _partition(sig, lambda p: p.by_label)
    if list(parts) == [None]:
        return one(sig, None)
    labels = [resp_name(p) + (f":{p.by_label}" if p.by_label else "") for p in sig]
    sd_all = np.stack([flat_draws(post[p.var].values) for p in sig], axis=1)
    return {"sd": _stats_frame(sd_all, labels, probs), "by": None,
            "levels": {(lab or ""): one(ps, lab) for lab, ps in parts.items()}}
