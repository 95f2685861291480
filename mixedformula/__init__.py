"""mixedformula: one lme4/brms-style formula → a Bayesian mixed model in PyMC, reported like brms.

Public API only; heavy modules (PyMC) are imported on first use so that ``parse`` and
``design_matrices`` stay fast to import.
"""

from __future__ import annotations

import warnings
from importlib import import_module

from . import arviz_numba as _arviz_numba
from .errors import (ConvergenceWarning, DataError, FamilyError, FormulaError,
                     MixedFormulaError, PriorError)
from .formula import FormulaSpec, bf, parse

__version__ = "0.1.0"

# ArviZ prints a once-a-day FutureWarning banner about its coming refactor when it is first
# imported, which our fits do (PyMC imports it); it says nothing about the user's model.
warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor",
                        category=FutureWarning)
# ... and compiles numba code at import that a fit never runs (mixedformula/arviz_numba.py)
_arviz_numba.install()

_LAZY = {
    "design_matrices": ("mixedformula.design", "design_matrices"),
    "Design": ("mixedformula.design", "Design"),
    "DesignSpec": ("mixedformula.design", "DesignSpec"),
    "datasets": ("mixedformula.datasets", None),
    "Model": ("mixedformula.model", "Model"),
    "fit": ("mixedformula.model", "fit"),
    "prior": ("mixedformula.priors", "prior"),
    "Fit": ("mixedformula.results.fit", "Fit"),
    "save": ("mixedformula.results.io", "save"),
    "load": ("mixedformula.results.io", "load"),
    "lmer": ("mixedformula.reml", "lmer"),
    "glmer": ("mixedformula.glmm", "glmer"),
    "anova": ("mixedformula.inference.anova", "anova"),
    # the module is simulation.py, not simulate.py: importing a submodule named like a lazy
    # attribute (e.g. `from mixedformula.simulate import ...`) would rebind mf.simulate to it
    "simulate": ("mixedformula.simulation", "simulate"),
    "recovery_check": ("mixedformula.recovery", "recovery_check"),
    "compare": ("mixedformula.results.loo", "compare"),
    "get_family": ("mixedformula.families", "get_family"),
    # brms' family calls: mf.families.categorical(refcat = "C")
    "families": ("mixedformula.families", None),
}

__all__ = ["ConvergenceWarning", "DataError", "FamilyError", "FormulaError", "FormulaSpec", "MixedFormulaError",
           "PriorError", "bf", "parse", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = import_module(module)
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mixedformula' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
