"""What each predictor column is, and the same coding for the data and for new data.

R's model frame gives every variable a class, and ``model.matrix`` codes it by class; new data
must have the same classes (R's ``.checkMFClasses``). Here:

* ``numeric``: int or float columns, used as they are.
* ``factor``: text and pandas categoricals. Levels: those present in the rows used (R's
  ``drop.unused.levels = TRUE`` in lm/lmer), sorted for text (R's ``factor()``), in category
  order for a categorical. An *ordered* categorical gets ``contr.poly`` (R's default contrasts
  for ordered factors: columns ``o.L, o.Q, o.C, o^4, ...``), others treatment contrasts.
* ``logical``: bool columns, coded as a factor with levels FALSE, TRUE (column ``bTRUE``, as R's
  model.matrix and brms name it); inside a function (``I(b * x)``) they stay 0/1 numbers.

New data are mapped onto the fitted coding: values are matched to the fitted levels, and
numbers given for text levels (2 for "2") by their text; a number that matches no level, or
more than one, a text column where the model had numbers, or any other change of type raises a
DataError naming the column and both types. Columns of types a model matrix cannot hold
(timedelta, complex) are refused by :func:`check_types` (a datetime column fails in formulaic
with a FormulaError, docs/reliability.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError


@dataclass(frozen=True)
class Coding:
    kind: str                    # "numeric" | "factor" | "logical"
    dtype: str                   # dtype of the column in the data the model was built on
    levels: tuple = ()           # factor: the levels (values as in the data)
    ordered: bool = False


def check_types(df: pd.DataFrame, names, where: str = "the data") -> None:
    """Refuse columns whose values cannot be model-matrix numbers (named in the error)."""
    for c in names:
        if c not in df.columns:
            continue
        t = df[c].dtype
        if pd.api.types.is_timedelta64_dtype(t):
            raise DataError(f"column {c!r} in {where} holds time differences ({t}); convert it "
                            f"to a number first, e.g. data[{c!r}].dt.total_seconds() / 86400 "
                            "for days")
        if pd.api.types.is_complex_dtype(t):
            raise DataError(f"column {c!r} in {where} holds complex numbers ({t}); a model "
                            "matrix holds real numbers: use its real and imaginary parts as "
                            "two columns")
        if t == object:
            kinds = {type(v) for v in df[c].dropna().head(10_000)}
            if any(issubclass(k, complex) for k in kinds):
                raise DataError(f"column {c!r} in {where} holds complex numbers; a model "
                                "matrix holds real numbers")


def _is_logical(col: pd.Series) -> bool:
    return pd.api.types.is_bool_dtype(col.dtype)


def _is_numeric(col: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(col.dtype) and not _is_logical(col)


def codings(df: pd.DataFrame, names) -> dict[str, Coding]:
    """The coding of each predictor column, from the rows the model uses."""
    out: dict[str, Coding] = {}
    for c in names:
        col = df[c]
        dtype = str(col.dtype)
        if _is_logical(col):
            out[c] = Coding("logical", dtype, (False, True))
        elif _is_numeric(col) or pd.api.types.is_datetime64_any_dtype(col.dtype):
            out[c] = Coding("numeric", dtype)       # (a datetime is left to formulaic)
        elif isinstance(col.dtype, pd.CategoricalDtype):
            present = set(col.dropna().unique())
            levels = tuple(v for v in col.cat.categories if v in present)
            out[c] = Coding("factor", dtype, levels, bool(col.cat.ordered))
        else:
            values = list(pd.unique(col.dropna()))
            try:
                levels = tuple(sorted(values))
            except TypeError:
                kinds = sorted({type(v).__name__ for v in values})
                raise DataError(f"column {c!r} mixes values of types {', '.join(kinds)}; give "
                                "it a single type (text, or numbers)") from None
            out[c] = Coding("factor", dtype, levels)
    return out


def check_levels(codes: dict[str, Coding], names) -> None:
    """R: "contrasts can be applied only to factors with 2 or more levels"."""
    for c in names:
        k = codes.get(c)
        if k is not None and k.kind == "factor" and len(k.levels) < 2:
            lev = f" (its only level is {k.levels[0]!r})" if k.levels else ""
            raise DataError(f"contrasts can be applied only to factors with 2 or more levels: "
                            f"predictor {c!r} has {len(k.levels)} level{lev} in the rows used")


def as_coded(col: pd.Series, k: Coding) -> pd.Series:
    """The column as formulaic sees it (see module doc)."""
    if k.kind == "factor":
        return pd.Series(pd.Categorical(col, categories=list(k.levels), ordered=k.ordered),
                         index=col.index)
    return col


def logical_factor(col: pd.Series) -> pd.Series:
    """bool → factor with levels FALSE, TRUE (R's spelling)."""
    values = np.where(col.fillna(False).to_numpy(dtype=bool), "TRUE", "FALSE").astype(object)
    values[col.isna().to_numpy()] = None
    return pd.Series(pd.Categorical(values, categories=["FALSE", "TRUE"]), index=col.index)


def _label(v) -> str:
    if isinstance(v, (float, np.floating)) and np.isfinite(v) and float(v).is_integer():
        return str(int(v))
    return str(v)


def _number(v) -> float | None:
    """A level's value as a number (the text "2.0" is 2), None if it is not one."""
    if isinstance(v, (bool, np.bool_)):
        return None
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def conform(df: pd.DataFrame, codes: dict[str, Coding]) -> pd.DataFrame:
    """New data with each predictor column in the coding the model was built with (module doc);
    raises DataError for an unseen level or a change of type that has no single meaning."""
    changed = {}
    for c, k in codes.items():
        if c not in df.columns:
            continue
        col = df[c]
        new = str(col.dtype)
        if k.kind == "numeric":
            if not _is_numeric(col):
                raise DataError(f"column {c!r} was numeric ({k.dtype}) in the data the model "
                                f"was fitted on, but is {new} in the new data; give numbers")
        elif k.kind == "logical":
            if not _is_logical(col):
                raise DataError(f"column {c!r} was logical ({k.dtype}) in the data the model "
                                f"was fitted on, but is {new} in the new data; give True/False")
        else:
            changed[c] = _to_levels(c, col, k)
    return df.assign(**changed) if changed else df


def _to_levels(c: str, col: pd.Series, k: Coding) -> pd.Series:
    """Map new values onto the fitted levels: the same value, else the same text."""
    levels = pd.Index(list(k.levels), dtype=object)
    values = col.astype(object)
    present = values.notna().to_numpy()
    exact = levels.get_indexer(values.where(values.notna(), None))
    idx = np.where(present, exact, -1)
    by_label: dict[str, list[int]] = {}
    by_number: dict[float, list[int]] = {}
    for i, lev in enumerate(k.levels):
        by_label.setdefault(_label(lev), []).append(i)
        if (x := _number(lev)) is not None:
            by_number.setdefault(x, []).append(i)
    todo = np.nonzero(present & (idx < 0))[0]
    unseen: list[str] = []
    for r in todo:
        v = values.iloc[r]
        if isinstance(v, (bool, np.bool_)):
            hits = []      # True is not the level "1" nor "True": no single meaning
        elif isinstance(v, (int, float, np.integer, np.floating)):
            hits = by_number.get(float(v), [])      # 2 is the level "2" (or "2.0")
        else:
            hits = by_label.get(str(v), [])         # "2" is the level 2
        if len(hits) > 1:
            raise DataError(f"column {c!r} was {k.dtype} with levels "
                            f"{', '.join(repr(k.levels[i]) for i in hits)} in the data the model "
                            f"was fitted on; the value {v!r} ({col.dtype}) of the new data "
                            "could be either: give the levels as they were")
        if hits:
            idx[r] = hits[0]
        elif _label(v) not in unseen:
            unseen.append(_label(v))
    if unseen:
        known = [_label(v) for v in k.levels]
        note = (f" (the model's levels are {k.dtype} and the new data's values {col.dtype})"
                if str(col.dtype) != k.dtype else "")
        raise DataError(f"new data have level(s) {', '.join(map(repr, sorted(unseen)))} of "
                        f"{c!r} that the model has not seen (known: {', '.join(known[:20])}"
                        f"{', ...' if len(known) > 20 else ''}){note}")
    codes = idx.astype(np.int64)
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(k.levels),
                                               ordered=k.ordered), index=col.index)
