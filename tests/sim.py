"""Simulated data sets shared by the sampling tests (scenarios in shared/SCENARIOS.md)."""

import numpy as np
import pandas as pd

import mixedformula as mf

SCENARIO1_PARAMS = {
    "b_Intercept": 1.0, "b_p1": 0.5, "b_p2": -0.3, "b_p3": 0.2,
    "sd_g__Intercept": 1.0, "sd_g__p1": 0.6, "sd_g__p2": 0.4,
    "cor_g__Intercept__p1": 0.0, "cor_g__Intercept__p2": 0.0, "cor_g__p1__p2": 0.6,
    "sigma": 0.5,
}


def scenario1_predictors(n_groups=16, n_per=100, seed=11):
    """Three correlated predictors (means 1, -2, 0.5) in 16 groups of 100 (scenario 1)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1, -0.3, 0], [-0.3, 1, 0.6], [0, 0.6, 1]])
    P = rng.multivariate_normal([1, -2, 0.5], cov, size=n_groups * n_per)
    df = pd.DataFrame(P, columns=["p1", "p2", "p3"])
    df["g"] = np.repeat([f"g{j:02d}" for j in range(n_groups)], n_per)
    return df


def scenario1(seed=11):
    return mf.simulate("m1 ~ p1 + p2 + p3 + (1 + p1 + p2 | g)", scenario1_predictors(seed=seed),
                       SCENARIO1_PARAMS, seed=seed + 1)


def scenario2(seed=5):
    """Two groups of 1000 (x, y): A mean (0, 0), identity; B mean (1, -1), correlation -0.5."""
    rng = np.random.default_rng(seed)
    A = rng.multivariate_normal([0, 0], [[1, 0], [0, 1]], 1000)
    B = rng.multivariate_normal([1, -1], [[1, -0.5], [-0.5, 1]], 1000)
    df = pd.DataFrame(np.vstack([A, B]), columns=["x", "y"])
    df["group"] = ["A"] * 1000 + ["B"] * 1000
    return df


BERNOULLI_TRUTH = {"b_Intercept": -0.3, "b_x": 0.8, "sd_g__Intercept": 0.7, "sd_g__x": 0.4,
                   "cor_g__Intercept__x": 0.3}


def bernoulli_glmm():
    """60 groups × 50 bernoulli rows from ``y ~ x + (1 + x | g)`` at BERNOULLI_TRUTH."""
    rng = np.random.default_rng(8)
    df = pd.DataFrame({"x": rng.normal(size=3000),
                       "g": np.repeat([f"s{j}" for j in range(60)], 50)})
    return mf.simulate("y ~ x + (1 + x | g)", df, BERNOULLI_TRUTH, family="bernoulli", seed=9)


def interval(post, name, prob):
    """Central ``prob`` posterior interval of a scalar variable."""
    a = (1 - prob) / 2
    return np.quantile(post[name].values, [a, 1 - a])
