r"""The residual structure R_j of an ``ar()`` / ``cosy()`` model for one subject, as the summary
and the report show it (parameters and the implied correlation matrix).

For the n_j rows of level j of ``gr`` in time order:

    cosy:                 Corr(R_j) = (1 − ρ) I + ρ 1 1ᵀ
    unstr:                Corr(R_j) = C[s_j, s_j], C = ``cortime`` over the T time points (the
                          view shows C itself; :mod:`mixedformula.design.unstr`)
    ar, lmer (nlme's corAR1, stationary):  Corr(R_j)_st = ρ^|s − t|
    ar(p), Bayesian (brms' regression form, ``cov = FALSE``): e = y − η satisfies
        e_n = Σ_k ar[k] e_{n−k} + ε_n with no lags before the first row, i.e. B e = ε,
        B = I − Σ_k ar[k] S^k (S the one-row shift), so R_j = σ² B⁻¹ B⁻ᵀ; its correlation
        matrix (not Toeplitz: the first rows have smaller variance than a stationary AR).
    ar/ma/arma(cov = TRUE), Bayesian: Γ_{|s−t|}/Γ_0 of the stationary ARMA(1, 1) (Toeplitz).
    arma(p, q) / ma(q), Bayesian (brms' regression form): e = y − η = (I + M) B⁻¹ ε with
        M = Σ_k ma[k] S^k (brms' errors err = B⁻¹ε, e = err + M err), R_j = σ² (I + M) B⁻¹ B⁻ᵀ
        (I + M)ᵀ (:mod:`mixedformula.design.autocor`).

The *typical subject* is the level whose number of rows is the median of the levels' counts
(the first such level in the sorted levels). A Bayesian fit shows the posterior mean of the
correlation matrix over the draws, an lmer fit the matrix at ρ̂.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: at most this many time points of R_j are shown (the first ones in time order)
MAX_SHOWN = 12


@dataclass(frozen=True)
class ResidualStructureView:
    """What the summary and the report show of an ar()/cosy() term."""

    structure: str                 # "ar" | "arma" | "cov_arma" | "cosy" | "unstr"
    text: str                      # the term as written, e.g. "ar(time = t, gr = Rat)"
    group: str | None              # the column of gr (None: one series)
    level: str                     # the typical subject
    n_rows: int                    # its number of rows
    parameters: dict               # brms name → estimate (posterior mean, or ρ̂)
    matrix: pd.DataFrame           # implied correlation of its first ≤ MAX_SHOWN rows
    form: str                      # how the matrix follows from the parameters

    def lines(self, digits: int = 2) -> list[str]:
        """Plain-text block: heading and the matrix."""
        who = f"{self.group} = {self.level}" if self.group else "the series"
        pars = ", ".join(f"{k} = {v:.3f}" for k, v in self.parameters.items())
        shown = len(self.matrix)
        more = f", first {shown} shown" if shown < self.n_rows else ""
        out = [f"Implied residual correlation R_j for {who} ({self.n_rows} rows{more}; "
               f"{self.structure}: {pars}; {self.form}):"]
        txt = self.matrix.round(digits).to_string(float_format=lambda v: f"{v:.{digits}f}")
        return out + ["  " + line for line in txt.splitlines()]


def typical_level(codes: np.ndarray, n_levels: int) -> int:
    """The level whose row count is the median of the counts (first in level order)."""
    counts = np.bincount(np.asarray(codes), minlength=n_levels)
    med = np.sort(counts)[(len(counts) - 1) // 2]
    return int(np.nonzero(counts == med)[0][0])


def _shift_sum(coef: np.ndarray, n: int, sign: float) -> np.ndarray:
    """(S, n, n) I + sign · Σ_k coef[:, k-1] S^k."""
    S, p = coef.shape
    B = np.broadcast_to(np.eye(n), (S, n, n)).copy()
    for k in range(1, min(p, n - 1) + 1):
        idx = np.arange(k, n)
        B[:, idx, idx - k] = sign * coef[:, k - 1:k]
    return B


def ar_regression_correlation(ar: np.ndarray, n: int, ma: np.ndarray | None = None
                              ) -> np.ndarray:
    """(S, n, n) correlations of e with B e = ε, B = I − Σ_k ar[k] S^k (``ar`` (S, p)); with
    ``ma`` (S, q) of e = (I + Σ_k ma[k] S^k) B⁻¹ ε (brms' arma())."""
    ar = np.atleast_2d(np.asarray(ar, dtype=float))
    Binv = np.linalg.inv(_shift_sum(ar, n, -1.0))
    if ma is not None:
        Binv = _shift_sum(np.atleast_2d(np.asarray(ma, dtype=float)), n, 1.0) @ Binv
    C = Binv @ np.swapaxes(Binv, 1, 2)
    d = np.sqrt(np.einsum("sii->si", C))
    return C / d[:, :, None] / d[:, None, :]


def cov_arma_correlation(ar: np.ndarray, ma: np.ndarray, n: int) -> np.ndarray:
    """(S, n, n) Γ_{|s−t|}/Γ_0 of a stationary ARMA(1, 1) (brms' cov = TRUE)."""
    from ..design.autocor import arma_autocov
    lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    g = np.array([arma_autocov(a, m, n) for a, m in zip(np.atleast_1d(ar), np.atleast_1d(ma))])
    return (g / g[:, :1])[:, lag]


def stationary_ar1_correlation(rho: float, n: int) -> np.ndarray:
    lag = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    return float(rho) ** lag


def cosy_correlation(rho: np.ndarray, n: int) -> np.ndarray:
    """(S, n, n) compound-symmetric correlations."""
    r = np.atleast_1d(np.asarray(rho, dtype=float))[:, None, None]
    return r + (1.0 - r) * np.eye(n)


def _rows_of_level(structure, level: int) -> np.ndarray:
    """Row indices of ``level`` in time order."""
    rows = structure.order[structure.codes[structure.order] == level]
    return rows


def _time_labels(fit, term, rows: np.ndarray) -> list[str]:
    data = getattr(fit, "data", None)
    design = fit.design
    if term.time is None or data is None:
        return [str(k + 1) for k in range(len(rows))]
    try:
        from ..design import as_pandas
        t = as_pandas(data).loc[design.row_index, term.time].to_numpy()[rows]
    except Exception:      # data without those rows (e.g. a loaded fit): positions
        return [str(k + 1) for k in range(len(rows))]
    return [f"{v:g}" if isinstance(v, (float, np.floating)) else str(v) for v in t]


def residual_structure(fit) -> ResidualStructureView | None:
    """The view of the fit's ar()/cosy() term (Bayesian :class:`Fit` or ``LmerFit``), or None."""
    design = getattr(fit, "design", None)
    s = getattr(design, "autocor", None)
    if s is None or not getattr(design.formula, "autocor", None):
        return None
    term = design.formula.autocor[0]
    if s.kind == "unstr":
        return _unstr_view(fit, s, term)
    level = typical_level(s.codes, len(s.levels))
    rows = _rows_of_level(s, level)
    n = min(len(rows), MAX_SHOWN)
    labels = _time_labels(fit, term, rows)[:n]
    if hasattr(fit, "idata"):                       # Bayesian: posterior means over draws
        from .naming import ar_name, ma_name
        post = fit.idata.posterior
        if s.kind == "cov_arma":
            names = ([ar_name(1)] if s.p else []) + ([ma_name(1)] if s.q else [])
            draws = np.stack([np.asarray(post[v].values).reshape(-1) for v in names], axis=1)
            M = cov_arma_correlation(draws[:, 0] if s.p else 0.0 * draws[:, 0],
                                     draws[:, -1] if s.q else 0.0 * draws[:, 0], n).mean(axis=0)
            form = "brms' covariance form (cov = TRUE), stationary ARMA(1, 1) Γ_h / Γ_0"
        elif s.kind == "arma":
            names = [ar_name(k + 1) for k in range(s.p)] + [ma_name(k + 1) for k in range(s.q)]
            draws = np.stack([np.asarray(post[v].values).reshape(-1) for v in names], axis=1)
            M = ar_regression_correlation(draws[:, :s.p], n, draws[:, s.p:]).mean(axis=0)
            form = ("brms' regression form, e = (I + Σ ma[k] S^k)(I − Σ ar[k] S^k)⁻¹ ε")
        elif s.kind == "ar":
            names = [ar_name(k + 1) for k in range(s.p)]
            draws = np.stack([np.asarray(post[v].values).reshape(-1) for v in names], axis=1)
            M = ar_regression_correlation(draws, n).mean(axis=0)
            form = "brms' regression form, e_n = Σ ar[k] e_{n−k} + ε_n"
        else:
            names = ["cosy"]
            draws = np.asarray(post["cosy"].values).reshape(-1, 1)
            M = cosy_correlation(draws[:, 0], n).mean(axis=0)
            form = "(1 − cosy) I + cosy 11ᵀ"
        pars = {v: float(draws[:, k].mean()) for k, v in enumerate(names)}
        form += "; posterior mean"
    else:                                           # lmer: at the estimate
        rho = float(fit.residual_rho)
        name = fit.residual_corr.parameter_name()
        pars = {name: rho}
        if s.kind == "ar":
            M = stationary_ar1_correlation(rho, n)
            form = "stationary AR(1), ρ^|s − t| (nlme's corAR1)"
        else:
            M = cosy_correlation(rho, n)[0]
            form = "(1 − ρ) I + ρ 11ᵀ (nlme's corCompSymm)"
    matrix = pd.DataFrame(M, index=labels, columns=labels)
    return ResidualStructureView(s.kind, term.text, term.gr, str(s.levels[level]), len(rows),
                                 pars, matrix, form)


def _unstr_view(fit, s, term) -> ResidualStructureView:
    """unstr(): the T × T correlation matrix ``cortime`` itself (a group observed at all
    times has R_j = diag(σ) C diag(σ); one missing times the sub-matrix)."""
    from ..design.unstr import correlation_matrix, cortime_pairs
    from .naming import cortime_name
    T = len(s.times)
    names = [cortime_name(s.times[a], s.times[b]) for a, b in cortime_pairs(T)]
    if hasattr(fit, "idata"):
        post = fit.idata.posterior
        draws = np.stack([np.asarray(post[v].values).reshape(-1) for v in names], axis=1)
        values = draws.mean(axis=0)
        form = "C = cortime, brms' unstr(); posterior mean"
    else:
        values = np.asarray(fit.residual_rho, dtype=float)
        form = "C = cortime at the estimate (nlme's corSymm)"
    n = min(T, MAX_SHOWN)
    M = correlation_matrix(values, T)[:n, :n]
    labels = list(s.times[:n])
    return ResidualStructureView("unstr", term.text, term.gr, f"every level ({len(s.levels)})",
                                 T, dict(zip(names, map(float, values))),
                                 pd.DataFrame(M, index=labels, columns=labels), form)


__all__ = ["MAX_SHOWN", "ResidualStructureView", "ar_regression_correlation",
           "cosy_correlation", "residual_structure", "stationary_ar1_correlation",
           "typical_level"]
