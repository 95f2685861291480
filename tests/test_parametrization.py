"""Centred vs non-centred group effects in the conditional engine (build.py).

The centred form samples v_j = m + u_j ~ N(m, L Lᵀ) (m: the matching fixed coefficients),
the non-centred one z_j ~ N(0, I) with u_j = L z_j; both expose the same ``u__<block>``
deterministic, so everything downstream is unchanged.
"""

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

import mixedformula as mf
from mixedformula.backends.pymc.build import CENTRED_MIN_INFORMATION, choose_parametrization
from mixedformula.errors import MixedFormulaError
from sim import py_mode

TRUTH = {"b_Intercept": -0.4, "b_x": 0.8, "sd_g__Intercept": 0.8, "sd_g__x": 0.4,
         "cor_g__Intercept__x": -0.2}
FORMULA = "y ~ x + (1 + x | g)"
REPORTED = list(TRUTH)


def bernoulli_data(J: int, n_per: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(0.3, 1.0, size=J * n_per),
                       "g": np.repeat([f"s{j:02d}" for j in range(J)], n_per)})
    return mf.simulate(FORMULA, df, TRUTH, family="bernoulli", seed=seed + 1)


@pytest.fixture(scope="module")
def rich():
    return bernoulli_data(J=20, n_per=100)


@pytest.fixture(scope="module")
def fits(rich):
    return {p: mf.fit(FORMULA, rich, family="bernoulli", parametrization=p, draws=300,
                      tune=300, chains=2, seed=7, progressbar=False)
            for p in ("centred", "noncentred")}


# ---------------------------------------------------------------------------- same posterior
def test_same_posterior_within_monte_carlo_error(fits):
    a, b = fits["centred"].idata.posterior, fits["noncentred"].idata.posterior
    assert a["r_g"].dims == b["r_g"].dims
    r_names = []
    for p in (a, b):        # r_g elements of four levels as scalars
        for lev in ["s00", "s07", "s13", "s19"]:
            for c in ["Intercept", "x"]:
                p[f"r_{lev}_{c}"] = p["r_g"].sel(g=lev, g__coef=c)
    r_names = [f"r_{lev}_{c}" for lev in ["s00", "s07", "s13", "s19"] for c in ["Intercept", "x"]]
    names = REPORTED + r_names
    ma, mb = az.mcse(a[names]), az.mcse(b[names])
    for v in names:
        tol = 4 * np.sqrt(float(ma[v]) ** 2 + float(mb[v]) ** 2)
        diff = abs(float(a[v].mean()) - float(b[v].mean()))
        assert diff <= tol, (v, diff, tol)
    # and the posterior sds agree roughly (the sd of a sd has no cheap MCSE here: 25%)
    for v in REPORTED:
        sa, sb = float(a[v].std()), float(b[v].std())
        assert abs(sa - sb) <= 0.25 * max(sa, sb), (v, sa, sb)


def test_choice_recorded(fits):
    c, n = fits["centred"], fits["noncentred"]
    assert c.info["parametrization"] == {"g": "centred"}
    assert n.info["parametrization"] == {"g": "noncentred"}
    assert "group effects centred for g" in str(c.summary())
    assert "centred" not in n.info["engine_note"]


# ---------------------------------------------------------------------------- log density
def _fn(model, outs):
    """Function of a point (value variables) computing ``outs`` (deterministics included)."""
    outs = model.replace_rvs_by_values(outs if isinstance(outs, list) else [outs])
    return model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore",
                            mode=py_mode())


def _point(model_nc, seed=0):
    """A random point of the non-centred model (values of its value variables)."""
    rng = np.random.default_rng(seed)
    ip = model_nc.initial_point()
    return {k: v + rng.normal(0, 0.3, size=np.shape(v)) for k, v in ip.items()}


def test_log_density_change_of_variables_and_scipy():
    df = bernoulli_data(J=6, n_per=15, seed=5)
    m_nc = mf.Model(FORMULA, df, family="bernoulli", parametrization="noncentred").pymc_model
    m_c = mf.Model(FORMULA, df, family="bernoulli", parametrization="centred").pymc_model
    p_nc = _point(m_nc)
    u, beta, std, corr = _fn(m_nc, [m_nc["u__g"], m_nc["_beta"], m_nc["_std__g"],
                                    m_nc["_corr__g"]])(p_nc)
    mean = beta[:2]                       # (Intercept, x) on the original scale
    v = u + mean
    p_c = {k: val for k, val in p_nc.items() if k != "z__g"}
    p_c["v__g"] = v
    cov = np.outer(std, std) * corr
    J = u.shape[0]
    logdet_L = 0.5 * np.linalg.slogdet(cov)[1]
    # v = m + L z: p_v(v) = p_z(z) / |det L| per level
    lp_nc = m_nc.compile_logp(mode=py_mode())(p_nc)
    lp_c = m_c.compile_logp(mode=py_mode())(p_c)
    np.testing.assert_allclose(lp_c, lp_nc - J * logdet_L, rtol=1e-10, atol=1e-8)
    # the two terms by hand (scipy): MvNormal of v and the bernoulli likelihood
    lp_v = m_c.compile_logp(vars=[m_c["v__g"]], mode=py_mode())(p_c)
    np.testing.assert_allclose(
        lp_v, stats.multivariate_normal(mean, cov).logpdf(v).sum(), rtol=1e-10)
    codes = pd.Categorical(df["g"]).codes
    x = df["x"].to_numpy()
    eta = beta[0] + beta[1] * x + u[codes, 0] + u[codes, 1] * x
    lp_y = m_c.compile_logp(vars=[m_c["y"]], mode=py_mode())(p_c)
    np.testing.assert_allclose(lp_y, stats.bernoulli(expit(eta)).logpmf(df["y"]).sum(),
                               rtol=1e-10)
    # the deterministic u is the same function of the point
    u_c = _fn(m_c, m_c["u__g"])(p_c)[0]
    np.testing.assert_allclose(u_c, u, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("formula", ["y ~ x + (1 + x || g)",
                                     "y ~ x + (1 + x | gr(g, by = h))"])
def test_log_density_uncorrelated_and_by_blocks(formula):
    df = bernoulli_data(J=6, n_per=15, seed=6)
    df["h"] = np.where(df["g"].isin(["s00", "s01", "s02"]), "hA", "hB")
    m_nc = mf.Model(formula, df, family="bernoulli", parametrization="noncentred").pymc_model
    m_c = mf.Model(formula, df, family="bernoulli", parametrization="centred").pymc_model
    p_nc = _point(m_nc, seed=1)
    zname = [k for k in p_nc if k.startswith("z__")][0]
    key = zname[3:]
    u, beta = _fn(m_nc, [m_nc[f"u__{key}"], m_nc["_beta"]])(p_nc)
    p_c = {k: val for k, val in p_nc.items() if k != zname}
    p_c[f"v__{key}"] = u + beta[:2]
    # log|det| of u = L_h(j) z_j, level by level: sum of log|diag| of the level's factor
    z = p_nc[zname]
    if "||" in formula:
        sd = u / z
        logdet = np.log(np.abs(sd)).sum()
    else:
        levels = sorted(df["g"].unique())
        by = np.array([0 if lev in ("s00", "s01", "s02") else 1 for lev in levels])
        logdet = 0.0
        for h in (0, 1):
            std, corr = _fn(m_nc, [m_nc[f"_std__{key}__{h}"],
                                   m_nc[f"_corr__{key}__{h}"]])(p_nc)
            logdet += (by == h).sum() * 0.5 * np.linalg.slogdet(np.outer(std, std) * corr)[1]
    np.testing.assert_allclose(m_c.compile_logp(mode=py_mode())(p_c),
                               m_nc.compile_logp(mode=py_mode())(p_nc) - logdet,
                               rtol=1e-10, atol=1e-8)


# ---------------------------------------------------------------------------- the auto rule
def _choice(df, family="bernoulli", formula=FORMULA):
    m = mf.Model(formula, df, family=family)
    return m.parametrization_choice(), m.built.extras["parametrization"]


def test_auto_rule_data_rich_vs_sparse():
    choice, why = _choice(bernoulli_data(J=20, n_per=100))
    assert choice == {"g": "centred"}, why
    choice, why = _choice(bernoulli_data(J=200, n_per=3))
    assert choice == {"g": "noncentred"}, why
    assert "<" in why["g"][1]


def test_auto_rule_statistic():
    """The statistic is the median over levels of min_c Σ_i w_i X_ic² with w = p̄(1-p̄)."""
    df = bernoulli_data(J=10, n_per=40)
    m = mf.Model(FORMULA, df, family="bernoulli")
    blocks = m.built.blocks
    p = df["y"].mean()
    w = p * (1 - p)
    per = df.assign(i0=w, i1=w * df["x"] ** 2).groupby("g")[["i0", "i1"]].sum()
    expect = float(np.median(per.min(axis=1)))
    _, reason = choose_parametrization(m.design, m.family, blocks)[blocks[0].key]
    assert f"{expect:.3g}" in reason
    assert (expect >= CENTRED_MIN_INFORMATION) == (m.parametrization_choice()["g"] == "centred")


def test_auto_keeps_noncentred_for_gaussian_and_forcing_works():
    df = bernoulli_data(J=20, n_per=100)
    df["yc"] = df["y"] + np.random.default_rng(0).normal(size=len(df))
    m = mf.Model("yc ~ x + (1 + x | g)", df, likelihood="conditional")
    assert m.parametrization_choice() == {"g": "noncentred"}
    m = mf.Model("yc ~ x + (1 + x | g)", df, likelihood="conditional",
                 parametrization="centered")
    assert m.parametrization_choice() == {"g": "centred"}
    assert "v__g" in {v.name for v in m.pymc_model.free_RVs}
    m = mf.Model(FORMULA, df, family="bernoulli", parametrization="noncentred")
    assert "z__g" in {v.name for v in m.pymc_model.free_RVs}
    with pytest.raises(MixedFormulaError, match="parametrization must be one of"):
        mf.Model(FORMULA, df, family="bernoulli", parametrization="sideways")


def test_prior_draws_work_centred():
    df = bernoulli_data(J=20, n_per=100)
    m = mf.Model(FORMULA, df, family="bernoulli", parametrization="centred",
                 priors=[mf.prior("normal(0, 1)", class_="b")])
    pp = m.prior_predictive(draws=50, seed=1)
    assert pp.prior["r_g"].shape == (1, 50, 20, 2)
    assert pp.prior_predictive["y"].shape[-1] == len(df)


# ---------------------------------------------------------------------------- downstream
def test_ranef_coef_predict_same_layout(fits, rich):
    c, n = fits["centred"], fits["noncentred"]
    rc, rn = c.ranef(), n.ranef()
    assert list(rc) == list(rn) == ["g"]
    assert rc["g"].shape == rn["g"].shape
    assert list(rc["g"].index) == list(rn["g"].index)
    assert list(rc["g"].columns) == list(rn["g"].columns)
    cc, cn = c.coef(), n.coef()
    assert cc["g"].shape == cn["g"].shape and list(cc["g"].columns) == list(cn["g"].columns)
    for kind in ("linpred", "epred"):
        pc, pn = c.predict(kind=kind), n.predict(kind=kind)
        assert pc.shape == pn.shape == (600, len(rich))
    new = pd.DataFrame({"x": [0.0, 1.0], "g": ["s03", "new"]})
    assert c.predict(new, seed=1).shape == n.predict(new, seed=1).shape == (600, 2)
    assert set(c.idata.posterior.data_vars) == set(n.idata.posterior.data_vars)


def test_save_load_round_trip_keeps_choice(fits, tmp_path):
    fit = fits["centred"]
    path = tmp_path / "centred.nc"
    mf.save(fit, path)
    back = mf.load(path)
    assert back.info["parametrization"] == {"g": "centred"}
    assert str(back.summary()) == str(fit.summary())
    np.testing.assert_allclose(back.ranef()["g"].to_numpy(), fit.ranef()["g"].to_numpy())


def test_centred_models_share_the_compiled_model_cache_key():
    """One op per Q (not a new pm.CustomDist class per model), so a second centred model of the
    same structure reuses the compiled model."""
    from mixedformula.backends.pymc.sampling import structure_key
    df = bernoulli_data(J=20, n_per=100)
    keys = [structure_key(mf.Model(FORMULA, df.copy(), family="bernoulli",
                                   parametrization="centred").pymc_model)[0] for _ in range(2)]
    assert keys[0] == keys[1]


def test_auto_keeps_nested_factors_noncentred():
    """Issue 17 item 11: lme4's grouseticks Poisson model (BROOD nested in LOCATION) was
    centred for both factors and mixed badly (measured at 4 × (1000 + 1000): min bulk ESS 61
    centred vs 444 non-centred, benchmarks/README.md); nested factors are now kept
    non-centred. A single factor (lme4's cbpp) and crossed factors keep the information rule."""
    from pathlib import Path
    data = Path(__file__).parent / "data"
    gt = pd.read_csv(data / "grouseticks.csv", dtype={"BROOD": str, "YEAR": str,
                                                       "LOCATION": str})
    m = mf.Model("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", gt,
                 family="poisson")
    assert m.parametrization_choice() == {"BROOD": "noncentred", "LOCATION": "noncentred"}
    why = choose_parametrization(m.design, m.family, m.built.blocks)
    assert {k: v[1] for k, v in why.items()} == {
        "BROOD": "levels nested with those of LOCATION",
        "LOCATION": "levels nested with those of BROOD"}
    cbpp = pd.read_csv(data / "cbpp.csv", dtype={"herd": str, "period": str})
    m = mf.Model("incidence | trials(size) ~ period + (1 | herd)", cbpp, family="binomial")
    assert m.parametrization_choice() == {"herd": "centred"}
    rng = np.random.default_rng(0)
    crossed = pd.DataFrame({"a": np.tile(list("abcdefgh"), 60),
                            "b": np.repeat([f"q{k}" for k in range(12)], 40),
                            "x": rng.normal(size=480), "y": rng.poisson(5.0, 480)})
    m = mf.Model("y ~ x + (1 | a) + (1 | b)", crossed, family="poisson")
    assert m.parametrization_choice() == {"a": "centred", "b": "centred"}


# ---------------------------------------------------------------------------- per factor
def _crossed_gaussian(seed=2, n_s=30, n_d=12, n_g=4):
    """Small crossed Gaussian data shaped like InstEval: students s × instructors d, each
    instructor in a department g."""
    rng = np.random.default_rng(seed)
    d_g = np.arange(n_d) % n_g
    rows = []
    for s in range(n_s):
        for d in rng.choice(n_d, 4, replace=False):
            rows.append((f"s{s:02d}", f"d{d:02d}", f"g{d_g[d]}", rng.normal()))
    df = pd.DataFrame(rows, columns=["s", "d", "g", "x"])
    return df.assign(y=1.0 + 0.3 * df.x + rng.normal(size=len(df)))


@pytest.mark.parametrize("likelihood", ["partial", "conditional"])
def test_per_factor_parametrization_log_density(likelihood):
    """parametrization={"g": "centred"}: g's effects sampled around the intercept, d's
    non-centred. The log density is the non-centred model's minus the Jacobian J_g log sd_g
    of v = b_Intercept + sd_g z (at random points), and v's prior term is scipy's normal."""
    df = _crossed_gaussian()
    formula = "y ~ x + (1 | s) + (1 | d) + (1 | g)"
    m_nc = mf.Model(formula, df, likelihood=likelihood, parametrization="noncentred")
    m_c = mf.Model(formula, df, likelihood=likelihood, parametrization={"g": "centred"})
    want = {"d": "noncentred", "g": "centred"}
    if likelihood == "conditional":
        assert m_c.parametrization_choice()["s"] == "noncentred"   # auto for a Gaussian
    assert {k: v for k, v in m_c.parametrization_choice().items() if k != "s"} == want
    p_nc_model, p_c_model = m_nc.pymc_model, m_c.pymc_model
    free = {v.name for v in p_c_model.free_RVs}
    assert {"v__g", "z__d"} <= free and "z__g" not in free
    # the partial engine's graph fuses a Composite of more than 32 inputs, which PyTensor's
    # Python linker cannot evaluate (numpy's ufunc limit): the C backend there
    mode = py_mode() if likelihood == "conditional" else None
    lp_nc, lp_c = p_nc_model.compile_logp(mode=mode), p_c_model.compile_logp(mode=mode)
    lp_v = p_c_model.compile_logp(vars=[p_c_model["v__g"]], mode=mode)
    get = _fn(p_nc_model, [p_nc_model["u__g"], p_nc_model["_beta"], p_nc_model["sd__g"]])
    for seed in range(3):
        p_nc = _point(p_nc_model, seed=seed)
        u, beta, sd = get(p_nc)
        sd = float(np.ravel(sd)[0])
        v = u + beta[0]                         # b_Intercept on the original scale
        p_c = {k: val for k, val in p_nc.items() if k != "z__g"}
        p_c["v__g"] = v
        J = u.shape[0]
        np.testing.assert_allclose(lp_c(p_c), lp_nc(p_nc) - J * np.log(sd), rtol=1e-10,
                                   atol=1e-8)
        np.testing.assert_allclose(lp_v(p_c), stats.norm(beta[0], sd).logpdf(v).sum(),
                                   rtol=1e-10)


def test_per_factor_parametrization_names_checked():
    df = _crossed_gaussian()
    with pytest.raises(MixedFormulaError, match="not a grouping factor"):
        mf.Model("y ~ x + (1 | d) + (1 | g)", df, likelihood="conditional",
                 parametrization={"dept": "centred"}).pymc_model
    with pytest.raises(MixedFormulaError, match="parametrization must be one of"):
        mf.Model("y ~ x + (1 | d) + (1 | g)", df, parametrization={"g": "sideways"})


def test_gaussian_information_rule_in_the_partial_engine():
    """The partial engine's Gaussian rule: statistic (ŝ²/σ̂²) · median_j n_j from the one-way
    ANOVA moments of y on the factor (computed here with pandas), centred iff ≥ the
    threshold; the conditional engine's Gaussian models keep non-centred."""
    rng = np.random.default_rng(4)
    n_s, per = 60, 6
    rows = []
    for s in range(n_s):
        for k in range(per):
            rows.append((f"s{s:02d}", f"g{(s + k) % 4}", f"d{rng.integers(30):02d}"))
    df = pd.DataFrame(rows, columns=["s", "g", "d"])
    eff_g = dict(zip([f"g{k}" for k in range(4)], rng.normal(0, 1.5, 4)))
    eff_s = dict(zip(sorted(df.s.unique()), rng.normal(0, 0.5, n_s)))
    df["y"] = (df.g.map(eff_g) + df.s.map(eff_s) + rng.normal(0, 0.05, len(df))
               + rng.normal(size=len(df)))
    formula = "y ~ 1 + (1 | s) + (1 | g) + (1 | d)"
    m = mf.Model(formula, df, likelihood="partial")
    assert m.built.integrated == "s"
    why = m.built.parametrization

    def statistic(col):
        grp = df.groupby(col)["y"]
        n_j, mean_j = grp.size(), grp.mean()
        n, J = len(df), len(n_j)
        within = ((df.y - grp.transform("mean")) ** 2).sum() / (n - J)
        between = (n_j * (mean_j - df.y.mean()) ** 2).sum()
        s2 = max(0.0, (between - (J - 1) * within) / (n - (n_j ** 2).sum() / n))
        return s2 / within * float(np.median(n_j))

    for col in ("g", "d"):
        stat = statistic(col)
        assert f"{stat:.3g}" in why[col][1], (col, stat, why[col])
        assert why[col][0] == ("centred" if stat >= CENTRED_MIN_INFORMATION else "noncentred")
    assert why["g"][0] == "centred" and why["d"][0] == "noncentred"
    c = mf.Model(formula, df, likelihood="conditional")
    assert set(c.parametrization_choice().values()) == {"noncentred"}
