"""REML speed of mf.lmer (compare: lme4 takes about 0.06 s for sleepstudy on a 2-core machine).

    python benchmarks/reml_speed.py

Prints wall time (median of repeats, after one warm-up fit that pays the imports), the number of
deviance evaluations and the size r of the dense Schur complement for
* sleepstudy ``Reaction ~ Days + (Days | Subject)`` (one factor: per-level 2 × 2 blocks);
* a simulated single-factor model, N = 10⁵ rows, J = 1000 groups, ``(1 + x1 | g)``;
* simulated crossed data ``y ~ x + (1 + x | a) + (1 | b)`` with several sizes of b.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mixedformula as mf  # noqa: E402


def timed(formula, data, repeats=5, reml=True):
    times, fit = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        fit = mf.lmer(formula, data, reml=reml)
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), fit


def simulate_single(n=100_000, J=1000, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    u = rng.normal(size=(J, 2)) * [1.0, 0.5]
    y = 1 + 0.5 * x1 - 0.3 * x2 + u[g, 0] + u[g, 1] * x1 + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g.astype(str)})


def simulate_crossed(n, Ja, Jb, seed=2):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, Ja, n), rng.integers(0, Jb, n)
    x = rng.normal(size=n)
    ua, sa, ub = rng.normal(0, 1, Ja), rng.normal(0, 0.5, Ja), rng.normal(0, 0.8, Jb)
    y = 1 + 0.3 * x + ua[a] + sa[a] * x + ub[b] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{k}" for k in a], "b": [f"b{k}" for k in b]})


def main():
    sleep = mf.datasets.load("sleepstudy")
    t0 = time.perf_counter()
    mf.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    print(f"first call (imports, formulaic warm-up): {time.perf_counter() - t0:.3f} s")
    rows = []
    for label, formula, data, rep in [
        ("sleepstudy (Days | Subject)", "Reaction ~ Days + (Days | Subject)", sleep, 20),
        ("sleepstudy (1 | Subject)", "Reaction ~ Days + (1 | Subject)", sleep, 20),
        ("single factor N=1e5 J=1000", "y ~ x1 + x2 + (1 + x1 | g)", simulate_single(), 3),
        ("crossed N=1e4 a:500 b:50", "y ~ x + (1 + x | a) + (1 | b)",
         simulate_crossed(10_000, 500, 50), 3),
        ("crossed N=2e4 a:1000 b:500", "y ~ x + (1 + x | a) + (1 | b)",
         simulate_crossed(20_000, 1000, 500), 1),
    ]:
        med, best, fit = timed(formula, data, rep)
        r = sum(len(t.levels) * t.layout.q for t in fit.terms[1:])
        rows.append((label, fit.nobs, r, fit.optimizer["nfev"], med, best))
    print(f"{'model':32s} {'N':>7s} {'r':>5s} {'nfev':>5s} {'median s':>9s} {'min s':>7s}")
    for label, n, r, nfev, med, best in rows:
        print(f"{label:32s} {n:7d} {r:5d} {nfev:5d} {med:9.3f} {best:7.3f}")
    print("lme4 sleepstudy (Days | Subject): about 0.06 s on a 2-core machine")


if __name__ == "__main__":
    main()
