r"""Sufficient statistics (cross-products) of a Gaussian mixed model, for the marginal engine.

Model (DESIGN.md): y = Xβ + Zu + ε, u ~ N(0, G), ε ~ N(0, σ²I). The Gaussian marginal likelihood
y ~ N(Xβ, ZGZᵀ + σ²I) depends on the data only through

    XᵀX (p×p),  Xᵀy (p),  yᵀy,  N,  ZᵀZ (M×M),  ZᵀX (M×p),  Zᵀy (M),     M = Σ_k J_k q_k,

computed here once, in one vectorised pass (``np.bincount`` per column pair for the
block-diagonal part, ``scipy.sparse`` products for couplings between factors) — nothing loops
over rows or group levels.

Segments (:class:`~mixedformula.design.reterms.Segment`)
--------------------------------------------------------
Group terms whose grouping factor has the *same codes* (``(1 | g) + (0 + x | g)``, ``(x || g)``,
terms sharing an ID, ``gr(g, by = h)`` next to ``(1 | g)``) are merged into one *segment*: a
single block-diagonal factor with Q = Σ q_k columns per level, columns ordered term by term
inside each level (level-major: column ``j Q + c``). Within a segment ZᵀZ is block diagonal with
one Q×Q block per level:

    A_j = Z_jᵀZ_j (J,Q,Q),   B_j = Z_jᵀX_j (J,Q,p),   c_j = Z_jᵀy_j (J,Q).

``kind == "block"``: one segment (one grouping factor, the common case). The marginal
likelihood costs O(J Q³) per evaluation.

``kind == "general"``: several segments (nested or crossed factors). The segment with most
columns J·Q is put first and kept block diagonal (A, B, c above); the remaining
r = M − J₁Q₁ columns ("rest") are held densely:

    C22 = Z₂ᵀZ₂ (r×r),  C21 = Z₂ᵀZ₁ (r × J₁Q₁),  B2 = Z₂ᵀX (r×p),  c2 = Z₂ᵀy (r).

The marginal engine then factors ΛᵀZᵀZΛ/σ² + I by a Schur complement on the rest (cost
O(J₁Q₁³ + r² J₁Q₁ + r³) per evaluation, memory O(r J₁Q₁ + r²)); ``max_dense`` bounds r and
``max_coupling`` bounds r·J₁Q₁ — beyond them :class:`MarginalTooLargeError` is raised so the
caller can fall back to the conditional engine. The full sparse ZᵀZ, ZᵀX, Zᵀy (in segment column
order) are kept as well.

Numerical centring
------------------
For stability the engine uses the OLS residual e = y − Xβ̂_ols (Xᵀe = 0) instead of y:
with d = β − β̂_ols,

    rᵀr = ‖y − Xβ‖² = eᵀe + dᵀXᵀXd,      Zᵀ(y − Xβ) = Zᵀe − ZᵀX d,

which avoids the cancellation in yᵀy − 2βᵀXᵀy + βᵀXᵀXβ when y has a large mean. ``ce`` / ``c2e``
hold Zᵀe; the raw ``c`` / ``c2`` / ``Xty`` / ``yty`` are kept too.

Addition terms
--------------
With brms' ``weights(w)`` and/or ``se(sei)`` (without ``sigma = TRUE``) every row of y, X and Z
is scaled by a_i = √w_i / se_i (:class:`~mixedformula.design.additions.RowScaling`, which derives
it): the statistics are those of the scaled rows, ``N`` is Σ w_i (the coefficient of log 2πσ²
in brms' weighted likelihood; the row count without weights) and ``const`` = −Σ w_i log se_i is
added to the log-likelihood; with se() σ is fixed at 1 in the scaled model.

Only univariate responses are handled (``response`` picks a column of ``design.y``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from .reterms import Segment, segments
from .types import Design


class MarginalTooLargeError(ValueError):
    """The dense part of the general (nested/crossed) marginal factorisation is too large."""


@dataclass
class MarginalStats:
    """Cross-products of y, X and Z (see module docstring for the math and layout)."""

    kind: str                          # "block" (one segment) or "general" (several)
    N: float                           # rows, or Σ w_i with weights() (module docstring)
    XtX: np.ndarray                    # (p, p)
    Xty: np.ndarray                    # (p,)
    yty: float
    beta_ols: np.ndarray               # (p,) least-squares fit of y on X
    ete: float                         # ‖y − X β_ols‖²
    segments: list[Segment]
    # first segment (block diagonal); shapes (J,Q,Q), (J,Q,p), (J,Q), (J,Q)
    A: np.ndarray | None = None
    B: np.ndarray | None = None
    c: np.ndarray | None = None
    ce: np.ndarray | None = None
    # general path: the other segments ("rest", r columns), dense
    C22: np.ndarray | None = None      # (r, r)
    C21: np.ndarray | None = None      # (r, J1*Q1)
    B2: np.ndarray | None = None       # (r, p)
    c2: np.ndarray | None = None       # (r,)
    c2e: np.ndarray | None = None      # (r,)
    # full sparse products in segment column order (general path)
    ZtZ: sp.csr_matrix | None = None   # (M, M)
    ZtX: np.ndarray | None = None      # (M, p)
    Zty: np.ndarray | None = None      # (M,)
    by_codes: dict = field(default_factory=dict)   # design term index -> (J,) by-codes
    #: weights()/se(): log-likelihood constant −Σ w_i log se_i (None without them)
    const: float | None = None
    #: se() without sigma = TRUE: σ ≡ 1 in the scaled model
    sigma_known: bool = False

    @property
    def p(self) -> int:
        return self.XtX.shape[0]

    @property
    def M(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def r(self) -> int:
        """Columns outside the first (block-diagonal) segment."""
        return self.M - (self.segments[0].size if self.segments else 0)

    def locate(self, term: int) -> tuple[int, int, int]:
        """(segment index, column offset inside the segment, q) of design term ``term``."""
        for si, s in enumerate(self.segments):
            for k, off, q in zip(s.terms, s.offsets, s.qs):
                if k == term:
                    return si, off, q
        raise KeyError(f"design term {term} is not in the statistics")


def _per_level(codes: np.ndarray, J: int, U: np.ndarray, V: np.ndarray,
               symmetric: bool = False) -> np.ndarray:
    """out[j] = Σ_{i: codes_i = j} U_i V_iᵀ, shape (J, a, b); rows with code −1 are ignored.

    One ``np.bincount`` per (column of U, column of V) pair — no loop over rows or levels.
    """
    a, b = U.shape[1], V.shape[1]
    idx = np.where(codes < 0, J, codes)
    out = np.empty((J, a, b))
    for i in range(a):
        for k in range(i if symmetric else 0, b):
            out[:, i, k] = np.bincount(idx, weights=U[:, i] * V[:, k], minlength=J + 1)[:J]
            if symmetric:
                out[:, k, i] = out[:, i, k]
    return out


def _sparse_Z(codes: np.ndarray, W: np.ndarray, J: int) -> sp.csr_matrix:
    n, Q = W.shape
    ok = codes >= 0
    rows = np.repeat(np.nonzero(ok)[0], Q)
    cols = (codes[ok, None] * Q + np.arange(Q)[None, :]).ravel()
    return sp.csr_matrix((W[ok].ravel(), (rows, cols)), shape=(n, J * Q))


def sufficient_statistics(design: Design, response: int = 0, max_dense: int = 4000,
                          max_coupling: float = 2.5e7) -> MarginalStats:
    """Cross-products of ``design`` for the marginal likelihood (see the module docstring).

    ``response`` selects the column of ``design.y``. Raises :class:`MarginalTooLargeError` for a
    general (several factors) design whose dense part has more than ``max_dense`` columns or
    whose coupling matrix Z₂ᵀZ₁ has more than ``max_coupling`` entries.
    """
    if design.y is None:
        raise ValueError("the design has no response")
    y = np.asarray(design.y, dtype=float)
    y = y[:, response] if y.ndim == 2 else y
    if getattr(design, "offset", None) is not None:
        y = y - design.offset              # offset(): the statistics of y - offset
    X = np.asarray(design.X, dtype=float)
    N, p = X.shape
    from .additions import marginal_scaling
    scaling = marginal_scaling(design)
    a = None
    if scaling is not None:               # weights()/se(): rows scaled by √w / se
        a = scaling.scale
        y, X = y * a, X * a[:, None]
        N = scaling.N
    XtX = X.T @ X
    Xty = X.T @ y
    yty = float(y @ y)
    if p:
        beta_ols = np.linalg.lstsq(X, y, rcond=None)[0]
        e = y - X @ beta_ols
    else:
        beta_ols, e = np.zeros(0), y
    ete = float(e @ e)
    segs = segments(design)
    by_codes = {k: np.asarray(t.by_codes) for k, t in enumerate(design.terms)
                if t.by_codes is not None}
    kind = "block" if len(segs) <= 1 else "general"
    stats = MarginalStats(kind=kind, N=N, XtX=XtX, Xty=Xty, yty=yty, beta_ols=beta_ols,
                          ete=ete, segments=segs, by_codes=by_codes)
    if scaling is not None:
        stats.const, stats.sigma_known = scaling.const, scaling.sigma_known

    def columns(s):
        codes, W = s.columns(design)
        return (codes, W) if a is None else (codes, W * a[:, None])
    if not segs:
        return stats
    if kind == "general":
        # the largest segment stays block diagonal; it goes first
        first = int(np.argmax([s.size for s in segs]))
        segs.insert(0, segs.pop(first))
        r = sum(s.size for s in segs[1:])
        coupling = r * segs[0].size
        if r > max_dense or coupling > max_coupling:
            raise MarginalTooLargeError(
                f"the marginal likelihood of these crossed/nested group terms needs a dense "
                f"{r} x {r} factorisation and a {r} x {segs[0].size} coupling matrix "
                f"(limits {max_dense} and {int(max_coupling)} entries); use the conditional "
                f"engine (likelihood='conditional')")
    start = 0
    for s in segs:
        s.start = start
        start += s.size
    codes1, W1 = columns(segs[0])
    J1 = segs[0].J
    stats.A = _per_level(codes1, J1, W1, W1, symmetric=True)
    stats.B = _per_level(codes1, J1, W1, X)
    stats.c = _per_level(codes1, J1, W1, y[:, None])[:, :, 0]
    stats.ce = _per_level(codes1, J1, W1, e[:, None])[:, :, 0]
    if kind == "general":
        Zs = [_sparse_Z(*columns(s), s.J) for s in segs]
        Z = sp.hstack(Zs, format="csr")
        ZtZ = (Z.T @ Z).tocsr()
        stats.ZtZ = ZtZ
        stats.ZtX = np.asarray(Z.T @ X)
        stats.Zty = np.asarray(Z.T @ y).ravel()
        n1 = segs[0].size
        Z2 = Z[:, n1:]
        stats.C22 = np.asarray((Z2.T @ Z2).todense())
        stats.C21 = np.asarray((Z2.T @ Zs[0]).todense())
        stats.B2 = stats.ZtX[n1:]
        stats.c2 = stats.Zty[n1:]
        stats.c2e = np.asarray(Z2.T @ e).ravel()
    return stats
