"""glmer answers: emmeans on the response scale and its pairs (ratios), Nakagawa's R², and
marginaleffects' comparisons / slopes with delta-method SEs, against emmeans 1.8.4,
performance 0.10.2 and a hand computation in R (tests/data/r/answers_glmer.R) and in numpy."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import mixedformula as mf

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "answers_glmer.json").read_text())
#: our glmer optimum agrees with lme4's (tight tolerances) to ~1e-6 relative; quantities that
#: depend on Var(β̂) (the Hessian) to ~1e-5
EST, SE = 1e-5, 2e-4


def _close(ours, ref, rtol):
    np.testing.assert_allclose(np.asarray(ours, dtype=float),
                               np.asarray([np.inf if v == "Inf" else v for v in ref],
                                          dtype=float), rtol=rtol)


@pytest.fixture(scope="module")
def cbpp_fit():
    cb = pd.read_csv(DATA / "glmer_cbpp.csv", dtype={"herd": str, "period": str})
    return mf.glmer("incidence | trials(size) ~ period + (1 | herd)", cb, family="binomial")


@pytest.fixture(scope="module")
def epil_fit():
    ep = pd.read_csv(DATA / "glmer_epil.csv", dtype={"subject": str})
    return mf.glmer("y ~ lbase * trt + lage + V4 + (1 | subject)", ep, family="poisson")


def test_cbpp_emmeans_response_scale_and_odds_ratios(cbpp_fit):
    r = REF["cbpp"]
    e = cbpp_fit.emmeans("period", type="response")
    assert list(e.columns) == ["period", "prob", "SE", "df", "asymp.LCL", "asymp.UCL"]
    assert list(e["period"]) == r["emmeans_response"]["period"]
    _close(e["prob"], r["emmeans_response"]["prob"], EST)
    for c in ("SE", "df", "asymp.LCL", "asymp.UCL"):
        _close(e[c], r["emmeans_response"][c], SE)
    p = e.pairs()
    assert list(p.columns) == ["contrast", "odds.ratio", "SE", "df", "null", "z.ratio",
                               "p.value"]
    assert list(p["contrast"]) == r["pairs_response"]["contrast"]      # "period1 / period2"
    for c in ("odds.ratio", "SE", "null", "z.ratio", "p.value"):
        _close(p[c], r["pairs_response"][c], SE)
    _close(e.pairs(adjust="none")["p.value"], r["pairs_response_none"]["p.value"], SE)
    link = cbpp_fit.emmeans("period")
    _close(link["emmean"], r["emmeans_link"]["emmean"], EST)
    pl = link.pairs()
    assert list(pl["contrast"]) == r["pairs_link"]["contrast"]
    _close(pl["estimate"], r["pairs_link"]["estimate"], EST)
    _close(pl["z.ratio"], r["pairs_link"]["z.ratio"], SE)
    _close(pl["p.value"], r["pairs_link"]["p.value"], SE)


def test_poisson_emmeans_rate_ratio_and_trend(epil_fit):
    r = REF["epil"]
    e = epil_fit.emmeans("trt", type="response")
    assert list(e.columns) == ["trt", "rate", "SE", "df", "asymp.LCL", "asymp.UCL"]
    _close(e["rate"], r["emmeans_response"]["rate"], EST)       # V4 (0/1) kept at 0 and 1
    _close(e["SE"], r["emmeans_response"]["SE"], SE)
    p = e.pairs()
    assert list(p["contrast"]) == [r["pairs_response"]["contrast"]]
    _close(p["ratio"], [r["pairs_response"]["ratio"]], EST)
    _close(p["p.value"], [r["pairs_response"]["p.value"]], SE)
    t = epil_fit.emtrends("trt", var="lage")
    _close(t["lage.trend"], r["emtrends_lage"]["lage.trend"], EST)
    _close(t["SE"], r["emtrends_lage"]["SE"], SE)
    with pytest.raises(mf.MixedFormulaError, match="asymptotic"):
        epil_fit.emmeans("trt", ddf="kenward-roger")


@pytest.mark.parametrize("case", ["cbpp", "epil"])
def test_nakagawa_r2_as_performance(case, cbpp_fit, epil_fit):
    fit = cbpp_fit if case == "cbpp" else epil_fit
    if case == "epil":                  # performance warns: "mu of 5.1 is too close to zero"
        with pytest.warns(RuntimeWarning, match="λ = 5.1 is below 6"):
            r2 = fit.r2()
    else:
        r2 = fit.r2()
    assert r2["marginal"] == pytest.approx(REF[case]["r2"]["marginal"], rel=EST)
    assert r2["conditional"] == pytest.approx(REF[case]["r2"]["conditional"], rel=EST)
    if case == "cbpp":
        assert r2["var_residual"] == pytest.approx(np.pi ** 2 / 3, rel=1e-12)


def test_cbpp_comparisons_hand_computation(cbpp_fit):
    """Average of unit-level differences of the probabilities at the conditional modes; SE from
    the exact Jacobian by hand (numpy here, R in the reference)."""
    tab = cbpp_fit.comparisons("period", "pairwise", by=True)
    ref = {c["contrast"]: c for c in REF["cbpp"]["comparisons"]}
    assert list(tab["contrast"]) == list(ref)
    _close(tab["estimate"], [c["estimate"] for c in ref.values()], EST)
    _close(tab["std.error"], [c["std.error"] for c in ref.values()], SE)
    # the same in numpy from this fit's β̂, b̂ and Var(β̂), to 1e-6
    X = cbpp_fit.design.X
    zb = cbpp_fit.predict(type="link") - X @ cbpp_fit.beta
    V = cbpp_fit.vcov_beta
    names = list(cbpp_fit.fixef_names)
    for _, row in tab.iterrows():
        hi, lo = row["contrast"].split(" - ")
        Xh, Xl = X.copy(), X.copy()
        for M, lev in ((Xh, hi), (Xl, lo)):
            M[:, 1:] = 0.0
            if f"period{lev}" in names:
                M[:, names.index(f"period{lev}")] = 1.0
        ph, pl = expit(Xh @ cbpp_fit.beta + zb), expit(Xl @ cbpp_fit.beta + zb)
        J = ((ph * (1 - ph))[:, None] * Xh - (pl * (1 - pl))[:, None] * Xl).mean(axis=0)
        assert row["estimate"] == pytest.approx(np.mean(ph - pl), rel=1e-6)
        assert row["std.error"] == pytest.approx(np.sqrt(J @ V @ J), rel=1e-6)
    pop = cbpp_fit.comparisons("period", {"period": ("1", "2")}, by=True, re_formula="NA")
    _close(pop["estimate"], [REF["cbpp"]["comparisons_population"][0]["estimate"]], EST)


def test_poisson_slopes_and_comparisons_hand_computation(epil_fit):
    r = REF["epil"]
    for ref in r["slopes"]:
        s = epil_fit.slopes(ref["term"], by=True)
        assert s["estimate"].iloc[0] == pytest.approx(ref["estimate"], rel=EST)
        assert s["std.error"].iloc[0] == pytest.approx(ref["std.error"], rel=SE)
    c = epil_fit.comparisons("trt", "pairwise", by=True)
    assert list(c["contrast"]) == [r["comparisons_trt"]["contrast"]]
    assert c["estimate"].iloc[0] == pytest.approx(r["comparisons_trt"]["estimate"], rel=EST)
    assert c["std.error"].iloc[0] == pytest.approx(r["comparisons_trt"]["std.error"], rel=SE)
    c1 = epil_fit.comparisons("lage", "+1", by=True)
    assert c1["estimate"].iloc[0] == pytest.approx(r["comparisons_lage_plus1"]["estimate"],
                                                   rel=EST)
    # slope by hand in numpy: d mu / d lage = mu * beta_lage (lage is in no interaction)
    X = epil_fit.design.X
    mu = epil_fit.predict(type="response")
    k = list(epil_fit.fixef_names).index("lage")
    s = epil_fit.slopes("lage", by=True)
    assert s["estimate"].iloc[0] == pytest.approx(np.mean(mu * epil_fit.beta[k]), rel=1e-6)
    J = (mu * epil_fit.beta[k])[:, None] * X
    J = J.mean(axis=0)
    J[k] += mu.mean()
    assert s["std.error"].iloc[0] == pytest.approx(np.sqrt(J @ epil_fit.vcov_beta @ J),
                                                   rel=1e-6)
    pr = epil_fit.predictions(by="trt")
    assert list(pr.columns[:1]) == ["trt"]
    assert np.all(pr["estimate"] > 0)


def test_factor_of_an_integer_column_is_a_factor_for_the_answers():
    """cbpp's period read from CSV is an integer column; factor(period) in the formula makes it
    a factor for the fit and for emmeans / comparisons (levels in numeric order, as R)."""
    cb = pd.read_csv(DATA / "glmer_cbpp.csv")
    assert pd.api.types.is_integer_dtype(cb["period"])
    fit = mf.glmer("incidence | trials(size) ~ factor(period) + (1 | herd)", cb,
                   family="binomial")
    r = REF["cbpp"]
    e = fit.emmeans("period", type="response")
    assert list(e["period"]) == [1, 2, 3, 4]
    _close(e["prob"], r["emmeans_response"]["prob"], EST)
    assert list(e.pairs()["contrast"]) == r["pairs_response"]["contrast"]
    c = fit.comparisons("period", "pairwise", by=True)
    assert list(c["contrast"]) == [x["contrast"] for x in r["comparisons"]]
    _close(c["estimate"], [x["estimate"] for x in r["comparisons"]], EST)


def test_nakagawa_r2_with_an_offset_in_the_formula():
    ep = pd.read_csv(DATA / "glmer_epil.csv", dtype={"subject": str})
    fit = mf.glmer("y ~ trt + lage + V4 + offset(lbase) + (1 | subject)", ep, family="poisson")
    with pytest.warns(RuntimeWarning, match="below 6"):       # performance warns too
        r2 = fit.r2()                   # the null model keeps offset(lbase), as insight's
    assert r2["marginal"] == pytest.approx(REF["epil_offset"]["r2"]["marginal"], rel=EST)
    assert r2["conditional"] == pytest.approx(REF["epil_offset"]["r2"]["conditional"], rel=EST)
    argument = mf.glmer("y ~ trt + lage + V4 + (1 | subject)", ep, family="poisson",
                        offset="lbase")
    with pytest.raises(mf.MixedFormulaError, match="offset= argument"):
        argument.r2()
    with pytest.raises(mf.MixedFormulaError, match="offset"):
        argument.slopes("lage", by=True)
