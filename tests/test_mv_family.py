"""Multivariate formulas with brms' ``family =`` per bf() part and ``set_rescor()`` (issue #18).

The stored brms 2.18 reference (tests/data/brms_mv_family.json from
tests/data/r/brms_mv_family.R: a poisson + gaussian pair with ``(1 | p | g)``) records brms'
default rescor for mixed families (FALSE) and its refusal of set_rescor(TRUE). One family per
response builds brms' MV(poisson, gaussian) (the sampled fit against brms:
tests/test_mv_family_brms.py). No model is sampled here (build-only checks).
"""

import json
import os

import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import FamilyError, FormulaError, MixedFormulaError
from mixedformula.formula import parse

DATA = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def ref():
    with open(os.path.join(DATA, "brms_mv_family.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def data(ref):
    return pd.DataFrame(ref["data"])


def test_family_in_bf_text_and_api():
    s = parse("bf(y1 ~ x + (1 | p | g), family = poisson()) + bf(y2 ~ x + (1 | p | g), "
              "sigma ~ x) + set_rescor(FALSE)")
    assert [p.family for p in s.parts] == ["poisson()", None]
    assert s.rescor is False and s.dpar_names == ("sigma",)
    a = mf.bf("y1 ~ x + (1 | g)", family="poisson") + mf.bf("y2 ~ x + (1 | g)")
    assert [p.family for p in a.parts] == ["poisson", None] and a.rescor is None
    b = mf.bf("y1 ~ x", family=mf.families.get_family("poisson")) + mf.bf("y2 ~ x")
    assert b.parts[0].family == "poisson(link = 'log')"
    assert parse('bf(y ~ x, family = "poisson")').family == "poisson"
    assert parse("bf(y ~ x, family = binomial(link = 'probit'))").family \
        == "binomial(link = 'probit')"


@pytest.mark.parametrize("text, where", [
    ("bf(y1 ~ x, family = poisson(link = c(1))) + bf(y2 ~ x)", "poisson(link = c(1))"),
    ("bf(y1 ~ x, family = poisson(), family = gaussian()) + bf(y2 ~ x)", "family = gaussian()"),
    ("bf(y1 ~ x) + bf(y2 ~ x) + set_rescor(maybe)", "set_rescor(maybe)"),
    ("bf(y1 ~ x) + bf(y2 ~ x) + set_rescor(TRUE) + set_rescor(FALSE)", "set_rescor(FALSE)"),
    ("bf(y1 ~ x, family = poisson()) + set_rescor(FALSE)", None),
])
def test_bad_family_or_rescor_text_is_a_formula_error(text, where):
    with pytest.raises(FormulaError) as e:
        parse(text)
    if where is not None:
        assert text[e.value.start:e.value.end] == where


def test_api_family_of_a_wrong_type():
    with pytest.raises(FormulaError, match="family name"):
        mf.bf("y ~ x", family=3)
    with pytest.raises(FamilyError, match="cannot read the arguments"):
        mf.bf("y ~ x", family="poisson(link = log(2))")


def test_brms_default_rescor_and_refusal_are_stored(ref):
    assert ref["brms_version"] == "2.18.0"
    assert ref["default_rescor"] is False
    assert "only possible in multivariate gaussian or student" in ref["rescor_true"]


def test_mixed_families_give_one_family_per_response(data):
    """Both spellings give brms' MV(poisson, gaussian): each response its own likelihood
    (y__y1 poisson, y__y2 normal) and only the gaussian one a sigma (the fit against brms:
    tests/test_mv_family_brms.py)."""
    for f in (mf.bf("y1 ~ x + (1 | g)", family="poisson") + mf.bf("y2 ~ x + (1 | g)"),
              "bf(y1 ~ x + (1|p|g), family = poisson()) + bf(y2 ~ x + (1|p|g))"):
        m = mf.Model(f, data=data)
        assert m.family.name == "MV(poisson, gaussian)"
        assert [fam.name for fam in m.family.families] == ["poisson", "gaussian"]
        names = m.pymc_model.named_vars
        assert {"y__y1", "y__y2", "sigma__y2"} <= set(names)
        assert "sigma__y1" not in names and not any("rescor" in v for v in names)


def test_mixed_families_refuse_what_is_not_built(data):
    with pytest.raises(MixedFormulaError, match="distributional formulas"):
        mf.Model("bf(y1 ~ x, family = poisson()) + bf(y2 ~ x, sigma ~ x)", data=data
                 ).pymc_model
    with pytest.raises(MixedFormulaError, match="every response is gaussian"):
        mf.Model("bf(y1 ~ x + (1 | g), family = poisson()) + bf(y2 ~ x + (1 | g))",
                 data=data, likelihood="marginal")
    with pytest.raises(FamilyError, match="one family per response"):
        mf.Model("bf(y1 ~ x, family = poisson()) + bf(y2 ~ x)", data=data).family.inverse_link


def test_set_rescor_true_is_refused_where_brms_refuses_it(data):
    with pytest.raises(MixedFormulaError, match="gaussian or student"):
        mf.Model("bf(y1 ~ x, family = poisson()) + bf(y2 ~ x) + set_rescor(TRUE)", data=data)
    with pytest.raises(MixedFormulaError, match="gaussian or student"):
        mf.Model("bf(y1 ~ x, family = poisson()) + bf(y2 ~ x, family = poisson()) "
                 "+ set_rescor(TRUE)", data=data).pymc_model


def test_univariate_bf_family_and_set_rescor_false(data):
    with pytest.raises(FamilyError, match="unknown family 'system'"):
        mf.Model('bf(y1 ~ x, family = system("ls")) + bf(y2 ~ x)', data=data)
    m = mf.Model("bf(y1 ~ x + (1 | g), family = poisson())", data=data)
    assert m.family.name == "poisson"
    with pytest.raises(FamilyError, match="give it in one place"):
        mf.Model("bf(y1 ~ x, family = poisson())", data=data, family="bernoulli")
    m = mf.Model("bf(y1 ~ x) + bf(y2 ~ x) + set_rescor(FALSE)", data=data)
    names = m.pymc_model.named_vars
    assert "sigma__y1" in names and not any("rescor" in v for v in names)
    with pytest.raises(MixedFormulaError, match="disagrees"):
        mf.Model("bf(y1 ~ x) + bf(y2 ~ x) + set_rescor(FALSE)", data=data,
                 rescor=True).pymc_model


def test_one_non_gaussian_family_for_every_part_is_brms_mv(data):
    """bf() parts sharing a family without brms' rescor (negbinomial): brms'
    MV(negbinomial, negbinomial), one shape per response (shape_y1, shape_y3); family= for
    parts that name none (poisson) likewise; gaussian parts keep one family (rescor)."""
    d = data.assign(y3=data["y1"] + 1)
    m = mf.Model("bf(y1 ~ x + (1 | g), family = negbinomial()) + "
                 "bf(y3 ~ x + (1 | g), family = negbinomial())", data=d)
    assert m.family.name == "MV(negbinomial, negbinomial)"
    names = set(m.pymc_model.named_vars)
    assert {"shape__y1", "shape__y3", "y__y1", "y__y3"} <= names and "shape" not in names
    m = mf.Model(mf.bf("y1 ~ x") + mf.bf("y3 ~ x"), data=d, family="poisson")
    assert m.family.name == "MV(poisson, poisson)"
    assert mf.Model("bf(y1 ~ x) + bf(y2 ~ x)", data=d).family.name == "gaussian"


@pytest.mark.parametrize("family, group, key", [("poisson", "(1 | p | g)", "prior_poisson"),
                                                 ("negbinomial", "(1 | g)",
                                                  "prior_negbinomial")])
def test_mvbind_with_one_non_gaussian_family_is_brms_split(data, family, group, key):
    """``mvbind(y1, y3) ~ x + ...`` with ``family = poisson()`` is brms' split into one bf()
    per response, MV(poisson, poisson): brms 2.18's default priors
    (tests/data/brms_mvbind_family.json from tests/data/r/brms_mvbind_family.R) and the
    variables of the bf() + bf() spelling."""
    from sim import brms_proper_priors
    with open(os.path.join(DATA, "brms_mvbind_family.json")) as f:
        ref = json.load(f)
    d = data.assign(y3=data["y1"] + 1)
    m = mf.Model(f"mvbind(y1, y3) ~ x + {group}", data=d, family=family)
    assert m.family.name == f"MV({family}, {family})"
    assert brms_proper_priors(m.prior_summary()) == brms_proper_priors(ref[key])
    both = mf.Model(f"bf(y1 ~ x + {group}) + bf(y3 ~ x + {group})", data=d, family=family)
    assert set(m.pymc_model.named_vars) == set(both.pymc_model.named_vars)


def test_mvbind_negbinomial_log_density_at_a_point(data):
    """MV(negbinomial, negbinomial) from mvbind: the model's likelihood terms at a point
    against scipy by hand (1e-9): Σ log NB(y_k; μ = exp(α_k + β_k (x − x̄)), shape_k) per
    response (scipy's nbinom(n = shape, p = shape / (shape + μ)))."""
    import numpy as np
    from scipy import stats
    d = data.assign(y3=data["y1"] + 1)
    model = mf.Model("mvbind(y1, y3) ~ x", data=d, family="negbinomial").pymc_model
    point = {"b__y1": np.array([0.3]), "Intercept__y1": np.array(0.5),
             "shape__y1_log__": np.array(np.log(2.5)),
             "b__y3": np.array([-0.2]), "Intercept__y3": np.array(1.1),
             "shape__y3_log__": np.array(np.log(7.0))}
    lp = model.point_logps(point, round_vals=12)
    xc = d["x"] - d["x"].mean()
    for y, a, b, k in (("y1", 0.5, 0.3, 2.5), ("y3", 1.1, -0.2, 7.0)):
        mu = np.exp(a + b * xc)
        hand = stats.nbinom.logpmf(d[y], k, k / (k + mu)).sum()
        assert lp[f"y__{y}"] == pytest.approx(hand, rel=1e-9)


def test_addition_terms_per_response_with_its_own_family(data):
    """weights() on the poisson response, se(s, sigma = TRUE) on the gaussian one: the
    model's log-density at a point against scipy by hand (1e-9): Σ w_i log Poisson(y1_i;
    exp(α1 + β1 (x_i − x̄))) and Σ log N(y2_i; α2 + β2 (x_i − x̄), √(σ² + s²))."""
    import numpy as np
    from scipy import stats
    d = data.assign(w=np.linspace(0.5, 2.0, len(data)), s=0.3)
    model = mf.Model("bf(y1 | weights(w) ~ x, family = poisson()) + "
                     "bf(y2 | se(s, sigma = TRUE) ~ x)", data=d).pymc_model
    point = {"b__y1": np.array([0.3]), "Intercept__y1": np.array(0.5),
             "b__y2": np.array([-0.4]), "Intercept__y2": np.array(0.6),
             "sigma__y2_log__": np.array(np.log(0.8))}
    lp = model.point_logps(point, round_vals=12)
    xc = d["x"] - d["x"].mean()
    h1 = (d["w"] * stats.poisson.logpmf(d["y1"], np.exp(0.5 + 0.3 * xc))).sum()
    h2 = stats.norm.logpdf(d["y2"], 0.6 - 0.4 * xc, np.sqrt(0.8 ** 2 + 0.3 ** 2)).sum()
    assert lp["y__y1"] == pytest.approx(h1, rel=1e-9)
    assert lp["y__y2"] == pytest.approx(h2, rel=1e-9)
