"""The one engine decision (mixedformula/engine.py): likelihood, reason and statistics kind for
every model shape, with the reason text each entry point shows."""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.engine import (Decision, dask_refusal, decide, marginal_reason,
                                 reml_family_refusal, reml_refusal)
from mixedformula.families import get_family
from mixedformula.formula import parse

GAUSS = get_family("gaussian")


def _data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=n), "g": rng.integers(0, 6, n),
                       "h": rng.integers(0, 4, n), "k": rng.integers(0, 3, n),
                       "n": rng.integers(5, 9, n)})
    df["k"] = df.g % 3                  # g nested in k, for gr(g, by = k)
    df["y"] = df.x + rng.normal(size=n)
    df["y2"] = df.x - rng.normal(size=n)
    df["c"] = (rng.uniform(size=n) < 0.5).astype(int)
    df["s"] = np.minimum(df.c * 3, df.n)
    return df


def _design(formula, df=None):
    return mf.design_matrices(formula, _data() if df is None else df, drop_aliased=True)


def test_gaussian_one_factor_is_marginal_block():
    d = decide(_design("y ~ x + (x | g)"), GAUSS)
    assert (d.likelihood, d.reason, d.statistics, d.note) == ("marginal", "", "block", "")
    assert d.stats is not None and d.stats.kind == "block"


def test_gaussian_crossed_factors_are_marginal_general():
    d = decide(_design("y ~ x + (1 | g) + (1 | h)"), GAUSS)
    assert (d.likelihood, d.statistics) == ("marginal", "general")


def test_no_group_terms():
    d = decide(_design("y ~ x"), GAUSS)
    assert (d.likelihood, d.statistics) == ("conditional", None)
    assert d.reason == "the model has no group terms"
    assert d.note == ""                 # nothing to fall back from: no note in the summary


def test_non_gaussian_family():
    d = decide(_design("c ~ x + (1 | g)"), get_family("bernoulli"))
    assert d.likelihood == "conditional" and d.stats is None
    assert d.reason == "family bernoulli (logit link) is not Gaussian with identity link"
    assert d.note == ""


def test_gaussian_with_log_link_says_why_in_the_summary():
    d = decide(_design("y2 ~ x + (1 | g)", _data().assign(y2=lambda f: f.y2.abs() + 1)),
               get_family("gaussian", "log"))
    assert d.likelihood == "conditional"
    assert d.note == ("marginal engine not used: family gaussian (log link) is not Gaussian "
                      "with identity link")


def test_rescor_by():
    d = decide(_design("y ~ x + (1 | g)"), GAUSS, rescor_by=object())
    assert d.likelihood == "conditional"
    assert d.reason == "rescor_by is not supported by the marginal engine yet"
    assert d.note == "marginal engine not used: " + d.reason


def test_multivariate_shapes():
    d = decide(_design("mvbind(y, y2) ~ x + (1 | g)"), GAUSS)
    assert (d.likelihood, d.statistics, d.stats) == ("marginal", "multivariate", None)
    d = decide(_design("mvbind(y, y2) ~ x + (1 | g) + (1 | h)"), GAUSS)
    assert d.likelihood == "conditional"
    assert d.reason == ("multivariate models with several grouping factors are not yet "
                        "supported by the marginal engine")
    d = decide(_design("mvbind(y, y2) ~ x + (1 | gr(g, by = k))"), GAUSS)
    assert d.reason == "gr(by=) in multivariate models is not yet supported by the marginal engine"
    d = decide(_design("bf(y ~ x + (1 | g)) + bf(y2 ~ 1 + (1 | g))"), GAUSS)
    assert d.reason == ("bf() + bf() formulas (a right-hand side per response) are not yet "
                        "supported by the marginal engine")


def test_asked_for_engines():
    design = _design("y ~ x + (1 | g)")
    d = decide(design, GAUSS, "conditional")
    assert (d.likelihood, d.reason, d.statistics, d.note) == ("conditional", "", None, "")
    assert decide(design, GAUSS, "marginal").likelihood == "marginal"
    with pytest.raises(mf.MixedFormulaError,
                       match="^the marginal likelihood does not apply: family poisson "
                             r"\(log link\) is not Gaussian with identity link$"):
        decide(_design("s ~ x + (1 | g)"), get_family("poisson"), "marginal")
    with pytest.raises(mf.MixedFormulaError, match="likelihood must be one of auto, "
                                                   "conditional, marginal, partial, not 'exact'"):
        decide(design, GAUSS, "exact")


def test_statistics_from_dask_are_marginal_or_an_error():
    design = _design("y ~ x + (1 | g)")
    d = decide(design, GAUSS, dask=True)
    assert (d.likelihood, d.statistics) == ("marginal", "block")
    with pytest.raises(mf.MixedFormulaError,
                       match=r"does not apply: rescor_by is not supported by the marginal "
                             r"engine yet; the conditional engine needs the rows in memory: "
                             r"pass data.compute\(\)"):
        decide(design, GAUSS, rescor_by=object(), dask=True)


@pytest.mark.parametrize("formula, family, kwargs, why", [
    ("y ~ x + (1 | g)", "poisson", {}, "family poisson (log link) is not Gaussian with identity "
                                       "link"),
    ("y ~ x + (1 | g)", "gaussian", {"likelihood": "conditional"},
     "likelihood='conditional' was asked for"),
    ("y ~ x", "gaussian", {}, "the model has no group terms"),
    ("mvbind(y, y2) ~ x + (1 | g)", "gaussian", {},
     "mvbind()/trials() models are not reduced to statistics"),
    ("y ~ x + (1 | g)", "gaussian", {"rescor_by": "k"},
     "rescor_by is not supported by the marginal engine yet"),
])
def test_dask_refusal_before_any_pass(formula, family, kwargs, why):
    msg = dask_refusal(parse(formula), get_family(family), **kwargs)
    assert msg == ("a Dask DataFrame is fitted from sufficient statistics by the marginal "
                   f"engine, which does not apply: {why}; the conditional engine needs the "
                   "rows in memory: pass data.compute() (a pandas DataFrame)")
    assert dask_refusal(parse("y ~ x + (1 | g)"), GAUSS) is None


def test_model_uses_the_decision():
    df = _data()
    m = mf.Model("y ~ x + (1 | g)", df)
    assert isinstance(m.engine, Decision) and m.engine.likelihood == m.likelihood == "marginal"
    m = mf.Model("y ~ x + (1 | g)", df, rescor_by="k")
    assert m.likelihood == "conditional"
    assert m.engine_note == "marginal engine not used: rescor_by is not supported by the " \
                            "marginal engine yet"


def test_reml_refusals():
    assert reml_refusal(_design("y ~ x + (1 | g)")) is None
    e = reml_refusal(_design("mvbind(y, y2) ~ x + (1 | g)"))
    assert isinstance(e, NotImplementedError) and "univariate" in str(e)
    e = reml_refusal(_design("s | trials(n) ~ x + (1 | g)"))
    assert isinstance(e, NotImplementedError) and "Gaussian" in str(e)
    e = reml_refusal(_design("y ~ x"))
    assert isinstance(e, mf.FormulaError) and "group term" in str(e)
    assert reml_family_refusal(GAUSS) is None
    assert reml_family_refusal(get_family("poisson")) == \
        "REML/ML (lmer) fits Gaussian models with identity link only"


def test_loo_marginal_reason():
    design = _design("mvbind(y, y2) ~ x + (1 | g)")
    assert marginal_reason(design, GAUSS) == ""
    assert marginal_reason(design, GAUSS, univariate=True) == \
        "the marginal group likelihood is computed for univariate models only"
