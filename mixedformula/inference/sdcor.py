r"""lme4's standard-deviation / correlation scale of the variance parameters (``.sig01``, …,
``.sigma``) and its map to and from (θ, σ).

Per template T of a group term (lme4's order of terms, θ's order of entries (r, c)) the
covariance is Σ = σ² T Tᵀ; entry (r, r) of θ becomes the standard deviation √Σ_rr and entry
(r, c), r ≠ c, the correlation Σ_rc / √(Σ_rr Σ_cc). Back: Σ = D R D with D = diag(sd), so
T = D chol(R) / σ (lower triangular, also when some sd is 0); ``||`` terms have T = D / σ.
"""

from __future__ import annotations

import math

import numpy as np


def sdcor_names(n_theta: int) -> list[str]:
    """lme4's ``oldNames``: ``.sig01`` … ``.sigNN`` then ``.sigma``."""
    width = max(2, len(str(n_theta)))
    return [f".sig{k + 1:0{width}d}" for k in range(n_theta)] + [".sigma"]


class SdCor:
    """Maps between (θ, σ) and lme4's (sd/cor…, σ) for a fit's :class:`LambdaFactor`."""

    def __init__(self, lam):
        self.lam = lam
        self.n_theta = lam.n_theta
        self.is_cor = np.concatenate([
            np.tile(t.entries[0] != t.entries[1], t.n_blocks) for t in lam.terms]) \
            if lam.terms else np.zeros(0, bool)

    def from_theta(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        out = []
        for k, t in enumerate(self.lam.terms):
            rows, cols = t.entries
            for T in self.lam.templates(theta, k):
                S = sigma ** 2 * T @ T.T
                sd = np.sqrt(np.diag(S))
                for r, c in zip(rows, cols):
                    if r == c:
                        out.append(sd[r])
                    else:
                        den = sd[r] * sd[c]
                        out.append(S[r, c] / den if den > 0 else 0.0)
        return np.append(np.asarray(out, dtype=float), sigma)

    def to_theta(self, psi: np.ndarray) -> np.ndarray:
        """θ from (sd/cor…, σ); raises ValueError where a correlation matrix is not PSD."""
        psi = np.asarray(psi, dtype=float)
        sigma = psi[-1]
        Ts, pos = [], 0
        for t in self.lam.terms:
            rows, cols = t.entries
            blocks = []
            for _ in range(t.n_blocks):
                vals = psi[pos:pos + len(rows)]
                pos += len(rows)
                sd = np.zeros(t.q)
                R = np.eye(t.q)
                for v, r, c in zip(vals, rows, cols):
                    if r == c:
                        sd[r] = v
                    else:
                        R[r, c] = R[c, r] = v
                blocks.append(sd[:, None] * chol_psd(R) / sigma)
            Ts.append(np.stack(blocks))
        return self.lam.theta_from_templates(Ts)

    def bounds(self) -> list[tuple]:
        """Bounds of (sd/cor…, σ): sd ≥ 0, |cor| < 1, σ > 0."""
        out = [((-1.0, 1.0) if c else (0.0, None)) for c in self.is_cor]
        return out + [(1e-12, None)]


def chol_psd(R: np.ndarray, tol: float = 1e-12) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite matrix (a correlation of ±1 at a
    boundary fit: zero pivots give zero columns); ValueError if R is indefinite."""
    q = R.shape[0]
    L = np.zeros_like(R, dtype=float)
    for j in range(q):
        d = R[j, j] - L[j, :j] @ L[j, :j]
        if d < -tol:
            raise ValueError("correlation matrix not positive semi-definite")
        L[j, j] = math.sqrt(max(d, 0.0))
        for i in range(j + 1, q):
            v = R[i, j] - L[i, :j] @ L[j, :j]
            L[i, j] = v / L[j, j] if L[j, j] > tol else 0.0
            if L[j, j] <= tol and abs(v) > 1e-8:
                raise ValueError("correlation matrix not positive semi-definite")
    return L
