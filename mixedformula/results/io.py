"""``save(fit, path)`` / ``load(path)``: one netCDF (HDF5) file, no pickle.

File layout (``InferenceData.to_netcdf``, engine h5netcdf):

* every group of ``fit.idata`` unchanged (``posterior``, ``sample_stats``, ...), so arviz alone
  can read the draws;
* one extra group ``mixedformula`` holding the data columns the formula uses (rows kept by the
  design, one variable ``col<k>`` per column with its name, kind and pandas dtype in the
  attributes), the matrices of ``data2`` the formula reads (``gr(g, cov = A)``: variable
  ``data2__A`` with dims ``data2__A__row``/``__col`` whose coordinates are A's level names, as
  given) and, in the attribute ``mixedformula``, a JSON document with the format version,
  formula, family and link, prior specification strings, the prior_summary table, likelihood,
  sampler info and the design facts the summary prints.

:func:`load` reads the file back, rebuilds family (``families.get_family``), priors
(``PriorSet.from_strings``) and the :class:`~mixedformula.design.Design` with
``design_matrices(formula, data)`` so that the fit can predict. Files are written to a temporary
file in the target directory and moved into place with ``os.replace`` (atomic on POSIX and
Windows): an interrupted save leaves any previous file untouched.
"""

from __future__ import annotations

import json
import os
import warnings
from types import SimpleNamespace

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from ..design import as_pandas, design_matrices
from ..errors import MixedFormulaError
from ..formula import parse
from .atomic import atomic_write
from .fit import Fit, FitMeta
from .naming import legacy_cor_names, legacy_logical_names

FORMAT = "mixedformula-fit"
VERSION = 1
GROUP = "mixedformula"
#: stored data columns: the kind of a pandas Categorical column
CATEGORICAL_KIND = "categorical"


# -- JSON-safe metadata ----------------------------------------------------------------------

def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if np.isfinite(x) else str(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if x is None or isinstance(x, (str, int)):
        return x
    return str(x)


# -- data frame <-> xarray Dataset --------------------------------------------------------------

def _used_rows(fit) -> pd.DataFrame | None:
    """The columns the formula uses, rows with a missing value dropped (as design_matrices does)."""
    data = fit.data
    if data is None:
        return None
    df = as_pandas(data)
    cols = None
    design = fit.design
    if design is not None:
        cols = list(design.spec.columns or ())
    if not cols:
        cols = list(df.columns)
    # columns the model uses outside the formula (rescor_by=..., info["extra_columns"])
    extra = [fit.info.get("rescor_by"), *(fit.info.get("extra_columns") or [])]
    cols += [c for c in extra if isinstance(c, str) and c in df.columns and c not in cols]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise MixedFormulaError(f"cannot save: fit.data lacks the column(s) {', '.join(missing)}")
    df = df[cols]
    from ..design.additions import has_additions
    if design is not None and (design.observed is not None or has_additions(design)):
        # multivariate with per-response missing values: keep the partially observed rows;
        # addition terms: cens(c, y2) leaves y2 missing on rows that are not interval-censored
        return df.loc[design.row_index]
    keep = ~df.isna().any(axis=1).to_numpy()
    return df.loc[keep]


DATA2_PREFIX = "data2__"


def _data2_variables(fit) -> dict:
    """The known matrices of ``gr(cov = ...)`` terms as DataArrays named by their levels."""
    used = getattr(getattr(fit.design, "spec", None), "known_matrices", None) or {}
    out = {}
    for name, (M, levels) in used.items():
        key = f"{DATA2_PREFIX}{name}"
        lv = np.array([str(v) for v in levels], dtype=object)
        out[key] = xr.DataArray(np.asarray(M, dtype=np.float64),
                                dims=(f"{key}__row", f"{key}__col"),
                                coords={f"{key}__row": lv, f"{key}__col": lv},
                                attrs={"name": str(name)})
    return out


def _stored_data2(ds: xr.Dataset) -> dict | None:
    """data2 as saved by :func:`_data2_variables`: {name: DataFrame indexed by the levels}."""
    out = {}
    for v in ds.data_vars:
        if str(v).startswith(DATA2_PREFIX):
            da = ds[v]
            levels = [str(x) for x in da.coords[da.dims[0]].values]
            out[da.attrs.get("name", str(v)[len(DATA2_PREFIX):])] = pd.DataFrame(
                np.asarray(da.values, dtype=float), index=levels, columns=levels)
    return out or None


def _frame_to_dataset(df: pd.DataFrame) -> xr.Dataset:
    variables = {}
    for k, name in enumerate(df.columns):
        col = df[name]
        attrs = {"name": str(name), "pandas_dtype": str(col.dtype)}
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = _jsonable(list(col.cat.categories))
            values = col.cat.codes.to_numpy(dtype=np.int64)
            attrs.update(kind=CATEGORICAL_KIND, categories=json.dumps(cats),
                         ordered=int(bool(col.cat.ordered)))
        elif pd.api.types.is_bool_dtype(col):
            values = col.to_numpy(dtype=np.int8)
            attrs["kind"] = "bool"
        elif pd.api.types.is_integer_dtype(col):
            values = col.to_numpy(dtype=np.int64)
            attrs["kind"] = "int"
        elif pd.api.types.is_float_dtype(col):
            values = col.to_numpy(dtype=np.float64)
            attrs["kind"] = "float"
        else:
            values = np.array([str(v) for v in col.to_numpy(dtype=object)], dtype=object)
            attrs["kind"] = "string"
        variables[f"col{k}"] = xr.DataArray(values, dims=("row",), attrs=attrs)
    idx = df.index
    if pd.api.types.is_integer_dtype(idx.dtype):
        row = np.asarray(idx, dtype=np.int64)
        kind = "int"
    else:
        row = np.array([str(v) for v in idx], dtype=object)
        kind = "string"
    ds = xr.Dataset(variables, coords={"row": row})
    ds.attrs["row_kind"] = kind
    return ds


def _dataset_to_frame(ds: xr.Dataset) -> pd.DataFrame:
    names = sorted((v for v in ds.data_vars if v.startswith("col")), key=lambda v: int(v[3:]))
    cols = {}
    for v in names:
        da = ds[v]
        a = da.attrs
        values = da.values
        kind = a.get("kind")
        if kind == CATEGORICAL_KIND:
            cats = json.loads(a["categories"])
            col = pd.Series(pd.Categorical.from_codes(values.astype(np.int64), categories=cats,
                                                      ordered=bool(int(a.get("ordered", 0)))))
        elif kind == "bool":
            col = pd.Series(values.astype(bool))
        elif kind in ("int", "float"):
            col = pd.Series(values)
        else:
            col = pd.Series([str(x) for x in values], dtype=object)
        try:
            col = col.astype(a["pandas_dtype"]) if kind != CATEGORICAL_KIND else col
        except (TypeError, ValueError):
            pass
        cols[a["name"]] = col.to_numpy() if kind != CATEGORICAL_KIND else col.values
    index = ds["row"].values
    if ds.attrs.get("row_kind") == "string":
        index = pd.Index([str(x) for x in index], dtype=object)
    df = pd.DataFrame(cols, index=index)
    for v in names:   # restore pandas dtypes lost by to_numpy (str, Int64, ...)
        a = ds[v].attrs
        if a.get("kind") != CATEGORICAL_KIND and str(df[a["name"]].dtype) != a["pandas_dtype"]:
            try:
                df[a["name"]] = df[a["name"]].astype(a["pandas_dtype"])
            except (TypeError, ValueError):
                pass
    return df


# -- save ---------------------------------------------------------------------------------------

def _family_meta(family) -> dict:
    parts = getattr(family, "families", None)      # one family per response: MV(...)
    if parts is not None:
        return {"name": str(family.name), "link": str(family.link),
                "parts": [_family_meta(f) for f in parts]}
    return {"name": str(family.name), "link": str(family.link),
            "links": _jsonable(dict(family.links)),
            "state": _jsonable(dict(getattr(family, "state", dict)()))}


def _priors_meta(fit) -> tuple[list, list | None]:
    specs = []
    to_strings = getattr(fit.priors, "to_strings", None)
    if callable(to_strings):
        specs = _jsonable(list(to_strings()))
    try:
        table = fit.prior_summary()
        table = None if table is None else {
            "columns": [str(c) for c in table.columns],
            "rows": _jsonable(table.astype(object).where(table.notna(), None).values.tolist())}
    except Exception:     # a prior object without a usable summary: store none
        table = None
    return specs, table


def save(fit, path) -> str:
    """Write ``fit`` to ``path`` (netCDF/HDF5) atomically; returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise MixedFormulaError(f"cannot save to {path!r}: the directory {directory!r} "
                                "does not exist")
    if getattr(getattr(fit.design, "spec", None), "offset_column", None) is not None:
        raise MixedFormulaError("a fit with offset= cannot be saved yet (the file rebuilds the "
                                "design from the formula); write the offset in the formula, "
                                "y ~ x + offset(col)")
    data = _used_rows(fit)
    prior_specs, prior_table = _priors_meta(fit)
    meta = {
        "format": FORMAT, "version": VERSION,
        "formula": fit.formula,
        "family": _family_meta(fit.family),
        "priors": prior_specs, "prior_summary": prior_table,
        "likelihood": str(fit.likelihood),
        "info": _jsonable(fit.info),
        "design": fit.meta.to_dict(),
        "has_data": data is not None,
    }
    extra = _frame_to_dataset(data) if data is not None else xr.Dataset()
    for key, da in _data2_variables(fit).items():
        extra[key] = da
    extra["format_version"] = xr.DataArray(np.int64(VERSION))   # never an empty (skipped) group
    extra.attrs[GROUP] = json.dumps(meta)
    groups = {g: fit.idata[g] for g in fit.idata.groups() if g != GROUP}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)   # arviz: non-standard group name
        out = az.InferenceData(**groups, **{GROUP: extra})
        out.attrs.update(fit.idata.attrs or {})
    return atomic_write(path, lambda tmp: out.to_netcdf(tmp, engine="h5netcdf"), suffix=".nc")


# -- load ---------------------------------------------------------------------------------------

def _read(path: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with az.rc_context({"data.load": "eager"}):
                return az.from_netcdf(path, engine="h5netcdf")
    except Exception as e:   # h5py/xarray raise OSError, ValueError, KeyError, ... on bad files
        raise MixedFormulaError(
            f"cannot read {path!r}: not a complete netCDF/HDF5 file (truncated, damaged, or "
            f"not written by mixedformula.save): {type(e).__name__}: {e}") from None


def _meta(idata, path: str) -> dict:
    if GROUP not in idata.groups() or "posterior" not in idata.groups():
        raise MixedFormulaError(f"{path!r} is a netCDF file but not a mixedformula fit "
                                f"(no '{GROUP}' or 'posterior' group); was it written by "
                                "mixedformula.save?")
    try:
        meta = json.loads(idata[GROUP].attrs[GROUP])
    except (KeyError, TypeError, ValueError) as e:
        raise MixedFormulaError(f"{path!r}: the mixedformula metadata are missing or "
                                f"damaged ({type(e).__name__})") from None
    if meta.get("format") != FORMAT:
        raise MixedFormulaError(f"{path!r} is not a mixedformula fit file")
    if int(meta.get("version", 0)) > VERSION:
        raise MixedFormulaError(f"{path!r} was written by a newer mixedformula (format "
                                f"version {meta['version']}; this one reads up to {VERSION})")
    return meta


def _stored_formula(meta: dict):
    """The fitted formula: with an ordinal family, its cs(x) terms are category-specific
    effects (as when it was fitted), not formulaic's spline."""
    from ..formula import parse
    spec = parse(meta["formula"])
    return spec.with_category_specific() if getattr(_family(meta), "thresholds", False) \
        else spec


def _family(meta: dict):
    fam = meta["family"]
    if fam.get("parts"):                 # one family per response: MV(poisson, gaussian)
        from ..families.multivariate import MultivariateFamily
        return MultivariateFamily([_family({"family": p}) for p in fam["parts"]])
    try:
        from ..families import get_family
        return get_family(fam["name"], fam.get("link")).with_state(fam.get("state") or {})
    except Exception:
        links = fam.get("links") or {"mu": fam.get("link", "identity")}
        return SimpleNamespace(name=fam["name"], link=fam.get("link"), links=links)


class _StoredPriors:
    """Stand-in when the prior specification cannot be rebuilt: serves the stored table."""

    def __init__(self, specs):
        self.specs = specs

    def to_strings(self):
        return list(self.specs)

    def summary(self):
        return pd.DataFrame(columns=["prior", "class", "coef", "group", "resp", "dpar", "lb",
                                     "ub", "source"])


def _priors(meta: dict):
    specs = meta.get("priors") or []
    try:
        from ..priors import PriorSet
        return PriorSet.from_strings(specs)
    except ImportError:
        return _StoredPriors(specs)


def _legacy_ordered(design, data, formula, posterior, data2=None):
    """Fits saved before ordered factors got R's contr.poly coded them with treatment contrasts
    (``b_omid``, not ``b_o.L``): rebuild the design that way when it matches more of the saved
    coefficients."""
    ordered = [c for c in data.columns if isinstance(data[c].dtype, pd.CategoricalDtype)
               and data[c].cat.ordered]
    if not ordered or posterior is None:
        return design, data

    def found(d):
        pre = [""] + [f"{r}_" for r in d.response_names]
        return sum(any(f"b_{p}{x}" in posterior for p in pre) for x in d.X_names)

    old = data.assign(**{c: data[c].cat.as_unordered() for c in ordered})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuilt = design_matrices(formula, old, drop_aliased=True, data2=data2)
    return (rebuilt, old) if found(rebuilt) > found(design) else (design, data)


def load(path):
    """Read a fit written by :func:`save`; rebuilds the design from the stored data."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    idata = _read(path)
    meta = _meta(idata, path)
    extra = idata[GROUP]
    data = design = None
    data2 = _stored_data2(extra)
    family = _family(meta)
    formula = _stored_formula(meta)
    if meta.get("has_data"):
        if hasattr(family, "formula_for"):       # categorical: the formula per category
            formula = family.formula_for(formula)
        data = _dataset_to_frame(extra.drop_vars(
            [v for v in extra.data_vars if str(v).startswith(DATA2_PREFIX)]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            design = design_matrices(formula, data, drop_aliased=True, data2=data2)
    groups = {g: idata[g] for g in idata.groups() if g != GROUP}
    if design is not None:
        design, data = _legacy_ordered(design, data, formula, groups.get("posterior"), data2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        clean = az.InferenceData(**groups)
        clean.attrs.update(idata.attrs or {})
    if design is not None:      # names of fits saved before they followed brms / R
        old = legacy_cor_names(clean.posterior.data_vars,
                               [(t.name, t.term.by, t.by_levels) for t in design.terms])
        old.update(legacy_logical_names(clean.posterior.data_vars, design))
        if old:
            clean.posterior = clean.posterior.rename(old)
    table = meta.get("prior_summary")
    if table is not None:
        table = pd.DataFrame(table["rows"], columns=table["columns"])
    return Fit.from_stored(clean, design, family, _priors(meta), meta["likelihood"],
                           meta.get("info") or {}, FitMeta.from_dict(meta["design"]), table,
                           data=data)
