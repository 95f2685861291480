"""Implied marginal moments: Var[y] = Z G Zᵀ + σ² I from the posterior, by hand."""

import numpy as np


def test_marginal_cov_matches_hand_computation(sleep_marginal):
    fit = sleep_marginal
    post = fit.idata.posterior
    m = fit.marginal_cov(group="Subject", level="308")
    assert m.cov.shape == (10, 10)
    s0 = post["sd_Subject__Intercept"].values.ravel()
    s1 = post["sd_Subject__Days"].values.ravel()
    rho = post["cor_Subject__Intercept__Days"].values.ravel()
    sig = post["sigma"].values.ravel()
    days = np.arange(10.0)
    # per draw: V = [1 d] G [1 d]ᵀ + σ² I, then the posterior mean
    g00, g11, g01 = (s0 ** 2).mean(), (s1 ** 2).mean(), (s0 * s1 * rho).mean()
    V = g00 + g01 * (days[:, None] + days[None, :]) + g11 * np.outer(days, days)
    V = V + (sig ** 2).mean() * np.eye(10)
    np.testing.assert_allclose(m.cov.to_numpy(), V, rtol=1e-10)
    b0 = post["b_Intercept"].values.mean()
    b1 = post["b_Days"].values.mean()
    np.testing.assert_allclose(m.mean.to_numpy(), b0 + b1 * days, rtol=1e-12)
    # rows of different subjects are independent
    m2 = fit.marginal_cov(rows=[0, 10])
    assert m2.cov.iloc[0, 1] == 0.0
