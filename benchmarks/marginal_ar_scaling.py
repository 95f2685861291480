"""Cost per log-density + gradient of the marginal AR(1) model against N (issue 23).

Model: y ~ x + (1 | g) + ar(time, g), series of 50 rows per level of g (J = N / 50), the AR(1)
residuals inside each series (simulated ρ = 0.5). For N = 10⁴, 10⁵, 10⁶:

* design + stats — ``mf.Model(...)`` up to the engine decision (formulaic design, the ar()
  lag structure, the structured statistics of :mod:`mixedformula.design.structured_crossprod`:
  (p+1)² lagged cross-products, one pass);
* marginal — one call of the compiled log density *and* its gradient of the whole model
  (``pm.Model.logp_dlogp_function``, PyTensor's C backend), median CPU seconds per call; the
  graph holds (2, 2, J, 1, 1) statistics, so the cost grows with J (here ∝ N), not with the rows;
* conditional — the same for the conditional engine (N-row likelihood, J sampled effects), at
  10⁴ and 10⁵ rows.

Run: ``python benchmarks/marginal_ar_scaling.py [--quick]`` (``--quick``: 10⁴ and 10⁵ only).
CPU seconds (``time.process_time``) are reported because the machine may be shared.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import mixedformula as mf  # noqa: E402

FORMULA = "y ~ x + (1 | g) + ar(time, g)"


def simulate(N: int, n_per: int = 50, rho: float = 0.5, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    J = N // n_per
    g = np.repeat(np.arange(J), n_per)
    t = np.tile(np.arange(1, n_per + 1), J)
    eps = rng.normal(0, 0.7, size=(J, n_per))
    e = np.zeros_like(eps)
    e[:, 0] = eps[:, 0]
    for k in range(1, n_per):
        e[:, k] = rho * e[:, k - 1] + eps[:, k]
    x = rng.normal(size=N)
    y = 1.0 + 0.5 * x + rng.normal(0, 1.0, J)[g] + e.ravel()
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str), "time": t})


def per_call_cpu(f, x, min_cpu=1.0, max_calls=5000) -> float:
    f(x)
    times = []
    start = time.process_time()
    while time.process_time() - start < min_cpu and len(times) < max_calls:
        t0 = time.process_time()
        f(x)
        times.append(time.process_time() - t0)
    return float(np.median(times))


def logp_dlogp(model):
    """The compiled log density + gradient of ``model`` and its initial point (raveled)."""
    from pymc.blocking import DictToArrayBijection
    f = model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    point = model.initial_point()
    x = DictToArrayBijection.map({v.name: point[v.name] for v in model.value_vars}).data
    return f, x + 0.01


def measure(df, likelihood):
    t0 = time.process_time()
    m = mf.Model(FORMULA, df, likelihood=likelihood)
    t_design = time.process_time() - t0
    t0 = time.process_time()
    f, x = logp_dlogp(m.pymc_model)
    t_compile = time.process_time() - t0
    return m, t_design, t_compile, per_call_cpu(f, x)


def main(quick: bool = False) -> None:
    sizes = [10_000, 100_000] if quick else [10_000, 100_000, 1_000_000]
    rows = []
    for N in sizes:
        df = simulate(N)
        m, t_design, t_comp, t_marg = measure(df, "marginal")
        assert m.engine.stats.layout == "block"
        t_cond = None
        if N <= 100_000:
            _, _, _, t_cond = measure(df, "conditional")
        rows.append((N, N // 50, t_design, t_comp, t_marg, t_cond))
        print(f"N={N:>9,d} J={N // 50:>6d}  design+stats {t_design:7.2f} s  compile "
              f"{t_comp:6.2f} s  marginal {t_marg * 1e3:8.3f} ms/call"
              + (f"  conditional {t_cond * 1e3:8.3f} ms/call  (cond/marg "
                 f"{t_cond / t_marg:5.1f})" if t_cond else ""), flush=True)
    base = rows[0]
    print("\nratios to N = 10^4 (N ratio, marginal per-call ratio, conditional ratio):")
    for r in rows[1:]:
        print(f"  N x{r[0] / base[0]:>6.0f}: marginal x{r[4] / base[4]:6.1f}"
              + (f", conditional x{r[5] / base[5]:6.1f}" if r[5] else ""))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    main(**vars(ap.parse_args()))
