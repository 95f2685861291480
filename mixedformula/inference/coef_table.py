"""lmerTest's coefficient table (``summary(fit, ddf = ...)$coefficients``) and its print.

Each row is the t-test of one fixed coefficient (contrast eⱼ) with Satterthwaite's
(:mod:`.satterthwaite`) or Kenward–Roger's (:mod:`.kenward_roger`, adjusted standard error)
denominator degrees of freedom; ``"none"`` is lme4's table without df and p-values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_METHODS = {"satterthwaite": "satterthwaite", "kenward-roger": "kenward-roger",
            "kenward_roger": "kenward-roger", "kr": "kenward-roger", "none": "none",
            "lme4": "none"}


def ddf_method(ddf: str) -> str:
    """Normalise a ddf name ("Satterthwaite", "Kenward-Roger", "KR", "none", "lme4")."""
    key = str(ddf).lower()
    if key not in _METHODS:
        raise ValueError(f"ddf must be 'satterthwaite', 'kenward-roger' or 'none', not {ddf!r}")
    return _METHODS[key]


def method_name(ddf: str) -> str:
    return {"satterthwaite": "Satterthwaite's",
            "kenward-roger": "Kenward-Roger's"}.get(ddf_method(ddf), "no")


def tester(fit, ddf: str):
    """The (cached) Satterthwaite or KenwardRoger object of a fit."""
    method = ddf_method(ddf)
    cache = fit._cache
    if method not in cache:
        from ..linalg.threads import one_blas_thread
        if method == "satterthwaite":
            from .satterthwaite import Satterthwaite
            with one_blas_thread():
                cache[method] = Satterthwaite(fit)
        elif method == "kenward-roger":
            from .kenward_roger import KenwardRoger
            cache[method] = KenwardRoger(fit)      # dense n × n products: BLAS threads help
        else:
            raise ValueError("ddf='none' has no degrees of freedom")
    return cache[method]


def coef_table(fit, ddf: str = "satterthwaite") -> pd.DataFrame:
    """Estimate, Std. Error, df, t value, Pr(>|t|) per fixed coefficient (lme4 names)."""
    method = ddf_method(ddf)
    if method == "none":
        return fit.fixef()
    t = tester(fit, method)
    p = len(fit.beta)
    rows = [t.ttest(np.eye(p)[j]) for j in range(p)]
    cols = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    return pd.DataFrame({c: [r[c] for r in rows] for c in cols},
                        index=pd.Index(fit.fixef_names, dtype=object))


def format_pval(p: float, digits: int = 3, eps: float = 2e-16) -> str:
    """R's ``format.pval``: ``< 2e-16`` below eps, else ``digits`` significant digits."""
    if not np.isfinite(p):
        return "NA"
    if p < eps:
        return "< 2e-16"
    s = f"{p:.{digits}g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{'-' if int(exp) < 0 else '+'}{abs(int(exp)):02d}"
    return s


def stars(p: float) -> str:
    if not np.isfinite(p):
        return ""
    for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return s
    return " "


def format_coef_table(tab: pd.DataFrame, r_format, pcol: str = "Pr(>|t|)",
                      digits: int = 4) -> list[str]:
    """Lines like R's ``printCoefmat(digits = 4)`` as lmerTest's summary prints them:
    Estimate and Std. Error rounded together to max(1, digits − digmin) decimals (digmin = 1 +
    ⌊log₁₀|x|⌋ of the smallest and largest), the test columns (df, t value) rounded to
    digits − 1 decimals and formatted together, p-values by ``format.pval`` with signif.
    stars. ``r_format(values, digits)`` formats a numeric vector like R's ``format``."""
    import math
    cs = [c for c in ("Estimate", "Std. Error") if c in tab.columns]
    tst = [c for c in ("df", "t value") if c in tab.columns]
    n = len(tab)
    cells = {}
    if cs:
        x = tab[cs].to_numpy(dtype=float)
        a = np.abs(x[np.isfinite(x) & (x != 0)])
        dec = 1
        if a.size:
            digmin = [1 + math.floor(math.log10(v)) for v in (a.min(), a.max())]
            dec = max(1, *(digits - d for d in digmin))
        f = r_format(np.round(x.T.ravel(), dec), digits)
        for k, c in enumerate(cs):
            cells[c] = f[k * n:(k + 1) * n]
    if tst:
        x = tab[tst].to_numpy(dtype=float)
        f = r_format(np.round(x.T.ravel(), max(1, min(5, digits - 1))), digits)
        for k, c in enumerate(tst):
            cells[c] = f[k * n:(k + 1) * n]
    cols = [("", [str(i) for i in tab.index], "l")]
    for c in tab.columns:
        if c == pcol:
            cols.append((c, [format_pval(v) for v in tab[c]], "r"))
            cols.append(("", [stars(v) for v in tab[c]], "l"))
        else:
            cols.append((c, cells.get(c) or r_format(tab[c].to_numpy(dtype=float), digits),
                         "r"))
    widths = [max([len(h)] + [len(x) for x in cc]) for h, cc, _ in cols]
    lines = [" ".join((h.ljust(w) if a == "l" else h.rjust(w))
                      for (h, _, a), w in zip(cols, widths)).rstrip()]
    for i in range(n):
        lines.append(" ".join((c[i].ljust(w) if a == "l" else c[i].rjust(w))
                              for (_, c, a), w in zip(cols, widths)).rstrip())
    lines.append("---")
    lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    return lines
