"""MCMC for a built ``pm.Model``: nutpie's Rust NUTS on a compiled log-density, or ``pm.sample``.

nutpie needs  x ↦ (log p(x), ∇ log p(x))  on the flat unconstrained vector x, and the
"expand" map  x ↦ every traced variable (transforms undone, deterministics).  Both are built
by nutpie's own ``_make_functions`` (same graph, same rewrites) and compiled by PyTensor with
one of two backends:

* ``"numba"`` — PyTensor's NUMBA mode, the whole graph one jitted function, handed to nutpie
  as C function pointers (:mod:`.c_callbacks`): the chains call it from their own threads
  without entering Python, in parallel.  ~10 µs per sleepstudy evaluation.  PyTensor caches
  the numba code on disk, but a new structure still takes 15–40 s to compile.  (nutpie's own
  ``compile_pymc_model`` builds its C callbacks by re-compiling the whole graph into them in
  every process: 20–70 s per fit even with warm caches, so it is not used.)
* ``"c"`` — PyTensor's C backend (``mode="FAST_RUN"``), called through
  ``nutpie.compiled_pyfunc.from_pyfunc``; compiled C ops are shared across structures, so a
  new structure compiles in seconds, but each evaluation costs ~0.1–0.3 ms of VM overhead
  with the GIL held.

``backend="auto"`` picks by expected cost (:func:`choose_backend`): C while its predicted
sampling time is short, else numba — from the model and the sampler settings alone, never from
what the caches hold, so a seed gives the same draws on a cold and on a warm machine.

Two caches, both keyed by the *structure* of the graph (every op, every constant's bytes,
every shared variable's name, dtype and shape; :func:`structure_key`):

* in process: a second fit of the same structure — other data of the same shapes held in
  shared variables, another seed, other draws — reuses the compiled model, re-pointed at the
  new shared values (nutpie's ``with_data``) and the new model's coordinates;
* on disk: the rewritten, linked functions are pickled under PyTensor's compiledir, so
  another process skips PyTensor's graph rewrites (4 of sleepstudy's 8 s of compiling).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import pathlib
import threading
import warnings
import weakref
from collections import OrderedDict

import numpy as np

BACKENDS = ("auto", "c", "numba")
DATA_PREFIX = "data__"       # build.DATA_PREFIX: shared data whose length is not structure
ROW_DIM = "obs"              # build's dimension of the rows: its length is data too
# shared scalars whose value is data (not a dimension length): the marginal statistics N and
# ‖y − Xβ̂‖², the prior arguments (priors.PRIOR_DATA_PREFIX starts with DATA_PREFIX)
SCALAR_DATA_PREFIXES = (DATA_PREFIX, "marginal_")

# Cost model of the C backend, fitted to per-evaluation times measured on this project's 2-core
# machine (benchmarks/README.md): ~0.25 ms of VM overhead per log-density + gradient, plus
# 0.25 ms per 1000 units of size (rows, or J·q² for the univariate marginal engine).  The C
# backend keeps the GIL, so the chains' evaluations add up.
C_SECONDS_PER_EVAL = 2.5e-4
C_SIZE_UNIT = 1000
# Leapfrog steps per draw seen in the benchmarks: marginal 4–8, conditional ~15.
STEPS_PER_DRAW = {"marginal": 8, "conditional": 16}
# numba's cold compile of a structure costs about what C's does now that C compiles each module
# once (2026-12-03, empty caches, CPU s of the whole process at load 5–9: sleepstudy marginal
# 4 × 2000, numba 68 vs C 62; a 500-row bernoulli (1 + x | g), numba 70 vs C 78), loads a
# structure it has compiled before faster (no re-linking: sleepstudy's second run 9 vs 20 CPU s),
# and its evaluations are 2–5× cheaper than C's and run in parallel, where C's chains share the
# GIL.  So C is kept only for short runs, whose sampling is a few seconds either way.  The
# choice never looks at the caches: the two backends' draws differ for a seed (their rounding
# differs and NUTS amplifies it), so a cache-dependent choice would make the draws depend on the
# machine's history (issue 17 item 10).
C_BACKEND_MAX_SECONDS = 5.0
CACHE_SIZE = 16

_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_STATS = {"compiled": 0, "reused": 0, "loaded": 0, "loaded_without_graph": 0}
_FORMAT = 6          # bump when the pickled entry changes (6: numba graphs with vector_loops)


def evaluation_size(design, likelihood: str) -> int:
    """What one log-density evaluation scales with: Σ_terms J·q² for the univariate marginal
    engine (its cost does not depend on N), rows × responses otherwise."""
    if likelihood == "marginal" and design.y.shape[1] == 1:
        return int(sum(len(b.levels) * len(b.coef_names) ** 2 for b in design.terms))
    return int(design.nobs * design.y.shape[1])


def choose_backend(backend: str, likelihood: str, size: int, draws: int, tune: int,
                   chains: int) -> str:
    """``"c"`` or ``"numba"`` for nutpie.  ``"auto"``: the C backend's predicted sampling time
    is  T = chains · (draws + tune) · steps per draw · (0.25 ms + 0.25 ms · size / 1000);
    ``"c"`` while T ≤ 5 s (a short run), ``"numba"`` otherwise.

    Deterministic from the model's size and the sampler settings: what the disk cache holds
    does not enter, so the same seed gives the same draws on a cold and a warm cache and a
    second process reuses what the first compiled."""
    if backend not in BACKENDS:
        from ...errors import MixedFormulaError
        raise MixedFormulaError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend != "auto":
        return backend
    evals = chains * (draws + tune) * STEPS_PER_DRAW.get(likelihood, 16)
    seconds = evals * C_SECONDS_PER_EVAL * (1 + size / C_SIZE_UNIT)
    return "c" if seconds <= C_BACKEND_MAX_SECONDS else "numba"


def sample(model, sampler, draws, tune, chains, seed, progressbar, cores, target_accept,
           backend: str = "c", low_rank: bool = False):
    """Sample with one BLAS thread per chain: the models are small-matrix work, and threaded
    OpenBLAS made a 2×2 triangular solve cost 10 ms per call here (0.005 ms with one thread).
    ``low_rank`` (nutpie): :func:`sample_nutpie`."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        if sampler == "nutpie":
            return sample_nutpie(model, draws, tune, chains, seed, progressbar, cores,
                                 target_accept, backend, low_rank=low_rank)
        import pymc as pm
        with model:
            return pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                             progressbar=progressbar, cores=cores,
                             compute_convergence_checks=False,
                             target_accept=target_accept or 0.8)


def sample_nutpie(model, draws, tune, chains, seed, progressbar, cores, target_accept,
                  backend="c", low_rank: bool = False):
    """nutpie on the compiled model. ``low_rank``: nutpie's low-rank modified mass matrix
    adaptation (diagonal plus the leading eigen-directions of the draws' and gradients'
    covariance), which learns linear correlations a diagonal mass matrix cannot: the partial
    engine asks for it (InstEval's b_Intercept, confounded with the mean of the department
    effects, 4 × (300 + 300): bulk ESS 126 → 997 at the same 15 steps per draw;
    benchmarks/README.md, issue 24)."""
    import nutpie
    from ...progress import phase
    compiled = compiled_model(model, backend)
    phase(f"sampling {chains} chain{'s' * (chains > 1)} x ({tune} warm-up + {draws} draws) "
          f"with nutpie ({backend} backend)")
    kw = {} if target_accept is None else {"target_accept": target_accept}
    if low_rank:
        kw["low_rank_modified_mass_matrix"] = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                             progress_bar=progressbar, cores=cores, save_warmup=False, **kw)


# -- compiled-model cache -----------------------------------------------------------------------
def disk_cached(model) -> frozenset:
    """The backends whose compiled functions for this model's structure are in the disk
    cache."""
    key, _ = _structure(model)
    return frozenset(b for b in ("c", "numba")
                     if (p := _disk_path((b, key))) is not None and p.exists())


_KEYS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _structure(model):
    """:func:`structure_key`, once per model object (it walks the whole graph)."""
    hit = _KEYS.get(model)
    if hit is None:
        hit = _KEYS[model] = structure_key(model)
    return hit


def compiled_model(model, backend: str = "c"):
    """nutpie's compiled model for ``model``: from the in-process cache when the structure
    matches (re-pointed at this model's shared data and coordinates), else from the on-disk
    cache of compiled functions, else compiled (and written to the disk cache)."""
    key, shared = _structure(model)
    key = (backend, key)
    if backend == "numba":
        from .marginal_block_op import register
        register("numba")
    with _numba_opt_level(_small_opt_level(model) if backend == "numba" else None):
        return _compiled_model(model, backend, key, shared)


# LLVM optimisation level of the numba functions compiled for small models (numba's default is
# 3).  There compile time dominates: sleepstudy's cold first run (4 × 2000 draws,
# benchmarks/first_run.py, load ~1) took 72.3 s at level 3 and 54.8 s at level 1, its warm
# second run 9.7 vs 6.8 s.  With many rows the evaluations dominate: a 20 000-row bernoulli
# (1 + x | g) compiled in 47.5 vs 56.7 s but sampled 2 × 600 in 12.9 vs 10.8 s, so level 1 is
# taken up to NUMBA_OPT1_MAX_ROWS rows only.  (No fastmath: LLVM keeps IEEE semantics at every
# level.  Level 0 broke loading from numba's cache.)
NUMBA_SMALL_OPT_LEVEL = 1
NUMBA_OPT1_MAX_ROWS = 5000


def _small_opt_level(model):
    """NUMBA_SMALL_OPT_LEVEL when the model has at most NUMBA_OPT1_MAX_ROWS rows (its ``obs``
    dimension; the univariate marginal engine has none: its evaluations do not read rows),
    else None (numba's default)."""
    rows = model.dim_lengths.get("obs")      # a shared length: read it, no graph to compile
    n = 0 if rows is None else int(rows.get_value() if hasattr(rows, "get_value")
                                   else rows.eval())
    return NUMBA_SMALL_OPT_LEVEL if n <= NUMBA_OPT1_MAX_ROWS else None


@contextlib.contextmanager
def _numba_opt_level(level):
    """numba's ``config.OPT`` set to ``level`` for the compiles inside (None: unchanged).
    numba reads it for each module's pass pipeline (``CPUCodegen._pass_builder``)."""
    if level is None:
        yield
        return
    from numba.core import config
    old = config.OPT
    config.OPT = type(old)(level)
    try:
        yield
    finally:
        config.OPT = old


def _compiled_model(model, backend, key, shared):
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
    if hit is not None:
        CACHE_STATS["reused"] += 1
        return _rebind(*hit, model, shared)
    functions = _load_functions(key)
    if functions is None:
        from ...progress import phase
        phase(f"compiling the model with PyTensor's {'C' if backend == 'c' else 'numba'} "
              "backend (first time for this structure on this machine; cached afterwards)")
        CACHE_STATS["compiled"] += 1
        functions = _compile_functions(model, backend)
        _save_functions(key, functions)
    else:
        CACHE_STATS["loaded"] += 1
    compiled = _assemble(model, backend, functions, shared)
    shape_info = functions[3]
    with _CACHE_LOCK:
        _CACHE[key] = (compiled, shape_info, _prior_data_digest(model, shared))
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled


# -- on-disk cache of compiled functions --------------------------------------------------------
# Rewriting and compiling PyMC's graphs costs 3–8 s per fit even when every compiled op is in
# PyTensor's own disk caches (sleepstudy: 4.2 s of the 7.8 s were graph rewrites).  The
# rewritten, linked functions are pickled (PyTensor's own pickling: the FunctionMaker keeps the
# rewritten graph, unpickling only re-links it, which loads the compiled ops from PyTensor's
# C/numba caches) under a digest of the structure key and the versions of everything that
# compiles.  The files live in PyTensor's compiledir, next to the compiled C modules and numba
# libraries PyTensor itself loads from there: anyone who can write that directory can already
# run code in this process, so reading pickles from it adds no exposure.  Set
# MIXEDFORMULA_COMPILE_CACHE=0 to turn it off, or to a directory to put it elsewhere.
def _disk_cache_dir():
    import os
    setting = os.environ.get("MIXEDFORMULA_COMPILE_CACHE", "")
    if setting.lower() in ("0", "off", "false", "no"):
        return None
    if setting:
        return pathlib.Path(setting)
    import pytensor
    return pathlib.Path(pytensor.config.compiledir) / "mixedformula"


def _disk_path(key):
    import platform

    import numba
    import numpy
    import nutpie
    import pymc
    import pytensor

    from ... import __version__
    folder = _disk_cache_dir()
    if folder is None or key[1].startswith("volatile-"):
        return None
    versions = (__version__, pymc.__version__, pytensor.__version__, nutpie.__version__,
                numba.__version__, numpy.__version__, platform.python_version(), _FORMAT)
    digest = hashlib.sha1(repr((versions, key)).encode()).hexdigest()
    return folder / f"{key[0]}-{digest}.pkl"


def _load_functions(key):
    """The functions tuple of :func:`_compile_functions` from the disk cache, or None.  For
    numba the compiled graph functions come straight from PyTensor's numba cache when it has
    them (:meth:`.c_callbacks.JitFunction.from_spec`); otherwise, and for C, the pickled
    PyTensor Functions are rebuilt (re-linked from PyTensor's C/numba caches)."""
    import pickle
    path = _disk_path(key)
    if path is None or not path.exists():
        return None
    try:
        entry = pickle.loads(path.read_bytes())
        if not (isinstance(entry, dict) and entry.get("format") == _FORMAT):
            raise ValueError("not a compiled-functions entry")
        head = (entry["n_dim"],)
        tail = (entry["shape_info"], (entry["x0"], entry["x0_for"]))
        path.touch()            # recently used: kept when the directory is pruned
        if entry["jit"] is not None:
            from .c_callbacks import JitFunction
            fns = [JitFunction.from_spec(spec) for spec in entry["jit"]]
            if all(f is not None for f in fns):
                CACHE_STATS["loaded_without_graph"] += 1
                return head + tuple(fns) + tail
        with _linking_flags(), warnings.catch_warnings():
            # re-linking reads PyTensor's BLAS flags, whose probe warns when no BLAS library
            # links (pip installs); these small graphs do not use BLAS, as when compiling
            warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
            logp_fn, expand_fn = pickle.loads(entry["functions"])
        return head + (logp_fn, expand_fn) + tail
    except Exception:       # truncated, foreign or stale file: compile afresh and overwrite
        return None


# Bounds: the conditional engine's pickled functions hold its rows (shared values), so a pickle
# grows with them;
# big ones are not worth a disk round trip, and the directory keeps the most recent files only.
DISK_CACHE_MAX_BYTES = 64 * 2**20
DISK_CACHE_MAX_FILES = 200


def _save_functions(key, functions) -> None:
    import os
    import pickle
    import tempfile
    path = _disk_path(key)
    if path is None:
        return
    tmp = None
    try:
        n_dim, logp_fn, expand_fn, shape_info, (x0, x0_for) = functions
        jit = None
        if key[0] == "numba":
            from .c_callbacks import JitFunction
            jit = tuple(JitFunction.from_function(f).spec() for f in (logp_fn, expand_fn))
            jit = None if None in jit else jit
        entry = {"format": _FORMAT, "n_dim": n_dim, "shape_info": shape_info, "x0": x0,
                 "x0_for": x0_for, "jit": jit, "functions": pickle.dumps((logp_fn, expand_fn),
                                                       protocol=pickle.HIGHEST_PROTOCOL)}
        blob = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        if len(blob) > DISK_CACHE_MAX_BYTES:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        os.replace(tmp, path)           # atomic: a reader sees the old file or the new one
        tmp = None
        files = sorted(path.parent.glob("*.pkl"), key=lambda f: f.stat().st_mtime)
        for old in files[:-DISK_CACHE_MAX_FILES]:
            old.unlink(missing_ok=True)
    except Exception:       # an unpicklable op or a read-only directory: just do not cache
        return
    finally:
        if tmp is not None:
            pathlib.Path(tmp).unlink(missing_ok=True)


def clear_cache() -> None:
    """Forget every compiled model (they hold compiled functions and their graphs)."""
    with _CACHE_LOCK:
        _CACHE.clear()
        _SUPPORT_FNS.clear()


def cache_size() -> int:
    return len(_CACHE)


def structure_key(model) -> tuple[str, dict]:
    """A digest of everything the compiled functions depend on, and the shared data values.

    Walks the graphs nutpie compiles (joint log-density, every free and deterministic
    variable) in topological order.  Each node contributes its op (ops compare by their
    properties; ops without properties hash by identity and so never match another model's)
    and the positions of its inputs; each constant its type, shape and bytes; each named
    shared array its name, type and shape — its *value* is data, swapped in by ``with_data``
    (the conditional engine's rows and the prior arguments, named ``data__*``, and the length
    of the ``obs`` dimension contribute their number of dimensions only: a re-fit on more or
    fewer rows, or with other brms default priors, reuses the compiled model).  Shared scalars
    named ``data__*`` or ``marginal_*`` (prior arguments, the marginal statistics N and
    ‖y − Xβ̂‖²) are data too; other shared scalars (PyMC's dimension lengths: numbers of
    levels) and unnamed or duplicated shared variables are hashed by value, like constants;
    random generators are ignored (seeds come from nutpie).
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
            rows = bool(v.name) and (v.name.startswith(DATA_PREFIX) or v.name == ROW_DIM)
            scalar_data = rows or bool(v.name) and v.name.startswith(SCALAR_DATA_PREFIXES)
            if (isinstance(val, np.ndarray) and (val.ndim > 0 or scalar_data) and v.name
                    and names.count(v.name) == 1):
                # the conditional engine's rows: the row count is data, not structure
                t = ("shared", v.name, str(v.type), val.ndim if rows else val.shape)
                shared[v.name] = val
            else:
                t = ("shared-value", v.name, str(v.type), _value_digest(val))
        else:
            t = ("input", v.name, str(v.type))
        ids[v] = t
        return t

    volatile = False
    for node in io_toposort(inputs, outputs):
        ins = tuple(token(i) if i.owner is None else ids[i] for i in node.inputs)
        op = repr(_op_token(node.op))
        volatile = volatile or "'id'" in op or " at 0x" in op
        digest.update(repr((op, ins)).encode())
        for o in node.outputs:
            ids[o] = ("out", len(ids))
    digest.update(repr([ids.get(o) or token(o) for o in outputs]).encode())
    # Tokens holding an object's id (ops without properties, unknown objects, reprs with an
    # address) identify this process's objects only: such a key is never written to disk.
    volatile = volatile or "('object'," in repr(list(ids.values()))
    return ("volatile-" if volatile else "") + digest.hexdigest(), shared


def _op_token(op) -> tuple:
    """What identifies an op, the same in every process: its class and its properties (ops
    compare by them).  Python's ``hash`` is salted per process, so it is not used; an op
    without properties is identified by ``id`` and so never matches another model's."""
    from pytensor.tensor.random.op import RNGConsumerOp
    cls = (type(op).__module__, type(op).__qualname__)
    props = getattr(op, "__props__", None)
    if props is None and isinstance(op, RNGConsumerOp):
        # PyMC's symbolic random variables (e.g. HalfStudentT, LKJCholeskyCov) have no
        # properties.  What reaches nutpie from them is their log-density terms (already in
        # model.logp(), walked node by node) and their support points (cached per digest);
        # both are fixed by the op's class (PyMC makes one class per distribution, the centred
        # blocks one per size) and its inputs, which the digest covers.
        return cls + (str(op), str(getattr(op, "signature", "")))
    if props is None:
        return cls + (("id", id(op)),)
    values = []
    for name in props:
        v = getattr(op, name)
        values.append(_value_digest(v) if isinstance(v, np.ndarray) else (repr(v), str(v)))
    return cls + tuple(values)


def _value_digest(value) -> tuple:
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.shape, str(value.dtype), hashlib.sha1(
            np.ascontiguousarray(value).tobytes()).hexdigest()
    if value is None or isinstance(value, (int, float, bool, str, np.generic)):
        return (repr(value),)
    if isinstance(value, np.random.Generator):
        return ("rng",)             # the RVs' generators: not read by logp, expand or the init
    return ("object", id(value))    # anything else: never equal across models


def _rebind(compiled, shape_info, x0_for, model, shared: dict):
    """The cached compiled model with this model's shared values and coordinates.  The
    initial points are recomputed only when the priors read shared data whose values differ
    from those the cached support point was computed with (``x0_for``: then the old point
    would start from the old data's support points)."""
    from .nutpie_shim import prepare_dims_and_coords, shared_data, with_coords

    known = shared_data(compiled)
    out = compiled.with_data(**{k: v for k, v in shared.items() if k in known})
    _, coords = prepare_dims_and_coords(model, shape_info)
    init = None
    if _prior_data_digest(model, shared) != x0_for:
        init = _jittered(_support_point(model, shape_info))
    return with_coords(out, coords, init)


def _prior_data_digest(model, shared: dict):
    """A digest of the shared data the priors read (the support point depends on them:
    centred group effects have the fixed effects, hence the column means, as their mean), or
    None when they read none.  Two models with equal digests have the same support point."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs
    names = sorted({v.name for v in graph_inputs(model.free_RVs)
                    if isinstance(v, SharedVariable) and v.name in shared})
    return tuple((n, _value_digest(np.asarray(shared[n]))) for n in names) or None


# -- initial points -----------------------------------------------------------------------------
def _support_point(model, shape_info) -> np.ndarray:
    """The flat unconstrained point where nutpie's default initialisation starts before its
    jitter: every free variable's support point (PyMC's ``make_initial_point_fn``), in the
    order of nutpie's flat vector.  Compiling PyMC's initial-point function costs 0.4–6 s per
    model (sleepstudy; the centred bernoulli of benchmarks case 3), so the point is cached with
    the functions, together with a digest of the shared data the priors read
    (:func:`_prior_data_digest`), and the compiled function is kept per structure
    (:func:`_support_point_fn`): a model with other such data (a re-fit with other default
    priors, other column means) evaluates it again without compiling."""
    from .nutpie_shim import rv_dict_to_flat_array_wrapper
    names, _, shapes = shape_info
    n_free = len(model.free_RVs)
    flat = rv_dict_to_flat_array_wrapper(_support_point_fn(model), names=names[:n_free],
                                         shapes=shapes[:n_free])
    return np.asarray(flat(0), dtype="float64")


_SUPPORT_FNS: "OrderedDict[str, tuple]" = OrderedDict()


def _support_point_fn(model):
    """seed ↦ {transformed name: support point} as ``make_initial_point_fn(model=model,
    jitter_rvs=set(), return_transformed=True)``, compiled once per structure: the shared
    data the support points read (by name, :func:`structure_key`'s data) are inputs of the
    compiled function, this model's values passed in.  Models whose support points draw
    random numbers get PyMC's own function."""
    key, shared = _structure(model)
    with _CACHE_LOCK:
        hit = _SUPPORT_FNS.get(key)
        if hit is not None:
            _SUPPORT_FNS.move_to_end(key)
    if hit is None:
        hit = _compile_support_point(model, shared)
        if hit is None:
            from pymc.initial_point import make_initial_point_fn
            return make_initial_point_fn(model=model, jitter_rvs=set(), return_transformed=True)
        if not key.startswith("volatile-"):
            with _CACHE_LOCK:
                _SUPPORT_FNS[key] = hit
                while len(_SUPPORT_FNS) > CACHE_SIZE:
                    _SUPPORT_FNS.popitem(last=False)
    func, inputs, varnames = hit
    values = [shared[name] for name in inputs]
    return lambda seed: dict(zip(varnames, func(*values)))


def _compile_support_point(model, shared: dict):
    """(compiled function, names of its shared-data inputs, transformed names), or None when
    a support point draws random numbers.  The expression and the compile mode are
    ``make_initial_point_fn``'s."""
    import pytensor
    from pymc.initial_point import make_initial_point_expression
    from pymc.pytensorf import compile as compile_pymc
    from pymc.pytensorf import find_rng_nodes
    from pymc.util import get_transformed_name
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    exprs = make_initial_point_expression(
        free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms,
        initval_strategies=dict(model.rvs_to_initial_values), jitter_rvs=set(),
        default_strategy="support_point", return_transformed=True)
    if find_rng_nodes(exprs):
        return None
    data = [v for v in graph_inputs(exprs) if isinstance(v, SharedVariable) and v.name in shared]
    args = [v.type(name=v.name) for v in data]
    exprs = pytensor.clone_replace(exprs, dict(zip(data, args)))
    with warnings.catch_warnings():
        # PyTensor's BLAS probe warns when no BLAS library links (pip installs); this
        # function does not use BLAS (as when re-linking, _load_functions)
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        func = compile_pymc(args, exprs, mode=pytensor.compile.mode.FAST_COMPILE,
                            on_unused_input="ignore")
    varnames = []
    for var in model.free_RVs:
        transform = model.rvs_to_transforms[var]
        varnames.append(var.name if transform is None
                        else get_transformed_name(var.name, transform))
    return func, [v.name for v in data], varnames


def _jittered(x0: np.ndarray):
    """nutpie's default initial points, as PyMC's ``jitter_rvs`` makes them: the support point
    plus U(-1, 1) on every unconstrained coordinate, from the chain's seed."""
    def initial_point(seed):
        return x0 + np.random.default_rng(seed).uniform(-1.0, 1.0, size=x0.shape)
    return initial_point


# -- compiling: PyTensor C (nutpie's from_pyfunc) or numba (C callbacks) ----------------------
@dataclasses.dataclass(frozen=True)
class _Functions:
    """The C backend's compiled PyTensor functions, called from nutpie's chain threads through
    ``from_pyfunc``: each chain runs its own :func:`.thread_copies.thread_copy` (the VM reuses
    buffers between calls, so two threads must never run one Function, nor one inner Function of
    an OpFromGraph / Scan op, which a plain ``Function.copy`` shares)."""
    logp: object
    expand: object
    names: list
    shapes: list
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def _copy(self, fn):
        from .thread_copies import thread_copy
        with self.lock, _linking_flags():
            f = thread_copy(fn)
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
            # NUTS's first warm-up steps reach points where the density overflows (inf - inf
            # in the LKJ transform's cumsum); the sampler rejects them, numpy need not warn
            with np.errstate(all="ignore"):
                vm()     # the VM directly: Function.__call__ adds ~10 µs of checks per call
            return float(out_logp.storage[0]), out_grad.storage[0]
        return logp

    def make_expand(self, seed1, seed2, chain):
        names, shapes = self.names, self.shapes
        f, slots = self._copy(self.expand)
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


def _linking_flags():
    """The PyTensor flags under which this module compiles, re-links (disk cache) and copies
    (one per chain) its functions.  All three must be the same: the C flags are part of
    PyTensor's module key, so a copy or re-link under other flags compiles every C module a
    second time (sleepstudy: 83 instead of 42 modules when only the first compile had -O1).

    * allow_gc=False: the VM keeps intermediate buffers between calls instead of freeing and
      reallocating them (sleepstudy: 431 vs 493 µs per evaluation); results are unchanged.
    * numba__fastmath=False: with fastmath, code loaded from PyTensor's numba cache and freshly
      compiled code round differently (draws differ at 1e-8 across processes, see
      docs/reliability.md); without it the same seed gives the same draws bit for bit.
    * no C flags of ours: an -O1 in gcc__cxxflags (which gcc applies after the ops' own -O3)
      compiled sleepstudy's modules no faster (cold run 53.8 s wall, 46.4 + 7.0 s CPU, against
      52.8 s, 45.1 + 7.1 s at -O3, same machine and load; benchmarks/README.md): gcc's time
      here is parsing and code generation, not optimisation.
    """
    import pytensor
    return pytensor.config.change_flags(allow_gc=False, numba__fastmath=False)


def _compile_functions(model, backend: str):
    """PyMC's log-density (+ gradient) and expand functions of ``model`` as nutpie's jax path
    (``_make_functions``) builds them, compiled with PyTensor's C or numba backend."""

    from .nutpie_shim import make_functions

    with warnings.catch_warnings(), _linking_flags():
        warnings.simplefilter("ignore", UserWarning)
        n_dim, _, logp_fn, expand_fn, _, shape_info = make_functions(
            model, mode=_mode(backend), compute_grad=True, join_expanded=False,
            pymc_initial_point_fn=lambda seed: {})      # ours: _support_point, _jittered
    x0 = _support_point(model, shape_info)          # with the model's own shared values
    return n_dim, logp_fn, expand_fn, shape_info, (x0, _prior_data_digest(model,
                                                                          _structure(model)[1]))


def _mode(backend: str):
    """PyTensor's FAST_RUN (C) or NUMBA mode, without the checks on prior arguments
    (:mod:`.prior_checks`); numba's with the vectorisable exp/log and sums of
    :mod:`.vector_loops`."""
    from .prior_checks import with_rewrite
    if backend == "c":
        return with_rewrite("FAST_RUN")
    from .vector_loops import with_vector_loops
    return with_vector_loops(with_rewrite("NUMBA"))


def _assemble(model, backend: str, functions, shared: dict):
    """The nutpie model around compiled functions: this model's initial points, coordinates
    and shared data (``shared`` overrides the values the functions were compiled or pickled
    with).  numba: C callbacks (:mod:`.c_callbacks`), so the chains run without the GIL;
    C: ``nutpie.compiled_pyfunc.from_pyfunc`` around per-chain copies of the functions."""
    from pytensor.compile.sharedvalue import SharedVariable

    from .nutpie_shim import from_pyfunc, prepare_dims_and_coords

    n_dim, logp_fn, expand_fn, shape_info, (x0, x0_for) = functions
    if _prior_data_digest(model, shared) != x0_for:
        x0 = _support_point(model, shape_info)
    names, _, shapes = shape_info
    dims, coords = prepare_dims_and_coords(model, shape_info)
    # nutpie needs a size for every named dim; PyMC's automatic "<var>_dim_0" have none
    dims = {k: v for k, v in dims.items() if all(d in coords for d in v)}
    if backend != "c":
        from .c_callbacks import JitFunction, callback_model
        logp_fn, expand_fn = (f if isinstance(f, JitFunction) else JitFunction.from_function(f)
                              for f in (logp_fn, expand_fn))
        shared_data = {n: shared.get(n, v) for f in (logp_fn, expand_fn)
                       for n, v in zip(f.names, f.values) if n is not None}
        return callback_model(logp_fn, expand_fn, n_dim, shape_info, shared_data,
                              coords=coords, dims=dims, initial_point=_jittered(x0))
    shared_data = {v.name: shared.get(v.name, v.get_value(borrow=True))
                   for fn in (logp_fn, expand_fn) for v in fn.get_shared()
                   if isinstance(v, SharedVariable) and v.name}
    fns = _Functions(logp_fn, expand_fn, list(names), [tuple(s) for s in shapes])
    return from_pyfunc(ndim=n_dim, make_logp_fn=fns.make_logp, make_expand_fn=fns.make_expand,
                       make_initial_point_fn=_jittered(x0),
                       expanded_dtypes=[np.dtype("float64")] * len(names),
                       expanded_shapes=shapes, expanded_names=names, coords=coords, dims=dims,
                       shared_data=shared_data)
