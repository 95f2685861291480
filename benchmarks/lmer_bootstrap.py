"""Parametric bootstrap of sleepstudy ``Reaction ~ Days + (Days | Subject)`` (issue 20 target:
1,000 replicates in under 10 s on 2 cores), beside lme4's ``bootMer`` where Rscript exists.

    PYTHONPATH=. python benchmarks/lmer_bootstrap.py [nsim]

Prints wall-clock and CPU seconds (this process plus its reaped worker processes, from
``os.times()``) for 1 and 2 worker processes, and the machine's load average: wall times are
only comparable on an otherwise idle machine; CPU seconds / 2 is what 2 idle cores would
take (plus the fork and hand-back overhead)."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

import mixedformula as mf

nsim = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
sleep = pd.read_csv(Path(mf.__file__).parent / "datasets" / "sleepstudy.csv")
fit = mf.lmer("Reaction ~ Days + (Days | Subject)", sleep)
print(f"load average before: {os.getloadavg()}")
def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


for workers in (1, 2):
    t0, c0 = time.perf_counter(), cpu()
    reps = fit.bootstrap(nsim, seed=1, workers=workers)
    dt, dc = time.perf_counter() - t0, cpu() - c0
    print(f"mixedformula bootstrap: {nsim} replicates, {workers} worker(s): {dt:.2f} s wall, "
          f"{dc:.2f} s CPU ({1000 * dt / nsim:.1f} ms/replicate wall)")
print(f"load average after: {os.getloadavg()}")
if shutil.which("Rscript"):
    code = (f"suppressMessages(library(lme4)); fm <- lmer(Reaction ~ Days + (Days | Subject), "
            f"sleepstudy); t <- system.time(b <- bootMer(fm, function(m) c(fixef(m), "
            f"getME(m, 'theta'), sigma(m)), nsim = {nsim}, seed = 1))[['elapsed']]; "
            f"cat(sprintf('lme4 bootMer: %d replicates: %.2f s\\n', {nsim}, t))")
    print(subprocess.run(["Rscript", "-e", code], capture_output=True, text=True).stdout,
          end="")
