"""Fit, brms-style summaries, VarCorr/fixef/ranef/coef, save/load."""

from .fit import Fit
from .io import load, save
from .summary import Summary
from .varcorr import VarCorr

__all__ = ["Fit", "Summary", "VarCorr", "load", "save"]
