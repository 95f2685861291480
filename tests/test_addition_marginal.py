"""brms' weights() and se() on the marginal engine (u integrated out), against dense Gaussian
algebra with scipy and against brms' own definition of the weighted likelihood.

References at random parameter points (unequal group sizes, intercept + slope term; a crossed
design for the general path):

* weights(w): Σ_i w_i log N(y_i | η_i, σ) integrated over u is
  log N(y; Xβ, ZGZᵀ + σ²W⁻¹) − (Σw − n)/2 · log 2πσ² − ½ Σ log w   (scipy multivariate_normal);
* se(sei): log N(y; Xβ, ZGZᵀ + diag(se²))   (scipy multivariate_normal);
* both, and the definition itself: the integrand p(u | G) Π_i exp(w_i log N(y_i | η_i, s_i)) is
  Gaussian in u, so its log integral is exactly log f(û) + M/2 log 2π − ½ log|H| at its mode û
  (H the negative Hessian), evaluated with scipy.stats.norm row by row.
"""

import numpy as np
import pandas as pd
import pytensor
import pytensor.tensor as pt
import pytest
import scipy.linalg as sla
from scipy.stats import multivariate_normal, norm

from mixedformula.backends.pymc.marginal import marginal_loglik, segment_factors
from mixedformula.design import design_matrices
from mixedformula.design.crossprod import sufficient_statistics

MODE = "FAST_COMPILE"


def _data(seed=3):
    rng = np.random.default_rng(seed)
    sizes = [2, 3, 5, 8, 13, 1, 7, 4]                 # unequal group sizes
    g = np.repeat([f"g{k}" for k in range(len(sizes))], sizes)
    n = len(g)
    df = pd.DataFrame({"g": g, "h": rng.choice(["a", "b", "c"], n), "x": rng.normal(size=n)})
    df["w"] = rng.uniform(0.2, 3.0, n)
    df["sei"] = rng.uniform(0.1, 0.6, n)
    df["y"] = 1.0 + 0.5 * df["x"] + rng.normal(size=n)
    return df


def _dense_Z(design, stats):
    n = design.nobs
    blocks = []
    for seg in stats.segments:
        Zs = np.zeros((n, seg.J * seg.Q))
        for k, off, q in zip(seg.terms, seg.offsets, seg.qs):
            Zk = design.terms[k].Z().toarray()
            for j in range(seg.J):
                Zs[:, j * seg.Q + off: j * seg.Q + off + q] = Zk[:, j * q:(j + 1) * q]
        blocks.append(Zs)
    return np.hstack(blocks)


def _factors(stats, rng):
    out = []
    for s in stats.segments:
        T = np.tril(rng.normal(size=(s.Q, s.Q)) * 0.7)
        T[np.diag_indices(s.Q)] = np.abs(T[np.diag_indices(s.Q)]) + 0.3
        out.append(T)
    return out


def _ours(stats, beta, Ts, sigma):
    b = pt.vector("beta")
    s = pt.scalar("sigma")
    Tv = [pt.matrix(f"T{i}") for i in range(len(Ts))]
    lp = marginal_loglik(stats, b, Tv if len(Tv) > 1 else Tv[0], s)
    return float(pytensor.function([b, s, *Tv], lp, mode=MODE)(beta, sigma, *Ts))


def _by_definition(design, Z, G, beta, sd_rows, w):
    """log ∫ N(u; 0, G) Π_i exp(w_i log N(y_i | x_iβ + z_iu, sd_i)) du, exact (Gaussian)."""
    y, X = design.y[:, 0], design.X
    prec = np.linalg.inv(G)
    H = prec + Z.T @ (Z * (w / sd_rows ** 2)[:, None])
    u = np.linalg.solve(H, Z.T @ (w * (y - X @ beta) / sd_rows ** 2))
    f = (multivariate_normal.logpdf(u, np.zeros(len(u)), G)
         + (w * norm.logpdf(y, X @ beta + Z @ u, sd_rows)).sum())
    return f + 0.5 * len(u) * np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(H)[1]


@pytest.mark.parametrize("rhs", ["x + (1 + x | g)", "x + (1 + x | g) + (1 | h)"])
@pytest.mark.parametrize("lhs", ["y | weights(w)", "y | se(sei)", "y | weights(w) + se(sei)"])
def test_marginal_loglik_with_weights_and_se(lhs, rhs):
    df = _data()
    design = design_matrices(f"{lhs} ~ {rhs}", df)
    stats = sufficient_statistics(design)
    assert stats.kind == ("block" if "h" not in rhs else "general")
    Z = _dense_Z(design, stats)
    y, X, n = design.y[:, 0], design.X, design.nobs
    w = df["w"].to_numpy() if "weights" in lhs else np.ones(n)
    se = df["sei"].to_numpy() if "se(" in lhs else None
    rng = np.random.default_rng(11)
    for _ in range(3):
        Ts = _factors(stats, rng)
        Lam = sla.block_diag(*[np.kron(np.eye(s.J), T) for s, T in zip(stats.segments, Ts)])
        G = Lam @ Lam.T
        beta = rng.normal(size=X.shape[1])
        sigma = float(rng.uniform(0.4, 1.5))
        sd_rows = se if se is not None else np.full(n, sigma)
        ours = _ours(stats, beta, Ts, 1.0 if se is not None else sigma)
        if se is None:
            ref = (multivariate_normal.logpdf(y, X @ beta, Z @ G @ Z.T + np.diag(sigma ** 2 / w))
                   - 0.5 * (w.sum() - n) * np.log(2 * np.pi * sigma ** 2)
                   - 0.5 * np.log(w).sum())
            assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
        elif "weights" not in lhs:
            ref = multivariate_normal.logpdf(y, X @ beta, Z @ G @ Z.T + np.diag(se ** 2))
            assert ours == pytest.approx(ref, rel=1e-9, abs=1e-9)
        defn = _by_definition(design, Z, G, beta, sd_rows, w)
        assert ours == pytest.approx(defn, rel=1e-9, abs=1e-9)



@pytest.mark.parametrize("rhs", ["x + (1 + x | g)", "x + (1 + x | g) + (1 | h)"])
@pytest.mark.parametrize("lhs", ["y | weights(w)", "y | weights(w) + se(sei)"])
def test_group_effect_draws_with_weights_and_se(lhs, rhs):
    """u drawn from the scaled statistics has brms' conditional posterior: precision
    G⁻¹ + Zᵀ diag(w/s²) Z, mean its inverse times Zᵀ diag(w/s²)(y − Xβ) (dense numpy).
    4000 draws, every mean within 4.5 Monte-Carlo se and every covariance within 5 se
    (false-failure rate < 1e-3 over all entries)."""
    from mixedformula.backends.pymc.marginal import draw_group_effects
    df = _data()
    design = design_matrices(f"{lhs} ~ {rhs}", df)
    stats = sufficient_statistics(design)
    Z = _dense_Z(design, stats)
    y, X, n = design.y[:, 0], design.X, design.nobs
    w = df["w"].to_numpy()
    rng = np.random.default_rng(5)
    Ts = _factors(stats, rng)
    Lam = sla.block_diag(*[np.kron(np.eye(s.J), T) for s, T in zip(stats.segments, Ts)])
    G = Lam @ Lam.T
    beta = rng.normal(size=X.shape[1])
    sigma = 0.8
    sd = df["sei"].to_numpy() if "se(" in lhs else np.full(n, sigma)
    H = np.linalg.inv(G) + Z.T @ (Z * (w / sd ** 2)[:, None])
    Sigma = np.linalg.inv(H)
    mu = Sigma @ (Z.T @ (w * (y - X @ beta) / sd ** 2))
    D = 4000
    draws = draw_group_effects(stats, np.tile(beta, (D, 1)),
                               [np.broadcast_to(T, (D,) + T.shape) for T in Ts]
                               if len(Ts) > 1 else np.broadcast_to(Ts[0], (D,) + Ts[0].shape),
                               np.full(D, 1.0 if stats.sigma_known else sigma), rng)
    cols = []
    for seg in stats.segments:            # back to the statistics' column order
        per = [draws[k] for k in seg.terms]
        cols.append(np.concatenate(per, axis=-1).reshape(D, -1))
    U = np.concatenate(cols, axis=1)
    s_ = np.sqrt(np.diag(Sigma))
    assert np.max(np.abs((U.mean(0) - mu) / (s_ / np.sqrt(D)))) < 4.5
    C = np.cov(U.T)
    se_cov = np.sqrt((np.outer(s_ ** 2, s_ ** 2) + Sigma ** 2) / D)
    assert np.max(np.abs(C - Sigma) / se_cov) < 5.0


# ----------------------------------------------------------------------------- fits

import json                                                     # noqa: E402
from pathlib import Path                                        # noqa: E402

import arviz as az                                              # noqa: E402
from scipy.stats import norm as _norm                           # noqa: E402

import mixedformula as mf                                       # noqa: E402
from mixedformula.results.loo import marginal_group_loglik      # noqa: E402

REF = json.loads((Path(__file__).parent / "data" / "brms_addition.json").read_text())
B = mf.prior("normal(0, 5)")
ICPT = mf.prior("student_t(3, 0, 2.5)", class_="Intercept")
SD = mf.prior("student_t(3, 0, 2.5)", class_="sd")
SIGMA = mf.prior("student_t(3, 0, 2.5)", class_="sigma")
CASES = {"weighted_gaussian": ("y | weights(w) ~ x + (1 | g)", [B, ICPT, SD, SIGMA]),
         "meta_se": ("yi | se(sei) ~ xm + (1 | study)", [B, ICPT, SD])}


@pytest.fixture(scope="module", params=list(CASES))
def fits(request):
    formula, priors = CASES[request.param]
    data = pd.DataFrame(REF[request.param]["data"])
    out = {lik: mf.fit(formula, data, priors=priors, likelihood=lik, draws=1000, tune=1000,
                       chains=2, seed=7) for lik in ("auto", "conditional")}
    return request.param, out


def _params(case):
    return [k for k, v in REF[case]["sd"].items() if v > 0]


def test_auto_picks_marginal_and_matches_brms(fits):
    """Posterior means within 0.2 brms posterior sd (≈ 5 Monte-Carlo se, as in
    tests/test_addition_brms.py) for both engines."""
    case, f = fits
    assert f["auto"].likelihood == "marginal"
    assert f["conditional"].likelihood == "conditional"
    ref = REF[case]
    for lik, fit in f.items():
        post = fit.idata.posterior
        for name in _params(case):
            z = abs(post[name].values.mean() - ref["mean"][name]) / ref["sd"][name]
            assert z <= 0.2, (case, lik, name, z)
        if "sigma" not in _params(case):             # se() alone: sigma is 0, as brms
            assert np.all(post["sigma"].values == 0)


def test_engines_agree(fits):
    """Marginal and conditional posterior means agree within their Monte-Carlo error:
    |m₁ − m₂| / sqrt(mcse₁² + mcse₂²) ≤ Φ⁻¹(1 − 0.01 / (2K)) for K parameters and the group
    effects r_g of three levels (Bonferroni: false-failure rate ≤ 1% for correct samplers)."""
    case, f = fits
    post_m, post_c = f["auto"].idata.posterior, f["conditional"].idata.posterior
    group = "g" if case == "weighted_gaussian" else "study"
    rname = f"r_{group}"
    names = _params(case)
    K = len(names) + 3
    zmax = _norm.ppf(1 - 0.01 / (2 * K))
    for name in names + [rname]:
        a, b = post_m[name], post_c[name]
        if name == rname:
            a, b = a.isel({a.dims[2]: [0, 1, 2]}), b.isel({b.dims[2]: [0, 1, 2]})
        ma, mb = a.mean(("chain", "draw")).values, b.mean(("chain", "draw")).values
        ea = az.mcse(a.to_dataset(name="v"))["v"].values
        eb = az.mcse(b.to_dataset(name="v"))["v"].values
        z = np.abs(ma - mb) / np.sqrt(ea ** 2 + eb ** 2)
        assert np.all(z <= zmax), (case, name, z, zmax)


def test_marginal_group_loo_sums_to_the_likelihood(fits):
    """LOO of the marginal fit is over groups; its pointwise log-likelihoods sum to the
    engine's weighted marginal log-likelihood (the statistics' kernel) at the same draws."""
    case, f = fits
    fit = f["auto"]
    ll, group, labels = marginal_group_loglik(fit)
    assert ll.shape[1] == len(labels)
    design = fit.design
    stats = sufficient_statistics(design)
    post = fit.idata.posterior
    key = [v for v in post.data_vars if v.startswith("sd_")][0]
    for s in (0, 500, 1999):
        c, dr = divmod(s, post.sizes["draw"])
        beta = np.array([post[f"b_{n}"].values[c, dr] for n in design.X_names])
        sd = float(post[key].values[c, dr])
        sigma = 1.0 if stats.sigma_known else float(post["sigma"].values[c, dr])
        assert ll[s].sum() == pytest.approx(_ours(stats, beta, [np.array([[sd]])], sigma),
                                            rel=1e-9)
    lo = fit.loo()
    assert lo.likelihood == "marginal" and np.isfinite(lo.elpd)
    pred = fit.predict()
    assert np.all(np.isfinite(np.asarray(pred)))


def test_one_row_per_study_is_identifiable_with_known_se():
    """A meta-analysis has one row per study: with se(sei) the residual sd is known, so the
    study variance is identified (brms fits it; no warning); with se(sei, sigma = TRUE) σ and
    the study sd are confounded and the warning stays."""
    import warnings
    from mixedformula.identifiability import IdentifiabilityWarning
    data = pd.DataFrame(REF["meta_se"]["data"])
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        mf.Model("yi | se(sei) ~ xm + (1 | study)", data, priors=[B, ICPT, SD])
    with pytest.warns(IdentifiabilityWarning, match="one effect per observation"):
        mf.Model("yi | se(sei, sigma = TRUE) ~ xm + (1 | study)", data,
                 priors=[B, ICPT, SD, SIGMA])
