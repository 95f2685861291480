"""Scaling of the marginal-likelihood kernels with the number of rows N.

Model: y ~ x1 + x2 + (1 + x1 | g), J = 1000 groups, N = 10⁴, 10⁵, 10⁶ rows. For each N:

* design  — ``design_matrices`` (formulaic X, group coding), grows with N;
* stats   — ``sufficient_statistics`` (one vectorised pass), grows with N;
* C / numba — one evaluation of the compiled log-likelihood *and* its gradient w.r.t. (β, T, σ),
  median over repeated calls, in pytensor's default C backend and in numba mode. Must not grow
  with N: the graph holds only (J, 2, 2) / (J, 2, 3) statistics.

Then the design step alone for 10⁶ rows with ``(1 + x | g)`` and 10⁴ levels: wall time and peak
Python-heap memory (tracemalloc, second run) — the numbers the foundation issue asks for.

Run: ``python benchmarks/marginal_scaling.py [--quick]`` (``--quick`` stops at 10⁵ rows).
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import pytensor  # noqa: E402
import pytensor.tensor as pt  # noqa: E402

from mixedformula.backends.pymc.marginal import marginal_loglik  # noqa: E402
from mixedformula.design import design_matrices  # noqa: E402
from mixedformula.design.crossprod import sufficient_statistics  # noqa: E402


def simulate(N: int, J: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, N)
    x1, x2 = rng.normal(size=N), rng.normal(size=N)
    u = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.5]], size=J)
    y = 1.0 + 0.5 * x1 - 0.3 * x2 + u[g, 0] + u[g, 1] * x1 + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g})


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def per_call(f, args, min_time=0.5, max_calls=2000):
    f(*args)
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time and len(times) < max_calls:
        t0 = time.perf_counter()
        f(*args)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def compile_logp(stats, mode):
    beta, sigma, T = pt.vector("beta"), pt.scalar("sigma"), pt.matrix("T")
    lp = marginal_loglik(stats, beta, T, sigma)
    grads = pytensor.grad(lp, [beta, T, sigma])
    return pytensor.function([beta, sigma, T], [lp, *grads], mode=mode)


def main(quick: bool = False) -> None:
    J = 1000
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    modes = [("C", None), ("numba", "NUMBA")]
    args = (np.array([1.0, 0.5, -0.3]), 1.0, np.array([[1.0, 0.0], [0.3, 0.6]]))
    rows = []
    for N in sizes:
        df = simulate(N, J)
        design, t_design = timed(design_matrices, "y ~ x1 + x2 + (1 + x1 | g)", df)
        stats, t_stats = timed(sufficient_statistics, design)
        row = {"N": N, "design s": t_design, "stats s": t_stats}
        for name, mode in modes:
            f, t_comp = timed(compile_logp, stats, mode)
            row[f"{name} compile s"] = t_comp
            row[f"{name} logp+grad ms"] = 1e3 * per_call(f, args)
        rows.append(row)
        del df, design
        gc.collect()
    table = pd.DataFrame(rows).set_index("N")
    print(f"\ny ~ x1 + x2 + (1 + x1 | g), J = {J}")
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))

    # design step: 10⁶ rows, (1 + x | g), 10⁴ levels
    N, J = (100_000, 10_000) if quick else (1_000_000, 10_000)
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": rng.normal(size=N), "x": rng.normal(size=N),
                       "g": rng.integers(0, J, N)})
    formula = "y ~ x + (1 + x | g)"
    design, t_design = timed(design_matrices, formula, df)
    stats, t_stats = timed(sufficient_statistics, design)
    del design, stats
    gc.collect()
    tracemalloc.start()
    design = design_matrices(formula, df)
    _, peak_design = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    sufficient_statistics(design)
    _, peak_stats = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    mb = df.memory_usage(deep=True).sum() / 2 ** 20
    print(f"\ndesign_matrices({formula!r}), {N} rows, {J} levels (input frame {mb:.0f} MB):")
    print(f"  design step   {t_design:.2f} s, peak traced memory {peak_design / 2**20:.0f} MB")
    print(f"  statistics    {t_stats:.3f} s, peak traced memory {peak_stats / 2**20:.0f} MB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    main(ap.parse_args().quick)
