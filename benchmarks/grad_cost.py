"""CPU time of the sampler's log-density + gradient of one benchmark case's model.

    PYTHONPATH=. python benchmarks/grad_cost.py offset 7 8 [--calls 2000] [--mode NUMBA]

Builds mixedformula's model for each case of ``benchmarks/cases.py`` and times ``calls``
evaluations of ``model.logp_dlogp_function`` compiled as the sampler compiles it (the mode
with the prior-check rewrite of ``backends/pymc/prior_checks.py``), at the initial point;
prints µs of process CPU time per call (``time.process_time``, so other jobs on the machine
inflate it less than wall time) and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
import mixedformula as mf  # noqa: E402
from cases import CASES  # noqa: E402


def per_call(case: str, calls: int, mode: str) -> tuple[float, float]:
    from mixedformula.backends.pymc.prior_checks import with_rewrite
    c = CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mf.Model(c["formula"], c["data"](), family=c["family"])
        pm_model = model.pymc_model
        f = pm_model.logp_dlogp_function(ravel_inputs=True, mode=with_rewrite(mode))
    f.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in pm_model.initial_point().values()]).astype(float)
    logp = float(f(x)[0])
    for _ in range(20):
        f(x)
    t = time.process_time()
    for _ in range(calls):
        f(x)
    return (time.process_time() - t) / calls * 1e6, logp


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--mode", default="NUMBA")
    a = ap.parse_args()
    for case in a.cases:
        us, logp = per_call(case, a.calls, a.mode)
        print(f"{case}: {us:.1f} µs CPU per logp+dlogp call ({a.calls} calls, {a.mode}), "
              f"logp at the initial point {logp:.6f}, load {os.getloadavg()[0]:.1f}", flush=True)
