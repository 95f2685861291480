"""mixedformula's compiled log-density + gradient against the hand-written PyMC model's.

    PYTHONPATH=. python benchmarks/graph_cost.py dpar offset 7 8 [--calls 3000] [--profile]
        [--mf-opt auto|1|3] [--ops]

For each case of ``benchmarks/cases.py`` compiles, as each sampler compiles it,

* mixedformula's model: nutpie's ``_make_functions`` in NUMBA mode with the prior-check rewrite
  (``sampling._compile_functions``), under the numba optimisation level the sampler picks
  (``--mf-opt auto``) or the one given (the level only applies to what is compiled: point
  ``PYTENSOR_FLAGS=base_compiledir=...`` at an empty directory and set
  ``MIXEDFORMULA_COMPILE_CACHE=0``, or the cached code of whichever level compiled first loads);
* the hand-written model of ``benchmarks/worker.py::hand_model``: the same functions in plain
  NUMBA mode at numba's default level 3 (what ``nutpie.compile_pymc_model`` builds),

and prints the number of apply nodes of each rewritten logp+dlogp graph and the process CPU
time per call of each model's C logp callback, called through ctypes as nutpie's Rust sampler
calls it (mixedformula: ``sampling.compiled_model``, the trampoline of ``c_callbacks``; hand:
``nutpie.compile_pymc_model``'s cfunc); ``time.process_time`` over ``--calls`` calls at the
initial point for seed 1, after 50 warm-up calls; ctypes adds the same ~1 µs to both).
``--ops`` lists the op counts of both graphs (``--no-time``: only those and the profile); ``--profile`` adds PyTensor's C-backend profile (FAST_RUN, ``profile=True``,
300 calls) of both.
"""

from __future__ import annotations

import argparse
import collections
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
from worker import hand_model  # noqa: E402


def _models(case: str):
    c = CASES[case]
    df = c["data"]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = mf.Model(c["formula"], df, family=c["family"]).pymc_model
        hand, _ = hand_model(case, df)
    return ours, hand


def _callback(compiled):
    """(ctypes function, its arguments) calling ``compiled``'s C logp callback as nutpie's
    Rust sampler calls it, at the model's initial point for seed 1."""
    import ctypes
    x = np.ascontiguousarray(compiled.initial_point_func(1), dtype="float64")
    grad = np.zeros_like(x)
    logp = np.zeros(1)
    keep = (x, grad, logp, compiled.user_data)
    dbl = ctypes.POINTER(ctypes.c_double)
    args = (ctypes.c_uint64(len(x)), x.ctypes.data_as(dbl), grad.ctypes.data_as(dbl),
            logp.ctypes.data_as(dbl), ctypes.c_void_p(compiled.user_data.ctypes.data))
    fn = compiled.compiled_logp_func.ctypes
    rc = fn(*args)
    if rc != 0:
        raise RuntimeError(f"logp callback returned {rc}")
    return fn, args, keep


def _ours(model, opt):
    """mixedformula's compiled model as the sampler gets it (disk cache as it is), and the
    rewritten logp+dlogp graph's nodes (compiled again, not timed)."""
    from mixedformula.backends.pymc import sampling
    from mixedformula.backends.pymc.nutpie_shim import make_functions
    if opt == "auto":
        compiled = sampling.compiled_model(model, "numba")
    else:
        old = sampling._small_opt_level
        sampling._small_opt_level = lambda m: opt
        try:
            sampling.clear_cache()
            compiled = sampling.compiled_model(model, "numba")
        finally:
            sampling._small_opt_level = old
    with warnings.catch_warnings(), sampling._linking_flags():
        warnings.simplefilter("ignore")
        logp_fn = make_functions(model, mode=sampling._mode("numba"), compute_grad=True,
                                 join_expanded=False, pymc_initial_point_fn=lambda s: {})[2]
    return compiled, logp_fn.maker.fgraph.apply_nodes


def _hand(model):
    import nutpie
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = nutpie.compile_pymc_model(model)
    return compiled, compiled.logp_func.maker.fgraph.apply_nodes


def per_call(fn, args, calls):
    for _ in range(50):
        fn(*args)
    t = time.process_time()
    for _ in range(calls):
        fn(*args)
    return (time.process_time() - t) / calls * 1e6


def profile_c(model, label, rewrite):
    import pytensor
    import pytensor.tensor as pt
    from mixedformula.backends.pymc.prior_checks import with_rewrite
    logp = model.logp()
    grads = pt.grad(logp, model.value_vars)
    mode = with_rewrite("FAST_RUN") if rewrite else "FAST_RUN"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = pytensor.function(model.value_vars, [logp, *grads], mode=mode, profile=True,
                              on_unused_input="ignore")
    point = model.initial_point()
    vals = [point[v.name] for v in model.value_vars]
    for _ in range(300):
        f(*vals)
    print(f"--- C profile: {label} ({len(f.maker.fgraph.apply_nodes)} nodes)")
    f.profile.summary(n_ops_to_print=12, n_apply_to_print=15)


def _print_ops(label, nodes):
    cnt = collections.Counter(str(n.op) if "Composite" not in str(n.op) else "Composite"
                              for n in nodes)
    print(f"  {label} ({len(nodes)} nodes): "
          + ", ".join(f"{k} ×{v}" for k, v in cnt.most_common()), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", nargs="+")
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--mf-opt", default="auto")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--ops", action="store_true")
    ap.add_argument("--no-time", action="store_true", help="only --ops / --profile")
    a = ap.parse_args()
    from mixedformula.backends.pymc import sampling
    for case in a.cases:
        ours, hand = _models(case)
        if a.no_time:
            if a.ops:
                from mixedformula.backends.pymc.nutpie_shim import make_functions
                for label, m, mode in (("mf", ours, sampling._mode("numba")),
                                       ("hand", hand, "NUMBA")):
                    with warnings.catch_warnings(), sampling._linking_flags():
                        warnings.simplefilter("ignore")
                        fn = make_functions(m, mode=mode, compute_grad=True,
                                            join_expanded=False,
                                            pymc_initial_point_fn=lambda s: {})[2]
                    _print_ops(label, fn.maker.fgraph.apply_nodes)
            if a.profile:
                profile_c(ours, f"mf {case}", True)
                profile_c(hand, f"hand {case}", False)
            continue
        opt = "auto" if a.mf_opt == "auto" else None if a.mf_opt == "3" else int(a.mf_opt)
        c_m, nodes_m = _ours(ours, opt)
        c_h, nodes_h = _hand(hand)
        f_m, args_m, keep_m = _callback(c_m)
        f_h, args_h, keep_h = _callback(c_h)
        us_m = per_call(f_m, args_m, a.calls)
        us_h = per_call(f_h, args_h, a.calls)
        level = sampling._small_opt_level(ours) if opt == "auto" else opt
        print(f"{case}: mf {us_m:.1f} µs/call ({len(nodes_m)} nodes, numba opt "
              f"{3 if level is None else level}), hand {us_h:.1f} µs/call "
              f"({len(nodes_h)} nodes); mf/hand {us_m / us_h:.2f}; "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
        if a.ops:
            for label, nodes in (("mf", nodes_m), ("hand", nodes_h)):
                _print_ops(label, nodes)
        if a.profile:
            profile_c(ours, f"mf {case}", True)
            profile_c(hand, f"hand {case}", False)


if __name__ == "__main__":
    main()
