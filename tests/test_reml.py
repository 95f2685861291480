"""mf.lmer: REML/ML point estimates against lme4 (reference values from lme4 1.1-31) and against a
brute-force dense N × N (restricted) likelihood on simulated nested, crossed and categorical data.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import mixedformula as mf
from mixedformula.errors import DataError, FormulaError

CASES = {
    "sleepstudy_corr": ("sleepstudy", True),
    "sleepstudy_corr_ml": ("sleepstudy", False),
    "sleepstudy_uncorr": ("sleepstudy", True),
    "sleepstudy_intercept": ("sleepstudy", True),
    "dyestuff": ("dyestuff", True),
}
RTOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def one_blas_thread():
    """The dense N × N checks are small: OpenBLAS threads only slow them down (a lot on a
    loaded 2-core machine)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, "blas"):
        yield


@pytest.fixture(scope="module")
def lme4_fits(lme4_ref):
    out = {}
    for case, (data_name, reml) in CASES.items():
        ref = lme4_ref[case]
        assert ref["method"] == ("REML" if reml else "ML")
        out[case] = mf.lmer(ref["formula"], mf.datasets.load(data_name), reml=reml,
                            data_name=data_name)
    return out


def close(actual, expected, scale, rtol=RTOL):
    """|a − e| ≤ rtol · max(|e|, scale): relative, absolute (rtol · scale) near zero."""
    return abs(actual - expected) <= rtol * max(abs(expected), scale)


# --------------------------------------------------------------------------- lme4 references
@pytest.mark.parametrize("case", sorted(CASES))
def test_fixef_and_se_match_lme4(case, lme4_ref, lme4_fits):
    ref, fit = lme4_ref[case], lme4_fits[case]
    fe = fit.fixef()
    assert list(fe.index) == list(ref["fixef"])
    assert list(fe.columns[:2]) == ["Estimate", "Std. Error"]
    for name, v in ref["fixef"].items():
        assert close(fe.loc[name, "Estimate"], v, 0), (name, fe.loc[name, "Estimate"], v)
    for name, v in ref["fixef_se"].items():
        assert close(fe.loc[name, "Std. Error"], v, 0), (name, fe.loc[name, "Std. Error"], v)


@pytest.mark.parametrize("case", sorted(CASES))
def test_varcorr_sigma_theta_match_lme4(case, lme4_ref, lme4_fits):
    ref, fit = lme4_ref[case], lme4_fits[case]
    vc = fit.varcorr()
    assert list(vc.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    assert len(vc) == len(ref["varcorr"])
    for (_, row), r in zip(vc.iterrows(), ref["varcorr"]):
        assert row["grp"] == r["grp"]
        assert row["var1"] == r["var1"] or (row["var1"] is None and r["var1"] is None)
        assert row["var2"] == r["var2"] or (row["var2"] is None and r["var2"] is None)
        assert close(row["vcov"], r["vcov"], 0), (row.to_dict(), r)
        assert close(row["sdcor"], r["sdcor"], 0), (row.to_dict(), r)
    assert vc.iloc[-1]["grp"] == "Residual"
    assert close(fit.sigma, ref["sigma"], 0)
    assert list(fit.theta.index) == list(ref["theta"])
    for name, v in ref["theta"].items():
        assert close(fit.theta[name], v, 1e-2), (name, fit.theta[name], v)


@pytest.mark.parametrize("case", sorted(CASES))
def test_criterion_and_loglik_match_lme4(case, lme4_ref, lme4_fits):
    ref, fit = lme4_ref[case], lme4_fits[case]
    crit = fit.reml_criterion if ref["method"] == "REML" else fit.deviance
    assert abs(crit - ref["deviance_or_REMLcrit"]) < 1e-3
    assert abs(fit.logLik - ref["logLik"]) < 1e-3
    # our optimum is at least as good as lme4's
    assert crit <= ref["deviance_or_REMLcrit"] + 1e-7
    assert fit.nobs == ref["nobs"]
    assert fit.ngrps == ref["ngrps"]


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if c != "sleepstudy_corr_ml"])
def test_ranef_match_lme4(case, lme4_ref, lme4_fits):
    ref, fit = lme4_ref[case], lme4_fits[case]
    re = fit.ranef()
    assert set(re) == set(ref["ranef"])
    for grp, rows in ref["ranef"].items():
        df = re[grp]
        coefs = [c for c in rows[0] if c not in ("level", "_row")]
        assert list(df.columns) == coefs
        assert list(df.index) == [r["level"] for r in rows]
        for c in coefs:
            scale = np.std([r[c] for r in rows])
            for r in rows:
                assert close(df.loc[r["level"], c], r[c], scale), (grp, r["level"], c)


def test_summary_prints_like_lme4(lme4_fits):
    text = str(lme4_fits["sleepstudy_corr"])
    assert text.startswith("Linear mixed model fit by REML ['lmerMod']\n"
                           "Formula: Reaction ~ Days + (Days | Subject)\n   Data: sleepstudy")
    assert "REML criterion at convergence: 1743.6" in text
    assert " Groups   Name        Variance Std.Dev. Corr" in text
    assert "          Days         35.07    5.922   0.07" in text
    assert " Residual             654.94   25.592" in text
    assert "Number of obs: 180, groups:  Subject, 18" in text
    assert ("Fixed effects:\n            Estimate Std. Error t value\n"
            "(Intercept)  251.405      6.825  36.838\n"
            "Days          10.467      1.546   6.771") in text
    assert "-3.9536 -0.4634  0.0231  0.4634  5.1793" in text
    ml = str(lme4_fits["sleepstudy_corr_ml"])
    assert ml.startswith("Linear mixed model fit by maximum likelihood  ['lmerMod']")
    assert ("     AIC      BIC   logLik deviance df.resid \n"
            "  1763.9   1783.1   -876.0   1751.9      174 ") in ml
    unc = str(lme4_fits["sleepstudy_uncorr"])
    assert " Subject.1 Days         35.86    5.988  " in unc
    dye = str(lme4_fits["dyestuff"])
    assert " Batch    (Intercept) 1764     42.00   " in dye
    assert "(Intercept)  1527.50      19.38    78.8" in dye


def test_uncorrelated_equals_separate_terms(sleepstudy):
    a = mf.lmer("Reaction ~ Days + (Days || Subject)", sleepstudy)
    b = mf.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleepstudy)
    assert abs(a.reml_criterion - b.reml_criterion) < 1e-7
    np.testing.assert_allclose(a.theta.to_numpy(), b.theta.to_numpy(), rtol=1e-5)
    pd.testing.assert_frame_equal(a.varcorr(), b.varcorr(), rtol=1e-5)
    pd.testing.assert_frame_equal(a.ranef()["Subject"], b.ranef()["Subject"], rtol=1e-4)


# --------------------------------------------------------------------------- simulated data
def _sim_nested(seed=11):
    rng = np.random.default_rng(seed)
    g1 = np.repeat(np.arange(8), 24)
    g2 = np.tile(np.repeat(np.arange(4), 6), 8)
    u1 = rng.normal(0, 2.0, 8)
    u2 = rng.normal(0, 1.0, 32)
    x = rng.normal(size=len(g1))
    y = 5 + 0.5 * x + u1[g1] + u2[g1 * 4 + g2] + rng.normal(0, 1.0, len(g1))
    return pd.DataFrame({"y": y, "x": x, "g1": [f"s{k}" for k in g1],
                         "g2": [f"c{k}" for k in g2]})


def _sim_crossed(seed=12, n=240):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 20, n)
    b = rng.integers(0, 12, n)
    x = rng.normal(size=n)
    ua = rng.normal(0, 1.5, 20)
    sa = rng.normal(0, 0.7, 20)
    ub = rng.normal(0, 1.0, 12)
    y = 1 + 0.3 * x + ua[a] + sa[a] * x + ub[b] + rng.normal(0, 1.0, n)
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{k:02d}" for k in a],
                         "b": [f"b{k:02d}" for k in b]})


def _sim_categorical(seed=13):
    rng = np.random.default_rng(seed)
    J, per = 20, 12
    g = np.repeat(np.arange(J), per)
    f = rng.integers(0, 3, J * per)
    L = np.array([[1.5, 0, 0], [0.6, 0.9, 0], [-0.4, 0.3, 0.8]])
    u = rng.normal(size=(J, 3)) @ L.T
    F = np.column_stack([np.ones(J * per), f == 1, f == 2]).astype(float)
    y = 2 + F @ np.array([0, 1.0, -0.5]) + np.einsum("nq,nq->n", F, u[g]) \
        + rng.normal(0, 1.0, J * per)
    return pd.DataFrame({"y": y, "f": np.array(list("pqr"))[f],
                         "g": [f"g{k:02d}" for k in g]})


def _sim_by(seed=14):
    rng = np.random.default_rng(seed)
    J, per = 16, 10
    g = np.repeat(np.arange(J), per)
    h = (np.arange(J) % 2)[g]
    sd = np.array([[2.0, 0.5], [0.7, 1.2]])      # by-level × (Intercept, x)
    x = rng.normal(size=J * per)
    u = rng.normal(size=(J, 2)) * sd[np.arange(J) % 2]
    y = 1 + 0.5 * x + u[g, 0] + u[g, 1] * x + rng.normal(0, 0.8, J * per)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g],
                         "h": np.array(["A", "B"])[h]})


SIMULATED = {
    "nested": (_sim_nested, "y ~ x + (1 | g1/g2)"),
    "crossed": (_sim_crossed, "y ~ x + (1 | a) + (1 | b)"),
    "crossed_slope": (_sim_crossed, "y ~ x + (x | a) + (1 | b)"),
    "categorical": (_sim_categorical, "y ~ f + (f | g)"),
    "uncorrelated_crossed": (_sim_crossed, "y ~ x + (x || a) + (1 | b)"),
    "by": (_sim_by, "y ~ x + (x | gr(g, by = h))"),
}


def _theta_templates(design, theta):
    """θ → per design term the list of templates T (one per by-level), read independently of
    the package's kernels: lme4 order = terms by decreasing number of levels (stable), per
    template the column-major lower triangle (diagonal only for uncorrelated terms)."""
    order = sorted(range(len(design.terms)), key=lambda k: -design.terms[k].J)
    pos, out = 0, {}
    for k in order:
        t = design.terms[k]
        q = t.q
        nb = len(t.by_levels) if t.by_levels is not None else 1
        idx = ([(r, c) for c in range(q) for r in range(c, q)] if t.correlated
               else [(r, r) for r in range(q)])
        Ts = []
        for _ in range(nb):
            T = np.zeros((q, q))
            for (r, c) in idx:
                T[r, c] = theta[pos]
                pos += 1
            Ts.append(T)
        out[k] = Ts
    assert pos == len(theta)
    return [out[k] for k in range(len(design.terms))]


def _relative_cov(design, theta):
    """Dense G/σ² = blockdiag over terms and levels of T Tᵀ (design order)."""
    from scipy.linalg import block_diag
    blocks = []
    for t, Ts in zip(design.terms, _theta_templates(design, theta)):
        blk = np.zeros(t.J, int) if t.by_codes is None else t.by_codes
        blocks += [Ts[blk[j]] @ Ts[blk[j]].T for j in range(t.J)]
    return block_diag(*blocks)


class DenseMarginal:
    """V = σ² I + Z G Zᵀ built directly from rows: V_ij = Σ_k [g_k(i) = g_k(j)] x_kiᵀ Σ_k x_kj."""

    def __init__(self, design):
        self.X, self.y = design.X, design.y[:, 0]
        self.parts = []
        for t in design.terms:
            same = t.codes[:, None] == t.codes[None, :]
            blk = np.zeros(t.J, int) if t.by_codes is None else np.asarray(t.by_codes)
            row_blk = blk[t.codes]
            masks = [same & (row_blk[:, None] == b) for b in range(blk.max() + 1)]
            self.parts.append((t.X, masks))

    def V(self, covs, s2):
        n = len(self.y)
        V = s2 * np.eye(n)
        for (Xk, masks), mats in zip(self.parts, covs):
            for mask, S in zip(masks, mats):
                V += mask * (Xk @ S @ Xk.T)
        return V

    def neg2ll(self, covs, s2, reml):
        """−2 log-likelihood (ML) or −2 log restricted likelihood (REML, lme4's constant)."""
        X, y = self.X, self.y
        n, p = X.shape
        C = np.linalg.cholesky(self.V(covs, s2))
        Xs, ys = np.linalg.solve(C, X), np.linalg.solve(C, y)
        XtVX = Xs.T @ Xs
        beta = np.linalg.solve(XtVX, Xs.T @ ys)
        val = 2 * np.sum(np.log(np.diag(C))) + np.sum((ys - Xs @ beta) ** 2) \
            + n * math.log(2 * math.pi)
        if reml:
            val += np.linalg.slogdet(XtVX)[1] - p * math.log(2 * math.pi)
        return val, beta


def dense_profiled_deviance(design, theta, reml):
    """lme4's objective from the dense N × N V_θ = I + Z (G/σ²) Zᵀ, σ² profiled out:
    log|V_θ| [+ log|XᵀV_θ⁻¹X|] + ν (1 + log(2π r²/ν)), r² = GLS residual quadratic form,
    ν = n (ML) or n − p (REML)."""
    covs = [[T @ T.T for T in Ts] for Ts in _theta_templates(design, theta)]
    C = np.linalg.cholesky(DenseMarginal(design).V(covs, 1.0))
    n, p = design.X.shape
    Xs, ys = np.linalg.solve(C, design.X), np.linalg.solve(C, design.y[:, 0])
    XtVX = Xs.T @ Xs
    beta = np.linalg.solve(XtVX, Xs.T @ ys)
    r2 = float(np.sum((ys - Xs @ beta) ** 2))
    nu = n - p if reml else n
    val = 2 * np.sum(np.log(np.diag(C))) + nu * (1 + math.log(2 * math.pi * r2 / nu))
    return val + (np.linalg.slogdet(XtVX)[1] if reml else 0.0)


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("case", sorted(SIMULATED))
def test_deviance_equals_dense_at_random_theta(case, reml):
    from mixedformula.linalg import LambdaFactor, PenalizedLS
    from mixedformula.reml import _lmer_terms
    sim, formula = SIMULATED[case]
    design = mf.design_matrices(formula, sim())
    terms = _lmer_terms(design)
    lam = LambdaFactor([t.layout for t in terms])
    pls = PenalizedLS(design.X, design.y[:, 0], [(t.X, t.codes) for t in terms], lam)
    rng = np.random.default_rng(5)
    for _ in range(3):
        theta = np.where(lam.is_diagonal, rng.uniform(0.1, 2.0, lam.n_theta),
                         rng.normal(0, 0.7, lam.n_theta))
        ours = pls.deviance(theta, reml)
        dense = dense_profiled_deviance(design, theta, reml)
        assert abs(ours - dense) <= 1e-8 * abs(dense), (ours, dense)
    # and on the boundary (a variance at zero)
    theta[np.nonzero(lam.is_diagonal)[0][0]] = 0.0
    dense = dense_profiled_deviance(design, theta, reml)
    assert abs(pls.deviance(theta, reml) - dense) <= 1e-8 * abs(dense)


def _brute_force(design, reml):
    """Minimise the dense −2 (restricted) log-likelihood directly over covariance parameters
    (log-Cholesky of each term's Σ per template, log σ; β profiled by GLS) with BFGS."""
    dm = DenseMarginal(design)
    shapes = [(t.q, t.correlated, len(t.by_levels) if t.by_levels is not None else 1)
              for t in design.terms]

    def unpack(psi):
        pos, covs = 0, []
        for q, corr, nb in shapes:
            mats = []
            for _ in range(nb):
                C = np.zeros((q, q))
                idx = ([(r, c) for c in range(q) for r in range(c, q)] if corr
                       else [(r, r) for r in range(q)])
                for (r, c) in idx:
                    C[r, c] = math.exp(psi[pos]) if r == c else psi[pos]
                    pos += 1
                mats.append(C @ C.T)
            covs.append(mats)
        return covs, math.exp(2 * psi[pos])

    def objective(psi):
        return dm.neg2ll(*unpack(psi), reml)[0]

    k = sum((q * (q + 1) // 2 if corr else q) * nb for q, corr, nb in shapes)
    psi0 = np.zeros(k + 1)
    psi0[-1] = math.log(np.std(dm.y) / 2)
    res = minimize(objective, psi0, method="BFGS", options=dict(gtol=1e-6))
    res = minimize(objective, res.x, method="BFGS", options=dict(gtol=1e-7))
    covs, s2 = unpack(res.x)
    return res.fun, covs, math.sqrt(s2), dm.neg2ll(covs, s2, reml)[1]


@pytest.mark.parametrize("reml", [True, False])
@pytest.mark.parametrize("case", ["nested", "crossed", "categorical", "by"])
def test_optimum_matches_brute_force_dense_likelihood(case, reml):
    sim, formula = SIMULATED[case]
    data = sim()
    fit = mf.lmer(formula, data, reml=reml)
    design = fit.design
    best, covs, sigma, beta = _brute_force(design, reml)
    ours = fit.reml_criterion if reml else fit.deviance
    assert ours <= best + 1e-6, (ours, best)        # never worse than the brute force
    assert abs(ours - best) < 1e-5
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-4, atol=1e-4 * np.std(data["y"]))
    assert abs(fit.sigma / sigma - 1) < 1e-3
    # group covariances (σ² T Tᵀ) against the brute-force Σ, term by term (lme4 order)
    ours_T = _theta_templates(design, fit.theta.to_numpy())
    for Ts, mats in zip(ours_T, covs):
        for T, S_bf in zip(Ts, mats):
            S = fit.sigma ** 2 * T @ T.T
            scale = np.sqrt(np.outer(np.diag(S_bf), np.diag(S_bf)))
            np.testing.assert_array_less(np.abs(S - S_bf), 2e-3 * scale + 1e-9)


def test_nested_and_crossed_names_and_ranef():
    fit = mf.lmer("y ~ x + (1 | g1/g2)", _sim_nested())
    vc = fit.varcorr()
    assert list(vc.grp) == ["g1:g2", "g1", "Residual"]          # lme4: more levels first
    assert list(fit.theta.index) == ["g1:g2.(Intercept)", "g1.(Intercept)"]
    assert fit.ngrps == {"g1:g2": 32, "g1": 8}
    re = fit.ranef()
    assert re["g1:g2"].shape == (32, 1) and re["g1"].shape == (8, 1)
    assert "Number of obs: 192, groups:  g1:g2, 32; g1, 8" in str(fit)
    fit = mf.lmer("y ~ f + (f | g)", _sim_categorical())
    assert list(fit.varcorr().var1[:3]) == ["(Intercept)", "fq", "fr"]
    assert list(fit.varcorr().var2[3:6]) == ["fq", "fr", "fr"]
    assert list(fit.fixef().index) == ["(Intercept)", "fq", "fr"]
    text = str(fit)
    assert "Corr" in text and text.count("\n g ") == 1


def test_conditional_modes_solve_penalized_normal_equations():
    """b̂ and β̂ minimise ‖y − Xβ − Zb‖² + σ² bᵀG⁻¹b (Henderson's equations)."""
    fit = mf.lmer("y ~ x + (x | a) + (1 | b)", _sim_crossed())
    d = fit.design
    Z = d.Z.toarray()
    G = _relative_cov(d, fit.theta.to_numpy())
    Gi = np.linalg.inv(G)
    b = np.concatenate([fit.ranef()[t.name].to_numpy().ravel() for t in d.terms])
    r = d.y[:, 0] - d.X @ fit.beta - Z @ b
    np.testing.assert_allclose(Z.T @ r, Gi @ b, atol=1e-8 * np.abs(Z.T @ d.y[:, 0]).max())
    np.testing.assert_allclose(d.X.T @ r, 0, atol=1e-8 * np.abs(d.X.T @ d.y[:, 0]).max())
    np.testing.assert_allclose(fit.residuals(), r, atol=1e-10)


def test_singular_fit_is_reported():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"y": rng.normal(size=60), "g": np.repeat(list("abcdef"), 10)})
    fit = mf.lmer("y ~ 1 + (1 | g)", df)
    assert fit.theta.iloc[0] == 0.0 or fit.is_singular
    assert fit.is_singular
    assert "boundary (singular) fit" in str(fit)
    assert np.isfinite(fit.reml_criterion)
    vc = fit.varcorr()
    assert vc.vcov.iloc[0] < 1e-8


def test_errors_are_clear(sleepstudy):
    df = sleepstudy.assign(R2=sleepstudy.Reaction * 2, D2=sleepstudy.Days * 2)
    with pytest.raises(NotImplementedError, match="univariate"):
        mf.lmer("mvbind(Reaction, R2) ~ Days + (1 | Subject)", df)
    with pytest.raises(FormulaError, match="group term"):
        mf.lmer("Reaction ~ Days", df)
    with pytest.warns(UserWarning, match="rank deficient"):      # lme4: drop and say so
        fit = mf.lmer("Reaction ~ Days + D2 + (1 | Subject)", df)
    assert list(fit.fixef().index) == ["(Intercept)", "Days"]
    with pytest.raises(NotImplementedError, match="Gaussian"):
        mf.lmer("Reaction | trials(D2) ~ Days + (1 | Subject)", df.assign(D2=df.Days + 1000))
    with pytest.raises(NotImplementedError, match="ID"):
        mf.lmer("Reaction ~ Days + (1 | p | Subject) + (0 + Days | p | Subject)", df)
