"""mf.lmer on a Dask DataFrame (issue 20): REML/ML from the cross-products [Z X y]ᵀ[Z X y]
reduced over the partitions, without the rows in memory; equal to the in-memory fit (itself
tested against lme4 in test_reml.py) to 1e-6, crossed factors too (issue 24; their deviance
functions to 1e-10). glmer refuses Dask data (PIRLS needs the rows)."""

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


def _crossed_data(S=30, D=20, keep=1.0, seed=5):
    """Subjects × items, every pair once (keep = 1) or a random share of the pairs; y from
    random intercepts and slopes on both factors."""
    rng = np.random.default_rng(seed)
    s, d = np.meshgrid(np.arange(S), np.arange(D), indexing="ij")
    s, d = s.ravel(), d.ravel()
    sel = rng.random(s.size) < keep
    s, d = s[sel], d[sel]
    x = rng.normal(size=s.size)
    us, ud = rng.normal(size=(S, 2)) * [1.0, 0.4], rng.normal(size=(D, 2)) * [0.7, 0.3]
    y = 1 + 0.5 * x + us[s, 0] + us[s, 1] * x + ud[d, 0] + ud[d, 1] * x \
        + rng.normal(size=s.size)
    return pd.DataFrame({"s": [f"s{i:02d}" for i in s], "d": [f"d{i:02d}" for i in d],
                         "x": x, "y": y})


@pytest.mark.parametrize("formula, keep, update", [
    ("y ~ x + (1 | s) + (1 | d)", 0.6, "schur"),
    ("y ~ x + (1 + x | s) + (1 | d)", 0.6, "schur"),
    # every subject meets every item: the dense blocked update (blocked_cholesky.DenseCoupling)
    ("y ~ x + (1 + x | s) + (1 + x | d)", 1.0, "dense")])
@pytest.mark.parametrize("reml", [True, False])
def test_crossed_factors_dask_equal_in_memory(formula, keep, update, reml):
    """Crossed (not nested) factors from the reduced cross-products: the profiled deviance,
    β̂(θ) and σ̂(θ) equal the in-memory system's to 1e-10 at the optimum and at other θ (the
    same function, summed in another order), the fits to the optimiser's tolerance, and the
    conditional variances (ZᵀZ assembled from the cross-products) to 1e-6 (θ̂ differs by the
    optimiser's tolerance)."""
    df = _crossed_data(keep=keep)
    a = mf.lmer(formula, df, reml=reml)
    b = mf.lmer(formula, dd.from_pandas(df, npartitions=4), reml=reml)
    assert not b.design.rows_in_memory and b.design.X.shape[0] == 0
    pa, pb = a.penalized_ls(), b.penalized_ls()
    assert pa.update_kind == pb.update_kind == update
    rng = np.random.default_rng(1)
    for th in [a.theta.to_numpy(), a.theta.to_numpy() * 0.7 + 0.05,
               np.abs(rng.normal(size=len(a.theta))) * (pa.lam.lower == 0) + 0.1]:
        da, db = pa.deviance(th, reml), pb.deviance(th, reml)
        assert abs(da - db) <= 1e-10 * abs(da)
        fa, fb = pa.factor(th), pb.factor(th)
        assert np.max(np.abs(pa.beta(fa) - pb.beta(fb))) <= 1e-10 * np.max(np.abs(pa.beta(fa)))
        assert abs(fa.r2 - fb.r2) <= 1e-10 * fa.r2
    _same(a, b)
    for ca, cb in zip(a.condvar(), b.condvar()):
        assert ca.group == cb.group and ca.levels == cb.levels
        # 1e-6 of each entry, and of the largest variance for entries near 0 (a covariance
        # of −5.8·10⁻⁵ beside variances of 0.056 moved by 2·10⁻¹⁰ with θ̂ at 10⁻⁸, both fits
        # at the same deviance to 10⁻¹³)
        np.testing.assert_allclose(cb.var, ca.var, rtol=1e-6,
                                   atol=1e-6 * float(np.max(np.abs(ca.var))))


def test_crossed_dask_fit_refuses_what_needs_rows():
    b = mf.lmer("y ~ x + (1 + x | s) + (1 | d)",
                dd.from_pandas(_crossed_data(keep=0.6), npartitions=3))
    assert "Dask" in b.summary()
    for call in (lambda: b.coef_table("kenward-roger"), lambda: b.bootstrap(nsim=2),
                 lambda: mf.anova(b), b.residuals, b.fitted):
        with pytest.raises(DataError, match="needs the rows"):
            call()
