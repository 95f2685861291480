"""mf.lmer on a Dask DataFrame (issue 20): REML/ML from the cross-products [Z X y]ᵀ[Z X y]
reduced over the partitions, without the rows in memory; equal to the in-memory fit (itself
tested against lme4 in test_reml.py) to 1e-6. glmer refuses Dask data (PIRLS needs the rows)."""

from pathlib import Path

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import DataError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def sleep():
    return pd.read_csv(Path(mf.__file__).parent / "datasets" / "sleepstudy.csv")


@pytest.fixture(scope="module")
def ham():
    d = pd.read_csv(DATA / "ham.csv")
    return d.astype({c: str for c in ["Consumer", "Product", "Information", "Gender"]})


def _same(a, b, tol=1e-6):
    assert list(a.fixef().index) == list(b.fixef().index)
    assert list(a.theta.index) == list(b.theta.index)
    fa, fb = a.fixef(), b.fixef()
    assert np.max(np.abs(fa["Estimate"] - fb["Estimate"]) / np.abs(fa["Estimate"])) < tol
    assert np.max(np.abs(fa["Std. Error"] - fb["Std. Error"]) / fa["Std. Error"]) < tol
    assert np.max(np.abs(a.theta.to_numpy() - b.theta.to_numpy())) < tol
    assert abs(a.sigma - b.sigma) < tol * a.sigma
    assert abs(a.logLik - b.logLik) < tol * abs(a.logLik)
    assert a.nobs == b.nobs
    pd.testing.assert_frame_equal(a.varcorr(), b.varcorr(), rtol=tol)


@pytest.mark.parametrize("formula", ["Reaction ~ Days + (Days | Subject)",
                                     "Reaction ~ Days + (Days || Subject)"])
@pytest.mark.parametrize("reml", [True, False])
def test_sleepstudy_dask_equals_in_memory(sleep, formula, reml):
    a = mf.lmer(formula, sleep, reml=reml)
    b = mf.lmer(formula, dd.from_pandas(sleep, npartitions=4), reml=reml)
    assert not b.design.rows_in_memory and b.design.X.shape[0] == 0
    _same(a, b)


def test_crossed_terms_dask_equals_in_memory(ham):
    f = "Informed.liking ~ Product * Information + (1 | Consumer) + (1 | Consumer:Product)"
    a = mf.lmer(f, ham)
    b = mf.lmer(f, dd.from_pandas(ham, npartitions=3))
    _same(a, b)
    # Satterthwaite df come from the statistics too
    ca, cb = a.coef_table(), b.coef_table()
    assert np.max(np.abs(ca["df"] - cb["df"]) / ca["df"]) < 1e-5


def test_dask_fit_refuses_what_needs_rows(sleep):
    b = mf.lmer("Reaction ~ Days + (1 | Subject)", dd.from_pandas(sleep, npartitions=2))
    assert "Dask" in b.summary()
    for call in (lambda: b.coef_table("kenward-roger"), lambda: b.bootstrap(nsim=2),
                 lambda: mf.anova(b), b.residuals):
        with pytest.raises(DataError, match="needs the rows"):
            call()


def test_glmer_refuses_dask(sleep):
    d = sleep.assign(hi=(sleep["Reaction"] > 300).astype(float))
    with pytest.raises(DataError, match=r"glmer needs the rows in memory.*compute\(\)"):
        mf.glmer("hi ~ Days + (1 | Subject)", dd.from_pandas(d, npartitions=2),
                 family="bernoulli")
