"""One BLAS thread for the small dense problems of lmer, glmer and their inference (PLS and
PIRLS steps, profiles, bootstrap refits): OpenBLAS' threads cost far more than they give there."""

from __future__ import annotations

import contextlib


def one_blas_thread(limit: bool = True):
    """One BLAS thread: the problems are tiny and OpenBLAS' threads cost more than they give
    (L-BFGS-B's setulb took 6 ms per call with threads on a loaded 2-core machine, against
    well under 1 ms on one; a 63 × 118 product in glmer: 2.3 ms threaded, 0.02 ms on one).
    ``limit=False``: no limit (a null context)."""
    if not limit:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
        return threadpool_limits(1, "blas")
    except Exception:       # threadpoolctl missing or failing: run as is
        return contextlib.nullcontext()
