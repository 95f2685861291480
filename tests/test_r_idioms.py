"""R idioms in formulas against R's own model matrices (tests/data/r_idioms_reference.json,
made by tests/data/r/r_idioms.R with R's model.matrix / splines::ns / splines::bs / lme4):
factor(), as.factor(), as.numeric(), as.integer(), pkg:: prefixes, poly(raw = TRUE) names,
ns() and bs() bases (knots, boundary, prediction on new data), R's spelling of I(x^2)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.design.spec import design_matrices
from mixedformula.design.splines import ns_basis
from mixedformula.errors import FormulaError

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "r_idioms_reference.json").read_text())
D = pd.read_csv(DATA / "r_idioms_data.csv")
NEW = pd.read_csv(DATA / "r_idioms_new.csv")
FORMULAS = [f for f in REF if f != "lmer"]


def _lme4_names(design):
    from mixedformula.reml import fixef_lme4_names
    return fixef_lme4_names(design.spec.fixed_spec, design.X_names, design.spec.columns)


@pytest.mark.parametrize("formula", FORMULAS)
def test_model_matrix_matches_r(formula):
    ref = REF[formula]
    d = design_matrices(mf.parse(formula), D)
    # names are written without the pkg:: prefix (docs/formula-syntax.md)
    assert _lme4_names(d) == [n.replace("splines::", "").replace("stats::", "")
                              for n in ref["names"]]
    np.testing.assert_allclose(d.X, np.array(ref["X"]), rtol=0, atol=1e-8)


@pytest.mark.parametrize("formula", FORMULAS)
def test_new_data_match_r(formula):
    """Stateful transforms (knots, poly coefficients, factor levels) replayed on new data; bs()
    is compared inside the boundary knots only (R extrapolates it with a warning, formulaic
    refuses), ns() also outside (linear continuation)."""
    ref = np.array(REF[formula]["Xnew"])
    d = design_matrices(mf.parse(formula), D)
    rows = [1, 2] if "bs(" in formula else list(range(len(NEW)))
    new = d.spec.transform(NEW.iloc[rows])
    np.testing.assert_allclose(new.X, ref[rows], rtol=0, atol=1e-8)


def test_brms_names():
    """brms' rename(): spaces and brackets dropped, ^ = E, = EQ, * MU, / D; '.' kept."""
    cases = {"y ~ poly(x, 2, raw = TRUE)": ["Intercept", "polyx2rawEQTRUE1", "polyx2rawEQTRUE2"],
             "y ~ I(x^2) + I(x/2)": ["Intercept", "IxE2", "IxD2"],
             "y ~ factor(c)": ["Intercept", "factorc3", "factorc10", "factorc25"],
             "y ~ as.numeric(x) + as.integer(3 * x)": ["Intercept", "as.numericx",
                                                      "as.integer3MUx"]}
    for f, names in cases.items():
        assert design_matrices(mf.parse(f), D).X_names == names


def test_factor_is_c_and_numeric_levels_sorted_numerically():
    a = design_matrices(mf.parse("y ~ factor(c)"), D)
    b = design_matrices(mf.parse("y ~ C(c)"), D)
    np.testing.assert_array_equal(a.X, b.X)
    assert _lme4_names(a)[1:] == ["factor(c)3", "factor(c)10", "factor(c)25"]


def test_factor_in_group_terms():
    d = design_matrices(mf.parse("y ~ 1 + (1 | factor(c)) + (0 + as.factor(c) | base::factor(c))"),
                        D)
    assert d.terms[0].term.factors == ("c",)
    assert d.terms[0].levels == ["2", "3", "10", "25"]
    assert d.terms[1].coef_names == ["as.factorc2", "as.factorc3", "as.factorc10",
                                     "as.factorc25"]


def test_lmer_fixef_names_as_lme4():
    ref = REF["lmer"]
    fit = mf.lmer(ref["formula"][0], mf.datasets.load("sleepstudy"))
    assert list(fit.fixef().index) == ref["names"]
    np.testing.assert_allclose(fit.fixef().iloc[:, 0].to_numpy(), ref["fixef"], rtol=1e-6)


def test_ns_basis_spans_natural_splines():
    """Independent of R: the columns are cubic between knots with zero second derivative at the
    boundary knots, so they are linear beyond them."""
    x = np.linspace(0, 1, 201)
    B = ns_basis(x, np.array([0.3, 0.6]), (0.0, 1.0))
    h = x[1] - x[0]
    second = (B[2:] - 2 * B[1:-1] + B[:-2]) / h ** 2
    # f'' is linear on the first and last knot interval: extrapolate the central differences
    # (at x = h, 2h and 1 - h, 1 - 2h) to the boundary knots
    np.testing.assert_allclose(2 * second[0] - second[1], 0, atol=1e-5)
    np.testing.assert_allclose(2 * second[-1] - second[-2], 0, atol=1e-5)
    out = ns_basis(np.array([1.5, 2.0, 2.5]), np.array([0.3, 0.6]), (0.0, 1.0))
    np.testing.assert_allclose(out[2] - out[1], out[1] - out[0], atol=1e-12)


@pytest.mark.parametrize("formula, message", [
    ("y ~ foo::ns(x)", "'foo::' is not supported"),
    ("y ~ stats::ns(x)", "stats::ns is not allowed"),
    ("y ~ base::x", "base::x is not allowed"),
    ("y ~ base::eval(x)", "base::eval is not allowed"),
    ("y ~ base::factor", "must be called"),
    ("y ~ ns(x, df = 1000)", "too large"),
    ("y ~ ns(x, 100):ns(x, 100):poly(x, 100)", "model-matrix columns"),
    ("y ~ factor(x, 2)", "at most 1 unnamed"),
    ("y ~ ns(x, knots = 3)", "unknown option"),
    ("y ~ x + (1 | factor(c + x))", "one column name"),
])
def test_refused(formula, message):
    with pytest.raises(FormulaError, match=message):
        design_matrices(mf.parse(formula), D)


def test_as_numeric_of_text_refused_in_r_spelling():
    with pytest.raises(FormulaError, match=r"as\.numeric\(`g`\).*level codes"):
        design_matrices(mf.parse("y ~ as.numeric(g)"), D.assign(g=np.where(D.x > 1, "a", "b")))
