r"""Kenward–Roger adjusted covariance of β̂ and denominator df, as pbkrtest (``vcovAdj``,
``Lb_ddf``, ``KRmodcomp``), for REML fits.

The marginal covariance is linear in the variance parameters γ (per group term the entries
Σ_ij, i ≤ j, of its covariance — variances only for ``||`` terms — then σ²):

    Σ = Σ_r γ_r G_r,   G_r = Z_k (I_J ⊗ E_ij) Z_kᵀ  (E_ij symmetric unit),   G_last = I.

With Φ = (XᵀΣ⁻¹X)⁻¹ (= vcov(β̂)), P_r = −XᵀΣ⁻¹G_rΣ⁻¹X, Q_rs = XᵀΣ⁻¹G_rΣ⁻¹G_sΣ⁻¹X, the
expected REML information (pbkrtest's IE2)

    I_rs = tr(Σ⁻¹G_rΣ⁻¹G_s) − 2 tr(Φ Q_rs) + tr(Φ P_r Φ P_s),   W = 2 I⁻¹,

and (the second derivatives of Σ vanish) the adjusted covariance

    Φ_A = Φ + 2 Φ [Σ_rs W_rs (Q_rs − P_r Φ P_s)] Φ.

For a hypothesis Lβ = 0 of rank q, with Θ = Lᵀ(LΦLᵀ)⁻¹L, u_r = ΘΦP_rΦ:

    A₁ = Σ_rs W_rs tr(u_r) tr(u_s),   A₂ = Σ_rs W_rs tr(u_r u_s),
    B = (A₁ + 6A₂) / (2q),  g = ((q + 1)A₁ − (q + 4)A₂) / ((q + 2)A₂),
    c₁ = g / (3q + 2(1 − g)),  c₂ = (q − g) / (3q + 2(1 − g)),  c₃ = (q + 2 − g) / (3q + 2(1 − g)),
    ρ = ((1 − A₂/q) / (1 − c₂B))² (1 + c₁B) / (q (1 − c₃B)),
    ν = 4 + (q + 2) / (qρ − 1),   λ = ν (1 − A₂/q) / (ν − 2)  (1 when |ν − 2| < 0.01),

and F = λ (Lβ̂)ᵀ(LΦ_ALᵀ)⁻¹(Lβ̂) / q ~ F(q, ν). Dense n × n algebra (as pbkrtest): fine for
a few thousand rows.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from .satterthwaite import ftable_row, ttable_row

#: dense n × n algebra (a few n × n matrices per variance parameter) above this is refused
MAX_ROWS = 8000


class KenwardRoger:
    """Φ_A and the KR df of an :class:`~mixedformula.reml.LmerFit` fitted by REML."""

    def __init__(self, fit):
        if not fit.reml:
            raise ValueError("Kenward-Roger's method is only available for REML fits "
                             "(as in lmerTest/pbkrtest); refit with reml=True")
        if hasattr(fit, "need_rows"):
            fit.need_rows("Kenward-Roger's method (dense n x n matrices)")
        if getattr(fit, "weights", None) is not None:
            raise ValueError("Kenward-Roger's method is not available for fits with prior "
                             "weights (pbkrtest builds Var(y) without them); use "
                             "ddf='satterthwaite'")
        if any(t.block.cov_factor is not None for t in fit.terms):
            raise ValueError("Kenward-Roger's method is not implemented for gr(cov = ...) "
                             "terms; use ddf='satterthwaite'")
        X = np.asarray(fit.design.X, dtype=float)
        n, p = X.shape
        if n > MAX_ROWS:
            raise ValueError(f"Kenward-Roger works with dense {n} x {n} matrices (as pbkrtest); "
                             f"{n} rows are more than {MAX_ROWS} "
                             f"(~{8 * n * n * 4 / 1e9:.0f} GB); use ddf='satterthwaite'")
        lam = fit._lam
        theta = fit.theta.to_numpy()
        s2 = fit.sigma ** 2
        G, gamma = [], []
        for k, t in enumerate(fit.terms):
            lay = t.layout
            Z = z_matrix(t.X, t.codes, lay.J)
            Ts = lam.templates(theta, k)
            block = (np.zeros(lay.J, dtype=int) if lay.block_of_level is None
                     else np.asarray(lay.block_of_level))
            for b in range(lay.n_blocks):
                S = s2 * Ts[b] @ Ts[b].T
                sel = (block == b).astype(float)
                pairs = [(i, j) for j in range(lay.q) for i in range(j, lay.q)
                         if t.correlated or i == j]
                for i, j in pairs:
                    E = np.zeros((lay.q, lay.q))
                    E[i, j] = E[j, i] = 1.0
                    D = sp.kron(sp.diags(sel), sp.csr_matrix(E), format="csr")
                    G.append((Z @ D @ Z.T).tocsr())
                    gamma.append(S[i, j])
        G.append(sp.identity(n, format="csr"))
        gamma.append(s2)
        Sigma = sum(g * Gr for g, Gr in zip(gamma, G)).toarray()
        Sinv = sla.cho_solve(sla.cho_factor(Sigma, lower=True), np.eye(n))
        Phi = np.asarray(fit.vcov_beta, dtype=float)
        TT = Sinv @ X
        HH = [np.asarray(Gr @ Sinv) for Gr in G]
        OO = [H @ X for H in HH]
        m = len(G)
        PP = [-(O.T @ TT) for O in OO]
        PP = [(P + P.T) / 2 for P in PP]
        SO = [Sinv @ O for O in OO]
        QQ = {(r, s): OO[r].T @ SO[s] for r in range(m) for s in range(r, m)}
        IE = np.empty((m, m))
        for r in range(m):
            for s in range(r, m):
                IE[r, s] = IE[s, r] = (np.sum(HH[r].T * HH[s]) - 2 * np.sum(Phi * QQ[r, s])
                                       + np.sum((Phi @ PP[r]) * (PP[s] @ Phi)))
        cond = np.min(np.abs(np.linalg.eigvalsh(IE)))
        W = 2 * (np.linalg.inv(IE) if cond > 1e-10 else np.linalg.pinv(IE))
        W = (W + W.T) / 2
        U = np.zeros((p, p))
        for r in range(m):
            for s in range(r + 1, m):
                U += W[r, s] * (QQ[r, s] - PP[r] @ Phi @ PP[s])
        U = U + U.T
        for r in range(m):
            U += W[r, r] * (QQ[r, r] - PP[r] @ Phi @ PP[r])
        self.vcov_beta = Phi
        self.vcov_adj = Phi + 2 * Phi @ U @ Phi
        self.P, self.W, self.gamma = PP, W, np.array(gamma)
        self.beta = np.asarray(fit.beta, dtype=float)
        self.sigma = float(fit.sigma)

    def _adjust(self, L):
        """(ν, λ) of Lβ = 0 (pbkrtest's ``.KR_adjust`` / ``Lb_ddf``)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        Phi = self.vcov_beta
        Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
        q = float(np.linalg.matrix_rank(L))
        TP = Theta @ Phi
        u = [TP @ P @ Phi for P in self.P]
        A1 = A2 = 0.0
        m = len(u)
        for i in range(m):
            for j in range(i, m):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * np.sum(u[i] * u[j].T)
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        den = 3 * q + 2 * (1 - g)
        c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
        V0 = 1 + c1 * B
        V1 = 1 - c2 * B
        V2 = 1 - c3 * B
        V0 = 0.0 if abs(V0) < 1e-10 else V0
        x = 1 - A2 / q
        ratio = 1.0 if (abs(x) < 1e-14 and abs(V1) < 1e-14) else x / V1
        rho = ratio ** 2 * V0 / V2 / q
        ddf = 4 + (q + 2) / (q * rho - 1)
        scale = 1.0 if abs(ddf - 2) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
        return float(ddf), float(scale), int(q)

    def df(self, l) -> float:
        """KR ν of the contrast lᵀβ (one row)."""
        return self._adjust(np.asarray(l, dtype=float).ravel()[None, :])[0]

    def ttest(self, l) -> dict:
        """Estimate, adjusted SE, KR df, t and p of lᵀβ (lmerTest's ``contest1D``, KR)."""
        l = np.asarray(l, dtype=float).ravel()
        return ttable_row(float(l @ self.beta), math.sqrt(l @ self.vcov_adj @ l), self.df(l))

    def ftest(self, L) -> dict:
        """KR F-test of Lβ = 0 (lmerTest's ``contestMD`` via ``KRmodcomp``)."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        ddf, scale, q = self._adjust(L)
        Lb = L @ self.beta
        wald = float(Lb @ np.linalg.solve(L @ self.vcov_adj @ L.T, Lb))
        return ftable_row(wald / q, q, ddf, self.sigma, scale)


def z_matrix(Xk: np.ndarray, codes: np.ndarray, J: int) -> sp.csr_matrix:
    """n × (J q) Z of one term, columns level-major (level j, coefficient c → j q + c)."""
    n, q = Xk.shape
    rows = np.repeat(np.arange(n), q)
    cols = (np.asarray(codes)[:, None] * q + np.arange(q)[None, :]).ravel()
    return sp.csr_matrix((np.asarray(Xk, dtype=float).ravel(), (rows, cols)), shape=(n, J * q))
