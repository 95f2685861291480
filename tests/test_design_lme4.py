"""X and Z against lme4's model matrices (lme4 1.1-31; files copied from shared/reference, and
tests/data/design_* made by tests/data/r/design_reference.R)."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import mixedformula as mf
from conftest import DATA

CASES = {
    "sleepstudy_corr": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "sleepstudy_uncorr": ("sleepstudy", "Reaction ~ Days + (Days || Subject)"),
    "sleepstudy_intercept": ("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
    "dyestuff": ("dyestuff", "Yield ~ 1 + (1 | Batch)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_X_and_ZZt_match_lme4(case, lme4_ref):
    data_name, formula = CASES[case]
    ref = lme4_ref[case]
    assert ref["formula"].replace(" ", "") == formula.replace(" ", "")
    design = mf.design_matrices(formula, mf.datasets.load(data_name))
    X_ref = pd.read_csv(DATA / ref["X_file"]).to_numpy(dtype=float)
    np.testing.assert_array_equal(design.X, X_ref)
    Zt = pd.read_csv(DATA / ref["Zt_file"], index_col=0).to_numpy(dtype=float)
    Z_ref = Zt.T
    Z = design.Z
    assert sp.issparse(Z)
    assert Z.shape == Z_ref.shape
    np.testing.assert_allclose((Z @ Z.T).toarray(), Z_ref @ Z_ref.T)
    assert design.nobs == ref["nobs"]
    for grp, n in ref["ngrps"].items():
        assert {t.J for t in design.terms if t.name == grp} == {n}


def test_uncorrelated_splits_into_one_sd_per_column(sleepstudy):
    design = mf.design_matrices("Reaction ~ Days + (Days || Subject)", sleepstudy)
    assert [t.coef_names for t in design.terms] == [["Intercept", "Days"]]
    assert design.terms[0].correlated is False


def lme4_to_brms(name: str) -> str:
    """lme4's coefficient name as brms (and we) write it: ``(Intercept)`` → ``Intercept``,
    ``scale(x)`` → ``scalex``, ``poly(x, 2)1`` → ``polyx21``, ``o^4`` → ``oE4``."""
    for old, new in [("(", ""), (")", ""), (" ", ""), (",", ""), ("^", "E")]:
        name = name.replace(old, new)
    return name


def our_Z_names(design) -> list[str]:
    """``group|level|coefficient`` for each Z column (level-major within a term)."""
    return [f"{t.name}|{lev}|{c}" for t in design.terms for lev in t.levels
            for c in t.coef_names]


def assert_same_columns(ours, our_names, ref, ref_names, what):
    """Columns matched by name (a bijection), then compared value by value."""
    assert len(set(our_names)) == len(our_names), f"duplicated {what} names {our_names}"
    assert len(set(ref_names)) == len(ref_names)
    assert sorted(our_names) == sorted(ref_names), (what, our_names, ref_names)
    pos = {n: j for j, n in enumerate(our_names)}
    for j, name in enumerate(ref_names):
        np.testing.assert_allclose(ours[:, pos[name]], ref[:, j], rtol=0, atol=1e-12,
                                   err_msg=f"{what} column {name}")


def _zt_names(ref, Zt: pd.DataFrame) -> list[str]:
    """Names of the rows of the old Zt files (labelled by level only): lme4 orders them by
    term (``cnms``), level-major within a term."""
    names, row = [], 0
    for term, coefs in ref["cnms"].items():
        coefs = [coefs] if isinstance(coefs, str) else coefs
        group = term.split(".")[0]
        for _ in range(ref["ngrps"][group]):
            level = str(Zt.index[row])
            names += [f"{group}|{level}|{lme4_to_brms(c)}" for c in coefs]
            row += len(coefs)
    return names


@pytest.mark.parametrize("case", sorted(CASES))
def test_X_and_Z_columns_match_lme4_by_name(case, lme4_ref):
    """Column by column (Z·Zᵀ is blind to permuted columns): every lme4 column of X and Z has
    exactly one of ours with the same name and the same values."""
    data_name, formula = CASES[case]
    ref = lme4_ref[case]
    design = mf.design_matrices(formula, mf.datasets.load(data_name))
    X = pd.read_csv(DATA / ref["X_file"])
    assert_same_columns(design.X, design.X_names, X.to_numpy(dtype=float),
                        [lme4_to_brms(c) for c in X.columns], "X")
    Zt = pd.read_csv(DATA / ref["Zt_file"], index_col=0)
    assert_same_columns(design.Z.toarray(), our_Z_names(design), Zt.to_numpy(dtype=float).T,
                        _zt_names(ref, Zt), "Z")


@pytest.fixture(scope="module")
def design_ref():
    return json.loads((DATA / "design_reference.json").read_text())


@pytest.fixture(scope="module")
def design_data(design_ref):
    """tests/data/design_data.csv with the column classes of the R script (o ordered)."""
    df = pd.read_csv(DATA / "design_data.csv")
    df["o"] = pd.Categorical(df["o"], categories=design_ref["o_levels"], ordered=True)
    return df


DESIGN_CASES = ["scale_na", "poly_na", "ordered", "logical", "mixed", "mixed_uncorr"]


@pytest.mark.parametrize("case", DESIGN_CASES)
def test_named_X_and_Z_match_lme4(case, design_ref, design_data):
    """Factors, ordered factors (contr.poly), logicals, interactions, several terms per group
    and crossed groups; rows with a missing response (10 of 40) dropped after scale()/poly()
    are computed on every row, as R's model frame does (issue 17, items 3 and 4)."""
    ref = design_ref[case]
    with pytest.warns(UserWarning, match="10 of 40 rows"):
        design = mf.design_matrices(ref["formula"], design_data)
    assert design.nobs == ref["nobs"]
    np.testing.assert_array_equal(design.row_index + 1, ref["rows"])
    X = pd.read_csv(DATA / f"design_{case}_X.csv")
    assert list(X.columns) == ref["X_names"]
    assert_same_columns(design.X, design.X_names, X.to_numpy(dtype=float),
                        [lme4_to_brms(c) for c in X.columns], "X")
    Z = pd.read_csv(DATA / f"design_{case}_Z.csv")
    names = ["|".join(c.split("|")[:2] + [lme4_to_brms(c.split("|")[2])]) for c in Z.columns]
    assert_same_columns(design.Z.toarray(), our_Z_names(design), Z.to_numpy(dtype=float),
                        names, "Z")


@pytest.mark.parametrize("case", ["scale_na", "poly_na", "ordered", "logical"])
def test_fixed_effects_match_lme4_with_missing_responses(case, design_ref, design_data):
    """lme4's REML estimates for scale(x), poly(x, 2), an ordered factor and a logical with 10
    of 40 responses missing (the issue: scale(x) 0.5237 vs 0.5339 when scale() was computed
    after dropping rows)."""
    ref = design_ref[case]
    with pytest.warns(UserWarning, match="10 of 40 rows"):
        fit = mf.lmer(ref["formula"], design_data)
    fe = fit.fixef()["Estimate"]
    assert list(fe.index) == list(ref["fixef"])               # lme4's names, in its order
    for name, value in ref["fixef"].items():
        assert fe[name] == pytest.approx(value, rel=1e-6, abs=1e-7), name


def test_contr_poly_matches_R(design_ref, design_data):
    """An ordered factor's columns are R's contr.poly(5) (names o.L, o.Q, o.C, o^4)."""
    d = mf.design_matrices("y ~ o", design_data.dropna())
    assert d.X_names[1:] == [lme4_to_brms(n) for n in design_ref["contr_poly"]["names"]]
    cp = np.array(design_ref["contr_poly"]["matrix"])
    codes = design_data.dropna()["o"].cat.codes.to_numpy()
    np.testing.assert_allclose(d.X[:, 1:], cp[codes], atol=1e-12)


def test_one_level_factor_is_refused_as_in_R(design_ref, design_data):
    """R: "contrasts can be applied only to factors with 2 or more levels"."""
    assert "2 or more levels" in design_ref["one_level_error"]
    with pytest.raises(mf.DataError, match="2 or more levels.*'one'"):
        mf.design_matrices("y ~ x + one + (1 | g)", design_data.dropna())
    # a factor with one level in the rows used (R drops unused levels first)
    df = design_data.dropna().assign(two=lambda d: np.where(d.y.notna(), "a", "b"))
    with pytest.raises(mf.DataError, match="2 or more levels.*'two'"):
        mf.design_matrices("y ~ x + two", df)
