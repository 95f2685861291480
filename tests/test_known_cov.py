"""gr(g, cov = A): effects correlated across levels by a known matrix (issue 23, part 1).

References: the simulated phylogenetic data of tests/data/r/known_cov.R (ape::rtree + vcv);
REML/ML against the exact Gaussian likelihood with dense V = Z (A ⊗ Σ) Zᵀ + σ² I maximised
by scipy (written here, independent of the library's PLS code); the Bayesian fit against
brms 2.18 (tests/data/known_cov_brms.json).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

import mixedformula as mf
from mixedformula.errors import DataError, FormulaError, MixedFormulaError
from mixedformula.formula import parse

HERE = os.path.dirname(__file__)


@pytest.fixture(scope="module")
def phylo():
    A = pd.read_csv(os.path.join(HERE, "data", "known_cov_A.csv"), index_col=0)
    d = pd.read_csv(os.path.join(HERE, "data", "known_cov_data.csv"))
    return A, d


def dense_fit(d, A, slope: bool, reml: bool):
    """Maximise the exact (restricted) Gaussian log-likelihood with V dense:
    V = Z_full (A ⊗ Σ) Z_fullᵀ + σ² I, Σ = diag(sd) R diag(sd). Returns (sds, cor, sigma, ll)."""
    lev = sorted(d.phylo.unique())
    Al = A.loc[lev, lev].to_numpy()
    j = pd.Index(lev).get_indexer(d.phylo)
    n = len(d)
    q = 2 if slope else 1
    W = np.column_stack([np.ones(n), d.x])[:, :q]
    Z = np.zeros((n, len(lev) * q))
    for c in range(q):
        Z[np.arange(n), j * q + c] = W[:, c]
    X = np.column_stack([np.ones(n), d.x])
    y = d.y.to_numpy()
    p = X.shape[1]

    def parts(par):
        sd = np.exp(par[:q])
        rho = np.tanh(par[q]) if q == 2 else 0.0
        R = np.array([[1.0, rho], [rho, 1.0]])[:q, :q]
        S = np.outer(sd, sd) * R
        return sd, rho, np.exp(par[-1]), S

    def nll(par):
        _, _, sig, S = parts(par)
        V = Z @ np.kron(Al, S) @ Z.T + sig ** 2 * np.eye(n)
        Vi = np.linalg.inv(V)
        XVX = X.T @ Vi @ X
        b = np.linalg.solve(XVX, X.T @ Vi @ y)
        r = y - X @ b
        ll = -0.5 * (np.linalg.slogdet(V)[1] + r @ Vi @ r + n * np.log(2 * np.pi))
        if reml:
            ll -= 0.5 * (np.linalg.slogdet(XVX)[1] - p * np.log(2 * np.pi))
        return -ll

    x0 = np.zeros(q + (q == 2) + 1) - 0.5
    with threadpool_limits(1):       # 120 x 120 matrices: BLAS threads only contend
        return _maximise(nll, parts, x0)


def _maximise(nll, parts, x0):
    o = minimize(nll, x0, method="BFGS", options=dict(gtol=1e-9))
    o = minimize(nll, o.x, method="Nelder-Mead",
                 options=dict(xatol=1e-9, fatol=1e-11, maxiter=3000))
    sd, rho, sig, _ = parts(o.x)
    return sd, rho, sig, -o.fun


# -- syntax ------------------------------------------------------------------------------------
def test_parse_gr_cov():
    g = parse("y ~ x + (1 + x | gr(phylo, cov = A))").groups[0]
    assert g.cov == "A" and g.factors == ("phylo",) and g.correlated
    assert parse("y ~ (1 | gr(phylo, cov = 'A'))").groups[0].cov == "A"
    assert parse("y ~ (1 | phylo)").groups[0].cov is None
    with pytest.raises(FormulaError, match="name of a matrix"):
        parse("y ~ (1 | gr(phylo, cov = 3))")
    with pytest.raises(FormulaError, match="one grouping factor"):
        parse("y ~ (1 | gr(a/b, cov = A))")


# -- bad input ---------------------------------------------------------------------------------
def test_known_matrix_checks(phylo):
    A, d = phylo
    f = "y ~ x + (1 | gr(phylo, cov = A))"
    with pytest.raises(DataError, match="needs the matrix 'A' in data2"):
        mf.lmer(f, d)
    with pytest.raises(DataError, match=r"1 level\(s\) of phylo are not in .* t13"):
        mf.lmer(f, d, data2={"A": A.drop(index="t13", columns="t13")})
    more = A.copy()
    more["extra"] = 0.0
    more.loc["extra"] = 0.0
    more.loc["extra", "extra"] = 1.0
    with pytest.raises(DataError, match="1 level.*does not have in the data: extra"):
        mf.lmer(f, d, data2={"A": more})
    asym = A.copy()
    asym.iloc[0, 1] += 0.1
    with pytest.raises(DataError, match="not symmetric"):
        mf.lmer(f, d, data2={"A": asym})
    sing = A.copy()
    sing.loc[:, :] = 1.0
    with pytest.raises(DataError, match="not positive definite"):
        mf.lmer(f, d, data2={"A": sing})
    with pytest.raises(DataError, match="twice"):
        mf.lmer(f, d, data2={"A": (A.to_numpy(), ["t1"] * len(A))})
    with pytest.raises(DataError, match="same levels"):
        bad = A.copy()
        bad.columns = [f"z{c}" for c in bad.columns]
        mf.lmer(f, d, data2={"A": bad})


def test_array_with_levels_and_reordered_frame(phylo):
    A, d = phylo
    f = "y ~ x + (1 | gr(phylo, cov = A))"
    ref = mf.lmer(f, d, data2={"A": A})
    as_array = mf.lmer(f, d, data2={"A": (A.to_numpy(), list(A.index))})
    perm = A.index[::-1]
    shuffled = mf.lmer(f, d, data2={"A": A.loc[perm, perm]})
    for other in (as_array, shuffled):
        assert other.logLik == pytest.approx(ref.logLik, abs=1e-9)
        assert other.sigma == pytest.approx(ref.sigma, rel=1e-7)


# -- REML / ML against the dense likelihood ------------------------------------------------------
@pytest.mark.parametrize("reml", [True, False])
def test_lmer_intercept_matches_dense_likelihood(phylo, reml):
    A, d = phylo
    fit = mf.lmer("y ~ x + (1 | gr(phylo, cov = A))", d, reml=reml, data2={"A": A})
    sd, _, sig, ll = dense_fit(d, A, slope=False, reml=reml)
    vc = fit.varcorr()
    assert vc.sdcor[0] == pytest.approx(sd[0], rel=1e-5)
    assert fit.sigma == pytest.approx(sig, rel=1e-5)
    assert fit.logLik == pytest.approx(ll, abs=1e-6)


def test_lmer_slope_matches_dense_likelihood(phylo):
    A, d = phylo
    fit = mf.lmer("y ~ x + (1 + x | gr(phylo, cov = A))", d, reml=False, data2={"A": A})
    sd, rho, sig, ll = dense_fit(d, A, slope=True, reml=False)
    vc = fit.varcorr()
    assert list(vc.sdcor[:2]) == pytest.approx(list(sd), rel=1e-4)
    assert vc.sdcor[2] == pytest.approx(rho, abs=1e-4)
    assert fit.sigma == pytest.approx(sig, rel=1e-5)
    assert fit.logLik == pytest.approx(ll, abs=1e-6)
    # b̂ are the effects on the levels (L_A applied): E[b | y] of the dense model
    assert fit.ranef()["phylo"].shape == (30, 2)
    assert "Known covariance: phylo ~ A (30 x 30 across levels)" in fit.summary()
    with pytest.raises(NotImplementedError, match="bootstrap.*gr\\(cov"):
        fit.bootstrap(10)
    with pytest.raises(NotImplementedError, match="R².*gr\\(cov"):
        fit.r2()
    with pytest.raises(ValueError, match="Kenward-Roger.*gr\\(cov"):
        mf.lmer("y ~ x + (1 + x | gr(phylo, cov = A))", d, data2={"A": A}).coef_table(
            "kenward-roger")


def test_identity_matrix_is_ordinary_lmer(phylo):
    """A = I: the model is (1 | phylo); the dense system gives lme4's blocked answer."""
    A, d = phylo
    eye = pd.DataFrame(np.eye(len(A)), index=A.index, columns=A.index)
    a = mf.lmer("y ~ x + (1 + x | gr(phylo, cov = A))", d, data2={"A": eye})
    b = mf.lmer("y ~ x + (1 + x | phylo)", d)
    assert a.logLik == pytest.approx(b.logLik, abs=1e-6)
    assert np.allclose(a.beta, b.beta, atol=1e-6)


# -- Bayesian ------------------------------------------------------------------------------------
def test_engine_routes_to_structured_marginal(phylo):
    """"auto" integrates u out through the dense (J q) system (tests/test_marginal_structured.py);
    the conditional engine on request; LOO over groups refuses (levels are correlated)."""
    A, d = phylo
    m = mf.Model("y ~ x + (1 | gr(phylo, cov = A))", d, data2={"A": A})
    assert m.likelihood == "marginal"
    assert "gr(cov = ...)" in m.engine_note and "dense 30 x 30" in m.engine_note
    m = mf.Model("y ~ x + (1 | gr(phylo, cov = A))", d, data2={"A": A}, likelihood="conditional")
    assert m.likelihood == "conditional"
    with pytest.raises(MixedFormulaError, match="student"):
        mf.Model("y ~ x + (1 | gr(phylo, cov = A))", d, data2={"A": A}, family="student",
                 likelihood="marginal")


@pytest.mark.parametrize("likelihood", ["conditional", "marginal"])
def test_bayesian_matches_brms(phylo, likelihood):
    """Posterior means within 0.2 posterior sd of brms 2.18 (4 x 1000 draws each side: the
    Monte-Carlo error of a difference of means is about 0.03 posterior sd)."""
    A, d = phylo
    ref = json.load(open(os.path.join(HERE, "data", "known_cov_brms.json")))["intercept"]
    fit = mf.fit("y ~ x + (1 | gr(phylo, cov = A))", d, data2={"A": A}, draws=1000,
                 likelihood=likelihood,
                 tune=1000, chains=4, seed=3, progressbar=False)
    assert fit.likelihood == likelihood
    post = fit.idata.posterior
    for name in ("b_Intercept", "b_x", "sd_phylo__Intercept", "sigma"):
        m = float(post[name].mean())
        assert abs(m - ref[name]["mean"]) < 0.2 * ref[name]["sd"], (name, m, ref[name])
    assert post["r_phylo"].shape[-2:] == (30, 1)


@pytest.mark.parametrize("likelihood", ["conditional", "marginal"])
def test_bayesian_slope_matches_brms(phylo, likelihood):
    """(1 + x | gr(phylo, cov = A)): Cov(vec u) = A ⊗ Σ as brms (posterior means within 0.2
    posterior sd of brms 2.18's, 4 x 1000 draws each)."""
    A, d = phylo
    ref = json.load(open(os.path.join(HERE, "data", "known_cov_brms.json")))["slope"]
    fit = mf.fit("y ~ x + (1 + x | gr(phylo, cov = A))", d, data2={"A": A}, draws=1000,
                 likelihood=likelihood,
                 tune=1000, chains=4, seed=5, progressbar=False)
    assert fit.likelihood == likelihood
    post = fit.idata.posterior
    for name in ("b_Intercept", "b_x", "sd_phylo__Intercept", "sd_phylo__x",
                 "cor_phylo__Intercept__x", "sigma"):
        m = float(post[name].mean())
        assert abs(m - ref[name]["mean"]) < 0.2 * ref[name]["sd"], (name, m, ref[name])
