r"""Sufficient statistics of the marginal engine for structured residuals and known covariances.

Model: y = Xβ + Zu + ε, u = Λz (z ~ N(0, I), G = ΛΛᵀ), ε ~ N(0, σ²C), so
y ~ N(Xβ, V), V = ZGZᵀ + σ²C. With P = C⁻¹, the Woodbury identity and the determinant lemma
give, for H = ΛᵀZᵀPZΛ/σ² + I = LLᵀ, r = y − Xβ, s = ZᵀPr, w = L⁻¹Λᵀs,

    −2 log p(y | β, G, σ, ρ) = N log(2πσ²) + log|C| + 2 log|L| + (rᵀPr − ‖w‖²/σ²)/σ².

The data enter through ZᵀPZ, ZᵀPX, ZᵀPy, XᵀPX, XᵀPy, yᵀPy only; here they are written as
functions of the residual-structure parameter ρ whose coefficients are computed once.

**ar(time, gr, p)** (brms' regression form, :mod:`.autocor`): e = y − η, ε_n = e_n − Σ_k ρ_k
e_{lag_k(n)} with e = 0 before a group's first row, i.e. ε = Me, M = −Σ_{k=0..p} ρ̃_k W_k
(ρ̃ = (−1, ρ_1..ρ_p), W_0 = I, W_k the within-group lag-k row shift, gaps ignored). M is
unit lower triangular in time order, so log|C| = −2 log|M| = 0 and P = MᵀM =
Σ_{k,l} ρ̃_k ρ̃_l W_kᵀW_l: every statistic is Σ_{k,l} ρ̃_k ρ̃_l S^{kl} with
S^{kl} = (W_k U)ᵀ(W_l V) for U, V ∈ {Z, X, y} — (p+1)² cross-products of lagged columns.

**cosy(time, gr)**: C = blockdiag_g[(1 − ρ)I + ρ11ᵀ] over the groups g of ``gr`` (n_g rows);
Sherman–Morrison: P = (I − Σ_g γ_g 1_g1_gᵀ)/(1 − ρ), γ_g = ρ/(1 + (n_g − 1)ρ), and
log|C| = Σ_g (n_g − 1) log(1 − ρ) + log(1 + (n_g − 1)ρ). The statistics are the plain
cross-products minus γ-weighted outer products of the per-group sums a_g = Z_gᵀ1, b_g = X_gᵀ1,
s_g = 1ᵀy_g.

**unstr(time, gr)** (brms, :mod:`.unstr`): C = blockdiag_g C[s_g, s_g] over the groups g of
``gr``, s_g the times at which g is observed; the groups sharing a time pattern s share
P_s = C[s, s]⁻¹ (n_s × n_s). Every statistic is Σ_s Σ_{a,b ∈ s} (P_s)_{ab} S^{s,ab} with
S^{s,ab} = Σ_{g ∈ s} U_{g,a}ᵀ V_{g,b} (U_{g,a} the row of group g at its a-th time) —
Σ_s n_s² cross-products computed once, contracted with the P_s entries (``rho`` is then
(w, ld): w the P_s row-major and concatenated over patterns, ld_s = log|C[s, s]|, from
:func:`unstr_weights_numpy` or the sampler's unrolled factors), and
log|C| = Σ_s G_s log|C[s, s]|.

**gr(g, cov = A)** (and any other design without a residual structure): P = I (the ar form with
p = 0); Λ couples the levels (Λ = L_A ⊗ T, :mod:`.known_cov`), so the system is dense.

Layouts. ``"block"``: one grouping factor (one segment, :mod:`.reterms`), no known covariance,
and every lag row / cosy group inside one level of it: ZᵀPZ is block diagonal, J blocks Q×Q,
the cost per gradient O(J Q³ + (p+1)² J Q²), independent of N. ``"dense"`` otherwise: one block
of all M = Σ J_k q_k columns, O(M³) per gradient (still independent of N).

Numerics: y is replaced by the OLS residual e = y − Xβ̂_ols (plain least squares) and β by
d = β − β̂_ols, which leaves r unchanged and avoids cancellation for large means.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .reterms import segments

#: dense layout: at most this many columns M, and (p+1)²·M² stored entries
MAX_DENSE = 2000
MAX_DENSE_ENTRIES = 4e7


class StructuredTooLargeError(ValueError):
    """The dense system of the structured marginal likelihood would be too large."""


@dataclass
class StructuredStats:
    """Coefficients of the marginal statistics as functions of ρ (module docstring)."""

    structure: str | None          # "ar", "cosy", "unstr" or None (P = I)
    layout: str                    # "block" or "dense"
    N: int
    beta_ols: np.ndarray           # (p,)
    segments: list
    K: int                         # p_ar + 1 (1 without ar)
    A: np.ndarray                  # (K, K, nb, Qb, Qb)   (W_k Z)ᵀ(W_l Z) per block
    B: np.ndarray                  # (K, K, nb, Qb, p)    (W_k Z)ᵀ(W_l X)
    c: np.ndarray                  # (K, K, nb, Qb)       (W_k Z)ᵀ(W_l e)
    XX: np.ndarray                 # (K, K, p, p)
    Xe: np.ndarray                 # (K, K, p)
    ee: np.ndarray                 # (K, K)
    # cosy: per-group sums (G groups)
    n_g: np.ndarray | None = None  # (G,)
    level_g: np.ndarray | None = None   # (G,) block of the group (block layout)
    a_g: np.ndarray | None = None  # (G, Qb)
    b_g: np.ndarray | None = None  # (G, p)
    s_g: np.ndarray | None = None  # (G,)
    # block layout: the X / y statistics per level (leave-one-group-out), (K, K, J, ...)
    XXj: np.ndarray | None = None
    Xej: np.ndarray | None = None
    eej: np.ndarray | None = None
    n_j: np.ndarray | None = None
    # unstr: the time patterns s (indices into the T times), their group counts G_s, the
    # groups per pattern and block (n_patterns, nb) for the per-level log|C_j|, and T; the
    # leading (K, K) axes of A … ee are then (Σ_s n_s², 1)
    unstr_times: tuple = ()
    unstr_counts: np.ndarray | None = None
    unstr_level_counts: np.ndarray | None = None
    unstr_T: int = 0
    kind: str = "structured"

    @property
    def p(self) -> int:
        return self.XX.shape[-1]

    @property
    def nb(self) -> int:
        return self.A.shape[2]

    @property
    def Qb(self) -> int:
        return self.A.shape[3]

    @property
    def M(self) -> int:
        return sum(s.size for s in self.segments)

    def locate(self, term: int) -> tuple[int, int, int]:
        """(segment index, column offset inside the segment, q) of design term ``term``."""
        for si, s in enumerate(self.segments):
            for k, off, q in zip(s.terms, s.offsets, s.qs):
                if k == term:
                    return si, off, q
        raise KeyError(f"design term {term} is not in the statistics")

    def cost(self) -> float:
        """Operations per log-density evaluation (order of magnitude)."""
        k2 = self.A.shape[0] * self.A.shape[1]          # (p+1)², 1, or Σ_s n_s² (unstr)
        if self.layout == "block":
            return self.nb * (self.Qb ** 3 + k2 * self.Qb ** 2)
        return float(self.Qb) ** 3 + k2 * self.Qb ** 2


def structured_design(design) -> bool:
    """Whether ``design`` has what this module is for (an ar()/cosy() term or gr(cov = A))."""
    return (getattr(design, "autocor", None) is not None
            or any(getattr(t, "cov_factor", None) is not None for t in design.terms))


def _lag_index(structure, N: int) -> list[np.ndarray]:
    """Row index of W_k for k = 0..p (N: the appended zero row)."""
    out = [np.arange(N)]
    if structure is not None and structure.kind == "ar":
        for k in range(structure.p):
            out.append(np.where(structure.lags[:, k] < 0, N, structure.lags[:, k]))
    return out


def _aligned(structure, codes: np.ndarray) -> bool:
    """Every lag row / every row of a cosy or unstr group in the same level as the row."""
    if structure is None:
        return True
    if structure.kind == "ar":
        lags = structure.lags
        ok = lags >= 0
        return bool(np.all(codes[lags[ok]] == np.broadcast_to(codes[:, None], lags.shape)[ok]))
    gc = structure.codes
    first = np.full(int(gc.max()) + 1, -2, dtype=np.int64)
    first[gc[::-1]] = codes[::-1]
    return bool(np.all(first[gc] == codes))


def _indicator(codes: np.ndarray, J: int) -> sp.csr_matrix:
    ok = codes >= 0
    return sp.csr_matrix((np.ones(int(ok.sum())), (codes[ok], np.nonzero(ok)[0])),
                         shape=(J, len(codes)))


def _full_Z(design, segs) -> sp.csr_matrix:
    parts = []
    for s in segs:
        codes, W = s.columns(design)
        n, Q = W.shape
        ok = codes >= 0
        rows = np.repeat(np.nonzero(ok)[0], Q)
        cols = (codes[ok, None] * Q + np.arange(Q)[None, :]).ravel()
        parts.append(sp.csr_matrix((W[ok].ravel(), (rows, cols)), shape=(n, s.J * Q)))
    return sp.hstack(parts, format="csr")


def structured_statistics(design, layout: str | None = None) -> StructuredStats:
    """The statistics of ``design`` (univariate, Gaussian); ``layout`` None: ``"block"`` where
    it applies (module docstring), else ``"dense"``. Raises :class:`StructuredTooLargeError`
    when the dense system exceeds :data:`MAX_DENSE` columns."""
    structure = getattr(design, "autocor", None)
    y = np.asarray(design.y, dtype=float)
    y = y[:, 0] if y.ndim == 2 else y
    if getattr(design, "offset", None) is not None:
        y = y - design.offset
    X = np.asarray(design.X, dtype=float)
    N, p = X.shape
    beta_ols = np.linalg.lstsq(X, y, rcond=None)[0] if p else np.zeros(0)
    e = y - X @ beta_ols
    segs = segments(design)
    start = 0
    for s in segs:
        s.start = start
        start += s.size
    M = start
    known = any(getattr(t, "cov_factor", None) is not None for t in design.terms)
    if layout is None:
        layout = "dense"
        if not segs or (len(segs) == 1 and not known
                        and _aligned(structure, segs[0].columns(design)[0])):
            layout = "block"
    idx = _lag_index(structure, N)
    K = len(idx)
    if layout == "dense" and (M > MAX_DENSE or K * K * M * M > MAX_DENSE_ENTRIES):
        raise StructuredTooLargeError(
            f"the structured marginal likelihood needs a dense {M} x {M} system "
            f"(limit {MAX_DENSE} columns)")

    def lag(V, k):
        pad = np.concatenate([V, np.zeros((1,) + V.shape[1:])])
        return pad[idx[k]]

    Xk = [lag(X, k) for k in range(K)]
    ek = [lag(e, k) for k in range(K)]
    XX = np.array([[Xk[k].T @ Xk[m] for m in range(K)] for k in range(K)]).reshape(K, K, p, p)
    Xe = np.array([[Xk[k].T @ ek[m] for m in range(K)] for k in range(K)]).reshape(K, K, p)
    ee = np.array([[ek[k] @ ek[m] for m in range(K)] for k in range(K)])
    if layout == "block":
        if segs:
            codes, W = segs[0].columns(design)
            J, Q = segs[0].J, segs[0].Q
        else:                      # no group terms: the exact likelihood of y alone
            codes, W, J, Q = np.full(N, -1, dtype=np.int64), np.zeros((N, 0)), 0, 0
        Ind = _indicator(codes, J)
        Wk = [lag(W, k) for k in range(K)]
        A = np.empty((K, K, J, Q, Q))
        B = np.empty((K, K, J, Q, p))
        c = np.empty((K, K, J, Q))
        for k in range(K):
            for m in range(K):
                A[k, m] = (Ind @ (Wk[k][:, :, None] * Wk[m][:, None, :]).reshape(N, Q * Q)
                           ).reshape(J, Q, Q)
                B[k, m] = (Ind @ (Wk[k][:, :, None] * Xk[m][:, None, :]).reshape(N, Q * p)
                           ).reshape(J, Q, p)
                c[k, m] = Ind @ (Wk[k] * ek[m][:, None])
        if J:
            XXj = np.empty((K, K, J, p, p))
            Xej = np.empty((K, K, J, p))
            eej = np.empty((K, K, J))
            for k in range(K):
                for m in range(K):
                    XXj[k, m] = (Ind @ (Xk[k][:, :, None] * Xk[m][:, None, :]).reshape(N, p * p)
                                 ).reshape(J, p, p)
                    Xej[k, m] = (Ind @ (Xk[k] * ek[m][:, None])).reshape(J, p)
                    eej[k, m] = Ind @ (ek[k] * ek[m])
            level_stats = (XXj, Xej, eej, np.asarray(Ind.sum(axis=1)).ravel())
    else:
        Z = _full_Z(design, segs)
        Zpad = sp.vstack([Z, sp.csr_matrix((1, M))], format="csr")
        Zk = [Zpad[idx[k]] for k in range(K)]
        A = np.empty((K, K, 1, M, M))
        B = np.empty((K, K, 1, M, p))
        c = np.empty((K, K, 1, M))
        for k in range(K):
            for m in range(K):
                A[k, m, 0] = (Zk[k].T @ Zk[m]).toarray()
                B[k, m, 0] = np.asarray(Zk[k].T @ Xk[m]).reshape(M, p)
                c[k, m, 0] = np.asarray(Zk[k].T @ ek[m]).ravel()
    stats = StructuredStats(structure=structure.kind if structure is not None else None,
                            layout=layout, N=N, beta_ols=beta_ols, segments=segs, K=K, A=A, B=B,
                            c=c, XX=XX, Xe=Xe, ee=ee)
    if layout == "block" and segs:
        stats.XXj, stats.Xej, stats.eej, stats.n_j = level_stats
    if structure is not None and structure.kind == "unstr":
        _unstr_statistics(stats, structure, design, segs, X, e)
    if structure is not None and structure.kind == "cosy":
        gc = np.asarray(structure.codes)
        G = int(gc.max()) + 1
        Ig = _indicator(gc, G)
        stats.n_g = np.asarray(Ig.sum(axis=1)).ravel()
        stats.b_g = np.asarray(Ig @ X).reshape(G, p)
        stats.s_g = np.asarray(Ig @ e).ravel()
        if layout == "block":
            codes, W = segs[0].columns(design) if segs else (np.full(N, -1, dtype=np.int64),
                                                               np.zeros((N, 0)))
            stats.a_g = np.asarray(Ig @ W)
            first = np.zeros(G, dtype=np.int64)
            first[gc[::-1]] = codes[::-1]
            stats.level_g = first
        else:
            stats.a_g = np.asarray((Ig @ _full_Z(design, segs)).todense())
            stats.level_g = np.zeros(G, dtype=np.int64)
    return stats


def _unstr_statistics(stats: StructuredStats, structure, design, segs, X, e) -> None:
    """Replace the P = I statistics by the Σ_s n_s² pattern cross-products S^{s,ab} of
    unstr() (module docstring), in the layout of ``stats``."""
    from .unstr import time_patterns
    pats = time_patterns(structure)
    p = X.shape[1]
    block = stats.layout == "block"
    if block:
        codes, W = segs[0].columns(design) if segs else (
            np.full(len(e), -1, dtype=np.int64), np.zeros((len(e), 0)))
        J, Q = (segs[0].J, segs[0].Q) if segs else (0, 0)
    else:
        Z = _full_Z(design, segs)
        J, Q = 1, stats.M
    A, B, c, XX, Xe, ee = [], [], [], [], [], []
    XXj, Xej, eej = [], [], []
    level_counts = np.zeros((len(pats), max(J, 1)))
    for i, pat in enumerate(pats):
        R = pat.rows
        if block and J:
            np.add.at(level_counts[i], codes[R[:, 0]][codes[R[:, 0]] >= 0], 1.0)
        elif not block:
            level_counts[i, 0] = len(R)
        n_s = R.shape[1]
        for a in range(n_s):
            for b in range(n_s):
                ra, rb = R[:, a], R[:, b]
                Xa, Xb, ea, eb = X[ra], X[rb], e[ra], e[rb]
                XX.append(Xa.T @ Xb)
                Xe.append(Xa.T @ eb)
                ee.append(float(ea @ eb))
                if block:
                    Ind = _indicator(codes[ra], J)
                    Wa, Wb = W[ra], W[rb]
                    G_s = len(ra)
                    A.append((Ind @ (Wa[:, :, None] * Wb[:, None, :]).reshape(G_s, Q * Q)
                              ).reshape(J, Q, Q))
                    B.append((Ind @ (Wa[:, :, None] * Xb[:, None, :]).reshape(G_s, Q * p)
                              ).reshape(J, Q, p))
                    c.append(Ind @ (Wa * eb[:, None]))
                    if J:
                        XXj.append((Ind @ (Xa[:, :, None] * Xb[:, None, :]).reshape(G_s, p * p)
                                    ).reshape(J, p, p))
                        Xej.append((Ind @ (Xa * eb[:, None])).reshape(J, p))
                        eej.append(Ind @ (ea * eb))
                else:
                    Za, Zb = Z[ra], Z[rb]
                    A.append((Za.T @ Zb).toarray()[None])
                    B.append(np.asarray(Za.T @ Xb).reshape(1, Q, p))
                    c.append(np.asarray(Za.T @ eb).reshape(1, Q))
    k = len(XX)
    if not block and k * Q * Q > MAX_DENSE_ENTRIES:
        raise StructuredTooLargeError(
            f"unstr() in the dense layout needs {k} cross-products of {Q} x {Q} "
            f"(limit {MAX_DENSE_ENTRIES:.0e} entries)")
    stats.A = np.stack(A).reshape((k, 1) + A[0].shape)
    stats.B = np.stack(B).reshape((k, 1) + B[0].shape)
    stats.c = np.stack(c).reshape((k, 1) + c[0].shape)
    stats.XX = np.stack(XX).reshape(k, 1, p, p)
    stats.Xe = np.stack(Xe).reshape(k, 1, p)
    stats.ee = np.array(ee).reshape(k, 1)
    if block and J:
        stats.XXj = np.stack(XXj).reshape(k, 1, J, p, p)
        stats.Xej = np.stack(Xej).reshape(k, 1, J, p)
        stats.eej = np.stack(eej).reshape(k, 1, J)
    stats.unstr_times = tuple(pat.times for pat in pats)
    stats.unstr_counts = np.array([len(pat.groups) for pat in pats], dtype=float)
    stats.unstr_level_counts = level_counts
    stats.unstr_T = len(structure.times)


def unstr_weights_numpy(stats: StructuredStats, C: np.ndarray):
    """unstr(): (w, ld) from the T × T correlation matrix C: w the entries of every
    P_s = C[s, s]⁻¹ (row-major, concatenated over the patterns), ld_s = log|C[s, s]|."""
    w, ld = [], []
    for times in stats.unstr_times:
        Cs = np.asarray(C, dtype=float)[np.ix_(times, times)]
        L = np.linalg.cholesky(Cs)
        Li = np.linalg.solve(L, np.eye(len(times)))
        w.append((Li.T @ Li).ravel())
        ld.append(2.0 * np.sum(np.log(np.diag(L))))
    return np.concatenate(w), np.array(ld)


# --------------------------------------------------------------------------- as functions of ρ

def _outer_weights(rho, xp):
    rt = xp.concatenate([-xp.ones((1,)), rho]) if rho is not None else None
    return (rt[:, None] * rt[None, :]).ravel() if rt is not None else None


#: the arrays the log-likelihood reads (shared variables ``marginal_structured_<name>`` in
#: the PyMC graph)
DATA_FIELDS = ("A", "B", "c", "XX", "Xe", "ee", "beta_ols", "n_g", "a_g", "b_g", "s_g")


def statistics_at(stats: StructuredStats, rho, xp=np, data: dict | None = None):
    """(A, B, c, XX, Xe, ee, logdetC) at ``rho`` (ar: (p,) vector; cosy: scalar; None without
    a structure), for numpy (``xp = np``) or pytensor (``xp = pytensor.tensor``); ``data``:
    tensors standing for the arrays of :data:`DATA_FIELDS` (shapes read from ``stats``)."""
    K = stats.K

    def get(name):
        return data[name] if data is not None else getattr(stats, name)
    if stats.structure == "unstr":
        w, ld = rho
        k = stats.A.shape[0]

        def comb_u(name):
            shape = getattr(stats, name).shape[2:]
            flat = get(name).reshape((k, int(np.prod(shape))))
            return xp.dot(w, flat).reshape(shape)
        return (comb_u("A"), comb_u("B"), comb_u("c"), comb_u("XX"), comb_u("Xe"),
                xp.dot(w, get("ee").reshape((k,))), xp.dot(stats.unstr_counts, ld))
    if stats.structure == "ar":
        w = _outer_weights(rho, xp)

        def comb(name):
            shape = getattr(stats, name).shape[2:]
            flat = get(name).reshape((K * K, int(np.prod(shape))))
            return xp.dot(w, flat).reshape(shape)
        return (comb("A"), comb("B"), comb("c"), comb("XX"), comb("Xe"),
                xp.dot(w, get("ee").reshape((K * K,))), 0.0)
    A, B, c = get("A")[0, 0], get("B")[0, 0], get("c")[0, 0]
    XX, Xe, ee = get("XX")[0, 0], get("Xe")[0, 0], get("ee")[0, 0]
    if stats.structure != "cosy":
        return A, B, c, XX, Xe, ee, 0.0
    n, a, b, s = get("n_g"), get("a_g"), get("b_g"), get("s_g")
    gam = rho / (1.0 + (n - 1.0) * rho)                       # (G,)
    ga = gam[:, None] * a
    if stats.Qb == 0:              # no group terms
        pass
    elif stats.layout == "block":
        nb, Q = stats.nb, stats.Qb
        lev = stats.level_g
        dA = (ga[:, :, None] * a[:, None, :]).reshape((-1, Q * Q))
        p = stats.p
        dB = (ga[:, :, None] * b[:, None, :]).reshape((-1, Q * p))
        dc = ga * s[:, None]
        if xp is np:
            def scatter(v, width):
                out = np.zeros((nb, width))
                np.add.at(out, lev, v)
                return out
        else:
            def scatter(v, width):
                return xp.inc_subtensor(xp.zeros((nb, width))[lev], v)
        A = A - scatter(dA, Q * Q).reshape((nb, Q, Q))
        B = B - scatter(dB, Q * p).reshape((nb, Q, p))
        c = c - scatter(dc, Q)
    else:
        A = A - xp.dot(ga.T, a)[None]
        B = B - xp.dot(ga.T, b)[None]
        c = c - xp.dot(ga.T, s)[None]
    gb = gam[:, None] * b
    XX = XX - xp.dot(gb.T, b)
    Xe = Xe - xp.dot(gb.T, s)
    ee = ee - xp.sum(gam * s * s)
    inv = 1.0 / (1.0 - rho)
    logdet = xp.sum((n - 1.0) * xp.log1p(-rho) + xp.log1p((n - 1.0) * rho))
    return A * inv, B * inv, c * inv, XX * inv, Xe * inv, ee * inv, logdet


def loglik_numpy(stats: StructuredStats, beta, Lam, sigma, rho=None) -> float:
    """log p(y | β, Λ, σ, ρ) in numpy (the reference transcription; ``Lam`` (nb, Qb, Qb) or
    (Qb, Qb))."""
    A, B, c, XX, Xe, ee, logdet = statistics_at(stats, rho, np)
    d = np.asarray(beta, dtype=float) - stats.beta_ols
    s = c - B @ d
    rPr = ee - 2.0 * d @ Xe + d @ XX @ d
    if A.size == 0:
        return -0.5 * float(stats.N * np.log(2 * np.pi * sigma ** 2) + logdet + rPr / sigma ** 2)
    Lam = np.broadcast_to(Lam, A.shape)
    H = np.swapaxes(Lam, -1, -2) @ A @ Lam / sigma ** 2 + np.eye(A.shape[-1])
    L = np.linalg.cholesky(H)
    v = np.einsum("jba,jb->ja", Lam, s)
    w = np.linalg.solve(L, v[..., None])[..., 0]
    m2 = (stats.N * np.log(2 * np.pi * sigma ** 2) + logdet
          + 2 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)))
          + (rPr - np.sum(w * w) / sigma ** 2) / sigma ** 2)
    return -0.5 * float(m2)


def _level_xy_at(stats: StructuredStats, rho):
    """Block layout: (XX_j, Xe_j, ee_j, log|C_j|) per level at ``rho`` (numpy)."""
    K = stats.K
    if stats.structure == "unstr":
        w, ld = rho
        k = stats.A.shape[0]

        def comb_u(S):
            return np.tensordot(w, S.reshape((k,) + S.shape[2:]), axes=1)
        return (comb_u(stats.XXj), comb_u(stats.Xej), comb_u(stats.eej),
                stats.unstr_level_counts.T @ ld)
    if stats.structure == "ar":
        w = _outer_weights(np.asarray(rho, dtype=float), np)

        def comb(S):
            return np.tensordot(w, S.reshape((K * K,) + S.shape[2:]), axes=1)
        return comb(stats.XXj), comb(stats.Xej), comb(stats.eej), np.zeros(stats.nb)
    XX, Xe, ee = stats.XXj[0, 0], stats.Xej[0, 0], stats.eej[0, 0]
    if stats.structure != "cosy":
        return XX, Xe, ee, np.zeros(stats.nb)
    n, b, s, lev = stats.n_g, stats.b_g, stats.s_g, stats.level_g
    gam = rho / (1.0 + (n - 1.0) * rho)
    XX, Xe, ee = XX.copy(), Xe.copy(), ee.copy()
    np.add.at(XX, lev, -(gam[:, None, None] * b[:, :, None] * b[:, None, :]))
    np.add.at(Xe, lev, -(gam[:, None] * b * s[:, None]))
    np.add.at(ee, lev, -(gam * s * s))
    logdet = np.zeros(stats.nb)
    np.add.at(logdet, lev, (n - 1.0) * np.log1p(-rho) + np.log1p((n - 1.0) * rho))
    inv = 1.0 / (1.0 - rho)
    return XX * inv, Xe * inv, ee * inv, logdet


def group_loglik_numpy(stats: StructuredStats, beta, Lam, sigma, rho=None) -> np.ndarray:
    """log p(y_j | β, Λ, σ, ρ) per level j (J,), block layout: the series lie inside the
    levels, so the likelihood factors over them (the terms of :func:`loglik_numpy` per level;
    they sum to it)."""
    if stats.layout != "block" or stats.XXj is None:
        raise ValueError("the marginal likelihood factors over levels in the block layout only")
    A, B, c, _, _, _, _ = statistics_at(stats, rho, np)
    XX, Xe, ee, logdet = _level_xy_at(stats, rho)
    d = np.asarray(beta, dtype=float) - stats.beta_ols
    s = c - B @ d
    rPr = ee - 2.0 * Xe @ d + np.einsum("jab,a,b->j", XX, d, d)
    Lam = np.broadcast_to(Lam, A.shape)
    H = np.swapaxes(Lam, -1, -2) @ A @ Lam / sigma ** 2 + np.eye(A.shape[-1])
    L = np.linalg.cholesky(H)
    v = np.einsum("jba,jb->ja", Lam, s)
    w = np.linalg.solve(L, v[..., None])[..., 0]
    m2 = (stats.n_j * np.log(2 * np.pi * sigma ** 2) + logdet
          + 2 * np.sum(np.log(np.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
          + (rPr - np.sum(w * w, axis=-1) / sigma ** 2) / sigma ** 2)
    return -0.5 * m2


def draw_effects_numpy(stats: StructuredStats, beta, Lam, sigma, rho, rng) -> np.ndarray:
    """One exact draw of z-scaled effects u = Λ L⁻ᵀ(L⁻¹Λᵀs/σ² + ξ) (nb, Qb): the Gaussian
    u | y, β, G, σ, ρ (mean ΛH⁻¹Λᵀs/σ², covariance ΛH⁻¹Λᵀ)."""
    A, B, c, XX, Xe, ee, logdet = statistics_at(stats, rho, np)
    d = np.asarray(beta, dtype=float) - stats.beta_ols
    s = c - B @ d
    Lam = np.broadcast_to(Lam, A.shape)
    H = np.swapaxes(Lam, -1, -2) @ A @ Lam / sigma ** 2 + np.eye(A.shape[-1])
    L = np.linalg.cholesky(H)
    v = np.einsum("jba,jb->ja", Lam, s) / sigma ** 2
    w = np.linalg.solve(L, v[..., None])[..., 0] + rng.standard_normal(v.shape)
    z = np.linalg.solve(np.swapaxes(L, -1, -2), w[..., None])
    return (Lam @ z)[..., 0]


__all__ = ["StructuredStats", "StructuredTooLargeError", "draw_effects_numpy",
           "group_loglik_numpy", "loglik_numpy",
           "statistics_at", "structured_design", "structured_statistics",
           "unstr_weights_numpy"]
