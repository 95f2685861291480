r"""ANOVA tables of lmer fits: F-tests of fixed-effect terms (lmerTest's ``anova``) and
likelihood-ratio tests of nested models (lme4's ``anova(m0, m1, ...)``).

F-tables: per term the hypothesis Lβ = 0 with the contrasts of :mod:`.contrasts` (type I, II
or III), tested with Satterthwaite's (:meth:`.satterthwaite.Satterthwaite.ftest`) or Kenward–
Roger's (:meth:`.kenward_roger.KenwardRoger.ftest`) denominator df; columns ``Sum Sq``,
``Mean Sq`` (= F σ̂², before the KR scaling), ``NumDF``, ``DenDF``, ``F value``, ``Pr(>F)``.

Likelihood-ratio tests: REML fits are first refitted by ML (message "refitting model(s) with
ML (instead of REML)"), the models ordered by their number of parameters k (npar), and each
compared with the one before: χ² = 2 max(0, ℓ_i − ℓ_{i−1}) on k_i − k_{i−1} df;
AIC = −2ℓ + 2k, BIC = −2ℓ + k log n.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .coef_table import ddf_method, method_name, tester
from .contrasts import type1, type2, type3

_F_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


def anova(fit, *others, type=3, ddf: str = "satterthwaite", names=None,
          refit: bool = True) -> pd.DataFrame:
    """``mf.anova(fit, type=3, ddf="satterthwaite")``: lmerTest's F-table of the fixed terms;
    ``mf.anova(m0, m1, ...)``: lme4's likelihood-ratio table (``names`` label the rows,
    default ``m1``, ``m2``, … in the order given)."""
    if others:
        return lrt([fit, *others], names=names, refit=refit)
    return ftable(fit, type=type, ddf=ddf)


def ftable(fit, type=3, ddf: str = "satterthwaite") -> pd.DataFrame:
    kind = {"3": 3, "III": 3, "2": 2, "II": 2, "1": 1, "I": 1}.get(str(type).upper())
    if kind is None:
        raise ValueError(f"type must be 1 (I), 2 (II) or 3 (III), not {type!r}")
    if hasattr(fit, "need_rows"):
        fit.need_rows("the F-tests' contrasts (built from the model matrix)")
    method = ddf_method(ddf)
    if method == "none":
        raise ValueError("anova F-tests need ddf='satterthwaite' or 'kenward-roger'")
    Ls = {1: type1, 2: type2, 3: type3}[kind](fit)
    t = tester(fit, method)
    rows = {lab: (t.ftest(L) if L.shape[0] else dict.fromkeys(_F_COLUMNS, np.nan))
            for lab, L in Ls.items()}
    out = pd.DataFrame.from_dict(rows, orient="index")[_F_COLUMNS]
    out.index = pd.Index(list(out.index), dtype=object)
    out["NumDF"] = out["NumDF"].astype(int)
    out.attrs["heading"] = (f"Type {'I' * kind} Analysis of Variance Table "
                            f"with {method_name(method)} method")
    return out


def refit_ml(fit):
    """The same model fitted by ML (lme4's ``refitML``), started at the REML θ."""
    return fit if not fit.reml else fit.refit(reml=False)


def lrt(fits, names=None, refit: bool = True) -> pd.DataFrame:
    names = list(names) if names is not None else [f"m{i + 1}" for i in range(len(fits))]
    if len(names) != len(fits):
        raise ValueError(f"{len(names)} names for {len(fits)} models")
    nobs = {f.nobs for f in fits}
    if len(nobs) > 1:
        raise ValueError(f"models were not all fitted to the same size of dataset "
                         f"({', '.join(str(f.nobs) for f in fits)} observations)")
    if refit and any(f.reml for f in fits):
        warnings.warn("refitting model(s) with ML (instead of REML)", UserWarning,
                      stacklevel=3)
        fits = [refit_ml(f) for f in fits]
    order = sorted(range(len(fits)), key=lambda i: fits[i].n_params)
    fits = [fits[i] for i in order]
    names = [names[i] for i in order]
    k = np.array([f.n_params for f in fits], dtype=float)
    ll = np.array([f.logLik for f in fits])
    n = fits[0].nobs
    chisq = np.r_[np.nan, 2 * np.maximum(0, np.diff(ll))]
    dfc = np.r_[np.nan, np.diff(k)]
    with np.errstate(invalid="ignore"):
        p = stats.chi2.sf(chisq, dfc)
    return pd.DataFrame({"npar": k.astype(int), "AIC": -2 * ll + 2 * k,
                         "BIC": -2 * ll + math.log(n) * k, "logLik": ll, "deviance": -2 * ll,
                         "Chisq": chisq, "Df": dfc, "Pr(>Chisq)": p},
                        index=pd.Index(names, dtype=object))
