"""Crossed vector-valued lmer (issue 24): the dense blocked update of linalg/blocked_cholesky.py.

References are independent of the blocked factorisation: the dense marginal likelihood
log N(y; Xβ̂, σ²(I + ZΛΛᵀZᵀ)) computed by scipy from V itself, central differences of the
deviance, and lme4 1.1-31 fits stored in tests/data/kb07_reference_*.json (made by
tests/data/r/kb07_reference.R on tests/data/kb07_small.csv; "best" is the lme4 optimiser with
the largest logLik among bobyqa, Nelder_Mead, nloptwrap (BOBYQA and Nelder–Mead), nlminbwrap).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sla
import scipy.sparse as sp

import mixedformula as mf
from mixedformula.design import design_matrices
from mixedformula.linalg import LambdaFactor, PenalizedLS
from mixedformula.reml import _gradient, lmer_terms

DATA = Path(__file__).parent / "data"


def _small():
    return pd.read_csv(DATA / "kb07_small.csv")


def _system(formula, data):
    design = design_matrices(formula, data)
    terms = lmer_terms(design)
    lam = LambdaFactor([t.layout for t in terms])
    pls = PenalizedLS(design.X, design.y[:, 0], [(t.X, t.codes) for t in terms], lam)
    return design, terms, lam, pls


def _dense_deviance(design, terms, lam, theta, reml):
    """−2 log-likelihood (ML) or the REML criterion from V = I + ZΛΛᵀZᵀ by dense Cholesky
    (σ and β profiled: σ̂² = rᵀV⁻¹r / n or / (n − p), β̂ the GLS estimate)."""
    n = len(design.y)
    Z = sp.hstack([sp.csr_matrix(
        (t.X.ravel(), (np.repeat(np.arange(n), t.X.shape[1]),
                       (t.codes[:, None] * t.X.shape[1] + np.arange(t.X.shape[1])).ravel())),
        shape=(n, len(t.levels) * t.X.shape[1])) for t in terms]).toarray()
    ZL = Z @ lam.sparse(theta).toarray()
    V = np.eye(n) + ZL @ ZL.T
    c = sla.cho_factor(V, lower=True)
    X, y = design.X, design.y[:, 0]
    p = X.shape[1]
    ViX = sla.cho_solve(c, X)
    XtViX = X.T @ ViX
    beta = np.linalg.solve(XtViX, ViX.T @ y)
    r = y - X @ beta
    quad = float(r @ sla.cho_solve(c, r))
    logdetV = 2.0 * np.sum(np.log(np.diag(c[0])))
    if reml:
        nu = n - p
        return logdetV + np.linalg.slogdet(XtViX)[1] + nu * (1 + math.log(2 * math.pi * quad / nu))
    return logdetV + n * (1 + math.log(2 * math.pi * quad / n))


STRUCTURES = [
    # crossed, both maximal (correlated 4 × 4)
    "rt ~ 1 + spkr * prec + (1 + spkr * prec | subj) + (1 + spkr * prec | item)",
    # crossed, zero-correlation on one factor, split terms on the other
    "rt ~ 1 + spkr * prec + (1 + spkr * prec || subj) + (1 + spkr | item) + (0 + prec | item)",
    # crossed plus a nested-in-subject factor (three vector-valued terms)
    "rt ~ 1 + spkr + (1 + spkr + prec | subj) + (1 + prec | item) + (1 + spkr | subj:half)",
    # subject-varying by-template Λ (gr(g, by=)) on the crossed factor
    "rt ~ 1 + spkr + (1 + spkr | subj) + (1 + prec | gr(item, by = half))",
]


def _with_half(data):
    d = data.copy()
    d["half"] = np.where(d["item"].str[1:].astype(int) % 2 == 0, "a", "b")
    return d


@pytest.mark.parametrize("formula", STRUCTURES)
def test_blocked_deviance_equals_dense_likelihood(formula, monkeypatch):
    """The dense blocked update (log|L|² + log|L_X|² and r²_θ from the blocked factor) equals
    the profiled likelihood computed from the dense V = I + ZΛΛᵀZᵀ, to 1e-9 relative, at
    random θ (ML and REML), and its exact gradient equals central differences. The update
    the cost rule picks must agree as well (the Schur map for the nested structure)."""
    design, terms, lam, chosen = _system(formula, _with_half(_small()))
    import mixedformula.linalg.penalized as penalized
    monkeypatch.setattr(penalized, "choose_update", lambda C, q1, r: "dense")
    *_, pls = _system(formula, _with_half(_small()))
    assert pls.update_kind == "dense"
    theta = np.where(lam.is_diagonal, 0.7, 0.2)
    assert chosen.deviance(theta, True) == pytest.approx(pls.deviance(theta, True), rel=1e-11)
    rng = np.random.default_rng(len(formula))
    for _ in range(2):
        theta = np.where(lam.is_diagonal, rng.uniform(0.1, 1.2, lam.n_theta),
                         rng.normal(0, 0.4, lam.n_theta))
        for reml in (False, True):
            ref = _dense_deviance(design, terms, lam, theta, reml)
            assert pls.deviance(theta, reml) == pytest.approx(ref, rel=1e-9)
            dev, grad = pls.deviance_and_gradient(theta, reml)
            num = _gradient(lambda th: pls.deviance(th, reml), theta, dev, lam.lower, h=1e-5)
            np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-4 * max(1, np.abs(num).max()))


def test_exact_gradient_on_the_boundary():
    """At a zero diagonal entry (a singular point) the exact gradient still equals the
    one-sided differences (no division by θ)."""
    design, terms, lam, pls = _system(STRUCTURES[0], _small())
    rng = np.random.default_rng(5)
    theta = np.where(lam.is_diagonal, rng.uniform(0.2, 1.0, lam.n_theta),
                     rng.normal(0, 0.3, lam.n_theta))
    theta[np.nonzero(lam.is_diagonal)[0][[1, 5]]] = 0.0
    dev, grad = pls.deviance_and_gradient(theta, False)
    num = _gradient(lambda th: pls.deviance(th, False), theta, dev, lam.lower, h=1e-6)
    np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-3)


def _reference(case):
    ref = json.loads((DATA / f"kb07_reference_{case}.json").read_text())
    return ref, ref["runs"][ref["best"]]


@pytest.mark.parametrize("case", ["small_maximal", "small_zerocorr", "zerocorr", "maximal"])
def test_ml_fit_matches_best_lme4_optimizer(case):
    """logLik ≥ the best of lme4's optimisers − 1e-6, fixed effects and σ within 1e-4
    relative, and the fit reported singular exactly as lme4 reports it (kb07_small, and the
    full kb07-shaped data of benchmarks/crossed_reml.py for both models; lme4 1.1-31 took
    362 s (zero-correlation, nloptwrap) and 667 s (maximal, bobyqa) on them)."""
    ref, best = _reference(case)
    formula = ref["formula"].replace("*", " * ")
    fit = mf.lmer(formula, pd.read_csv(DATA / ref["data"]), reml=False)
    assert fit.logLik >= best["logLik"] - 1e-6
    assert fit.logLik == pytest.approx(best["logLik"], abs=1e-4)
    beta = dict(zip(fit.fixef_names, fit.beta))
    for name, value in best["fixef"].items():
        assert beta[name] == pytest.approx(value, rel=1e-4, abs=1e-3)
    assert fit.sigma == pytest.approx(best["sigma"], rel=1e-4)
    assert fit.is_singular == best["isSingular"]
    if best["isSingular"]:
        assert "singular" in fit.summary().lower()
    # the variance components lme4 reports (sd, cor) agree
    vc = fit.varcorr()
    ours = {(g.split(".")[0], a, b if isinstance(b, str) else None): v
            for g, a, b, v in zip(vc["grp"], vc["var1"], vc["var2"], vc["sdcor"])}
    for row in best["varcorr"]:
        key = (row["grp"].split(".")[0], row.get("var1"), row.get("var2"))
        if row["grp"] == "Residual":
            continue
        sd_scale = best["sigma"]
        assert ours[key] == pytest.approx(row["sdcor"], abs=2e-3 * (1 if key[2] else sd_scale))


def test_zero_correlation_start_is_the_zero_correlation_fit():
    """The maximal model's start is the zero-correlation model's optimum: its deviance at
    that start equals the separately fitted || model's deviance."""
    from mixedformula.reml import _zero_correlation_start
    design, terms, lam, pls = _system(STRUCTURES[0], _small())
    x0 = _zero_correlation_start(pls, lam, False)
    assert np.all(x0[~lam.is_diagonal] == 0)
    _ref, zc = _reference("small_zerocorr")
    assert -0.5 * pls.deviance(x0, False) == pytest.approx(zc["logLik"], abs=1e-6)


def test_scatter_schur_equals_dense_likelihood(monkeypatch):
    """The compiled Schur accumulation for a scalar first term (the MovieLens-sized path, where
    the precomputed map would not fit) gives the dense-V likelihood and the diagonal-Λ exact
    gradient equals central differences."""
    import mixedformula.linalg.penalized as penalized
    monkeypatch.setattr(penalized, "choose_update", lambda C, q1, r: "scatter")
    for formula in ["rt ~ 1 + spkr + (1 | subj) + (1 | item)",
                    "rt ~ 1 + spkr + (1 | subj) + (1 + prec | item)"]:
        design, terms, lam, pls = _system(formula, _small())
        assert pls.update_kind == "scatter"
        theta = np.where(lam.is_diagonal, 0.6, -0.2)
        for reml in (False, True):
            ref = _dense_deviance(design, terms, lam, theta, reml)
            assert pls.deviance(theta, reml) == pytest.approx(ref, rel=1e-9)
    out = pls.deviance_and_gradient(theta, True)
    assert out is None          # correlated second term: no exact gradient on this path
    design, terms, lam, pls = _system("rt ~ 1 + spkr + (1 | subj) + (1 | item)", _small())
    dev, grad = pls.deviance_and_gradient(np.array([0.6, 0.4]), True)
    num = _gradient(lambda th: pls.deviance(th, True), np.array([0.6, 0.4]), dev, lam.lower)
    np.testing.assert_allclose(grad, num, rtol=1e-5)


def test_optimiser_rule_and_bobyqa_path_against_lme4():
    """The one rule (reml._search_method): BOBYQA for zero-correlation vector-valued terms,
    L-BFGS-B for correlated and scalar terms. The zero-correlation kb07-small fit takes the
    BOBYQA path and its logLik equals lme4's best optimiser (bobyqa) to 1e-6; every check
    run (interior restarts) ends at the same deviance or above."""
    from mixedformula.reml import _search_method
    for formula, method in [(STRUCTURES[0], "L-BFGS-B"),
                            ("rt ~ 1 + spkr * prec + (1 + spkr * prec || subj) + "
                             "(1 + spkr * prec || item)", "BOBYQA"),
                            ("rt ~ 1 + spkr + (1 | subj) + (1 | item)", "L-BFGS-B")]:
        *_, lam, _pls = _system(formula, _small())
        assert _search_method(lam) == method
    ref, best = _reference("small_zerocorr")
    fit = mf.lmer(ref["formula"].replace("*", " * "), _small(), reml=False)
    checks = fit.optimizer["checks"]
    assert checks[0][0] == "BOBYQA"
    assert abs(fit.logLik - best["logLik"]) <= 1e-6
    assert min(c[1] for c in checks) >= -2 * fit.logLik - 1e-9
    assert fit.is_singular and best["isSingular"]


def test_exact_gradient_leaves_only_zero_bounds_to_differences():
    """Diagonal-Λ exact gradient with an entry exactly at its bound 0: with nan_at_zero that
    entry is NaN and the others equal central differences; without, None (unchanged)."""
    design, terms, lam, pls = _system("rt ~ 1 + spkr + (1 | subj) + (1 | item) + "
                                      "(1 | subj:half)", _with_half(_small()))
    theta = np.array([0.6, 0.0, 0.4])
    assert pls.deviance_and_gradient(theta, True) is None
    for reml in (False, True):
        dev, grad = pls.deviance_and_gradient(theta, reml, nan_at_zero=True)
        assert dev == pytest.approx(pls.deviance(theta, reml), rel=1e-12)
        assert np.isnan(grad[1]) and not np.any(np.isnan(grad[[0, 2]]))
        num = _gradient(lambda th: pls.deviance(th, reml), theta, dev, lam.lower)
        np.testing.assert_allclose(grad[[0, 2]], num[[0, 2]], rtol=1e-5)


ZERO_COLUMN_STRUCTURES = [
    "rt ~ 1 + spkr * prec + (1 + spkr * prec || subj) + (1 + spkr * prec || item)",
    "rt ~ 1 + spkr * prec + (1 + spkr * prec | subj) + (1 + spkr * prec | item)",
]


@pytest.mark.parametrize("formula", ZERO_COLUMN_STRUCTURES)
def test_deviance_with_zero_columns_of_lambda_equals_dense_likelihood(formula, monkeypatch):
    """Variances at 0 (the deviance then drops those columns of Λ: a smaller system) give the
    likelihood of the dense V = I + ZΛΛᵀZᵀ to 1e-9 relative (ML and REML), also for another
    response (``with_response``, whose restricted systems must not be the first response's);
    with diagonal Λ the exact gradient equals the (one-sided at 0) differences."""
    import mixedformula.linalg.penalized as penalized
    monkeypatch.setattr(penalized, "choose_update", lambda C, q1, r: "dense")
    design, terms, lam, pls = _system(formula, _small())
    assert pls.update_kind == "dense"
    rng = np.random.default_rng(11)
    theta = np.where(lam.is_diagonal, rng.uniform(0.2, 1.0, lam.n_theta),
                     rng.normal(0, 0.3, lam.n_theta))
    # zero whole rows and columns of T: coefficient 1 of the first term, 0 and 3 of the second
    for k, coefs in ((0, [1]), (1, [0, 3])):
        t = lam.terms[k]
        rows, cols = t.entries
        off = lam.theta_offsets[k]
        for c in coefs:
            theta[off + np.nonzero((rows == c) | (cols == c))[0]] = 0.0
    y2 = design.y[:, 0] + rng.normal(0, 50, len(design.y))
    pls.deviance(theta, False)                       # (its restricted system made first)
    other = pls.with_response(y2)
    for reml in (False, True):
        ref = _dense_deviance(design, terms, lam, theta, reml)
        assert pls.deviance(theta, reml) == pytest.approx(ref, rel=1e-9)
        y0, design.y = design.y, y2[:, None]
        try:
            ref2 = _dense_deviance(design, terms, lam, theta, reml)
        finally:
            design.y = y0
        assert other.deviance(theta, reml) == pytest.approx(ref2, rel=1e-9)
        if np.all(lam.is_diagonal):
            dev, grad = pls.deviance_and_gradient(theta, reml)
            num = _gradient(lambda th: pls.deviance(th, reml), theta, dev, lam.lower, h=1e-6)
            np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-3)
            assert np.all(grad[theta == 0] == 0.0)
