r"""Known covariance across the levels of a grouping factor: ``(1 | gr(g, cov = A))`` (brms).

The effects of a term with q coefficients over the J levels of g are correlated across levels
by a known J × J matrix A (a phylogenetic or kinship matrix) passed as ``data2={"A": A}``:

    vec(u) ~ N(0, A ⊗ Σ),   u (J, q) level-major (row j = level j's q coefficients),

i.e. Cov(u_{j c}, u_{j' c'}) = A_{j j'} Σ_{c c'}; with q = 1, u ~ N(0, sd² A) (brms'
``sd_g__Intercept``). With L_A the lower Cholesky factor of A (A = L_A L_Aᵀ) and Σ = T Tᵀ,

    u = L_A z Tᵀ,   z (J, q) iid N(0, 1)

has exactly this covariance (vec_row(L_A z Tᵀ) = (L_A ⊗ T) vec_row(z)); the PyMC backend draws
u this way (non-centred), and REML uses Z* = Z (L_A ⊗ I_q) with the ordinary Λ(θ) of T
(:mod:`mixedformula.linalg.dense_pls`), as lme4-based phylogenetic packages do.

A is given as a DataFrame whose index and columns are the levels (or a 2-D array with
``levels`` in a dict ``{"A": (array, levels)}``). Checks (brms' ``validate_recov_matrix``):
square, finite, symmetric (relative tolerance 1e-8), positive definite, named by levels; the
levels of g in the data must all be in A, and — unlike brms, which silently drops them —
levels of A that are not in the data are an error naming them (subset A to the data's
levels: the marginal of N(0, A) on a subset of levels is the submatrix). L_A is computed once,
in the order of the grouping factor's (sorted) levels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError

#: relative tolerance of the symmetry check, |A - Aᵀ| <= tol · max|A|
SYMMETRY_TOL = 1e-8


def known_matrix(name: str, data2) -> tuple[np.ndarray, list[str]]:
    """(A as a float array, its level names) from ``data2[name]``."""
    if data2 is None or name not in data2:
        have = ", ".join(map(repr, data2)) if data2 else "none"
        raise DataError(f"gr(cov = {name}) needs the matrix {name!r} in data2 "
                        f"(data2={{{name!r}: A}}); data2 has {have}")
    value = data2[name]
    if isinstance(value, pd.DataFrame):
        rows = [str(v) for v in value.index]
        cols = [str(v) for v in value.columns]
        if rows != cols:
            if sorted(rows) == sorted(cols) and len(set(rows)) == len(rows):
                value = value.loc[value.index, [value.columns[cols.index(r)] for r in rows]]
            else:
                raise DataError(f"the index and the columns of {name!r} must name the same "
                                f"levels in the same order")
        M, levels = value.to_numpy(dtype=float), rows
    elif isinstance(value, tuple) and len(value) == 2:
        M, levels = np.asarray(value[0], dtype=float), [str(v) for v in value[1]]
    else:
        raise DataError(f"data2[{name!r}] must be a DataFrame whose index and columns are the "
                        f"levels, or a tuple (array, level names)")
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise DataError(f"{name!r} must be a square matrix, not of shape {M.shape}")
    if len(levels) != M.shape[0]:
        raise DataError(f"{name!r} is {M.shape[0]} x {M.shape[0]} but has {len(levels)} level "
                        f"names")
    if len(set(levels)) != len(levels):
        dup = sorted({v for v in levels if levels.count(v) > 1})
        raise DataError(f"{name!r} names level(s) {', '.join(dup[:10])} twice")
    if not np.all(np.isfinite(M)):
        raise DataError(f"{name!r} has {int((~np.isfinite(M)).sum())} missing or infinite "
                        f"entries")
    return M, levels


def known_cov_factor(name: str, data2, levels: list[str], group: str) -> np.ndarray:
    """The lower Cholesky factor L_A (J, J) of ``data2[name]`` in the order of ``levels``
    (the grouping factor's levels in the data), after the checks of the module docstring."""
    M, names = known_matrix(name, data2)
    levels = [str(v) for v in levels]
    missing = [v for v in levels if v not in set(names)]
    if missing:
        raise DataError(f"{len(missing)} level(s) of {group} are not in the covariance matrix "
                        f"{name!r}: {', '.join(missing[:10])}{', ...' if len(missing) > 10 else ''}")
    extra = [v for v in names if v not in set(levels)]
    if extra:
        raise DataError(f"the covariance matrix {name!r} has {len(extra)} level(s) that {group} "
                        f"does not have in the data: {', '.join(extra[:10])}"
                        f"{', ...' if len(extra) > 10 else ''}; subset it to the data's levels "
                        f"(A.loc[levels, levels])")
    scale = float(np.max(np.abs(M))) or 1.0
    asym = float(np.max(np.abs(M - M.T)))
    if asym > SYMMETRY_TOL * scale:
        raise DataError(f"the covariance matrix {name!r} is not symmetric "
                        f"(max |A - A'| = {asym:.3g})")
    pos = pd.Index(names).get_indexer(levels)
    S = 0.5 * (M + M.T)[np.ix_(pos, pos)]
    ev = float(np.linalg.eigvalsh(S)[0])
    if not ev > 0:
        raise DataError(f"the covariance matrix {name!r} is not positive definite (smallest "
                        f"eigenvalue {ev:.3g})")
    return np.linalg.cholesky(S)


def attach_known_covariances(design, data2) -> None:
    """Set ``cov_factor`` on each group term of ``design`` written ``gr(g, cov = A)``, and
    remember the factors in ``design.spec`` (new data reuse them) and the matrices read,
    ``design.spec.known_matrices`` = {name: (A, level names)} (what a saved fit stores). Without
    such terms, data2 is not needed (and not read)."""
    factors, used = [], {}
    for t in design.terms:
        L = None
        if t.term.cov is not None:
            if t.term.by is not None:
                raise DataError(f"gr({t.name}, by = ..., cov = ...) is not supported: a known "
                                f"covariance across levels with one covariance per by-level")
            L = known_cov_factor(t.term.cov, data2, t.levels, t.name)
            used[t.term.cov] = known_matrix(t.term.cov, data2)
        t.cov_factor = L
        factors.append(L)
    design.spec.cov_factors = factors
    design.spec.known_matrices = used


__all__ = ["attach_known_covariances", "known_cov_factor", "known_matrix"]
