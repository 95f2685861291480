"""Crossed random effects by REML/ML (issue 24): ``mf.lmer`` against lme4, one run, ratios.

    python benchmarks/crossed_reml.py                       # every case, lme4 run beside
    python benchmarks/crossed_reml.py --stored-lme4         # lme4's kb07 times/logLik from tests/data
                                                            # (lme4 not run for the other cases)
    python benchmarks/crossed_reml.py --cases kb07_zerocorr,insteval --no-lme4

Cases (targets of issue 24 in brackets):

* ``kb07_zerocorr``: kb07-shaped simulation (tests/data/kb07_like.csv: 56 subjects × 32 items,
  1792 rows, 2×2×2 within design), ``(1 + spkr*prec*load || subj) + (… || item)``, ML [≤ 1 s];
* ``kb07_maximal``: the same with correlated 8 × 8 blocks, ML [≤ 5 s]; lme4 takes ~11 min, so
  ``--stored-lme4`` reads its time and logLik from tests/data/kb07_reference_maximal.json
  (written by tests/data/r/kb07_reference.R, several optimisers; the best logLik is printed);
* ``insteval``: :func:`mixedformula.simulation.insteval_like`, ``(1|s) + (1|d) + (1|dept)``,
  REML [≤ 2 s];
* ``movielens``: MovieLens-1M-shaped simulation (10⁶ rows, 6040 users × 3706 movies,
  heavy-tailed activity and popularity), ``(1|user) + (1|movie)``, REML [≤ 60 s, ≤ 4 GB].

Printed per case: our wall and CPU seconds, deviance evaluations, logLik (or REML criterion),
lme4's wall seconds and logLik, the ratio lme4 / ours and the logLik difference; the load
average before each case (the machine is shared: wall times carry the load, CPU seconds less
so) and the peak RSS of this process at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import mixedformula as mf  # noqa: E402
from mixedformula.simulation import INSTEVAL_FORMULA, insteval_like  # noqa: E402

DATA = ROOT / "tests" / "data"
KB07_ZC = ("rt ~ 1 + spkr * prec * load + (1 + spkr * prec * load || subj) "
           "+ (1 + spkr * prec * load || item)")
KB07_MAX = ("rt ~ 1 + spkr * prec * load + (1 + spkr * prec * load | subj) "
            "+ (1 + spkr * prec * load | item)")
MOVIELENS = "y ~ 1 + (1 | user) + (1 | movie)"


def movielens_like(n: int = 1_000_000, users: int = 6040, movies: int = 3706,
                   seed: int = 1) -> pd.DataFrame:
    """Ratings shaped like MovieLens-1M: every user rates ≥ 20 movies, user activity and movie
    popularity log-normal (heavy tails), no user rates a movie twice; Gaussian ratings
    y = 3.6 + u_user (sd 0.4) + u_movie (sd 0.5) + ε (sd 0.9)."""
    rng = np.random.default_rng(seed)
    act = rng.lognormal(0.0, 1.0, users)
    per_user = 20 + np.floor(act / act.sum() * (n - 20 * users)).astype(int)
    per_user[: n - per_user.sum()] += 1
    per_user = np.minimum(per_user, movies)
    while per_user.sum() < n:                 # rows cut by the cap go to users with room
        room = np.nonzero(per_user < movies)[0]
        add = min(n - int(per_user.sum()), len(room))
        per_user[room[:add]] += 1
    pop = rng.lognormal(0.0, 1.3, movies)
    pop /= pop.sum()
    us, ms = [], []
    for u, k in enumerate(per_user):
        # k distinct movies by popularity (Gumbel top-k)
        keys = np.log(pop) + rng.gumbel(size=movies)
        ms.append(np.argpartition(-keys, k - 1)[:k])
        us.append(np.full(k, u))
    user, movie = np.concatenate(us), np.concatenate(ms)
    y = (3.6 + rng.normal(0, 0.4, users)[user] + rng.normal(0, 0.5, movies)[movie]
         + rng.normal(0, 0.9, len(user)))
    return pd.DataFrame({"user": pd.Categorical([f"u{k}" for k in user]),
                         "movie": pd.Categorical([f"m{k}" for k in movie]), "y": y})


def load() -> str:
    try:
        return "load average %.1f %.1f %.1f" % os.getloadavg()
    except OSError:
        return "load average unknown"


def run_lme4(data: pd.DataFrame, formula: str, reml: bool, timeout: float) -> dict | None:
    """lme4's default fit (nloptwrap) in a fresh Rscript: elapsed seconds and logLik."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "d.csv"
        data.to_csv(csv, index=False)
        code = (f"suppressMessages(library(lme4)); d <- read.csv('{csv}'); "
                f"t0 <- proc.time()[['elapsed']]; "
                f"fit <- lmer({formula}, d, REML = {'TRUE' if reml else 'FALSE'}); "
                f"cat(proc.time()[['elapsed']] - t0, as.numeric(logLik(fit)), '\\n')")
        try:
            out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True,
                                 timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"elapsed": float("nan"), "logLik": float("nan"),
                    "note": f"not finished in {timeout:.0f} s"}
    try:
        el, ll = out.stdout.split()[-2:]
        return {"elapsed": float(el), "logLik": float(ll), "note": "run now"}
    except ValueError:
        return {"elapsed": float("nan"), "logLik": float("nan"),
                "note": "failed: " + out.stderr.strip()[-200:]}


def stored_lme4(case: str) -> dict | None:
    path = DATA / f"kb07_reference_{case}.json"
    if not path.exists():
        return None
    ref = json.loads(path.read_text())
    runs = ref["runs"]
    best = runs[ref["best"]]
    default = runs.get("nloptwrap", best)
    return {"elapsed": default["elapsed"], "logLik": best["logLik"],
            "note": f"stored ({path.name}: time of lme4's default nloptwrap, best logLik of "
                    f"{', '.join(runs)} = {ref['best']})"}


def ours(formula: str, data: pd.DataFrame, reml: bool) -> dict:
    t, c = time.perf_counter(), time.process_time()
    fit = mf.lmer(formula, data, reml=reml)
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "fit": fit}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", default="kb07_zerocorr,kb07_maximal,insteval,movielens")
    ap.add_argument("--stored-lme4", action="store_true",
                    help="kb07 cases: lme4's time and logLik from tests/data; lme4 is not "
                         "run for the cases without stored numbers")
    ap.add_argument("--no-lme4", action="store_true")
    ap.add_argument("--lme4-timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")
    kb07 = pd.read_csv(DATA / "kb07_like.csv")
    mf.lmer("rt ~ spkr + (1 | subj)", kb07)            # imports and formulaic warm-up
    cases = {
        "kb07_zerocorr": (KB07_ZC, lambda: kb07, False, "zerocorr", 1.0),
        "kb07_maximal": (KB07_MAX, lambda: kb07, False, "maximal", 5.0),
        "insteval": (INSTEVAL_FORMULA, lambda: insteval_like(1.0, seed=1), True, None, 2.0),
        "movielens": (MOVIELENS, movielens_like, True, None, 60.0),
    }
    rows = []
    for name in args.cases.split(","):
        formula, make, reml, stored, target = cases[name]
        data = make()
        print(f"\n== {name}: {len(data)} rows, {formula} ({'REML' if reml else 'ML'}); "
              f"{load()}", flush=True)
        r = ours(formula, data, reml)
        fit = r["fit"]
        crit = "REML criterion" if reml else "logLik"
        val = fit.objective if reml else fit.logLik
        print(f"mixedformula: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU, "
              f"{fit.optimizer['nfev']} evaluations, {crit} {val:.6f}, singular "
              f"{fit.is_singular} (target <= {target:g} s)", flush=True)
        ref = None
        if args.stored_lme4:
            ref = stored_lme4(stored) if stored else None      # the others: lme4 not run
        elif not args.no_lme4:
            ref = run_lme4(data, formula, reml, args.lme4_timeout)
        if ref is not None:
            ll_ref = ref["logLik"]
            ours_ll = fit.logLik
            print(f"lme4: {ref['elapsed']:.2f} s, logLik {ll_ref:.6f} [{ref['note']}]; "
                  f"ratio lme4/ours {ref['elapsed'] / r['wall']:.1f}x (wall); "
                  f"logLik ours - lme4 {ours_ll - ll_ref:+.2e}", flush=True)
        rows.append((name, r["wall"], r["cpu"], target, ref))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    print(f"\npeak RSS of this process: {rss:.2f} GB; {load()}")
    print(f"{'case':15s} {'ours s':>8s} {'CPU s':>7s} {'target':>7s} {'lme4 s':>8s} {'ratio':>6s}")
    for name, wall, cpu, target, ref in rows:
        el = ref["elapsed"] if ref else float("nan")
        print(f"{name:15s} {wall:8.2f} {cpu:7.2f} {target:7.1f} {el:8.2f} {el / wall:6.1f}")


if __name__ == "__main__":
    main()
