"""ArviZ's numba code kept off the path to a summary (issue 21: a fit's first seconds).

ArviZ 0.2x compiles numba code that a fit never needs, in every process (none of it is
cached on disk):

* importing ``arviz`` (which PyMC does) compiles the typed ufunc ``_binom_pmf`` of
  ``arviz.stats.ecdf_utils`` (a helper of ``plot_ecdf``'s confidence bands): 1.8 s of CPU
  per process on this project's machine;
* the first ``az.rhat`` jit-compiles its variance helper (~1 s) for arrays of a few
  thousand draws, where NumPy's ``var`` is as fast.

:func:`install` (called when :mod:`mixedformula` is imported) drops the signature list of
the ``numba.vectorize`` calls of that one module while it is imported: the ufunc becomes a
``DUFunc`` that numba compiles for the types of its first call (the same int64/float64 loop,
also when arviz's jitted band function calls it), so ``plot_ecdf`` still runs on numba and no
other module's ``vectorize`` changes.  :func:`numpy_diagnostics` runs ArviZ's diagnostics on
their NumPy path (``arviz.Numba``'s public switch, restored afterwards; rhat's variances are
the same formula in NumPy).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import sys

#: the arviz modules whose ``numba.vectorize`` runs at import
DEFERRED_MODULES = ("arviz.stats.ecdf_utils",)


def _untyped_vectorize(vectorize):
    """``numba.vectorize`` with the eager signature list dropped: a ``DUFunc``, which numba
    compiles for the argument types of its first call (also when a jitted function calls it)
    instead of at decoration."""
    def untyped(*args, **kwargs):
        if len(args) == 1 and callable(args[0]) and not kwargs:       # @vectorize
            return vectorize(args[0])
        if args and not callable(args[0]):
            args = args[1:]                 # the signatures
        kwargs.pop("signatures", None)
        return vectorize(*args, **kwargs)
    return untyped


class _DeferringLoader(importlib.abc.Loader):
    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        try:
            import numba
        except ImportError:         # arviz falls back to plain functions itself
            return self._loader.exec_module(module)
        original = numba.vectorize
        numba.vectorize = _untyped_vectorize(original)
        try:
            self._loader.exec_module(module)
        finally:
            numba.vectorize = original


class _DeferringFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name not in DEFERRED_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _DeferringLoader(spec.loader)
        return spec


def install() -> None:
    """Defer arviz's import-time numba compiles (once per process; a no-op when arviz is
    already imported)."""
    if not any(isinstance(f, _DeferringFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferringFinder())


@contextlib.contextmanager
def numpy_diagnostics():
    """ArviZ's rhat/ess on NumPy inside the block (``arviz.Numba.numba_flag``), restored
    afterwards."""
    from arviz.utils import Numba
    before = Numba.numba_flag
    Numba.numba_flag = False
    try:
        yield
    finally:
        Numba.numba_flag = before
