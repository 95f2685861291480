"""Design matrices on small simulated data: nested, crossed and categorical-slope terms, names,
replay on new data, missing values, polars input (issue 2)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedformula as mf
from mixedformula import DataError, FormulaError


@pytest.fixture
def df():
    rng = np.random.default_rng(42)
    n = 60
    return pd.DataFrame({
        "y": rng.normal(size=n), "x": rng.normal(2, 3, size=n), "z": rng.uniform(1, 5, n),
        "f": rng.choice(["c", "a", "b"], n), "g1": rng.choice(["v", "u", "w"], n),
        "g2": rng.choice([10, 2, 1], n), "s": rng.choice(["s2", "s1", "s3", "s4"], n),
        "n": rng.integers(5, 10, n)})


def hand_Z(codes, X, J):
    """Z built entry by entry: Z[i, codes[i] * q + c] = X[i, c]."""
    n, q = X.shape
    Z = np.zeros((n, J * q))
    for i in range(n):
        if 0 <= codes[i] < J:
            Z[i, codes[i] * q:(codes[i] + 1) * q] = X[i]
    return Z


def test_nested_terms_codes_levels_and_Z(df):
    d = mf.design_matrices("y ~ x + (1 | g1/g2)", df)
    outer, inner = d.terms
    assert outer.name == "g1" and inner.name == "g1:g2"
    assert outer.levels == ["u", "v", "w"]                  # sorted like lme4
    observed = sorted({(a, b) for a, b in zip(df.g1, df.g2)}, key=lambda t: (t[0], t[1]))
    assert inner.levels == [f"{a}_{b}" for a, b in observed]   # observed combinations only
    assert inner.J == len(observed)
    assert [inner.levels[c] for c in inner.codes] == [f"{a}_{b}" for a, b in zip(df.g1, df.g2)]
    assert [outer.levels[c] for c in outer.codes] == list(df.g1)
    Z = d.Z
    assert sp.issparse(Z) and Z.shape == (60, outer.J + inner.J)
    Zh = np.hstack([hand_Z(t.codes, t.X, t.J) for t in d.terms])
    np.testing.assert_array_equal(Z.toarray(), Zh)
    np.testing.assert_allclose((Z @ Z.T).toarray(), Zh @ Zh.T)


def test_numeric_group_levels_sort_numerically(df):
    d = mf.design_matrices("y ~ (1 | g2)", df)
    assert d.terms[0].levels == ["1", "2", "10"]


def test_interaction_drops_unobserved_combinations(df):
    sub = df[~((df.g1 == "u") & (df.g2 == 2))]
    d = mf.design_matrices("y ~ (1 | g1:g2)", sub)
    assert "u_2" not in d.terms[0].levels
    assert d.terms[0].J == len({(a, b) for a, b in zip(sub.g1, sub.g2)})
    assert d.Z.shape[1] == d.terms[0].J
    assert np.all(np.asarray(d.Z.sum(axis=0)).ravel() > 0)   # no empty columns


def test_crossed_terms_with_slopes(df):
    d = mf.design_matrices("y ~ x + (1 + x | g1) + (1 | s) + (0 + z || g2)", df)
    assert [t.name for t in d.terms] == ["g1", "s", "g2"]
    assert [t.coef_names for t in d.terms] == [["Intercept", "x"], ["Intercept"], ["z"]]
    assert [t.correlated for t in d.terms] == [True, True, False]
    assert d.terms[1].levels == ["s1", "s2", "s3", "s4"]
    np.testing.assert_allclose(d.terms[0].X, np.column_stack([np.ones(60), df.x]))
    Zh = np.hstack([hand_Z(t.codes, t.X, t.J) for t in d.terms])
    assert d.Z.shape == (60, 3 * 2 + 4 + 3)
    np.testing.assert_allclose((d.Z @ d.Z.T).toarray(), Zh @ Zh.T)
    # level-major columns: level k of g1 owns columns 2k (Intercept) and 2k+1 (x)
    Z1 = d.terms[0].Z().toarray()
    k = d.terms[0].codes[0]
    assert Z1[0, 2 * k] == 1.0 and Z1[0, 2 * k + 1] == df.x[0]


def test_categorical_slopes(df):
    d = mf.design_matrices("y ~ f + (1 + f | g1) + (0 + f || s)", df)
    assert d.X_names == ["Intercept", "fb", "fc"]
    t1, t2 = d.terms
    assert t1.coef_names == ["Intercept", "fb", "fc"]
    assert t2.coef_names == ["fa", "fb", "fc"]           # 0 + f: one column per level
    assert not t2.correlated
    np.testing.assert_array_equal(t2.X, pd.get_dummies(df.f).to_numpy(dtype=float))
    np.testing.assert_array_equal(t1.X[:, 1], (df.f == "b").to_numpy(dtype=float))
    Zh = np.hstack([hand_Z(t.codes, t.X, t.J) for t in d.terms])
    np.testing.assert_allclose((d.Z @ d.Z.T).toarray(), Zh @ Zh.T)
    assert d.Z.shape[1] == 3 * 3 + 4 * 3


def test_coefficient_names_brms_style(df):
    d = mf.design_matrices("y ~ x * f + log(z) + I(x^2) + scale(z) + poly(x, 2)", df)
    assert d.X_names == ["Intercept", "x", "fb", "fc", "logz", "IxE2", "scalez",
                         "polyx21", "polyx22", "x:fb", "x:fc"]
    np.testing.assert_allclose(d.X[:, d.X_names.index("IxE2")], df.x ** 2)
    np.testing.assert_allclose(d.X[:, d.X_names.index("logz")], np.log(df.z))
    np.testing.assert_allclose(d.X[:, d.X_names.index("x:fb")], df.x * (df.f == "b"))
    no_int = mf.design_matrices("y ~ 0 + f + x", df)
    assert no_int.X_names == ["fa", "fb", "fc", "x"]
    assert mf.design_matrices("y ~ x - 1", df).X_names == ["x"]


def test_responses_trials_and_mvbind(df):
    d = mf.design_matrices("y | trials(n) ~ x + (1 | g1)", df)
    np.testing.assert_array_equal(d.trials, df.n)
    mv = mf.design_matrices("mvbind(y, log(z)) ~ x + (1 | p | g1)", df)
    assert mv.y.shape == (60, 2) and mv.response_names == ["y", "logz"]
    np.testing.assert_allclose(mv.y[:, 1], np.log(df.z))


def test_stateful_transforms_replayed_on_new_data(df):
    d = mf.design_matrices("y ~ scale(x) + center(z) + poly(x, 2) + f + (1 + scale(x) | g1)",
                           df)
    new = pd.DataFrame({"x": [0.0, 10.0], "z": [1.0, 2.0], "f": ["b", "a"], "g1": ["u", "w"]})
    nd = d.spec.transform(new)
    names = d.X_names
    mean, sd = df.x.mean(), df.x.std(ddof=1)
    np.testing.assert_allclose(nd.X[:, names.index("scalex")], (new.x - mean) / sd)
    np.testing.assert_allclose(nd.X[:, names.index("centerz")], new.z - df.z.mean())
    np.testing.assert_allclose(nd.X[:, names.index("fb")], [1.0, 0.0])
    np.testing.assert_allclose(nd.terms[0].X[:, 1], (new.x - mean) / sd)
    # replaying the training data reproduces the training matrices
    again = d.spec.transform(df)
    np.testing.assert_allclose(again.X, d.X)
    np.testing.assert_array_equal(again.terms[0].codes, d.terms[0].codes)
    assert nd.y is None
    with_y = d.spec.transform(df, require_response=True)
    np.testing.assert_allclose(with_y.y, d.y)


def test_new_and_missing_group_levels(df):
    d = mf.design_matrices("y ~ x + (1 | g1) + (1 | g1:s)", df)
    J = d.terms[0].J
    new = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0],
                        "g1": ["u", "zz", None, "yy", "zz"], "s": ["s1", "s1", "s1", "s2", "s9"]})
    nd = d.spec.transform(new)
    t = nd.terms[0]
    assert t.codes[0] == d.terms[0].levels.index("u")
    assert t.codes[1] == J and t.codes[3] == J + 1 and t.codes[4] == J
    assert t.codes[2] == -1
    assert t.new_levels == ["zz", "yy"]
    assert t.J == J                                    # the fitted levels stay as they were
    Z = t.Z().toarray()
    assert Z.shape == (5, J) and Z[1:].sum() == 0      # unseen / missing rows have no column
    inter = nd.terms[1]
    assert inter.codes[2] == -1 and set(inter.new_levels) >= {"zz_s1", "yy_s2", "zz_s9"}


def test_unseen_fixed_factor_level_is_a_data_error(df):
    d = mf.design_matrices("y ~ x + f + (1 + f | g1)", df)
    new = pd.DataFrame({"x": [1.0, 2.0], "f": ["a", "q"], "g1": ["u", "v"]})
    with pytest.raises(DataError, match="'q'.*'f'"):
        d.spec.transform(new)
    d2 = mf.design_matrices("y ~ x + C(g2)", df)
    with pytest.raises(DataError):
        d2.spec.transform(pd.DataFrame({"x": [1.0], "g2": [77]}))


def test_missing_values_dropped_with_warning(df):
    bad = df.copy()
    bad.loc[[1, 2], "x"] = np.nan
    bad.loc[5, "g1"] = None
    bad.loc[7, "s"] = np.nan           # not used by the formula: must not drop anything
    with pytest.warns(UserWarning, match=r"3 of 60 rows have missing values in x \(2\), "
                                         r"g1 \(1\); those rows were dropped"):
        d = mf.design_matrices("y ~ x + (1 | g1)", bad)
    assert d.nobs == 57 and d.n_dropped == 3
    assert list(d.row_index) == [i for i in range(60) if i not in (1, 2, 5)]
    with pytest.raises(DataError, match="3 of 60 rows have missing values in x"):
        mf.design_matrices("y ~ x + (1 | g1)", bad, na_action="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mf.design_matrices("y ~ x + (1 | g1)", df).nobs == 60
    with pytest.raises(ValueError):
        mf.design_matrices("y ~ x", df, na_action="ignore")


def test_polars_input_gives_identical_matrices(df):
    import polars as pl
    text = "y ~ x * f + log(z) + (1 + x | g1) + (1 | g1:g2) + (0 + f || s)"
    a = mf.design_matrices(text, df)
    b = mf.design_matrices(text, pl.from_pandas(df))
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert a.X_names == b.X_names
    for s, t in zip(a.terms, b.terms):
        assert s.levels == t.levels and s.coef_names == t.coef_names
        np.testing.assert_array_equal(s.codes, t.codes)
        assert (s.Z() != t.Z()).nnz == 0
    new = pl.DataFrame({"x": [1.0], "z": [2.0], "f": ["a"], "g1": ["u"], "g2": [2], "s": ["s1"]})
    np.testing.assert_allclose(a.spec.transform(new).X, a.spec.transform(new.to_pandas()).X)


def test_pandas_string_dtype_columns_read_as_factors(df):
    """pandas' "string" dtype (pd.NA; Arrow's and Dask's text default) gives the same design
    as object columns, and its missing values are dropped and counted like NaN."""
    text = "y ~ x * f + (1 + x | g1) + (0 + f || s)"
    a = mf.design_matrices(text, df)
    typed = df.astype({"f": "string", "g1": "string", "s": "string"})
    b = mf.design_matrices(text, typed)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X_names == b.X_names
    for s, t in zip(a.terms, b.terms):
        assert s.levels == t.levels
        np.testing.assert_array_equal(s.codes, t.codes)
    typed.loc[[3, 7], "g1"] = pd.NA
    with pytest.warns(UserWarning, match="2 of 60 rows"):
        c = mf.design_matrices(text, typed)
    assert c.nobs == 58


def test_gr_by_mapping_and_nesting_check(df):
    data = df.assign(h=df.g1.map({"u": "H1", "v": "H1", "w": "H2"}))
    d = mf.design_matrices("y ~ x + (1 + x | gr(g1, by = h))", data)
    t = d.terms[0]
    assert t.by_levels == ["H1", "H2"]
    assert [t.by_levels[c] for c in t.by_codes] == ["H1", "H1", "H2"]
    with pytest.raises(DataError, match=r"levels of g1 must be nested in s"):
        mf.design_matrices("y ~ (1 | gr(g1, by = s))", df)


def test_data_errors(df):
    with pytest.raises(FormulaError, match="column 'q' is not in the data"):
        mf.design_matrices("y ~ q", df)
    with pytest.raises(DataError, match="no rows"):
        mf.design_matrices("y ~ x", df.iloc[:0])
    with pytest.raises(DataError, match="must be numeric"):
        mf.design_matrices("f ~ x", df)
    with pytest.raises(FormulaError):
        mf.design_matrices("y ~ log(f)", df)
    with pytest.raises(DataError, match="duplicated"):
        mf.design_matrices("y ~ x", pd.concat([df, df[["x"]]], axis=1))
    with pytest.raises(DataError, match="non-finite"):
        mf.design_matrices("log(y) ~ x", df.assign(y=-1.0))


def test_non_finite_predictors_are_reported(df):
    with pytest.raises(DataError, match=r"non-finite.*logx"):
        mf.design_matrices("y ~ log(x)", df.assign(x=df.x - 100))
    with pytest.raises(DataError, match=r"group term.*sqrtx"):
        mf.design_matrices("y ~ (1 + sqrt(x) | g1)", df.assign(x=-1.0))
    with pytest.raises(DataError, match="non-finite"):
        mf.design_matrices("y ~ x", df.assign(x=np.inf))
