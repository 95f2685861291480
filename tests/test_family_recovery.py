"""Each response family and each link recovers the parameters it was simulated from.

The data are drawn here with scipy.stats in brms' parametrisation of each family (not with
``mf.simulate``, so a parametrisation error shared by the simulator and the model cannot
cancel out):

=============================  ==========================================================
student                        y = mu + sigma · t_nu                 (scipy.stats.t)
lognormal                      log y ~ N(mu, sigma)                  (lognorm(s=sigma, scale=e^mu))
poisson                        y ~ Poisson(mu)
negbinomial                    y ~ NB(mean mu, Var = mu + mu²/shape) (nbinom(shape, shape/(shape+mu)))
gamma                          y ~ Gamma(shape, scale = mu/shape)    (mean mu)
binomial / bernoulli           y ~ Binomial(trials, p)
=============================  ==========================================================

with mu (p) = inverse link of eta = b_Intercept + b_x·x + u_g[g], u_g ~ N(0, sd_g²) (a
``(1 + x | g)`` term for poisson). Every default link appears with its family, and the other
links identity, log, probit and cloglog once each (gaussian log, poisson identity, bernoulli
probit, binomial cloglog).

Not covered: the inverse and sqrt links. From the default initial point (the Intercept
prior's location 0, jittered by U(−1, 1)) the sampler starts on either side of η = 0, which it
cannot cross (inverse: mu = 1/η has a pole there; sqrt: mu = η² is mirror-symmetric and each
group's η can take either sign), so chains end in different modes: gaussian inverse (truth
b_Intercept 1, sd 0.1, σ 0.2) gave b_Intercept −1.0, sd 65, σ 1.09, Rhat 2.0; negbinomial
sqrt (truth 2, sd 0.4, shape 5) gave 0.28 / −0.62 in the two chains, sd 2.9, Rhat 1.8; gamma
inverse stops with "All initialization points failed". Even with priors that put the start
on the right side (Intercept normal(2, 1), sd normal(0, 0.5)) one chain of two stayed in a
wrong mode for one of two seeds. A recovery test of these links would fail by luck.

False-failure rate ≤ 0.1% for the whole module (nominal), any seed (MF_TEST_SEED): every truth
of every case is one of K = len(all truths) checks in one Bonferroni family
(sim.familywise_misses with alpha = 0.001, k = K = 38: z_crit = Φ⁻¹(1 − 0.001/76) ≈ 4.2
posterior sds on the log/atanh/identity scale, widened for Monte-Carlo error), so each case
fails with ≤ 0.001 · k_case / K ≈ 0.01%. The truths are fixed, not drawn from the prior, so
calibration is approximate, and the 10× margin below 1% leaves room for that: it was needed.
With alpha = 0.01 (z_crit 3.65) binomial_cloglog failed at MF_TEST_SEED=3 with z = 3.8 for
sd_g: the 30 simulated group effects there have sample sd 0.31 for a true 0.5 (χ²₂₉ lower
tail ≈ 0.2%), and the sds of binomial-type data have a skewed posterior (hence also 10–30
trials per row and 20 bernoulli rows per group). A wrong parametrisation (e.g. shape taken
as 1/shape, sigma as a variance) moves a parameter by many posterior sds and still fails.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedformula as mf
from sim import familywise_misses, seeds

J, N_PER = 30, 10


def _inv(link, eta):
    return {"identity": lambda e: e, "log": np.exp, "logit": lambda e: 1 / (1 + np.exp(-e)),
            "probit": stats.norm.cdf, "cloglog": lambda e: -np.expm1(-np.exp(e))}[link](eta)


def _draw(family, mu, truth, trials, rng):
    if family == "gaussian":
        return stats.norm(mu, truth["sigma"]).rvs(random_state=rng)
    if family == "student":
        return stats.t(df=truth["nu"], loc=mu, scale=truth["sigma"]).rvs(random_state=rng)
    if family == "lognormal":
        return stats.lognorm(s=truth["sigma"], scale=np.exp(mu)).rvs(random_state=rng)
    if family == "poisson":
        return stats.poisson(mu).rvs(random_state=rng).astype(float)
    if family == "negbinomial":
        k = truth["shape"]
        return stats.nbinom(k, k / (k + mu)).rvs(random_state=rng).astype(float)
    if family == "gamma":
        k = truth["shape"]
        return stats.gamma(a=k, scale=mu / k).rvs(random_state=rng)
    if family in ("binomial", "bernoulli"):
        return stats.binom(trials, mu).rvs(random_state=rng).astype(float)
    raise AssertionError(family)


# name: (family, link, truth, x range, n per group)
CASES = {
    "student": ("student", "identity", {"b_Intercept": 1.0, "b_x": 0.5,
                                        "sd_g__Intercept": 0.6, "sigma": 0.7, "nu": 5.0},
                "normal", N_PER),
    "lognormal": ("lognormal", "identity", {"b_Intercept": 0.5, "b_x": 0.4,
                                            "sd_g__Intercept": 0.5, "sigma": 0.4},
                  "normal", N_PER),
    "poisson": ("poisson", "log", {"b_Intercept": 1.0, "b_x": 0.4, "sd_g__Intercept": 0.5,
                                   "sd_g__x": 0.3, "cor_g__Intercept__x": 0.3},
                "normal", N_PER),
    "negbinomial": ("negbinomial", "log", {"b_Intercept": 1.5, "b_x": 0.4,
                                           "sd_g__Intercept": 0.5, "shape": 4.0},
                    "normal", N_PER),
    "gamma": ("gamma", "log", {"b_Intercept": 1.0, "b_x": 0.3, "sd_g__Intercept": 0.4,
                               "shape": 3.0}, "normal", N_PER),
    "binomial": ("binomial", "logit", {"b_Intercept": -0.5, "b_x": 0.8,
                                       "sd_g__Intercept": 0.6}, "normal", N_PER),
    "gaussian_log": ("gaussian", "log", {"b_Intercept": 1.0, "b_x": 0.3,
                                         "sd_g__Intercept": 0.3, "sigma": 0.5},
                     "normal", N_PER),
    "poisson_identity": ("poisson", "identity", {"b_Intercept": 6.0, "b_x": 1.5,
                                                 "sd_g__Intercept": 1.0},
                         "uniform", N_PER),
    "bernoulli_probit": ("bernoulli", "probit", {"b_Intercept": 0.3, "b_x": 0.8,
                                                 "sd_g__Intercept": 0.7},
                         "normal", 20),
    "binomial_cloglog": ("binomial", "cloglog", {"b_Intercept": -1.0, "b_x": 0.5,
                                                 "sd_g__Intercept": 0.5}, "normal", N_PER),
}
K = sum(len(case[2]) for case in CASES.values())
ALPHA = 0.001      # for the module (docstring)
# parametrization="auto" keeps non-centred group effects for families without an information
# rule (gaussian with a non-identity link, lognormal, gamma, ...), where with 10 rows per group
# centred mixes far better: gaussian log, bulk ESS of b_Intercept 28-41 and of sd 43-65 of 600
# draws non-centred vs 930-1000 and 860-900 centred (two seeds); lognormal 37-64, gamma 32-68
# (seeds 1-3). The rule is not this module's subject, the families and links are.
FIT_KW = {case: {"parametrization": "centred"}
          for case in ("gaussian_log", "lognormal", "gamma")}


def simulate(case, x_seed, y_seed):
    family, link, truth, x_kind, n_per = CASES[case]
    rng = np.random.default_rng(x_seed)
    n = J * n_per
    x = rng.normal(size=n) if x_kind == "normal" else rng.uniform(-1, 1, size=n)
    g = np.repeat(np.arange(J), n_per)
    trials = rng.integers(10, 31, size=n) if family == "binomial" else np.ones(n, int)
    rng = np.random.default_rng(y_seed)
    sd = np.array([truth["sd_g__Intercept"], truth.get("sd_g__x", 0.0)])
    rho = truth.get("cor_g__Intercept__x", 0.0)
    cov = np.diag(sd) @ np.array([[1.0, rho], [rho, 1.0]]) @ np.diag(sd)
    u = rng.multivariate_normal(np.zeros(2), cov, size=J)
    eta = truth["b_Intercept"] + truth["b_x"] * x + u[g, 0] + u[g, 1] * x
    df = pd.DataFrame({"x": x, "g": [f"g{j:02d}" for j in g]})
    df["y"] = _draw(family, _inv(link, eta), truth, trials, rng)
    if family == "binomial":
        df["n"] = trials
    return df


def formula(case):
    family, _, truth, _, _ = CASES[case]
    lhs = "y | trials(n)" if family == "binomial" else "y"
    re = "(1 + x | g)" if "sd_g__x" in truth else "(1 | g)"
    return f"{lhs} ~ x + {re}"


@pytest.mark.parametrize("case", list(CASES))
def test_family_recovers_simulation_truth(case):
    family, link, truth, _, _ = CASES[case]
    x_seed, y_seed, fit_seed = seeds(f"family-{case}", 101, 102, 103)
    df = simulate(case, x_seed, y_seed)
    fit = mf.fit(formula(case), df, family=family, link=link, draws=300, tune=300, chains=2,
                 seed=fit_seed, progressbar=False, **FIT_KW.get(case, {}))
    post = fit.idata.posterior
    assert set(truth) <= set(post.data_vars)
    assert familywise_misses(post, truth, alpha=ALPHA, k=K) == {}

