r"""brms' ``unstr(time, gr)``: an unstructured residual correlation over discrete time points.

The distinct values of ``time`` (factor levels in their order, or the sorted distinct numbers /
strings, as brms' ``extract_levels``; levels without rows are dropped) are t_1 … t_T. Within
each level j of ``gr`` the rows, in time order, are at the times s_j ⊂ {1..T} (a group may miss
time points; a repeated time within a group is an error, as in brms), and

    y_j ~ N(μ_j, Σ_j),   Σ_j = diag(σ_j) C[s_j, s_j] diag(σ_j),

C the T × T correlation matrix ``cortime`` (brms: ``Lcortime ~ lkj_corr_cholesky(1)``, reported
as ``cortime__<t_a>__<t_b>`` for a < b), σ_j the family's sigma of the rows (one value, or per
row with a ``sigma ~ …`` formula: ``sigma ~ 0 + factor(time)`` makes the covariance fully
unstructured). This is brms' ``normal_time_hom_flex_lpdf`` / ``_het_flex_lpdf``; the student
family is brms' ``student_t_time_*_flex_lpdf``, a multivariate t per group with that scale
matrix.

Groups are grouped by their time *pattern* s: the log-density needs one factor
C[s, s] = L_s L_sᵀ per pattern, shared by all its groups. With z_j = L_s⁻¹((y_j − μ_j)/σ_j),

    log N = −½‖z_j‖² − Σ log σ_j − Σ_k log L_s[k, k] − (n_s/2) log 2π.

The sampler's graph holds one unrolled factor per pattern (about n_s³/6 + n_s² scalar
operations each), so T is limited to :data:`MAX_TIMES` and the number of patterns to
:data:`MAX_PATTERNS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError

#: unstr() estimates T(T − 1)/2 correlations: refused for more distinct time points
MAX_TIMES = 10
#: one Cholesky factor per distinct pattern of observed times in the compiled model
MAX_PATTERNS = 32


def unstr_times(term, df: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """(index of each row's time among the T distinct times, their labels)."""
    col = df[term.time]
    if isinstance(col.dtype, pd.CategoricalDtype):
        used = [c for c in col.cat.categories if (col == c).any()]
        labels = [str(c) for c in used]
        tidx = pd.Categorical(col, categories=used).codes.astype(np.int64)
    elif pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
        v = col.to_numpy(dtype=float)
        if not np.all(np.isfinite(v)) or np.any(v != np.round(v)):
            bad = int(np.sum(~np.isfinite(v) | (v != np.round(v))))
            raise DataError(f"the time variable {term.time!r} of {term.text} must be a factor "
                            f"or whole numbers (discrete time points); {bad} row(s) are not")
        uniq, tidx = np.unique(v.astype(np.int64), return_inverse=True)
        labels = [str(int(u)) for u in uniq]
    elif pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col):
        uniq, tidx = np.unique(col.astype(str).to_numpy(), return_inverse=True)
        labels = [str(u) for u in uniq]
    else:
        raise DataError(f"the time variable {term.time!r} of {term.text} must be a factor or "
                        f"whole numbers; it has type {col.dtype}")
    if len(labels) > MAX_TIMES:
        raise DataError(f"{term.text}: the time variable {term.time!r} has {len(labels)} "
                        f"distinct values; unstr() estimates a T x T correlation matrix "
                        f"(T(T - 1)/2 parameters) and is limited to T <= {MAX_TIMES} time "
                        f"points (use ar() or cosy() for long series)")
    return np.asarray(tidx, dtype=np.int64).ravel(), labels


@dataclass(frozen=True)
class TimePattern:
    """The groups observed at the same times ``times`` (indices into the T time points)."""

    times: tuple[int, ...]
    groups: np.ndarray        # (G_s,) group codes
    rows: np.ndarray          # (G_s, n_s) row indices, in time order


def time_patterns(structure) -> list[TimePattern]:
    """The distinct observed-time patterns of an unstr() structure (sorted by the times)."""
    order, codes, tidx = structure.order, structure.codes, structure.tidx
    G = len(structure.levels)
    sc = codes[order]
    bounds = np.r_[0, np.nonzero(sc[1:] != sc[:-1])[0] + 1, len(order)]
    per_group: dict = {}
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = order[a:b]
        per_group.setdefault(tuple(int(t) for t in tidx[rows]), []).append(
            (int(codes[rows[0]]), rows))
    if len(per_group) > MAX_PATTERNS:
        raise DataError(f"{structure.text}: the {G} groups are observed at "
                        f"{len(per_group)} different sets of time points; unstr() factors one "
                        f"correlation sub-matrix per set and is limited to {MAX_PATTERNS} sets")
    return [TimePattern(times=k, groups=np.array([g for g, _ in v], dtype=np.int64),
                        rows=np.stack([r for _, r in v]).astype(np.int64))
            for k, v in sorted(per_group.items())]


def cortime_pairs(T: int) -> list[tuple[int, int]]:
    """(a, b), a < b, in brms' order of ``cortime__<t_a>__<t_b>`` (b outer, a inner: the
    upper triangle column by column, brms' ``get_cornames``)."""
    return [(a, b) for b in range(1, T) for a in range(b)]


def correlation_matrix(values: np.ndarray, T: int) -> np.ndarray:
    """(..., T, T) correlation matrices from (..., T(T − 1)/2) values in brms' order."""
    values = np.asarray(values, dtype=float)
    out = np.broadcast_to(np.eye(T), values.shape[:-1] + (T, T)).copy()
    for k, (a, b) in enumerate(cortime_pairs(T)):
        out[..., a, b] = out[..., b, a] = values[..., k]
    return out


def group_logdensity_numpy(resid: np.ndarray, sigma: np.ndarray, C: np.ndarray,
                           patterns, nu: float | None = None) -> np.ndarray:
    """(G,) log-density of each group's residuals ``resid`` (n,) with row scales ``sigma``
    (n,) and correlation C (T, T): normal, or with ``nu`` the multivariate t (the reference
    transcription of the module docstring)."""
    from scipy.special import gammaln
    G = sum(len(p.groups) for p in patterns)
    out = np.empty(G)
    for p in patterns:
        L = np.linalg.cholesky(C[np.ix_(p.times, p.times)])
        e = resid[p.rows] / sigma[p.rows]                              # (G_s, n_s)
        z = np.linalg.solve(L, e.T).T
        n = len(p.times)
        logdet = np.sum(np.log(np.diag(L))) + np.sum(np.log(sigma[p.rows]), axis=1)
        quad = np.sum(z * z, axis=1)
        if nu is None:
            lp = -0.5 * quad - logdet - 0.5 * n * np.log(2 * np.pi)
        else:
            lp = (gammaln(0.5 * (nu + n)) - gammaln(0.5 * nu) - 0.5 * n * np.log(nu * np.pi)
                  - logdet - 0.5 * (nu + n) * np.log1p(quad / nu))
        out[p.groups] = lp
    return out


__all__ = ["MAX_PATTERNS", "MAX_TIMES", "TimePattern", "correlation_matrix",
           "cortime_pairs", "group_logdensity_numpy", "time_patterns", "unstr_times"]
