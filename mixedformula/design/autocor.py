"""Time order and lag structure of brms' autocorrelation terms ``ar()`` and ``cosy()``.

Rows are ordered by group (``gr``), then by ``time`` within a group, as brms does before
fitting (brms 2.18 ``order_data``); the rows of our design stay in the data order, and the
structure below says, for every row, which rows precede it in its group.

**ar(time, gr, p)** (brms' regression form, ``cov = FALSE``). With η the linear predictor
without the autocorrelation term and e_n = y_n − η_n the residuals,

    μ_n = η_n + Σ_{k=1..p} ar[k] · e_{n−k},     y_n ~ family(μ_n, σ, ...)

where n−k is the k-th row before n in time order *within n's group*; the first k rows of a
group have no k-th lag (e = 0 there). Gaps in time are ignored: the previous row in time
order is the lag whatever its time value (brms' ``J_lag`` counts rows, checked with
``make_standata`` on times 1, 2, 3, 4, 7: lags 1, 2, 2, 2 — and non-integer times are only
sorted, as in brms). ``lags[n, k-1]`` is that row's index, or -1.

**arma(time, gr, p, q)**, **ma(time, gr, q)** (brms 2.18's regression form, ``cov = FALSE``,
transcribed from its generated Stan model block): in (group, time) order, per row n,

    μ_n = η_n + Σ_{k=1..q} ma[k] · err_{n−k},    err_n = y_n − μ_n,
    μ_n ← μ_n + Σ_{k=1..p} ar[k] · err_{n−k},    y_n ~ family(μ_n, σ, ...)

so the errors err (the residuals net of the MA part, before the AR part is added) follow the
recursion err_n = y_n − η_n − Σ_k ma[k] err_{n−k}, sequential within each group, and both parts
read the same lags (``lags`` has max(p, q) columns; brms' ``J_lag``/``Err``). With p = 0 this
is ``ma()``; with q = 0 it is ``ar()`` above (err = e). In matrix form per series, with L_ar,
L_ma the strictly lower banded lag matrices, y − η = (I + L_ma)(I − L_ar)⁻¹ ε.

**ar(time, gr, p = 1, cov = TRUE)**, ``ma(..., q = 1, cov = TRUE)``, ``arma(..., p = 1, q = 1,
cov = TRUE)`` (brms' covariance formulation, kind "cov_arma"; brms 2.18's Stan functions
``cholesky_cor_ar1`` / ``_ma1`` / ``_arma1``): per group j with n_j rows,
y_j ~ N(η_j, σ² Γ[1:n_j, 1:n_j]), Γ the Toeplitz autocovariance of a stationary ARMA(1, 1)
with unit innovations (ρ = ar, θ = ma, either may be 0):

    Γ_0 = (1 + θ² + 2ρθ)/(1 − ρ²),  Γ_h = (1 + ρθ)(ρ + θ) ρ^{h−1}/(1 − ρ²)  (h ≥ 1)

(ar: ρ^h/(1 − ρ²); ma: 1 + θ², θ, 0, ...), ar and ma in (−1, 1) (brms' bounds). σ is the
innovation sd. Rows are the group's rows in time order, gaps ignored (as ``J_lag``). The
backend writes the MVN as its sequential conditionals: with L = chol(Γ) of the longest group
(a leading block of L is the Cholesky factor of the leading block of Γ) and z = L⁻¹ r per
group, row t has conditional sd σ L_tt and mean η_t + r_t − σ L_tt z_t.

That factor is banded and found in O(T) (:func:`arma_band`, :func:`geometric_scan`): with
u_1 = r_1, u_t = r_t − ρ r_{t−1} (a unit-Jacobian map, so the conditionals of r and u given the
earlier rows have the same sd and the same residual), Cov(u) = Γ̃ is tridiagonal: Γ̃_11 = Γ_0,
Γ̃_tt = 1 + θ² (t ≥ 2), Γ̃_{t,t−1} = Γ_1 − ρΓ_0 = θ (and Γ_2 − ρΓ_1 = 0 beyond). Its leading
minors D_t = (1 + θ²) D_{t−1} − θ² D_{t−2} (D_0 = 1, D_1 = Γ_0) have the roots 1 and θ², so

    D_t = 1 + (Γ_0 − 1)(1 − θ^{2t})/(1 − θ²),    L̃_tt = √(D_t / D_{t−1}),  L̃_{t,t−1} = θ/L̃_{t−1,t−1},

and the forward substitution z = L̃⁻¹u becomes, with z_t = ω_t/√(D_t D_{t−1}), the constant-
coefficient recursion ω_t = D_{t−1} u_t − θ ω_{t−1} (ω_0 = 0): a geometric prefix sum, computed
by ⌈log₂ T⌉ shifted additions over all groups at once (no loop over time, no T × T matrix).
ar(): θ = 0 (L̃ = diag(√Γ_0, 1, 1, …), the lag form above); ma(): ρ = 0 (u = r).

**cosy(time, gr)** (compound symmetry). Per group j with n_j rows,
y_j ~ N(μ_j, Σ_j), Σ_j = σ²[(1 − ρ) I + ρ 1 1ᵀ], ρ = ``cosy`` ∈ (0, 1) (brms' bounds). By
Sherman–Morrison and the matrix determinant lemma, with r = y_j − μ_j,

    log|Σ_j| = n_j log σ² + (n_j − 1) log(1 − ρ) + log(1 + (n_j − 1) ρ)
    rᵀΣ_j⁻¹r = [Σ r_i² − ρ/(1 + (n_j − 1)ρ) (Σ r_i)²] / (σ²(1 − ρ)).

The backend evaluates the same density as a product of its sequential conditionals (exact,
O(n_j), one normal per row): with k = ``pos[n]`` earlier rows of the group and S their
residual sum,

    y_n | earlier ~ N(μ_n + ρ/(1 + (k − 1)ρ) · S,  σ² (1 − ρ)(1 + kρ)/(1 + (k − 1)ρ)),

whose variances multiply to |Σ_j| and whose squared standardised residuals add to rᵀΣ_j⁻¹r.
Compound symmetry does not depend on the order, so ``time`` only needs unique values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError


@dataclass(frozen=True)
class AutocorStructure:
    """The rows' order for one ar()/cosy() term (arrays over the design's rows)."""

    kind: str                  # "ar" | "arma" | "cov_arma" | "cosy" | "unstr"
    p: int                     # AR order (0 for cosy)
    codes: np.ndarray          # (n,) group index of each row
    levels: list[str]          # group labels
    order: np.ndarray          # (n,) rows sorted by group, then time
    pos: np.ndarray            # (n,) number of earlier rows of the same group
    lags: np.ndarray           # (n, max(p, q)) row index of the k-th earlier row of the group,
    text: str = ""             # or -1
    q: int = 0                 # MA order (arma()/ma(); 0 otherwise)
    times: tuple = ()          # unstr(): the T time labels (:mod:`.unstr`)
    tidx: np.ndarray | None = None   # unstr(): (n,) index of each row's time among them

    @property
    def starts(self) -> np.ndarray:
        """(n,) index into ``order`` of the first row of each row's group."""
        inv = np.empty_like(self.order)
        inv[self.order] = np.arange(len(self.order))
        return inv - self.pos


def autocor_structure(term, df: pd.DataFrame, groups=None) -> AutocorStructure:
    """The structure of ``term`` (:class:`~mixedformula.formula.autocor.AutocorTerm`) on the
    rows ``df`` (missing values already dropped); ``groups``: (codes, levels) of ``term.gr``
    (None: one series)."""
    n = len(df)
    if groups is not None:
        codes, levels = groups
    else:
        codes, levels = np.zeros(n, dtype=np.int64), ["1"]
    times, tidx = (), None
    if term.kind == "unstr":
        from .unstr import unstr_times
        tidx, labels = unstr_times(term, df)
        times = tuple(labels)
        key = tidx.astype(float)
    elif term.time is not None:
        t = df[term.time]
        if pd.api.types.is_bool_dtype(t) or not (pd.api.types.is_numeric_dtype(t)
                                                  or pd.api.types.is_datetime64_any_dtype(t)):
            raise DataError(f"the time variable {term.time!r} of {term.text} must be numeric "
                            f"(or dates); it has type {t.dtype}")
        tv = t.to_numpy()
        if pd.api.types.is_numeric_dtype(t) and not np.all(np.isfinite(tv.astype(float))):
            raise DataError(f"the time variable {term.time!r} of {term.text} has "
                            f"{int((~np.isfinite(tv.astype(float))).sum())} infinite value(s)")
        key = pd.Series(tv).rank(method="dense").to_numpy()
    else:
        key = np.arange(n, dtype=float)
    order = np.lexsort((key, codes))
    sc, sk = codes[order], key[order]
    same = (sc[1:] == sc[:-1]) & (sk[1:] == sk[:-1])
    if same.any():
        first = order[1:][same][0]
        where = (f" of group {levels[codes[first]]!r}" if term.gr else "")
        raise DataError(f"{int(same.sum())} row(s) of {term.text} repeat a time point within "
                        f"their group (e.g. time {df[term.time].iloc[first]}{where}): time "
                        f"points within groups must be unique (as brms requires)")
    new_group = np.r_[True, sc[1:] != sc[:-1]]
    start = np.maximum.accumulate(np.where(new_group, np.arange(n), 0))
    pos_sorted = np.arange(n) - start
    pos = np.empty(n, dtype=np.int64)
    pos[order] = pos_sorted
    p = term.p if term.kind in ("ar", "arma", "cov_arma") else 0
    q = getattr(term, "q", 0) if term.kind in ("arma", "cov_arma") else 0
    lags = np.full((n, max(p, q)), -1, dtype=np.int64)
    for k in range(1, max(p, q) + 1):
        ok = pos_sorted >= k
        lag_sorted = np.full(n, -1, dtype=np.int64)
        lag_sorted[ok] = order[np.nonzero(ok)[0] - k]
        lags[order, k - 1] = lag_sorted
    return AutocorStructure(kind=term.kind, p=p, codes=codes, levels=list(levels),
                            order=order, pos=pos, lags=lags, text=term.text, q=q,
                            times=times, tidx=tidx)


def arma_autocov(ar, ma, n: int, xp=np, h=None):
    """Γ_0..Γ_{n−1} of a stationary ARMA(1, 1) with unit innovations (module doc); ``ar``,
    ``ma`` scalars (numpy or PyTensor through ``xp``; ``h`` the exponents 1..n−2 of ρ as
    given). ρ^0 is written as 1, not as a power (whose derivative 0 · ρ⁻¹ is NaN at ρ = 0)."""
    h = np.arange(1.0, n - 1) if h is None else h
    g0 = (1.0 + ma * ma + 2.0 * ar * ma) / (1.0 - ar * ar)
    c = (1.0 + ar * ma) * (ar + ma) / (1.0 - ar * ar)
    out = [xp.reshape(g0, (1,))]
    if n > 1:
        out += [xp.reshape(c, (1,)), c * ar ** h]
    return xp.concatenate(out)


def arma_band(ar, ma, m, xp=np):
    """(D_0..D_T) of the tridiagonal Γ̃ (module doc): ``m`` the exponents 1..T (data, so the
    length is not part of the graph), ``ar``, ``ma`` scalars (numpy or PyTensor through
    ``xp``). θ^0 is never formed (its derivative 0 · θ⁻¹ is NaN at θ = 0)."""
    g0 = (1.0 + ma * ma + 2.0 * ar * ma) / (1.0 - ar * ar)
    th2 = ma * ma
    D = 1.0 + (g0 - 1.0) * (1.0 - th2 ** m) / (1.0 - th2)
    return xp.concatenate([xp.ones((1,)), D])


def geometric_scan(b, c, T: int):
    """x_t = c x_{t−1} + b_t (x_0 = b_0) along axis 0 of ``b`` (T, ...) by ⌈log₂ T⌉ shifted
    additions (Hillis–Steele): after step k, x_t = Σ_{j < 2^{k+1}} c^j b_{t−j}. |c| < 1 keeps
    every term bounded. numpy; the same steps in the sampler's graph:
    :func:`mixedformula.backends.pymc.autocor.geometric_scan_graph`."""
    x, k = b, 1
    for _ in range(scan_steps(T)):
        if k >= len(x):                 # nothing left to add (and c^(2^k) may overflow)
            break
        x = x + c * np.concatenate([np.zeros_like(x[:k]), x[:-k]])
        c, k = c * c, 2 * k
    return x


def scan_steps(T: int) -> int:
    """The number of doubling steps :func:`geometric_scan` needs to cover ``T`` rows."""
    return max(1, int(np.ceil(np.log2(max(T, 2)))))


def ar_term(resid: np.ndarray, lags: np.ndarray, ar: np.ndarray) -> np.ndarray:
    """Σ_k ar[k] e_{n−k} for draws: ``resid`` (S, n) residuals y − η, ``ar`` (S, p)."""
    padded = np.concatenate([resid, np.zeros((resid.shape[0], 1))], axis=1)
    lags = lags[:, :ar.shape[1]]
    idx = np.where(lags < 0, resid.shape[1], lags)            # -1 → the zero column
    return np.einsum("snk,sk->sn", padded[:, idx], ar)


def arma_errors(resid: np.ndarray, structure, ma: np.ndarray) -> np.ndarray:
    """brms' errors err_n = r_n − Σ_k ma[k] err_{n−k} for draws: ``resid`` (S, n) = y − η,
    ``ma`` (S, q); one step per time position, vectorised over draws and groups."""
    S, n = resid.shape
    q = ma.shape[1]
    err = np.zeros((S, n + 1))                                  # column n: the missing lag
    idx = np.where(structure.lags < 0, n, structure.lags)[:, :q]
    for t in range(int(structure.pos.max(initial=-1)) + 1):
        rows = np.nonzero(structure.pos == t)[0]
        err[:, rows] = resid[:, rows] - np.einsum("srk,sk->sr", err[:, idx[rows]], ma)
    return err[:, :n]


def arma_term(resid: np.ndarray, structure, ar: np.ndarray, ma: np.ndarray) -> np.ndarray:
    """μ − η of brms' arma(): Σ_k ma[k] err_{n−k} + Σ_k ar[k] err_{n−k} (``ar`` (S, p), may
    have p = 0; ``ma`` (S, q))."""
    err = arma_errors(resid, structure, ma)
    out = ar_term(err, structure.lags, ma)
    return out + ar_term(err, structure.lags, ar) if ar.shape[1] else out
