import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import FamilyError, PriorError
from mixedformula.priors import PriorSet, parse_prior
from sim import py_mode


def test_parse_prior_strings():
    assert parse_prior("normal(0, 5)") == ("normal", (0.0, 5.0))
    assert parse_prior("student_t(3, 0, 2.5)") == ("student_t", (3.0, 0.0, 2.5))
    assert parse_prior("lkj(2)") == ("lkj", (2.0,))


@pytest.mark.parametrize("bad", ["normal(0)", "foo(1)", "normal(0, x)", "__import__('os')",
                                 "normal(0, 5); exit()", "exponential(inf)"])
def test_bad_prior_strings_rejected(bad):
    with pytest.raises(PriorError):
        parse_prior(bad)


def test_prior_class_checks():
    with pytest.raises(PriorError):
        mf.prior("normal(0, 1)", class_="cor")
    with pytest.raises(PriorError):
        mf.prior("lkj(2)", class_="sd")
    with pytest.raises(PriorError):
        mf.prior("normal(0, 1)", class_="bogus")


def test_user_priors_resolve_most_specific(sleepstudy):
    model = mf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy, likelihood="conditional",
                     priors=[mf.prior("normal(0, 5)", class_="b", coef="Days"),
                             mf.prior("exponential(1)", class_="sd", group="Subject"),
                             mf.prior("lkj(2)", class_="cor")])
    ps = model.prior_summary()
    rows = {(r["class"], r["coef"]): (r["prior"], r["source"]) for _, r in ps.iterrows()}
    assert rows[("b", "Days")] == ("normal(0, 5)", "user")
    assert rows[("sd", "Days")] == ("exponential(1)", "user")
    assert rows[("cor", "")] == ("lkj(2)", "user")
    names = {v.name for v in model.pymc_model.free_RVs}
    assert "b__Days" in names


def test_prior_matching_nothing_is_an_error(sleepstudy):
    model = mf.Model("Reaction ~ Days + (Days | Subject)", sleepstudy,
                     priors=[mf.prior("normal(0, 5)", class_="b", coef="Nights")])
    with pytest.raises(PriorError, match="does not match any parameter"):
        model.pymc_model


def test_unknown_family():
    with pytest.raises(FamilyError, match="unknown family"):
        mf.get_family("gausian")


@pytest.mark.parametrize("family,y,msg", [
    ("bernoulli", [0, 1, 2, 1], "0/1"),
    ("poisson", [0, -1, 2, 1], "non-negative whole counts"),
    ("poisson", [0, 1.5, 2, 1], "non-negative whole counts"),
    ("gamma", [1, 0, 2, 1], "positive"),
])
def test_impossible_response_is_refused_before_sampling(family, y, msg):
    df = pd.DataFrame({"y": y, "x": [0.1, 0.2, 0.3, 0.4], "g": list("aabb")})
    with pytest.raises(FamilyError, match=msg):
        mf.Model("y ~ x + (1 | g)", df, family=family).pymc_model


def test_binomial_needs_trials():
    df = pd.DataFrame({"y": [1, 2, 0, 3], "n": [3, 3, 3, 3], "x": [0.1, 0.2, 0.3, 0.4],
                       "g": list("aabb")})
    with pytest.raises(FamilyError, match="trials"):
        mf.Model("y ~ x + (1 | g)", df, family="binomial").pymc_model
    m = mf.Model("y | trials(n) ~ x + (1 | g)", df, family="binomial")
    assert "y" in {v.name for v in m.pymc_model.observed_RVs}
    df.loc[0, "y"] = 4
    with pytest.raises(FamilyError, match="no larger than trials"):
        mf.Model("y | trials(n) ~ x + (1 | g)", df, family="binomial").pymc_model


def test_every_family_builds(sleepstudy):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=40), "g": np.repeat(list("abcd"), 10),
                       "n": 5})
    df["yc"] = rng.poisson(2, size=40)
    df["yp"] = rng.gamma(2, 1, size=40)
    df["yb"] = (df.yc > 1).astype(float)
    df["yk"] = np.minimum(df.yc, 5)
    cases = {"gaussian": "yp", "student": "yp", "lognormal": "yp", "gamma": "yp",
             "poisson": "yc", "negbinomial": "yc", "bernoulli": "yb"}
    for fam, col in cases.items():
        m = mf.Model(f"{col} ~ x + (1 | g)", df, family=fam)
        logp = m.pymc_model.compile_logp(mode=py_mode())(m.pymc_model.initial_point())
        assert np.isfinite(logp), fam
    m = mf.Model("yk | trials(n) ~ x + (1 | g)", df, family="binomial")
    assert np.isfinite(m.pymc_model.compile_logp(mode=py_mode())(m.pymc_model.initial_point()))
