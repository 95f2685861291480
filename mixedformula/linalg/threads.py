"""One BLAS thread for the small dense problems of lmer, glmer and their inference (PLS and
PIRLS steps, profiles, bootstrap refits): OpenBLAS' threads cost far more than they give there."""

from __future__ import annotations

import contextlib
import os

#: columns of the dense Schur block (crossed factors after the first) from which lmer's
#: factorisations use every core: potrf + potri of 3706² (MovieLens-1M's movies) took 0.74 s
#: on two threads against 1.29 s on one on an idle 2-core machine, while at InstEval's 1142²
#: two threads made the whole fit slower (2.7–3.1 s against 1.8–2.0 s: thread hand-offs on
#: ~10 ms calls); benchmarks/README.md
LARGE_DENSE = 2500


def one_blas_thread(limit: bool = True):
    """One BLAS thread: the problems are tiny and OpenBLAS' threads cost more than they give
    (L-BFGS-B's setulb took 6 ms per call with threads on a loaded 2-core machine, against
    well under 1 ms on one; a 63 × 118 product in glmer: 2.3 ms threaded, 0.02 ms on one).
    ``limit=False``: no limit (a null context)."""
    return _blas_threads(1) if limit else contextlib.nullcontext()


def dense_blas_threads(columns: int):
    """Every core's BLAS threads (inside an outer :func:`one_blas_thread`) when the dense block
    factorised per evaluation has at least :data:`LARGE_DENSE` columns; otherwise a null
    context (the outer limit stays)."""
    if columns < LARGE_DENSE:
        return contextlib.nullcontext()
    return _blas_threads(len(os.sched_getaffinity(0)))


def _blas_threads(n: int):
    """threadpoolctl's limit of the BLAS pools to ``n`` threads; a null context when
    threadpoolctl is missing or fails (run as is)."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(n, "blas")
    except Exception:
        return contextlib.nullcontext()
