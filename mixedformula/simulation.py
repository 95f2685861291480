"""Draw responses from a mixed model with known (brms-named) parameters.

``simulate(formula, data, params, family="gaussian", seed=...)`` returns a copy of ``data`` with
the response column(s) replaced by draws from

    u_j ~ N(0, G_b)  per level j of each covariance block b (G_b per by-level with gr(by=)),
    eta = X β + Σ_k (X_k ⊙ u_k[codes_k]) 1,
    y ~ family(inv_link(eta), ...)      (multivariate: y_i ~ N(eta_i, R), R = diag(σ) Ω diag(σ))

where G_b = diag(sd) Ω_b diag(sd) is assembled from ``sd_<group>__<coef>`` and
``cor_<group>__<c1>__<c2>`` (missing correlations are 0). The true group effects are returned in
``.attrs["true_ranef"]`` (dict group → DataFrame levels × coefficients).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .design import as_pandas, design_matrices
from .design.names import cor_name
from .errors import DataError
from .families import get_family, inverse_link_numpy
from .formula import parse


def _get(params: dict, name: str, default=None):
    if name in params:
        return float(params[name])
    if default is None:
        raise DataError(f"simulate: parameter {name!r} is needed but not given")
    return default


def simulate(formula: str, data, params: dict, family: str = "gaussian", seed=None,
             link: str | None = None) -> pd.DataFrame:
    from .backends.pymc.structure import build_blocks
    rng = np.random.default_rng(seed)
    spec = parse(formula)
    fam = get_family(family, link)
    df = as_pandas(data).copy()
    for text in spec.responses:
        col = text.strip("`")
        if col not in df.columns:
            df[col] = 1.0
    design = design_matrices(spec, df)
    df = df.loc[design.row_index].copy()
    n, r = design.nobs, len(design.response_names)
    mv = r > 1
    resp = design.response_names
    eta = np.zeros((n, r))
    for k in range(r):
        pre = f"{resp[k]}_" if mv else ""
        Xk, names = design.fixed(k)
        beta = np.array([_get(params, f"b_{pre}{c}", 0.0) for c in names])
        eta[:, k] = Xk @ beta
    blocks = build_blocks(design, r, resp)
    true_ranef = {}
    for b in blocks:
        H = b.H
        u = np.zeros((b.J, b.Q))
        for h in range(H):
            tag = f":{b.by}{b.by_levels[h]}" if b.by_levels else ""
            sd = np.array([_get(params, f"sd_{b.group}__{lab}{tag}") for lab in b.labels])
            cor = np.eye(b.Q)
            if b.correlated:
                for i in range(b.Q):
                    for j in range(i + 1, b.Q):
                        c = _get(params, cor_name(b.group, b.labels[i], b.labels[j], tag),
                                 0.0)
                        cor[i, j] = cor[j, i] = c
            G = sd[:, None] * cor * sd[None, :]
            rows = np.nonzero(b.by_codes == h)[0] if b.by_levels else np.arange(b.J)
            u[rows] = rng.multivariate_normal(np.zeros(b.Q), G, size=len(rows),
                                              method="cholesky")
        for part in b.parts:
            t = design.terms[part.term]
            up = u[:, part.offset:part.offset + part.q]
            eta[:, part.response] += np.sum(t.X * up[t.codes], axis=1)
        prev = true_ranef.get(b.group)
        frame = pd.DataFrame(u, index=b.levels, columns=b.labels)
        true_ranef[b.group] = frame if prev is None else pd.concat([prev, frame], axis=1)
    if mv:
        sig = np.array([_get(params, f"sigma_{rn}") for rn in resp])
        omega = np.eye(r)
        for i in range(r):
            for j in range(i + 1, r):
                omega[i, j] = omega[j, i] = _get(params, f"rescor__{resp[i]}__{resp[j]}", 0.0)
        R = sig[:, None] * omega * sig[None, :]
        y = eta + rng.multivariate_normal(np.zeros(r), R, size=n, method="cholesky")
    else:
        mu = inverse_link_numpy(fam.link)(eta[:, 0])
        y = _draw(fam.name, mu, params, design.trials, rng)[:, None]
    for k, text in enumerate(spec.responses):
        df[text.strip("`")] = y[:, k]
    df.attrs["true_ranef"] = true_ranef
    return df


def _draw(family: str, mu: np.ndarray, params: dict, trials, rng) -> np.ndarray:
    if family == "gaussian":
        return rng.normal(mu, _get(params, "sigma"))
    if family == "student":
        return mu + _get(params, "sigma") * rng.standard_t(_get(params, "nu"), size=mu.shape)
    if family == "lognormal":
        return np.exp(rng.normal(mu, _get(params, "sigma")))
    if family == "bernoulli":
        return (rng.random(mu.shape) < mu).astype(float)
    if family == "binomial":
        if trials is None:
            raise DataError("simulate: binomial needs y | trials(n) in the formula")
        return rng.binomial(trials.astype(int), mu).astype(float)
    if family == "poisson":
        return rng.poisson(mu).astype(float)
    if family == "negbinomial":
        shape = _get(params, "shape")
        return rng.poisson(rng.gamma(shape, mu / shape)).astype(float)
    if family == "gamma":
        shape = _get(params, "shape")
        return rng.gamma(shape, mu / shape)
    raise DataError(f"simulate: family {family!r} is not supported")


# --------------------------------------------------------------------------- InstEval-shaped data

#: parameters close to lme4's fit of ``y ~ service + (1 | s) + (1 | d) + (1 | dept)`` on lme4's
#: InstEval (the real data set is not bundled; its response is an ordinal 1–5 rating).
INSTEVAL_PARAMS = {"b_Intercept": 3.2, "b_service1": -0.07, "sd_s__Intercept": 0.32,
                   "sd_d__Intercept": 0.51, "sd_dept__Intercept": 0.08, "sigma": 1.18}
INSTEVAL_FORMULA = "y ~ service + (1 | s) + (1 | d) + (1 | dept)"


def insteval_like(scale: float = 1.0, seed=0, params: dict | None = None) -> pd.DataFrame:
    """Simulated data shaped like lme4's InstEval, Gaussian response from :data:`INSTEVAL_PARAMS`.

    Full size (``scale = 1``): about 73 000 ratings by 2972 students ``s`` of 1128 instructors
    ``d`` in 14 departments ``dept``; ``service`` is a 0/1 factor. ``scale`` shrinks the
    numbers of rows, students and instructors together (departments stay 14). Imbalance as in
    the real data: ratings per student ~ 1 + NegBin (mean ≈ 24.7, long right tail), instructor
    popularity log-normal (a few instructors get hundreds of ratings, many only a handful),
    department sizes uneven; a student rates mostly (70 %) instructors of a home department; an
    instructor teaches mostly in one department but 10 % of ratings fall in another (so ``d``
    and ``dept`` are crossed, not nested); each instructor has their own share of service
    lectures (Beta(0.5, 1)). Every student and instructor has at least one rating. The response
    is drawn with :func:`simulate` (so the true group effects are in ``.attrs["true_ranef"]``).
    """
    if not (isinstance(scale, (int, float)) and 0 < scale <= 100):
        raise DataError(f"insteval_like: scale must be a number in (0, 100], not {scale!r}")
    rng = np.random.default_rng(seed)
    n_s, n_d, n_dept = max(4, round(2972 * scale)), max(4, round(1128 * scale)), 14
    per_s = 1 + rng.negative_binomial(2.0, 2.0 / (2.0 + 23.7), size=n_s)
    dept_w = rng.dirichlet(np.full(n_dept, 2.0))
    d_dept = rng.choice(n_dept, size=n_d, p=dept_w)
    d_dept[:n_dept] = np.arange(n_dept)                 # every department has an instructor
    pop = rng.lognormal(0.0, 1.2, size=n_d)
    s_home = rng.choice(n_dept, size=n_s, p=dept_w)
    s = np.repeat(np.arange(n_s), per_s)
    n = len(s)
    home = rng.random(n) < 0.7
    d = np.empty(n, dtype=np.int64)
    # home-department picks: instructor drawn by popularity within the student's department
    for k in range(n_dept):
        members = np.nonzero(d_dept == k)[0]
        rows = np.nonzero(home & (s_home[s] == k))[0]
        w = pop[members] / pop[members].sum()
        d[rows] = members[rng.choice(len(members), size=len(rows), p=w)]
    rows = np.nonzero(~home)[0]
    d[rows] = rng.choice(n_d, size=len(rows), p=pop / pop.sum())
    missing = np.setdiff1d(np.arange(n_d), d)            # every instructor rated at least once
    d[rng.choice(n, size=len(missing), replace=False)] = missing
    dept = np.where(rng.random(n) < 0.9, d_dept[d], rng.choice(n_dept, size=n, p=dept_w))
    service = (rng.random(n) < rng.beta(0.5, 1.0, size=n_d)[d]).astype(int)

    def cat(codes, prefix, J):
        w = len(str(J))
        return pd.Categorical.from_codes(codes, [f"{prefix}{j + 1:0{w}d}" for j in range(J)])

    data = pd.DataFrame({"s": cat(s, "s", n_s), "d": cat(d, "d", n_d),
                         "dept": cat(dept, "dept", n_dept),
                         "service": pd.Categorical(service.astype(str), ["0", "1"]),
                         "y": 0.0})
    return simulate(INSTEVAL_FORMULA, data, params or INSTEVAL_PARAMS, seed=rng)
