"""kb07-shaped simulated data (Kronmüller & Barr 2007 as used by MixedModels.jl): subjects × items
fully crossed, a 2 × 2 × 2 within design (spkr, prec, load coded ±0.5), assigned by a Latin
square (row (s, i) gets condition (s + i) mod 8), so every subject and every item sees each
condition equally often and all 8 random coefficients per factor are identifiable.

    python benchmarks/kb07_like.py OUT.csv [n_subj n_item n_factors seed]

writes the CSV (used for tests/data/kb07_like*.csv; the R script tests/data/r/kb07_reference.R
fits it with lme4).
"""

from __future__ import annotations

import itertools
import sys

import numpy as np
import pandas as pd

FACTORS = ("spkr", "prec", "load")


def kb07_like(n_subj: int = 56, n_item: int = 32, n_factors: int = 3, seed: int = 7) -> pd.DataFrame:
    """Simulated response time ``rt`` (ms-like scale) with correlated subject and item effects
    for the intercept and every main effect and interaction of ``n_factors`` ±0.5 factors."""
    rng = np.random.default_rng(seed)
    names = FACTORS[:n_factors]
    conds = np.array(list(itertools.product([-0.5, 0.5], repeat=n_factors)))   # (2^f, f)
    nc = len(conds)
    s = np.repeat(np.arange(n_subj), n_item)
    i = np.tile(np.arange(n_item), n_subj)
    c = conds[(s + i) % nc]
    # model columns: intercept, then the main effects and interactions in R's order
    cols = [np.ones(len(s))]
    for order in range(1, n_factors + 1):
        for combo in itertools.combinations(range(n_factors), order):
            cols.append(np.prod(c[:, list(combo)], axis=1))
    M = np.column_stack(cols)                                                 # (n, 2^f)
    q = M.shape[1]
    beta = np.concatenate([[2180.0, 67.0, 334.0, 78.0][:min(q, 4)], rng.normal(0, 30, max(0, q - 4))])
    sd_s = np.concatenate([[300.0, 40.0, 60.0, 20.0][:min(q, 4)], np.full(max(0, q - 4), 25.0)])
    sd_i = np.concatenate([[360.0, 30.0, 90.0, 35.0][:min(q, 4)], np.full(max(0, q - 4), 20.0)])

    def corr(k):
        A = rng.normal(size=(k, k + 2))
        C = A @ A.T
        d = np.sqrt(np.diag(C))
        return C / d[:, None] / d[None, :]

    bs = rng.multivariate_normal(np.zeros(q), corr(q) * np.outer(sd_s, sd_s), size=n_subj)
    bi = rng.multivariate_normal(np.zeros(q), corr(q) * np.outer(sd_i, sd_i), size=n_item)
    eta = M @ beta + np.einsum("nq,nq->n", M, bs[s]) + np.einsum("nq,nq->n", M, bi[i])
    y = eta + rng.normal(0, 670.0, len(s))
    out = pd.DataFrame({"subj": [f"S{k + 1:03d}" for k in s], "item": [f"I{k + 1:02d}" for k in i]})
    for k, n in enumerate(names):
        out[n] = c[:, k]
    out["rt"] = np.round(y, 3)
    return out


if __name__ == "__main__":
    args = sys.argv[1:]
    path = args[0]
    ns, ni, nf, seed = (int(a) for a in (args[1:] + ["56", "32", "3", "7"][len(args) - 1:])[:4])
    kb07_like(ns, ni, nf, seed).to_csv(path, index=False)
