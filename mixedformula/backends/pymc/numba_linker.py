"""PyTensor's NUMBA mode with a compiled graph that releases the GIL while it runs.

nutpie calls the log-density from one thread per chain.  A numba function that keeps the GIL
serialises them: sleepstudy, 4 chains on 2 cores, 34 s of log-density calls in total against
2.8 s with ``nogil=True`` (benchmarks/README.md).  Written by hand because PyTensor's
``NumbaLinker`` has no option for it; the class lives at module level so compiled functions
pickle (the on-disk cache in :mod:`.sampling`).
"""

from __future__ import annotations

from pytensor.compile.mode import Mode, get_mode
from pytensor.link.numba.linker import NumbaLinker


class NogilNumbaLinker(NumbaLinker):
    """``NumbaLinker`` whose final jitted function is compiled with ``nogil=True``."""

    def jit_compile(self, fn_and_cache):
        from pytensor.link.numba.dispatch.basic import numba_njit
        fn, cache_key = fn_and_cache
        return numba_njit(fn.py_func, final_function=True, cache=cache_key is not None,
                          nogil=True)


def nogil_numba_mode() -> Mode:
    return Mode(linker=NogilNumbaLinker(), optimizer=get_mode("NUMBA").provided_optimizer)
