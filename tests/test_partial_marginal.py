"""Partial marginalisation (backends/pymc/partial_marginal.py): one factor integrated out exactly.

References: the integrated likelihood against scipy's dense multivariate normal
log N(y; Xβ + Z_v v, Z_s G Z_sᵀ + σ² I) at random parameter points (to 1e-9); the recovered
effects against the exact conditional N(G Zᵀ V⁻¹ r, G − G Zᵀ V⁻¹ Z G) computed densely; a fit
against simulation truth.
"""

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

import mixedformula as mf
from mixedformula.engine import decide

from sim import dense_Z, familywise_misses, seeds
from sim import py_mode


def crossed(seed, n_s=60, n_d=25, per=6, slope_sd=0.0):
    rng = np.random.default_rng(seed)
    us, ud = rng.normal(0, 0.8, n_s), rng.normal(0, 0.5, n_d)
    vs = rng.normal(0, slope_sd, n_s) if slope_sd else np.zeros(n_s)
    rows = []
    for s in range(n_s):
        for d in rng.choice(n_d, per, replace=False):
            x = rng.normal()
            rows.append((f"s{s:03d}", f"d{d:03d}", x,
                         1 + 0.5 * x + us[s] + vs[s] * x + ud[d] + rng.normal()))
    return pd.DataFrame(rows, columns=["s", "d", "x", "y"])


def _point_values(model, seed):
    """Random points on the unconstrained scale → (potential, β, σ, named values)."""
    pmm = model.built.model
    names = [n for n in pmm.named_vars if n.startswith(("u__", "sd__", "chol__"))]
    outs = pmm.replace_rvs_by_values([pmm.potentials[0], pmm["_beta"], pmm["sigma"]]
                                     + [pmm[n] for n in names])
    f = pmm.compile_fn(outs, inputs=pmm.value_vars, on_unused_input="ignore", mode=py_mode())
    rng = np.random.default_rng(seed)
    ip = pmm.initial_point()
    for _ in range(3):
        out = f({k: v + rng.normal(0, 0.4, np.shape(v)) for k, v in ip.items()})
        yield out[0], out[1], float(out[2]), dict(zip(names, out[3:]))


@pytest.mark.parametrize("formula", ["y ~ x + (1 | s) + (1 | d)",
                                     "y ~ x + (1 + x | s) + (1 | d)",
                                     "y ~ x + (1 + x || s) + (1 | d)"])
def test_integrated_likelihood_equals_dense_gaussian(formula):
    df = crossed(1, slope_sd=0.3)
    model = mf.Model(formula, df, likelihood="partial")
    b_s = next(b for b in model.built.blocks if b.key == model.built.integrated)
    assert b_s.group == "s"
    s_codes = pd.factorize(df.s, sort=True)[0]
    d_codes = pd.factorize(df.d, sort=True)[0]
    X = np.column_stack([np.ones(len(df)), df.x])
    Xs = X[:, :b_s.Q] if b_s.Q == 2 else X[:, :1]
    Zs = dense_Z(s_codes, Xs, b_s.J)
    for pot, beta, sigma, vals in _point_values(model, 7):
        ud = next(v for k, v in vals.items() if k.startswith("u__"))[:, 0]
        if b_s.correlated and b_s.Q > 1:
            packed = vals[f"chol__{b_s.key}"]
            T = np.zeros((2, 2))
            T[np.tril_indices(2)] = packed
        else:
            T = np.diag(np.ravel(vals[f"sd__{b_s.key}"]))
        G = np.kron(np.eye(b_s.J), T @ T.T)
        V = sigma ** 2 * np.eye(len(df)) + Zs @ G @ Zs.T
        ref = stats.multivariate_normal(X @ beta + ud[d_codes], V).logpdf(df.y.to_numpy())
        assert pot == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_partial_with_one_group_term_is_the_marginal_likelihood_per_row():
    """likelihood="partial" with one group term integrates every group effect out: labelled
    the marginal engine (statistics "rows"), and its potential equals scipy's dense
    log N(y; Xβ, Z G Zᵀ + σ² I) at random points (1e-9)."""
    df = crossed(2, n_s=30, per=4, slope_sd=0.3)
    model = mf.Model("y ~ x + (1 + x | s)", df, likelihood="partial")
    dec = decide(model.design, mf.families.get_family("gaussian"), "partial")
    assert (dec.likelihood, dec.statistics, dec.reason) == ("marginal", "rows", "")
    assert model.built.likelihood == "marginal" and model.built.integrated is not None
    b_s = model.built.blocks[0]
    s_codes = pd.factorize(df.s, sort=True)[0]
    X = np.column_stack([np.ones(len(df)), df.x])
    Zs = dense_Z(s_codes, X, b_s.J)
    for pot, beta, sigma, vals in _point_values(model, 11):
        T = np.zeros((2, 2))
        T[np.tril_indices(2)] = vals[f"chol__{b_s.key}"]
        V = sigma ** 2 * np.eye(len(df)) + Zs @ np.kron(np.eye(b_s.J), T @ T.T) @ Zs.T
        ref = stats.multivariate_normal(X @ beta, V).logpdf(df.y.to_numpy())
        assert pot == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_integrated_likelihood_on_predictor_cells_equals_dense_gaussian():
    """A 0/1 covariate and two sampled factors (d, g): η of the sampled part is evaluated on
    the distinct (x, d, g) cells and gathered to the rows (build.predictor_cells); the
    potential still equals scipy's dense log N(y; Xβ + u_d[d] + u_g[g], Z_s G Z_sᵀ + σ² I)."""
    df = crossed(4)
    df["xb"] = (df.x > 0).astype(float)
    df["g"] = "g" + (pd.factorize(df.d, sort=True)[0] % 3).astype(str)
    model = mf.Model("y ~ xb + (1 | s) + (1 | d) + (1 | g)", df, likelihood="partial")
    pmm = model.built.model
    n_cells = len(pmm["data__X"].get_value())
    assert n_cells == len(df.groupby(["xb", "d", "g"])) < len(df) / 2
    b_s = next(b for b in model.built.blocks if b.key == model.built.integrated)
    codes = {c: pd.factorize(df[c], sort=True)[0] for c in ("s", "d", "g")}
    X = np.column_stack([np.ones(len(df)), df.xb])
    Zs = dense_Z(codes["s"], X[:, :1], b_s.J)
    for pot, beta, sigma, vals in _point_values(model, 3):
        eta = X @ beta + vals["u__d"][codes["d"], 0] + vals["u__g"][codes["g"], 0]
        sd = float(np.ravel(vals[f"sd__{b_s.key}"])[0])
        V = sigma ** 2 * np.eye(len(df)) + sd ** 2 * Zs @ Zs.T
        ref = stats.multivariate_normal(eta, V).logpdf(df.y.to_numpy())
        assert pot == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_recovered_effects_are_the_exact_conditional():
    """4000 recovered draws at one fixed parameter point: their mean and variance per level
    against the dense conditional moments. z-scores of 2 × 2J = 240 checks (mean: (m̂ − m)/
    (sd/√S); variance: (v̂ − v)/(v √(2/S))) within the Bonferroni limit Φ⁻¹(1 − 0.01/480)
    = 3.53: family-wise false-failure rate ≤ 1 % (S = 4000 independent draws, so the normal
    approximation of both statistics is close)."""
    df = crossed(2, slope_sd=0.3)
    model = mf.Model("y ~ x + (1 + x | s) + (1 | d)", df, likelihood="partial")
    built = model.built
    b_s = next(b for b in built.blocks if b.key == built.integrated)
    b_d = next(b for b in built.blocks if b.key != built.integrated)
    rng = np.random.default_rng(0)
    S = 4000
    beta, sigma = np.array([0.9, 0.4]), 0.9
    T = np.array([[0.8, 0.0], [0.1, 0.3]])
    ud = rng.normal(0, 0.5, b_d.J)

    def rep(a):
        a = np.asarray(a, dtype=float)
        return np.broadcast_to(a, (1, S) + a.shape).copy()

    packed = T[np.tril_indices(2)]
    post = xr.Dataset({
        "_beta": (("chain", "draw", "b"), rep(beta)),
        "sigma": (("chain", "draw"), rep(sigma)),
        f"chol__{b_s.key}": (("chain", "draw", "p"), rep(packed)),
        f"u__{b_d.key}": (("chain", "draw", "J", "Q"), rep(ud[:, None])),
    })
    from mixedformula.backends.pymc.partial_marginal import recover_integrated
    u = recover_integrated(built, post, seed=5).reshape(S, b_s.J * 2)
    X = np.column_stack([np.ones(len(df)), df.x])
    s_codes = pd.factorize(df.s, sort=True)[0]
    d_codes = pd.factorize(df.d, sort=True)[0]
    Zs = dense_Z(s_codes, X, b_s.J)
    G = np.kron(np.eye(b_s.J), T @ T.T)
    V = sigma ** 2 * np.eye(len(df)) + Zs @ G @ Zs.T
    r = df.y.to_numpy() - X @ beta - ud[d_codes]
    K = G @ Zs.T @ np.linalg.inv(V)
    m, C = K @ r, G - K @ Zs @ G
    v = np.diag(C)
    z_mean = (u.mean(0) - m) / np.sqrt(v / S)
    z_var = (u.var(0, ddof=1) - v) / (v * np.sqrt(2 / S))
    limit = stats.norm.ppf(1 - 0.01 / (2 * 2 * len(m)))
    assert np.abs(z_mean).max() < limit and np.abs(z_var).max() < limit


def test_auto_integrates_the_largest_factor_when_the_full_factorisation_is_costly():
    df = crossed(3, n_s=400, n_d=300, per=4)
    design = mf.Model("y ~ x + (1 | s) + (1 | d)", df).design
    dec = decide(design, mf.families.get_family("gaussian"), "auto")
    assert dec.likelihood == "conditional" and dec.integrate is not None
    assert "group effects of s are integrated out exactly" in dec.note
    assert decide(design, mf.families.get_family("gaussian"), "conditional").integrate is None
    small = mf.Model("y ~ x + (1 | s) + (1 | d)", crossed(3, n_d=5, per=3)).design
    assert decide(small, mf.families.get_family("gaussian"), "auto").likelihood == "marginal"
    with pytest.raises(mf.MixedFormulaError, match="partial"):
        decide(design, mf.families.get_family("poisson"), "partial")


def test_partial_fit_recovers_simulation_truth():
    """``y ~ x + (1 | s) + (1 | d)`` simulated at known values (120 × 40 crossed levels,
    8 ratings per student), 2 × (500 + 500) draws; family-wise check over the 5 parameters at
    α = 1 % (tests/sim.py: ≤ 1 % false failures for a correct sampler, any seed)."""
    (seed,) = seeds("partial_truth", 4)
    rng = np.random.default_rng(seed)
    n_s, n_d = 120, 40
    df = pd.DataFrame({"s": np.repeat([f"s{j:03d}" for j in range(n_s)], 8),
                       "d": [f"d{k:03d}" for k in rng.integers(0, n_d, n_s * 8)],
                       "x": rng.normal(size=n_s * 8)})
    truth = {"b_Intercept": 1.0, "b_x": 0.5, "sd_s__Intercept": 0.8, "sd_d__Intercept": 0.5,
             "sigma": 1.0}
    df = mf.simulate("y ~ x + (1 | s) + (1 | d)", df, truth, seed=seed + 1)
    fit = mf.fit("y ~ x + (1 | s) + (1 | d)", df, likelihood="partial", draws=500, tune=500,
                 chains=2, seed=seed, progressbar=False)
    assert fit.info["likelihood"] == "conditional"
    assert "integrated out exactly" in fit.info["engine_note"]
    assert not familywise_misses(fit.idata.posterior, truth)
    r = fit.ranef()["s"] if isinstance(fit.ranef(), dict) else fit.ranef()
    assert len(fit.idata.posterior["r_s"].coords["s"]) == n_s
    assert np.isfinite(fit.idata.posterior["r_s"].values).all() and r is not None


def test_partial_engine_asks_nutpie_for_the_low_rank_mass_matrix(monkeypatch):
    """The partial engine (and only it) samples with nutpie's low-rank modified mass matrix
    (benchmarks/README.md, issue 24: InstEval's b_Intercept ESS 126 → 997 per 1200 draws)."""
    import nutpie
    from mixedformula.backends.pymc import sampling
    from mixedformula.model import low_rank_mass_matrix
    df = crossed(1)
    formula = "y ~ x + (1 | s) + (1 | d)"
    assert low_rank_mass_matrix(mf.Model(formula, df, likelihood="partial").built)
    assert not low_rank_mass_matrix(mf.Model(formula, df, likelihood="conditional").built)
    assert not low_rank_mass_matrix(mf.Model(formula, df, likelihood="marginal").built)
    seen = {}
    monkeypatch.setattr(sampling, "compiled_model", lambda model, backend: "compiled")
    monkeypatch.setattr(nutpie, "sample", lambda compiled, **kw: seen.update(kw))
    for flag in (True, False):
        seen.clear()
        sampling.sample_nutpie(None, 10, 10, 1, 1, False, 1, None, "c", low_rank=flag)
        assert seen.get("low_rank_modified_mass_matrix", False) is flag
