"""Dask-backed statistics (issue 10): statistics pass and end-to-end fit on N rows in Parquet files.

Model: y ~ x1 + x2 + (1 + x1 | g), J = 1000 groups. The data are written to ``--files`` Parquet
files in a temporary directory (file by file, so the writer never holds N rows), then each phase
runs in a fresh process:

* ``dask``   — ``dd.read_parquet(dir)`` on a ``distributed.LocalCluster`` (``--workers`` worker
  processes, 1 thread each): time of ``reduce_statistics`` (levels pass, statistics pass, exact
  median/MAD passes), then ``mf.fit`` end to end (statistics again + compile + sampling);
* ``memory`` — the same at ``--memory-rows`` rows with pandas (``pd.read_parquet`` of the files,
  ``design_matrices`` + ``sufficient_statistics``, then ``mf.fit``), for comparison.

Peak memory is the largest summed RSS of the process and all its children (the Dask nannies and
workers), polled every 0.1 s. Run: ``python benchmarks/dask_scale.py [--rows 1e6]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import warnings

import numpy as np
import pandas as pd

FORMULA = "y ~ x1 + x2 + (1 + x1 | g)"


def write_files(directory: str, N: int, files: int, J: int = 1000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(J, 2)) * [2.0, 0.5]
    bounds = np.linspace(0, N, files + 1).astype(int)
    for k in range(files):
        n = bounds[k + 1] - bounds[k]
        g = rng.integers(0, J, n)
        x1, x2 = rng.normal(size=n), rng.normal(size=n)
        y = 1 + 0.5 * x1 - 0.3 * x2 + u[g, 0] + u[g, 1] * x1 + rng.normal(size=n)
        pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g}).to_parquet(
            os.path.join(directory, f"part{k:03d}.parquet"))


class PeakRSS:
    """Largest summed RSS (MB) of this process and its descendants, polled every 0.1 s."""

    def __init__(self):
        import psutil
        self.proc, self.peak, self._stop = psutil.Process(), 0.0, threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            total = 0
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except Exception:   # a child ended between listing and reading
                    pass
            self.peak = max(self.peak, total / 2**20)
            time.sleep(0.1)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def _measure(data, statistics, draws: int, chains: int, mem: "PeakRSS", out: dict) -> dict:
    """Time the statistics pass and the end-to-end fit on ``data`` (one code path for both the
    Dask and the in-memory phase); peak RSS of each from ``mem``."""
    import mixedformula as mf
    t = time.perf_counter()
    stats = statistics()
    out["stats_s"] = round(time.perf_counter() - t, 2)
    out["stats_peak_rss_mb"] = round(mem.peak)
    out["N"] = stats.N
    t = time.perf_counter()
    fit = mf.fit(FORMULA, data, draws=draws, tune=draws, chains=chains, seed=1,
                 progressbar=False)
    out["fit_s"] = round(time.perf_counter() - t, 2)
    out["sampling_s"] = fit.info["seconds"]
    out["b_x1"] = round(float(fit.posterior["b_x1"].mean()), 4)
    return out


def phase_dask(directory: str, workers: int, draws: int, chains: int) -> dict:
    import dask.dataframe as dd
    from distributed import Client, LocalCluster

    from mixedformula.design.distributed import reduce_statistics
    out = {}
    with PeakRSS() as mem:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster):
            ddf = dd.read_parquet(directory)
            out["partitions"] = ddf.npartitions
            _measure(ddf, lambda: reduce_statistics(FORMULA, ddf)[1], draws, chains, mem, out)
    out["peak_rss_mb"] = round(mem.peak)
    return out


def phase_memory(directory: str, draws: int, chains: int) -> dict:
    import mixedformula as mf
    from mixedformula.design.crossprod import sufficient_statistics
    out = {}
    with PeakRSS() as mem:
        df = pd.read_parquet(directory)
        _measure(df, lambda: sufficient_statistics(
            mf.design_matrices(FORMULA, df, drop_aliased=True)), draws, chains, mem, out)
    out["peak_rss_mb"] = round(mem.peak)
    return out


def _child(args_list: list[str]) -> dict:
    r = subprocess.run([sys.executable, __file__, *args_list], capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode or not lines:
        raise SystemExit(f"phase {args_list} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=float, default=1e7)
    ap.add_argument("--memory-rows", type=float, default=1e6)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--draws", type=int, default=500, help="draws = tune per chain")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--phase", choices=("dask", "memory"), help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    if a.phase:
        res = (phase_dask(a.dir, a.workers, a.draws, a.chains) if a.phase == "dask"
               else phase_memory(a.dir, a.draws, a.chains))
        print("RESULT " + json.dumps(res), flush=True)
        return
    common = ["--workers", str(a.workers), "--draws", str(a.draws), "--chains", str(a.chains)]
    rows = []
    runs = [(int(a.rows), ("dask",))]
    if a.memory_rows > 0:       # --memory-rows 0: the Dask run alone
        runs.append((int(a.memory_rows), ("memory", "dask")))
    for N, phases in runs:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            write_files(d, N, a.files)
            print(f"wrote {N:,} rows in {a.files} files in {time.perf_counter() - t:.1f} s",
                  flush=True)
            for ph in phases:
                res = _child(["--phase", ph, "--dir", d, *common])
                rows.append({"phase": ph, **res})
                print(json.dumps(rows[-1]), flush=True)
    print("\n| data | N | partitions | statistics s | peak RSS MB (statistics) | "
          "fit s (end to end) | sampling s | peak RSS MB (fit) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['phase']} | {r['N']:,} | {r.get('partitions', '-')} | {r['stats_s']} | "
              f"{r['stats_peak_rss_mb']} | {r['fit_s']} | {r['sampling_s']} | "
              f"{r['peak_rss_mb']} |")


if __name__ == "__main__":
    main()
