"""mf.recovery_check: intervals cover the truth at the nominal rate (within binomial error).

A tiny Gaussian model y ~ x + (1 | g) (12 groups of 10), 10 simulated data sets, family-wise
90% intervals (Bonferroni: each parameter's central 97.5% interval, so all 4 truths are
covered together with probability ≥ 0.9). False-failure rate of the module for a calibrated
sampler, any seed (MF_TEST_SEED): ≤ 0.16% + 0.03% + 0.3% < 1% (the three checks below,
union bound). Calibration at fixed truths is only approximate (12 groups: the posterior of
sd_g is skewed); at a joint coverage of 0.85 instead of 0.9 the first check alone would fail
in 1% of seeds.
"""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from sim import seeds

TRUTH = {"b_Intercept": 1.0, "b_x": 0.5, "sd_g__Intercept": 0.8, "sigma": 0.6}


@pytest.fixture(scope="module")
def check():
    x_seed, sim_seed = seeds("recovery_check", 1, 3)
    rng = np.random.default_rng(x_seed)
    df = pd.DataFrame({"x": rng.normal(size=120),
                       "g": np.repeat([f"g{j}" for j in range(12)], 10)})
    return mf.recovery_check("y ~ x + (1 | g)", df, TRUTH, n_sims=10, prob=0.9, draws=300,
                             tune=300, chains=2, seed=sim_seed, familywise=True)


def test_coverage_at_nominal_rate(check):
    """(1) All 4 truths covered together in ≥ 6 of the 10 data sets: the count is
    Binomial(10, ≥ 0.9) (data sets and chains independent), P(≤ 5) ≤ 0.16%.
    (2) Each parameter's 97.5% interval covers in ≥ 7 of 10: P(Bin(10, 0.975) ≤ 6) = 7e-5,
    ≤ 0.03% for 4 (0.1% each at a true coverage of 0.95).
    (3) The mean estimates centre near the truth: |mean − truth| < 5 SE + 0.05, SE = spread /
    √10; |t₉| > 5 has probability 7.4e-4, ≤ 0.3% for 4 (the 0.05 absorbs the posterior
    mean's small-sample bias of the sds)."""
    assert list(check.index) == list(TRUTH)
    assert check.level == pytest.approx(1 - 0.1 / 4)
    se = np.sqrt(0.975 * 0.025 / 10)
    np.testing.assert_allclose(check["SE"], se)
    assert check.joint >= 0.6, check.covered
    assert check.joint == check.covered.all(axis=1).mean()
    for name in TRUTH:
        assert check.loc[name, "coverage"] >= 0.7, name
        assert check.loc[name, "truth"] == TRUTH[name]
    # coverage is the mean of the per-simulation indicators
    np.testing.assert_allclose(check["coverage"], check.covered.mean(axis=0).to_numpy())
    # each simulation got its own data: the estimates differ between simulations
    assert (check.estimates.std(axis=0) > 1e-3).all()
    # and they are centred near the truth: |mean estimate − truth| < 5 × its standard error
    spread = check.estimates.std(axis=0, ddof=1) / np.sqrt(10)
    bias = (check.estimates.mean(axis=0) - pd.Series(TRUTH)).abs()
    assert (bias < 5 * spread + 0.05).all(), bias


def test_repr_says_what_was_checked(check):
    text = repr(check)
    assert text.startswith("Recovery check: 10 data sets simulated from y ~ x + (1 | g)")
    assert "family-wise 90% intervals" in text and "central 97.5% interval" in text
    assert "binomial SE" in text and "All 4 covered together in" in text


def test_unknown_parameter_is_reported():
    df = pd.DataFrame({"x": np.arange(20.0), "g": np.repeat(["a", "b"], 10)})
    with pytest.raises(mf.DataError, match="sd_h__Intercept"):
        mf.recovery_check("y ~ x + (1 | g)", df, {"sd_g__Intercept": 1.0, "sigma": 1.0,
                                                  "sd_h__Intercept": 1.0},
                          n_sims=1, draws=20, tune=20, chains=1, seed=1)


def test_per_parameter_intervals_by_default():
    """Without familywise= each interval is the central prob one (the coverage table)."""
    df = pd.DataFrame({"x": np.linspace(-1, 1, 40), "g": np.repeat(list("abcd"), 10)})
    check = mf.recovery_check("y ~ x + (1 | g)", df, TRUTH, n_sims=2, prob=0.9, draws=50,
                              tune=50, chains=1, seed=1)
    assert check.level == 0.9
    np.testing.assert_allclose(check["SE"], np.sqrt(0.9 * 0.1 / 2))
    assert "90% central intervals" in repr(check) and "covered together" not in repr(check)
    assert check.joint == check.covered.all(axis=1).mean()
