"""Predictions for new data of an ar() model, as brms 2.18 (issue 23), and the Bayesian
summary / report of the residual structure.

brms (prepare_predictions_ac and .predictor_arma, read in brms 2.18's source): the new rows
are their own series — ordered by group, then time; the first new row of a group has no lag
(the fitted rows are not prepended) — and the lagged residuals are y − η of the new rows' own
response: μ_n = η_n + Σ_k ar[k] (y − η)_{n−k}. Checked here against that computation written
out with pandas from the draws (hand computation), and against brms' own posterior_epred /
posterior_linpred for 40 of its draws (tests/data/r/brms_ar_newdata.R ->
brms_ar_newdata.json), evaluated by us at the same draws. Missing responses (brms then draws
them from posterior_predict row by row) are refused.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import DataError, FormulaError
from mixedformula.report.html import build_html
from mixedformula.results.structures import ar_regression_correlation, residual_structure

HERE = os.path.dirname(__file__)
REF = json.load(open(os.path.join(HERE, "data", "brms_ar_newdata.json")))
FORMULA = "y ~ x + ar(time, g, p = 1)"


def _frame(rows):
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fit():
    d = _frame(REF["data"])
    return mf.fit(FORMULA, d, draws=100, tune=200, chains=1, seed=2, progressbar=False)


def _hand_mu(b0, b1, ar, nd):
    """(S, n) μ of the new rows in their given order, lags within the new rows."""
    eta = b0[:, None] + b1[:, None] * nd.x.to_numpy()[None, :]
    e = nd.y.to_numpy()[None, :] - eta
    srt = nd.assign(row=np.arange(len(nd))).sort_values(["g", "time"])
    prev = srt.groupby("g").row.shift(1)
    has = prev.notna().to_numpy()
    lag = np.zeros_like(e)
    lag[:, srt.row.to_numpy()[has]] = e[:, prev.to_numpy()[has].astype(int)]
    return eta + ar[:, None] * lag, eta


def test_new_rows_use_their_own_lags(fit):
    nd = _frame(REF["newdata"])
    post = fit.idata.posterior
    flat = {k: post[k].values.ravel() for k in ("b_Intercept", "b_x", "ar[1]")}
    mu, eta = _hand_mu(flat["b_Intercept"], flat["b_x"], flat["ar[1]"], nd)
    ours = np.asarray(fit.predict(nd, kind="epred")).reshape(mu.shape)
    np.testing.assert_allclose(ours, mu, rtol=1e-12, atol=1e-12)
    # the first new row of g1 (time 9) and of 'new' (time 1, third row) have no lag
    np.testing.assert_allclose(ours[:, [0, 3, 5]], eta[:, [0, 3, 5]], rtol=1e-12)


def test_matches_brms_at_its_draws(fit):
    """brms' posterior_epred and posterior_linpred at 40 of its draws (returned in the
    newdata's row order), to 1e-9 relative."""
    import arviz as az
    from mixedformula.results.fit import Fit
    dr = REF["draws"]
    S = len(dr["ar"])
    post = {"b_Intercept": dr["b_Intercept"], "b_x": dr["b_x"], "ar[1]": dr["ar"],
            "sigma": dr["sigma"]}
    idata = az.from_dict(posterior={k: np.asarray(v, dtype=float)[None, :]
                                    for k, v in post.items()})
    brms_fit = Fit(idata, fit.design, fit.family, fit.priors, fit.likelihood, fit.info,
                   data=fit.data)
    nd = _frame(REF["newdata"])
    ours = np.asarray(brms_fit.predict(nd, kind="epred")).reshape(S, -1)
    np.testing.assert_allclose(ours, np.asarray(REF["epred"]), rtol=1e-9)
    lin = np.asarray(brms_fit.predict(nd, kind="linpred")).reshape(S, -1)
    np.testing.assert_allclose(lin, np.asarray(REF["linpred"]), rtol=1e-9)
    fitted = np.asarray(brms_fit.predict(kind="epred")).reshape(S, -1)[:, :10]
    np.testing.assert_allclose(fitted, np.asarray(REF["fitted_epred"]), rtol=1e-9)


def test_missing_response_is_refused(fit):
    nd = _frame(REF["newdata"])
    with pytest.raises(DataError, match="lack the response column\\(s\\) y"):
        fit.predict(nd.drop(columns="y"))
    with pytest.raises(DataError, match="have 1 missing response value\\(s\\).*posterior_predict"):
        fit.predict(nd.assign(y=[1.0, np.nan, 2, 0.7, 0.1, 1.2, 0.9]))
    with pytest.raises(FormulaError, match="column 'time' is not in the data"):
        fit.predict(nd.drop(columns="time"))


def test_bayesian_summary_and_report_show_r_j(fit):
    """The posterior-mean regression-form correlation of R_j (hand recursion in
    tests/test_structure_views.py) under "Correlation Structures:", and its heatmap."""
    v = residual_structure(fit)
    draws = fit.idata.posterior["ar[1]"].values.reshape(-1, 1)
    assert v.matrix.to_numpy() == pytest.approx(
        ar_regression_correlation(draws, 8).mean(axis=0), abs=1e-12)
    assert list(v.matrix.index) == [str(t) for t in range(1, 9)]
    lines = str(fit.summary()).splitlines()
    i = lines.index("Correlation Structures:")
    assert lines[i + 3].startswith("Implied residual correlation R_j for g = g1 (8 rows; ar:")
    html = build_html(fit)
    assert "alt='R_j heatmap'" in html and "brms&#x27; regression form" in html
