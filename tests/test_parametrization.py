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


def _anova_ratio(r: pd.Series, g: pd.Series) -> tuple[float, pd.Series]:
    """One-way random-effects ANOVA moments by pandas: (ŝ²/σ̂², shrunken level means per row)."""
    grp = r.groupby(g)
    n_j, mean_j = grp.size(), grp.mean()
    n, J = len(r), len(n_j)
    within = ((r - grp.transform("mean")) ** 2).sum() / (n - J)
    between = (n_j * (mean_j - r.mean()) ** 2).sum()
    s2 = max(0.0, (between - (J - 1) * within) / (n - (n_j ** 2).sum() / n))
    shrunk = n_j * s2 / (n_j * s2 + within) * (mean_j - r.mean())
    return s2 / within, g.map(shrunk).astype(float)


def _backfitted_statistics(df, factors, sweeps=10):
    """ŝ_k²/σ̂² · median_j n_j per factor, each factor's ANOVA on y minus the other factors'
    shrunken level means, ``sweeps`` rounds (the rule's documented formulas, by pandas)."""
    eff = {f: pd.Series(0.0, index=df.index) for f in factors}
    ratio = {}
    for _ in range(sweeps if len(factors) > 1 else 1):
        for f in factors:
            r = df.y - df.y.mean() - sum(eff[o] for o in factors if o != f)
            ratio[f], eff[f] = _anova_ratio(r, df[f])
    return {f: ratio[f] * float(np.median(df.groupby(f).size())) for f in factors}


def test_gaussian_rule_in_the_conditional_engine_and_forcing_works():
    """A Gaussian identity-link mean in the conditional engine: centred iff (ŝ²/σ̂²)·median n_j
    (pandas' one-way ANOVA of y on g) ≥ the threshold; forcing either form works."""
    rng = np.random.default_rng(0)
    for n_per, sd in ((40, 1.0), (3, 0.2)):
        g = np.repeat([f"g{j:02d}" for j in range(30)], n_per)
        u = dict(zip(np.unique(g), rng.normal(0, sd, 30)))
        df = pd.DataFrame({"g": g, "x": rng.normal(size=len(g))})
        df["y"] = 1 + 0.5 * df.x + df.g.map(u) + rng.normal(size=len(df))
        m = mf.Model("y ~ x + (1 | g)", df, likelihood="conditional")
        stat = _backfitted_statistics(df, ["g"])["g"]
        choice, why = m.built.parametrization["g"]
        assert f"{stat:.3g}" in why, (stat, why)
        assert choice == ("centred" if stat >= CENTRED_MIN_INFORMATION else "noncentred")
        assert choice == ("centred" if n_per == 40 else "noncentred")
    m = mf.Model("y ~ x + (1 | g)", df, likelihood="conditional", parametrization="centered")
    assert m.parametrization_choice() == {"g": "centred"}
    assert "v__g" in {v.name for v in m.pymc_model.free_RVs}


def test_sigma_formula_blocks_use_the_log_sigma_information():
    """bf(y ~ (1 | g), sigma ~ (1 | g)): the sigma block's statistic is 2 · median n_j (Fisher
    information of log σ per row), the mean's and sigma's blocks of g are not "nested"; the
    centred sigma block varies around b_sigma_Intercept, and the log density is the
    non-centred model's minus the Jacobian J log sd (at random points)."""
    rng = np.random.default_rng(1)
    g = np.repeat([f"g{j:02d}" for j in range(12)], 15)
    df = pd.DataFrame({"g": g})
    df["y"] = df.g.map(dict(zip(np.unique(g), rng.normal(0, 1.0, 12)))) + rng.normal(size=len(g))
    formula = mf.bf("y ~ 1 + (1 | g)", sigma="~ 1 + (1 | g)")
    m = mf.Model(formula, df)
    why = m.built.parametrization
    (mean_key, sigma_key) = list(why)
    assert why[sigma_key] == ("centred", f"median per-level information {2 * 15:.3g} >= 5")
    assert why[mean_key][0] == "centred"
    m_nc = mf.Model(formula, df, parametrization="noncentred").pymc_model
    m_c = mf.Model(formula, df, parametrization={sigma_key: "centred",
                                                 mean_key: "noncentred"}).pymc_model
    get = _fn(m_nc, [m_nc[f"u__{sigma_key}"], m_nc["_beta_sigma"], m_nc[f"sd__{sigma_key}"]])
    lp_nc, lp_c = m_nc.compile_logp(mode=py_mode()), m_c.compile_logp(mode=py_mode())
    lp_v = m_c.compile_logp(vars=[m_c[f"v__{sigma_key}"]], mode=py_mode())
    for seed in range(3):
        p_nc = _point(m_nc, seed=seed)
        u, beta, sd = get(p_nc)
        sd = float(np.ravel(sd)[0])
        v = u + beta[0]
        p_c = {k: val for k, val in p_nc.items() if k != f"z__{sigma_key}"}
        p_c[f"v__{sigma_key}"] = v
        np.testing.assert_allclose(lp_c(p_c), lp_nc(p_nc) - u.shape[0] * np.log(sd),
                                   rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(lp_v(p_c), stats.norm(beta[0], sd).logpdf(v).sum(),
                                   rtol=1e-10)


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


def test_gaussian_information_rule_with_crossed_factors():
    """The Gaussian rule, partial and conditional engines: statistic (ŝ_k²/σ̂²) · median_j n_j
    from one-way ANOVA moments of y minus the other sampled factors' shrunken level means
    (backfitted; computed here with pandas), centred iff ≥ the threshold: g (4 levels, sd 1.5)
    centred, d (no effect) non-centred."""
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
    c = mf.Model(formula, df, likelihood="conditional")
    for model, factors in ((m, ["g", "d"]), (c, ["s", "g", "d"])):
        why = model.built.parametrization
        want = _backfitted_statistics(df, factors)
        for col in factors:
            assert f"{want[col]:.3g}" in why[col][1], (col, want[col], why[col])
            assert why[col][0] == ("centred" if want[col] >= CENTRED_MIN_INFORMATION
                                   else "noncentred")
        assert why["g"][0] == "centred" and why["d"][0] == "noncentred"


def test_gaussian_rule_does_not_credit_a_factor_with_anothers_variance():
    """InstEval's shape at 3 % (instructors d partly nested in departments, sd_dept 0.08 ≪
    sd_d 0.51): on y alone dept's statistic ranged 2.6–30 over data sets (centred, chains
    stuck in ~10 %); with the other factors' level means removed it is below the threshold
    for every one of 20 data sets, and d's stays centred where its data say so."""
    from mixedformula.simulation import INSTEVAL_FORMULA, insteval_like
    for seed in range(20):
        m = mf.Model(INSTEVAL_FORMULA, insteval_like(0.03, seed=seed))
        assert m.built.parametrization["dept"][0] == "noncentred", (seed, m.built.parametrization)


def test_zero_inflated_poisson_information_rule():
    """zero_inflated_poisson's working weight is the Fisher information about η = log μ,
    Σ_y p(y) (∂ log p(y)/∂η)² (summed here over y with scipy's Poisson pmf at the simulation's
    π = 0.3, μ = 4), from the moments of 200 000 simulated rows (sampling error of the
    moment estimates ≈ 0.5 %: rtol 3 %); without excess zeros it is Poisson's ȳ (to 1 %: the
    share of zeros of Poisson data may exceed e^{−ȳ} by sampling error)."""
    from mixedformula.families import get_family
    pi, mu = 0.3, 4.0
    rng = np.random.default_rng(11)
    n = 200_000
    y = np.where(rng.random(n) < pi, 0.0, rng.poisson(mu, n))
    ks = np.arange(0, 60)
    pmf = (1 - pi) * stats.poisson(mu).pmf(ks)
    pmf[0] += pi
    score = np.where(ks == 0, -(1 - pi) * mu * np.exp(-mu) / pmf[0], ks - mu)
    fisher = float(np.sum(pmf * score ** 2))
    fam = get_family("zero_inflated_poisson")
    w = fam.working_weights(y, None)
    assert w.shape == (n,)
    np.testing.assert_allclose(w, fisher, rtol=0.03)
    y_pois = rng.poisson(mu, n).astype(float)
    np.testing.assert_allclose(fam.working_weights(y_pois, None), y_pois.mean(), rtol=0.01)


@pytest.mark.parametrize("link, dist", [("logit", stats.logistic), ("probit", stats.norm)])
def test_cumulative_information_rule(link, dist):
    """cumulative's working weight is Σ_k (∂p_k/∂η)² / p_k at the thresholds of the observed
    shares, p_k(η) = F(τ_k − η) − F(τ_{k−1} − η) with scipy's F and a central difference in
    η (exact shares: y with counts 10, 30, 40, 20)."""
    from mixedformula.families import get_family
    y = np.repeat([1.0, 2.0, 3.0, 4.0], [10, 30, 40, 20])
    shares = np.array([0.1, 0.3, 0.4, 0.2])
    tau = np.concatenate([[-np.inf], dist.ppf(np.cumsum(shares)[:-1]), [np.inf]])

    def probs(eta):
        return np.diff(dist.cdf(tau - eta))

    h = 1e-5
    dp = (probs(h) - probs(-h)) / (2 * h)
    want = float(np.sum(dp ** 2 / shares))
    w = get_family("cumulative", link=link).working_weights(y, None)
    np.testing.assert_allclose(w, want, rtol=1e-7)


def test_centred_ordinal_intercept_varies_around_minus_the_mean_threshold():
    """cumulative y ~ x + (1 | g), centred: v_j = u_j − τ̄ (τ̄ the mean of the sampled,
    centred thresholds), so the log density is the non-centred model's minus the Jacobian
    J log sd at points mapped by v = u − τ̄, and v's prior term is scipy's N(−τ̄, sd)."""
    rng = np.random.default_rng(2)
    g = np.repeat([f"g{j:02d}" for j in range(15)], 30)
    x = rng.normal(size=len(g))
    lat = 0.7 * x + pd.Series(g).map(dict(zip(np.unique(g), rng.normal(0, 1, 15)))).to_numpy()
    y = 1 + np.digitize(lat + rng.logistic(size=len(g)), [-1.0, 0.5, 2.0])
    df = pd.DataFrame({"y": y, "x": x, "g": g})
    formula = "y ~ x + (1 | g)"
    m = mf.Model(formula, df, family="cumulative")
    assert m.parametrization_choice() == {"g": "centred"}, m.built.parametrization
    m_nc = mf.Model(formula, df, family="cumulative", parametrization="noncentred").pymc_model
    m_c = m.pymc_model
    get = _fn(m_nc, [m_nc["u__g"], m_nc["Intercept"], m_nc["sd__g"]])
    lp_nc, lp_c = m_nc.compile_logp(mode=py_mode()), m_c.compile_logp(mode=py_mode())
    lp_v = m_c.compile_logp(vars=[m_c["v__g"]], mode=py_mode())
    for seed in range(3):
        p_nc = _point(m_nc, seed=seed)
        u, thres, sd = get(p_nc)
        sd = float(np.ravel(sd)[0])
        v = u - np.mean(thres)
        p_c = {k: val for k, val in p_nc.items() if k != "z__g"}
        p_c["v__g"] = v
        np.testing.assert_allclose(lp_c(p_c), lp_nc(p_nc) - u.shape[0] * np.log(sd),
                                   rtol=1e-10, atol=1e-8)
        np.testing.assert_allclose(lp_v(p_c), stats.norm(-np.mean(thres), sd).logpdf(v).sum(),
                                   rtol=1e-10)


def test_a_level_level_covariate_keeps_noncentred():
    """A fixed effect constant within every level (salamanders' ``mined`` per ``site``) keeps
    the block non-centred, whatever its information (centred around the intercept alone,
    the mined sites' v_j trade off with b_minedyes); one that varies within a single level
    does not count."""
    from pathlib import Path
    sal = pd.read_csv(Path(__file__).parent / "data" / "salamanders.csv")
    formula = "bf(count ~ mined + (1 | site), zi ~ mined)"
    why = mf.Model(formula, sal, family="zero_inflated_poisson").built.parametrization
    assert why == {"site": ("noncentred",
                            "fixed effect minedyes is constant within the levels of site")}
    rng = np.random.default_rng(3)
    g = np.repeat([f"g{j:02d}" for j in range(20)], 40)
    w = np.repeat(rng.normal(size=20), 40)              # one value per level
    df = pd.DataFrame({"g": g, "w": w})
    df["y"] = rng.poisson(np.exp(1 + 0.3 * w + np.repeat(rng.normal(0, 0.5, 20), 40)))
    assert mf.Model("y ~ w + (1 | g)", df, family="poisson").parametrization_choice() == \
        {"g": "noncentred"}
    df.loc[0, "w"] += 0.1                                  # now it varies within g00
    assert mf.Model("y ~ w + (1 | g)", df, family="poisson").parametrization_choice() == \
        {"g": "centred"}
