"""mf.recovery_check: intervals cover the truth at the nominal rate (within binomial error).

A tiny Gaussian model y ~ x + (1 | g) (12 groups of 10), 10 simulated data sets, 90% intervals:
each parameter's coverage must be at least 0.9 − 3·SE with SE = √(0.9·0.1/10) ≈ 0.095, i.e. at
least 7 of 10 intervals contain the truth (a calibrated model fails this with probability
P(Bin(10, 0.9) ≤ 6) ≈ 1.3% per parameter, and the seed is fixed).
"""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

TRUTH = {"b_Intercept": 1.0, "b_x": 0.5, "sd_g__Intercept": 0.8, "sigma": 0.6}


@pytest.fixture(scope="module")
def check():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=120),
                       "g": np.repeat([f"g{j}" for j in range(12)], 10)})
    return mf.recovery_check("y ~ x + (1 | g)", df, TRUTH, n_sims=10, prob=0.9, draws=300,
                             tune=300, chains=2, seed=3)


def test_coverage_at_nominal_rate(check):
    assert list(check.index) == list(TRUTH)
    se = np.sqrt(0.9 * 0.1 / 10)
    np.testing.assert_allclose(check["SE"], se)
    for name in TRUTH:
        assert check.loc[name, "coverage"] >= 0.9 - 3 * se, name
        assert check.loc[name, "truth"] == TRUTH[name]
    # coverage is the mean of the per-simulation indicators
    np.testing.assert_allclose(check["coverage"], check.covered.mean(axis=0).to_numpy())
    # each simulation got its own data: the estimates differ between simulations
    assert (check.estimates.std(axis=0) > 1e-3).all()
    # and they are centred near the truth: |mean estimate − truth| < 4 × its standard error
    spread = check.estimates.std(axis=0, ddof=1) / np.sqrt(10)
    bias = (check.estimates.mean(axis=0) - pd.Series(TRUTH)).abs()
    assert (bias < 4 * spread + 0.05).all(), bias


def test_repr_says_what_was_checked(check):
    text = repr(check)
    assert text.startswith("Recovery check: 10 data sets simulated from y ~ x + (1 | g)")
    assert "90% central intervals" in text and "binomial SE" in text


def test_unknown_parameter_is_reported():
    df = pd.DataFrame({"x": np.arange(20.0), "g": np.repeat(["a", "b"], 10)})
    with pytest.raises(mf.DataError, match="sd_h__Intercept"):
        mf.recovery_check("y ~ x + (1 | g)", df, {"sd_g__Intercept": 1.0, "sigma": 1.0,
                                                  "sd_h__Intercept": 1.0},
                          n_sims=1, draws=20, tune=20, chains=1, seed=1)
