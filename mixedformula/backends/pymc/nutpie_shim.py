"""The private nutpie, PyTensor-numba and numba APIs the sampler relies on, in one place.

:mod:`.sampling` and :mod:`.c_callbacks` compile nutpie models themselves (cached compiled
functions, C callbacks called without the GIL), which needs names these libraries do not
promise to keep: nutpie's ``compile_pymc._make_functions``, ``_prepare_dims_and_coords``,
``_rv_dict_to_flat_array_wrapper`` and the fields of ``CompiledPyMCModel``; PyTensor's numba
source cache (``pytensor.link.numba.cache``, ``dispatch.basic``); numba's ``intrinsic`` /
``cgutils`` code generation. Every use goes through the functions here, and the first one checks
the installed versions against :data:`SUPPORTED` (the ranges this code was written and tested
for), raising a :class:`~mixedformula.errors.MixedFormulaError` that names the installed and the
supported versions instead of an AttributeError deep inside a compile.
"""

from __future__ import annotations

from ...errors import MixedFormulaError

#: package → (lowest supported version, first unsupported version)
SUPPORTED = {"nutpie": ("0.16.8", "0.17"), "pytensor": ("2.38", "2.39"),
             "numba": ("0.60", "0.66")}

_CHECKED: set = set()


def _version_tuple(text: str) -> tuple:
    out = []
    for piece in str(text).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if digits != piece:
            break
    return tuple(out)


def supported(package: str, version: str) -> bool:
    """Whether ``version`` of ``package`` is in its range in :data:`SUPPORTED`."""
    low, high = SUPPORTED[package]
    v = _version_tuple(version)
    return _version_tuple(low) <= v < _version_tuple(high)


def check(package: str) -> None:
    """Raise a clear error when the installed ``package`` is outside its supported range."""
    if package in _CHECKED:
        return
    import importlib
    version = getattr(importlib.import_module(package), "__version__", "unknown")
    if not supported(package, version):
        low, high = SUPPORTED[package]
        raise MixedFormulaError(
            f"{package} {version} is installed, but mixedformula's nutpie backend uses "
            f"{package} internals written for {package} >= {low}, < {high}; install a "
            f"supported version (pip install '{package}>={low},<{high}') or sample with "
            f"sampler='pymc'")
    _CHECKED.add(package)


# -- nutpie ------------------------------------------------------------------------------------
def make_functions(model, **kwargs):
    """nutpie's ``compile_pymc._make_functions`` (log-density, gradient and expand functions of
    a PyMC model; returns n_dim, _, logp_fn, expand_fn, _, shape_info)."""
    check("nutpie")
    import nutpie.compile_pymc as compile_pymc
    if not getattr(compile_pymc._compute_shapes, "_mixedformula_static", False):
        compile_pymc._compute_shapes = _static_shapes_first(compile_pymc._compute_shapes)
    return compile_pymc._make_functions(model, **kwargs)


def _static_shapes_first(compute_shapes):
    """nutpie's ``_compute_shapes`` (every traced variable's shape) read from the variables'
    static types when all of them are known (else nutpie's own).  nutpie compiles and runs
    PyMC's initial-point function and a shape function for them (~3 s of a first fit,
    issue 21), besides the support point ``sampling._support_point`` computes anyway; a
    fully static type shape is what they return, by PyTensor's type invariant."""
    def shapes(model):
        traced = [v for v in model.value_vars + model.free_RVs + model.deterministics
                  if v not in model.observed_RVs + model.potentials]
        static = [getattr(v.type, "shape", None) for v in traced]
        if all(shape is not None and None not in shape for shape in static):
            return {v.name: tuple(int(d) for d in shape) for v, shape in zip(traced, static)}
        return compute_shapes(model)
    shapes._mixedformula_static = True
    return shapes


def prepare_dims_and_coords(model, shape_info):
    """nutpie's ``compile_pymc._prepare_dims_and_coords`` → (dims, coords)."""
    check("nutpie")
    from nutpie.compile_pymc import _prepare_dims_and_coords
    return _prepare_dims_and_coords(model, shape_info)


def rv_dict_to_flat_array_wrapper(fn, names, shapes):
    """nutpie's ``compile_pymc._rv_dict_to_flat_array_wrapper`` (a point dict → flat x)."""
    check("nutpie")
    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper
    return _rv_dict_to_flat_array_wrapper(fn, names=names, shapes=shapes)


def compiled_model_class():
    """nutpie's ``CompiledPyMCModel`` (subclassed by :mod:`.c_callbacks`, which reads its
    fields ``logp_func``, ``expand_func``, ``_n_dim``, ``shape_info``, ``_coords``, ``dims``,
    ``initial_point_func`` and overrides ``_shared_data`` / ``with_data``)."""
    check("nutpie")
    from nutpie.compile_pymc import CompiledPyMCModel
    return CompiledPyMCModel


def shared_data(compiled) -> dict:
    """Shared variable name → value of a compiled nutpie model (its ``_shared_data``)."""
    check("nutpie")
    return compiled._shared_data


def with_coords(compiled, coords: dict, initial_point=None):
    """A compiled nutpie model with other coordinates and, if given, another initial-point
    function (the field is ``initial_point_func`` on ``CompiledPyMCModel`` subclasses,
    ``_make_initial_points`` on ``from_pyfunc`` models)."""
    import dataclasses
    check("nutpie")
    changes = {"_coords": coords}
    if initial_point is not None:
        changes["initial_point_func" if hasattr(compiled, "initial_point_func")
                else "_make_initial_points"] = initial_point
    return dataclasses.replace(compiled, **changes)


def from_pyfunc(**kwargs):
    """``nutpie.compiled_pyfunc.from_pyfunc``."""
    check("nutpie")
    from nutpie.compiled_pyfunc import from_pyfunc as make
    return make(**kwargs)


# -- PyTensor's numba backend ------------------------------------------------------------------
def numba_source_cache() -> dict:
    """PyTensor's ``link.numba.cache.CACHED_SRC_FUNCTIONS`` (python function → cache key, read
    by its cache locator)."""
    check("pytensor")
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS
    return CACHED_SRC_FUNCTIONS


def compile_numba_source(source: str, name: str, cache_key: str):
    """A function compiled from PyTensor-generated ``source`` (with PyTensor's numba globals)
    and its ``numba_njit`` dispatcher, loaded from PyTensor's cache under ``cache_key``."""
    check("pytensor")
    from pytensor.link.numba.cache import compile_numba_function_src
    from pytensor.link.numba.dispatch import basic
    py_func = compile_numba_function_src(
        source, name, global_env=vars(basic) | {"jitable_func": None}, cache_key=cache_key)
    return basic.numba_njit(py_func, final_function=True, cache=True)


# -- numba code generation ---------------------------------------------------------------------
def numba_codegen():
    """(``llvmlite.ir``, ``numba.types``, ``numba.core.cgutils``, ``numba.extending.intrinsic``,
    ``numba.core.errors.TypingError``) for the C-callback trampolines."""
    check("numba")
    from llvmlite import ir
    from numba import types
    from numba.core import cgutils
    from numba.core.errors import TypingError
    from numba.extending import intrinsic
    return ir, types, cgutils, intrinsic, TypingError


def compile_result(dispatcher, signature):
    """numba's compile result of a jitted ``dispatcher`` for the argument types ``signature``
    (loaded from numba's cache, or compiled when not yet in this process)."""
    check("numba")
    cres = dispatcher.overloads.get(signature)
    if cres is None:
        dispatcher.compile(signature)     # from numba's cache when this structure was compiled
        cres = dispatcher.overloads[signature]
    return cres


def c_wrapper_address(cres) -> int:
    """Address of the C wrapper numba compiled next to a function (0 when there is none)."""
    return cres.library.get_pointer_to_function(cres.fndesc.llvm_cfunc_wrapper_name)


__all__ = ["SUPPORTED", "c_wrapper_address", "check", "compile_numba_source", "compile_result", "compiled_model_class", "from_pyfunc",
           "make_functions", "numba_codegen", "numba_source_cache", "prepare_dims_and_coords",
           "rv_dict_to_flat_array_wrapper", "shared_data", "supported", "with_coords"]
