"""Sampling settings shared by the example scripts.

Defaults are brms' (4 chains × 1000 draws after 1000 warmup). The test suite runs every example
with small numbers through environment variables:

    MIXEDFORMULA_EXAMPLE_DRAWS=200 MIXEDFORMULA_EXAMPLE_CHAINS=2 python examples/sleepstudy.py
"""

import os


def sampling() -> dict:
    draws = int(os.environ.get("MIXEDFORMULA_EXAMPLE_DRAWS", "1000"))
    chains = int(os.environ.get("MIXEDFORMULA_EXAMPLE_CHAINS", "4"))
    return {"draws": draws, "tune": draws, "chains": chains, "seed": 1}


def report_path(name: str) -> str | None:
    """Where to write the example's HTML report (MIXEDFORMULA_EXAMPLE_REPORTS=dir), or None."""
    directory = os.environ.get("MIXEDFORMULA_EXAMPLE_REPORTS")
    return os.path.join(directory, f"{name}.html") if directory else None
