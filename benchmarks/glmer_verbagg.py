"""glmer on VerbAgg (issue 20 target: faster than lme4): ``r2 ~ Anger + Gender + btype + situ +
(1 | id) + (1 | item)``, binomial, 7,584 rows, crossed 316 × 24 levels.

    PYTHONPATH=. python benchmarks/glmer_verbagg.py [repeats]

Times ``mf.glmer`` (best and median of ``repeats`` fits, default 3, after one warm-up fit that
also pays the imports) and, where Rscript exists, lme4's ``glmer`` with its default control in
the same way (one warm-up fit, then ``repeats`` timed); prints the ratio. Without Rscript the
stored lme4 timing below is printed instead. The load average is printed before and after:
timings on a shared machine are only comparable when taken back to back."""

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import mixedformula as mf

#: lme4 1.1-31 glmer (default control) on this model, seconds, 2026-12-01, 2-core machine at
#: load average ~15 (tests/data/verbagg_hessian.json, seconds_glmer_default)
STORED_LME4 = 21.8

repeats = int(sys.argv[1]) if len(sys.argv) > 1 else 3
DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "glmer_verbagg.csv.gz"
FORMULA = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
va = pd.read_csv(DATA, dtype={"id": str, "item": str})
va["r2"] = (va["r2"] == "Y").astype(float)

print(f"load average before: {os.getloadavg()}")
mf.glmer(FORMULA, va, family="bernoulli")
ours = []
for _ in range(repeats):
    t0 = time.perf_counter()
    fit = mf.glmer(FORMULA, va, family="bernoulli")
    ours.append(time.perf_counter() - t0)
print(f"mixedformula glmer: best {min(ours):.2f} s, median {statistics.median(ours):.2f} s "
      f"({repeats} fits; {fit.optimizer['nfev']} stage-2 deviance evaluations in the search)")
lme4 = None
if shutil.which("Rscript"):
    code = ("suppressMessages(library(lme4)); data(VerbAgg); "
            "f <- function() glmer(r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item), "
            "VerbAgg, binomial); invisible(f()); "
            f"t <- replicate({repeats}, system.time(f())[['elapsed']]); "
            "cat(sprintf('%.4f\\n', t))")
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    try:
        times = [float(x) for x in out.stdout.split()]
        lme4 = min(times)
        print(f"lme4 glmer: best {lme4:.2f} s, median {statistics.median(times):.2f} s "
              f"({repeats} fits)")
    except ValueError:
        print("lme4 timing failed:", out.stderr.strip()[-500:])
if lme4 is None:
    lme4 = STORED_LME4
    print(f"lme4 glmer (stored, loaded machine): {lme4:.2f} s")
print(f"ratio mixedformula / lme4 (best times): {min(ours) / lme4:.2f}")
print(f"load average after: {os.getloadavg()}")
