"""``offset(expr)`` in the fixed part and ``offset=`` (brms / lme4 semantics: η += offset).

References: lme4 glmer / lmer fits of tests/data/offset_data.csv (tests/data/offset_reference.json,
made by tests/data/r/offset_reference.R); simulation truth for the Bayesian Poisson fit; hand
computation for predictions with new-data offsets and for the marginal engine's statistics.

False-failure rate of the recovery test: ≤ 1% for any seed (MF_TEST_SEED): its 3 truths form
one Bonferroni family (tests/sim.py familywise_misses, α = 0.01: z_crit ≈ 2.94 posterior sds,
widened for Monte-Carlo error); the truths are fixed, so calibration is approximate
(Bernstein–von Mises), with 600 Poisson counts over 30 groups.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedformula as mf
from mixedformula.design.crossprod import sufficient_statistics
from mixedformula.design.spec import design_matrices
from mixedformula.errors import DataError, FormulaError
from sim import familywise_misses, seeds

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "offset_reference.json").read_text())
NEW = pd.DataFrame({"x": [-1.0, 0.0, 1.5], "t": [1.0, 2.5, 4.0], "g": ["g01", "g07", "new"]})


@pytest.fixture(scope="module")
def data():
    return pd.read_csv(DATA / "offset_data.csv")


def test_parse():
    spec = mf.parse("y ~ x + offset(log(t)) + offset(w) + (1 | g)")
    assert spec.offset == "I((log(`t`)) + (`w`))"
    assert spec.offset_variables == ("t", "w")
    assert spec.fixed == "`x`"
    assert set(spec.variables) == {"y", "x", "t", "w", "g"}
    assert mf.parse("y ~ x").offset is None


@pytest.mark.parametrize("formula, message", [
    ("y ~ x - offset(t)", "cannot be removed"),
    ("y ~ x + offset(t, 2)", "one argument"),
    ("y ~ x + offset(\"t\")", "column or an expression"),
    ("y ~ x + offset(10^10^10)", "too large"),
    ("y ~ x + (offset(t) | g)", "offset() is not allowed"),
    ("y ~ x + offset(eval(t))", "eval() is not allowed"),
])
def test_refused(formula, message):
    # offset() in multivariate formulas is per response (tests/test_multivariate_additions.py)
    with pytest.raises(FormulaError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mf.parse(formula)


def test_glmer_matches_lme4(data):
    r = REF["glmer"]
    fit = mf.glmer(r["formula"], data, family="poisson")
    np.testing.assert_allclose(fit.fixef()["Estimate"].to_numpy(), r["fixef"], rtol=1e-4)
    # lme4's own two standard errors (finite-difference Hessian, its default here, and RX with
    # use.hessian = FALSE: 0.0965652, 0.0265880) differ by up to 2.6e-3 on these data, and lme4
    # warns about it; ours lie between them
    np.testing.assert_allclose(fit.fixef()["Std. Error"].to_numpy(), r["se"], rtol=3e-3)
    np.testing.assert_allclose(fit.theta.to_numpy(), [r["theta"]], rtol=1e-3)
    assert abs(fit.logLik - r["logLik"]) <= 1e-6 * abs(r["logLik"])
    np.testing.assert_allclose(fit.fitted()[:5], r["fitted"], rtol=1e-4)
    # new data: the offset log(t) is taken from newdata (lme4's predict, allow.new.levels)
    np.testing.assert_allclose(fit.predict(NEW), r["predict_link"], rtol=1e-4)
    # offset= gives the same fit as offset() in the formula
    other = mf.glmer("y ~ x + (1 | g)", data, family="poisson", offset=np.log(data["t"]))
    np.testing.assert_allclose(other.fixef().to_numpy(), fit.fixef().to_numpy(), rtol=1e-8)


def test_lmer_matches_lme4(data):
    r = REF["lmer"]
    fit = mf.lmer(r["formula"], data)
    np.testing.assert_allclose(fit.fixef()["Estimate"].to_numpy(), r["fixef"], rtol=1e-5)
    assert fit.sigma == pytest.approx(r["sigma"], rel=1e-5)
    np.testing.assert_allclose(fit.theta.to_numpy(), [r["theta"]], rtol=1e-4)
    np.testing.assert_allclose(fit.fitted()[:5], r["fitted"], rtol=1e-5)
    np.testing.assert_allclose(fit.residuals()[:5], r["residuals"], rtol=1e-4, atol=1e-6)


def test_marginal_statistics_of_y_minus_offset(data):
    """Gaussian marginal engine: its statistics are those of z - offset (hand computation)."""
    d = design_matrices(mf.parse("z ~ x + offset(0.8 * t) + (1 | g)"), data)
    st = sufficient_statistics(d)
    w = data["z"].to_numpy() - 0.8 * data["t"].to_numpy()
    np.testing.assert_allclose(st.Xty, d.X.T @ w, rtol=1e-12)
    assert st.yty == pytest.approx(w @ w, rel=1e-12)
    model = mf.Model("z ~ x + offset(0.8 * t) + (1 | g)", data)
    assert model.likelihood == "marginal"
    np.testing.assert_allclose(model.design.offset, 0.8 * data["t"].to_numpy())


(SEED,) = seeds("offset_poisson", 11)


@pytest.fixture(scope="module")
def poisson_fit():
    rng = np.random.default_rng(SEED)
    J, n = 30, 600
    g = rng.integers(0, J, n)
    truth = {"b_Intercept": 0.2, "b_x": 0.6, "sd_g__Intercept": 0.5}
    u = stats.norm(0, truth["sd_g__Intercept"]).rvs(J, random_state=rng)
    x = rng.normal(size=n)
    t = rng.uniform(0.5, 5.0, n)
    mu = t * np.exp(truth["b_Intercept"] + truth["b_x"] * x + u[g])
    y = stats.poisson(mu).rvs(random_state=rng)
    df = pd.DataFrame({"y": y, "x": x, "t": t, "g": [f"g{k:02d}" for k in g]})
    fit = mf.fit("y ~ x + offset(log(t)) + (1 | g)", df, family="poisson", draws=300,
                 tune=300, chains=2, seed=SEED, progressbar=False)
    return fit, truth


def test_bayesian_poisson_recovers_truth(poisson_fit):
    fit, truth = poisson_fit
    assert familywise_misses(fit.idata.posterior, truth) == {}


def test_predict_takes_offset_from_newdata(poisson_fit):
    """η for new rows without group effects = b_Intercept + b_x x + log(t), draw by draw."""
    fit, _ = poisson_fit
    post = fit.idata.posterior
    b0 = post["b_Intercept"].values.reshape(-1)
    b1 = post["b_x"].values.reshape(-1)
    eta = fit.predict(NEW, kind="linpred", re_formula="~0")
    hand = b0[:, None] + b1[:, None] * NEW["x"].to_numpy() + np.log(NEW["t"].to_numpy())
    np.testing.assert_allclose(eta, hand, rtol=1e-10)
    with pytest.raises(FormulaError, match="column 't' is not in the data"):
        fit.predict(NEW.drop(columns="t"), kind="linpred", re_formula="~0")
    with pytest.raises(DataError, match=r"offset\(t\) is not finite in 1 row\(s\) of the new"):
        fit.predict(NEW.assign(t=[1.0, 0.0, 2.0]), kind="linpred", re_formula="~0")


def test_non_finite_offset_is_refused(data):
    bad = data.assign(t=data["t"].where(data.index % 50 != 3, 0.0))     # log(0) in 8 rows
    with pytest.raises(DataError, match=r"offset\(t\) is not finite in 8 row"):
        mf.glmer("y ~ x + offset(log(t)) + (1 | g)", bad, family="poisson")
    with pytest.raises(DataError, match=r"offset\(t\) is not finite in 8 row"):
        mf.Model("y ~ x + offset(log(t)) + (1 | g)", bad, family="poisson")
    arr = np.log(bad["t"].to_numpy(), where=bad["t"].to_numpy() > 0, out=np.full(len(bad), -np.inf))
    with pytest.raises(DataError, match="offset= is not finite in 8 row"):
        mf.Model("y ~ x + (1 | g)", data, family="poisson", offset=arr)
    with pytest.raises(DataError, match="offset column 'w' is not finite in 2 row"):
        mf.Model("y ~ x + (1 | g)", data.assign(w=np.r_[np.inf, -np.inf, np.zeros(len(data) - 2)]),
                 family="poisson", offset="w")


def test_save_refuses_api_offset_but_keeps_formula_offset(poisson_fit, tmp_path):
    """A saved fit rebuilds its design from the formula: offset() survives save/load; an
    offset= array would be lost silently, so saving it is refused."""
    fit, _ = poisson_fit
    path = mf.save(fit, tmp_path / "fit.nc")
    back = mf.load(path)
    np.testing.assert_allclose(back.design.offset, fit.design.offset)
    fake = type("F", (), {"design": type("D", (), {"spec": type("S", (), {
        "offset_column": ""})()})()})()
    with pytest.raises(mf.MixedFormulaError, match="offset= cannot be saved"):
        mf.save(fake, tmp_path / "other.nc")
