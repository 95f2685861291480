"""nutpie's C callbacks around PyTensor's jitted numba functions, without the GIL or a re-link.

nutpie's Rust sampler calls a model through two C function pointers
(``nutpie._lib.LogpFunc`` / ``ExpandFunc``):

    int64 logp(uint64 n_dim, double *x, double *grad_out, double *logp_out, void *user_data)
    int64 expand(uint64 n_dim, uint64 n_expanded, double *x, double *out, void *user_data)

Called that way, the chains never touch the Python interpreter.  Through
``nutpie.compiled_pyfunc.from_pyfunc`` instead, every evaluation enters Python (~30 µs) and the
four chains queue for the GIL: sleepstudy, 4 × (1000 + 1000), sampling took 2.9 s that way and
0.93 s through these callbacks, with bit-identical draws (benchmarks/README.md).

nutpie's own ``compile_pymc_model`` builds such callbacks by compiling a ``numba.cfunc`` that
calls the jitted graph; numba then links the graph's LLVM code into the callback and optimises
it again, 20–70 s in every process, and cannot cache the result.  Here the callback is a small
*trampoline* that calls the graph's already-compiled C wrapper (numba's ``cfunc_wrapper`` of the
jitted function's overload) through a function pointer read from ``user_data``:

* nothing is linked, so the trampoline compiles in ~1 s the first time and is loaded from
  PyTensor's numba cache directory afterwards (it only depends on the argument types, not on
  the graph or the data);
* ``user_data`` is a flat uint64 array: for each of the two functions the wrapper's address,
  then per data argument its buffer address and shape.  The arrays behind the addresses are kept
  alive by the model object (:class:`CallbackModel`), which nutpie holds for the whole run.

Written by hand (numba intrinsics) because neither numba nor nutpie offers calling a compiled
function by address with numba's array arguments.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect

import numpy as np

__all__ = ["CallbackModel", "JitFunction", "callback_model"]


def _intrinsics():
    """The two numba intrinsics, made on first use (importing numba costs ~0.5 s)."""
    global _CALL_ADDRESS, _VOID_POINTER
    if _CALL_ADDRESS is not None:
        return _CALL_ADDRESS, _VOID_POINTER
    from .nutpie_shim import numba_codegen
    ir, types, cgutils, intrinsic, TypingError = numba_codegen()

    @intrinsic
    def call_address(typingctx, address, args, restype_ref, argtypes_ref):
        """``restype(*args)`` for the C wrapper of a numba function at ``address``, whose
        numba argument types are ``argtypes_ref``: the wrapper's LLVM signature is their value
        types.  A function of ``*args`` (PyTensor's) has one argument, the tuple of them."""
        ret = restype_ref.instance_type
        callee = list(argtypes_ref.instance_type.types)
        packed = len(callee) == 1 and isinstance(callee[0], types.BaseTuple)

        def codegen(context, builder, signature, llargs):
            addr, tup, _, _ = llargs
            if packed:
                values, have = [tup], [context.get_value_type(args)]
            else:
                values = cgutils.unpack_tuple(builder, tup, len(args.types))
                have = [context.get_value_type(t) for t in args.types]
            want = [context.get_value_type(t) for t in callee]
            if have != want:
                raise TypingError(f"argument layout {have} does not match {want}")
            fnty = ir.FunctionType(context.get_value_type(ret), want)
            return builder.call(builder.inttoptr(addr, fnty.as_pointer()), values)
        return ret(address, args, restype_ref, argtypes_ref), codegen

    @intrinsic
    def void_pointer(typingctx, address):
        def codegen(context, builder, signature, llargs):
            return builder.inttoptr(llargs[0], cgutils.voidptr_t)
        return types.voidptr(address), codegen

    _CALL_ADDRESS, _VOID_POINTER = call_address, void_pointer
    return call_address, void_pointer


_CALL_ADDRESS = _VOID_POINTER = None


@dataclasses.dataclass(frozen=True)
class _Target:
    """One jitted function as the trampoline sees it: its wrapper's address, its data
    arguments (every argument but the point x, at position ``at``) and its return type."""
    address: int
    args: list          # np.ndarray per argument position, None at ``at``
    at: int
    restype: object     # numba types of the overload's result and (folded) arguments
    argtypes: object

    def user_data(self) -> list[int]:
        out = [self.address]
        for a in self.args:
            if a is not None:
                out += [a.ctypes.data, *a.shape]
        return out


@dataclasses.dataclass(frozen=True)
class JitFunction:
    """A PyTensor graph compiled to one numba function ``f(*args)``, as the trampolines call
    it: per argument the shared variable's name (None for the point x, at ``at``, and for
    unnamed inputs) and the value it was compiled with.

    :meth:`spec` is what the disk cache keeps; :meth:`from_spec` gets the compiled function
    back from PyTensor's numba cache without rebuilding the PyTensor Function (its graph
    rewrites and the Python source of every op: ~0.3 s for sleepstudy)."""
    jit: object
    names: tuple
    values: tuple
    at: int

    @classmethod
    def from_function(cls, fn) -> "JitFunction":
        """From a PyTensor Function compiled in NUMBA mode."""
        cells = fn.vm.inputs                # the jitted function's arguments, in fgraph order
        cell_of = {id(c): i for i, c in enumerate(cells)}
        names = [None] * len(cells)
        for inp, cell in zip(fn.maker.inputs, fn.input_storage):
            if getattr(inp, "implicit", False) and inp.variable.name:
                names[cell_of[id(cell.storage)]] = inp.variable.name
        at = cell_of[id(fn.input_storage[0].storage)]
        values = tuple(None if i == at else c[0] for i, c in enumerate(cells))
        return cls(fn.vm.jit_fn, tuple(names), values, at)

    def spec(self):
        """(source, PyTensor cache key, names, values, at), or None when PyTensor did not
        cache the function (then only the whole PyTensor Function can bring it back)."""
        from .nutpie_shim import numba_source_cache
        key = numba_source_cache().get(self.jit.py_func)
        source = getattr(self.jit.py_func, "__source__", None)
        if key is None or source is None:
            return None
        return (source, self.jit.py_func.__name__, key, self.names, self.values, self.at)

    @classmethod
    def from_spec(cls, spec) -> "JitFunction | None":
        """The function of :meth:`spec` loaded from PyTensor's numba cache, or None when it
        is not there (never compiled: the source only forwards to the graph's code, which a
        cache entry holds and nothing else here provides)."""
        import pytensor

        from .nutpie_shim import compile_numba_source
        if not pytensor.config.numba__cache:
            return None
        source, name, key, names, values, at = spec
        jit = compile_numba_source(source, name, key)
        out = cls(jit, tuple(names), tuple(values), at)
        typed = _signature(out, _arguments(out, {}))
        # what Dispatcher.compile does on a cache hit, without its fallback to compiling
        # (which would fail here: the forwarded-to graph code exists only in the cache entry)
        cres = jit._cache.load_overload(typed, jit.targetctx)
        if cres is None:
            return None
        jit.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
        jit.add_overload(cres)
        return out


def _arguments(fn: JitFunction, values: dict) -> list:
    """The data arguments of ``fn`` (None at the point x): shared variables named in
    ``values`` take those values, the others the values ``fn`` was compiled with."""
    args = [values.get(n, v) if n is not None else v for n, v in zip(fn.names, fn.values)]
    for i, a in enumerate(args):
        if i == fn.at:
            args[i] = None
            continue
        a = np.asarray(a) if np.isscalar(a) else a
        if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf":
            raise TypeError(f"argument {i} of the compiled function is a {type(a).__name__}, "
                            "not a numeric array")
        # writeable, aligned, C-contiguous: the argument types every overload is compiled
        # for here, so a structure compiled (or cached by numba) once is not compiled again
        args[i] = np.require(a, requirements=["C", "A", "W"])
    return args


def _signature(fn: JitFunction, args: list) -> tuple:
    """numba's argument types of ``fn`` for these arguments (x a float64 vector)."""
    import numba
    # PyTensor's graph function is ``f(*args)``: numba types its arguments as one tuple
    params = list(inspect.signature(fn.jit.py_func).parameters.values())
    star = len(params) == 1 and params[0].kind is inspect.Parameter.VAR_POSITIONAL
    example = [np.zeros(1) if a is None else a for a in args]
    return ((numba.typeof(tuple(example)),) if star
            else tuple(numba.typeof(a) for a in example))


def _overload(fn: JitFunction, args: list):
    """numba's compile result of ``fn`` for these argument types (loaded from numba's cache
    or compiled when not yet in this process)."""
    from .nutpie_shim import compile_result
    return compile_result(fn.jit, _signature(fn, args))


def _target(fn: JitFunction, values: dict) -> _Target:
    """``fn`` with its data arguments bound (see :func:`_arguments`), as the trampoline
    calls it: the address of its C wrapper and its numba types."""
    import numba
    args = _arguments(fn, values)
    cres = _overload(fn, args)
    from .nutpie_shim import c_wrapper_address
    address = c_wrapper_address(cres)
    if not address:
        raise TypeError("the compiled function has no C wrapper")
    return _Target(address, args, fn.at, cres.signature.return_type,
                   numba.types.Tuple(cres.signature.args))


def _unpack_lines(target: _Target, offset: int) -> tuple[list[str], list[str], dict]:
    """Source lines that rebuild the data arguments from ``ud`` (starting at ``offset``), the
    argument names in order, and the dtypes they refer to."""
    lines, names, dtypes = [], [], {}
    pos = offset + 1
    for i, a in enumerate(target.args):
        if a is None:
            names.append("x")
            continue
        shape = "".join(f"ud[{pos + 1 + k}], " for k in range(a.ndim))
        dtypes[f"D{i}"] = a.dtype
        lines.append(f"    a{i} = numba.carray(void_pointer(ud[{pos}]), ({shape}), D{i})")
        names.append(f"a{i}")
        pos += 1 + a.ndim
    return lines, names, dtypes


def _logp_source(n_dim: int, n_ud: int, target: _Target) -> tuple[str, dict]:
    lines, names, dtypes = _unpack_lines(target, 0)
    src = "\n".join([
        "def logp_trampoline(dim, x_, grad_, logp_, ud_):",
        f"    if dim != {n_dim}:",
        "        return -1",
        f"    ud = numba.carray(ud_, ({n_ud},), np.uint64)",
        f"    x = numba.carray(x_, ({n_dim},))",
        f"    grad = numba.carray(grad_, ({n_dim},))",
        *lines,
        f"    res = call_address(ud[0], ({', '.join(names)},), RESTYPE, ARGTYPES)",
        "    g = res[1]",
        f"    if g.size != {n_dim}:         # the wrapper returns empty arrays when it raised",
        "        return 1",
        "    value = res[0][()]",
        "    logp_[0] = value",
        "    for i in range(g.size):",
        "        grad[i] = g[i]",
        "    if not np.isfinite(value):",
        "        return 4",
        "    for i in range(g.size):",
        "        if not np.isfinite(g[i]):",
        "            return 3",
        "    return 0",
    ]) + "\n"
    return src, dtypes


def _expand_source(n_dim: int, n_ud: int, offset: int, target: _Target,
                   sizes: list[int]) -> tuple[str, dict]:
    lines, names, dtypes = _unpack_lines(target, offset)
    checks, writes, start = [], [], 0
    for k, size in enumerate(sizes):
        # empty arrays: the wrapper raised (nutpie's own callback returns -2 then)
        checks += [f"    if res[{k}].size != {size}:", "        return -2"]
        writes.append(f"    out[{start}:{start + size}] = res[{k}].ravel()")
        start += size
    src = "\n".join([
        "def expand_trampoline(dim, n_expanded, x_, out_, ud_):",
        f"    if dim != {n_dim} or n_expanded != {start}:",
        "        return -1",
        f"    ud = numba.carray(ud_, ({n_ud},), np.uint64)",
        f"    x = numba.carray(x_, ({n_dim},))",
        f"    out = numba.carray(out_, ({start},))",
        *lines,
        f"    res = call_address(ud[{offset}], ({', '.join(names)},), RESTYPE, ARGTYPES)",
        *checks,
        *writes,
        "    return 0",
    ]) + "\n"
    return src, dtypes


_COMPILED: dict = {}


def _cfunc(src: str, name: str, c_sig, target: _Target, dtypes: dict):
    """The trampoline compiled as a ``numba.cfunc``, cached in memory and in PyTensor's numba
    cache directory under a digest of its source and types (PyTensor's cache locator)."""
    import numba
    import pytensor

    from .nutpie_shim import numba_source_cache
    key = "mixedformula-" + hashlib.sha256(
        repr((src, str(target.restype), str(target.argtypes), str(c_sig),
              sorted((k, str(v)) for k, v in dtypes.items()), numba.__version__)).encode()
    ).hexdigest()
    hit = _COMPILED.get(key)
    if hit is not None:
        return hit
    call_address, void_pointer = _intrinsics()
    env = {"__name__": __name__, "numba": numba, "np": np, "call_address": call_address,
           "void_pointer": void_pointer, "RESTYPE": numba.types.TypeRef(target.restype),
           "ARGTYPES": numba.types.TypeRef(target.argtypes), **dtypes}
    exec(compile(src, f"<mixedformula {name}>", "exec"), env)
    py_func = env[name]
    cache = bool(pytensor.config.numba__cache)      # the locator serves PyTensor's setting
    if cache:
        numba_source_cache()[py_func] = key
    out = _COMPILED[key] = numba.cfunc(c_sig, cache=cache)(py_func)
    return out


def callback_model(logp_fn: JitFunction, expand_fn: JitFunction, n_dim: int, shape_info,
                   values: dict, *, coords, dims, initial_point):
    """A nutpie model calling ``logp_fn`` / ``expand_fn`` (the expand one returning the traced
    variables in ``shape_info`` order) through C callbacks, with the shared variables named in
    ``values`` set to those values."""
    from numba import types
    logp = _target(logp_fn, values)
    expand = _target(expand_fn, values)
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shape_info[2]]
    ud_logp, ud_expand = logp.user_data(), expand.user_data()
    user_data = np.array(ud_logp + ud_expand, dtype=np.uint64)
    n_ud = len(user_data)
    src, dtypes = _logp_source(n_dim, n_ud, logp)
    ptr = types.CPointer(types.double)
    logp_c = _cfunc(src, "logp_trampoline", types.int64(types.uint64, ptr, ptr, ptr,
                                                           types.voidptr),
                    logp, dtypes)
    src, dtypes = _expand_source(n_dim, n_ud, len(ud_logp), expand, sizes)
    expand_c = _cfunc(src, "expand_trampoline", types.int64(types.uint64, types.uint64, ptr,
                                                              ptr, types.voidptr),
                      expand, dtypes)
    names, _, shapes = shape_info
    return _model_class()(
        _n_dim=n_dim, dims=dims, _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(names, shapes)},
        compiled_logp_func=logp_c, compiled_expand_func=expand_c,
        initial_point_func=initial_point,
        # keeps every array whose address is in user_data alive as long as the model
        shared_data={"logp": [a for a in logp.args if a is not None],
                     "expand": [a for a in expand.args if a is not None]},
        user_data=user_data, n_expanded=sum(sizes), shape_info=shape_info,
        logp_func=logp_fn, expand_func=expand_fn, values=dict(values))


_MODEL_CLASS = None


def _model_class():
    """:class:`CallbackModel`, defined on first use (it subclasses a nutpie class)."""
    global _MODEL_CLASS
    if _MODEL_CLASS is not None:
        return _MODEL_CLASS
    from .nutpie_shim import compiled_model_class
    CompiledPyMCModel = compiled_model_class()

    @dataclasses.dataclass(frozen=True)
    class CallbackModel(CompiledPyMCModel):
        """nutpie's ``CompiledPyMCModel`` (its sampler, coordinates and initial points) with
        the trampolines of :func:`callback_model` and their ``user_data``.

        ``with_data`` rebuilds ``user_data`` for new values of the shared variables (same
        shapes' ranks and dtypes; other sizes are fine, the trampolines read the shapes)."""
        values: dict = dataclasses.field(default_factory=dict)

        @property
        def _shared_data(self) -> dict:
            """Shared variable name → value, as ``from_pyfunc`` models have it."""
            return self.values

        def with_data(self, **updates):
            unknown = set(updates) - set(self.values)
            if unknown:
                raise KeyError(f"unknown shared variable(s): {sorted(unknown)}")
            return callback_model(self.logp_func, self.expand_func, self._n_dim,
                                  self.shape_info, {**self.values, **updates},
                                  coords=self._coords, dims=self.dims,
                                  initial_point=self.initial_point_func)
    _MODEL_CLASS = CallbackModel
    return CallbackModel


def __getattr__(name):
    if name == "CallbackModel":
        return _model_class()
    raise AttributeError(name)
