r"""Sufficient statistics of a Gaussian mixed model from a Dask DataFrame (out-of-memory data).

The marginal likelihood (:mod:`.crossprod`) needs the data only through sums over rows,

    XᵀX = Σ_parts X_pᵀX_p,   A_j = Σ_parts Σ_{i ∈ p, g(i) = j} w_i w_iᵀ,   ...,   N = Σ_parts n_p,

so it is a map-reduce: every partition is turned into its design with the *same*
:class:`~.spec.DesignSpec` (``spec.transform``) and into its partial statistics with
:func:`~.crossprod.sufficient_statistics` (group-wise sums keyed by the *global* level codes);
the partials are added in a tree (``dask.delayed``). Passes over the data:

1. **levels**: observed combinations of every grouping factor (and its ``by`` factor), values
   of categorical predictors, missing-value counts. From these one small in-memory frame builds
   the DesignSpec, whose group levels are then set to the global ones (sorted as lme4's factors,
   exactly as :func:`~.spec.design_matrices` codes them), so all partitions agree.
2. **statistics**: the partial cross-products, plus a TSQR reduction of [X y]
   (R = qr([R₁; R₂; …])) for the least-squares centring of :mod:`.crossprod`:
   β̂ = R_XX⁻¹ R_Xy and eᵀe = R_yy², free of the cancellation in yᵀy − 2β̂ᵀXᵀy + β̂ᵀXᵀXβ̂.
   Zᵀe = Zᵀy − ZᵀXβ̂ (rounding ε·|Zᵀy|, the order of the statistics' own rounding).
3. **median and MAD of y** (brms' default priors use them): exact order statistics by histogram
   refinement — count y in 2¹⁶ bins, keep the bin(s) holding the middle rank(s), collect their
   values (or refine again when they hold more than 10⁶ rows); for y and then |y − median|, so
   usually four passes that read only the response.

Rows with a missing value in a used column are dropped per partition and counted; the warning
(and ``na_action="raise"``) are the in-memory path's. Stateful transforms (``scale``, ``poly``,
...) would need global quantities from a pass of their own and are refused with an error, as
are fixed-effect columns that are collinear (the in-memory path drops them like lme4 does; here
they are named so the formula can be changed).

The result is a :class:`ReducedDesign` (a :class:`~.types.Design` without rows, carrying N, the
column means of X and the response's median/MAD) and the :class:`~.crossprod.MarginalStats`
that the in-memory path would have built, equal to floating-point accuracy.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import FormulaSpec, parse
from .crossprod import MarginalStats, sufficient_statistics
from .spec import (aliased_frame, by_mapping, check_columns, check_finite, code_groups,
                   design_matrices, predictor_columns, response_matrix)
from .types import Design

#: formulaic functions whose result depends on the whole column (mean, sd, quantiles)
STATEFUL = ("scale", "center", "standardize", "poly", "bs", "cr", "cc", "cs", "ns")
_STATEFUL_RE = re.compile(r"\b(" + "|".join(STATEFUL) + r")\s*\(")
_C_ARG = re.compile(r"\b(?:C|factor|as_factor)\(\s*`([^`]+)`")
HIST_BINS = 1 << 16
GATHER_MAX = 1_000_000


def is_dask_frame(data) -> bool:
    """A ``dask.dataframe.DataFrame`` (checked without importing dask)."""
    return type(data).__module__.startswith("dask") and hasattr(data, "to_delayed")


@dataclass(repr=False)
class ReducedDesign(Design):
    """A :class:`Design` whose rows stayed in the Dask frame: X, y and codes have 0 rows."""

    n_rows: int = 0
    x_sums: np.ndarray | None = None             # (p,) Σ_i X_i
    centre: tuple[float, float] | None = None    # (median, MAD) of y

    rows_in_memory = False

    @property
    def nobs(self) -> int:
        return self.n_rows

    def column_means(self, k: int = 0, columns: list[int] | None = None) -> np.ndarray:
        means = self.x_sums / self.n_rows
        return means if columns is None else means[columns]

    def response_centre(self, k: int) -> tuple[float, float] | None:
        return self.centre


def _plain(df: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    """The used columns, pandas' StringDtype (Dask's default for text) as object: formulaic
    does not read StringDtype columns as categorical (nor does the in-memory path)."""
    df = df[used]
    text = [c for c in used if isinstance(df[c].dtype, pd.StringDtype)]
    return df.astype({c: object for c in text}) if text else df


# -- pass 1: levels --------------------------------------------------------------------------
def _categorical_columns(spec: FormulaSpec, meta: pd.DataFrame) -> list[str]:
    """Predictors whose values formulaic turns into levels: non-numeric, bool, or inside C()."""
    in_c = set(_C_ARG.findall(spec.fixed)) | {
        c for g in spec.groups for c in _C_ARG.findall(g.expr)}
    out = []
    for c in predictor_columns(spec):
        col = meta[c]
        numeric = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        if not numeric or c in in_c:
            out.append(c)
    return out


def _group_keys(spec: FormulaSpec) -> list[tuple[str, ...]]:
    keys = []
    for g in spec.groups:
        key = tuple(g.factors) + ((g.by,) if g.by and g.by not in g.factors else ())
        if key not in keys:
            keys.append(key)
    return keys


def _levels_part(df: pd.DataFrame, used: list[str], keys, categorical) -> dict:
    df = _plain(df, used)
    na = df[used].isna()
    keep = ~na.any(axis=1).to_numpy()
    ok = df.loc[keep]
    return {"rows": len(df), "na": na.sum().to_numpy(dtype=np.int64),
            "dropped": int((~keep).sum()), "template": ok.iloc[:1][used],
            "groups": [ok[list(k)].drop_duplicates() for k in keys],
            "categorical": [ok[c].drop_duplicates() for c in categorical]}


def _levels_add(a: dict, b: dict) -> dict:
    return {"rows": a["rows"] + b["rows"], "na": a["na"] + b["na"],
            "dropped": a["dropped"] + b["dropped"],
            "template": a["template"] if len(a["template"]) else b["template"],
            "groups": [pd.concat([x, y]).drop_duplicates() for x, y in zip(a["groups"],
                                                                         b["groups"])],
            "categorical": [pd.concat([x, y]).drop_duplicates()
                            for x, y in zip(a["categorical"], b["categorical"])]}


# -- pass 2: statistics ----------------------------------------------------------------------
def _complete(df: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    df = _plain(df, used)
    return df.loc[~df[used].isna().any(axis=1).to_numpy()]


def _stats_part(df: pd.DataFrame, dspec, used: list[str]) -> dict | None:
    df = _complete(df, used)
    if len(df) == 0:
        return None
    d = dspec.transform(df, require_response=True)
    check_finite(d.X, d.X_names, "the fixed part")
    for t in d.terms:
        check_finite(t.X, t.coef_names, f"the group term {t.term.text!r}")
    st = sufficient_statistics(d)
    y = d.y[:, 0]
    R = np.linalg.qr(np.column_stack([d.X, y]), mode="r")
    out = {k: getattr(st, k) for k in ("N", "XtX", "Xty", "yty", "A", "B", "c", "ZtZ", "ZtX",
                                        "Zty", "C22", "C21", "B2", "c2")}
    out.update(R=R, segments=st.segments, kind=st.kind, x_sums=d.X.sum(axis=0),
               ymin=float(y.min()), ymax=float(y.max()))
    return out


def _stats_add(a: dict | None, b: dict | None) -> dict | None:
    if a is None or b is None:
        return a if b is None else b
    out = dict(a)
    for k, v in b.items():
        if k == "R":
            out[k] = np.linalg.qr(np.vstack([a[k], v]), mode="r")
        elif k == "ymin":
            out[k] = min(a[k], v)
        elif k == "ymax":
            out[k] = max(a[k], v)
        elif k in ("segments", "kind") or v is None:
            continue
        else:
            out[k] = a[k] + v
    return out


def _tree_sum(parts: list, add):
    """Pairwise (tree) reduction of delayed partials: depth log₂(partitions)."""
    import dask
    add_d = dask.delayed(add, pure=True)
    while len(parts) > 1:
        parts = [add_d(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _map_reduce(ddf, part_fn, add, *args):
    import dask
    fn = dask.delayed(part_fn, pure=True)
    return dask.compute(_tree_sum([fn(p, *args) for p in ddf.to_delayed()], add))[0]


# -- pass 3: exact median ---------------------------------------------------------------------
def _response_part(df: pd.DataFrame, dspec, used: list[str]) -> np.ndarray:
    df = _complete(df, used)
    if len(df) == 0:
        return np.zeros(0)
    fdf = aliased_frame(df, dspec.columns)
    return response_matrix(dspec.formula, df, fdf, dspec.columns)[:, 0]


def _hist_part(df, dspec, used, edges, shift):
    v = _values(df, dspec, used, shift)
    return np.histogram(v, bins=edges)[0]


def _values(df, dspec, used, shift):
    y = _response_part(df, dspec, used)
    return y if shift is None else np.abs(y - shift)


def _gather_part(df, dspec, used, lo, hi, last, shift):
    """Distinct values in [lo, hi) (or [lo, hi]) with their counts: few rows when tied."""
    v = _values(df, dspec, used, shift)
    return np.unique(v[(v >= lo) & ((v <= hi) if last else (v < hi))], return_counts=True)


def _merge_counts(a, b):
    vals, inv = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    return vals, np.bincount(inv, weights=np.concatenate([a[1], b[1]])).astype(np.int64)


def _order_statistics(ddf, dspec, used, ks: list[int], lo: float, hi: float, shift=None,
                      refinements: int = 3) -> list[float]:
    """The ks-th smallest (0-based, consecutive ranks) response values (or |y − shift|) in
    [lo, hi], exactly.

    Each refinement is one pass (a histogram over ``HIST_BINS`` bins, ``np.histogram``'s
    right-closed last bin) that narrows [lo, hi] to the bins holding the ranks (for consecutive
    ranks only empty bins lie between them); once those hold at most ``GATHER_MAX`` rows (or
    after ``refinements`` passes: then the rows are tied values) their distinct values and counts
    are collected in one more pass and the ranks are read off."""
    below, last = 0, True
    for step in range(refinements + 1):
        if hi <= lo:
            return [float(lo)] * len(ks)
        edges = np.linspace(lo, hi, HIST_BINS + 1)
        edges[-1] = hi
        counts = _map_reduce(ddf, _hist_part, np.add, dspec, used, edges, shift)
        cum = np.cumsum(counts)
        i0, i1 = (int(np.searchsorted(cum, k - below, side="right")) for k in (ks[0], ks[-1]))
        n_in = int(cum[i1] - (cum[i0 - 1] if i0 else 0))
        below += int(cum[i0 - 1]) if i0 else 0
        lo, hi, last = float(edges[i0]), float(edges[i1 + 1]), last and i1 == HIST_BINS - 1
        if n_in <= GATHER_MAX or step == refinements:
            break
        if not last:   # the next range is half-open: keep its right edge out
            hi = float(np.nextafter(hi, -np.inf))
            last = True
    vals, cnt = _map_reduce(ddf, _gather_part, _merge_counts, dspec, used, lo, hi, last,
                            shift)
    cum = np.cumsum(cnt)
    return [float(vals[int(np.searchsorted(cum, k - below, side="right"))]) for k in ks]


def _median(ddf, dspec, used, n: int, lo: float, hi: float, shift=None) -> float:
    """np.median: the middle value, or the mean of the two middle ones for even n."""
    ks = [(n - 1) // 2] if n % 2 else [n // 2 - 1, n // 2]
    return float(np.mean(_order_statistics(ddf, dspec, used, ks, lo, hi, shift)))


# -- the whole reduction -----------------------------------------------------------------------
def _refuse_stateful(spec: FormulaSpec) -> None:
    texts = [spec.fixed, *spec.responses, *(g.expr for g in spec.groups)]
    for t in texts:
        m = _STATEFUL_RE.search(t)
        if m:
            raise FormulaError(f"{m.group(1)}() learns from the whole column (its mean, sd or "
                               "knots), which a Dask fit does not compute; transform the "
                               "column beforehand, or fit in memory (data.compute())",
                               spec.text)


def _spec_for(spec: FormulaSpec, lev: dict, used: list[str], keys, categorical):
    """DesignSpec from one small frame holding every categorical value; group levels global."""
    template = lev["template"]
    rows = [template]
    for c, vals in zip(categorical, lev["categorical"]):
        block = template.loc[template.index.repeat(len(vals))].copy()
        block[c] = vals.to_numpy()
        rows.append(block)
    small = pd.concat(rows, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dspec = design_matrices(spec, small).spec
    levels, by_levels, by_codes = [], [], []
    for term in spec.groups:
        uniq = lev["groups"][keys.index(tuple(term.factors) + (
            (term.by,) if term.by and term.by not in term.factors else ()))]
        uniq = uniq.reset_index(drop=True)
        codes, lv = code_groups(uniq, term.factors)
        levels.append(lv)
        if term.by:
            bl, bc = by_mapping(uniq, term, codes, lv)
        else:
            bl = bc = None
        by_levels.append(bl)
        by_codes.append(bc)
    dspec.levels, dspec.by_levels, dspec.by_codes = levels, by_levels, by_codes
    return dspec


def _check_rank(R: np.ndarray, names: list[str], XtX: np.ndarray, tol: float = 1e-7) -> None:
    """Columns whose part orthogonal to the earlier ones is below tol × their norm (lme4)."""
    p = len(names)
    norms = np.sqrt(np.maximum(np.diag(XtX), 0))
    bad = [names[j] for j in range(p) if not abs(R[j, j]) > tol * norms[j]]
    if bad:
        raise DataError(f"the fixed-effect columns are collinear ({', '.join(bad)} is a "
                        "combination of earlier columns or all zero); drop the aliased terms "
                        "from the formula (the in-memory fit drops them as lme4 does)")


def design_spec(formula, ddf, na_action: str = "drop"):
    """(DesignSpec with the global levels, used columns, rows dropped) of ``formula`` on the
    Dask DataFrame ``ddf``: pass 1 of the module docstring (levels, missing values)."""
    spec = formula if isinstance(formula, FormulaSpec) else parse(formula)
    if na_action not in ("drop", "raise"):
        raise ValueError("na_action must be 'drop' or 'raise'")
    _refuse_stateful(spec)
    meta = ddf._meta
    check_columns(spec, meta, spec.variables)
    used = list(spec.variables)
    keys = _group_keys(spec)
    categorical = _categorical_columns(spec, meta)

    lev = _map_reduce(ddf, _levels_part, _levels_add, used, keys, categorical)
    n_total, n_dropped = int(lev["rows"]), int(lev["dropped"])
    if n_total == 0:
        raise DataError("the data have no rows")
    if n_dropped:
        cols = [f"{c} ({int(k)})" for c, k in zip(used, lev["na"]) if k]
        msg = f"{n_dropped} of {n_total} rows have missing values in {', '.join(cols)}"
        if na_action == "raise":
            raise DataError(msg)
        if n_dropped == n_total:
            raise DataError(msg + ": no complete rows are left")
        warnings.warn(msg + "; those rows were dropped", UserWarning, stacklevel=3)
    dspec = _spec_for(spec, lev, used, keys, categorical)
    return dspec, used, n_dropped


def complete_rows(df: pd.DataFrame, used: list[str]) -> pd.DataFrame:
    """The rows of a partition without missing values in the used columns (text as object)."""
    return _complete(df, used)


def map_reduce(ddf, part_fn, add, *args):
    """``add``-reduction (a tree of ``dask.delayed`` calls) of ``part_fn(partition, *args)``
    over the partitions of ``ddf``, computed on the active Dask scheduler."""
    return _map_reduce(ddf, part_fn, add, *args)


def reduced_design(dspec, n: int, n_dropped: int, x_sums) -> "ReducedDesign":
    """A :class:`ReducedDesign` (no rows) of N rows with the DesignSpec's terms and levels."""
    return _reduced_design(dspec, n, n_dropped, x_sums, None)


def reduce_statistics(formula, ddf, na_action: str = "drop"
                      ) -> tuple[ReducedDesign, MarginalStats]:
    """(ReducedDesign, MarginalStats) of ``formula`` on the Dask DataFrame ``ddf``.

    Runs on the active Dask scheduler (a ``distributed.Client`` if one is open). See the
    module docstring for the passes and the math."""
    spec = formula if isinstance(formula, FormulaSpec) else parse(formula)
    if spec.multivariate or spec.trials:
        raise DataError("Dask statistics cover univariate Gaussian models; mvbind()/trials() "
                        "need the data in memory (data.compute())")
    dspec, used, n_dropped = design_spec(spec, ddf, na_action)

    tot = _map_reduce(ddf, _stats_part, _stats_add, dspec, used)
    p = tot["XtX"].shape[0]
    R = tot["R"]
    if p:
        _check_rank(R, dspec.X_names, tot["XtX"])
        from scipy.linalg import solve_triangular
        beta = solve_triangular(R[:p, :p], R[:p, p])
    else:
        beta = np.zeros(0)
    ete = float(R[p, p] ** 2)
    stats = MarginalStats(kind=tot["kind"], N=int(tot["N"]), XtX=tot["XtX"], Xty=tot["Xty"],
                          yty=float(tot["yty"]), beta_ols=beta, ete=ete,
                          segments=tot["segments"], by_codes={
                              k: np.asarray(b) for k, b in enumerate(dspec.by_codes)
                              if b is not None})
    for k in ("A", "B", "c", "ZtZ", "ZtX", "Zty", "C22", "C21", "B2", "c2"):
        setattr(stats, k, tot.get(k))
    if stats.A is not None:
        stats.ce = stats.c - stats.B @ beta
    if stats.c2 is not None:
        stats.c2e = stats.c2 - stats.B2 @ beta
    if stats.ZtZ is not None:
        stats.ZtZ = stats.ZtZ.tocsr()

    n = stats.N
    lo, hi = tot["ymin"], tot["ymax"]
    med = _median(ddf, dspec, used, n, lo, hi)
    mad = float(1.4826 * _median(ddf, dspec, used, n, 0.0, max(hi - med, med - lo), med))

    design = _reduced_design(dspec, n, n_dropped, tot["x_sums"], (med, mad))
    return design, stats


def _reduced_design(dspec, n: int, n_dropped: int, x_sums, centre) -> ReducedDesign:
    """The DesignSpec's facts as a Design with no rows (blocks keep levels and q)."""
    from .types import GroupBlock
    blocks = []
    for term, names, levels, bl, bc in zip(dspec.formula.groups, dspec.coef_names,
                                           dspec.levels, dspec.by_levels, dspec.by_codes):
        blocks.append(GroupBlock(term=term, coef_names=list(names),
                                 X=np.zeros((0, len(names))), codes=np.zeros(0, np.int64),
                                 levels=list(levels), by_levels=bl, by_codes=bc))
    return ReducedDesign(formula=dspec.formula, y=np.zeros((0, 1)),
                         response_names=dspec.response_names,
                         X=np.zeros((0, len(dspec.X_names))), X_names=list(dspec.X_names),
                         terms=blocks, spec=dspec, row_index=None, n_dropped=n_dropped,
                         n_rows=n, x_sums=np.asarray(x_sums, dtype=float), centre=centre)
