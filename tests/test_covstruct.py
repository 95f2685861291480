"""glmmTMB's group structures us/diag/cs/ar1/toep in mf.lmer (issue 23, part 2).

Reference: glmmTMB 1.1.5 ML fits (REML = FALSE, its default) on data simulated by
tests/data/r/covstruct.R (40 groups x 4 time points x 2 replicates), stored in
tests/data/covstruct_glmmTMB.json. Tolerances: logLik 1e-7 relative; estimates 1e-4 relative
(glmmTMB stops its optimiser at about 1e-5 relative in these parameters).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.design import covstruct
from mixedformula.errors import FormulaError
from mixedformula.formula import parse
from sim import py_mode

HERE = os.path.dirname(__file__)
REF = json.load(open(os.path.join(HERE, "data", "covstruct_glmmTMB.json")))
RESPONSE = {"ar1": "y_ar", "cs": "y_cs", "diag": "y_cs", "us": "y_cs", "toep": "y_cs"}


@pytest.fixture(scope="module")
def data():
    d = pd.read_csv(os.path.join(HERE, "data", "covstruct_data.csv"))
    d["times"] = d["times"].astype(str)
    return d


@pytest.mark.parametrize("structure", ["ar1", "cs", "diag", "us", "toep"])
def test_ml_matches_glmmtmb(data, structure):
    ref = REF[structure]
    fit = mf.lmer(f"{RESPONSE[structure]} ~ x + {structure}(0 + times | group)", data,
                  reml=False)
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-7)
    assert fit.n_params == ref["df"]
    assert fit.beta == pytest.approx(ref["beta"], rel=1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    vc = fit.varcorr()
    sd = vc[vc.var2.isna() & (vc.grp != "Residual")].sdcor.to_numpy()
    assert sd == pytest.approx(ref["sd"], rel=1e-4)
    cor = np.asarray(ref["cor"])
    cp = fit.corpars()
    if structure in ("ar1", "cs"):
        assert list(cp.columns) == ["grp", "structure", "parameter", "estimate"]
        assert cp.parameter.tolist() == ["rho"] and cp.structure.tolist() == [structure]
        assert cp.estimate[0] == pytest.approx(cor[0, 1], rel=1e-4)
        assert f"Structure: group {structure}(4 x 4), rho = " in fit.summary()
    elif structure == "toep":
        assert cp.parameter.tolist() == ["rho[1]", "rho[2]", "rho[3]"]
        # the likelihood is flat in rho[3] (a change of 1.3e-5 moves logLik by < 1e-8; ours
        # is the higher one): absolute tolerance 5e-5 on the correlations
        assert cp.estimate.to_numpy() == pytest.approx(cor[0, 1:], abs=5e-5)
        assert fit.logLik >= ref["logLik"] - 1e-8
    else:
        assert cp.empty
    if structure in ("ar1", "cs", "toep", "us"):
        # lme4's layout of varcorr: sds then correlations of the implied Σ
        c = vc[vc.var2.notna()].sdcor.to_numpy()
        pairs = [cor[i, j] for j in range(4) for i in range(j + 1, 4)]
        assert c == pytest.approx(pairs, abs=1e-4)


def test_structure_math():
    Q = 4
    phi = np.array([np.log(2.0), np.arctanh(0.5)])
    S = covstruct.covariance("ar1", Q, phi)
    lag = np.abs(np.subtract.outer(np.arange(Q), np.arange(Q)))
    assert S == pytest.approx(4.0 * 0.5 ** lag)
    # toep's partial autocorrelations of an AR(1) are (ρ, 0, 0): ρ_k = ρ^k
    assert covstruct.pacf_to_acf(np.array([0.6, 0.0, 0.0])) == pytest.approx([0.6, 0.36, 0.216])
    # the AR(2) recursion: ρ₂ = φ₁ρ₁ + φ₂ with φ₂ = π₂, φ₁ = π₁(1 − π₂)
    p1, p2 = 0.5, -0.3
    r1 = p1
    phi1 = p1 * (1 - p2)
    assert covstruct.pacf_to_acf(np.array([p1, p2]))[1] == pytest.approx(phi1 * r1 + p2)
    # any φ gives a positive definite Σ
    rng = np.random.default_rng(0)
    for st in ("cs", "toep"):
        for _ in range(20):
            p = rng.normal(scale=3, size=covstruct.n_params(st, 5))
            assert np.linalg.eigvalsh(covstruct.covariance(st, 5, p))[0] > 0


def test_syntax_and_refusals(data):
    g = parse("y ~ x + ar1(0 + times | group)").groups[0]
    assert g.structure == "ar1" and g.correlated
    assert parse("y ~ diag(0 + times | group)").groups[0].correlated is False
    assert parse("y ~ us(0 + times | group)").groups[0].structure is None
    with pytest.raises(FormulaError, match="takes one group term"):
        parse("y ~ ar1(times, group)")
    with pytest.raises(FormulaError, match="cannot be combined with gr"):
        parse("y ~ ar1(0 + times | gr(group, by = x))")
    with pytest.raises(NotImplementedError, match="mf.lmer"):
        mf.glmer("y_ar ~ x + ar1(0 + times | group)", data.assign(
            y_ar=(data.y_ar > 1).astype(int)), family="bernoulli")
    fit = mf.lmer("y_ar ~ x + ar1(0 + times | group)", data)
    with pytest.raises(NotImplementedError, match="ar1"):
        fit.coef_table()
    assert fit.coef_table("none").shape[0] == 2


def test_bayesian_ar1_recovery():
    """ar1(0 + times | group) from simulated data (60 groups x 4 times x 2 replicates): every
    truth inside its family-wise interval (tests/sim.py familywise_misses, Bonferroni over the
    5 parameters, α = 0.01: false-failure rate <= 1% for a calibrated posterior; the
    posterior is close to normal on the log / atanh scales at this size). The sds of the four
    time points are one parameter (glmmTMB's ar1), named per coefficient."""
    from sim import familywise_misses, seeds
    data_seed, chain_seed = seeds("covstruct_ar1", 31, 32)
    rng = np.random.default_rng(data_seed)
    G, nt, rep = 60, 4, 2
    lag = np.abs(np.subtract.outer(np.arange(nt), np.arange(nt)))
    sd, rho, sigma = 0.9, 0.6, 0.5
    u = rng.multivariate_normal(np.zeros(nt), sd ** 2 * rho ** lag, size=G)
    gi = np.repeat(np.arange(G), nt * rep)
    ti = np.tile(np.repeat(np.arange(nt), rep), G)
    x = rng.normal(size=len(gi))
    d = pd.DataFrame({"group": [f"g{j:02d}" for j in gi], "times": [f"t{t}" for t in ti],
                      "x": x})
    d["y"] = 1.0 + 0.5 * x + u[gi, ti] + rng.normal(scale=sigma, size=len(gi))
    fit = mf.fit("y ~ x + ar1(0 + times | group)", d, draws=500, tune=500, chains=2,
                 seed=chain_seed, progressbar=False)
    post = fit.idata.posterior
    truth = {"b_Intercept": 1.0, "b_x": 0.5, "sd_group__timest0": sd, "rho_group": rho,
             "sigma": sigma}
    assert familywise_misses(post, truth, k=len(truth)) == {}
    # one sd shared by the coefficients; the summary lists rho under the group
    assert np.array_equal(post["sd_group__timest0"].values, post["sd_group__timest3"].values)
    assert "rho " in str(fit.summary())
    assert "cor_group__timest0__timest1" not in post


@pytest.mark.parametrize("structure", ["ar1", "cs", "toep"])
def test_marginal_loglik_matches_scipy(data, structure):
    """The marginal engine's log-likelihood with a structured G at one parameter point equals
    scipy's multivariate normal log-density with the dense V = Z (I ⊗ Σ) Zᵀ + σ² I."""
    from scipy.stats import multivariate_normal
    d = data.iloc[:64]                        # 8 groups: a dense 64 x 64 V
    m = mf.Model(f"y_cs ~ x + {structure}(0 + times | group)", d, likelihood="marginal")
    model = m.pymc_model
    Q = 4
    sd = np.array([0.7, 1.1, 0.9, 1.3]) if structure != "ar1" else np.array([0.8])
    rho = {"ar1": [0.5], "cs": [0.3], "toep": [0.4, -0.2, 0.1]}[structure]
    sigma, b_x, icpt = 0.6, 0.4, 1.2
    values = {"Intercept": icpt, "b": np.array([b_x]), "sd__group": sd, "sigma": sigma}
    if structure == "toep":
        values["pacf__group"] = np.array([0.4, -0.2, 0.1])   # partial autocorrelations
    else:
        values["rho__group"] = np.array(rho)
    point = {}
    for rv in model.free_RVs:
        v = np.asarray(values[rv.name], dtype=float)
        tr = model.rvs_to_transforms.get(rv)
        vv = model.rvs_to_values[rv]
        point[vv.name] = tr.forward(v, *rv.owner.inputs).eval() if tr is not None else v
    pot = model.replace_rvs_by_values([model["marginal_loglik"]])[0]
    ll = model.compile_fn(pot, inputs=model.value_vars, on_unused_input="ignore",
                          mode=py_mode())(point)
    # the reference: Σ from the definitions (glmmTMB), rows of a group share u_g
    lag = np.abs(np.subtract.outer(np.arange(Q), np.arange(Q)))
    if structure == "toep":
        acf = covstruct.pacf_to_acf(np.array([0.4, -0.2, 0.1]))
        R = np.concatenate([[1.0], acf])[lag]
    elif structure == "ar1":
        R = 0.5 ** lag
    else:
        R = np.where(lag == 0, 1.0, 0.3)
    s = np.broadcast_to(sd, (Q,))
    S = np.outer(s, s) * R
    t = d["times"].astype(int).to_numpy() - 1
    g = pd.factorize(d["group"])[0]
    same = g[:, None] == g[None, :]
    V = np.where(same, S[t][:, t], 0.0) + sigma ** 2 * np.eye(len(d))
    mean = icpt + b_x * (d["x"] - d["x"].mean())
    ref = multivariate_normal(mean.to_numpy(), V).logpdf(d["y_cs"].to_numpy())
    assert float(ll) == pytest.approx(ref, rel=1e-10)
    if structure == "toep":       # the PyTensor Durbin–Levinson gives numpy's ρ_k
        assert acf == pytest.approx([0.4, 0.4 * 0.4 * 1.2 - 0.2, acf[2]])
