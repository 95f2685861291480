"""Data fuzzing (issue 9): awkward data give a correct design/fit or ONE clear mixedformula error.

Every case goes through ``mf.Model(...)`` (design + emitted PyMC model), a few through ``mf.fit``
with tiny draws. The rule: either it works (and the numbers are what they should be) or it raises
a :class:`~mixedformula.MixedFormulaError` whose message names the problem, never an exception
from deep inside pytensor/formulaic/numpy, and rows are never dropped without a warning that
counts them. The decisions are listed in docs/reliability.md.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula import DataError, FamilyError, FormulaError, MixedFormulaError

N = 30
TINY = dict(draws=60, tune=60, chains=1, seed=3, progressbar=False)


@pytest.fixture
def base():
    rng = np.random.default_rng(11)
    return pd.DataFrame({"y": rng.normal(10, 2, N), "x": rng.normal(size=N),
                         "z": rng.normal(size=N), "g": np.repeat(list("abcde"), N // 5)})


def model(formula, data, **kw):
    """Build design and PyMC model; every warning is recorded and returned."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        m = mf.Model(formula, data, **kw)
        m.pymc_model
    return m, [str(w.message) for w in rec if issubclass(w.category, UserWarning)]


def fails_clearly(formula, data, error=MixedFormulaError, match=None, **kw):
    """One MixedFormulaError naming the problem (the message must contain ``match``)."""
    with pytest.raises(error) as info:
        model(formula, data, **kw)
    assert isinstance(info.value, MixedFormulaError)
    if match:
        assert match in str(info.value), str(info.value)
    # the user sees our message, not a chained internal traceback
    assert info.value.__cause__ is None or isinstance(info.value.__cause__, MixedFormulaError)
    return str(info.value)


# -- empty and tiny data ---------------------------------------------------------------------

def test_empty_frame(base):
    fails_clearly("y ~ x + (1 | g)", base.iloc[:0], DataError, "no rows")
    fails_clearly("y ~ x + (1 | g)", pd.DataFrame(), FormulaError, "column 'y' is not in the data")


def test_single_row_keeps_intercept_and_drops_the_slope(base):
    """One row: x is aliased with the intercept → dropped like lme4, model still proper."""
    m, warns = model("y ~ x + (1 | g)", base.iloc[:1])
    assert m.design.nobs == 1 and m.design.X_names == ["Intercept"]
    assert any("rank deficient so dropping 1 column" in w and "x (collinear with Intercept)" in w
               for w in warns), warns


def test_single_row_fits(base):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("y ~ x + (1 | g)", base.iloc[:1], **TINY)
    post = fit.idata.posterior
    assert "b_x" not in post and "b_Intercept" in post
    assert np.isfinite(post["b_Intercept"].values).all()
    assert fit.nobs == 1


# -- missing values ---------------------------------------------------------------------------

def test_all_na_used_column_is_an_error_naming_it(base):
    msg = fails_clearly("y ~ x + (1 | g)", base.assign(x=np.nan), DataError,
                        "no complete rows are left")
    assert "x (30)" in msg
    fails_clearly("y ~ x + (1 | g)", base.assign(g=None), DataError, "g (30)")
    fails_clearly("y ~ x + (1 | g)", base.assign(y=np.nan), DataError, "y (30)")


def test_all_na_unused_column_is_ignored(base):
    m, warns = model("y ~ x + (1 | g)", base.assign(w=np.nan))
    assert m.design.nobs == N and warns == []


def test_rows_dropped_through_model_are_counted(base):
    bad = base.copy()
    bad.loc[[0, 4], "x"] = np.nan
    bad.loc[9, "g"] = None
    m, warns = model("y ~ x + (1 | g)", bad)
    assert m.design.nobs == N - 3 and m.design.n_dropped == 3
    assert any(w.startswith("3 of 30 rows have missing values in x (2), g (1)") for w in warns)
    fails_clearly("y ~ x + (1 | g)", bad, DataError, "3 of 30 rows", na_action="raise")


def test_nullable_integer_response_with_missing_value(base):
    y = pd.array([1, None] + [2, 3] * ((N - 2) // 2), dtype="Int64")
    m, warns = model("y ~ x + (1 | g)", base.assign(y=y))
    assert m.design.nobs == N - 1 and any("1 of 30 rows" in w for w in warns)


# -- responses of the wrong type --------------------------------------------------------------

@pytest.mark.parametrize("values, what", [
    (lambda b: b.y.map(str), "must be numeric"),                       # strings that look numeric
    (lambda b: ["high", "low"] * (N // 2), "must be numeric"),
    (lambda b: [1.0, "a"] + list(b.y[2:]), "must be numeric"),         # mixed object column
    (lambda b: pd.Categorical(b.g), "must be numeric"),
    (lambda b: np.where(np.arange(N) == 3, np.inf, b.y), "1 non-finite value"),
    (lambda b: np.where(np.arange(N) < 2, -np.inf, b.y), "2 non-finite value"),
])
def test_response_of_wrong_type(base, values, what):
    fails_clearly("y ~ x + (1 | g)", base.assign(y=values(base)), DataError, what)


def test_boolean_response_is_zero_one(base):
    m, _ = model("y ~ x + (1 | g)", base.assign(y=base.y > 10), family="bernoulli")
    np.testing.assert_array_equal(m.design.y[:, 0], (base.y > 10).astype(float))
    fails_clearly("y ~ x + (1 | g)", base, FamilyError, "needs 0/1 values", family="bernoulli")
    fails_clearly("y ~ x + (1 | g)", base.assign(y=-base.y), FamilyError,
                  "non-negative whole counts", family="poisson")


def test_log_of_non_positive_response(base):
    fails_clearly("log(y) ~ x + (1 | g)", base.assign(y=base.y - 100), DataError, "non-finite")


# -- grouping factors -------------------------------------------------------------------------

def test_group_with_one_level_builds_and_fits(base):
    """lme4 refuses ("grouping factors must have > 1 sampled level"); with proper priors on sd
    the Bayesian model is proper, so (like brms) it is fitted: the sd is then prior-driven,
    and a warning says so before sampling (issue 17 item 2)."""
    data = base.assign(g="only")
    m, warns = model("y ~ x + (1 | g)", data)
    assert m.design.terms[0].levels == ["only"] and len(warns) == 1
    assert "'g' has only one level" in warns[0] and "priors" in warns[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.fit(**TINY)
    assert fit.idata.posterior["r_g"].shape[2:] == (1, 1)
    assert np.isfinite(fit.idata.posterior["sd_g__Intercept"].values).all()


def test_group_with_one_row_per_level_builds(base):
    """lme4 refuses (levels >= observations: sd and sigma not separately identified); the
    Bayesian model is proper (both have proper priors), so it is built, with a warning that
    says so (issue 17 item 2)."""
    m, warns = model("y ~ x + (1 | g)", base.assign(g=np.arange(N)))
    assert m.design.terms[0].J == N and len(warns) == 1
    assert f"{N} levels for {N} observations" in warns[0] and "priors" in warns[0]
    m, _ = model("y ~ x + (1 | g)", base.assign(g=np.arange(N)), likelihood="conditional")
    assert m.likelihood == "conditional"


def test_levels_that_print_alike_are_an_error(base):
    """1 and '1' in one column would be two levels both labelled '1' (r_g coordinates clash)."""
    fails_clearly("y ~ x + (1 | g)", base.assign(g=[1, "1"] * (N // 2)), DataError,
                  "read the same as text ('1'")
    data = base.assign(g1=["a_b", "a"] * (N // 2), g2=["c", "b_c"] * (N // 2))
    fails_clearly("y ~ x + (1 | g1:g2)", data, DataError, "'a_b_c' names more than one")
    # distinct values of mixed type are fine
    m, _ = model("y ~ x + (1 | g)", base.assign(g=[1, "a", 2] * (N // 3)))
    assert m.design.terms[0].levels == ["1", "2", "a"]


# -- rank deficiency (lme4: "fixed-effect model matrix is rank deficient so dropping ...") -------

def test_constant_predictor_is_dropped_like_lme4(base):
    m, warns = model("y ~ x + (1 | g)", base.assign(x=3.0))
    assert m.design.X_names == ["Intercept"] and m.design.X.shape == (N, 1)
    assert warns == ["fixed-effect model matrix is rank deficient so dropping 1 column / "
                     "coefficient: x (collinear with Intercept)"]
    m, warns = model("y ~ 0 + x + (1 | g)", base.assign(x=3.0))   # no intercept: x is fine
    assert m.design.X_names == ["x"] and warns == []


def test_collinear_predictors_are_dropped_naming_the_partners(base):
    data = base.assign(w=2 * base.x - base.z, v=0.0)
    m, warns = model("y ~ x + z + w + v + (1 | g)", data)
    assert m.design.X_names == ["Intercept", "x", "z"]
    np.testing.assert_array_equal(m.design.X, np.column_stack([np.ones(N), base.x, base.z]))
    assert len(warns) == 1
    assert "dropping 2 columns / coefficients: w (collinear with x, z); v (all zero)" in warns[0]
    # the design for new data uses the same columns
    new = data.iloc[:3].drop(columns="y")
    t = m.design.spec.transform(new)
    assert t.X_names == m.design.X_names and t.X.shape == (3, 3)


def test_empty_interaction_cell_is_dropped(base):
    data = base.assign(f1=np.tile(list("ab"), N // 2), f2=np.repeat(list("uvw"), N // 3))
    data = data[~((data.f1 == "b") & (data.f2 == "w"))]
    m, warns = model("y ~ f1 * f2 + (1 | g)", data)
    assert "f1b:f2w" not in m.design.X_names and len(m.design.X_names) == 5
    assert any("f1b:f2w (all zero)" in w for w in warns)


def test_design_matrices_keeps_every_column_by_default(base):
    """Like R's model.matrix: only the model stage drops aliased columns."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        d = mf.design_matrices("y ~ x + z", base.assign(z=2 * base.x))
    assert d.X_names == ["Intercept", "x", "z"]


def test_collinear_fit_has_no_draws_for_the_dropped_column(base, tmp_path):
    """Through mf.fit, save and load (load rebuilds the same reduced design for prediction)."""
    data = base.assign(z=2 * base.x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("y ~ x + z + (1 | g)", data, **TINY)
    post = fit.idata.posterior
    assert "b_z" not in post and "b_x" in post
    assert list(fit.fixef().index) == ["Intercept", "x"]
    mf.save(fit, tmp_path / "fit.nc")
    back = mf.load(tmp_path / "fit.nc")
    assert back.design.X_names == ["Intercept", "x"]
    np.testing.assert_array_equal(back.design.X, fit.design.X)


# -- column names -----------------------------------------------------------------------------

def test_duplicated_column_names(base):
    fails_clearly("y ~ x + (1 | g)", pd.concat([base, base[["x"]]], axis=1), DataError,
                  "duplicated column names: x")
    clash = pd.concat([base, pd.DataFrame({1: base.x, "1": base.z})], axis=1)
    fails_clearly("y ~ x + (1 | g)", clash, DataError,
                  "duplicated column names (after converting column names to text): 1")


def test_non_string_column_names(base):
    data = base.rename(columns={"x": 0, "z": 2.5})
    data[("a", "b")] = 1.0
    m, _ = model("y ~ `0` + `2.5` + (1 | g)", data)
    assert m.design.X_names == ["Intercept", "0", "2.5"]
    np.testing.assert_array_equal(m.design.X[:, 1], base.x)
    fails_clearly("y ~ q + (1 | g)", data, FormulaError, "column 'q' is not in the data")


def test_unicode_column_names_fit(base):
    data = base.rename(columns={"y": "ÿ résp", "x": "日本語", "g": "grüppe"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("`ÿ résp` ~ `日本語` + (1 | `grüppe`)", data, likelihood="marginal", **TINY)
    post = fit.idata.posterior
    assert {"b_Intercept", "b_日本語", "sd_grüppe__Intercept", "r_grüppe"} <= set(post)
    text = str(fit.summary())
    assert "日本語" in text and "~grüppe" in text


# -- other input types ------------------------------------------------------------------------

def test_polars_input_builds_the_same_model(base):
    import polars as pl
    a, _ = model("y ~ x + z + (1 + x | g)", base)
    b, _ = model("y ~ x + z + (1 + x | g)", pl.from_pandas(base))
    np.testing.assert_array_equal(a.design.X, b.design.X)
    np.testing.assert_array_equal(a.design.y, b.design.y)
    pa, pb = a.pymc_model, b.pymc_model
    ip = pa.initial_point()
    assert pa.compile_logp()(ip) == pb.compile_logp()(pb.initial_point())


def test_unsupported_data_objects(base):
    for bad in ([1, 2, 3], "y,x\n1,2", np.zeros((3, 2)), None):
        fails_clearly("y ~ x", bad, DataError, "must be a pandas or polars DataFrame")


def test_datetime_predictor_is_a_formula_error(base):
    fails_clearly("y ~ x + (1 | g)", base.assign(x=pd.date_range("2020", periods=N)),
                  FormulaError, "cannot evaluate")


def test_text_predictor_is_categorical_like_r(base):
    """A character column is a factor in R; numbers stored as text give one column per value.
    No error (that is R's rule), but the design shows it plainly."""
    m, _ = model("y ~ f + (1 | g)", base.assign(f=np.tile(["1.5", "2", "10"], N // 3)))
    assert m.design.X_names == ["Intercept", "f10", "f2"]
