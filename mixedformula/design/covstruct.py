r"""Structured covariance matrices of group effects, glmmTMB's syntax and definitions.

``struct(lhs | g)`` gives the Q coefficients of ``lhs`` (typically ``0 + f``, one per level of
a factor f such as a time point) a Q × Q covariance Σ per level of g of the form

=========  ==========================================================  ======================
``us``     unstructured (the same as ``(lhs | g)``)                    Q sds + Q(Q−1)/2 cors
``diag``   Σ = diag(s₁², …, s_Q²) (the same as ``(lhs || g)``)          Q sds
``cs``     Σ_ij = s_i s_j (ρ + (1 − ρ) δ_ij), ρ ∈ (−1/(Q−1), 1)         Q sds + ρ
``ar1``    Σ_ij = s² ρ^|i−j|, ρ ∈ (−1, 1)                               1 sd + ρ
``toep``   Σ_ij = s_i s_j ρ_|i−j| (ρ₀ = 1), Toeplitz correlations       Q sds + Q − 1 cors
=========  ==========================================================  ======================

exactly as glmmTMB defines them (its ``cs`` and ``toep`` have heterogeneous sds, its ``ar1`` one
sd; coefficient i is the i-th column of ``lhs``, so ``ar1`` assumes equally spaced, ordered
levels of f). Unconstrained parameters φ (what the optimiser of :func:`mixedformula.lmer` moves):
log s, and for ``ar1`` ρ = tanh(a); for ``cs`` ρ = −1/(Q−1) + (1 + 1/(Q−1)) · logistic(a); for
``toep`` the partial autocorrelations π_k = tanh(a_k), k = 1…Q−1, mapped to ρ_k by the
Durbin–Levinson recursion, so every φ gives a positive definite Toeplitz correlation matrix.
In REML/ML the sds are relative to the residual sd σ (Σ/σ² = T Tᵀ, T its Cholesky factor: the
block's Λ template of :mod:`mixedformula.linalg.lambda_factor`), σ profiled out as usual.
"""

from __future__ import annotations

import numpy as np

#: the structures of group terms (glmmTMB's names); ``us``/``diag`` are ``|``/``||``
STRUCTURES = ("us", "diag", "cs", "ar1", "toep")
#: the structures with their own parameters (the others are lme4's Λ as it is)
PARAMETRISED = ("cs", "ar1", "toep")


def n_params(structure: str, Q: int) -> int:
    """Number of unconstrained parameters φ of one Σ."""
    if structure == "ar1":
        return 2
    if structure == "cs":
        return Q + (Q > 1)
    if structure == "toep":
        return Q + Q - 1
    raise ValueError(structure)


def _logistic(a):
    return 1.0 / (1.0 + np.exp(-a))


def pacf_to_acf(pacf: np.ndarray) -> np.ndarray:
    """Partial autocorrelations π₁…π_m → autocorrelations ρ₁…ρ_m (Durbin–Levinson)."""
    m = len(pacf)
    rho = np.zeros(m)
    phi = np.zeros(0)
    for k in range(m):
        p = pacf[k]
        # ρ_{k+1} = Σ_j φ_{k,j} ρ_{k+1−j} + π_{k+1}(1 − Σ_j φ_{k,j} ρ_j)
        prev = np.concatenate([[1.0], rho[:k]])          # ρ₀ … ρ_k
        s1 = float(phi @ prev[1:k + 1][::-1]) if k else 0.0   # Σ φ_{k,j} ρ_{k+1−j}
        s2 = float(phi @ prev[1:k + 1]) if k else 0.0         # Σ φ_{k,j} ρ_j
        rho[k] = s1 + p * (1.0 - s2)
        phi = np.concatenate([phi - p * phi[::-1], [p]]) if k else np.array([p])
    return rho


def correlations(structure: str, Q: int, phi: np.ndarray) -> np.ndarray:
    """The correlation parameters on their natural scale (ρ for ar1/cs, ρ₁…ρ_{Q−1} for toep)."""
    phi = np.asarray(phi, dtype=float)
    if structure == "ar1":
        return np.array([np.tanh(phi[1])])
    if structure == "cs":
        if Q == 1:
            return np.zeros(0)
        lo = -1.0 / (Q - 1)
        return np.array([lo + (1.0 - lo) * _logistic(phi[Q])])
    if structure == "toep":
        return pacf_to_acf(np.tanh(phi[Q:]))
    raise ValueError(structure)


def sds(structure: str, Q: int, phi: np.ndarray) -> np.ndarray:
    phi = np.asarray(phi, dtype=float)
    if structure == "ar1":
        return np.full(Q, np.exp(phi[0]))
    return np.exp(phi[:Q])


def correlation_matrix(structure: str, Q: int, phi: np.ndarray) -> np.ndarray:
    lag = np.abs(np.subtract.outer(np.arange(Q), np.arange(Q)))
    rho = correlations(structure, Q, phi)
    if structure == "ar1":
        return rho[0] ** lag
    if structure == "cs":
        R = np.full((Q, Q), rho[0] if Q > 1 else 0.0)
        np.fill_diagonal(R, 1.0)
        return R
    return np.concatenate([[1.0], rho])[lag]


def correlation_from_rho(structure: str, Q: int, rho: np.ndarray) -> np.ndarray:
    """Correlation matrices (..., Q, Q) from the natural parameters (..., m): ρ (ar1, cs) or
    ρ₁ … ρ_{Q−1} (toep), e.g. posterior draws."""
    rho = np.asarray(rho, dtype=float)
    lag = np.abs(np.subtract.outer(np.arange(Q), np.arange(Q)))
    if structure == "ar1":
        return rho[..., :1, None] ** lag
    if structure == "cs":
        r = rho[..., :1, None]
        return r + (1.0 - r) * np.eye(Q)
    full = np.concatenate([np.ones(rho.shape[:-1] + (1,)), rho], axis=-1)
    return full[..., lag]


def covariance(structure: str, Q: int, phi: np.ndarray) -> np.ndarray:
    """Σ(φ) (Q × Q)."""
    s = sds(structure, Q, phi)
    return np.outer(s, s) * correlation_matrix(structure, Q, phi)


def start(structure: str, Q: int) -> np.ndarray:
    """φ at Σ = I (lme4's start T = I): log s = 0, correlations 0."""
    phi = np.zeros(n_params(structure, Q))
    if structure == "cs" and Q > 1:
        lo = -1.0 / (Q - 1)
        phi[Q] = np.log((0.0 - lo) / (1.0 - 0.0))      # logistic⁻¹((0 − lo)/(1 − lo))
    return phi


def parameter_names(structure: str, Q: int) -> list[str]:
    """Names of the correlation parameters (``fit.corpars()``; brms-like ``rho``/``rho[k]``)."""
    if structure in ("ar1", "cs"):
        return ["rho"] if Q > 1 else []
    return [f"rho[{k}]" for k in range(1, Q)]


class StructuredTheta:
    """φ ↔ θ for a list of Λ blocks, some of them structured.

    ``layouts``: each block's :class:`~mixedformula.design.reterms.TermLayout` (one template);
    ``structures``: per block a name of :data:`PARAMETRISED` or None (θ entries as they are).
    """

    def __init__(self, layouts, structures, lower):
        self.layouts = list(layouts)
        self.structures = list(structures)
        self.slices, self.theta_slices = [], []
        lo_phi, at, at_t = [], 0, 0
        lower = np.asarray(lower, dtype=float)
        for lay, st in zip(self.layouts, self.structures):
            m = lay.n_theta if st is None else n_params(st, lay.q)
            self.slices.append(slice(at, at + m))
            self.theta_slices.append(slice(at_t, at_t + lay.n_theta))
            lo_phi.append(lower[at_t:at_t + lay.n_theta] if st is None else np.full(m, -np.inf))
            at += m
            at_t += lay.n_theta
        self.n_phi = at
        self.lower = np.concatenate(lo_phi) if lo_phi else np.zeros(0)

    def start(self, theta0: np.ndarray) -> np.ndarray:
        out = []
        for lay, st, ts in zip(self.layouts, self.structures, self.theta_slices):
            out.append(np.asarray(theta0)[ts] if st is None else start(st, lay.q))
        return np.concatenate(out) if out else np.zeros(0)

    def theta(self, phi: np.ndarray) -> np.ndarray:
        """θ(φ): structured blocks' T = chol(Σ(φ)) read in θ order. Raises LinAlgError when
        Σ(φ) is numerically singular."""
        out = []
        for lay, st, sl in zip(self.layouts, self.structures, self.slices):
            p = np.asarray(phi)[sl]
            if st is None:
                out.append(p)
                continue
            T = np.linalg.cholesky(covariance(st, lay.q, p))
            rows, cols = lay.entries
            out.append(T[rows, cols])
        return np.concatenate(out) if out else np.zeros(0)


__all__ = ["PARAMETRISED", "STRUCTURES", "StructuredTheta", "correlation_from_rho",
           "correlation_matrix",
           "correlations", "covariance", "n_params", "pacf_to_acf", "parameter_names",
           "sds", "start"]
