"""Simulation-truth recovery with brms' addition terms: censored weibull and lognormal
survival with a group term, a weighted gaussian, and a se() meta-analysis.

Each test: data simulated from the truth with seeds from ``sim.seeds`` (any MF_TEST_SEED),
2 chains x 400 draws, ``sim.familywise_misses(post, truth, alpha=ALPHA, k=K)`` over all
K truths of this file with α = 0.01: Bonferroni bounds the false-failure rate of the whole
file by 1% for a calibrated posterior (the data sets are a few hundred rows, where the
posterior is close to normal on the log scale of the sds, see sim.familywise_misses).
"""

import numpy as np
import pandas as pd
import pytest
from scipy.special import gamma as gamma_fn

import mixedformula as mf
from sim import familywise_misses, seeds

WEIBULL = {"b_Intercept": 1.0, "b_x": 0.5, "sd_g__Intercept": 0.5, "shape": 1.5}
LOGNORMAL = {"b_Intercept": 0.5, "b_x": -0.4, "sd_g__Intercept": 0.6, "sigma": 0.7}
WEIGHTED = {"b_Intercept": 2.0, "b_x": 0.7, "sd_g__Intercept": 0.8, "sigma": 1.1}
META = {"b_Intercept": 0.3, "b_x": 0.25, "sd_study__Intercept": 0.3}
K = len(WEIBULL) + len(LOGNORMAL) + len(WEIGHTED) + len(META)
ALPHA = 0.01


def _groups(rng, n, J):
    g = np.repeat(np.arange(J), n // J)
    return g, rng.normal(size=J)


def _fit(formula, df, family, seed):
    return mf.fit(formula, df, family=family, draws=400, tune=400, chains=2, seed=seed,
                  progressbar=False).idata.posterior


def test_censored_weibull_recovers_truth():
    s_data, s_fit = seeds("add-weibull", 11, 12)
    rng = np.random.default_rng(s_data)
    g, u = _groups(rng, 300, 15)
    x = rng.normal(size=g.size)
    t = WEIBULL
    mu = np.exp(t["b_Intercept"] + t["b_x"] * x + t["sd_g__Intercept"] * u[g])
    k = t["shape"]
    y = mu / gamma_fn(1 + 1 / k) * rng.weibull(k, g.size)
    c = rng.uniform(1.0, 8.0, g.size)                  # censoring times
    df = pd.DataFrame({"y": np.minimum(y, c), "cens": (y > c).astype(int), "x": x,
                       "g": [f"g{j:02d}" for j in g]})
    post = _fit("y | cens(cens) ~ x + (1 | g)", df, "weibull", s_fit)
    assert familywise_misses(post, t, alpha=ALPHA, k=K) == {}


def test_censored_lognormal_recovers_truth():
    s_data, s_fit = seeds("add-lognormal", 21, 22)
    rng = np.random.default_rng(s_data)
    g, u = _groups(rng, 300, 15)
    x = rng.normal(size=g.size)
    t = LOGNORMAL
    y = np.exp(t["b_Intercept"] + t["b_x"] * x + t["sd_g__Intercept"] * u[g]
               + t["sigma"] * rng.normal(size=g.size))
    # left-censored below a detection limit, interval-censored to [floor, floor + 1) above 4
    limit = 0.8
    code = np.where(y < limit, "left", np.where(y > 4.0, "interval", "none"))
    lo = np.where(code == "left", limit, np.where(code == "interval", np.floor(y), y))
    hi = np.where(code == "interval", np.floor(y) + 1.0, np.nan)
    df = pd.DataFrame({"y": lo, "y2": hi, "c": code, "x": x, "g": [f"g{j:02d}" for j in g]})
    post = _fit("y | cens(c, y2) ~ x + (1 | g)", df, "lognormal", s_fit)
    assert familywise_misses(post, t, alpha=ALPHA, k=K) == {}


def test_weighted_gaussian_recovers_truth():
    """y_i ~ N(μ_i, σ²/w_i) with weights of mean exactly 1: brms' Σ w_i log N(y_i | μ_i, σ)
    has the true likelihood's score and information in β and log σ (it differs from it by
    −(w_i − 1) log σ per row, which sums to 0), so its posterior is calibrated at the truth."""
    s_data, s_fit = seeds("add-weights", 31, 32)
    rng = np.random.default_rng(s_data)
    g, u = _groups(rng, 240, 12)
    x = rng.normal(size=g.size)
    t = WEIGHTED
    w = rng.uniform(0.3, 3.0, g.size)
    w = w / w.mean()
    mu = t["b_Intercept"] + t["b_x"] * x + t["sd_g__Intercept"] * u[g]
    df = pd.DataFrame({"y": mu + t["sigma"] / np.sqrt(w) * rng.normal(size=g.size), "w": w,
                       "x": x, "g": [f"g{j:02d}" for j in g]})
    post = _fit("y | weights(w) ~ x + (1 | g)", df, "gaussian", s_fit)
    assert familywise_misses(post, t, alpha=ALPHA, k=K) == {}


def test_se_meta_analysis_recovers_truth():
    s_data, s_fit = seeds("add-meta", 41, 42)
    rng = np.random.default_rng(s_data)
    k = 80
    t = META
    x = rng.normal(size=k)
    se = rng.uniform(0.1, 0.4, k)
    theta = t["b_Intercept"] + t["b_x"] * x + t["sd_study__Intercept"] * rng.normal(size=k)
    df = pd.DataFrame({"yi": theta + se * rng.normal(size=k), "sei": se, "x": x,
                       "study": [f"s{j:02d}" for j in range(k)]})
    post = _fit("yi | se(sei) ~ x + (1 | study)", df, "gaussian", s_fit)
    assert np.all(post["sigma"].values == 0.0)
    assert familywise_misses(post, t, alpha=ALPHA, k=K) == {}
