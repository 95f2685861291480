r"""Predictions, comparisons and slopes with marginaleffects' semantics (Bayesian fits; the
lmer / glmer delta method is :func:`delta_answer`).

For rows i = 1..n (the fitted rows, ``newdata``, or a :func:`datagrid`) and posterior draw s,
with ŷ_i⁽ˢ⁾(x) the prediction of row i when the variable x is set to the value x:

* ``kind="response"``: ŷ = E[y | η, θ] = ``family.mean(g⁻¹(η), θ, trials)`` (brms'
  posterior_epred, what marginaleffects' ``type = "response"`` asks brms for);
  ``kind="linpred"``: ŷ = η = Xβ + Zu (:func:`~mixedformula.results.posterior.linpred`);
* **predictions**: ŷ_i⁽ˢ⁾ at the rows' own values;
* **comparisons** of x from lo_i to hi_i: c_i⁽ˢ⁾ = ŷ_i⁽ˢ⁾(hi_i) − ŷ_i⁽ˢ⁾(lo_i) with
  (marginaleffects' R/get_contrast_data_numeric.R) ``"+1"``: (x_i, x_i + 1), label ``+1``;
  ``"sd"``: (m − s/2, m + s/2) for every row, m and s the mean and sd of x in the fitted data,
  label ``(x + sd/2) - (x - sd/2)``; ``{"x": (a, b)}``: (min, max) of the two, label
  ``"max - min"``; a factor: every pair of levels (a, b), ``"pairwise"`` the later level minus
  the earlier (label ``"b - a"``), ``"revpairwise"`` the reverse, ``"reference"`` each level
  minus the first, each evaluated with every row set to a and to b;
* **slopes**: marginaleffects' centred difference with its step h = 10⁻⁴ · (max x − min x)
  over the fitted data (10⁻⁴ if constant): d_i⁽ˢ⁾ = (ŷ_i⁽ˢ⁾(x_i + h/2) − ŷ_i⁽ˢ⁾(x_i − h/2)) / h;
* ``by``: per draw the unit-level quantities are averaged within each group of rows
  (``by=True``: over all rows; ``by=None``: kept per row), a_g⁽ˢ⁾ = mean_{i ∈ g} q_i⁽ˢ⁾;
  summaries come after averaging: ``estimate`` = the posterior **median** of a_g and
  ``conf.low``/``conf.high`` the equal-tailed quantiles — marginaleffects' defaults for
  Bayesian models (``marginaleffects_posterior_center = stats::median``,
  ``marginaleffects_posterior_interval = "eti"``). The draws are kept (``.draws()``: rows of
  the table × draws).

Ordinal families (cumulative, sratio, cratio, acat): ŷ is the vector of K category
probabilities P(y = k) (brms' posterior_epred, S × N × K); ``predictions`` gives one row per
row and category, the category in marginaleffects' ``group`` column (``by`` averages within
each category); ``comparisons`` and ``slopes`` likewise give one contrast per category
(hi − lo of P(y = k), marginaleffects' ``group`` column for brms' ordinal models). The
categorical family likewise, the ``group`` column holding its category labels
(``Family.mean_categories``).

Group effects: ``re_formula=None`` keeps every group term (seen levels use their u; levels not
seen in fitting get u ~ N(0, G) drawn per draw, ``new_groups=``), ``re_formula="NA"`` or
``"~0"`` the population level (Xβ only), a subset like ``"~ (1 | g)"`` as brms. For a
comparison the same u is used for lo and hi (the random stream is re-seeded per chunk).

Memory: draws are processed in chunks of size ⌊budget / n⌋ (budget = 2·10⁶ values, i.e.
16 MB per array of a chunk), so the peak is a few such arrays plus the (groups × S) output,
whatever n × S is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from ..design import as_pandas
from ..errors import DataError, MixedFormulaError
from .posterior import PosteriorDraws, linpred
from .predict import design_for, expected_value, re_selection
from .answer_frame import AnswerFrame
from .factors import formula_factor_levels

KINDS = ("response", "linpred")
#: values per chunk array (draws × rows)
CHUNK_VALUES = 2_000_000
#: most draws an answer keeps (rows of the table × draws: 400 MB)
UNIT_LEVEL_MAX = 50_000_000


# --------------------------------------------------------------------------- rows

def fitted_rows(fit) -> pd.DataFrame:
    """The fitted rows of the data (rows dropped before fitting left out)."""
    if fit.data is None:
        raise MixedFormulaError("this Fit has no stored data: pass newdata=")
    df = as_pandas(fit.data)
    ri = fit.design.row_index
    if ri is not None:
        df = df.loc[ri]
    return df.reset_index(drop=True)


def datagrid(fit, rows: pd.DataFrame | None = None, **values) -> pd.DataFrame:
    """marginaleffects' ``datagrid()``: the Cartesian product of the given values; every other
    predictor at its mean (numeric) or its most frequent value (factor, bool, text)."""
    df = fitted_rows(fit) if rows is None else as_pandas(rows)
    spec = fit.design.spec
    cols = [c for c in spec.formula.variables if c not in spec.formula.response_variables
            and c in df.columns]
    for c in values:
        if c not in df.columns:
            raise DataError(f"datagrid: column {c!r} is not in the data")
    base = {}
    for c in cols:
        if c in values:
            continue
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            base[c] = [float(s.mean())]
        else:
            base[c] = [s.mode(dropna=True).iloc[0]]
    grid = {**{c: list(np.atleast_1d(v)) for c, v in values.items()}, **base}
    index = pd.MultiIndex.from_product(list(grid.values()), names=list(grid))
    out = index.to_frame(index=False)
    for c in cols:
        if c in df.columns and isinstance(df[c].dtype, pd.CategoricalDtype):
            out[c] = pd.Categorical(out[c], categories=df[c].cat.categories)
    for c in spec.formula.trials_variables:
        if c in df.columns and c not in out.columns:
            out[c] = df[c].iloc[0]
    return out


def _rows(fit, newdata, grid) -> pd.DataFrame:
    if newdata is not None and grid is not None:
        raise MixedFormulaError("give newdata= or grid=, not both")
    if grid is not None:
        return datagrid(fit, **grid) if isinstance(grid, dict) else as_pandas(grid)
    if newdata is None:
        fit._need_rows("predictions on the fitted rows")
        return fitted_rows(fit)
    return as_pandas(newdata).reset_index(drop=True)


def normalise_re_formula(re_formula):
    if re_formula is None:
        return None
    if isinstance(re_formula, float) and np.isnan(re_formula):
        return "NA"
    if re_formula is pd.NA:
        return "NA"
    return re_formula


def _groups(df: pd.DataFrame, by) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Group code per row and the table of group values (None: unit level)."""
    if by is None or by is False:
        return None, df
    if by is True:
        return np.zeros(len(df), dtype=int), pd.DataFrame(index=[0])
    by = [by] if isinstance(by, str) else list(by)
    for c in by:
        if c not in df.columns:
            raise DataError(f"by= column {c!r} is not in the rows (columns: "
                            f"{', '.join(map(str, df.columns))})")
    keys = df[by].astype(object)
    uniq = keys.drop_duplicates().sort_values(by).reset_index(drop=True)
    mi = pd.MultiIndex.from_frame(uniq)
    code = mi.get_indexer(pd.MultiIndex.from_frame(keys))
    return code, uniq


# --------------------------------------------------------------------------- engine

@dataclass
class Scenario:
    """Rows with the variable set to some values: their design and data."""

    df: pd.DataFrame
    design: object


class DrawEvaluator:
    """ŷ per draw for scenarios of the same rows, chunk by chunk over the draws."""

    def __init__(self, fit, kind: str, re_formula, new_groups: str, seed, ndraws=None):
        if kind not in KINDS:
            raise MixedFormulaError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if len(fit.design.response_names) > 1:
            raise MixedFormulaError("predictions/comparisons/slopes are for models with one "
                                    "response; this model has "
                                    f"{len(fit.design.response_names)}")
        self.fit = fit
        self.kind = kind
        self.re_formula = normalise_re_formula(re_formula)
        self.new_groups = new_groups
        self.seed = int(np.random.default_rng(seed).integers(2**31)) if not isinstance(
            seed, (int, np.integer)) else int(seed)
        post = fit.idata.posterior
        self.S = int(post.sizes["chain"]) * int(post.sizes["draw"])

    def scenario(self, df: pd.DataFrame) -> Scenario:
        keep = re_selection(self.fit, self.re_formula, df)
        self.keep = keep
        return Scenario(df, design_for(self.fit, df, keep))

    def chunks(self, n: int):
        step = max(1, min(self.S, CHUNK_VALUES // max(n, 1)))
        for k, start in enumerate(range(0, self.S, step)):
            yield k, np.arange(start, min(self.S, start + step))

    def predict(self, sc: Scenario, idx: np.ndarray, k: int) -> np.ndarray:
        """ŷ (s, n) for the draws ``idx``; the same chunk number k gives the same new-level u."""
        draws = PosteriorDraws.of_fit(self.fit, idx)
        eta = linpred(draws, sc.design, self.keep, self.new_groups,
                      np.random.default_rng([self.seed, k]))
        if self.kind == "linpred":
            return eta[..., 0]
        if self.categories:
            raise MixedFormulaError(
                f"family {self.fit.family.name!r} predicts {self.categories} category "
                "probabilities, not one expected value: use predictions(), comparisons() or "
                "slopes() (one row per category, column 'group') or kind='linpred'")
        return expected_value(self.fit, draws, eta, sc.design, sc.df)[..., 0]

    @property
    def categories(self) -> int:
        """K for families whose expected value is K category probabilities (0 otherwise)."""
        labels = self.category_labels
        return len(labels) if labels else 0

    @property
    def category_labels(self) -> list[str] | None:
        """The labels of the K categories (ordinal: "1".."K"; categorical: the response's)."""
        fam = self.fit.family
        return fam.mean_categories(PosteriorDraws.of_fit(self.fit).n_thresholds
                                   if fam.thresholds else 0)

    def predict_categories(self, sc: Scenario, idx: np.ndarray, k: int) -> np.ndarray:
        """P(y = c) per draw, row and category (s, n, K) for the draws ``idx``."""
        draws = PosteriorDraws.of_fit(self.fit, idx)
        eta = linpred(draws, sc.design, self.keep, self.new_groups,
                      np.random.default_rng([self.seed, k]))
        return expected_value(self.fit, draws, eta, sc.design, sc.df)[:, :, 0, :]


def _aggregate(q: np.ndarray, code, G: int) -> np.ndarray:
    """(s, n) → (G, s) means within groups (unit level: (n, s))."""
    if code is None:
        return q.T
    cnt = np.bincount(code, minlength=G).astype(float)
    out = np.zeros((G, q.shape[0]))
    for g in range(G):
        m = code == g
        out[g] = q[:, m].sum(axis=1) / cnt[g]
    return out


def _run(ev: DrawEvaluator, n: int, code, G: int,
         quantity: Callable[[np.ndarray, int], list[np.ndarray]], m: int) -> list[np.ndarray]:
    """m quantities, each (G, S), accumulated over draw chunks."""
    rows = G if code is not None else n
    if rows * ev.S > UNIT_LEVEL_MAX:
        raise MixedFormulaError(
            f"unit-level answers for {n} rows × {ev.S} draws would keep {rows * ev.S:,} draws "
            f"(> {UNIT_LEVEL_MAX:,}); average them with by=True or by='column', or pass fewer "
            "rows (newdata= / grid=)")
    out = [np.empty((rows, ev.S)) for _ in range(m)]
    for k, idx in ev.chunks(n):
        for j, q in enumerate(quantity(idx, k)):
            out[j][:, idx] = _aggregate(q, code, G)
    return out


def _summary(draws: np.ndarray, conf_level: float) -> dict:
    a = (1 - conf_level) / 2
    q = np.quantile(draws, [a, 1 - a], axis=1)
    return {"estimate": np.median(draws, axis=1), "conf.low": q[0], "conf.high": q[1]}


def _frame(lead: pd.DataFrame, draws: np.ndarray, conf_level: float, what: str) -> AnswerFrame:
    out = pd.concat([lead.reset_index(drop=True),
                     pd.DataFrame(_summary(draws, conf_level))], axis=1)
    return AnswerFrame.of(out, draws, what)


# --------------------------------------------------------------------------- public

def predictions(fit, newdata=None, grid=None, by=None, re_formula=None, kind="response",
                new_groups="sample", conf_level=0.95, seed=0) -> AnswerFrame:
    """marginaleffects' ``predictions()`` / ``avg_predictions(by=)`` (module docstring)."""
    df = _rows(fit, newdata, grid)
    ev = DrawEvaluator(fit, kind, re_formula, new_groups, seed)
    sc = ev.scenario(df)
    K = ev.categories if kind == "response" else 0
    if K:
        return _category_predictions(ev, sc, df, by, K, conf_level)
    code, lead = _groups(df, by)
    G = len(lead)
    (d,) = _run(ev, len(df), code, G, lambda idx, k: [ev.predict(sc, idx, k)], 1)
    if code is None:
        lead = df.assign(rowid=np.arange(len(df)))[["rowid"] + list(df.columns)]
    return _frame(lead, d, conf_level, "predictions")


def _category_groups(df: pd.DataFrame, by, K: int, labels=None):
    """(code, lead) over the K·n (category, row) pairs, category-major, the category (its
    label, default "1".."K") in marginaleffects' ``group`` column (``by`` averages within
    each category)."""
    n = len(df)
    labels = [str(k + 1) for k in range(K)] if labels is None else list(labels)
    rows = df.assign(rowid=np.arange(n))[["rowid"] + list(df.columns)]
    long = pd.concat([rows.assign(group=labels[k]) for k in range(K)], ignore_index=True)
    if by is None or by is False:
        return None, long[["rowid", "group"] + list(df.columns)]
    cols = [] if by is True else ([by] if isinstance(by, str) else list(by))
    return _groups(long, ["group"] + cols)


def _category_major(p: np.ndarray) -> np.ndarray:
    """(s, n, K) → (s, K·n), category-major (the layout of :func:`_category_groups`)."""
    return p.transpose(0, 2, 1).reshape(p.shape[0], -1)


def _category_predictions(ev: DrawEvaluator, sc: Scenario, df: pd.DataFrame, by, K: int,
                          conf_level: float) -> AnswerFrame:
    """Ordinal families: P(y = k) per row (or averaged within ``by``) and category k, the
    category in marginaleffects' ``group`` column (rows category-major, as marginaleffects
    gives for brms' ordinal models)."""
    code, lead = _category_groups(df, by, K, ev.category_labels)
    (d,) = _run(ev, K * len(df), code, len(lead),
                lambda idx, k: [_category_major(ev.predict_categories(sc, idx, k))], 1)
    return _frame(lead, d, conf_level, "predictions")


def _difference(ev: DrawEvaluator, s_hi: Scenario, s_lo: Scenario, K: int, scale: float = 1.0):
    """The per-draw unit-level quantity (ŷ_hi − ŷ_lo) / scale: (s, n), or for K category
    probabilities (s, K·n) category-major."""
    if K:
        return lambda idx, k: [_category_major(ev.predict_categories(s_hi, idx, k)
                                               - ev.predict_categories(s_lo, idx, k)) / scale]
    return lambda idx, k: [(ev.predict(s_hi, idx, k) - ev.predict(s_lo, idx, k)) / scale]


def _factor_levels(fit, df, variable) -> list | None:
    lv = formula_factor_levels(fit.design, df, variable)     # incl. factor(x) of a number
    if lv is not None:
        return lv
    s = df[variable]
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    if pd.api.types.is_bool_dtype(s) or s.dtype == object:
        return sorted(s.dropna().unique(), key=str)
    return None


def _like(df_col: pd.Series, value, n: int):
    """A column of n copies of ``value`` typed like ``df_col``."""
    if isinstance(df_col.dtype, pd.CategoricalDtype):
        return pd.Categorical([value] * n, categories=df_col.cat.categories)
    if pd.api.types.is_numeric_dtype(df_col) and not pd.api.types.is_bool_dtype(df_col):
        return np.full(n, float(value))          # never truncate m ± s/2 to an int column
    return np.repeat(np.asarray([value], dtype=object), n)


def _contrast_pairs(fit, df, variable, contrast) -> list[tuple[str, object, object]]:
    """(label, lo, hi) per contrast; lo/hi are scalars or per-row arrays."""
    if variable not in df.columns:
        raise DataError(f"variable {variable!r} is not a column of the rows")
    levels = _factor_levels(fit, df, variable)
    if isinstance(contrast, dict):
        if variable not in contrast:
            raise MixedFormulaError(f"contrast dict must name {variable!r}")
        a, b = contrast[variable]
        if levels is None:
            a, b = sorted((float(a), float(b)))       # marginaleffects sorts numeric pairs
            a, b = (int(v) if float(v).is_integer() else v for v in (a, b))
        return [(f"{b} - {a}", a, b)]
    if levels is not None:
        levs = [str(v) for v in levels] if df[variable].dtype == object else levels
        if contrast in ("pairwise", "revpairwise"):
            pairs = [(levs[i], levs[j]) for i in range(len(levs)) for j in range(i + 1, len(levs))]
            if contrast == "revpairwise":
                return [(f"{a} - {b}", b, a) for a, b in pairs]
            return [(f"{b} - {a}", a, b) for a, b in pairs]
        if contrast == "reference":
            return [(f"{b} - {levs[0]}", levs[0], b) for b in levs[1:]]
        raise MixedFormulaError(f"contrast {contrast!r} is not for the factor {variable!r}: "
                                "use 'pairwise', 'revpairwise', 'reference' or {x: (a, b)}")
    x = df[variable].to_numpy(dtype=float)
    if contrast in ("+1", "pairwise", "revpairwise"):
        return [("+1", x, x + 1.0)]
    if contrast == "sd":
        xm = (fitted_rows(fit)[variable].to_numpy(dtype=float) if fit.data is not None else x)
        m, s = float(np.mean(xm)), float(np.std(xm, ddof=1))
        return [("(x + sd/2) - (x - sd/2)", m - s / 2, m + s / 2)]
    raise MixedFormulaError(f"contrast {contrast!r} is not one of '+1', 'sd', {{x: (a, b)}} "
                            f"for the numeric variable {variable!r}")


def _set(df: pd.DataFrame, variable: str, value) -> pd.DataFrame:
    out = df.copy()
    if np.ndim(value) == 0:
        out[variable] = _like(df[variable], value, len(df))
    else:
        out[variable] = value
    return out


def comparisons(fit, variable: str, contrast="+1", newdata=None, grid=None, by=None,
                re_formula=None, kind="response", new_groups="sample", conf_level=0.95,
                seed=0) -> AnswerFrame:
    """marginaleffects' ``comparisons()`` / ``avg_comparisons(by=)`` (module docstring)."""
    df = _rows(fit, newdata, grid)
    ev = DrawEvaluator(fit, kind, re_formula, new_groups, seed)
    K = ev.categories if kind == "response" else 0
    code, lead = _category_groups(df, by, K, ev.category_labels) if K else _groups(df, by)
    G = len(lead)
    pieces, draws = [], []
    for label, lo, hi in _contrast_pairs(fit, df, variable, contrast):
        s_lo, s_hi = ev.scenario(_set(df, variable, lo)), ev.scenario(_set(df, variable, hi))
        (d,) = _run(ev, len(df) * max(K, 1), code, G, _difference(ev, s_hi, s_lo, K), 1)
        L = lead.copy() if (code is not None or K) else df.assign(rowid=np.arange(len(df)))
        L.insert(0, "contrast", label)
        L.insert(0, "term", variable)
        pieces.append(L)
        draws.append(d)
    lead = pd.concat(pieces, ignore_index=True)
    if by is True:
        lead = lead[["term", "contrast"] + (["group"] if K else [])]
    return _frame(lead, np.concatenate(draws, axis=0), conf_level, "comparisons")


def slope_step(x: np.ndarray) -> float:
    """marginaleffects' default step: 10⁻⁴ × the range of x (1e-4 if x is constant)."""
    r = float(np.nanmax(x) - np.nanmin(x)) if len(x) else 0.0
    return 1e-4 * r if r > 0 else 1e-4


def slopes(fit, variable: str, newdata=None, grid=None, by=None, re_formula=None,
           kind="response", new_groups="sample", conf_level=0.95, seed=0,
           eps: float | None = None) -> AnswerFrame:
    """marginaleffects' ``slopes()`` / ``avg_slopes(by=)``: centred differences (docstring)."""
    df = _rows(fit, newdata, grid)
    if variable not in df.columns:
        raise DataError(f"variable {variable!r} is not a column of the rows")
    if _factor_levels(fit, df, variable) is not None:
        raise MixedFormulaError(f"{variable!r} is a factor: use comparisons() for it")
    x = df[variable].to_numpy(dtype=float)
    rng_x = fitted_rows(fit)[variable].to_numpy(dtype=float) if fit.data is not None else x
    h = slope_step(rng_x) if eps is None else float(eps)
    ev = DrawEvaluator(fit, kind, re_formula, new_groups, seed)
    s_lo = ev.scenario(_set(df, variable, x - h / 2))
    s_hi = ev.scenario(_set(df, variable, x + h / 2))
    K = ev.categories if kind == "response" else 0
    code, lead = _category_groups(df, by, K, ev.category_labels) if K else _groups(df, by)
    (d,) = _run(ev, len(df) * max(K, 1), code, len(lead), _difference(ev, s_hi, s_lo, K, h), 1)
    L = lead.copy() if (code is not None or K) else df.assign(rowid=np.arange(len(df)))
    if by is True:
        L = lead[["group"]].copy() if K else pd.DataFrame(index=[0])
    L.insert(0, "contrast", "dY/dX")
    L.insert(0, "term", variable)
    out = _frame(L, d, conf_level, "slopes")
    out.eps = h
    return out


# --------------------------------------------------------------------------- lmer / glmer (delta method)

def _lmer_linear(fit, df: pd.DataFrame, re_formula):
    """(X, Zb̂) of the rows: η = X β̂ + Zb̂ (+ the offset) at the conditional modes b̂."""
    X, off = fit.linear_predictor_parts(df, normalise_re_formula(re_formula))
    return X, off


def _mean_rows(M: np.ndarray, code, G: int) -> np.ndarray:
    """Rows of M (n, ...) averaged within groups (unit level: M itself)."""
    if code is None:
        return M
    out = np.zeros((G,) + M.shape[1:])
    np.add.at(out, code, M)
    return out / np.bincount(code, minlength=G).reshape((G,) + (1,) * (M.ndim - 1))


def response_map(fit):
    """(g⁻¹, dμ/dη as a function of η) of a point-estimate fit: the identity for lmer, the
    family's inverse link for glmer (``predict(type = "response")``: the probability for
    binomial models, as lme4 and marginaleffects)."""
    family = getattr(fit, "family", None)
    if family is None or family.link == "identity":
        return (lambda eta: eta), (lambda eta: np.ones_like(eta))
    from ..families.links import get_link
    link = get_link(family.link)
    return link.inverse, (lambda eta: link.dmu_deta(link.inverse(eta)))


def delta_answer(fit, lead: pd.DataFrame, parts, code, G: int, conf_level: float, what: str,
                 scale: float = 1.0) -> AnswerFrame:
    r"""One answer per group of rows, a_g(β) = mean_{i ∈ g} Σ_s w_s μ(x_{s,i}ᵀβ + o_{s,i}) / h
    over the scenarios s = (w_s, X_s, o_s) (predictions: one scenario with w = 1; comparisons:
    hi − lo; slopes: (hi − lo) / h), μ = g⁻¹ (:func:`response_map`), o the conditional-mode
    part Zb̂ (+ offset), held fixed as marginaleffects does for merMod fits.

    estimate = a(β̂); std.error = √diag(J V Jᵀ), V = Var(β̂), J = ∂a/∂β = mean Σ_s w_s
    μ'(η_{s,i}) x_{s,i} / h (the delta method with the exact Jacobian; marginaleffects'
    numerical one agrees to its step; for lmer μ' = 1 and the answer is linear in β̂, so it is
    exact); z = estimate / SE, two-sided normal p-value and conf.low/high = estimate ∓
    z_{(1+level)/2} SE (marginaleffects' default df = ∞)."""
    from scipy import stats
    inv, dinv = response_map(fit)
    est, jac = 0.0, 0.0
    for w, X, off in parts:
        eta = X @ fit.beta + off
        est = est + w * _mean_rows(inv(eta), code, G)
        jac = jac + w * _mean_rows(dinv(eta)[:, None] * X, code, G)
    est, jac = est / scale, jac / scale
    se = np.sqrt(np.einsum("ij,jk,ik->i", jac, fit.vcov_beta, jac))
    z = est / se
    q = stats.norm.ppf(0.5 + conf_level / 2)
    out = lead.reset_index(drop=True).copy()
    out["estimate"], out["std.error"], out["statistic"] = est, se, z
    out["p.value"] = 2 * stats.norm.sf(np.abs(z))
    out["conf.low"], out["conf.high"] = est - q * se, est + q * se
    return AnswerFrame.of(out, None, what)


def lmer_predictions(fit, newdata=None, grid=None, by=None, re_formula=None,
                     conf_level=0.95) -> AnswerFrame:
    df = _lmer_rows(fit, newdata, grid)
    X, off = _lmer_linear(fit, df, re_formula)
    code, lead = _groups(df, by)
    if code is None:
        lead = df.assign(rowid=np.arange(len(df)))[["rowid"] + list(df.columns)]
    return delta_answer(fit, lead, [(1.0, X, off)], code, len(lead), conf_level,
                        "predictions")


def _lmer_rows(fit, newdata, grid):
    if getattr(fit, "offset", None) is not None:
        raise MixedFormulaError("predictions/comparisons/slopes of lmer/glmer fits with an offset "
                                "are not available yet (the offset of new rows is not added)")
    if newdata is not None and grid is not None:
        raise MixedFormulaError("give newdata= or grid=, not both")
    if grid is not None:
        return datagrid(fit, **grid) if isinstance(grid, dict) else as_pandas(grid)
    if newdata is None:
        return fitted_rows(fit)
    return as_pandas(newdata).reset_index(drop=True)


def lmer_comparisons(fit, variable, contrast="+1", newdata=None, grid=None, by=None,
                     re_formula=None, conf_level=0.95) -> AnswerFrame:
    df = _lmer_rows(fit, newdata, grid)
    code, lead = _groups(df, by)
    pieces = []
    for label, lo, hi in _contrast_pairs(fit, df, variable, contrast):
        Xl, ol = _lmer_linear(fit, _set(df, variable, lo), re_formula)
        Xh, oh = _lmer_linear(fit, _set(df, variable, hi), re_formula)
        L = lead.copy() if code is not None else df.assign(rowid=np.arange(len(df)))
        if by is True:
            L = pd.DataFrame(index=[0])
        L.insert(0, "contrast", label)
        L.insert(0, "term", variable)
        pieces.append(delta_answer(fit, L, [(1.0, Xh, oh), (-1.0, Xl, ol)], code, len(lead),
                                   conf_level, "comparisons"))
    return AnswerFrame.of(pd.concat([pd.DataFrame(p) for p in pieces], ignore_index=True),
                          None, "comparisons")


def lmer_slopes(fit, variable, newdata=None, grid=None, by=None, re_formula=None,
                conf_level=0.95, eps=None) -> AnswerFrame:
    df = _lmer_rows(fit, newdata, grid)
    if _factor_levels(fit, df, variable) is not None:
        raise MixedFormulaError(f"{variable!r} is a factor: use comparisons() for it")
    x = df[variable].to_numpy(dtype=float)
    h = slope_step(fitted_rows(fit)[variable].to_numpy(dtype=float)) if eps is None else eps
    code, lead = _groups(df, by)
    Xl, ol = _lmer_linear(fit, _set(df, variable, x - h / 2), re_formula)
    Xh, oh = _lmer_linear(fit, _set(df, variable, x + h / 2), re_formula)
    L = lead.copy() if code is not None else df.assign(rowid=np.arange(len(df)))
    if by is True:
        L = pd.DataFrame(index=[0])
    L.insert(0, "contrast", "dY/dX")
    L.insert(0, "term", variable)
    out = delta_answer(fit, L, [(1.0, Xh, oh), (-1.0, Xl, ol)], code, len(lead), conf_level,
                       "slopes", scale=h)
    out.eps = h
    return out


# --------------------------------------------------------------------------- per predictor

def average_effects(fit, variables=None, conf_level: float = 0.95) -> pd.DataFrame:
    """The average slope (numeric predictors) or the pairwise average comparisons (factors)
    of each predictor of the fixed part, on the response scale (``by=True``): what the HTML
    report and the CLI's ``--comparisons`` show. Works for Bayesian, lmer and glmer fits."""
    spec = fit.design.spec
    names = list(spec.formula.fixed_variables) if variables is None else list(variables)
    rows = fitted_rows(fit)
    bayes = hasattr(fit, "idata")
    out = []
    for v in names:
        if v not in rows.columns:
            raise DataError(f"{v!r} is not a column of the data")
        factor = _factor_levels(fit, rows, v) is not None
        if bayes:
            t = (comparisons(fit, v, "pairwise", by=True, conf_level=conf_level) if factor
                 else slopes(fit, v, by=True, conf_level=conf_level))
        else:
            t = (lmer_comparisons(fit, v, "pairwise", by=True, conf_level=conf_level)
                 if factor else lmer_slopes(fit, v, by=True, conf_level=conf_level))
        out.append(pd.DataFrame(t))
    if not out:
        return pd.DataFrame(columns=["term", "contrast", "estimate", "conf.low", "conf.high"])
    return pd.concat(out, ignore_index=True)
