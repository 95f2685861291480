"""``cbind(successes, failures) ~ ...``: lme4's binomial response, the same model as
``successes | trials(successes + failures)``. Reference: lme4's glmer on cbpp
(tests/data/glmer_reference.json, made by tests/data/r/glmer_reference.R with
``cbind(incidence, size - incidence) ~ period + (1 | herd)``)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.design.spec import design_matrices
from mixedformula.errors import FormulaError
from sim import py_mode

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "glmer_reference.json").read_text())["cbpp_laplace"]
CBIND = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    d = pd.read_csv(DATA / "glmer_cbpp.csv", dtype={"herd": str, "period": str})
    return d.assign(fail=d["size"] - d["incidence"])


def test_parse_is_trials_form():
    spec = mf.parse("cbind(s, f) ~ x")
    assert spec.responses == ("`s`",)
    assert spec.trials == "I(`s` + (`f`))"
    assert set(spec.trials_variables) == {"s", "f"}
    assert not spec.multivariate


def test_design_equals_trials_form(cbpp):
    a = design_matrices(mf.parse(CBIND), cbpp)
    b = design_matrices(mf.parse("incidence | trials(size) ~ period + (1 | herd)"), cbpp)
    c = design_matrices(mf.parse("incidence | trials(incidence + fail) ~ period + (1 | herd)"),
                        cbpp)
    np.testing.assert_array_equal(a.y, b.y)
    np.testing.assert_array_equal(a.trials, cbpp["size"].to_numpy(float))
    np.testing.assert_array_equal(c.trials, a.trials)
    np.testing.assert_array_equal(a.X, b.X)
    assert a.X_names == b.X_names


def test_glmer_matches_lme4(cbpp):
    fit = mf.glmer(CBIND, cbpp, family="binomial")
    np.testing.assert_allclose(fit.fixef()["Estimate"].to_numpy(),
                               list(REF["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(fit.fixef()["Std. Error"].to_numpy(),
                               list(REF["se"].values()), rtol=1e-3)
    assert abs(fit.logLik - REF["logLik"]) <= 1e-4 * abs(REF["logLik"])
    other = mf.glmer("incidence | trials(size) ~ period + (1 | herd)", cbpp, family="binomial")
    np.testing.assert_allclose(fit.fixef().to_numpy(), other.fixef().to_numpy(), rtol=1e-10)


def test_bayesian_model_same_log_density(cbpp):
    """mf.fit's model for the cbind form is the trials form's: same log density and gradient
    at random points of the unconstrained space."""
    a = mf.Model(CBIND, cbpp, family="binomial").pymc_model
    b = mf.Model("incidence | trials(size) ~ period + (1 | herd)", cbpp,
                 family="binomial").pymc_model
    fa, fb = a.compile_logp(mode=py_mode()), b.compile_logp(mode=py_mode())
    ga, gb = a.compile_dlogp(mode=py_mode()), b.compile_dlogp(mode=py_mode())
    rng = np.random.default_rng(0)
    point = a.initial_point()
    assert set(point) == set(b.initial_point())
    for _ in range(3):
        p = {k: rng.normal(size=np.shape(v)) * 0.5 for k, v in point.items()}
        assert fa(p) == pytest.approx(fb(p), rel=1e-12)
        np.testing.assert_allclose(ga(p), gb(p), rtol=1e-12)


def test_lmer_refuses(cbpp):
    with pytest.raises(NotImplementedError, match="binomial.*mf.glmer"):
        mf.lmer(CBIND, cbpp)


@pytest.mark.parametrize("formula, message", [
    ("cbind(a, b, c) ~ x", "takes two columns"),
    ("cbind(a) ~ x", "takes two columns"),
    ("cbind(a, 3) ~ x", "columns or transforms"),
    ("cbind(a, b) | trials(n) ~ x", "drop the | trials"),
])
def test_refused(formula, message):
    with pytest.raises(FormulaError, match=message):
        mf.parse(formula)
