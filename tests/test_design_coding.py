"""Column types: new data coded like the data the model was built on, and columns that cannot
be model-matrix numbers refused by name (issue 17, items 1 and 7)."""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula import DataError, FormulaError


@pytest.fixture(scope="module")
def text_levels():
    """f = the strings "1".."4" (every level in both groups)."""
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame({"y": rng.normal(size=n), "f": [str(1 + k % 4) for k in range(n)],
                         "g": np.repeat(["a", "b"], n // 2), "x": rng.normal(size=n)})


def _rows(levels_in_order, values):
    """Treatment-coded rows (intercept, f2, f3, f4) for the given levels, by hand."""
    out = np.zeros((len(values), 4))
    out[:, 0] = 1
    for i, v in enumerate(values):
        k = levels_in_order.index(v)
        if k:
            out[i, k] = 1
    return out


@pytest.mark.parametrize("new_f", [[2, 3], [2.0, 3.0], np.array([2, 3], dtype=np.int32),
                                   pd.Categorical(["2", "3"]), ["2", "3"]])
def test_numbers_for_text_levels_get_the_levels_dummy_coding(text_levels, new_f):
    """Training f = "1".."4"; new data f = 2, 3 are the levels "2", "3", in X and in the
    group term's X (before: the value was copied into every dummy column)."""
    d = mf.design_matrices("y ~ f + (1 + f | g)", text_levels)
    assert d.X_names == ["Intercept", "f2", "f3", "f4"]
    new = d.spec.transform(pd.DataFrame({"f": new_f, "g": ["a", "b"]}))
    expected = _rows(["1", "2", "3", "4"], ["2", "3"])
    np.testing.assert_array_equal(new.X, expected)
    np.testing.assert_array_equal(new.terms[0].X, expected)


def test_integer_categories_and_plain_integers(text_levels):
    df = text_levels.assign(f=pd.Categorical(text_levels["f"].astype(int)))
    d = mf.design_matrices("y ~ f + x", df)
    assert d.X_names == ["Intercept", "f2", "f3", "f4", "x"]
    new = d.spec.transform(pd.DataFrame({"f": [4, 2, 1], "x": [0.5, 1.0, 2.0]}))
    np.testing.assert_array_equal(new.X[:, :4], _rows([1, 2, 3, 4], [4, 2, 1]))
    np.testing.assert_array_equal(new.X[:, 4], [0.5, 1.0, 2.0])
    # the same model's predictions equal those from the training rows with these levels
    same = d.spec.transform(df.iloc[[3, 1, 0]].assign(x=[0.5, 1.0, 2.0]))
    np.testing.assert_array_equal(new.X, same.X)


def test_unseen_and_ambiguous_values_name_the_column_and_types(text_levels):
    d = mf.design_matrices("y ~ f + x", text_levels)
    with pytest.raises(DataError, match=r"'5' of 'f'.*not seen.*str.*int64"):
        d.spec.transform(pd.DataFrame({"f": [5], "x": [0.0]}))
    with pytest.raises(DataError, match=r"'2.5' of 'f'.*not seen"):
        d.spec.transform(pd.DataFrame({"f": [2.5], "x": [0.0]}))
    # text levels "2" and "2.0" in training: the number 2 could be either
    df = text_levels.assign(f=["2", "2.0", "3", "3"] * 10)
    d2 = mf.design_matrices("y ~ f", df)
    with pytest.raises(DataError, match=r"'f'.*'2', '2.0'.*the value 2 \(int64\).*either"):
        d2.spec.transform(pd.DataFrame({"f": [2]}))
    np.testing.assert_array_equal(d2.spec.transform(pd.DataFrame({"f": [3]})).X, [[1, 0, 1]])


def test_text_for_a_numeric_column_is_refused(text_levels):
    d = mf.design_matrices("y ~ x + f", text_levels)
    for bad in (["1.5", "2"], pd.Categorical(["a", "b"]), [True, False]):
        with pytest.raises(DataError, match=r"'x' was numeric \(float64\).*new data"):
            d.spec.transform(pd.DataFrame({"x": bad, "f": ["1", "2"]}))


def test_logical_new_data_must_be_logical():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"y": rng.normal(size=20), "b": [True, False] * 10})
    d = mf.design_matrices("y ~ b", df)
    assert d.X_names == ["Intercept", "bTRUE"]            # lme4 and brms: bTRUE
    new = d.spec.transform(pd.DataFrame({"b": [False, True]}))
    np.testing.assert_array_equal(new.X, [[1, 0], [1, 1]])
    with pytest.raises(DataError, match=r"'b' was logical \(bool\).*int64"):
        d.spec.transform(pd.DataFrame({"b": [0, 1]}))
    # inside a function a logical is a number, as in R (TRUE * x)
    d = mf.design_matrices("y ~ I(b * y)", df)
    np.testing.assert_array_equal(d.X[:, 1], df["y"] * df["b"])


def test_timedelta_and_complex_columns_are_refused():
    rng = np.random.default_rng(3)
    n = 10
    df = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n)})
    df["t"] = pd.to_timedelta(df["x"], unit="D")
    df["c"] = df["x"] + 1j * df["y"]
    with pytest.raises(DataError, match=r"column 't'.*time differences.*total_seconds"):
        mf.design_matrices("y ~ t", df)
    with pytest.raises(DataError, match=r"column 'c'.*complex"):
        mf.design_matrices("y ~ c", df)
    with pytest.raises(DataError, match=r"column 'c'.*complex"):
        mf.design_matrices("c ~ x", df)
    with pytest.raises(FormulaError, match="complex numbers"):
        mf.design_matrices("y ~ x + I((-8) ^ 0.5)", df)
    d = mf.design_matrices("y ~ x", df)
    with pytest.raises(DataError, match=r"column 'x' in the new data.*time differences"):
        d.spec.transform(df.assign(x=df["t"]))


def test_saved_fit_with_old_logical_names_loads(tmp_path):
    """A fit saved when a logical predictor was named ``b`` (now ``bTRUE``, as lme4 and brms)
    loads with the current names, so predict finds its coefficients."""
    import arviz as az
    import xarray as xr
    from _results_helpers import CHAINS, DRAWS, sample_stats, scalar
    from mixedformula.families import get_family
    from mixedformula.priors import PriorSet
    from mixedformula.results import Fit
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"y": rng.normal(size=20), "b": [True, False] * 10,
                       "x": rng.normal(size=20)})
    design = mf.design_matrices("y ~ b * x", df)
    assert design.X_names == ["Intercept", "bTRUE", "x", "bTRUE:x"]
    S = CHAINS * DRAWS
    old = {"b_Intercept": 1.0, "b_b": 2.0, "b_x": 3.0, "b_b:x": 4.0, "sigma": 0.5}
    post = xr.Dataset({k: scalar(np.full(S, v)) for k, v in old.items()})
    fit = Fit(az.InferenceData(posterior=post, sample_stats=sample_stats()), design,
              get_family("gaussian"), PriorSet(), "conditional", {}, data=df)
    loaded = mf.load(mf.save(fit, tmp_path / "old.nc"))
    names = set(loaded.idata.posterior.data_vars)
    assert {"b_bTRUE", "b_bTRUE:x"} <= names and not {"b_b", "b_b:x"} & names
    assert float(loaded.idata.posterior["b_bTRUE:x"].mean()) == 4.0


def test_saved_fit_with_treatment_coded_ordered_factor_loads(tmp_path):
    """A fit saved when ordered factors had treatment contrasts (``b_omid``) is rebuilt with
    them on load (its coefficients mean those contrasts); a new one uses contr.poly."""
    import arviz as az
    import xarray as xr
    from _results_helpers import CHAINS, DRAWS, sample_stats, scalar
    from mixedformula.families import get_family
    from mixedformula.priors import PriorSet
    from mixedformula.results import Fit
    rng = np.random.default_rng(6)
    o = pd.Categorical(["low", "mid", "high"] * 8, categories=["low", "mid", "high"],
                       ordered=True)
    df = pd.DataFrame({"y": rng.normal(size=24), "o": o})
    assert mf.design_matrices("y ~ o", df).X_names == ["Intercept", "o.L", "o.Q"]
    old_design = mf.design_matrices("y ~ o", df.assign(o=df["o"].cat.as_unordered()))
    assert old_design.X_names == ["Intercept", "omid", "ohigh"]
    S = CHAINS * DRAWS
    post = xr.Dataset({k: scalar(np.full(S, v)) for k, v in
                       {"b_Intercept": 1.0, "b_omid": 2.0, "b_ohigh": 3.0, "sigma": 1.0}.items()})
    fit = Fit(az.InferenceData(posterior=post, sample_stats=sample_stats()), old_design,
              get_family("gaussian"), PriorSet(), "conditional", {}, data=df)
    loaded = mf.load(mf.save(fit, tmp_path / "old.nc"))
    assert loaded.design.X_names == ["Intercept", "omid", "ohigh"]
    mu = loaded.predict(pd.DataFrame({"o": ["high"]}), kind="linpred")
    assert np.asarray(mu).mean() == pytest.approx(4.0)
