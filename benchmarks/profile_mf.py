"""Where does the time of one ``mf.fit`` go?  ``python benchmarks/profile_mf.py CASE [--cprofile]``

Run in a fresh process; prints one ``PROFILE {...}`` JSON line with wall-clock phases:

* ``import_mf`` / ``import_pymc`` / ``import_nutpie`` – module imports;
* ``design``   – ``Model.__init__`` (parse + design matrices);
* ``build``    – building the ``pm.Model`` (``Model.built``);
* ``nutpie.shapes`` / ``nutpie.initial_point`` – small helper functions nutpie compiles;
* ``nutpie.compile_logp`` / ``nutpie.compile_expand`` – ``pymc.pytensorf.compile`` for
  logp+gradient and for the deterministics (pytensor rewrites + numba code generation; with a
  warm cache the numba parts are loaded from ``<base_compiledir>/numba``);
* ``nutpie.cfunc``   – numba compiling the C-callable wrappers (never cached by numba);
* ``sample``   – ``nutpie.sample`` (or ``pm.sample``);
* ``postprocess`` – brms renaming + ``Fit`` (``brms_posterior`` …);
* ``summary``  – ``fit.summary()`` and printing it.

``BACKEND=c|numba|auto`` picks nutpie's backend (default auto); ``compile_functions`` is
``sampling._compile_functions`` (logp+gradient and expand, either backend: PyTensor rewrites +
C or numba code, gcc / LLVM on a cold cache), ``callbacks`` the numba C callbacks around them
(``c_callbacks.callback_model``, numba backend only).

Cold vs warm cache: point ``PYTENSOR_FLAGS=base_compiledir=/tmp/some-empty-dir`` at an empty
directory for a cold run and run again for a warm one; ``numba__cache=False`` disables it.
"""

from __future__ import annotations

import json
import os
import sys
import time

T0 = time.time()
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

import warnings  # noqa: E402

warnings.filterwarnings("ignore")

PH: dict[str, float] = {}


def add(k, dt):
    PH[k] = PH.get(k, 0.0) + dt


def wrap(obj, name, key):
    fn = getattr(obj, name)

    def w(*a, **kw):
        t = time.time()
        try:
            return fn(*a, **kw)
        finally:
            add(key, time.time() - t)
    setattr(obj, name, w)


def main():
    case_id = sys.argv[1]
    use_cprofile = "--cprofile" in sys.argv
    draws = int(os.environ.get("DRAWS", 1000))
    chains = int(os.environ.get("CHAINS", 4))
    import pandas as pd
    from cases import CASES
    case = CASES[case_id]
    path = os.path.join(HERE, "results", "data", f"case{case_id}.pkl")
    df = pd.read_pickle(path) if os.path.exists(path) else case["data"]()
    t = time.time()
    import mixedformula as mf
    add("import_mf", time.time() - t)
    t = time.time()
    import pymc as pm
    import pymc.initial_point
    import pymc.pytensorf
    add("import_pymc", time.time() - t)
    t = time.time()
    import numba
    import nutpie
    import nutpie.compile_pymc as ncp
    add("import_nutpie", time.time() - t)

    # nutpie internals: compile_pymc is called twice (logp+grad first, then expand)
    calls = {"n": 0}
    orig_compile = pymc.pytensorf.compile

    def compile_timed(*a, **kw):
        t = time.time()
        try:
            return orig_compile(*a, **kw)
        finally:
            add("nutpie.compile_logp" if calls["n"] == 0 else "nutpie.compile_expand",
                time.time() - t)
            calls["n"] += 1
    pymc.pytensorf.compile = compile_timed
    wrap(ncp, "_compute_shapes", "nutpie.shapes")
    wrap(pymc.initial_point, "make_initial_point_fn", "nutpie.initial_point")
    orig_cfunc = numba.cfunc

    def cfunc_timed(*a, **kw):
        deco = orig_cfunc(*a, **kw)

        def apply(f):
            t = time.time()
            try:
                return deco(f)
            finally:
                add("nutpie.cfunc", time.time() - t)
        return apply
    numba.cfunc = cfunc_timed
    wrap(nutpie, "compile_pymc_model", "nutpie.compile_total")
    from mixedformula.backends.pymc import sampling
    wrap(sampling, "_compile_functions", "compile_functions")
    from mixedformula.backends.pymc import c_callbacks
    wrap(c_callbacks, "callback_model", "callbacks")
    wrap(nutpie, "sample", "sample")
    import mixedformula.backends.pymc.names as names
    wrap(names, "brms_posterior", "postprocess")

    t = time.time()
    model = mf.Model(case["formula"], df, family=case["family"])
    add("design", time.time() - t)
    t = time.time()
    model.built
    add("build", time.time() - t)
    prof = None
    if use_cprofile:
        import cProfile
        prof = cProfile.Profile()
        prof.enable()
    t = time.time()
    fit = model.fit(draws=draws, tune=draws, chains=chains, seed=1, progressbar=False,
                    backend=os.environ.get("BACKEND", "auto"))
    add("fit_total", time.time() - t)
    if prof:
        prof.disable()
    t = time.time()
    print(fit.summary())
    add("summary", time.time() - t)
    PH["end_to_end_in_process"] = time.time() - T0
    info = {"case": case_id, "likelihood": fit.likelihood, "sampler": fit.info.get("sampler"),
            "backend": fit.info.get("backend"),
            "compiledir": __import__("pytensor").config.base_compiledir,
            "numba_cache": bool(__import__("pytensor").config.numba__cache),
            "phases": {k: round(v, 3) for k, v in PH.items()}}
    if "sample_stats" in fit.idata.groups():
        ss = fit.idata.sample_stats
        for k in ("n_steps", "tree_size"):
            if k in ss:
                info["mean_leapfrog_steps"] = float(ss[k].mean())
        if "depth" in ss:
            info["mean_depth"] = float(ss["depth"].mean())
        elif "tree_depth" in ss:
            info["mean_depth"] = float(ss["tree_depth"].mean())
        if "diverging" in ss:
            info["divergences"] = int(ss["diverging"].sum())
    print("PROFILE " + json.dumps(info, default=str), flush=True)
    if prof:
        import pstats
        st = pstats.Stats(prof)
        st.sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
