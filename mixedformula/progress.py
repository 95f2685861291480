"""What a fit is doing, one line per phase on stderr ("compiling the model ...", "sampling ...").

``fit(progressbar=None)`` (default): phase lines, plus nutpie's / PyMC's own progress bars when
stderr is a terminal or the code runs in a Jupyter kernel; ``progressbar=True``: both;
``progressbar=False`` (the CLI's ``--quiet``): nothing.  A non-interactive log gets the phase
lines only, never a redrawn bar.  The setting is a context variable, so threads and nested
fits see their own.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("mixedformula_progress",
                                                                default=False)


def interactive() -> bool:
    """stderr is a terminal (and not CI), or a Jupyter kernel is running."""
    if "ipykernel" in sys.modules:
        return True
    return bool(getattr(sys.stderr, "isatty", lambda: False)()) and not os.environ.get("CI")


def bars(progressbar: bool | None) -> bool:
    """Whether the sampler draws its own progress bar."""
    return interactive() if progressbar is None else bool(progressbar)


@contextlib.contextmanager
def phases(progressbar: bool | None):
    """Phase lines on (``progressbar`` None or True) or off (False) inside the block."""
    token = _ENABLED.set(progressbar is not False)
    try:
        yield
    finally:
        _ENABLED.reset(token)


def phase(message: str) -> None:
    """One line on stderr when phases are on."""
    if _ENABLED.get():
        print(f"{message}...", file=sys.stderr, flush=True)


def with_phases(method):
    """Decorator of ``fit(..., progressbar=...)`` methods: phase lines per its ``progressbar``."""
    import functools
    import inspect
    sig = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        bound = sig.bind(*args, **kwargs)
        with phases(bound.arguments.get("progressbar")):
            return method(*args, **kwargs)
    return wrapper
