"""ArviZ's own functions on ``fit.idata`` (issue 21): observed_data / constant_data on every fit,
log_likelihood on request (per observation for the conditional engine, per group for the
marginal one), so that az.loo, az.compare, az.plot_ppc and az.plot_trace work on both engines.

The pointwise values are checked against scipy.stats densities evaluated on the posterior
draws (normal per observation; multivariate normal of a subject's rows with u integrated out).
"""

from __future__ import annotations

import warnings

import arviz as az
import matplotlib
import numpy as np
import pytest
from scipy import stats

import mixedformula as mf

matplotlib.use("Agg")
FORMULA = "Reaction ~ Days + (Days | Subject)"
KW = dict(draws=150, tune=150, chains=2, seed=5, progressbar=False)


def _fit(likelihood, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mf.fit(FORMULA, mf.datasets.load("sleepstudy"), likelihood=likelihood,
                      **{**KW, **kw})


@pytest.fixture(scope="module")
def fits():
    return {e: _fit(e, log_likelihood=True) for e in ("conditional", "marginal")}


def _flat(post, v):
    a = post[v].values
    return a.reshape((-1,) + a.shape[2:])


@pytest.mark.parametrize("engine", ["conditional", "marginal"])
def test_data_groups(fits, engine):
    idata = fits[engine].idata
    d = mf.datasets.load("sleepstudy")
    assert {"posterior", "sample_stats", "observed_data", "constant_data",
            "log_likelihood"} <= set(idata.groups())
    np.testing.assert_array_equal(idata.observed_data["Reaction"].values, d["Reaction"])
    X = idata.constant_data["X"]
    assert list(X.coords["X__coef"].values) == ["Intercept", "Days"]
    np.testing.assert_array_equal(X.values[:, 1], d["Days"])
    assert list(idata.constant_data["Subject"].values) == [str(s) for s in d["Subject"]]


def test_observation_log_likelihood_is_scipy_normal(fits):
    fit = fits["conditional"]
    d = mf.datasets.load("sleepstudy")
    post = fit.idata.posterior
    ll = fit.idata.log_likelihood["Reaction"]
    assert ll.dims == ("chain", "draw", "obs") and ll.shape[-1] == 180
    levels = list(post["r_Subject"].coords["Subject"].values)
    j = np.array([levels.index(str(s)) for s in d["Subject"]])
    r = _flat(post, "r_Subject")                                   # (S, J, 2)
    eta = (_flat(post, "b_Intercept")[:, None] + r[:, j, 0]
           + (_flat(post, "b_Days")[:, None] + r[:, j, 1]) * d["Days"].to_numpy())
    ref = stats.norm.logpdf(d["Reaction"].to_numpy(), eta, _flat(post, "sigma")[:, None])
    np.testing.assert_allclose(ll.values.reshape(ref.shape), ref, rtol=1e-10)


def test_group_log_likelihood_is_scipy_multivariate_normal(fits):
    """Marginal engine: log N(y_j; X_j β, Z_j G Z_jᵀ + σ² I) per subject, for a few draws."""
    fit = fits["marginal"]
    d = mf.datasets.load("sleepstudy")
    post = fit.idata.posterior
    name = "Reaction__Subject__marginal"
    assert list(fit.idata.log_likelihood.data_vars) == [name]
    ll = fit.idata.log_likelihood[name].values.reshape(-1, 18)
    levels = list(fit.idata.log_likelihood[name].coords["Subject__level"].values)
    sd0, sd1 = _flat(post, "sd_Subject__Intercept"), _flat(post, "sd_Subject__Days")
    rho = _flat(post, "cor_Subject__Intercept__Days")
    b0, b1, sig = _flat(post, "b_Intercept"), _flat(post, "b_Days"), _flat(post, "sigma")
    for s in (0, 77, 299):
        G = np.array([[sd0[s] ** 2, rho[s] * sd0[s] * sd1[s]],
                      [rho[s] * sd0[s] * sd1[s], sd1[s] ** 2]])
        for j in (0, 11):
            rows = d[d["Subject"].astype(str) == levels[j]]
            Z = np.column_stack([np.ones(len(rows)), rows["Days"]])
            ref = stats.multivariate_normal.logpdf(
                rows["Reaction"], b0[s] + b1[s] * rows["Days"], Z @ G @ Z.T
                + sig[s] ** 2 * np.eye(len(rows)))
            assert ll[s, j] == pytest.approx(ref, rel=1e-9)


def test_az_loo_and_compare(fits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cond = az.loo(fits["conditional"].idata)
        marg = az.loo(fits["marginal"].idata)
    assert cond.n_data_points == 180 and marg.n_data_points == 18
    # LOO over observations vs leave-one-subject-out: arviz refuses to rank them
    with pytest.raises(ValueError, match="number of observations should be the same"):
        az.compare({"obs": fits["conditional"].idata, "groups": fits["marginal"].idata})
    # the same kind on both engines: compared
    other = _fit("marginal")
    assert "log_likelihood" not in other.idata.groups()
    other.add_log_likelihood(kind="observation")
    assert list(other.idata.log_likelihood.data_vars) == ["Reaction"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare({"conditional": fits["conditional"].idata,
                            "marginal": other.idata})
    assert set(table.index) == {"conditional", "marginal"}
    # group kind on the conditional engine: conditional likelihood summed within subjects
    again = _fit("conditional")
    again.add_log_likelihood(kind="group")
    assert list(again.idata.log_likelihood.data_vars) == ["Reaction__Subject__conditional"]
    with pytest.raises(mf.MixedFormulaError, match="kind must be"):
        again.add_log_likelihood(kind="row")


@pytest.mark.parametrize("engine", ["conditional", "marginal"])
def test_az_plots(fits, engine):
    import matplotlib.pyplot as plt
    fit = fits[engine]
    fit.posterior_predictive(seed=1)
    axes = az.plot_ppc(fit.idata, num_pp_samples=20, random_seed=1, show=False)
    assert axes is not None
    axes = az.plot_trace(fit.idata, var_names=["b_Days", "sigma"], show=False)
    assert np.asarray(axes).shape == (2, 2)
    plt.close("all")
