"""JAX samplers against nutpie on one case (issue 10, part 3): end-to-end time and ESS/s.

    python benchmarks/jax_samplers.py                        # case 3, nutpie vs numpyro, 4 × (1000 + 1000)
    python benchmarks/jax_samplers.py --case 1 --samplers nutpie,numpyro,blackjax --chains 2

Each sampler runs ``mf.fit(formula, data, sampler=...)`` in a fresh process (this script with
``--one``), so imports and compilation are counted as a user meets them. Measured per run:

* end to end s: parent's clock from process start until ``fit.summary()`` is printed;
* fit s: ``fit.info["seconds"]`` — compile + warmup + sampling (for the JAX samplers the model
  and the NUTS loop are compiled inside ``pm.sample``, so compile cannot be separated there);
* min bulk ESS over the reported parameters (fixed effects, sds, correlations, sigma);
* CPU s: user + system CPU time of the whole process (all threads) — on a shared machine the
  least load-dependent cost measure;
* ESS/s end to end, per fit second and per CPU second; mean leapfrog steps per draw;
  divergences.

Data come from ``cases.py`` (same seeds as ``run.py``). Only mixedformula's public API is used.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def one(case_id: str, sampler: str, draws: int, tune: int, chains: int, seed: int) -> dict:
    """One fit in this process; returns the measurements."""
    import numpy as np

    import arviz as az
    import mixedformula as mf
    from cases import CASES
    case = CASES[case_id]
    data = case["data"]()
    fit = mf.fit(case["formula"], data, family=case["family"], draws=draws, tune=tune,
                 chains=chains, seed=seed, sampler=sampler, progressbar=False)
    print(fit.summary(), flush=True)
    t_summary = time.time()
    post = fit.idata.posterior
    names = [v for v in post.data_vars
             if v.startswith(("b_", "sd_", "cor_")) or v in ("sigma", "shape", "nu")]
    ess = az.ess(post[names], method="bulk")
    min_ess = min(float(np.min(ess[v].values)) for v in names)
    rhat = az.rhat(post[names])
    max_rhat = max(float(np.max(rhat[v].values)) for v in names)
    ss = fit.idata.sample_stats
    steps = next((float(ss[k].mean()) for k in ("n_steps", "tree_size") if k in ss), None)
    div = int(ss["diverging"].sum()) if "diverging" in ss else None
    return {"case": case_id, "sampler": sampler, "likelihood": fit.likelihood,
            "fit_s": fit.info["seconds"], "min_bulk_ess": min_ess, "max_rhat": max_rhat,
            "steps_per_draw": steps, "divergences": div, "t_summary": t_summary}


def run(case_id, sampler, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--one", sampler, "--case", case_id,
           "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains),
           "--seed", str(args.seed)]
    t0 = time.time()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"case": case_id, "sampler": sampler, "error": f"not finished in {args.timeout} s"}
    line = [x for x in p.stdout.splitlines() if x.startswith("JAXBENCH ")]
    if p.returncode or not line:
        return {"case": case_id, "sampler": sampler,
                "error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    res = json.loads(line[-1][len("JAXBENCH "):])
    res["end_to_end_s"] = res.pop("t_summary") - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["cpu_s"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    res["ess_per_cpu_s"] = res["min_bulk_ess"] / res["cpu_s"]
    res["ess_per_s_e2e"] = res["min_bulk_ess"] / res["end_to_end_s"]
    res["ess_per_s_fit"] = res["min_bulk_ess"] / res["fit_s"]
    return res


def table(results: list[dict], args) -> str:
    load = os.getloadavg()
    head = (f"{args.chains} chains × ({args.tune} tune + {args.draws} draws), seed {args.seed}; "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; load average at the "
            f"end {load[0]:.1f} (shared machine).")
    rows = ["| case | sampler | engine | end to end s | fit s (compile + sampling) | "
            "CPU s | min bulk ESS | ESS/s e2e | ESS/s fit | ESS/CPU s | max Rhat | "
            "leapfrog steps/draw | divergences |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        name = r["sampler"] + (" (vectorized chains)" if r["sampler"] in ("numpyro", "blackjax")
                               else "")
        if "error" in r:
            rows.append(f"| {r['case']} | {name} | | {r['error']} | | | | | | | | | |")
            continue
        rows.append(f"| {r['case']} | {name} | {r['likelihood']} | {r['end_to_end_s']:.1f} | "
                    f"{r['fit_s']:.1f} | {r['cpu_s']:.1f} | {r['min_bulk_ess']:,.0f} | "
                    f"{r['ess_per_s_e2e']:.2f} | {r['ess_per_s_fit']:.2f} | "
                    f"{r['ess_per_cpu_s']:.2f} | {r['max_rhat']:.3f} | "
                    f"{r['steps_per_draw']:.1f} | {r['divergences']} |")
    return head + "\n\n" + "\n".join(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="3")
    ap.add_argument("--samplers", default="nutpie,numpyro")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.one:
        res = one(args.case, args.one, args.draws, args.tune, args.chains, args.seed)
        print("JAXBENCH " + json.dumps(res), flush=True)
        return 0
    results = []
    for s in args.samplers.split(","):
        print(f"[{time.strftime('%H:%M:%S')}] case {args.case} / {s}", file=sys.stderr,
              flush=True)
        results.append(run(args.case, s.strip(), args))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(table(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
