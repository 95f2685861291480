"""Case 3 (bernoulli y ~ x + (1 + x | g), 200 groups x 100 rows): centred vs non-centred group
effects in the hand-written PyMC model, sampled with nutpie. One variant per process::

    python benchmarks/param_case3.py nc|c [--lowrank] [--draws 1000 --tune 1000 --chains 4]

Prints one JSON line: sampling wall s, CPU s, mean leapfrog steps per draw, min bulk ESS over
Intercept/b/sd/cor and which element has it.
"""
import argparse
import json
import resource
import sys
import time
import os

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("variant", choices=["nc", "c", "cmv", "hc"])
    ap.add_argument("--lowrank", action="store_true")
    ap.add_argument("--bernoulli", action="store_true",
                    help="pm.Bernoulli(logit_p=) instead of the lean y*eta - softplus(eta)")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--seed", type=int, default=20240607)
    a = ap.parse_args()
    import arviz as az
    import nutpie
    import pymc as pm
    import pytensor.tensor as pt
    from cases import bernoulli_slopes
    df = bernoulli_slopes()
    y = df["y"].to_numpy(float)
    x = df["x"].to_numpy(float)
    g = df["g"].cat.codes.to_numpy()
    J = int(g.max()) + 1
    with pm.Model() as m:
        icpt = pm.StudentT("Intercept", nu=3, mu=0.0, sigma=2.5)
        b = pm.Normal("b", 0.0, 25.0)
        chol, corr, sds = pm.LKJCholeskyCov(
            "chol", n=2, eta=1.0, sd_dist=pm.HalfStudentT.dist(nu=3, sigma=2.5, shape=2),
            compute_corr=True)
        pm.Deterministic("sd", sds)
        pm.Deterministic("cor", corr[0, 1])
        if a.variant == "nc":
            z = pm.Normal("z", 0.0, 1.0, shape=(J, 2))
            u = pt.dot(z, chol.T)
        elif a.variant == "cmv":          # centred, PyMC's MvNormal(chol=) (slow gradient)
            u = pm.MvNormal("u", mu=np.zeros(2), chol=chol, shape=(J, 2))
        elif a.variant == "c":   # centred, u_j ~ N(0, L Lᵀ), z = L⁻¹ u by elementwise forward substitution
            # (solve_triangular / dot with u as a free variable cost 8-16x per gradient)
            u = pm.Flat("u", shape=(J, 2))
            z0 = u[:, 0] / chol[0, 0]
            z1 = (u[:, 1] - chol[1, 0] * z0) / chol[1, 1]
            pm.Potential("u_prior", -0.5 * pt.sum(z0 ** 2 + z1 ** 2)
                         - J * (pt.log(chol[0, 0]) + pt.log(chol[1, 1])) - J * np.log(2 * np.pi))
        elif a.variant == "hc":   # hierarchically centred: v_j = (Intercept, b) + u_j sampled
            v = pm.Flat("v", shape=(J, 2))
            d0 = v[:, 0] - icpt
            d1 = v[:, 1] - b
            z0 = d0 / chol[0, 0]
            z1 = (d1 - chol[1, 0] * z0) / chol[1, 1]
            pm.Potential("u_prior", -0.5 * pt.sum(z0 ** 2 + z1 ** 2)
                         - J * (pt.log(chol[0, 0]) + pt.log(chol[1, 1])) - J * np.log(2 * np.pi))
            u = pt.stack([d0, d1], axis=1)
        if a.variant == "hc":
            eta = v[g, 0] + v[g, 1] * x
        else:
            eta = icpt + b * x + u[g, 0] + u[g, 1] * x
        if a.bernoulli:
            pm.Bernoulli("y", logit_p=eta, observed=y)
        else:   # the same density, the graph mixedformula uses (cheaper gradient)
            pm.Potential("y", pt.sum(y * eta - pt.softplus(eta)))
    t0 = time.time()
    compiled = nutpie.compile_pymc_model(m)
    t_compile = time.time() - t0
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.time()
    idata = nutpie.sample(compiled, draws=a.draws, tune=a.tune, chains=a.chains, seed=a.seed,
                          progress_bar=False, cores=a.cores,
                          low_rank_modified_mass_matrix=a.lowrank)
    t_sample = time.time() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
    post = idata.posterior
    ess = az.ess(post[["Intercept", "b", "sd", "cor"]], method="bulk")
    rows = []
    for v in ["Intercept", "b", "sd", "cor"]:
        arr = np.atleast_1d(np.asarray(ess[v]))
        for i, e in enumerate(arr):
            rows.append((float(e), f"{v}[{i}]" if arr.size > 1 else v))
    rows.sort()
    steps = float(np.mean(idata.sample_stats["n_steps"]))
    means = {v: np.asarray(post[v].mean(("chain", "draw"))).round(3).tolist()
             for v in ["Intercept", "b", "sd", "cor"]}
    out = dict(variant=a.variant, lowrank=a.lowrank, compile_s=round(t_compile, 1),
               sample_s=round(t_sample, 1), cpu_s=round(cpu, 1), steps=round(steps, 1),
               min_ess=round(rows[0][0]), min_at=rows[0][1],
               ess_per_s=round(rows[0][0] / t_sample, 1),
               ess_per_cpu_s=round(rows[0][0] / cpu, 1),
               ms_per_grad_cpu=round(1000 * cpu / (steps * a.chains * (a.draws + a.tune)), 3),
               divergences=int(idata.sample_stats["diverging"].sum()),
               all_ess={k: round(e) for e, k in rows}, means=means)
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
