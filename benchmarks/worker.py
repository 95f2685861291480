"""One benchmark run in a fresh process: ``python worker.py '<json args>'``.

Runs one (case, tool) pair and prints the summary a user would look at, then one line
``BENCHJSON {...}`` with the measurements. Tools:

* ``mf``      – ``mixedformula.fit(formula, data)`` with default settings (engine, sampler);
* ``mf_pymc`` – the same with ``sampler="pymc"`` (PyMC's NUTS on the C backend);
* ``mf_c`` / ``mf_numba`` – the same with nutpie's backend forced (``backend="c"|"numba"``);
* ``mf_noncentred`` / ``mf_centred`` – the same with ``parametrization=`` forced (the default
  ``"auto"`` picks per grouping factor);
* ``pymc``    – hand-written PyMC model (LKJCholeskyCov, non-centred, index gather), ``pm.sample``;
* ``nutpie``  – the same hand-written model compiled and sampled with nutpie (numba backend);
* ``bambi``   – bambi 0.17.2 (run with the bambi environment's python), default ``fit()``;
* ``formulae``– case 5 only: ``formulae.design_matrices`` (bambi's parser), bambi environment.

Timestamps are ``time.time()`` so that the parent can measure "process start → summary printed"
with its own clock. Only numpy/pandas/arviz/pymc (+ the tool) are imported here.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
import warnings

T_START = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

warnings.filterwarnings("ignore")


post_idata: dict = {}


class Timer:
    """Accumulating wall-clock timer per phase."""

    def __init__(self):
        self.t = {}

    def add(self, key, seconds):
        self.t[key] = self.t.get(key, 0.0) + seconds

    def wrap(self, obj, name, key):
        fn = getattr(obj, name)

        def wrapped(*a, **k):
            t0 = time.time()
            try:
                return fn(*a, **k)
            finally:
                self.add(key, time.time() - t0)
        setattr(obj, name, wrapped)


def sampler_stats(idata):
    """Mean leapfrog steps per draw and divergences (nutpie and PyMC name them differently)."""
    import numpy as np
    if idata is None or "sample_stats" not in idata.groups():
        return {}
    ss = idata.sample_stats
    out = {}
    for k in ("n_steps", "tree_size"):
        if k in ss:
            out["mean_leapfrog"] = round(float(np.mean(ss[k])), 1)
    if "diverging" in ss:
        out["divergences"] = int(np.sum(ss["diverging"]))
    return out


def reported_ess(posterior, names):
    """Minimum bulk ESS and maximum Rhat over all elements of the reported parameters."""
    import arviz as az
    import numpy as np
    sub = posterior[names]
    ess = az.ess(sub, method="bulk")
    rhat = az.rhat(sub)
    e, r = [], []
    for v in names:
        a = np.asarray(ess[v]).ravel()
        b = np.asarray(rhat[v]).ravel()
        # constant elements (e.g. the unit diagonal of a correlation matrix) give nan
        e += [x for x in a if np.isfinite(x)]
        r += [x for x in b if np.isfinite(x)]
    return float(min(e)), float(max(r))


# ----------------------------------------------------------------------------- mixedformula
def run_mf(case, df, a, timer, sampler="auto", backend="auto", parametrization="auto"):
    t0 = time.time()
    import mixedformula as mf
    import nutpie
    import pymc as pm
    from mixedformula.backends.pymc import sampling
    timer.add("import", time.time() - t0)
    timer.wrap(sampling, "compiled_model", "compile")
    timer.wrap(nutpie, "sample", "sample")
    timer.wrap(pm, "sample", "pm_sample")
    t0 = time.time()
    fit = mf.fit(case["formula"], df, family=case["family"], draws=a["draws"], tune=a["tune"],
                 chains=a["chains"], seed=a["seed"], progressbar=False, sampler=sampler,
                 backend=backend, parametrization=parametrization)
    timer.add("fit_total", time.time() - t0)
    t0 = time.time()
    print(fit.summary())
    t_printed = time.time()
    timer.add("summary", t_printed - t0)
    post_idata["idata"] = fit.idata
    post = fit.idata.posterior
    names = [v for v in post.data_vars
             if v.startswith(("b_", "sd_", "cor_", "sigma", "rescor__"))]
    info = dict(fit.info)
    extra = {"likelihood": getattr(fit, "likelihood", info.get("likelihood")),
             "sampler": info.get("sampler"), "backend": info.get("backend"),
             "engine_note": info.get("engine_note", ""),
             "parametrization": info.get("parametrization")}
    if "sample" not in timer.t:   # pm.sample: sampling time reported by PyMC itself
        st = fit.idata.sample_stats.attrs.get("sampling_time") if "sample_stats" in \
            fit.idata.groups() else None
        timer.t["sample"] = float(st) if st is not None else timer.t.get("pm_sample", 0.0)
    return post, names, t_printed, extra


# ----------------------------------------------------------------------------- hand-written PyMC
def hand_model(case_id, df):
    """The model a careful PyMC user writes: brms-like priors, LKJCholeskyCov, non-centred,
    group effects gathered by integer codes (no dense Z). Predictors are used as given."""
    import numpy as np
    import pymc as pm
    import pytensor.tensor as pt

    def sdprior(scale, n):
        return pm.HalfStudentT.dist(nu=3, sigma=scale, shape=n)

    with pm.Model() as m:
        if case_id in ("1", "2a", "2b", "2c", "3"):
            if case_id == "1":
                y = df["Reaction"].to_numpy(float)
                X = df[["Days"]].to_numpy(float)
                g = df["Subject"].cat.codes.to_numpy()
                x = X[:, 0]
            elif case_id == "3":
                y = df["y"].to_numpy(float)
                X = df[["x"]].to_numpy(float)
                g = df["g"].cat.codes.to_numpy()
                x = X[:, 0]
            else:
                y = df["y"].to_numpy(float)
                X = df[["x1", "x2"]].to_numpy(float)
                g = df["g"].cat.codes.to_numpy()
                x = X[:, 0]
            J = int(g.max()) + 1
            bern = case_id == "3"
            scale = 2.5 if bern else max(2.5, 1.4826 * float(np.median(np.abs(y - np.median(y)))))
            icpt = pm.StudentT("Intercept", nu=3, mu=0.0 if bern else float(np.median(y)),
                               sigma=scale)
            b = pm.Normal("b", 0.0, 10.0 * scale, shape=X.shape[1])
            chol, corr, sds = pm.LKJCholeskyCov("chol", n=2, eta=1.0, sd_dist=sdprior(scale, 2),
                                                compute_corr=True)
            pm.Deterministic("sd", sds)
            pm.Deterministic("cor", corr[0, 1])
            z = pm.Normal("z", 0.0, 1.0, shape=(J, 2))
            u = pt.dot(z, chol.T)
            eta = icpt + pt.dot(X, b) + u[g, 0] + u[g, 1] * x
            if bern:
                pm.Bernoulli("y", logit_p=eta, observed=y)
            else:
                sigma = pm.HalfStudentT("sigma", nu=3, sigma=scale)
                pm.Normal("y", eta, sigma, observed=y)
            names = ["Intercept", "b", "sd", "cor"] + ([] if bern else ["sigma"])
        elif case_id == "4":
            y = df["y"].to_numpy(float)
            x = df["x"].to_numpy(float)
            a = df["a"].cat.codes.to_numpy()
            bb = df["b"].cat.codes.to_numpy()
            scale = max(2.5, 1.4826 * float(np.median(np.abs(y - np.median(y)))))
            icpt = pm.StudentT("Intercept", nu=3, mu=float(np.median(y)), sigma=scale)
            b = pm.Normal("b", 0.0, 10.0 * scale)
            sd = pm.HalfStudentT("sd", nu=3, sigma=scale, shape=2)
            za = pm.Normal("z_a", 0.0, 1.0, shape=int(a.max()) + 1)
            zb = pm.Normal("z_b", 0.0, 1.0, shape=int(bb.max()) + 1)
            sigma = pm.HalfStudentT("sigma", nu=3, sigma=scale)
            eta = icpt + b * x + sd[0] * za[a] + sd[1] * zb[bb]
            pm.Normal("y", eta, sigma, observed=y)
            names = ["Intercept", "b", "sd", "sigma"]
        elif case_id == "6":
            Y = df[["m1", "m2"]].to_numpy(float)
            X = df[["p1", "p2", "p3"]].to_numpy(float)
            g = df["g"].cat.codes.to_numpy()
            J = int(g.max()) + 1
            p1 = X[:, 0]
            scale = max(2.5, 1.4826 * float(np.median(np.abs(Y - np.median(Y, 0)))))
            icpt = pm.StudentT("Intercept", nu=3, mu=np.median(Y, 0), sigma=scale, shape=2)
            b = pm.Normal("b", 0.0, 10.0 * scale, shape=(3, 2))
            chol, corr, sds = pm.LKJCholeskyCov("chol", n=4, eta=1.0, sd_dist=sdprior(scale, 4),
                                                compute_corr=True)
            pm.Deterministic("sd", sds)
            iu = np.triu_indices(4, 1)
            pm.Deterministic("cor", corr[iu])
            z = pm.Normal("z", 0.0, 1.0, shape=(J, 4))
            u = pt.dot(z, chol.T)                       # columns m1_Int, m1_p1, m2_Int, m2_p1
            mu = icpt + pt.dot(X, b) + pt.stack([u[g, 0] + u[g, 1] * p1,
                                                 u[g, 2] + u[g, 3] * p1], axis=1)
            cholR, corrR, sdR = pm.LKJCholeskyCov("cholR", n=2, eta=1.0,
                                                  sd_dist=sdprior(scale, 2), compute_corr=True)
            pm.Deterministic("sigma", sdR)
            pm.Deterministic("rescor", corrR[0, 1])
            pm.MvNormal("y", mu=mu, chol=cholR, observed=Y)
            names = ["Intercept", "b", "sd", "cor", "sigma", "rescor"]
        elif case_id in ("7", "8"):
            # cumulative logit with ordered cutpoints (brms' student_t(3, 0, 2.5) on them) /
            # zero-inflated Poisson (zi ~ beta(1, 1)); (1 + x | g) correlated, non-centred
            x = df["x"].to_numpy(float)
            g = df["g"].cat.codes.to_numpy()
            J = int(g.max()) + 1
            b = pm.Normal("b", 0.0, 10.0)
            chol, corr, sds = pm.LKJCholeskyCov("chol", n=2, eta=1.0, sd_dist=sdprior(2.5, 2),
                                                compute_corr=True)
            pm.Deterministic("sd", sds)
            pm.Deterministic("cor", corr[0, 1])
            z = pm.Normal("z", 0.0, 1.0, shape=(J, 2))
            u = pt.dot(z, chol.T)
            if case_id == "7":
                y = df["y"].cat.codes.to_numpy()
                xc = x - x.mean()
                eta = b * xc + u[g, 0] + u[g, 1] * x
                cut = pm.StudentT("Intercept", nu=3, mu=0.0, sigma=2.5, shape=3,
                                  transform=pm.distributions.transforms.ordered,
                                  initval=np.array([-1.0, 0.0, 1.0]))
                pm.OrderedLogistic("y", eta=eta, cutpoints=cut, observed=y)
                names = ["Intercept", "b", "sd", "cor"]
            else:
                y = df["y"].to_numpy(float)
                icpt = pm.StudentT("Intercept", nu=3, mu=0.0, sigma=2.5)
                zi = pm.Beta("zi", 1.0, 1.0)
                eta = icpt + b * (x - x.mean()) + u[g, 0] + u[g, 1] * x
                pm.ZeroInflatedPoisson("y", psi=1 - zi, mu=pt.exp(eta), observed=y)
                names = ["Intercept", "b", "sd", "cor", "zi"]
        elif case_id == "dpar":
            # bf(y ~ x + (1 | g), sigma ~ x + (1 | g)): log σ_i linear in x and a group effect
            y = df["y"].to_numpy(float)
            x = df["x"].to_numpy(float)
            g = df["g"].cat.codes.to_numpy()
            J = int(g.max()) + 1
            scale = max(2.5, 1.4826 * float(np.median(np.abs(y - np.median(y)))))
            icpt = pm.StudentT("Intercept", nu=3, mu=float(np.median(y)), sigma=scale)
            b = pm.Normal("b", 0.0, 10.0 * scale)
            icpt_s = pm.StudentT("Intercept_sigma", nu=3, mu=0.0, sigma=2.5)
            b_s = pm.Normal("b_sigma", 0.0, 10.0)
            sd = pm.HalfStudentT("sd", nu=3, sigma=scale)
            sd_s = pm.HalfStudentT("sd_sigma", nu=3, sigma=2.5)
            z = pm.Normal("z", 0.0, 1.0, shape=J)
            z_s = pm.Normal("z_sigma", 0.0, 1.0, shape=J)
            mu = icpt + b * x + sd * z[g]
            sigma = pt.exp(icpt_s + b_s * x + sd_s * z_s[g])
            pm.Normal("y", mu, sigma, observed=y)
            names = ["Intercept", "b", "Intercept_sigma", "b_sigma", "sd", "sd_sigma"]
        elif case_id == "offset":
            y = df["y"].to_numpy(float)
            x = df["x"].to_numpy(float)
            logt = np.log(df["t"].to_numpy(float))
            g = df["g"].cat.codes.to_numpy()
            # 100 rows per group with mean counts ~4: the data pin each group's level down, so
            # a competent PyMC user writes the textbook centred hierarchy, a_g ~ N(Intercept,
            # sd) (the non-centred form did not converge here: ESS 4, Rhat 1.58 at 300 + 300;
            # u_g ~ N(0, sd) next to a free Intercept mixes badly too: ESS 43 at 2 x 1000,
            # the Intercept and every u_g trading off along one narrow direction)
            icpt = pm.StudentT("Intercept", nu=3, mu=0.0, sigma=2.5)
            b = pm.Normal("b", 0.0, 5.0)
            sd = pm.HalfStudentT("sd", nu=3, sigma=2.5)
            a = pm.Normal("a", icpt, sd, shape=int(g.max()) + 1)
            pm.Poisson("y", pt.exp(a[g] + b * (x - x.mean()) + logt), observed=y)
            names = ["Intercept", "b", "sd"]
        else:
            raise ValueError(case_id)
    return m, names


def run_hand(case_id, df, a, timer, use_nutpie):
    t0 = time.time()
    import arviz as az
    import pymc as pm
    if use_nutpie:
        import nutpie
    timer.add("import", time.time() - t0)
    t0 = time.time()
    model, names = hand_model(case_id, df)
    timer.add("build", time.time() - t0)
    if use_nutpie:
        t0 = time.time()
        compiled = nutpie.compile_pymc_model(model)
        timer.add("compile", time.time() - t0)
        t0 = time.time()
        idata = nutpie.sample(compiled, draws=a["draws"], tune=a["tune"], chains=a["chains"],
                              seed=a["seed"], progress_bar=False, cores=a["cores"])
        timer.add("sample", time.time() - t0)
    else:
        t0 = time.time()
        with model:
            idata = pm.sample(draws=a["draws"], tune=a["tune"], chains=a["chains"],
                              cores=a["cores"], random_seed=a["seed"], progressbar=False,
                              compute_convergence_checks=False)
        total = time.time() - t0
        st = float(idata.sample_stats.attrs.get("sampling_time", total))
        timer.add("sample", st)
        timer.add("compile", total - st)
    t0 = time.time()
    print(az.summary(idata, var_names=names))
    t_printed = time.time()
    timer.add("summary", t_printed - t0)
    post_idata["idata"] = idata
    return idata.posterior, names, t_printed, {"sampler": "nutpie" if use_nutpie else "pymc"}


# ----------------------------------------------------------------------------- bambi
def run_bambi(case, df, a, timer):
    t0 = time.time()
    import arviz as az
    import bambi as bmb
    import pymc as pm
    timer.add("import", time.time() - t0)
    timer.wrap(pm, "sample", "pm_sample")
    t0 = time.time()
    formula = case["bambi"]
    if isinstance(formula, tuple):      # distributional: bmb.Formula("y ~ ...", "sigma ~ ...")
        formula = bmb.Formula(*formula)
    model = bmb.Model(formula, df, family=case["family"])
    timer.add("build", time.time() - t0)
    t0 = time.time()
    idata = model.fit(draws=a["draws"], tune=a["tune"], chains=a["chains"], cores=a["cores"],
                      random_seed=a["seed"], progressbar=False)
    timer.add("fit_total", time.time() - t0)
    post = idata.posterior
    names = []
    for v in post.data_vars:
        size = int(post[v].size // (post.sizes["chain"] * post.sizes["draw"]))
        if ("|" not in v or v.endswith("_sigma")) and size <= 20:
            names.append(v)
    t0 = time.time()
    print(az.summary(idata, var_names=names))
    t_printed = time.time()
    timer.add("summary", t_printed - t0)
    post_idata["idata"] = idata
    st = idata.sample_stats.attrs.get("sampling_time")
    timer.t["sample"] = float(st) if st is not None else timer.t.get("pm_sample", 0.0)
    return post, names, t_printed, {"sampler": "pymc (bambi default)",
                                    "note": "bambi group effects are uncorrelated (|| model)"}


# ----------------------------------------------------------------------------- design only
def run_design(case, df, tool, timer):
    t0 = time.time()
    if tool == "mf":
        import mixedformula as mf
        timer.add("import", time.time() - t0)
        t0 = time.time()
        d = mf.design_matrices(case["formula"], df)
        timer.add("design", time.time() - t0)
        shape = {"X": list(d.X.shape), "terms": [[int(t.J), list(t.coef_names)] for t in d.terms]}
        # also the sparse Z a user would ask for, separately timed
        t0 = time.time()
        Z = d.terms[0].Z()
        timer.add("design_Z", time.time() - t0)
        shape["Z"] = list(Z.shape)
    else:
        import formulae
        timer.add("import", time.time() - t0)
        t0 = time.time()
        dm = formulae.design_matrices(case["formula"], df)
        timer.add("design", time.time() - t0)
        shape = {"X": list(dm.common.design_matrix.shape),
                 "Z": list(dm.group.design_matrix.shape),
                 "Z_type": type(dm.group.design_matrix).__name__}
    t_printed = time.time()
    print(shape)
    return t_printed, shape


def main():
    a = json.loads(sys.argv[1])
    timer = Timer()
    import pandas as pd
    from cases import CASES
    case = CASES[a["case"]]
    t0 = time.time()
    df = pd.read_pickle(a["data"])
    timer.add("load_data", time.time() - t0)
    out = {"case": a["case"], "tool": a["tool"], "t_start": T_START}
    tool = a["tool"]
    if case["kind"] == "design":
        t_printed, shape = run_design(case, df, tool, timer)
        out.update(t_printed=t_printed, shape=shape)
    else:
        if tool == "mf":
            post, names, t_printed, extra = run_mf(case, df, a, timer)
        elif tool == "mf_pymc":      # mixedformula with sampler="pymc" (PyMC NUTS, C backend)
            post, names, t_printed, extra = run_mf(case, df, a, timer, sampler="pymc")
        elif tool in ("mf_c", "mf_numba"):
            post, names, t_printed, extra = run_mf(case, df, a, timer, backend=tool[3:])
        elif tool in ("mf_noncentred", "mf_centred"):
            post, names, t_printed, extra = run_mf(case, df, a, timer,
                                                   parametrization=tool[3:])
        elif tool in ("pymc", "nutpie"):
            post, names, t_printed, extra = run_hand(a["case"], df, a, timer, tool == "nutpie")
        elif tool == "bambi":
            post, names, t_printed, extra = run_bambi(case, df, a, timer)
        else:
            raise ValueError(tool)
        ess, rhat = reported_ess(post, names)
        out.update(sampler_stats(post_idata.get("idata")))
        out.update(t_printed=t_printed, min_ess_bulk=ess, max_rhat=rhat, params=names, **extra)
    out["phases"] = {k: round(v, 3) for k, v in timer.t.items()}
    # CPU seconds of the whole run (all threads; PyMC's chain processes as children)
    cpu = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    out["cpu_s"] = round(sum(r.ru_utime + r.ru_stime for r in cpu), 2)
    ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out["maxrss_self_mb"] = ru_self / 1024
    out["maxrss_children_mb"] = ru_kids / 1024
    sys.stdout.flush()
    print("BENCHJSON " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
