"""brms' residual autocorrelation terms ar() and cosy() (issue 23), Bayesian side.

References: the log density against hand transcriptions (the lagged-residual recursion of
brms' Stan code for ar(), scipy's multivariate normal per group for cosy()), brms 2.18
posteriors (tests/data/brms_autocor.json, tests/data/r/brms_autocor.R), brms' own rules for
bad input (make_standata: unique time points within groups; gaps in time ignored).
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedformula as mf
from mixedformula.design import design_matrices
from mixedformula.errors import DataError, FamilyError, FormulaError
from sim import py_mode

DATA = Path(__file__).parent / "data"


def _data(seed=0, G=6, T=5):
    rng = np.random.default_rng(seed)
    d = pd.DataFrame({"time": np.tile(np.arange(1, T + 1), G) * 1.0,
                      "g": np.repeat([f"s{j}" for j in range(G)], T)})
    d["x"] = rng.normal(size=len(d))
    d["y"] = 1 + 0.5 * d.x + rng.normal(size=len(d))
    d = d.drop(index=[3, 7, 12]).sample(frac=1.0, random_state=1)   # gaps, shuffled order
    return d


def _points(model, rng, k=4):
    point = model.initial_point()
    return [{n: rng.normal(size=np.shape(v)) * 0.7 for n, v in point.items()}
            for _ in range(k)]


def _value(model, p, name):
    """The constrained value of ``name`` at the unconstrained point ``p``."""
    rv = model[name]
    tr = model.rvs_to_transforms.get(rv)
    key = rv.name if tr is None else f"{rv.name}_{tr.name}__"
    val = np.asarray(p[key])
    if tr is None:
        return val
    return np.asarray(tr.backward(val, *rv.owner.inputs).eval())


def _jacobian_free_logp(model):
    return model.compile_logp(jacobian=False, mode=py_mode())


def test_brms_lag_structure():
    """brms' make_standata on y ~ x + ar(time, g, p = 2), time = 1 2 4 7 3 | 1 2 5 (groups a, b):
    J_lag 1 2 2 2 0 1 2 0 in (g, time) order: the lag is the previous row in time order,
    gaps ignored."""
    d = pd.DataFrame({"y": np.arange(8.0), "x": 1.0, "time": [1, 2, 4, 7, 3, 1, 2, 5],
                      "g": list("aaaaabbb")})
    s = design_matrices("y ~ x + ar(time, g, p = 2)", d).autocor
    assert s.order.tolist() == [0, 1, 4, 2, 3, 5, 6, 7]
    sorted_lags = s.lags[s.order]
    # brms fills Err[n + 1, i] for i <= J_lag[n]: row n has min(pos, p) lags
    assert ((sorted_lags >= 0).sum(axis=1)).tolist() == [0, 1, 2, 2, 2, 0, 1, 2]
    assert s.lags[2].tolist() == [4, 1]           # time 4: lags time 3 (row 4), time 2 (row 1)


@pytest.mark.parametrize("p", [1, 2])
def test_ar_logp_matches_recursion(p):
    """(Relative 1e-10: the two sums differ by float rounding, ~2e-9 on -61.)
    Model log density (without Jacobian) = brms' Stan recursion written out: rows sorted by
    (g, time); err = y − η; μ_n = η_n + Σ_k ar_k err_{n−k} within the group; normal_lpdf;
    plus the priors' log densities evaluated by scipy."""
    d = _data()
    m = mf.Model(f"y ~ x + ar(time, g, p = {p})", d)
    model = m.pymc_model
    f = _jacobian_free_logp(model)
    rng = np.random.default_rng(p)
    y = d.y.to_numpy()
    X = np.column_stack([np.ones(len(d)), d.x.to_numpy()])
    prior_icpt = [r for r in m.built.priors.rows if r.class_ == "Intercept"][0]
    for pt_ in _points(model, rng):
        ar = _value(model, pt_, "ar")
        sigma = float(_value(model, pt_, "sigma"))
        icpt = float(_value(model, pt_, "Intercept"))
        b = np.atleast_1d(_value(model, pt_, "b"))
        beta0 = icpt - b[0] * d.x.mean()
        eta = X @ np.r_[beta0, b]
        lp = 0.0
        for g, rows in d.groupby("g").groups.items():
            idx = d.index.get_indexer(d.loc[rows].sort_values("time").index)
            err = []
            for n in idx:
                mu = eta[n] + sum(ar[k] * err[-1 - k] for k in range(p) if len(err) > k)
                lp += stats.norm.logpdf(y[n], mu, sigma)
                err.append(y[n] - eta[n])
        # priors: Intercept student_t(3, loc, scale), sigma half student_t(3, 0, s), flat b, ar
        pi = prior_icpt.prior.args
        lp += stats.t.logpdf(icpt, pi[0], pi[1], pi[2])
        ps = [r for r in m.built.priors.rows if r.class_ == "sigma"][0].prior.args
        lp += stats.t.logpdf(sigma, ps[0], ps[1], ps[2]) + np.log(2)
        assert f(pt_) == pytest.approx(lp, rel=1e-10)


def test_cosy_logp_matches_scipy_mvn():
    """Model log density = Σ_groups log N(y_g; η_g, σ²[(1 − ρ)I + ρ11ᵀ]) (scipy) + priors."""
    d = _data(3)
    m = mf.Model("y ~ x + cosy(time, g)", d)
    model = m.pymc_model
    f = _jacobian_free_logp(model)
    rng = np.random.default_rng(5)
    y = d.y.to_numpy()
    X = np.column_stack([np.ones(len(d)), d.x.to_numpy()])
    for pt_ in _points(model, rng):
        rho = float(_value(model, pt_, "cosy"))
        sigma = float(_value(model, pt_, "sigma"))
        icpt = float(_value(model, pt_, "Intercept"))
        b = np.atleast_1d(_value(model, pt_, "b"))
        eta = X @ np.r_[icpt - b[0] * d.x.mean(), b]
        lp = 0.0
        for g, rows in d.groupby("g").groups.items():
            idx = d.index.get_indexer(rows)
            nj = len(idx)
            S = sigma ** 2 * ((1 - rho) * np.eye(nj) + rho * np.ones((nj, nj)))
            lp += stats.multivariate_normal(eta[idx], S).logpdf(y[idx])
        pi = [r for r in m.built.priors.rows if r.class_ == "Intercept"][0].prior.args
        lp += stats.t.logpdf(icpt, pi[0], pi[1], pi[2])
        ps = [r for r in m.built.priors.rows if r.class_ == "sigma"][0].prior.args
        lp += stats.t.logpdf(sigma, ps[0], ps[1], ps[2]) + np.log(2)
        lp += stats.uniform.logpdf(rho)                          # brms: flat on (0, 1)
        assert f(pt_) == pytest.approx(lp, rel=1e-10)


# --------------------------------------------------------------------------- bad input

def _small():
    return pd.DataFrame({"y": [0.1, 0.5, -0.2, 1.0, 0.3, 0.7], "x": [1.0, 2, 3, 4, 5, 6],
                         "t": [1, 2, 3, 1, 2, 3], "g": list("aaabbb")})


def test_duplicated_time_within_group_refused():
    d = _small()
    d.loc[2, "t"] = 1            # group a has time 1 twice
    with pytest.raises(DataError, match=r"1 row\(s\) of ar\(t, g\) repeat a time point.*"
                                         r"group 'a'.*must be unique"):
        design_matrices("y ~ x + ar(t, g)", d)
    with pytest.raises(DataError, match="must be unique"):
        design_matrices("y ~ x + cosy(t, g)", d)
    # the same time in different groups is fine
    design_matrices("y ~ x + ar(t, g)", _small())


def test_time_must_be_numeric_non_integer_times_are_sorted():
    """brms (make_standata) sorts the time values and accepts non-integer ones (checked with
    time 1.5); a text column would sort as text ("10" < "2"): refused."""
    d = _small()
    d["t"] = [1.0, 2.5, 2.0, 1, 2, 3]
    s = design_matrices("y ~ x + ar(t, g)", d).autocor
    assert s.order.tolist()[:3] == [0, 2, 1]
    d["t"] = ["1", "2", "10", "1", "2", "3"]
    with pytest.raises(DataError, match="time variable 't' of ar\\(t, g\\) must be numeric"):
        design_matrices("y ~ x + ar(t, g)", d)


def test_missing_columns_and_missing_values():
    with pytest.raises(FormulaError, match="column 'grp' is not in the data"):
        design_matrices("y ~ x + ar(t, grp)", _small())
    with pytest.raises(FormulaError, match="column 'time' is not in the data"):
        design_matrices("y ~ x + cosy(time, g)", _small())
    d = _small()
    d.loc[1, "g"] = None          # brms drops rows with NA in gr or time, with a warning
    with pytest.warns(UserWarning, match="1 of 6 rows have missing values in g"):
        D = design_matrices("y ~ x + ar(t, g)", d)
    assert D.nobs == 5 and D.autocor.lags[:, 0].tolist() == [-1, 0, -1, 2, 3]


@pytest.mark.parametrize("formula, message", [
    ("y ~ x + arma(t, g, p = 0, q = 0)", "at least one of p and q"),  # arma(): tests/test_arma.py
    ("y ~ x + ar(t, g, p = 2, cov = TRUE)", "cov = TRUE"),   # p <= 1: tests/test_arma_cov.py
    ("y ~ x + ar(t, g, p = 1.5)", "whole number"),
    ("y ~ x + ar(t, g) + cosy(t, g)", "only one autocorrelation term"),
    ("mvbind(y, x) ~ ar(t, g)", "multivariate"),
    ("y ~ x + car(M, g)", "car\\(\\) residual structure is not supported"),
    ("y ~ x + ar(t + 1, g)", "takes a column name"),
    ("y ~ x - ar(t, g)", "cannot be removed"),
])
def test_formula_refusals(formula, message):
    with pytest.raises(FormulaError, match=message):
        mf.parse(formula) if hasattr(mf, "parse") else design_matrices(formula, _small())


@pytest.mark.parametrize("family, term", [("poisson", "ar(t, g)"), ("bernoulli", "ar(t, g)"),
                                          ("student", "cosy(t, g)")])
def test_family_refusals(family, term):
    d = _small()
    d["y"] = [0, 1, 0, 1, 1, 0]
    with pytest.raises(FamilyError, match=f"{term.replace('(', '.').replace(')', '.')} is "
                                          f"supported for the gaussian"):
        _ = mf.Model(f"y ~ x + {term}", d, family=family).pymc_model


def test_engines():
    """With group terms "auto" takes the structured marginal engine (u and the AR residuals
    integrated out exactly, tests/test_marginal_structured.py); without group terms the
    conditional one (pointwise LOO); the marginal engine refuses non-Gaussian families.
    lmer fits cosy()."""
    d = _data()
    m = mf.Model("y ~ x + ar(time, g) + (1 | g)", d)
    assert m.likelihood == "marginal" and m.engine.statistics == "structured"
    assert "ar(time, g) residuals exact" in m.engine_note
    assert mf.Model("y ~ x + ar(time, g)", d).likelihood == "conditional"
    assert mf.Model("y ~ x + ar(time, g)", d, likelihood="marginal").likelihood == "marginal"
    m = mf.Model("y ~ x + ar(time, g) + (1 | g)", d, likelihood="conditional")
    assert m.likelihood == "conditional"
    with pytest.raises(mf.MixedFormulaError if hasattr(mf, "MixedFormulaError") else Exception,
                       match="marginal likelihood does not apply.*student"):
        mf.Model("y ~ x + ar(time, g) + (1 | g)", d, family="student", likelihood="marginal")
    fit = mf.lmer("y ~ x + cosy(time, g) + (1 | g)", d)          # lmer: nlme's corCompSymm
    assert fit.residual_corr is not None and np.isfinite(fit.residual_rho)


# --------------------------------------------------------------------------- brms 2.18

BRMS = json.loads((DATA / "brms_autocor.json").read_text())
FORMULAS = {"ar1": "y_ar ~ x + ar(time, g)", "ar2": "y_ar ~ x + ar(time, g, p = 2)",
            "cosy": "y_cs ~ x + cosy(time, g)"}


@pytest.fixture(scope="module")
def autocor_data():
    return pd.read_csv(DATA / "brms_autocor.csv")


@pytest.fixture(scope="module")
def fits(autocor_data):
    return {k: mf.fit(f, autocor_data, chains=2, draws=1000, tune=1000, seed=11)
            for k, f in FORMULAS.items()}


@pytest.mark.parametrize("key", list(FORMULAS))
def test_posterior_matches_brms(fits, key):
    """Posterior means within 0.2 posterior sd of brms' (4 x 2000 draws, MCSE/sd <= 0.016).
    Ours: 2 x 1000 draws, ESS >= 400 asserted (measured 1100-4000), so the MC error of the
    difference is <= sqrt(1/400 + 0.016²) = 0.053 sd: 0.2 sd is 3.8 of those, a false failure
    rate <= 1.5e-4 per parameter, 2e-3 over the 13 (Bonferroni), any seed. Measured:
    |mean − brms| / sd <= 0.044 (ar1), 0.022 (ar2), 0.059 (cosy) at seed 11."""
    import arviz as az
    post = fits[key].idata.posterior
    ref = BRMS[key]["pars"]
    assert set(ref) <= set(post.data_vars)
    for name, r in ref.items():
        x = post[name].values
        ess = float(az.ess(x))
        assert ess >= 400, (name, ess)
        assert abs(x.mean() - r["mean"]) <= 0.2 * r["sd"], (name, x.mean(), r)
        assert abs(x.std() - r["sd"]) <= 0.15 * r["sd"], (name, x.std(), r)


def test_ar_fitted_values(fits, autocor_data):
    """predict(kind='epred') on the fitted rows = the posterior mean of
    η_n + ar[1] (y − η)_{previous row of the group in time}, transcribed with pandas from the
    draws; and it matches brms' fitted() (returned in the data order) within 0.2 posterior sd at
    every row (measured: max 0.048 sd; MC error of the difference ~0.03 sd)."""
    fit, d = fits["ar1"], autocor_data
    post = fit.idata.posterior
    flat = {k: post[k].values.ravel() for k in ("b_Intercept", "b_x", "ar[1]")}
    eta = flat["b_Intercept"][:, None] + flat["b_x"][:, None] * d.x.to_numpy()[None, :]
    e = d.y_ar.to_numpy()[None, :] - eta
    srt = d.assign(row=np.arange(len(d))).sort_values(["g", "time"])
    prev = srt.groupby("g").row.shift(1)
    lag = np.zeros_like(e)
    has = prev.notna().to_numpy()
    lag[:, srt.row.to_numpy()[has]] = e[:, prev.to_numpy()[has].astype(int)]
    mu = eta + flat["ar[1]"][:, None] * lag
    ours = fit.predict(kind="epred")
    ours = np.asarray(ours).reshape(mu.shape[0], -1)
    np.testing.assert_allclose(ours, mu, rtol=1e-12, atol=1e-12)
    brms_mu = np.asarray(BRMS["ar1_fitted"]["mu_mean"])       # brms returns the data order
    assert np.all(np.abs(mu.mean(axis=0) - brms_mu) <= 0.2 * mu.std(axis=0))
    with pytest.raises(DataError, match="new data of a model with ar\\(time, g\\)"):
        # new rows without their response (brms would draw it: refused; with it, see
        # tests/test_ar_newdata.py)
        fit.predict(newdata=d.iloc[:5].drop(columns=["y_ar"]))


def test_summary_and_round_trip(fits, tmp_path):
    fit = fits["ar1"]
    text = str(fit.summary())
    lines = text.splitlines()
    i = lines.index("Correlation Structures:")
    assert lines[i + 2].startswith("ar[1] ")
    assert lines.index("Regression Coefficients:") > i
    path = mf.save(fit, tmp_path / "ar.nc")
    back = mf.load(path)
    np.testing.assert_array_equal(back.idata.posterior["ar[1]"].values,
                                  fit.idata.posterior["ar[1]"].values)
    assert str(back.summary()) == text
    np.testing.assert_allclose(np.asarray(back.predict(kind="epred")),
                               np.asarray(fit.predict(kind="epred")), rtol=1e-12)
    cs = fits["cosy"]
    assert "Correlation Structures:" in str(cs.summary())
    with pytest.raises(mf.MixedFormulaError, match="rows do not factorize"):
        cs.loo()
    draws = np.asarray(cs.predict(kind="response", seed=1))
    assert np.all(np.isfinite(draws))


def test_student_ar_likelihood_term():
    """family = student: y's log density (the likelihood term alone) = Σ log t_ν(y_n; μ_n, σ)
    with μ from the same recursion (brms: student_t_lpdf(Y | nu, mu, sigma))."""
    d = _data(7)
    m = mf.Model("y ~ x + ar(time, g, p = 2)", d, family="student")
    model = m.pymc_model
    f = model.compile_logp(vars=[model["y"]], jacobian=False, mode=py_mode())
    rng = np.random.default_rng(9)
    y = d.y.to_numpy()
    for pt_ in _points(model, rng, 3):
        ar = _value(model, pt_, "ar")
        sigma, nu = float(_value(model, pt_, "sigma")), float(_value(model, pt_, "nu"))
        icpt = float(_value(model, pt_, "Intercept"))
        b = np.atleast_1d(_value(model, pt_, "b"))
        eta = icpt - b[0] * d.x.mean() + b[0] * d.x.to_numpy()
        lp = 0.0
        for g, rows in d.groupby("g").groups.items():
            idx = d.index.get_indexer(d.loc[rows].sort_values("time").index)
            err = []
            for n in idx:
                mu = eta[n] + sum(ar[k] * err[-1 - k] for k in range(2) if len(err) > k)
                lp += stats.t.logpdf(y[n], nu, mu, sigma)
                err.append(y[n] - eta[n])
        assert f(pt_) == pytest.approx(lp, rel=1e-10)


def test_priors_and_dask_refusal():
    """brms' get_prior: ar (flat), no bounds; cosy (flat) lb 0, ub 1; a user prior on ar is
    used; a Dask frame (marginal statistics only) is refused before any pass."""
    from mixedformula.engine import dask_refusal
    from mixedformula.families import get_family
    d = _data()
    ps = mf.Model("y ~ x + cosy(time, g)", d).prior_summary()
    row = ps[ps["class"] == "cosy"].iloc[0]
    assert (row["prior"], row["lb"], row["ub"]) == ("(flat)", "0", "1")
    m = mf.Model("y ~ x + ar(time, g, p = 2)", d,
                 priors=[mf.prior("normal(0, 0.5)", class_="ar")])
    ps = m.prior_summary()
    row = ps[ps["class"] == "ar"].iloc[0]
    assert (row["prior"], row["lb"], row["ub"], row["source"]) == ("normal(0, 0.5)", "", "",
                                                                    "user")
    why = dask_refusal(mf.parse("y ~ x + ar(time, g) + (1 | g)"), get_family("gaussian"))
    assert "ar(time, g)" in why and "not reduced from a Dask DataFrame" in why


def test_cosy_response_draws_are_compound_symmetric(fits, autocor_data):
    """Response draws of the cosy fit: (y − μ)/σ has variance 1 and, for two rows of one group,
    mean product E[cosy] (brms draws the group's MVN jointly). Averaged over 2000 draws and
    ~1200 within-group pairs: sd of the pair average ≈ sqrt(2 ρ² / 30 / 2000) ≈ 0.002,
    tolerance 0.02 (10 sd)."""
    fit = fits["cosy"]
    yd = np.asarray(fit.predict(kind="response", seed=3)).reshape(2000, -1)
    mu = np.asarray(fit.predict(kind="epred")).reshape(2000, -1)
    sig = fit.idata.posterior["sigma"].values.ravel()[:, None]
    z = (yd - mu) / sig
    g = autocor_data.g.to_numpy()
    same = (g[:, None] == g[None, :]) & ~np.eye(len(g), dtype=bool)
    i, j = np.nonzero(np.triu(same))
    rho = fit.idata.posterior["cosy"].values.mean()
    assert abs((z[:, i] * z[:, j]).mean() - rho) < 0.02
    assert abs((z ** 2).mean() - 1.0) < 0.02
