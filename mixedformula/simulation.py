"""Draw responses from a mixed model with known (brms-named) parameters.

``simulate(formula, data, params, family="gaussian", seed=...)`` returns a copy of ``data`` with
the response column(s) replaced by draws from

    u_j ~ N(0, G_b)  per level j of each covariance block b (G_b per by-level with gr(by=)),
    eta = X β + Σ_k (X_k ⊙ u_k[codes_k]) 1,
    y ~ family(inv_link(eta), ...)      (multivariate: y_i ~ N(eta_i, R), R = diag(σ) Ω diag(σ))

where G_b = diag(sd) Ω_b diag(sd) is assembled from ``sd_<group>__<coef>`` and
``cor_<group>__<c1>__<c2>`` (missing correlations and coefficients are 0) and η by
:class:`~mixedformula.results.posterior.PosteriorDraws` and
:func:`~mixedformula.results.posterior.linpred` from the one parameter set, as for a fit. The true group effects are returned in
``.attrs["true_ranef"]`` (dict group → DataFrame levels × coefficients).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .design import as_pandas, design_matrices
from .errors import DataError, MixedFormulaError
from .families import get_family
from .formula import parse
from .results.naming import ranef_name, sigma_name
from .results.posterior import PosteriorDraws, linpred, parameter_names


def _get(params: dict, name: str, default=None):
    if name in params:
        return float(params[name])
    if default is None:
        raise DataError(f"simulate: parameter {name!r} is needed but not given")
    return default


def simulate(formula: str, data, params: dict, family: str = "gaussian", seed=None,
             link: str | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spec = parse(formula)
    fam = get_family(family, link)
    df = as_pandas(data).copy()
    for text in spec.responses:
        col = text.strip("`")
        if col not in df.columns:
            df[col] = _placeholder(spec, df)
        elif fam.recodes_response and len(spec.responses) == 1:
            # categorical: the categories of the given response column (or of the family
            # object passed, when the column is absent)
            df[col], labels = fam.response_data(df[col], col)
            fam = fam.for_response(labels)
    spec = fam.formula_for(spec)
    design = design_matrices(spec, df)
    df = df.loc[design.row_index].copy()
    resp = design.response_names
    mv = len(resp) > 1
    given = {name: float(v) for name, v in params.items()}
    names = parameter_names(design)
    needed = names["sd"] + ([sigma_name(rn) for rn in resp] if mv else [])
    for name in needed:
        _get(given, name)
    # b and cor not given are 0; rescor not given is 0 (a correlation that is not a parameter)
    draws = PosteriorDraws.from_params({**{n: 0.0 for n in names["b"]}, **given}, design)
    true_ranef, r_parts = {}, {}
    for blk in draws.blocks:
        G = draws.block_cov(blk)[0]                                # (H, Q, Q)
        u = np.zeros((blk.J, blk.Q))
        for h in range(blk.H):
            rows = np.nonzero(blk.by_codes == h)[0] if blk.by_levels else np.arange(blk.J)
            u[rows] = rng.multivariate_normal(np.zeros(blk.Q), G[h], size=len(rows),
                                              method="cholesky")
        r_parts.setdefault(blk.group, []).append(u)
        prev = true_ranef.get(blk.group)
        frame = pd.DataFrame(u, index=blk.levels, columns=blk.labels)
        true_ranef[blk.group] = frame if prev is None else pd.concat([prev, frame], axis=1)
    ranef = {ranef_name(g): np.concatenate(parts, axis=1) for g, parts in r_parts.items()}
    draws = PosteriorDraws.from_params({**{n: 0.0 for n in names["b"]}, **given, **ranef},
                                       design)
    eta = linpred(draws, design)[0]                                  # (n, r)
    if mv and design.dpar_keys:
        raise MixedFormulaError("simulate() does not yet take distributional formulas in "
                                "multivariate models")
    if mv:
        sig, cor = draws.residual_sd_cor(None, 1)
        s, omega = sig[0, 0], cor[0, 0]
        R = s[:, None] * omega * s[None, :]
        y = eta + rng.multivariate_normal(np.zeros(len(resp)), R, size=design.nobs,
                                          method="cholesky")
    else:
        mu = fam.inverse_link(eta[:, 0])
        given_dpars = dict(params)
        for d, _ in design.dpar_keys:      # sigma ~ x: b_sigma_* given, θ per row
            from .families.links import get_link
            given_dpars[d] = draws.dpar_rows(d, 0, design, get_link(fam.dpar_link(d)))[0]
        y = _draw_additions(fam, mu, given_dpars, design, spec, rng)[:, None]
    for k, text in enumerate(spec.responses):
        df[text.strip("`")] = fam.response_values(y[:, k])
    df.attrs["true_ranef"] = true_ranef
    return df


def _placeholder(spec, df):
    """A response value the design accepts before the response is drawn: inside the trunc()
    bounds when they are numbers or columns (1.0 otherwise)."""
    a = spec.additions
    for b in (a.lb, a.ub):
        if b is None:
            continue
        if b.text is None and np.isfinite(b.value):
            return float(b.value)
        if b.text is not None and b.text.strip("`") in df.columns:
            return df[b.text.strip("`")].to_numpy(dtype=float)
    return 1.0


def _draw_additions(fam, mu, params: dict, design, spec, rng) -> np.ndarray:
    """One response draw per row as brms' posterior_predict: trials used, weights() and cens()
    ignored (uncensored draws), se() in the residual sd sqrt(se² + σ²) (σ = 0 without
    sigma = TRUE), trunc() drawn again until inside the bounds."""
    a = spec.additions
    if not (a.se or a.trunc):
        return _draw(fam, mu, params, design.trials, rng)
    from .design.additions import addition_draws
    params = dict(params)
    if a.se:
        params["sigma"] = _get(params, "sigma") if a.se_sigma else 0.0
    return np.ravel(addition_draws(lambda p: _draw(fam, mu, p, design.trials, rng), params,
                                   design))


def _draw(fam, mu: np.ndarray, params: dict, trials, rng) -> np.ndarray:
    if fam.uses_trials and trials is None:
        raise DataError(f"simulate: {fam.name} needs y | trials(n) in the formula")
    return fam.rvs(mu, {d: _thresholds(params) if d == "thres" else
                        (params[d] if np.ndim(params.get(d))
                         else _get(params, d, fam.fixed_dpars.get(d)))
                        for d in fam.dpars}, rng, trials)


def _thresholds(params: dict) -> np.ndarray:
    """The ordinal thresholds ``b_Intercept[1]``, ``b_Intercept[2]``, ... given (in order)."""
    from .results.naming import split_threshold, threshold_name
    ks = sorted(k for k in (split_threshold(n) for n in params) if k is not None)
    if not ks or ks != list(range(1, len(ks) + 1)):
        raise DataError("simulate: an ordinal family needs its thresholds b_Intercept[1], "
                        "b_Intercept[2], ... (K - 1 of them, increasing for cumulative)")
    return np.array([float(params[threshold_name(k)]) for k in ks])


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
