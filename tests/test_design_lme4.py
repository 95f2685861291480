"""X and Z against lme4's model matrices (lme4 1.1-31; files copied from shared/reference)."""

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
