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


# --------------------------------------------------------------------------- hand-made draws
# Fits built from chosen draws (no sampling): the references are computed by hand below.

import arviz as az  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402

import mixedformula as mf  # noqa: E402
from mixedformula.design import design_matrices  # noqa: E402
from mixedformula.families import get_family  # noqa: E402
from mixedformula.results.fit import Fit  # noqa: E402


def _frame():
    return pd.DataFrame({"g": list("aabbcc"), "h": list("ABABAB"),
                         "y": [0.1, 0.4, -0.2, 1.0, 0.3, 0.5],
                         "y2": [1.0, 0.0, 0.5, 0.2, -0.1, 0.7]})


def _fit(formula, df, draws, family="gaussian", rescor_by=None):
    post = xr.Dataset({k: xr.DataArray(np.asarray(v, dtype=float).reshape(1, -1),
                                       dims=("chain", "draw")) for k, v in draws.items()})
    info = {"rescor_by": rescor_by}
    return Fit(az.InferenceData(posterior=post), design_matrices(formula, df),
               get_family(family), None, "conditional", info, data=df)


def test_marginal_cov_rescor_by_uses_each_rows_sigma():
    df = _frame()
    sA, sB = np.array([1.0, 2.0]), np.array([0.5, 3.0])
    fit = _fit("y ~ 1 + (1 | g)", df, {"b_Intercept": [0.0, 0.2], "sd_g__Intercept": [1.0, 2.0],
                                       "sigma:hA": sA, "sigma:hB": sB}, rescor_by="h")
    m = fit.marginal_cov(rows=[0, 1, 2])
    R = np.diag([(sA ** 2).mean(), (sB ** 2).mean(), (sA ** 2).mean()])
    np.testing.assert_allclose(m.R_part.to_numpy(), R, rtol=1e-12)
    g = (np.array([1.0, 2.0]) ** 2).mean()
    G = np.array([[g, g, 0], [g, g, 0], [0, 0, g]])
    np.testing.assert_allclose(m.cov.to_numpy(), G + R, rtol=1e-12)


def test_marginal_cov_rescor_by_multivariate():
    df = _frame()
    d = {"b_y_Intercept": [0.0, 0.0], "b_y2_Intercept": [1.0, 1.0],
         "sd_g__y_Intercept": [1.0, 1.0], "sd_g__y2_Intercept": [0.5, 0.5]}
    sig = {("y", "A"): [1.0, 2.0], ("y2", "A"): [0.5, 1.5], ("y", "B"): [3.0, 1.0],
           ("y2", "B"): [2.0, 2.0]}
    rc = {"A": [0.5, -0.5], "B": [0.2, 0.4]}
    for (r, lev), v in sig.items():
        d[f"sigma_{r}:h{lev}"] = v
    for lev, v in rc.items():
        d[f"rescor__y__y2:h{lev}"] = v
    fit = _fit("mvbind(y, y2) ~ 1 + (1 | g)", df, d, rescor_by="h")
    m = fit.marginal_cov(rows=[0, 1])
    R = np.zeros((4, 4))
    for i, lev in enumerate("AB"):
        s1, s2, c = (np.array(sig[("y", lev)]), np.array(sig[("y2", lev)]),
                     np.array(rc[lev]))
        R[2 * i:2 * i + 2, 2 * i:2 * i + 2] = [[(s1 ** 2).mean(), (s1 * s2 * c).mean()],
                                               [(s1 * s2 * c).mean(), (s2 ** 2).mean()]]
    np.testing.assert_allclose(m.R_part.to_numpy(), R, rtol=1e-12)
    # rows 0 and 1 share level a: Z G Zᵀ per response (no correlation across the two blocks)
    G = np.zeros((4, 4))
    G[0::2, 0::2] = 1.0
    G[1::2, 1::2] = 0.25
    np.testing.assert_allclose(m.G_part.to_numpy(), G, rtol=1e-12)


def test_marginal_cov_student_variance_is_sigma2_nu_over_nu_minus_2():
    df = _frame()
    sigma, nu = np.array([1.0, 2.0, 0.5]), np.array([3.0, 5.0, 10.0])
    fit = _fit("y ~ 1 + (1 | g)", df, {"b_Intercept": [0.0] * 3, "sd_g__Intercept": [1.0] * 3,
                                       "sigma": sigma, "nu": nu}, family="student")
    m = fit.marginal_cov(rows=[0, 2])
    v = (sigma ** 2 * nu / (nu - 2)).mean()
    np.testing.assert_allclose(m.R_part.to_numpy(), np.diag([v, v]), rtol=1e-12)
    np.testing.assert_allclose(m.cov.to_numpy(), np.diag([1 + v, 1 + v]), rtol=1e-12)


def test_marginal_cov_student_with_nu_at_most_2_is_infinite():
    df = _frame()
    fit = _fit("y ~ 1 + (1 | g)", df, {"b_Intercept": [0.0] * 2, "sd_g__Intercept": [1.0] * 2,
                                       "sigma": [1.0, 1.0], "nu": [1.5, 5.0]}, family="student")
    with pytest.warns(UserWarning, match="1 of 2 posterior draws have nu <= 2"):
        m = fit.marginal_cov(rows=[0, 2])
    assert np.isinf(np.diag(m.cov.to_numpy())).all()
    assert m.R_part.iloc[0, 1] == 0.0
    np.testing.assert_allclose(m.G_part.to_numpy(), np.eye(2))


@pytest.mark.parametrize("family", ["poisson", "bernoulli", "negbinomial", "lognormal"])
def test_marginal_cov_refuses_non_gaussian_families(family):
    df = _frame().assign(y=[0, 1, 1, 0, 1, 1])
    d = {"b_Intercept": [0.0], "sd_g__Intercept": [1.0], "shape": [2.0], "sigma": [1.0]}
    fit = _fit("y ~ 1 + (1 | g)", df, d, family=family)
    with pytest.raises(mf.MixedFormulaError, match=f"this model is {family}"):
        fit.marginal_cov(rows=[0, 1])
