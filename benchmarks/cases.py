"""Benchmark cases (issue 7): formulas per tool and deterministic data.

Imported by ``run.py`` (main environment) and by ``worker.py`` (main environment *and* the
separate bambi environment), so it needs only numpy and pandas.

Each case is a dict with:

* ``formula``   – mixedformula / lme4 formula;
* ``bambi``     – the closest bambi formula (bambi's group effects are always uncorrelated, so a
  correlated ``(1 + x | g)`` is fitted by bambi as the ``||`` model), or None if bambi cannot fit it;
* ``family``    – "gaussian" or "bernoulli";
* ``kind``      – "fit" or "design" (case 5: the design step alone);
* ``data(seed)``– a pandas DataFrame (grouping columns are pandas categoricals of strings).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def _levels(prefix: str, J: int) -> list[str]:
    w = len(str(J - 1))
    return [f"{prefix}{j:0{w}d}" for j in range(J)]


def _cat(codes: np.ndarray, prefix: str, J: int) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=_levels(prefix, J))


def sleepstudy(seed: int = 0) -> pd.DataFrame:
    df = pd.read_csv(os.path.join(ROOT, "mixedformula", "datasets", "sleepstudy.csv"),
                     dtype={"Subject": str})
    df["Subject"] = pd.Categorical(df["Subject"])
    return df


def gaussian_slopes(N: int, J: int = 1000, seed: int = 1) -> pd.DataFrame:
    """y = 1 + 0.5 x1 - 0.3 x2 + u0_g + u1_g x1 + e; sd(u) = (1, 0.5), cor 0.3, sigma 1."""
    rng = np.random.default_rng(seed)
    g = np.arange(N) % J                      # balanced, N/J rows per group
    rng.shuffle(g)
    x1 = rng.normal(size=N)
    x2 = rng.normal(size=N)
    sd = np.array([1.0, 0.5])
    C = np.array([[1.0, 0.3], [0.3, 1.0]])
    u = rng.multivariate_normal(np.zeros(2), np.outer(sd, sd) * C, size=J)
    y = 1.0 + 0.5 * x1 - 0.3 * x2 + u[g, 0] + u[g, 1] * x1 + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": _cat(g, "g", J)})


def bernoulli_slopes(N: int = 20_000, J: int = 200, seed: int = 2,
                     x_levels: int | None = None) -> pd.DataFrame:
    """logit p = -0.5 + 0.8 x + u0_g + u1_g x; sd(u) = (0.8, 0.4), cor -0.2.

    ``x`` is continuous by default (no identical rows to collapse); with ``x_levels`` it takes
    that many distinct values (a dose-like covariate), the case where collapsing identical
    rows into binomial counts pays off.
    """
    rng = np.random.default_rng(seed)
    g = np.arange(N) % J
    rng.shuffle(g)
    if x_levels:
        x = rng.integers(0, x_levels, size=N) / (x_levels - 1) * 2 - 1
    else:
        x = rng.normal(size=N)
    sd = np.array([0.8, 0.4])
    C = np.array([[1.0, -0.2], [-0.2, 1.0]])
    u = rng.multivariate_normal(np.zeros(2), np.outer(sd, sd) * C, size=J)
    eta = -0.5 + 0.8 * x + u[g, 0] + u[g, 1] * x
    y = (rng.uniform(size=N) < 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": _cat(g, "g", J)})


def _slopes_eta(N, J, seed, b0, b1, sd, cor):
    rng = np.random.default_rng(seed)
    g = np.arange(N) % J
    rng.shuffle(g)
    x = rng.normal(size=N)
    C = np.array([[1.0, cor], [cor, 1.0]])
    u = rng.multivariate_normal(np.zeros(2), np.outer(sd, sd) * C, size=J)
    return rng, g, x, b0 + b1 * x + u[g, 0] + u[g, 1] * x


def cumulative_slopes(N: int = 5_000, J: int = 100, seed: int = 7) -> pd.DataFrame:
    """4 ordered categories, P(y <= k) = expit(tau_k - eta), tau = (-1, 0.3, 1.5),
    eta = 0.7 x + u0_g + u1_g x; sd(u) = (0.6, 0.4), cor 0.3. y is an ordered categorical."""
    rng, g, x, eta = _slopes_eta(N, J, seed, 0.0, 0.7, np.array([0.6, 0.4]), 0.3)
    tau = np.array([-1.0, 0.3, 1.5])
    cdf = 1 / (1 + np.exp(-(tau[None, :] - eta[:, None])))
    y = 1 + (rng.uniform(size=N)[:, None] > cdf).sum(1)
    return pd.DataFrame({"y": pd.Categorical(y, categories=[1, 2, 3, 4], ordered=True),
                         "x": x, "g": _cat(g, "g", J)})


def zip_slopes(N: int = 5_000, J: int = 100, seed: int = 8) -> pd.DataFrame:
    """zero-inflated Poisson, zi = 0.3, log mu = 0.8 + 0.4 x + u0_g + u1_g x; sd(u) = (0.5,
    0.3), cor 0.3."""
    rng, g, x, eta = _slopes_eta(N, J, seed, 0.8, 0.4, np.array([0.5, 0.3]), 0.3)
    y = np.where(rng.uniform(size=N) < 0.3, 0, rng.poisson(np.exp(eta))).astype(float)
    return pd.DataFrame({"y": y, "x": x, "g": _cat(g, "g", J)})


def crossed(N: int = 100_000, Ja: int = 1000, Jb: int = 300, seed: int = 3) -> pd.DataFrame:
    """y = 2 + 0.5 x + a + b + e; sd_a 1, sd_b 0.5, sigma 1."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, Ja, size=N)
    b = rng.integers(0, Jb, size=N)
    x = rng.normal(size=N)
    y = 2 + 0.5 * x + rng.normal(0, 1.0, Ja)[a] + rng.normal(0, 0.5, Jb)[b] + rng.normal(size=N)
    return pd.DataFrame({"y": y, "x": x, "a": _cat(a, "a", Ja), "b": _cat(b, "b", Jb)})


def multivariate(J: int = 16, n_per: int = 60, seed: int = 6) -> pd.DataFrame:
    """mvbind(m1, m2) ~ p1 + p2 + p3 + (1 + p1 | p | g), residual correlation 0.5."""
    rng = np.random.default_rng(seed)
    N = J * n_per
    g = np.repeat(np.arange(J), n_per)
    p1, p2, p3 = rng.normal(size=(3, N))
    sd = np.array([1.0, 0.5, 0.8, 0.4])                  # m1_Int, m1_p1, m2_Int, m2_p1
    C = np.full((4, 4), 0.2) + 0.8 * np.eye(4)
    u = rng.multivariate_normal(np.zeros(4), np.outer(sd, sd) * C, size=J)
    R = np.array([[1.0, 0.5 * 0.7], [0.5 * 0.7, 0.49]])
    e = rng.multivariate_normal(np.zeros(2), R, size=N)
    m1 = 1 + 0.5 * p1 - 0.2 * p2 + 0.1 * p3 + u[g, 0] + u[g, 1] * p1 + e[:, 0]
    m2 = -1 + 0.3 * p1 + 0.4 * p2 - 0.3 * p3 + u[g, 2] + u[g, 3] * p1 + e[:, 1]
    return pd.DataFrame({"m1": m1, "m2": m2, "p1": p1, "p2": p2, "p3": p3,
                         "g": _cat(g, "g", J)})


def distributional(J: int = 100, n_per: int = 20, seed: int = 8) -> pd.DataFrame:
    """y ~ N(1 + 0.5 x + u_g, σ_i), log σ_i = -0.3 + 0.4 x + v_g; u ~ N(0, 0.6²), v ~ N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    N = J * n_per
    g = np.repeat(np.arange(J), n_per)
    x = rng.normal(size=N)
    u, v = rng.normal(0, 0.6, J), rng.normal(0, 0.3, J)
    y = 1 + 0.5 * x + u[g] + np.exp(-0.3 + 0.4 * x + v[g]) * rng.normal(size=N)
    return pd.DataFrame({"y": y, "x": x, "g": _cat(g, "g", J)})


def poisson_offset(N: int = 20_000, J: int = 200, seed: int = 7) -> pd.DataFrame:
    """y ~ Poisson(t · exp(0.3 + 0.5 x + u_g)), exposure t ~ U(0.5, 5), sd(u) = 0.5."""
    rng = np.random.default_rng(seed)
    g = np.arange(N) % J
    rng.shuffle(g)
    x = rng.normal(size=N)
    t = rng.uniform(0.5, 5.0, N)
    y = rng.poisson(t * np.exp(0.3 + 0.5 * x + rng.normal(0, 0.5, J)[g])).astype(float)
    return pd.DataFrame({"y": y, "x": x, "t": t, "g": _cat(g, "g", J)})


CASES: dict[str, dict] = {
    "1": dict(title="sleepstudy Reaction ~ Days + (Days | Subject) (180 rows, 18 groups)",
              formula="Reaction ~ Days + (Days | Subject)",
              bambi="Reaction ~ Days + (Days | Subject)",
              family="gaussian", kind="fit", data=lambda: sleepstudy()),
    "2a": dict(title="gaussian y ~ x1 + x2 + (1 + x1 | g), J=1000, N=1e4",
               formula="y ~ x1 + x2 + (1 + x1 | g)", bambi="y ~ x1 + x2 + (1 + x1 | g)",
               family="gaussian", kind="fit", data=lambda: gaussian_slopes(10_000)),
    "2b": dict(title="gaussian y ~ x1 + x2 + (1 + x1 | g), J=1000, N=1e5",
               formula="y ~ x1 + x2 + (1 + x1 | g)", bambi="y ~ x1 + x2 + (1 + x1 | g)",
               family="gaussian", kind="fit", data=lambda: gaussian_slopes(100_000)),
    "2c": dict(title="gaussian y ~ x1 + x2 + (1 + x1 | g), J=1000, N=1e6",
               formula="y ~ x1 + x2 + (1 + x1 | g)", bambi="y ~ x1 + x2 + (1 + x1 | g)",
               family="gaussian", kind="fit", data=lambda: gaussian_slopes(1_000_000)),
    "3": dict(title="bernoulli y ~ x + (1 + x | g), N=2e4, J=200",
              formula="y ~ x + (1 + x | g)", bambi="y ~ x + (1 + x | g)",
              family="bernoulli", kind="fit", data=lambda: bernoulli_slopes()),
    "4": dict(title="crossed y ~ x + (1 | a) + (1 | b), 1000 x 300 levels, N=1e5",
              formula="y ~ x + (1 | a) + (1 | b)", bambi="y ~ x + (1 | a) + (1 | b)",
              family="gaussian", kind="fit", data=lambda: crossed()),
    "5": dict(title="design step alone, y ~ x1 + x2 + (1 + x1 | g), N=1e6, J=1000",
              formula="y ~ x1 + x2 + (1 + x1 | g)", bambi="y ~ x1 + x2 + (1 + x1 | g)",
              family="gaussian", kind="design", data=lambda: gaussian_slopes(1_000_000)),
    "6": dict(title="multivariate mvbind(m1, m2) ~ p1 + p2 + p3 + (1 + p1 | p | g), rescor, "
                    "16 groups x 60 rows",
              formula="mvbind(m1, m2) ~ p1 + p2 + p3 + (1 + p1 | p | g)",
              bambi=None, family="gaussian", kind="fit", data=lambda: multivariate()),
    "7": dict(title="cumulative logit y ~ x + (1 + x | g), 4 categories, N=5e3, J=100",
              formula="y ~ x + (1 + x | g)", bambi="y ~ x + (1 + x | g)",
              family="cumulative", kind="fit", data=lambda: cumulative_slopes()),
    # the sequential ordinal families on case 7's data (benchmarks/grad_cost.py only; not in
    # ORDER, no bambi model)
    **{fam: dict(title=f"{fam} logit y ~ x + (1 + x | g), 4 categories, N=5e3, J=100",
                 formula="y ~ x + (1 + x | g)", bambi=None, family=fam, kind="fit",
                 data=lambda: cumulative_slopes())
       for fam in ("sratio", "cratio", "acat")},
    "8": dict(title="zero_inflated_poisson y ~ x + (1 + x | g), N=5e3, J=100",
              formula="y ~ x + (1 + x | g)", bambi="y ~ x + (1 + x | g)",
              family="zero_inflated_poisson", kind="fit", data=lambda: zip_slopes()),
    "dpar": dict(title="distributional bf(y ~ x + (1 | g), sigma ~ x + (1 | g)), 100 groups x 20 "
                       "rows",
                 formula="bf(y ~ x + (1 | g), sigma ~ x + (1 | g))",
                 bambi=("y ~ x + (1 | g)", "sigma ~ x + (1 | g)"), family="gaussian",
                 kind="fit", data=lambda: distributional()),
    "offset": dict(title="poisson y ~ x + offset(log(t)) + (1 | g), exposure offset, N=2e4, "
                         "J=200",
              formula="y ~ x + offset(log(t)) + (1 | g)",
              bambi="y ~ x + offset(log(t)) + (1 | g)", family="poisson", kind="fit",
              data=lambda: poisson_offset()),
}

# case "1" → ids in the order run
ORDER = ["1", "2a", "2b", "2c", "3", "4", "5", "6", "7", "8", "dpar", "offset"]


def expand(selection: str | None) -> list[str]:
    """"1,2,3" → ["1", "2a", "2b", "2c", "3"]; "2b" stays "2b"."""
    if not selection:
        return list(ORDER)
    out = []
    for s in selection.split(","):
        s = s.strip()
        out += [c for c in ORDER if c == s or (c[0] == s and len(s) == 1)]
    return out
