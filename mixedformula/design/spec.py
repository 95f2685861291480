"""(FormulaSpec, data) → :class:`Design`, and :class:`DesignSpec` to replay it on new data.

* The fixed part X and each bar's left side are built by formulaic from *validated, generated*
  text (see :mod:`mixedformula.formula.validate`); formulaic's ModelSpec remembers stateful
  transforms (scale, poly, factor levels) so new data get the same columns.
* formulaic never sees the user's text or column names: :mod:`.safe_text` re-checks the
  generated text token by token and replaces column names with aliases of a private frame that
  holds only the columns the formula uses.
* Grouping factors are coded with ``pandas.factorize(sort=True)`` — levels sorted like lme4's
  factors — over the observed combinations only (``g1:g2`` has no empty levels).
* Missing values: rows with a missing value in any used column are dropped with a warning that
  says how many and which columns (``na_action="raise"`` raises instead). Nothing is dropped
  silently. As R's model frame, transforms (``scale()``, ``poly()``, ...) are evaluated on every
  row first (missing values ignored, :mod:`.transforms`), then the rows are dropped; factor
  levels are those of the rows kept. Columns are coded by type (:mod:`.columns`).
* New data (:meth:`DesignSpec.transform`): codes of unseen group levels are ``J + k`` and listed in
  ``GroupBlock.new_levels``; missing group values get code ``-1``. Predictor columns are mapped
  onto the fitted coding (:func:`.columns.conform`); unseen levels of a fixed-effect factor, or
  a change of type without a single meaning, raise :class:`~mixedformula.DataError`.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from ..formula import FormulaSpec, GroupTerm, parse
from ..formula.validate import NUMPY_FUNCTIONS, check_data_columns
from .autocor import autocor_structure
from .columns import (Coding, as_coded, check_levels, check_types, codings, conform,
                      logical_factor)
from .names import brms_names, response_name
from .safe_text import alias, alias_coded, from_alias, r_spelling, to_formulaic
from .splines import ns
from .transforms import NA_AWARE, R_CONVERSIONS
from .types import Design, GroupBlock


def _factor_coding():
    from formulaic.transforms import C
    return {"factor": C, "as_factor": C}


_CONTEXT = {**NUMPY_FUNCTIONS, **NA_AWARE, **R_CONVERSIONS, **_factor_coding(), "ns": ns}


def as_pandas(data) -> pd.DataFrame:
    """Accept pandas or polars (or anything with ``to_pandas``/a dict of columns)."""
    if isinstance(data, pd.DataFrame):
        df = data
    elif hasattr(data, "to_pandas"):
        df = data.to_pandas()
    elif isinstance(data, dict):
        df = pd.DataFrame(data)
    elif type(data).__module__.startswith("dask"):
        raise DataError("a Dask DataFrame is only taken by mf.fit / mf.Model (Gaussian models "
                        "fitted from sufficient statistics, docs/dask.md) and mf.lmer "
                        "(from cross-products); here pass "
                        "data.compute(), a pandas DataFrame")
    else:
        raise DataError(f"data must be a pandas or polars DataFrame, not {type(data).__name__}")
    names = pd.Index([str(c) for c in df.columns], dtype=object)
    if names.duplicated().any():
        dup = sorted(set(names[names.duplicated()]))
        note = "" if df.columns.equals(names) else " (after converting column names to text)"
        raise DataError(f"the data have duplicated column names{note}: {', '.join(dup)}")
    if not all(isinstance(c, str) for c in df.columns):
        df = df.set_axis(names, axis=1)
    # pandas' "string" dtype (pd.NA missing values; Dask's and Arrow's text default) is read by
    # formulaic as numbers ("could not convert string to float"): as pandas 3's default text
    # dtype (NaN missing values), which it reads as categorical like object columns
    text = {c: pd.StringDtype(na_value=np.nan) for c, t in df.dtypes.items()
            if isinstance(t, pd.StringDtype) and t.na_value is pd.NA}
    return df.astype(text) if text else df


def check_columns(spec: FormulaSpec, df: pd.DataFrame, names) -> None:
    for name in names:
        if name not in df.columns:
            close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            pos = spec.text.find(name)
            raise FormulaError(f"column {name!r} is not in the data{hint}", spec.text,
                               pos if pos >= 0 else None, pos + len(name) if pos >= 0 else None)


def aliased_frame(df: pd.DataFrame, columns: tuple[str, ...] | list[str],
           codes: dict[str, Coding] | None = None) -> pd.DataFrame:
    """The private frame formulaic evaluates on: used columns only, under their aliases, coded
    as :mod:`.columns` says (factors as categoricals; logicals and ordered factors also as the
    factor that a bare use of the name refers to, :func:`_bare`)."""
    codes = codes or {}
    out = {}
    for k, c in enumerate(columns):
        if c not in df.columns:
            continue
        code = codes.get(c)
        col = df[c] if code is None else as_coded(df[c], code)
        out[alias(k)] = col
        if code is not None and code.kind == "logical":
            out[alias_coded(k)] = logical_factor(df[c])
        elif code is not None and code.ordered:
            out[alias_coded(k)] = col
    return pd.DataFrame(out, index=df.index)


def _bare(columns, codes: dict[str, Coding] | None) -> dict[str, tuple[str, str]]:
    """How a bare name (and the first argument of C()) is written for formulaic: ordered
    factors with R's contr.poly, logicals as their FALSE/TRUE factor."""
    out = {}
    for k, c in enumerate(columns):
        code = (codes or {}).get(c)
        if code is not None and code.kind == "logical":
            out[c] = (alias_coded(k), alias_coded(k))
        elif code is not None and code.ordered:
            out[c] = (f"C({alias_coded(k)}, contr.poly)", alias(k))
    return out


def evaluate_formulaic(text: str, fdf: pd.DataFrame, spec: FormulaSpec, columns, model_spec=None,
               codes: dict[str, Coding] | None = None):
    """Evaluate generated ``text`` on the aliased frame; every failure becomes our error."""
    from formulaic import model_matrix
    from formulaic.errors import DataMismatchWarning
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("error", DataMismatchWarning)
            if model_spec is None:
                safe = to_formulaic(text, {c: alias(k) for k, c in enumerate(columns)},
                                    spec.text, _bare(columns, codes))
                mm = model_matrix(safe, fdf, context=_CONTEXT, na_action="ignore")
            else:
                mm = model_spec.get_model_matrix(fdf, context=_CONTEXT, na_action="ignore")
    except FormulaError:
        raise
    except DataMismatchWarning as e:
        msg = from_alias(str(e).split("\n")[0], list(columns))
        raise DataError(f"new data do not fit the model's term {text!r}: {msg}") from None
    except Exception as e:  # formulaic, numpy, pandas: anything is a bad formula/data here
        msg = from_alias(str(e).split("\n")[0], list(columns)) or type(e).__name__
        if model_spec is not None:
            raise DataError(f"new data do not fit the model's term {text!r}: {msg}") from None
        raise FormulaError(f"cannot evaluate {r_spelling(text)!r}: {msg}", spec.text) from None
    complex_cols = [from_alias(str(c), list(columns)) for c, t in mm.dtypes.items()
                    if pd.api.types.is_complex_dtype(t)]
    if complex_cols:
        raise FormulaError(f"{', '.join(complex_cols)} gives complex numbers (e.g. a negative "
                           "number to a fractional power); a model matrix holds real numbers",
                           spec.text)
    return mm


def _names(mm, columns) -> list[str]:
    return brms_names([from_alias(str(c), list(columns)) for c in mm.columns])


def _factor_levels(df: pd.DataFrame, names) -> dict[str, list[str]]:
    """Observed levels of the categorical predictor columns (to name unseen ones later)."""
    out = {}
    for c in names:
        col = df[c]
        if not (pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)):
            out[c] = sorted({str(v) for v in col.dropna().unique()})
    return out


@dataclass
class DesignSpec:
    """What is needed to build the same matrices for new data."""

    formula: FormulaSpec
    fixed_spec: object                  # formulaic ModelSpec of the fixed part
    term_specs: list                    # formulaic ModelSpec per group term
    levels: list[list[str]]             # levels per group term
    by_levels: list[list[str] | None]
    by_codes: list[np.ndarray | None]
    X_names: list[str]
    coef_names: list[list[str]]
    response_names: list[str]
    columns: tuple[str, ...] = field(default_factory=tuple)
    factor_levels: dict[str, list[str]] = field(default_factory=dict)
    fixed_keep: list[int] | None = None  # columns of the formulaic X kept (None: all; lme4 drop)
    parts: list["DesignSpec"] | None = None  # bf() + bf(): one spec per response
    codings: dict[str, Coding] = field(default_factory=dict)  # predictor columns (.columns)
    #: distributional formulas: parameter → (formulaic ModelSpec, kept columns or None, names)
    dpar_specs: dict = field(default_factory=dict)
    #: ``offset=`` given as a column name (mf.fit / mf.Model): taken from new data as well;
    #: "" when it was given as an array (new data then need their own offset, see
    #: :func:`new_data_offset`)
    offset_column: str | None = None
    #: per group term, the Cholesky factor of its known covariance across levels (gr(cov=))
    cov_factors: list | None = None
    #: the columns of X made by ``cs(x)`` terms of an ordinal model (category-specific
    #: effects, brms' Xcs: not centred, one coefficient per threshold)
    cs_names: list[str] = field(default_factory=list)

    def transform(self, data, require_response: bool = False) -> Design:
        """Build X and group codes for new data with the fitted coding (see module doc)."""
        df = as_pandas(data)
        if self.parts:
            designs = [p.transform(df, require_response) for p in self.parts]
            observed = np.ones((len(df), len(designs)), dtype=bool)
            return _stack(self.formula, designs, observed, self, df.index.values)
        needed = [c for c in self.formula.variables
                  if c not in self.formula.response_variables
                  and c not in self.formula.trials_variables
                  and c not in _addition_only(self.formula)]
        if require_response:
            needed = [c for c in self.formula.variables
                      if c not in _addition_only(self.formula)]
        check_columns(self.formula, df, needed)
        check_types(df, needed, "the new data")
        missing = df[needed].isna().any(axis=1) if needed else pd.Series(False, index=df.index)
        fixed_cols = list(self.formula.fixed_variables) + [
            v for g in self.formula.groups for v in g.variables] + list(
            self.formula.offset_variables) + [
            v for d in self.formula.dpars for v in d.fixed_variables]
        bad = df[fixed_cols].isna().any(axis=1) if fixed_cols else missing & False
        if bad.any():
            cols = [c for c in fixed_cols if df[c].isna().any()]
            raise DataError(f"new data have missing values in predictor column(s) "
                            f"{', '.join(cols)} ({int(bad.sum())} rows); predictions need them")
        coded = conform(df, self.codings)
        for c, known in ({} if self.codings else self.factor_levels).items():
            if c in df.columns:
                new = sorted({str(v) for v in df[c].dropna().unique()} - set(known))
                if new:
                    raise DataError(f"new data have level(s) {', '.join(map(repr, new))} of "
                                    f"{c!r} that the model has not seen (known: "
                                    f"{', '.join(known[:20])}"
                                    f"{', ...' if len(known) > 20 else ''})")
        fdf = aliased_frame(coded, self.columns, self.codings)
        X = np.asarray(evaluate_formulaic(self.formula.fixed, fdf, self.formula, self.columns,
                                  self.fixed_spec), dtype=float)
        if self.fixed_keep is not None:
            X = X[:, self.fixed_keep]
        dpar_X = {}
        for d in self.formula.dpars:
            mspec, keep, names = self.dpar_specs[d.name]
            Xd = np.asarray(evaluate_formulaic(d.fixed, fdf, self.formula, self.columns, mspec),
                            dtype=float)
            dpar_X[(d.name, 0)] = (Xd if keep is None else Xd[:, keep], list(names))
        blocks = []
        for term, mspec, levels, by_levels, fitted_by, names in zip(
                self.formula.groups, self.term_specs, self.levels, self.by_levels,
                self.by_codes, self.coef_names):
            Xk = np.asarray(evaluate_formulaic(term.expr, fdf, self.formula, self.columns, mspec),
                            dtype=float)
            labels, isna = _group_labels(df, term.factors)
            codes = pd.Index(levels).get_indexer(labels).astype(np.int64)
            unseen = (codes < 0) & ~isna
            new = list(pd.unique(labels[unseen]))
            if new:
                codes[unseen] = len(levels) + pd.Index(new).get_indexer(labels[unseen])
            by_codes = None
            if by_levels is not None:
                by_codes = np.concatenate([fitted_by, _new_by_codes(df, term, labels, new,
                                                                    by_levels)])
            blocks.append(GroupBlock(term=term, coef_names=list(names), X=Xk, codes=codes,
                                     levels=list(levels), by_levels=by_levels,
                                     by_codes=by_codes, new_levels=new,
                                     cov_factor=(self.cov_factors or [None] * len(
                                         self.term_specs))[len(blocks)]))
        y = None
        if require_response:
            y = response_matrix(self.formula, df, fdf, self.columns)
        offset = formula_offset(self.formula, fdf, self.columns, where="the new data")
        if self.offset_column is not None:
            offset = new_data_offset(df, self.offset_column, offset)
        return Design(formula=self.formula, y=y, response_names=self.response_names, X=X,
                      X_names=self.X_names, terms=blocks, spec=self, row_index=df.index.values,
                      offset=offset, dpar_X=dpar_X, **self.new_data_additions(df, fdf))

    def new_data_additions(self, df: pd.DataFrame, fdf: pd.DataFrame) -> dict:
        """Of the addition terms, what predictions read from new data: the truncation
        bounds (posterior_predict draws inside them) and se() (the residual sd), each only
        when its columns are in the new data; weights and cens never enter predictions."""
        a = self.formula.additions
        out: dict = {}
        if not (a.trunc or a.se):
            return out
        from .additions import bounds, check_bounds, check_se

        def has(text):
            return all(v in df.columns for v in _text_columns(text, a.variables))

        def numeric(text):
            mm = evaluate_formulaic("0 + " + text, fdf, self.formula, self.columns)
            return np.asarray(mm, dtype=float)[:, 0]

        if a.trunc and all(has(b.text) for b in (a.lb, a.ub) if b is not None and b.text):
            out["trunc"] = bounds(a, numeric, len(df))
            check_bounds(*out["trunc"], a, "the new data")
        if a.se and has(a.se):
            out["se"] = check_se(numeric(a.se), f"se({a.se.strip('`')})", "the new data")
        return out

    def trials(self, data) -> np.ndarray:
        """The binomial ``trials(...)`` expression evaluated on new data (one value per row)."""
        df = as_pandas(data)
        missing = [c for c in self.formula.trials_variables if c not in df.columns]
        if missing:
            raise DataError(f"binomial predictions need the trials column(s) "
                            f"{', '.join(missing)}")
        mm = evaluate_formulaic("0 + " + self.formula.trials, aliased_frame(df, self.columns), self.formula,
                        self.columns)
        return np.asarray(mm, dtype=float)[:, 0]


def _text_columns(text: str, names) -> list[str]:
    """The columns among ``names`` that a generated text refers to (quoted as `name`)."""
    return [v for v in names if f"`{v}`" in text]


def new_data_offset(df: pd.DataFrame, column: str, formula_part):
    """The ``offset=`` column of new data added to the formula's offset."""
    if not column:
        raise DataError("the model's offset= was given as an array, which new data cannot "
                        "supply: give offset= as a column name (or write offset(col) in the "
                        "formula) to predict for new data")
    if column not in df.columns:
        raise DataError(f"new data need the offset column {column!r}")
    off = df[column].to_numpy(dtype=float)
    check_offset(off, f"offset column {column!r}", "the new data")
    return off if formula_part is None else formula_part + off


def _new_by_codes(df, term: GroupTerm, labels, new: list[str], by_levels: list[str]):
    """by-level of each unseen group level (from its rows in the new data)."""
    out = np.empty(len(new), dtype=np.int64)
    by_labels = _as_labels(df[term.by])
    for k, lev in enumerate(new):
        seen = set(by_labels[labels == lev])
        if len(seen) != 1 or next(iter(seen)) not in by_levels:
            raise DataError(f"new level {lev!r} of {term.group} must sit in one known level of "
                            f"{term.by}; found {sorted(seen)}")
        out[k] = by_levels.index(next(iter(seen)))
    return out


def _group_labels(df: pd.DataFrame, factors: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """String labels per row of the (interaction of) grouping factors, and which are missing."""
    isna = np.zeros(len(df), dtype=bool)
    parts = []
    for f in factors:
        col = df[f]
        isna |= col.isna().to_numpy()
        parts.append(_as_labels(col))
    labels = parts[0] if len(parts) == 1 else np.array(
        ["_".join(t) for t in zip(*parts)], dtype=object)
    return labels, isna


def _as_labels(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_float_dtype(col) and np.all(np.mod(col.dropna(), 1) == 0):
        col = col.astype("Int64")
    out = col.astype(object).to_numpy(dtype=object)
    na = pd.isna(out)
    out = np.array([str(v) for v in out], dtype=object)
    out[na] = ""
    return out


def code_groups(df: pd.DataFrame, factors: tuple[str, ...]):
    """Integer codes over observed combinations, levels sorted per factor (lme4 order)."""
    codes = None
    labels_per = []
    for f in factors:
        c, uniq = pd.factorize(df[f], sort=True)
        labels_per.append(_as_labels(pd.Series(uniq)))
        codes = c.astype(np.int64) if codes is None else codes * len(uniq) + c
    uniq_codes, inverse = np.unique(codes, return_inverse=True)
    if len(factors) == 1:
        levels = [str(labels_per[0][k]) for k in uniq_codes]
    else:
        levels = []
        for k in uniq_codes:
            parts = []
            for labs in reversed(labels_per):
                k, r = divmod(int(k), len(labs))
                parts.append(str(labs[r]))
            levels.append("_".join(reversed(parts)))
    if len(set(levels)) < len(levels):
        dup = pd.Index(levels)[pd.Index(levels).duplicated()][0]
        if len(factors) == 1:
            raise DataError(f"grouping factor {factors[0]!r} has different values that read the "
                            f"same as text ({dup!r}, e.g. the number 1 and the string '1'); "
                            "give the column a single type")
        raise DataError(f"levels of {':'.join(factors)} are named by joining the factors' "
                        f"levels with '_', and {dup!r} names more than one combination; "
                        "rename the levels that contain '_'")
    return inverse.astype(np.int64), levels


def response_matrix(spec: FormulaSpec, df: pd.DataFrame, fdf: pd.DataFrame, columns,
               observed: np.ndarray | None = None, rows: np.ndarray | None = None
               ) -> np.ndarray:
    """The response columns on ``rows`` of ``df`` / ``fdf`` (all rows when None)."""
    cols = []
    for text in spec.responses:
        if text.startswith("`") and text.endswith("`") and text.count("`") == 2:
            col = df[text[1:-1]]
            if col.dtype == bool or pd.api.types.is_bool_dtype(col):
                col = col.astype(float)
            if not pd.api.types.is_numeric_dtype(col):
                raise DataError(f"response {text[1:-1]!r} must be numeric, not {col.dtype} "
                                "(recode categories as 0/1 or counts; an unordered "
                                "categorical response is fitted by mf.fit(..., "
                                "family='categorical'), not by lmer/glmer)")
            cols.append(col.to_numpy(dtype=float))
        else:
            mm = evaluate_formulaic("0 + " + text, fdf, spec, columns)
            if mm.shape[1] != 1:
                raise FormulaError(f"the response {text!r} must give one column, not "
                                   f"{mm.shape[1]}", spec.text)
            cols.append(np.asarray(mm, dtype=float)[:, 0])
    y = np.column_stack(cols)
    if rows is not None:
        y = y[rows]
    if observed is not None:
        y[~observed] = np.nan
    if not np.all(np.isfinite(y) | (~observed if observed is not None else False)):
        k = int((~np.isfinite(y)).any(axis=1).sum())
        raise DataError(f"the response has {k} non-finite value(s) (inf or a transform "
                        "out of its domain)")
    return y


def design_matrices(formula, data, na_action: str = "drop", drop_aliased: bool = False,
                    data2: dict | None = None) -> Design:
    """Build the :class:`Design` for ``formula`` (text or FormulaSpec) on ``data``.

    ``data2``: named matrices the formula refers to (brms' ``data2``), e.g. the known
    covariance A of ``gr(g, cov = A)`` (:mod:`.known_cov`).

    ``drop_aliased=True`` (what :class:`~mixedformula.Model`, ``lmer`` and ``load`` use): drop
    fixed-effect columns that are linear combinations of earlier ones, with a warning, as lme4
    does (see :func:`_drop_aliased`); the default keeps every column, like R's model.matrix.
    """
    spec = formula if isinstance(formula, FormulaSpec) else parse(formula)
    if na_action not in ("drop", "raise"):
        raise ValueError("na_action must be 'drop' or 'raise'")
    df = as_pandas(data)
    check_columns(spec, df, spec.variables)
    if len(df) == 0:
        raise DataError("the data have no rows")
    used = list(spec.variables)
    check_types(df, used)
    observed, notes = None, {}
    if any(g.cov is not None for g in spec.groups) and (spec.parts or spec.multivariate):
        raise FormulaError("gr(cov = ...) in multivariate models is not supported yet",
                           spec.text)
    if spec.parts:
        return _multivariate(spec, df, na_action, drop_aliased)
    if spec.multivariate:
        keep, observed, n_dropped, notes = _observed(spec, df, na_action)
        df = df.loc[keep]
        rows = np.ones(len(df), dtype=bool)
    else:
        # a missing value in an addition column (weights, cens, se, bounds) of a row that is
        # otherwise used is an error (design/additions.py), not a dropped row
        na_used = [c for c in used if c not in _addition_only(spec)]
        na = df[na_used].isna()
        drop = na.any(axis=1).to_numpy()
        n_dropped = int(drop.sum())
        if n_dropped:
            cols = [f"{c} ({int(na[c].sum())})" for c in na_used if na[c].any()]
            msg = (f"{n_dropped} of {len(df)} rows have missing values in {', '.join(cols)}")
            if na_action == "raise":
                raise DataError(msg)
            if n_dropped == len(df):
                raise DataError(msg + ": no complete rows are left")
            warnings.warn(msg + "; those rows were dropped", UserWarning, stacklevel=2)
        rows = ~drop
    # R evaluates the model frame (scale(), poly(), ...) on every row of the data, then drops
    # the rows with missing values; factor levels are those of the rows kept
    kept = df.loc[rows]
    predictors = predictor_columns(spec)
    codes = codings(kept, predictors)
    check_levels(codes, predictors)
    widths = {c: len(k.levels) if k.kind == "factor" else 2 for c, k in codes.items()
              if k.kind != "numeric"}
    for text in [spec.fixed] + [t.expr for t in spec.groups] + [d.fixed for d in spec.dpars]:
        check_data_columns(text, widths, spec.text)
    fdf = aliased_frame(df, used, codes)
    y = response_matrix(spec, df, fdf, used, observed, rows)
    trials = None
    if spec.trials:
        tm = evaluate_formulaic("0 + " + spec.trials, fdf, spec, used)
        if tm.shape[1] != 1:
            raise FormulaError("trials() must give one numeric column", spec.text)
        trials = np.asarray(tm, dtype=float)[rows, 0]
    offset = formula_offset(spec, fdf, used, rows)
    adds = _additions(spec, df, fdf, used, rows, y)
    fixed_mm = evaluate_formulaic(spec.fixed, fdf, spec, used, codes=codes)
    X = np.asarray(fixed_mm, dtype=float)[rows]
    X_names = _names(fixed_mm, used)
    check_finite(X, X_names, "the fixed part")
    fixed_keep = _drop_aliased(X, X_names) if drop_aliased else None
    if fixed_keep is not None:
        X, X_names = X[:, fixed_keep], [X_names[j] for j in fixed_keep]
    dpar_X, dpar_specs = _dpar_fixed(spec, fdf, used, codes, rows, drop_aliased)
    cs_names = _category_specific_columns(spec, fdf, used, codes, X_names)
    blocks, term_specs, coef_names = [], [], []
    for term in spec.groups:
        mm = evaluate_formulaic(term.expr, fdf, spec, used, codes=codes)
        if mm.shape[1] == 0:
            raise FormulaError(f"the group term {term.text!r} has no coefficients", spec.text)
        Xk = np.asarray(mm, dtype=float)[rows]
        group_codes, levels = code_groups(kept, term.factors)
        names = _names(mm, used)
        check_finite(Xk, names, f"the group term {term.text!r}")
        by_levels = by_codes = None
        if term.by:
            by_levels, by_codes = by_mapping(kept, term, group_codes, levels)
        blocks.append(GroupBlock(term=term, coef_names=names, X=Xk,
                                 codes=group_codes, levels=levels, by_levels=by_levels,
                                 by_codes=by_codes))
        term_specs.append(mm.model_spec)
        coef_names.append(names)
    autocor = None
    if spec.autocor:
        term = spec.autocor[0]
        autocor = autocor_structure(term, kept, code_groups(kept, (term.gr,))
                                    if term.gr is not None else None)
    df = kept
    response_names = ([response_name(r) for r in spec.responses] if spec.multivariate
                      else [response_name(spec.responses[0])])
    dspec = DesignSpec(formula=spec, fixed_spec=fixed_mm.model_spec, term_specs=term_specs,
                       levels=[b.levels for b in blocks],
                       by_levels=[b.by_levels for b in blocks],
                       by_codes=[b.by_codes for b in blocks], X_names=X_names,
                       coef_names=coef_names, response_names=response_names,
                       columns=tuple(used),
                       factor_levels=_factor_levels(df, predictors),
                       fixed_keep=fixed_keep, codings=codes, dpar_specs=dpar_specs,
                       cs_names=cs_names)
    design = Design(formula=spec, y=y, response_names=response_names, X=X, X_names=X_names,
                    terms=blocks, spec=dspec, trials=trials, row_index=df.index.values,
                    n_dropped=n_dropped, observed=observed, not_used=notes, offset=offset,
                    dpar_X=dpar_X, autocor=autocor, **adds)
    if any(g.cov is not None for g in spec.groups):
        from .known_cov import attach_known_covariances
        attach_known_covariances(design, data2)
    return design


def _category_specific_columns(spec: FormulaSpec, fdf, used, codes, X_names) -> list[str]:
    """The columns of X that the ``cs(x)`` terms make (brms' Xcs: the terms' model matrix
    without its intercept, so a factor keeps its treatment contrasts), in X's order."""
    if not spec.category_specific:
        return []
    mm = evaluate_formulaic("1 + " + " + ".join(spec.category_specific), fdf, spec, used,
                            codes=codes)
    made = set(_names(mm, used)) - {"Intercept"}
    return [c for c in X_names if c in made]


def _dpar_fixed(spec: FormulaSpec, fdf, used, codes, rows, drop_aliased: bool):
    """The fixed part of each distributional formula (``sigma ~ x``) on the model's rows, as
    the mean's (aliased columns dropped with lme4's rule): ({(dpar, 0): (X, names)},
    {dpar: (ModelSpec, kept columns, names)})."""
    out, specs = {}, {}
    for d in spec.dpars:
        mm = evaluate_formulaic(d.fixed, fdf, spec, used, codes=codes)
        Xd = np.asarray(mm, dtype=float)[rows]
        names = _names(mm, used)
        check_finite(Xd, names, f"the formula for {d.name}")
        keep = _drop_aliased(Xd, names) if drop_aliased else None
        if keep is not None:
            Xd, names = Xd[:, keep], [names[j] for j in keep]
        out[(d.name, 0)] = (Xd, names)
        specs[d.name] = (mm.model_spec, keep, names)
    return out, specs


def _addition_only(spec: FormulaSpec) -> set[str]:
    """Columns used only by addition terms (their missing values are errors, not drops)."""
    if not spec.additions.any:
        return set()
    others = set(spec.response_variables) | set(spec.fixed_variables) | set(
        spec.trials_variables) | set(spec.offset_variables)
    for g in spec.groups:
        others |= set(g.variables) | set(g.factors) | ({g.by} if g.by else set())
    return set(spec.additions.variables) - others


def _additions(spec: FormulaSpec, df: pd.DataFrame, fdf: pd.DataFrame, used, rows,
               y: np.ndarray | None) -> dict:
    """weights / cens / trunc / se of the rows used (:mod:`.additions`)."""
    if not spec.additions.any:
        return {}
    from .additions import addition_data

    def numeric(text: str) -> np.ndarray:
        mm = evaluate_formulaic("0 + " + text, fdf, spec, used)
        if mm.shape[1] != 1:
            raise FormulaError(f"{text} must give one numeric column", spec.text)
        return np.asarray(mm, dtype=float)[rows, 0]

    return addition_data(spec, df.loc[rows] if not isinstance(rows, slice) else df, numeric,
                         None if y is None else np.asarray(y, dtype=float)[:, 0])


def _observed(spec: FormulaSpec, df: pd.DataFrame, na_action: str):
    """Per-response missing values of a multivariate formula.

    Response k is observed in row i when every column it needs is (its response, and its
    predictors and grouping factors: mvbind's shared right-hand side, or its own bf() formula).
    Rows observed for no response are dropped; the others stay, each response using its own
    rows. Returns (kept rows, observed mask (kept, r) or None when nothing is missing,
    rows dropped, {response: message}); warns with the counts, or raises for
    ``na_action="raise"``.
    """
    r = len(spec.responses)
    names = [response_name(t) for t in spec.responses]
    if spec.parts:
        # a missing value in a response's addition column is an error (design/additions.py)
        needs = [[v for v in p.variables if v not in _addition_only(p)] for p in spec.parts]
    else:
        shared = [v for v in spec.variables if v not in spec.response_variables]
        needs = []
        for t in spec.responses:
            # rendered formulaic text quotes every column name: `y1`
            own = [v for v in spec.response_variables if f"`{v}`" in t]
            needs.append(own + [v for v in shared if v not in own])
    na = df[list(spec.variables)].isna()
    obs = np.column_stack([~na[cols].any(axis=1).to_numpy() for cols in needs])
    keep = obs.any(axis=1)
    notes: dict[str, str] = {}
    for k in range(r):
        miss = ~obs[:, k]
        if miss.any():
            cols = [f"{c} ({int(na[c].sum())})" for c in needs[k] if na[c].any()]
            notes[names[k]] = (f"{int(miss.sum())} of {len(df)} rows not used (missing values "
                               f"in {', '.join(cols)})")
    n_dropped = int((~keep).sum())
    if notes:
        msg = "; ".join(f"{k}: {v}" for k, v in notes.items())
        if na_action == "raise":
            raise DataError(msg)
        if n_dropped == len(df):
            raise DataError(msg + ": no row has an observed response")
        tail = (f"; {n_dropped} rows with no observed response were dropped, the others are "
                "used for the responses observed in them" if n_dropped else
                "; each response uses the rows where it is observed")
        warnings.warn(msg + tail, UserWarning, stacklevel=3)
    return keep, (obs[keep] if notes else None), n_dropped, notes


def _multivariate(spec: FormulaSpec, df: pd.DataFrame, na_action: str,
                  drop_aliased: bool) -> Design:
    """bf(...) + bf(...): one univariate Design per response on the rows where it is observed,
    group factors coded once over all of them, then stacked (:func:`_stack`)."""
    keep, observed, n_dropped, notes = _observed(spec, df, na_action)
    df = df.loc[keep]
    r = len(spec.parts)
    obs = observed if observed is not None else np.ones((len(df), r), dtype=bool)
    designs = [_part_design(p, df.loc[obs[:, k]], drop_aliased, response_name(p.responses[0]))
               for k, p in enumerate(spec.parts)]
    pspecs = [d.spec for d in designs]
    # one coding of each grouping factor over the rows of every response that uses it, so
    # that terms sharing an ID (or r_<group>) see the same levels in every response
    for factors in dict.fromkeys(g.factors for g in spec.groups):
        users = np.zeros(len(df), dtype=bool)
        for k, p in enumerate(spec.parts):
            if any(g.factors == factors for g in p.groups):
                users |= obs[:, k]
        sub = df.loc[users]
        codes, levels = code_groups(sub, factors)
        for k, p in enumerate(spec.parts):
            for i, g in enumerate(p.groups):
                if g.factors == factors:
                    pspecs[k].levels[i] = list(levels)
                    if g.by:
                        pspecs[k].by_levels[i], pspecs[k].by_codes[i] = by_mapping(
                            sub, g, codes, levels)
    parts = [ps.transform(df.loc[obs[:, k]], require_response=True)
             for k, ps in enumerate(pspecs)]
    for part, d in zip(parts, designs):     # the checked addition data and offset of the fit
        for key in ("weights", "cens", "trunc", "se", "offset"):
            setattr(part, key, getattr(d, key))
    dspec = DesignSpec(formula=spec, fixed_spec=None, term_specs=[], levels=[], by_levels=[],
                       by_codes=[], X_names=[], coef_names=[],
                       response_names=[response_name(t) for t in spec.responses],
                       columns=tuple(spec.variables), parts=pspecs,
                       factor_levels={k: v for ps in pspecs for k, v in ps.factor_levels.items()})
    out = _stack(spec, parts, obs, dspec, df.index.values)
    out.observed, out.n_dropped, out.not_used = observed, n_dropped, notes
    return out


def _part_design(spec: FormulaSpec, df: pd.DataFrame, drop_aliased: bool, name: str) -> Design:
    """One response's Design of a bf() + bf() formula; a data error (a bad weight, censoring
    code, bound, se or offset) names the response."""
    try:
        return design_matrices(spec, df, "raise", drop_aliased)
    except DataError as e:
        raise DataError(f"response {name}: {e}") from None


def _stack(spec: FormulaSpec, parts: list[Design], observed: np.ndarray, dspec: "DesignSpec",
           row_index) -> Design:
    """One multivariate Design from one univariate Design per response (bf() + bf()).

    Response k's rows sit at ``observed[:, k]``; its X columns (zero elsewhere) are
    ``fixed_cols[k]``; its group terms keep their codes there (-1 elsewhere, X rows zero).
    """
    n, r = observed.shape
    y = np.full((n, r), np.nan) if parts[0].y is not None else None
    Xs, names, cols, terms = [], [], [], []
    dpar_X = {}
    start = 0
    for k, d in enumerate(parts):
        rows = np.nonzero(observed[:, k])[0]
        if y is not None:
            y[rows, k] = d.y[:, 0]
        for (name, _), (Xd, dnames) in d.dpar_X.items():
            full = np.zeros((n, Xd.shape[1]))
            full[rows] = Xd
            dpar_X[(name, k)] = (full, list(dnames))
        Xk = np.zeros((n, d.X.shape[1]))
        Xk[rows] = d.X
        Xs.append(Xk)
        names += list(d.X_names)
        cols.append(list(range(start, start + d.X.shape[1])))
        start += d.X.shape[1]
        for t, g in zip(d.terms, [g for g in spec.groups if g.response == k]):
            Xt = np.zeros((n, t.q))
            Xt[rows] = t.X
            codes = np.full(n, -1, dtype=np.int64)
            codes[rows] = t.codes
            terms.append(GroupBlock(term=g, coef_names=t.coef_names, X=Xt, codes=codes,
                                    levels=t.levels, by_levels=t.by_levels,
                                    by_codes=t.by_codes, new_levels=t.new_levels))
    X = np.concatenate(Xs, axis=1)
    offset = None
    if any(d.offset is not None for d in parts):      # offset() per response: (n, r)
        offset = np.zeros((n, r))
        for k, d in enumerate(parts):
            if d.offset is not None:
                offset[np.nonzero(observed[:, k])[0], k] = d.offset
    from .additions import has_additions
    dspec.X_names = names
    dspec.levels = [t.levels for t in terms]
    dspec.by_levels = [t.by_levels for t in terms]
    dspec.by_codes = [t.by_codes for t in terms]
    dspec.coef_names = [t.coef_names for t in terms]
    return Design(formula=spec, y=y, response_names=list(dspec.response_names), X=X,
                  X_names=names, terms=terms, spec=dspec, row_index=row_index,
                  fixed_cols=cols, observed=None if observed.all() else observed,
                  dpar_X=dpar_X, offset=offset, part_designs=list(parts),
                  response_parts=parts if any(has_additions(d) or p.additions.any
                                              for d, p in zip(parts, spec.parts)) else None)


#: relative tolerance of the rank check (lme4's ``check.rankX`` uses qr(X, tol = 1e-7))
RANK_TOL = 1e-7


def _drop_aliased(X: np.ndarray, names: list[str], tol: float = RANK_TOL) -> list[int] | None:
    """lme4's ``check.rankX = "message+drop.cols"``: drop aliased fixed-effect columns.

    Columns are taken in order (R's ``qr(X, LAPACK = FALSE)`` pivots only negligible columns to
    the end): column j is kept when its residual after projecting it on the kept columns has
    norm > ``tol`` × its own norm; otherwise it is dropped with a warning naming it and the
    kept columns it is a combination of. With flat priors on b, an aliased column would make the
    posterior improper. Returns the kept column indices, or None when X has full column rank.
    """
    n, p = X.shape
    if p == 0:
        return None
    Q = np.zeros((n, min(n, p)))
    keep: list[int] = []
    dropped: list[tuple[int, list[int]]] = []
    for j in range(p):
        v = X[:, j].copy()
        norm = float(np.linalg.norm(v))
        k = len(keep)
        if norm > 0 and k < n:
            for _ in range(2):               # Gram-Schmidt, re-orthogonalised once
                v -= Q[:, :k] @ (Q[:, :k].T @ v)
            r = float(np.linalg.norm(v))
            if r > tol * norm:
                Q[:, k] = v / r
                keep.append(j)
                continue
        partners: list[int] = []
        if norm > 0 and keep:
            coef = np.linalg.lstsq(X[:, keep], X[:, j], rcond=None)[0]
            big = np.abs(coef) * np.linalg.norm(X[:, keep], axis=0) > 1e-6 * norm
            partners = [keep[i] for i in np.nonzero(big)[0]]
        dropped.append((j, partners))
    if not dropped:
        return None
    parts = []
    for j, partners in dropped:
        why = ("all zero" if not np.any(X[:, j]) else
               f"collinear with {', '.join(names[i] for i in partners)}" if partners else
               f"more coefficients than the {n} rows can identify")
        parts.append(f"{names[j]} ({why})")
    k = len(dropped)
    warnings.warn(f"fixed-effect model matrix is rank deficient so dropping {k} column"
                  f"{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}: "
                  f"{'; '.join(parts)}", UserWarning, stacklevel=3)
    return keep


def formula_offset(spec: FormulaSpec, fdf: pd.DataFrame, columns, rows=slice(None),
                   where: str = "the data") -> np.ndarray | None:
    """The sum of the formula's ``offset()`` terms per row (None without any); a non-finite
    value (missing, inf, log of 0) is a DataError naming the column(s) and the count of rows."""
    if not spec.offset:
        return None
    om = evaluate_formulaic("0 + " + spec.offset, fdf, spec, columns)
    if om.shape[1] != 1:
        raise FormulaError("offset() must give one numeric column", spec.text)
    off = np.asarray(om, dtype=float)[rows, 0]
    check_offset(off, f"offset({', '.join(spec.offset_variables)})", where)
    return off


def add_offset(design: Design, values, data) -> Design:
    """``offset=`` of mf.fit / mf.Model (a column name, or one value per row of ``data``) added
    to the formula's ``offset()``, over the rows the design kept. A column name is taken from
    new data in predictions too."""
    if values is None:
        return design
    if design.formula.multivariate:
        raise FormulaError("offset= in multivariate models is not supported yet",
                           design.formula.text)
    df = as_pandas(data)
    if isinstance(values, str):
        if values not in df.columns:
            raise DataError(f"offset={values!r} is not a column of the data")
        arr, what = df[values].to_numpy(dtype=float), f"offset column {values!r}"
    else:
        arr, what = np.asarray(values, dtype=float).ravel(), "offset="
        if arr.shape != (len(df),):
            raise DataError(f"offset= has {arr.size} values for {len(df)} rows of data")
    if design.row_index is not None and len(design.row_index) != len(df):
        pos = pd.Index(df.index).get_indexer(design.row_index)
        if np.any(pos < 0) or not df.index.is_unique:
            raise DataError("offset=: rows were dropped and the data's index is not unique, so "
                            "the values cannot be matched to the rows used")
        arr = arr[pos]
    check_offset(arr, what)
    design.offset = arr if design.offset is None else design.offset + arr
    design.spec.offset_column = values if isinstance(values, str) else ""
    return design


def check_offset(off: np.ndarray, what: str, where: str = "the data") -> None:
    bad = ~np.isfinite(off)
    if bad.any():
        raise DataError(f"{what} is not finite in {int(bad.sum())} row(s) of {where} (missing, "
                        f"inf, or a transform out of its domain such as log of a value <= 0; "
                        f"first at row {int(np.nonzero(bad)[0][0])}); an offset must be a "
                        "finite number in every row used")


def check_finite(X: np.ndarray, names: list[str], where: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        cols = [n for n, b in zip(names, bad.any(axis=0)) if b]
        raise DataError(f"{where} has {int(bad.any(axis=1).sum())} row(s) with non-finite "
                        f"values (inf, or a transform out of its domain such as log of a "
                        f"value <= 0) in column(s) {', '.join(cols)}")


def predictor_columns(spec: FormulaSpec) -> list[str]:
    out = list(spec.fixed_variables)
    for g in spec.groups:
        out += [v for v in g.variables if v not in out]
    return [v for v in dict.fromkeys(out)]


def by_mapping(df, term: GroupTerm, codes: np.ndarray, levels: list[str]):
    """gr(g, by = h): each level of g must sit in exactly one level of h."""
    h_codes, h_levels = pd.factorize(df[term.by], sort=True)
    by_levels = [str(x) for x in _as_labels(pd.Series(h_levels))]
    J = len(levels)
    pairs = np.unique(np.column_stack([codes, h_codes]), axis=0)
    counts = np.bincount(pairs[:, 0], minlength=J)
    if np.any(counts > 1):
        bad = int(np.nonzero(counts > 1)[0][0])
        raise DataError(f"gr({term.group}, by = {term.by}): levels of {term.group} must be "
                        f"nested in {term.by}, but level {levels[bad]!r} of {term.group} "
                        f"appears in {int(counts[bad])} levels of {term.by}")
    by_codes = np.empty(J, dtype=np.int64)
    by_codes[pairs[:, 0]] = pairs[:, 1]
    return by_levels, by_codes


# old private names, read by results/predict.py until it imports the public ones
_formulaic, _frame = evaluate_formulaic, aliased_frame
