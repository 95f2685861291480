"""Crossed random effects at InstEval scale (issue #10, part 2): REML and Bayesian.

Data: :func:`mixedformula.simulation.insteval_like` — about 73 000 rows, s (2972 students),
d (1128 instructors), dept (14), ``y ~ service + (1 | s) + (1 | d) + (1 | dept)``.

    python benchmarks/insteval_scale.py                      # REML + engines' gradients + default fit
    python benchmarks/insteval_scale.py --skip-fit           # REML and per-gradient timings only
    python benchmarks/insteval_scale.py --fit marginal --draws 100 --tune 100 --chains 2

Prints, each with its wall time:
* REML (``mf.lmer``): wall and CPU seconds (CPU time is the better guide on a busy machine), deviance evaluations, seconds per evaluation, θ, σ;
* ``sufficient_statistics`` and the engine ``likelihood="auto"`` picks (with its note);
* per engine: seconds per log-density + gradient evaluation (compiled by pytensor's default
  C backend, the same graph nutpie compiles with numba), median over repeated calls;
* a Bayesian fit (default: the auto engine with the default settings, 4 chains × (1000 + 1000)):
  total wall time, sampling time, mean leapfrog steps per draw, min bulk ESS over b_, sd_ and
  sigma, ESS per second of sampling.

The machine the numbers in benchmarks/README.md come from is shared (2 cores, other engineers'
jobs running): wall times carry up to ~2–3× noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import mixedformula as mf  # noqa: E402
from mixedformula.simulation import INSTEVAL_FORMULA, insteval_like  # noqa: E402


def per_gradient(model: "mf.Model", min_time: float = 3.0, max_calls: int = 200) -> float:
    """Median seconds of one log-density + gradient evaluation at the initial point."""
    pm_model = model.pymc_model
    f = pm_model.logp_dlogp_function(ravel_inputs=True)
    f.set_extra_values({})
    x = np.concatenate([np.ravel(v) for v in pm_model.initial_point().values()
                        ]).astype(float)
    f(x)
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < min_time and len(times) < max_calls:
        t = time.perf_counter()
        f(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bayes_fit(model: "mf.Model", draws: int, tune: int, chains: int, seed: int) -> dict:
    import resource
    t, c = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    fit = model.fit(draws=draws, tune=tune, chains=chains, seed=seed, progressbar=False)
    total = time.perf_counter() - t
    c2 = resource.getrusage(resource.RUSAGE_SELF)     # all threads (nutpie's chains included)
    cpu = c2.ru_utime + c2.ru_stime - c.ru_utime - c.ru_stime
    import arviz as az
    post = fit.posterior
    names = [v for v in post.data_vars if v.startswith(("b_", "sd_")) or v == "sigma"]
    ess = az.ess(post[names], method="bulk")
    min_ess = float(min(float(ess[v].min()) for v in names))
    rhat = az.rhat(post)                                  # every variable, u included
    max_rhat = max(float(rhat[v].max()) for v in rhat.data_vars)
    worst = max(rhat.data_vars, key=lambda v: float(rhat[v].max()))
    max_rhat_reported = max(float(rhat[v].max()) for v in names)
    ss = fit.idata.sample_stats
    steps = float(ss["n_steps"].mean()) if "n_steps" in ss else float(ss["tree_size"].mean())
    sampling = fit.info.get("seconds")
    return {"fit": fit, "total_s": total, "sampling_s": sampling, "steps_per_draw": steps,
            "min_bulk_ess": min_ess, "names": names, "cpu_s": cpu, "max_rhat": max_rhat,
            "ess": {v: round(float(ess[v].min())) for v in names}, "worst_rhat": worst,
            "max_rhat_reported": max_rhat_reported}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--skip-reml", action="store_true")
    ap.add_argument("--fit", choices=["auto", "conditional", "marginal", "partial"],
                    default="auto")
    ap.add_argument("--gradients", default="conditional,partial,marginal",
                    help="engines whose per-gradient time is measured ('' for none)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--parametrization", default="auto",
                    help="the fitted model's parametrization= (auto, centred, noncentred), or "
                         "per factor: 'dept=centred,d=noncentred'")
    ap.add_argument("--low-rank", action="store_true",
                    help="nutpie's low-rank modified mass matrix adaptation "
                         "(low_rank_modified_mass_matrix=True)")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    t = time.perf_counter()
    df = insteval_like(args.scale, seed=args.seed)
    print(f"data: {len(df)} rows, s {df.s.nunique()}, d {df.d.nunique()}, "
          f"dept {df.dept.nunique()} levels ({time.perf_counter() - t:.1f} s)", flush=True)

    if not args.skip_reml:
        t, c = time.perf_counter(), time.process_time()
        fit = mf.lmer(INSTEVAL_FORMULA, df)
        sec, cpu = time.perf_counter() - t, time.process_time() - c
        nfev = fit.optimizer["nfev"]
        print(f"REML: {sec:.1f} s wall, {cpu:.1f} s CPU (all threads), {nfev} deviance "
              f"evaluations ({sec / nfev * 1e3:.0f} ms wall each); "
              f"theta {np.round(fit.theta.to_numpy(), 5).tolist()}, sigma {fit.sigma:.5f}, "
              f"REML criterion {fit.objective:.3f}", flush=True)
        print(fit.summary(), flush=True)

    from mixedformula.design import design_matrices
    from mixedformula.design.crossprod import sufficient_statistics
    design = design_matrices(INSTEVAL_FORMULA, df)
    t = time.perf_counter()
    stats = sufficient_statistics(design)
    print(f"statistics: {time.perf_counter() - t:.2f} s, kind {stats.kind}, dense part r = "
          f"{stats.r}", flush=True)
    t = time.perf_counter()
    auto = mf.Model(INSTEVAL_FORMULA, df)
    print(f"likelihood='auto' picks {auto.likelihood} ({time.perf_counter() - t:.1f} s); "
          f"note: {auto.engine_note or '-'}", flush=True)

    models = {"auto": auto}
    for engine in [e for e in args.gradients.split(",") if e]:
        model = mf.Model(INSTEVAL_FORMULA, df, likelihood=engine)
        models[engine] = model
        t = time.perf_counter()
        model.pymc_model
        built = time.perf_counter() - t
        g = per_gradient(model)
        print(f"{engine}: build {built:.1f} s, {g * 1e3:.2f} ms per log-density + gradient",
              flush=True)

    if not args.skip_fit:
        if args.parametrization != "auto":
            param = args.parametrization
            if "=" in param:
                param = dict(kv.split("=") for kv in param.split(","))
            model = mf.Model(INSTEVAL_FORMULA, df, likelihood=args.fit, parametrization=param)
        else:
            model = models.get(args.fit) or (auto if args.fit == "auto" else
                                             mf.Model(INSTEVAL_FORMULA, df, likelihood=args.fit))
        if args.low_rank:
            import functools
            import nutpie
            nutpie.sample = functools.partial(nutpie.sample, low_rank_modified_mass_matrix=True)
        print(f"fitting with the {model.likelihood} engine, {args.chains} chains x "
              f"({args.tune} + {args.draws}), parametrization {model.parametrization_choice()}"
              f"{', low-rank mass matrix' if args.low_rank else ''}, load average "
              f"{os.getloadavg()}", flush=True)
        r = bayes_fit(model, args.draws, args.tune, args.chains, args.seed)
        s = r["sampling_s"] or r["total_s"]
        print(f"Bayesian ({model.likelihood}): total {r['total_s']:.0f} s "
              f"({r['total_s'] / 60:.1f} min), sampling {s:.0f} s, "
              f"{r['steps_per_draw']:.1f} leapfrog steps/draw, min bulk ESS "
              f"{r['min_bulk_ess']:.0f} ({r['min_bulk_ess'] / s:.2f}/s of sampling), "
              f"max Rhat {r['max_rhat']:.4f} (every variable; {r['worst_rhat']}), "
              f"{r['max_rhat_reported']:.4f} (b_, sd_, sigma), {r['cpu_s']:.0f} CPU s "
              f"(all threads), load average {os.getloadavg()}; bulk ESS {r['ess']}", flush=True)
        print(r["fit"].summary(), flush=True)


if __name__ == "__main__":
    main()
