"""Centred vs non-centred group effects on the GLMMs of lme4's and brms' documentation.

For each model, fits with ``parametrization="centred"``, ``"noncentred"`` and ``"auto"`` (which
picks per grouping factor, :func:`mixedformula.backends.pymc.build.choose_parametrization`) and
prints the per-factor information statistic the rule reads, max Rhat, min bulk / tail ESS, the
bulk ESS of every ``sd_`` parameter, divergences and seconds.  Data: tests/data (exported from
R by tests/data/r/glmm_datasets.R).

    python benchmarks/parametrization_glmm.py [--draws 1000] [--tune 1000] [--chains 4]
"""

from __future__ import annotations

import argparse
import pathlib
import warnings

import arviz as az
import numpy as np
import pandas as pd

import mixedformula as mf

DATA = pathlib.Path(__file__).resolve().parents[1] / "tests" / "data"


def models():
    gt = pd.read_csv(DATA / "grouseticks.csv", dtype={"BROOD": str, "YEAR": str,
                                                       "LOCATION": str})
    cbpp = pd.read_csv(DATA / "cbpp.csv", dtype={"herd": str, "period": str})
    ep = pd.read_csv(DATA / "epilepsy.csv", dtype={"patient": str})
    return {
        "grouseticks": ("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", gt,
                        "poisson"),
        "cbpp": ("incidence | trials(size) ~ period + (1 | herd)", cbpp, "binomial"),
        "epilepsy": ("count ~ zAge + zBase * Trt + (1 | patient)", ep, "poisson"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--params", default="centred,noncentred,auto")
    opts = ap.parse_args()
    from mixedformula.backends.pymc.build import choose_parametrization
    for name, (formula, data, family) in models().items():
        if opts.only and name not in opts.only.split(","):
            continue
        for param in opts.params.split(","):
            model = mf.Model(formula, data, family=family, parametrization=param)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = model.fit(draws=opts.draws, tune=opts.tune, chains=opts.chains,
                                seed=opts.seed, progressbar=False, backend=opts.backend)
            built = model.built
            why = choose_parametrization(model.design, model.family, built.blocks, "auto")
            post = fit.idata.posterior
            scalars = [v for v in post.data_vars if post[v].ndim == 2]
            rhat = az.rhat(post[scalars])
            bulk = az.ess(post[scalars], method="bulk")
            tail = az.ess(post[scalars], method="tail")
            div = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
            sds = {v: round(float(bulk[v])) for v in scalars if v.startswith("sd_")}
            print(f"{name:12s} {param:10s} chosen={model.parametrization_choice()} "
                  f"max Rhat {max(float(rhat[v]) for v in scalars):.3f} "
                  f"min bulk ESS {min(float(bulk[v]) for v in scalars):.0f} "
                  f"min tail ESS {min(float(tail[v]) for v in scalars):.0f} "
                  f"sd bulk ESS {sds} divergences {div} "
                  f"{fit.info['seconds']:.0f} s ({fit.info['backend']})", flush=True)
            if param == opts.params.split(",")[0]:
                print(f"    auto rule: { {k: v for k, v in why.items()} }", flush=True)


if __name__ == "__main__":
    main()
