r"""Correlated residuals within groups for REML/ML: brms' ``ar(p = 1)`` and ``cosy()``,
nlme's ``corAR1`` and ``corCompSymm``.

Model: y = Xβ + Zb + ε, ε ~ N(0, σ² R), R block diagonal over the levels j of ``gr`` with
the rows of level j in time order (n_j of them):

    ar:    (R_j)_st = ρ^|s − t|                ρ ∈ (−1, 1)
    cosy:  R_j = (1 − ρ) I + ρ 1 1ᵀ           ρ ∈ (−1/(n_max − 1), 1)

With W a matrix such that Wᵀ W = R⁻¹ (block diagonal like R), the whitened model
W y = W X β + W Z b + W ε has W ε ~ N(0, σ² I): an ordinary mixed model (solved by
:class:`~mixedformula.linalg.dense_pls.DensePLS`; W Z has no longer one level per row), and

    log N(y; Xβ, σ²(R + ZΛΛᵀZᵀ)) = log N(Wy; WXβ, σ²(I + WZΛΛᵀZᵀWᵀ)) − ½ log|R|

(the Jacobian of y → Wy), the REML term log|XᵀV⁻¹X| being the same in both forms. So the
profiled deviance is d(θ, ρ) = d_W(θ) + log|R(ρ)|. W and log|R| in O(n):

    ar (Prais–Winsten): (Wm)_1 = m_1, (Wm)_t = (m_t − ρ m_{t−1}) / √(1 − ρ²) (t ≥ 2);
                        log|R_j| = (n_j − 1) log(1 − ρ²)
    cosy:  W = R^{-1/2} = a (I − P) + c P,  P = 11ᵀ/n_j, a = (1 − ρ)^{-1/2},
           c = (1 + (n_j − 1)ρ)^{-1/2};   log|R_j| = (n_j − 1) log(1 − ρ) + log(1 + (n_j − 1)ρ)

As brms, ``ar`` uses the order of the time points (gaps count as one step): nlme's corAR1 on
the rank of time within the group, not corAR1 on unequally spaced integer times (which nlme
turns into corARMA on the time distances) nor corCAR1 (checked on BodyWeight,
tests/test_bodyweight_nlme.py).
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from ..errors import DataError

KINDS = ("ar", "cosy")


class ResidualCorrelation:
    """R(ρ) of one ``ar()`` / ``cosy()`` term over n rows: ``groups`` (n,) integer codes of gr,
    ``time`` (n,) values ordering the rows inside each group (None: data order)."""

    def __init__(self, kind: str, groups: np.ndarray, time: np.ndarray | None, names=("", "")):
        if kind not in KINDS:
            raise ValueError(kind)
        self.kind = kind
        groups = np.asarray(groups)
        n = len(groups)
        t = np.arange(n, dtype=float) if time is None else np.asarray(time, dtype=float)
        tname, gname = names
        if time is not None:
            if not np.all(np.isfinite(t)):
                raise DataError(f"the time variable {tname!r} of {kind}() has missing values")
            if kind == "ar" and np.any(t != np.round(t)):
                bad = int(np.sum(t != np.round(t)))
                raise DataError(f"the time variable {tname!r} of ar() must be integer "
                                f"(brms); {bad} rows are not")
            key = np.stack([groups, t], axis=1)
            uniq, counts = np.unique(key, axis=0, return_counts=True)
            if np.any(counts > 1):
                dup = uniq[counts > 1]
                raise DataError(f"time points of {kind}() must be unique within each level of "
                                f"{gname or 'the data'}: {int(np.sum(counts[counts > 1]))} rows "
                                f"share {len(dup)} time point(s)")
        self.perm = np.lexsort((t, groups))          # rows grouped, in time order
        g = groups[self.perm]
        self.first = np.concatenate([[True], g[1:] != g[:-1]])
        _, inv, self.sizes = np.unique(g, return_inverse=True, return_counts=True)
        self.inv = inv
        self.n = n

    #: one unconstrained parameter a (the interface :func:`mixedformula.reml` optimises over,
    #: shared with :class:`~.unstr_corr.UnstrCorrelation`)
    n_par = 1

    def start(self) -> np.ndarray:
        """a at ρ = 0."""
        return np.array([self.a_of(0.0)])

    def value(self, a) -> float:
        """ρ from the parameter vector a (length 1)."""
        return self.rho(float(np.asarray(a).ravel()[0]))

    def valid(self, rho: float) -> bool:
        return bool(self.lower < rho < 1.0)

    @property
    def lower(self) -> float:
        """Lower bound of ρ (R positive definite above it)."""
        return -1.0 if self.kind == "ar" else -1.0 / max(1, int(self.sizes.max()) - 1)

    def rho(self, a: float) -> float:
        """ρ from the unconstrained a: tanh (ar), a logistic map onto (lower, 1) (cosy)."""
        if self.kind == "ar":
            return float(np.tanh(a))
        lo = self.lower
        return float(lo + (1.0 - lo) * expit(a))

    def a_of(self, rho: float) -> float:
        if self.kind == "ar":
            return float(np.arctanh(rho))
        lo = self.lower
        x = (rho - lo) / (1.0 - lo)
        return float(np.log(x / (1.0 - x)))

    def logdet(self, rho: float) -> float:
        """log|R(ρ)|."""
        m = self.sizes - 1.0
        if self.kind == "ar":
            return float(np.sum(m) * np.log1p(-rho * rho))
        return float(np.sum(m * np.log1p(-rho) + np.log1p(m * rho)))

    def whiten(self, M: np.ndarray, rho: float) -> np.ndarray:
        """W M for an (n,) or (n, k) array (rows in the data's order)."""
        M = np.asarray(M, dtype=float)
        vec = M.ndim == 1
        A = (M[:, None] if vec else M)[self.perm]
        if self.kind == "ar":
            out = A.copy()
            prev = np.vstack([A[:1], A[:-1]])
            rest = ~self.first
            out[rest] = (A[rest] - rho * prev[rest]) / np.sqrt(1.0 - rho * rho)
        else:
            sums = np.zeros((len(self.sizes), A.shape[1]))
            np.add.at(sums, self.inv, A)
            mean = (sums / self.sizes[:, None])[self.inv]
            a = 1.0 / np.sqrt(1.0 - rho)
            c = 1.0 / np.sqrt(1.0 + (self.sizes[self.inv] - 1.0) * rho)
            out = a * (A - mean) + c[:, None] * mean
        back = np.empty_like(out)
        back[self.perm] = out
        return back[:, 0] if vec else back

    def parameter_name(self) -> str:
        """brms' name: ``ar[1]`` or ``cosy``."""
        return "ar[1]" if self.kind == "ar" else "cosy"


__all__ = ["KINDS", "ResidualCorrelation"]
