"""Example data bundled with mixedformula (as shipped with lme4).

* ``sleepstudy``: Reaction (ms) by Days of sleep deprivation for 18 Subjects (180 rows).
* ``dyestuff``: Yield of dyestuff by Batch (6 batches × 5, 30 rows).
"""

from __future__ import annotations

from importlib import resources

import pandas as pd

_CATEGORICAL = {"sleepstudy": ["Subject"], "dyestuff": ["Batch"]}


def names() -> list[str]:
    return sorted(_CATEGORICAL)


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set by name; grouping columns are read as strings."""
    if name not in _CATEGORICAL:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(names())}")
    with resources.files(__package__).joinpath(f"{name}.csv").open("r") as fh:
        return pd.read_csv(fh, dtype={c: str for c in _CATEGORICAL[name]})
