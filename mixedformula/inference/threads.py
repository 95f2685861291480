"""Thread limits for the small dense problems of inference (profiles, bootstrap refits)."""

from __future__ import annotations

import contextlib


def one_blas_thread():
    """One BLAS thread: the problems are tiny and OpenBLAS' threads cost more than they give
    (L-BFGS-B's setulb took 6 ms per call with threads on a loaded 2-core machine, against
    well under 1 ms on one)."""
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1, "blas")
    except Exception:       # threadpoolctl missing or failing: run as is
        return contextlib.nullcontext()
