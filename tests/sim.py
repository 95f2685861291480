"""Simulated data sets shared by the sampling tests (scenarios in shared/SCENARIOS.md), and the
family-wise recovery check they use.

Seeds: every recovery test takes its seeds from :func:`seeds`, so ``MF_TEST_SEED=1 … 5 pytest``
runs it on other data sets and other chains (unset: the fixed defaults written in the test).
"""

import os
import zlib

import numpy as np
import pandas as pd
from scipy.stats import norm

import mixedformula as mf

SCENARIO1_PARAMS = {
    "b_Intercept": 1.0, "b_p1": 0.5, "b_p2": -0.3, "b_p3": 0.2,
    "sd_g__Intercept": 1.0, "sd_g__p1": 0.6, "sd_g__p2": 0.4,
    "cor_g__Intercept__p1": 0.0, "cor_g__Intercept__p2": 0.0, "cor_g__p1__p2": 0.6,
    "sigma": 0.5,
}


def scenario1_predictors(n_groups=16, n_per=100, seed=11):
    """Three correlated predictors (means 1, -2, 0.5) in 16 groups of 100 (scenario 1)."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1, -0.3, 0], [-0.3, 1, 0.6], [0, 0.6, 1]])
    P = rng.multivariate_normal([1, -2, 0.5], cov, size=n_groups * n_per)
    df = pd.DataFrame(P, columns=["p1", "p2", "p3"])
    df["g"] = np.repeat([f"g{j:02d}" for j in range(n_groups)], n_per)
    return df


def scenario1(seed=11):
    return mf.simulate("m1 ~ p1 + p2 + p3 + (1 + p1 + p2 | g)", scenario1_predictors(seed=seed),
                       SCENARIO1_PARAMS, seed=seed + 1)


def scenario2(seed=5):
    """Two groups of 1000 (x, y): A mean (0, 0), identity; B mean (1, -1), correlation -0.5."""
    rng = np.random.default_rng(seed)
    A = rng.multivariate_normal([0, 0], [[1, 0], [0, 1]], 1000)
    B = rng.multivariate_normal([1, -1], [[1, -0.5], [-0.5, 1]], 1000)
    df = pd.DataFrame(np.vstack([A, B]), columns=["x", "y"])
    df["group"] = ["A"] * 1000 + ["B"] * 1000
    return df


BERNOULLI_TRUTH = {"b_Intercept": -0.3, "b_x": 0.8, "sd_g__Intercept": 0.7, "sd_g__x": 0.4,
                   "cor_g__Intercept__x": 0.3}


def bernoulli_glmm(seed=8, sim_seed=9):
    """60 groups × 50 bernoulli rows from ``y ~ x + (1 + x | g)`` at BERNOULLI_TRUTH."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x": rng.normal(size=3000),
                       "g": np.repeat([f"s{j}" for j in range(60)], 50)})
    return mf.simulate("y ~ x + (1 + x | g)", df, BERNOULLI_TRUTH, family="bernoulli",
                       seed=sim_seed)


def interval(post, name, prob):
    """Central ``prob`` posterior interval of a scalar variable."""
    a = (1 - prob) / 2
    return np.quantile(post[name].values, [a, 1 - a])


# ---------------------------------------------------------------------------- recovery checks

def seeds(tag: str, *defaults: int) -> tuple[int, ...]:
    """The seeds of one test: ``defaults`` when the environment variable MF_TEST_SEED is unset,
    else ``len(defaults)`` seeds from ``SeedSequence([MF_TEST_SEED, crc32(tag)])`` (the tag
    gives each test its own data set for the same MF_TEST_SEED)."""
    env = os.environ.get("MF_TEST_SEED", "").strip()
    if not env:
        return defaults
    ss = np.random.SeedSequence([int(env), zlib.crc32(tag.encode())])
    return tuple(int(v) for v in ss.generate_state(len(defaults)) % (2**31 - 1))


def unconstrained(name: str, x):
    """The scale on which a parameter's posterior is checked: log for sd/sigma/shape/nu/phi/
    beta (exgaussian)/kappa/ndt,
    logit for the probabilities zi/hu/zoi/coi, atanh for correlations (cor_, rescor_, rho_ of
    ar1/cs/toep group terms), identity for
    coefficients."""
    x = np.asarray(x, dtype=float)
    if name.startswith(("sd_", "sigma", "shape", "nu", "phi")) or name in ("beta", "kappa", "ndt"):
        return np.log(x)
    if name in ("zi", "hu", "zoi", "coi"):
        return np.log(x) - np.log1p(-x)
    if name.startswith(("cor_", "rescor_", "rho_")):
        return np.arctanh(x)
    return x


def familywise_z(k: int, alpha: float = 0.01) -> float:
    """Bonferroni half-width: z = Φ⁻¹(1 − α/(2k)), so k two-sided checks miss with
    probability ≤ k · α/k = α together (union bound, whatever their correlation)."""
    return float(norm.ppf(1 - alpha / (2 * k)))


def familywise_misses(post, truth: dict, alpha: float = 0.01, k: int | None = None,
                      min_ess: float = 20.0) -> dict:
    r"""Truths outside their family-wise interval: {name: (z, z_crit)} for those with
    |z| > z_crit, and {name: ("ESS", ess)} for parameters whose bulk ESS is below ``min_ess``
    (chains stuck in different modes, bulk ESS ≈ 2–10, would otherwise only widen the
    interval; slowly mixing sds of small data sets reach 30–60 from 2 × 300 draws).

    For each parameter θ with transform g (:func:`unconstrained`),
    z = (g(θ*) − mean g(θ)) / sd g(θ) over the posterior draws; the interval is
    mean ± z_crit · sd on the g scale, z_crit = Φ⁻¹(1 − α/(2k)) · √(1 + (1 + z²/2)/ESS)
    with k = len(truth) unless given (a larger k shares α with checks elsewhere).

    False-failure rate: for a posterior that is ≈ normal on the g scale and calibrated at the
    truth, each check misses with probability ≈ α/k and all k together with ≤ α
    (Bonferroni's union bound, whatever their correlation). The truths are fixed, not drawn
    from the prior, so calibration holds only approximately (Bernstein–von Mises: up to the
    prior's pull and the small-sample skew of sds); the tests using this keep the data sets
    large enough for that and say so. The square-root factor widens the interval by the
    Monte-Carlo error of z itself (mean: 1/√ESS, sd: z/√(2 ESS) in units of the posterior sd,
    bulk ESS of g(θ)), so the rate stays α/k with a few hundred draws. The normal interval
    replaces empirical quantiles: the α/(2k) ≈ 10⁻³–10⁻⁴ quantile of a few hundred
    autocorrelated draws is little more than the smallest draw and would miss the truth
    several times more often than α/(2k)."""
    import arviz as az
    k = len(truth) if k is None else k
    z0 = familywise_z(k, alpha)
    out = {}
    worst = (0.0, "", 0.0)
    for name, value in truth.items():
        x = unconstrained(name, post[name].values)
        d = x.ravel()
        ess = float(az.ess(x.reshape(-1, x.shape[-1]) if x.ndim > 1 else x[None, :]))
        if not ess >= min_ess:
            out[name] = ("ESS", round(ess, 1))
            continue
        zc = z0 * np.sqrt(1 + (1 + z0 ** 2 / 2) / ess)
        z = (float(unconstrained(name, value)) - d.mean()) / d.std(ddof=1)
        worst = max(worst, (abs(z) / zc, name, ess))
        if not abs(z) <= zc:
            out[name] = (round(float(z), 2), round(float(zc), 2))
    log = os.environ.get("MF_TEST_ZLOG")        # margins for the notes: MF_TEST_ZLOG=file
    if log:
        with open(log, "a", encoding="utf-8") as f:
            f.write(f"{os.environ.get('PYTEST_CURRENT_TEST', '?').split(' ')[0]}\t"
                    f"seed={os.environ.get('MF_TEST_SEED', 'default')}\tmax|z|/z_crit="
                    f"{worst[0]:.2f} ({worst[1]}, ESS {worst[2]:.0f})\n")
    return out


def constrained_value(model, point, name):
    """The value of ``model``'s free variable ``name`` on its own scale at a point of the
    sampler's (transformed) space: the transform's backward map applied to ``point``'s entry."""
    rv = model[name]
    tr = model.rvs_to_transforms.get(rv)
    key = rv.name if tr is None else f"{rv.name}_{tr.name}__"
    val = np.asarray(point[key])
    return val if tr is None else np.asarray(tr.backward(val, *rv.owner.inputs).eval())


def assert_means_near_brms(post, means: dict, sds: dict, min_ess: float, tol: float = 0.2):
    """Every parameter's posterior mean within ``tol`` brms posterior sd of brms' mean, after
    checking that each has at least ``min_ess`` bulk ESS here (the caller's false-failure
    argument rests on that ESS); the message lists the three largest gaps."""
    import arviz as az
    worst = []
    for name, mean in means.items():
        assert float(az.ess(post[name]).to_array().min()) >= min_ess, name
        worst.append((abs(float(post[name].mean()) - mean) / sds[name], name))
    assert max(worst)[0] < tol, sorted(worst, reverse=True)[:3]


def dense_Z(codes, X, J):
    """The dense random-effects design of one group term: row n has X[n, c] in column
    codes[n]·q + c (level-major, as lme4's Zᵀ and the engines order the effects)."""
    n, q = X.shape
    Z = np.zeros((n, J * q))
    for c in range(q):
        Z[np.arange(n), codes * q + c] = X[:, c]
    return Z


def dense_Z_of_column(d, col, slope):
    """dense_Z of ``(1 | col)`` or ``(1 + x | col)`` on a frame with columns col and x, levels
    sorted; also the number of levels."""
    lev = sorted(d[col].unique())
    j = pd.Index(lev).get_indexer(d[col])
    W = np.column_stack([np.ones(len(d)), d.x])[:, :2 if slope else 1]
    return dense_Z(j, W, len(lev)), len(lev)


def brms_proper_priors(table):
    """(class, resp) → prior of the rows of a brms ``prior_summary`` / ``get_prior`` table (or
    ours) that have a proper prior; brms' ``L`` / ``lkj_corr_cholesky(η)`` (its Cholesky-factor
    parametrisation) is the ``cor`` / ``lkj(η)`` prior on the correlation matrix."""
    out = {}
    for pr, c, r in zip(table["prior"], table["class"], table["resp"]):
        if pr and pr != "(flat)":
            if c == "L":
                c, pr = "cor", pr.replace("lkj_corr_cholesky", "lkj")
            out[(c, r)] = pr
    return out


def py_mode():
    """The PyTensor mode of the density checks (a test's own log-density / gradient at a few
    points, against scipy or a hand-written PyMC model): PyTensor's default rewrites
    (``fast_run``: the graph nutpie samples, same fusions and stabilisations) evaluated by the
    Python linker, so no C module is compiled (gcc was 20 of the 28 CPU s of a ZIP model's
    logp + dlogp, cold).  The C and numba backends themselves are checked by the sampling tests
    and by the tests that name a backend (test_ordinal's FAST_RUN / NUMBA cases, ...)."""
    from pytensor.compile.mode import Mode
    return Mode(linker="py", optimizer="fast_run")
