"""Summary and report of structured G and R (issue 23): the parameters and the implied
correlation matrix, R_j of a typical subject with its heatmap.

References: hand computations — the stationary AR(1) ρ^|s−t| at nlme's ρ̂ (BodyWeight,
tests/data/bodyweight_nlme.json), compound symmetry, and for brms' regression-form ar(p) the
covariance of e_n = Σ ar_k e_{n−k} + ε_n (no lags before the first row) by the recursion
Cov(e_n, e_m) written out, not by the matrix inverse the module uses."""

import json
import os
import re

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.report.html import build_html
from mixedformula.results.structures import (ar_regression_correlation, residual_structure,
                                              typical_level)

HERE = os.path.dirname(__file__)
REF = json.load(open(os.path.join(HERE, "data", "bodyweight_nlme.json")))


@pytest.fixture(scope="module")
def bodyweight():
    return pd.read_csv(os.path.join(HERE, "data", "bodyweight.csv"),
                       dtype={"Rat": str, "Diet": str})


def _recursion_cov(ar, n):
    """Cov(e) of e_n = Σ_k ar[k] e_{n−k} + ε_n, ε iid N(0, 1), e_{≤0} = 0, element by element:
    e_n = Σ_i w_{n,i} ε_i with w_{n,·} = unit_n + Σ_k ar[k] w_{n−k,·}."""
    w = np.zeros((n, n))
    for t in range(n):
        w[t, t] = 1.0
        for k, a in enumerate(ar, start=1):
            if t - k >= 0:
                w[t] += a * w[t - k]
    return w @ w.T


@pytest.mark.parametrize("ar", [[0.6], [-0.4], [0.5, 0.3]])
def test_regression_form_correlation(ar):
    C = _recursion_cov(ar, 6)
    d = np.sqrt(np.diag(C))
    assert ar_regression_correlation(np.array([ar]), 6)[0] == pytest.approx(
        C / np.outer(d, d), abs=1e-12)
    if len(ar) == 1:       # e_1 = ε_1, e_2 = a e_1 + ε_2: corr a / sqrt(1 + a²)
        a = ar[0]
        assert ar_regression_correlation(np.array([[a]]), 2)[0, 0, 1] == pytest.approx(
            a / np.sqrt(1 + a * a), rel=1e-12)


def test_typical_level():
    assert typical_level(np.array([0, 0, 0, 1, 2, 2, 3, 3]), 4) == 2    # counts 3 1 2 2
    assert typical_level(np.array([0, 1, 1]), 2) == 0


def test_lmer_summary_and_report_show_r_j(bodyweight):
    fit = mf.lmer("weight ~ Time * Diet + (Time | Rat) + ar(time = Time, gr = Rat)",
                  bodyweight)
    rho = REF["ar1_reml"]["rho"]
    v = residual_structure(fit)
    assert (v.structure, v.group, v.level, v.n_rows) == ("ar", "Rat", "1", 11)
    assert list(v.matrix.index) == ["1", "8", "15", "22", "29", "36", "43", "44", "50", "57",
                                    "64"]
    lag = np.abs(np.subtract.outer(np.arange(11), np.arange(11)))
    assert v.matrix.to_numpy() == pytest.approx(rho ** lag, rel=1e-4)
    text = fit.summary()
    assert "Implied residual correlation R_j for Rat = 1 (11 rows; ar: ar[1] = 0.532" in text
    row = next(line for line in text.splitlines() if line.startswith("  8 "))
    assert row.split()[1:4] == [f"{rho:.2f}", "1.00", f"{rho:.2f}"]
    html = build_html(fit)
    assert "Residual structure ar(time = Time, gr = Rat)" in html
    assert "alt='R_j heatmap'" in html and re.search(r"data:image/png;base64,[A-Za-z0-9+/]{200}",
                                                     html)
    assert "Satterthwaite df and profile intervals are not available" in html


def test_lmer_report_shows_structured_g():
    d = pd.read_csv(os.path.join(HERE, "data", "covstruct_data.csv"))
    d["times"] = d["times"].astype(str)
    fit = mf.lmer("y_ar ~ x + ar1(0 + times | group)", d)
    (rho,) = fit.corpars().estimate
    html = build_html(fit)
    assert "G of group: ar1(4 x 4), rho = " in html
    # the implied correlation matrix: its (1, 3) entry is rho² (2 decimals in the table)
    assert f"<td>{rho ** 2:.2f}</td>" in html and f"<td>{rho ** 3:.2f}</td>" in html
