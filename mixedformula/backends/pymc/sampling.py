"""MCMC for a built ``pm.Model``: nutpie's Rust NUTS on a compiled log-density, or ``pm.sample``.

nutpie needs  x ↦ (log p(x), ∇ log p(x))  on the flat unconstrained vector x, and the
"expand" map  x ↦ every traced variable (transforms undone, deterministics).  Two ways to
compile them, both from nutpie's own ``_make_functions`` (same graph, same rewrites):

* ``"numba"`` — ``nutpie.compile_pymc_model``: the graph is compiled to numba and wrapped in a
  C callback.  Fastest per evaluation, but numba types the whole generated function every time
  (the callbacks close over dynamic globals, so numba never caches them): 10–70 s per fit
  on this project's 2-core machine even with a warm cache (benchmarks/README.md).
* ``"c"`` — PyTensor's C backend (``mode="FAST_RUN"``), called from nutpie through
  ``nutpie.compiled_pyfunc.from_pyfunc``.  Compiled C ops are cached on disk per op, so a
  warm compile is a few seconds; each evaluation costs ~0.1–0.3 ms of Python/VM overhead.

``backend="auto"`` picks by expected cost: the C backend when the per-evaluation cost summed
over the run (chains · (draws + tune) · leapfrog steps · cost per evaluation) stays below the
numba compile time it saves (see :func:`choose_backend`): sleepstudy and every short fit
(tests, quick looks) take the C backend; long fits of big conditional models (case 3:
20 000 bernoulli rows, 5–7 ms per evaluation in C vs 0.6 ms in numba) take numba.

Compiled models are kept in an in-process cache keyed by the *structure* of the graph (every
op, every constant's bytes, every shared variable's name, dtype and shape).  A second fit of
the same structure — other data of the same shapes held in shared variables, another seed,
other draws — skips compilation: the cached model is re-pointed at the new shared values
(nutpie's ``with_data``) and the new model's coordinates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import warnings
from collections import OrderedDict

import numpy as np

BACKENDS = ("auto", "c", "numba")

# Cost model of the C backend, fitted to per-evaluation times measured on this project's 2-core
# machine (benchmarks/README.md, "Choosing the backend"): ~0.25 ms of VM overhead per
# log-density + gradient, plus 0.25 ms per 1000 units of size (rows, or J·q² for the
# univariate marginal engine).  Chains share the GIL on this path, so evaluations add up.
C_SECONDS_PER_EVAL = 2.5e-4
C_SIZE_UNIT = 1000
# Leapfrog steps per draw seen in the benchmarks: marginal 4–8, conditional ~15.
STEPS_PER_DRAW = {"marginal": 8, "conditional": 16}
# Take the C backend while its predicted sampling time stays below a typical numba compile
# (10–70 s measured, warm to cold disk cache), so it wins end to end.
C_BACKEND_MAX_SECONDS = 30.0
CACHE_SIZE = 16

_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_STATS = {"compiled": 0, "reused": 0}


def evaluation_size(design, likelihood: str) -> int:
    """What one log-density evaluation scales with: Σ_terms J·q² for the univariate marginal
    engine (its cost does not depend on N), rows × responses otherwise."""
    if likelihood == "marginal" and design.y.shape[1] == 1:
        return int(sum(len(b.levels) * len(b.coef_names) ** 2 for b in design.terms))
    return int(design.nobs * design.y.shape[1])


def choose_backend(backend: str, likelihood: str, size: int, draws: int, tune: int,
                   chains: int) -> str:
    """``"c"`` or ``"numba"`` for nutpie.  ``"auto"``: the C backend when its predicted
    sampling time, evaluations × (0.25 ms + 0.25 ms · size/1000) with evaluations =
    chains · (draws + tune) · steps per draw, is below ~30 s (a typical numba compile)."""
    if backend not in BACKENDS:
        from ...errors import MixedFormulaError
        raise MixedFormulaError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "auto":
        return backend
    evals = chains * (draws + tune) * STEPS_PER_DRAW.get(likelihood, 16)
    seconds = evals * C_SECONDS_PER_EVAL * (1 + size / C_SIZE_UNIT)
    return "c" if seconds <= C_BACKEND_MAX_SECONDS else "numba"


def sample(model, sampler, draws, tune, chains, seed, progressbar, cores, target_accept,
           backend: str = "c"):
    """Sample with one BLAS thread per chain: the models are small-matrix work, and threaded
    OpenBLAS made a 2×2 triangular solve cost 10 ms per call here (0.005 ms with one thread)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        if sampler == "nutpie":
            return sample_nutpie(model, draws, tune, chains, seed, progressbar, cores,
                                 target_accept, backend)
        import pymc as pm
        with model:
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                             progressbar=progressbar, cores=cores,
                             compute_convergence_checks=False,
                             target_accept=target_accept or 0.8)


def sample_nutpie(model, draws, tune, chains, seed, progressbar, cores, target_accept,
                  backend="c"):
    import nutpie
    compiled = compiled_model(model, backend)
    kw = {} if target_accept is None else {"target_accept": target_accept}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                             progress_bar=progressbar, cores=cores, save_warmup=False, **kw)


# -- compiled-model cache -----------------------------------------------------------------------
def compiled_model(model, backend: str = "c"):
    """nutpie's compiled model for ``model``, from the in-process cache when the structure
    matches (then re-pointed at this model's shared data and coordinates)."""
    key, shared = structure_key(model)
    key = (backend, key)
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
    if hit is not None:
        CACHE_STATS["reused"] += 1
        return _rebind(*hit, model, shared)
    CACHE_STATS["compiled"] += 1
    compiled, shape_info = _compile_c(model) if backend == "c" else _compile_numba(model)
    with _CACHE_LOCK:
        _CACHE[key] = (compiled, shape_info)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


def clear_cache() -> None:
    """Forget every compiled model (they hold compiled functions and their graphs)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def cache_size() -> int:
    return len(_CACHE)


def structure_key(model) -> tuple[str, dict]:
    """A digest of everything the compiled functions depend on, and the shared data values.

    Walks the graphs nutpie compiles (joint log-density, every free and deterministic
    variable) in topological order.  Each node contributes its op (ops compare by their
    properties; ops without properties hash by identity and so never match another model's)
    and the positions of its inputs; each constant its type, shape and bytes; each named
    shared array its name, type and shape — its *value* is data, swapped in by ``with_data``.
    Shared scalars (PyMC's dimension lengths) and unnamed or duplicated shared variables are
    hashed by value, like constants; random generators are ignored (seeds come from nutpie).
    """
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs, io_toposort

    outputs = [model.logp(), *model.free_RVs, *model.deterministics]
    inputs = list(graph_inputs(outputs))
    names = [v.name for v in inputs if isinstance(v, SharedVariable)]
    digest = hashlib.sha1()
    ids: dict = {}
    shared: dict = {}

    def token(v):
        if v in ids:
            return ids[v]
        if isinstance(v, Constant):
            t = ("const", str(v.type), _value_digest(v.data))
        elif isinstance(v, SharedVariable):
            val = v.get_value(borrow=True)
            if (isinstance(val, np.ndarray) and val.ndim > 0 and v.name
                    and names.count(v.name) == 1):
                t = ("shared", v.name, str(v.type), val.shape)
                shared[v.name] = val
            else:
                t = ("shared-value", v.name, str(v.type), _value_digest(val))
        else:
            t = ("input", v.name, str(v.type))
        ids[v] = t
        return t

    for node in io_toposort(inputs, outputs):
        ins = tuple(token(i) if i.owner is None else ids[i] for i in node.inputs)
        digest.update(repr((type(node.op).__name__, hash(node.op), str(node.op), ins)).encode())
        for o in node.outputs:
            ids[o] = ("out", len(ids))
    digest.update(repr([ids.get(o) or token(o) for o in outputs]).encode())
    return digest.hexdigest(), shared


def _value_digest(value) -> tuple:
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.shape, str(value.dtype), hashlib.sha1(
            np.ascontiguousarray(value).tobytes()).hexdigest()
    if isinstance(value, (int, float, bool, str, np.generic)):
        return (repr(value),)
    if isinstance(value, np.random.Generator):
        return ("rng",)             # the RVs' generators: not read by logp, expand or the init
    return ("object", id(value))    # anything else: never equal across models


def _rebind(compiled, shape_info, model, shared: dict):
    """The cached compiled model with this model's shared values and coordinates.  The
    initial-point function is rebuilt only when the priors read shared data (then the old
    one would start from the old data's support points)."""
    from nutpie.compile_pymc import _prepare_dims_and_coords
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    c_backend = hasattr(compiled, "_shared_data")
    known = compiled._shared_data if c_backend else compiled.shared_data
    out = compiled.with_data(**{k: v for k, v in shared.items() if k in known})
    _, coords = _prepare_dims_and_coords(model, shape_info)
    changes = {"_coords": coords}
    if any(isinstance(v, SharedVariable) and v.name in shared
           for v in graph_inputs(model.free_RVs)):
        changes["_make_initial_points" if c_backend else "initial_point_func"] = \
            _flat_initial_point_fn(model, shape_info)
    return dataclasses.replace(out, **changes)


# -- the two backends ---------------------------------------------------------------------------
def _initial_point_fn(model):
    """nutpie's default: support points jittered by U(-1, 1), behind a lock (the function is
    a PyTensor function, not thread-safe, and nutpie calls it from each chain's thread)."""
    from nutpie.compile_pymc import _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn
    return _wrap_with_lock(make_initial_point_fn(model=model, jitter_rvs=set(model.free_RVs),
                                                 return_transformed=True))


def _flat_initial_point_fn(model, shape_info):
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper
    names, _, shapes = shape_info
    n_free = len(model.free_RVs)
    return _rv_dict_to_flat_array_wrapper(_initial_point_fn(model), names=names[:n_free],
                                          shapes=shapes[:n_free])


def _compile_numba(model):
    import nutpie
    import pytensor
    # Reproducibility: with numba's fastmath, code loaded from pytensor's numba cache and
    # freshly compiled code round differently (draws differ at 1e-8 across processes, see
    # docs/reliability.md); without it the same seed gives the same draws bit for bit.
    with warnings.catch_warnings(), pytensor.config.change_flags(numba__fastmath=False):
        warnings.simplefilter("ignore", UserWarning)
        compiled = nutpie.compile_pymc_model(model)
    return compiled, compiled.shape_info


@dataclasses.dataclass(frozen=True)
class _CFunctions:
    """The compiled PyTensor functions of one model; each chain runs its own copy."""
    logp: object
    expand: object
    names: list
    shapes: list
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def _copy(self, fn):
        # Function.copy gives a chain its own storage; the VM reuses buffers between calls,
        # so two threads must never run one Function.
        with self.lock:
            f = fn.copy()
        f.trust_input = True
        slots = {inp.variable.name: cell for inp, cell in zip(f.maker.inputs, f.input_storage)
                 if getattr(inp, "implicit", False) and inp.variable.name}
        return f, slots

    def make_logp(self):
        f, slots = self._copy(self.logp)
        vm, x_cell = f.vm, f.input_storage[0]
        out_logp, out_grad = f.output_storage
        bound = [False]

        def logp(x, **shared):
            if not bound[0]:
                _bind(slots, shared)
                bound[0] = True
            x_cell.storage[0] = x
            vm()     # the VM directly: Function.__call__ adds ~10 µs of checks per call
            return float(out_logp.storage[0]), out_grad.storage[0]
        return logp

    def make_expand(self, seed1, seed2, chain):
        f, slots = self._copy(self.expand)
        names, shapes = self.names, self.shapes
        bound = [False]

        def expand(x, **shared):
            if not bound[0]:
                _bind(slots, shared)
                bound[0] = True
            return {n: np.asarray(v, dtype="float64", order="C").reshape(s)
                    for n, v, s in zip(names, f(x), shapes)}
        return expand


def _bind(slots: dict, shared: dict) -> None:
    for name, value in shared.items():
        if name in slots:
            slots[name].storage[0] = np.asarray(value)


def _compile_c(model):
    """nutpie's jax path (``_compile_pymc_model_jax``) with PyTensor's C backend instead."""
    from nutpie.compile_pymc import _make_functions, _prepare_dims_and_coords
    from nutpie.compiled_pyfunc import from_pyfunc
    from pytensor.compile.sharedvalue import SharedVariable

    import pytensor
    # allow_gc=False: the VM keeps intermediate buffers between calls instead of freeing and
    # reallocating them (sleepstudy: 431 vs 493 µs per evaluation); results are unchanged.
    with warnings.catch_warnings(), pytensor.config.change_flags(allow_gc=False):
        warnings.simplefilter("ignore", UserWarning)
        n_dim, _, logp_fn, expand_fn, initial_point, shape_info = _make_functions(
            model, mode="FAST_RUN", compute_grad=True, join_expanded=False,
            pymc_initial_point_fn=_initial_point_fn(model))
    names, _, shapes = shape_info
    shared_data = {}
    for fn in (logp_fn, expand_fn):
        for v in fn.get_shared():
            if isinstance(v, SharedVariable) and v.name:
                shared_data[v.name] = v.get_value(borrow=True)
    fns = _CFunctions(logp_fn, expand_fn, list(names), [tuple(s) for s in shapes])
    dims, coords = _prepare_dims_and_coords(model, shape_info)
    # nutpie needs a size for every named dim; PyMC's automatic "<var>_dim_0" have none
    dims = {k: v for k, v in dims.items() if all(d in coords for d in v)}
    out = from_pyfunc(ndim=n_dim, make_logp_fn=fns.make_logp, make_expand_fn=fns.make_expand,
                      make_initial_point_fn=initial_point,
                      expanded_dtypes=[np.dtype("float64")] * len(names),
                      expanded_shapes=shapes, expanded_names=names, coords=coords, dims=dims,
                      shared_data=shared_data)
    return out, shape_info
