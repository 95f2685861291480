"""Inference for lmer fits (issue 20) against lmerTest 3.1-3 / pbkrtest 0.5.2 / lme4 1.1-31.

References: tests/data/lmer_inference.json, made by tests/data/r/lmer_inference.R (sleepstudy
and lmerTest's ham data, exported to tests/data/ham.csv)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lmer_inference.json").read_text())
RTOL = 1e-3


def ref_table(entry) -> pd.DataFrame:
    cols = {k: [np.nan if v == "NA" else v for v in vals]
            for k, vals in entry["columns"].items()}
    return pd.DataFrame(cols, index=pd.Index(entry["rows"], dtype=object)).astype(float)


def assert_table(ours: pd.DataFrame, ref: pd.DataFrame, rtol=RTOL, atol=0.0):
    """Columns within rtol. p-values below 1e-12 (|t| ≈ 37) get 10 rtol: there
    d log p / d t ≈ t, so the ~2e-5 relative difference between our optimum and lme4's on a
    flat deviance (equal to 1e-11) moves p by ~2e-3."""
    assert list(ours.index) == list(ref.index)
    for c in ref.columns:
        a, b = ours[c].to_numpy(dtype=float), ref[c].to_numpy()
        tol = np.where(c.startswith("Pr(") & (b < 1e-12), 10 * rtol, rtol)
        assert np.all(np.abs(a - b) <= atol + tol * np.abs(b)), (c, a, b)


@pytest.fixture(scope="module")
def sleep():
    return pd.read_csv(Path(mf.__file__).parent / "datasets" / "sleepstudy.csv")


@pytest.fixture(scope="module")
def fm1(sleep):
    return mf.lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def ham():
    d = pd.read_csv(DATA / "ham.csv")
    for c in ["Consumer", "Product", "Information", "Gender"]:
        d[c] = d[c].astype(str)
    return d


@pytest.fixture(scope="module")
def ham_fit(ham):
    return mf.lmer(REF["ham"]["formula"], ham)


@pytest.mark.parametrize("ddf,key", [("satterthwaite", "satterthwaite"),
                                     ("kenward-roger", "kenward_roger"),
                                     ("none", "none")])
def test_sleepstudy_coef_table(fm1, ddf, key):
    assert_table(fm1.coef_table(ddf), ref_table(REF["sleep"][key]))


@pytest.mark.parametrize("ddf,key", [("satterthwaite", "satterthwaite"),
                                     ("kenward-roger", "kenward_roger")])
def test_ham_coef_table(ham_fit, ddf, key):
    assert_table(ham_fit.coef_table(ddf), ref_table(REF["ham"][key]))


def test_ml_fit_satterthwaite(sleep):
    fit = mf.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    assert_table(fit.coef_table(), ref_table(REF["sleep_ml"]["satterthwaite"]))
    with pytest.raises(ValueError, match="only available for REML"):
        fit.coef_table("kenward-roger")


def test_summary_shows_lmertest_table(fm1):
    text = fm1.summary(ddf="satterthwaite")
    assert "t-tests use Satterthwaite's method" in text
    assert "Pr(>|t|)" in text and "Signif. codes" in text
    assert "Kenward-Roger's" in fm1.summary(ddf="kenward-roger")
    with pytest.raises(ValueError, match="ddf must be"):
        fm1.coef_table("bogus")
