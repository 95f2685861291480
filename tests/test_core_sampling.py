"""Bayesian core: posterior against brms, parameter recovery on simulated data.

Tolerances: brms' reference means carry Monte-Carlo error ≈ sd/√ESS ≈ 0.025 sd, ours too; the
issue's 0.15 posterior sd is about 4 combined MC standard errors.
"""

import numpy as np
import pytest

import mixedformula as mf
from sim import BERNOULLI_TRUTH, bernoulli_glmm, familywise_misses, SCENARIO1_PARAMS, scenario1, seeds

BRMS_PARAMS = ["b_Intercept", "b_Days", "sd_Subject__Intercept", "sd_Subject__Days",
               "cor_Subject__Intercept__Days", "sigma"]


@pytest.mark.parametrize("engine", ["sleep_conditional", "sleep_marginal"])
def test_sleepstudy_matches_brms(engine, brms_ref, request):
    fit = request.getfixturevalue(engine)
    assert fit.likelihood == engine.split("_")[1]
    ref = brms_ref["sleepstudy_corr"]["params"]
    post = fit.idata.posterior
    import arviz as az
    for name in BRMS_PARAMS:
        mean = float(post[name].mean())
        assert abs(mean - ref[name]["mean"]) < 0.15 * ref[name]["sd"], name
        assert abs(float(post[name].std()) / ref[name]["sd"] - 1) < 0.15, name
        assert float(az.rhat(post[name])[name]) <= 1.01, name
    assert post["r_Subject"].shape[-2:] == (18, 2)
    assert list(post["r_Subject"].coords["Subject"].values[:2]) == ["308", "309"]


def test_sleepstudy_summary_layout(sleep_conditional):
    text = str(sleep_conditional.summary())
    assert "Multilevel Hyperparameters:" in text
    assert "~Subject (Number of levels: 18)" in text
    assert "cor(Intercept,Days)" in text
    assert "Regression Coefficients:" in text
    assert "Further Distributional Parameters:" in text
    assert "Number of observations: 180" in text


def test_prior_summary_has_brms_defaults(sleep_conditional):
    ps = sleep_conditional.prior_summary()
    rows = {(r["class"], r["coef"]): r["prior"] for _, r in ps.iterrows()}
    assert rows[("Intercept", "")] == "student_t(3, 288.7, 59.3)"
    assert rows[("sigma", "")] == "student_t(3, 0, 59.3)"
    assert rows[("sd", "Intercept")] == "student_t(3, 0, 59.3)"
    assert rows[("cor", "")] == "lkj(1)"


def test_scenario1_recovers_correlated_slopes():
    """8 truths (3 sds, cor(p1,p2), σ, 3 slopes) in one family-wise interval each.

    False-failure rate ≤ 1% for any seed: Bonferroni over k = 8 checks, each at level
    1 − 0.01/8 (z_crit ≈ 3.23 posterior sd on the log/atanh/identity scale, widened by the
    Monte-Carlo error of z; sim.familywise_misses). Fixed truths: 16 groups × 100 rows keep the
    posteriors close to normal on those scales, so their coverage is close to nominal. (The
    old check, all 8 inside their 90% intervals, passes for a perfect sampler with
    probability 0.9⁸ ≈ 0.43 — on a seed, not on the code.)"""
    data_seed, fit_seed = seeds("scenario1", 11, 3)
    data = scenario1(seed=data_seed)
    fit = mf.fit("m1 ~ p1 + p2 + p3 + (1 + p1 + p2 | g)", data, likelihood="conditional",
                 draws=1000, tune=1000, chains=2, seed=fit_seed)
    post = fit.idata.posterior
    truth = {name: SCENARIO1_PARAMS[name] for name in
             ["sd_g__Intercept", "sd_g__p1", "sd_g__p2", "cor_g__p1__p2", "sigma",
              "b_p1", "b_p2", "b_p3"]}
    assert familywise_misses(post, truth) == {}
    assert int(fit.idata.sample_stats.diverging.sum()) < 10


def test_bernoulli_glmm_recovers_parameters():
    """5 truths in family-wise intervals: false-failure rate ≤ 1% for any seed (Bonferroni,
    each at 1 − 0.01/5, z_crit ≈ 3.09; sim.familywise_misses). 60 groups × 50 rows: the
    posteriors are close to normal on the checked scales. (All five inside their 95%
    intervals would pass with probability 0.95⁵ ≈ 0.77.)"""
    truth = BERNOULLI_TRUTH
    x_seed, y_seed, fit_seed = seeds("bernoulli-nutpie", 8, 9, 4)
    data = bernoulli_glmm(x_seed, y_seed)
    assert set(np.unique(data["y"])) == {0.0, 1.0}
    fit = mf.fit("y ~ x + (1 + x | g)", data, family="bernoulli", draws=1000, tune=1000,
                 chains=2, seed=fit_seed)
    post = fit.idata.posterior
    assert familywise_misses(post, truth) == {}
    assert "Links: mu = logit" in str(fit.summary())
