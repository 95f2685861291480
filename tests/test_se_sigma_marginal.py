"""``y | se(sei, sigma = TRUE)`` with group terms: the group effects integrated out per row
(backends/pymc/partial_marginal.py, R = diag(se² + σ²); issue #18).

References: scipy's dense multivariate normal N(y; Xβ [+ Z_v v] [+ offset], Z G Zᵀ +
diag(se² + σ²)) at random parameter points (1e-9), also per study at posterior draws for the
leave-one-group-out LOO of the single-group-term (marginal) fit; numerical quadrature of brms'
weighted conditional likelihood over each study's effect (weights()); the recovered effects
against the exact dense conditional moments; brms 2.18 (tests/data/brms_se_sigma_group.json and
brms_se_sigma_weights.json from tests/data/r/, multilevel meta-analyses with several effect
sizes per study, the second with weights()).
"""

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import mixedformula as mf
from mixedformula.errors import MixedFormulaError
from sim import dense_Z
from sim import py_mode

HERE = os.path.dirname(__file__)
F1 = "yi | se(sei, sigma = TRUE) ~ xm + (1 | study)"
F2 = "yi | se(sei, sigma = TRUE) ~ xm + (1 + xm | study)"
FX = "yi | se(sei, sigma = TRUE) ~ xm + (1 | study) + (1 | lab)"
FW = "yi | weights(w) + se(sei, sigma = TRUE) ~ xm + (1 | study)"
FO = "yi | se(sei, sigma = TRUE) ~ xm + offset(off) + (1 | study)"


@pytest.fixture(scope="module")
def meta():
    """12 studies × 4 effect sizes, known se in [0.1, 0.4], a crossed lab factor."""
    rng = np.random.default_rng(11)
    J, m = 12, 4
    codes = np.repeat(np.arange(J), m)
    n = J * m
    xm, sei = rng.normal(size=n), rng.uniform(0.1, 0.4, n)
    u = rng.normal(0, 0.4, J)
    yi = 0.3 + 0.2 * xm + u[codes] + rng.normal(0, 0.25, n) + rng.normal(0, sei)
    return pd.DataFrame({"yi": yi, "xm": xm, "sei": sei,
                         "study": [f"s{j:02d}" for j in codes],
                         "lab": rng.choice(["a", "b", "c"], n),
                         "w": rng.uniform(0.2, 3.0, n), "off": rng.normal(0, 0.5, n)})


def _model(formula, data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mf.Model(formula, data, **kw)


# --------------------------------------------------------------------------- engine choice

def test_engine_integrates_the_group_effects_and_says_so(meta):
    """The decision alone (no model is built): mf.Model's specification. One group term: the
    marginal engine (evaluated per row); crossed: the conditional engine with study's
    effects integrated out."""
    for formula in (F1, FW):
        for likelihood in ("auto", "marginal"):
            e = _model(formula, meta, likelihood=likelihood).specification.engine
            assert e.likelihood == "marginal" and e.statistics == "rows" and e.reason == ""
            assert e.integrate is not None and e.integrate.startswith("study")
            assert "se(sigma = TRUE)" in e.note and "no group effect is sampled" in e.note
    assert "and weights()" in _model(FW, meta).specification.engine.note
    crossed = _model(FX, meta).specification.engine
    assert crossed.likelihood == "conditional" and crossed.integrate.startswith("study")
    assert crossed.note.endswith("the other 1 group term(s) sampled")
    with pytest.raises(MixedFormulaError, match="se\\(sigma = TRUE\\)"):
        _model(FX, meta, likelihood="marginal")
    e = _model(F1, meta, likelihood="conditional").specification.engine
    assert e.likelihood == "conditional" and e.integrate is None


# --------------------------------------------------------------------------- log-density

def _points(model, seed, n_points=4):
    pmm = model.built.model
    names = [n for n in pmm.named_vars if n.startswith(("u__", "sd__", "chol__"))]
    outs = pmm.replace_rvs_by_values([pmm["partial_loglik"], pmm["_beta"], pmm["sigma"]]
                                     + [pmm[n] for n in names])
    f = pmm.compile_fn(outs, inputs=pmm.value_vars, on_unused_input="ignore", mode=py_mode())
    rng = np.random.default_rng(seed)
    ip = pmm.initial_point()
    for _ in range(n_points):
        out = f({k: v + rng.normal(0, 0.6, np.shape(v)) for k, v in ip.items()})
        yield out[0], out[1], float(out[2]), dict(zip(names, out[3:]))


@pytest.mark.parametrize("formula", [F1, F2, FX])
def test_integrated_likelihood_equals_dense_gaussian(meta, formula):
    """log N(y; Xβ + Z_lab v, Z G Zᵀ + diag(se² + σ²)) by scipy, rows n = 48."""
    model = _model(formula, meta)
    block = next(b for b in model.built.blocks if b.key == model.built.integrated)
    assert block.group == "study"
    codes = pd.factorize(meta.study, sort=True)[0]
    lab = pd.factorize(meta.lab, sort=True)[0]
    X = np.column_stack([np.ones(len(meta)), meta.xm])
    Zs = dense_Z(codes, X[:, :block.Q], block.J)
    se2 = meta.sei.to_numpy() ** 2
    for pot, beta, sigma, vals in _points(model, 3):
        if block.Q > 1:
            T = np.zeros((2, 2))
            T[np.tril_indices(2)] = vals[f"chol__{block.key}"]
        else:
            T = np.diag(np.ravel(vals[f"sd__{block.key}"]))
        mu = X @ beta
        other = [v for k, v in vals.items() if k.startswith("u__") and block.key not in k]
        if other:
            mu = mu + other[0][lab, 0]
        V = Zs @ np.kron(np.eye(block.J), T @ T.T) @ Zs.T + np.diag(se2 + sigma ** 2)
        ref = stats.multivariate_normal(mu, V).logpdf(meta.yi.to_numpy())
        assert pot == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_weighted_likelihood_integrates_brms_weighted_conditional(meta):
    """weights(w) + se(sei, sigma = TRUE), u integrated out: against brms' weighted
    likelihood Σ_i w_i log N(y_i | x_iβ + u_j, √(se_i² + σ²)) with u_j integrated out
    numerically (scipy.integrate.quad per study against N(u_j; 0, sd²)), weights in
    [0.2, 3]: the identity w log N(r | m, d) = log N(r | m, d/w) + const(σ) is not used."""
    from scipy import integrate
    model = _model(FW, meta)
    assert model.built.integrated.startswith("study") and model.built.likelihood == "marginal"
    codes = pd.factorize(meta.study, sort=True)[0]
    X = np.column_stack([np.ones(len(meta)), meta.xm])
    y, w, se2 = meta.yi.to_numpy(), meta.w.to_numpy(), meta.sei.to_numpy() ** 2
    for pot, beta, sigma, vals in _points(model, 4, n_points=3):
        sd = float(np.ravel(vals[next(k for k in vals if k.startswith("sd__"))])[0])
        r, dv = y - X @ beta, se2 + sigma ** 2
        ref = 0.0
        for j in range(codes.max() + 1):
            rows = codes == j

            def f(u, shift):
                return np.exp(np.sum(w[rows] * stats.norm.logpdf(r[rows], u, np.sqrt(dv[rows])))
                              + stats.norm.logpdf(u, 0, sd) - shift)
            # the integrand's log at its mode as the shift (no underflow)
            grid = np.linspace(-6 * sd - 3, 6 * sd + 3, 4001)
            logs = [np.sum(w[rows] * stats.norm.logpdf(r[rows], g, np.sqrt(dv[rows])))
                    + stats.norm.logpdf(g, 0, sd) for g in grid]
            shift, mode = max(logs), grid[int(np.argmax(logs))]
            val, _ = integrate.quad(f, mode - 12 * sd - 5, mode + 12 * sd + 5, args=(shift,),
                                    points=[mode], epsabs=0, epsrel=1e-13, limit=400)
            ref += np.log(val) + shift
        assert pot == pytest.approx(ref, rel=1e-9, abs=1e-9)


def _logp_points(model, names, seed, n_points=3):
    """(values of ``names``) at random points around the initial point."""
    pmm = model.built.model
    outs = pmm.replace_rvs_by_values([pmm[n] for n in names])
    f = pmm.compile_fn(outs, inputs=pmm.value_vars, on_unused_input="ignore", mode=py_mode())
    rng = np.random.default_rng(seed)
    ip = pmm.initial_point()
    for _ in range(n_points):
        yield f({k: v + rng.normal(0, 0.6, np.shape(v)) for k, v in ip.items()})


@pytest.mark.parametrize("likelihood", ["marginal", "conditional"])
def test_offset_on_both_engines_against_scipy(meta, likelihood):
    """offset(off) + se(sei, sigma = TRUE): the marginal engine's per-row likelihood against
    scipy's N(y; Xβ + off, Z G Zᵀ + diag(se² + σ²)), the conditional engine's observed
    log-density against Σ_i log N(y_i | x_iβ + off_i + u_j, √(se_i² + σ²)) (1e-9)."""
    model = _model(FO, meta, likelihood=likelihood)
    assert model.likelihood == likelihood
    pmm = model.built.model
    key = model.built.blocks[0].key
    codes = pd.factorize(meta.study, sort=True)[0]
    X = np.column_stack([np.ones(len(meta)), meta.xm])
    y, off, se2 = meta.yi.to_numpy(), meta.off.to_numpy(), meta.sei.to_numpy() ** 2
    if likelihood == "marginal":
        names = ["partial_loglik", "_beta", "sigma", f"sd__{key}"]
        for ll, beta, sigma, sd in _logp_points(model, names, 8):
            Zs = dense_Z(codes, X[:, :1], codes.max() + 1)
            V = float(np.ravel(sd)[0]) ** 2 * Zs @ Zs.T + np.diag(se2 + float(sigma) ** 2)
            ref = stats.multivariate_normal(X @ beta + off, V).logpdf(y)
            assert ll == pytest.approx(ref, rel=1e-9, abs=1e-9)
    else:
        names = ["_beta", "sigma", f"u__{key}"]
        obs = pmm.observed_RVs[0]
        lp = pmm.replace_rvs_by_values([pmm.logp(vars=[obs], sum=True)])[0]
        outs = pmm.replace_rvs_by_values([pmm[n] for n in names])
        f = pmm.compile_fn([lp] + outs, inputs=pmm.value_vars, on_unused_input="ignore",
                           mode=py_mode())
        rng = np.random.default_rng(8)
        ip = pmm.initial_point()
        for _ in range(3):
            ll, beta, sigma, u = f({k: v + rng.normal(0, 0.6, np.shape(v))
                                    for k, v in ip.items()})
            mu = X @ beta + off + np.asarray(u)[codes, 0]
            ref = stats.norm.logpdf(y, mu, np.sqrt(se2 + float(sigma) ** 2)).sum()
            assert ll == pytest.approx(ref, rel=1e-9, abs=1e-9)


@pytest.fixture(scope="module")
def offset_fit(meta):
    """One small fit of FO on the marginal engine (per row), reused below."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mf.fit(FO, meta, draws=100, tune=200, chains=2, seed=1, progressbar=False)


def test_marginal_fit_is_labelled_and_gives_group_loo(offset_fit, meta):
    """The fit is the marginal engine's: its label (fit, summary, idata attrs), and its
    default LOO leaves one study out: log p(y_j | β, sd, σ) per study at 20 posterior draws
    against scipy's dense N(y_j; X_jβ + off_j, sd² 11ᵀ + diag(se_j² + σ²)) (1e-9)."""
    fit = offset_fit
    assert fit.likelihood == "marginal"
    assert json.loads(fit.idata.attrs["mixedformula"])["likelihood"] == "marginal"
    text = str(fit.summary())
    assert "marginal (group effects integrated out" in text
    assert "se(sigma = TRUE)" in fit.info["engine_note"]
    lo = fit.loo()
    assert lo.unit == "study" and lo.likelihood == "marginal"
    name = "yi__study__marginal"
    assert lo.var_name == name
    fit.add_log_likelihood()                    # the default kind of a marginal fit: groups
    assert list(fit.idata.log_likelihood.data_vars) == [name]
    ll = fit.idata.log_likelihood[name].values.reshape(-1, 12)
    post = fit.idata.posterior
    b0, b1 = (post[k].values.reshape(-1) for k in ("b_Intercept", "b_xm"))
    sd, sigma = (post[k].values.reshape(-1) for k in ("sd_study__Intercept", "sigma"))
    codes = pd.factorize(meta.study, sort=True)[0]
    y, off, se2 = meta.yi.to_numpy(), meta.off.to_numpy(), meta.sei.to_numpy() ** 2
    for s in np.linspace(0, len(b0) - 1, 20).astype(int):
        for j in range(12):
            rows = codes == j
            mu = b0[s] + b1[s] * meta.xm.to_numpy()[rows] + off[rows]
            V = sd[s] ** 2 + np.diag(se2[rows] + sigma[s] ** 2)
            ref = stats.multivariate_normal(mu, V).logpdf(y[rows])
            assert ll[s, j] == pytest.approx(ref, rel=1e-9, abs=1e-9)
    # ArviZ refuses to mix it with LOO over observations (different variable and dims)
    obs = fit.loo(likelihood="conditional")
    assert obs.unit == "observation"
    with pytest.raises(MixedFormulaError):
        mf.compare({"group": lo, "obs": obs})


def test_saved_marginal_fit_keeps_its_label_and_group_loo(offset_fit, tmp_path):
    """mf.save / mf.load: still the marginal engine's, the same leave-one-study-out LOO."""
    path = str(tmp_path / "fit.nc")
    mf.save(offset_fit, path)
    back = mf.load(path)
    assert back.likelihood == "marginal"
    a, b = offset_fit.loo(), back.loo()
    assert b.unit == "study" and b.elpd == pytest.approx(a.elpd, rel=1e-12)


def test_predict_takes_offset_from_newdata(offset_fit):
    """η for new rows without group effects = b_Intercept + b_xm xm + off, draw by draw."""
    fit = offset_fit
    new = pd.DataFrame({"xm": [0.0, 1.0, -2.0], "off": [0.5, -1.0, 2.0],
                        "sei": [0.2, 0.2, 0.3], "study": ["s00", "s01", "new"]})
    post = fit.idata.posterior
    b0, b1 = (post[k].values.reshape(-1) for k in ("b_Intercept", "b_xm"))
    eta = fit.predict(new, kind="linpred", re_formula="~0")
    hand = b0[:, None] + b1[:, None] * new.xm.to_numpy() + new.off.to_numpy()
    np.testing.assert_allclose(eta, hand, rtol=1e-10)
    u = post["r_study"].values.reshape(len(b0), 12, 1)
    full = fit.predict(new.iloc[:2], kind="linpred")
    np.testing.assert_allclose(full, hand[:, :2] + u[:, :2, 0], rtol=1e-10)


def test_recovered_effects_are_the_exact_conditional(meta):
    """4000 recovered draws of u at one fixed point of (1 + xm | study): mean and variance per
    level against the dense conditional N(G Zᵀ V⁻¹ r, G − G Zᵀ V⁻¹ Z G). z-scores of the
    2 × 2J = 48 checks within the Bonferroni limit Φ⁻¹(1 − 0.01/96) = 3.71: family-wise
    false-failure rate ≤ 1 % (S = 4000 independent draws)."""
    from mixedformula.backends.pymc.partial_marginal import recover_integrated
    built = _model(F2, meta).built
    block = built.blocks[0]
    S = 4000
    beta, sigma = np.array([0.3, 0.2]), 0.3
    T = np.array([[0.5, 0.0], [0.1, 0.2]])

    def rep(a):
        a = np.asarray(a, dtype=float)
        return np.broadcast_to(a, (1, S) + a.shape).copy()

    post = xr.Dataset({"_beta": (("chain", "draw", "b"), rep(beta)),
                       "sigma": (("chain", "draw"), rep(sigma)),
                       f"chol__{block.key}": (("chain", "draw", "p"),
                                              rep(T[np.tril_indices(2)]))})
    u = recover_integrated(built, post, seed=5).reshape(S, block.J * 2)
    X = np.column_stack([np.ones(len(meta)), meta.xm])
    Zs = dense_Z(pd.factorize(meta.study, sort=True)[0], X, block.J)
    G = np.kron(np.eye(block.J), T @ T.T)
    V = Zs @ G @ Zs.T + np.diag(meta.sei.to_numpy() ** 2 + sigma ** 2)
    K = G @ Zs.T @ np.linalg.inv(V)
    mean = K @ (meta.yi.to_numpy() - X @ beta)
    var = np.diag(G - K @ Zs @ G)
    z_mean = (u.mean(0) - mean) / np.sqrt(var / S)
    z_var = (u.var(0, ddof=1) - var) / (var * np.sqrt(2.0 / S))
    assert np.abs(z_mean).max() < 3.71 and np.abs(z_var).max() < 3.71


# --------------------------------------------------------------------------- brms

def _brms_fit(name, seed):
    ref = json.loads(open(os.path.join(HERE, "data", name)).read())
    data = pd.DataFrame(ref["data"])
    priors = [mf.prior("normal(0, 5)"), mf.prior("student_t(3, 0, 2.5)", class_="Intercept"),
              mf.prior("student_t(3, 0, 2.5)", class_="sd"),
              mf.prior("student_t(3, 0, 2.5)", class_="sigma")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit(ref["formula"], data, priors=priors, draws=1000, tune=1000, chains=4,
                     seed=seed, progressbar=False)
    return ref, fit


def _assert_means(ref, fit):
    from sim import assert_means_near_brms
    assert min(ref["ess"].values()) >= 800
    assert_means_near_brms(fit.idata.posterior, ref["mean"], ref["sd"], min_ess=1000)


def test_weighted_posterior_means_match_brms():
    """weights(w) + se(sei, sigma = TRUE) ~ xm + (1 | study) (brms_se_sigma_weights.R, weights
    in [0.5, 2]) on the marginal engine against brms 2.18's conditional fit with brms'
    weighted likelihood; same ESS argument as below (4 checks, each difference of means has
    Monte-Carlo sd ≤ 0.047 posterior sd, 0.2 sd = 4.2 of it: false-failure rate < 1e-4)."""
    ref, fit = _brms_fit("brms_se_sigma_weights.json", 4)
    assert fit.likelihood == "marginal" and "weights()" in fit.info["engine_note"]
    _assert_means(ref, fit)


def test_posterior_means_match_brms():
    """The multilevel meta-analysis of brms_se_sigma_group.R (12 studies × 4 effect sizes)
    fitted with the study effects integrated out, against brms 2.18 (4 × 1000 draws, same
    explicit priors). Our 4 × 1000 draws, bulk ESS ≥ 1000 asserted for every parameter; brms'
    ESS of the means is stored (≥ 800 asserted; 839 for sd_study), so the Monte-Carlo sd of a
    difference of means is ≤ √(1/1000 + 1/800) = 0.047 posterior sd and 0.2 sd is 4.2 of it:
    a correct fit fails one of the 4 checks with probability < 1e-4."""
    ref, fit = _brms_fit("brms_se_sigma_group.json", 3)
    assert fit.info["engine_note"].startswith("se(sigma = TRUE)")
    _assert_means(ref, fit)
    u = fit.idata.posterior["r_study"].values
    assert u.shape[-2:] == (12, 1) and np.all(np.isfinite(u))
    assert np.isfinite(fit.loo().elpd)
