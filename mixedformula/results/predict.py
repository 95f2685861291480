r"""Predictions from the posterior draws (brms' ``posterior_linpred``/``posterior_epred``/
``posterior_predict``), posterior and prior predictive draws.

For posterior draw s and a row i of (new) data with fixed-part row x_i and, for group term k,
coefficient multipliers z_{k,i} (the term's left side) and level j = code_k(i):

    linpred:   η_i⁽ˢ⁾ = x_iᵀ β⁽ˢ⁾ + Σ_k z_{k,i}ᵀ u_{k, j}⁽ˢ⁾
    epred:     E[y_i | η] = g⁻¹(η_i)          (lognormal: exp(μ + σ²/2); binomial: trials · p;
               ordinal families: the K category probabilities, draws × rows × K as brms)
    response:  y_i⁽ˢ⁾ ~ family(g⁻¹(η_i⁽ˢ⁾), σ⁽ˢ⁾, ν⁽ˢ⁾, shape⁽ˢ⁾)   (mvbind with rescor:
               y_i⁽ˢ⁾ ~ MvNormal(η_i⁽ˢ⁾, R⁽ˢ⁾), R = diag(σ) Ω diag(σ))

with u_{k,j}⁽ˢ⁾ read from ``r_<group>`` (for the marginal engine these are the exact draws from
u | y, β, G, σ made after sampling, so both engines predict the same way) and

* a level not seen in fitting (code ≥ J, see :meth:`DesignSpec.transform`):
  ``new_groups="sample"`` draws u⁽ˢ⁾ ~ N(0, G⁽ˢ⁾) once per new level and draw, G⁽ˢ⁾ of the
  level's covariance block (for ``gr(g, by = h)`` the G of its level of h) — brms'
  ``sample_new_levels = "gaussian"``; ``"zero"`` sets u = 0 (population level for that level);
  ``"error"`` raises :class:`~mixedformula.DataError` naming the levels;
* a missing group value (code −1): u = 0, the population-level prediction for that term;
* ``re_formula``: ``None`` keeps every group term, ``"~0"`` (or ``"NA"``) none — the
  population-level prediction x_iᵀβ — and e.g. ``"~ (1 | Subject)"`` keeps only the named
  coefficients of the named grouping factors (the other group terms count as 0), as brms does.

η is :func:`mixedformula.results.posterior.linpred` (σ, R, ν, shape per row from
:class:`~mixedformula.results.posterior.PosteriorDraws`). Prior and prior predictive draws:
:mod:`mixedformula.results.prior`.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import xarray as xr

from ..design import as_pandas, design_matrices
from ..errors import DataError, MixedFormulaError
from ..formula import parse
from .idata_groups import set_group
from .mv_family import draw_response as mixed_draw_response
from .mv_family import expected_value as mixed_expected_value
from .mv_family import is_mixed
from .posterior import NEW_GROUPS, PosteriorDraws, draw_subset, linpred, psd_factor
from .tables import q_names

KINDS = ("epred", "linpred", "response")


# --------------------------------------------------------------------------- re_formula

def _re_selection(fit, re_formula, newdata) -> list[set | None] | None:
    """Per design term: the coefficient names to keep (None: all); None: keep everything.

    An empty set drops the term. ``re_formula`` is read with the package's own parser and its
    coefficient names are found by building the bars' left sides on the data (so ``(1 | g)``
    keeps the intercept of a ``(Days | g)`` term).
    """
    terms = fit.design.terms
    if re_formula is None:
        return None
    text = str(re_formula).strip()
    rhs = text.split("~", 1)[1].strip() if "~" in text else text
    if rhs in ("", "0", "NA", "-1", "1", "0 + 1") or rhs.upper() == "NA":
        return [set() for _ in terms]
    spec = parse(f"mf_dummy_response_ ~ 1 + {rhs}")
    if not spec.groups:
        return [set() for _ in terms]
    known = {t.name for t in terms}
    for g in spec.groups:
        if g.group not in known:
            raise MixedFormulaError(f"re_formula names the grouping factor {g.group!r}, which "
                                    f"the model does not have (it has: {', '.join(sorted(known))})")
    df = newdata if newdata is not None else fit.data
    if df is None:
        raise MixedFormulaError("re_formula with a subset of coefficients needs data (pass "
                                "newdata=)")
    df = as_pandas(df).copy()
    df["mf_dummy_response_"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = design_matrices(spec, df)
    wanted: dict[str, set] = {}
    for t in d.terms:
        wanted.setdefault(t.name, set()).update(t.coef_names)
    out = []
    for t in terms:
        keep = wanted.get(t.name, set())
        out.append(keep & set(t.coef_names))
    for g, names in wanted.items():
        have = set().union(*[set(t.coef_names) for t in terms if t.name == g])
        extra = names - have
        if extra:
            raise MixedFormulaError(f"re_formula asks for coefficient(s) {', '.join(sorted(extra))}"
                                    f" of {g}, which the model's group terms do not have")
    return out


#: the public name (results/marginaleffects.py uses it)
re_selection = _re_selection


# --------------------------------------------------------------------------- design for rows

def _prepare_newdata(fit, newdata, keep):
    """Fill grouping columns that are absent from newdata but not needed (dropped terms)."""
    df = as_pandas(newdata)
    missing = []
    for k, t in enumerate(fit.design.terms):
        for f in list(t.term.factors) + ([t.term.by] if t.term.by else []):
            if f not in df.columns and f not in missing:
                missing.append(f)
    if not missing:
        return df
    needed = set()
    for k, t in enumerate(fit.design.terms):
        if keep is None or keep[k]:
            needed.update(t.term.factors)
            if t.term.by:
                needed.add(t.term.by)
    if needed & set(missing):
        return df   # transform raises its own, precise error
    df = df.copy()
    for f in missing:
        df[f] = None
    return df


def design_for(fit, newdata, keep=None):
    if newdata is None:
        if fit.design is None:
            raise MixedFormulaError("this Fit has no design; pass newdata=")
        return fit.design
    df = _prepare_newdata(fit, newdata, keep)
    return _with_new_lags(fit, df, fit.design.spec.transform(df))


def _with_new_lags(fit, df, design):
    """New data of an ``ar()`` model: as brms' ``prepare_predictions_ac`` (2.18), the series
    are the new rows alone (ordered by group, then time; the first new row of a group has no
    lag, the fitted rows are not prepended) and the lagged residuals are y − η of the new rows'
    own response, which ``design.y`` then holds (``design.autocor`` their lags). Where the
    response is missing brms draws it from posterior_predict row by row: refused here."""
    s = getattr(fit.design, "autocor", None)
    if s is None or s.kind not in ("ar", "arma"):
        return design
    from ..design.autocor import autocor_structure
    term = fit.design.formula.autocor[0]
    absent = [c for c in term.variables if c not in df.columns]
    if absent:
        raise DataError(f"new data for {term.text} need the column(s) {', '.join(absent)} "
                        "(the series and the order of the new rows)")
    resp = list(fit.design.formula.response_variables)
    absent = [c for c in resp if c not in df.columns]
    n_na = 0 if absent else int(df[resp].isna().any(axis=1).sum())
    if absent or n_na:
        what = (f"lack the response column(s) {', '.join(absent)}" if absent else
                f"have {n_na} missing response value(s)")
        raise DataError(f"predictions for new data of a model with {term.text} need the new "
                        f"rows' observed responses (the lagged residuals y − η of the earlier "
                        f"new rows of each series, as brms uses them), but the new data {what}; "
                        "brms fills missing responses with posterior_predict draws one row at a "
                        "time, which is not supported")
    y = np.asarray(fit.design.spec.transform(df, require_response=True).y, dtype=float)
    bad = [c for c in term.variables if df[c].isna().any()]
    if bad:
        raise DataError(f"new data have missing values in {', '.join(bad)} of {term.text} "
                        f"({int(df[bad].isna().any(axis=1).sum())} rows)")
    groups = None
    if term.gr is not None:
        codes, levels = pd.factorize(df[term.gr].astype(str), sort=True)
        groups = (codes.astype(np.int64), [str(v) for v in levels])
    design.autocor = autocor_structure(term, df.reset_index(drop=True), groups)
    design.y = y
    return design


# --------------------------------------------------------------------------- family pieces

def trials(fit, design, newdata) -> np.ndarray | None:
    """Binomial trials per row: of the fitted rows, or evaluated on ``newdata``."""
    spec = fit.design.spec
    if not spec.formula.trials:
        return None
    if newdata is None:
        return np.asarray(fit.design.trials, dtype=float)
    return spec.trials(newdata)


def _family_params(draws: PosteriorDraws, names, tags, n: int, design=None,
                   family=None) -> dict:
    """The family's further parameters per draw (and row for sigma), broadcasting to (S, n);
    a parameter with its own formula (``sigma ~ x``) per row of ``design`` (univariate)."""
    out = {}
    for d in names:
        if design is not None and (d, 0) in draws.design.dpar_keys:
            from ..families.links import get_link
            out[d] = draws.dpar_rows(d, 0, design, get_link(family.dpar_link(d)))
        elif d == "sigma":
            out[d] = draws.sigma_rows(None, tags, n)
        elif d == "thres" and design is not None:     # per row with cs() effects
            out[d] = draws.threshold_rows(design)
        else:
            fixed = None if family is None else family.fixed_dpars.get(d)
            out[d] = draws.dpar(d, fixed=fixed)[:, None]
    return out


#: the public name (results/r2.py uses it)
family_params = _family_params


def expected_value(fit, draws: PosteriorDraws, eta: np.ndarray, design, newdata) -> np.ndarray:
    """E[y | η, θ] per draw (S, n, r) in brms' posterior_epred convention."""
    fam = fit.family
    if is_mixed(fam):                 # one family per response (results/mv_family.py)
        return mixed_expected_value(fam, draws, eta, design, newdata)
    mu = fam.inverse_link(eta)
    if getattr(getattr(fit.design.formula, "additions", None), "trunc", False) and \
            eta.shape[-1] == 1:
        return _truncated_mean(fit, draws, mu, design, newdata)
    parts = getattr(design, "response_parts", None)
    if parts is not None and any(p.formula.additions.trunc for p in parts):
        return _truncated_mean_per_response(fam, draws, mu, design, newdata)
    if not fam.mean_dpars and not fam.uses_trials:
        return mu
    # the response axis goes after the rows (ordinal thresholds keep their own last axis)
    params = {k: np.expand_dims(v, 2) for k, v in _family_params(
        draws, fam.mean_dpars, draws.residual_tags(design, newdata), eta.shape[1], design,
        fam).items()}
    t = trials(fit, design, newdata) if fam.uses_trials else None
    return fam.mean(mu, params, None if t is None else t[None, :, None])


def _truncated_mean(fit, draws, mu, design, newdata) -> np.ndarray:
    """brms' posterior_epred of a trunc() model: E[y | lb ≤ y ≤ ub] (``Family.truncated_mean``),
    the bounds read from the design (new data must carry bound columns)."""
    from ..design.additions import residual_sd
    fam = fit.family
    if design.trunc is None:
        raise MixedFormulaError("the expected value of a trunc() model needs the bound "
                                "column(s) in the new data")
    n = mu.shape[1]
    params = _family_params(draws, fam.dpars, draws.residual_tags(design, newdata), n,
                            design, fam)
    if getattr(design, "se", None) is not None and "sigma" in params:
        params["sigma"] = residual_sd(params["sigma"], design.se[None, :])
    lb, ub = design.trunc
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = fam.truncated_mean(mu[..., 0], params, lb[None, :], ub[None, :])
    return np.asarray(m, dtype=float)[..., None]


def _truncated_mean_per_response(fam, draws, mu, design, newdata) -> np.ndarray:
    """E[y_k | lb ≤ y_k ≤ ub] for each response with trunc() (``Family.truncated_mean`` with
    sd √(σ_k² + se²)), μ_k for the others: brms' posterior_epred per response."""
    from ..design.additions import response_sds
    S, n, r = mu.shape
    sig, _ = draws.residual_sd_cor(draws.residual_tags(design, newdata), n, design, fam)
    sds = response_sds(sig, design)
    out = np.array(mu, dtype=float, copy=True)
    for k, part in enumerate(design.response_parts):
        if not part.formula.additions.trunc:
            continue
        if part.trunc is None:
            raise MixedFormulaError(f"the expected value of response "
                                    f"{design.response_names[k]} (trunc()) needs its bound "
                                    "column(s) in the new data")
        rows = design.rows(k)
        lb, ub = part.trunc
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out[:, rows, k] = fam.truncated_mean(mu[:, rows, k], {"sigma": sds[:, rows, k]},
                                                 lb[None, :], ub[None, :])
    return out


def draw_response(fit, draws: PosteriorDraws, eta: np.ndarray, design, newdata,
                  rng) -> np.ndarray:
    """One response draw per posterior draw and row (S, n, r)."""
    fam = fit.family
    if is_mixed(fam):                 # one family per response (results/mv_family.py)
        return mixed_draw_response(fam, draws, eta, design, newdata, rng)
    S, n, r = eta.shape
    tags = draws.residual_tags(design, newdata)
    if r > 1:
        sig, cor = draws.residual_sd_cor(tags, n, design, fam)
        if getattr(design, "response_parts", None) is not None:
            return _draw_per_response(fam, eta, sig, cor, design, rng)
        L = psd_factor(cor)
        z = rng.standard_normal((S, n, r))
        return eta + sig * np.einsum("snab,snb->sna", L, z)
    mu = fam.inverse_link(eta[..., 0])
    params = _family_params(draws, fam.dpars, tags, n, design, fam)
    cosy = getattr(fit.design, "autocor", None)
    if cosy is not None and cosy.kind == "cosy":
        return _draw_cosy(fit, draws, mu, params, design, rng)[..., None]
    if cosy is not None and cosy.kind == "cov_arma":
        return _draw_cov_arma(fit, draws, mu, params, design, rng)[..., None]
    if cosy is not None and cosy.kind == "unstr":
        raise MixedFormulaError(f"draws of the response of a model with {cosy.text} are not "
                                "supported yet: its residuals are correlated within groups "
                                "(use kind=\"epred\" for the expected values)")
    t = trials(fit, design, newdata) if fam.uses_trials else None
    tt = None if t is None else t[None, :]
    from ..design.additions import addition_draws
    y = addition_draws(lambda p: fam.rvs(mu, p, rng, tt), params, design,
                       draw_truncated=lambda p, lb, ub: fam.truncated_rvs(mu, p, lb, ub, rng,
                                                                          tt))
    return y[..., None]


def _draw_per_response(fam, eta, sig, cor, design, rng) -> np.ndarray:
    """Response draws (S, n, r) of a multivariate model with addition terms per response
    (brms' posterior_predict): without rescor each response on its own with its se() and
    trunc() (:func:`~mixedformula.design.additions.addition_draws`); with rescor (se() only
    changes draws) η + diag(s) chol(Ω) z with s = √(σ² + se²)."""
    from ..design.additions import addition_draws, response_sds
    S, n, r = eta.shape
    if np.any(cor != np.eye(r)):
        L = psd_factor(cor)
        z = rng.standard_normal((S, n, r))
        return eta + response_sds(sig, design) * np.einsum("snab,snb->sna", L, z)
    out = np.full((S, n, r), np.nan)
    for k, part in enumerate(design.response_parts):
        rows = design.rows(k)
        mu = fam.inverse_link(eta[:, rows, k])
        out[:, rows, k] = addition_draws(
            lambda p: fam.rvs(mu, p, rng, None), {"sigma": sig[:, rows, k]}, part,
            draw_truncated=lambda p, lb, ub: fam.truncated_rvs(mu, p, lb, ub, rng))
    return out


def _draw_cosy(fit, draws, mu, params, design, rng) -> np.ndarray:
    """Joint draws of a cosy() model per group: y = μ + σ(√(1 − ρ) z_i + √ρ w_g), whose
    covariance is σ²[(1 − ρ)I + ρ11ᵀ] within a group (brms' posterior_predict draws the MVN)."""
    s = fit.design.autocor
    if design is not fit.design:
        raise MixedFormulaError(f"response draws for new data of a model with {s.text} are not "
                                "supported (the new rows' groups and times are not coded); "
                                "use kind='epred' or the fitted data")
    rho = draws.scalar("cosy")[:, None]
    sigma = np.broadcast_to(params["sigma"], mu.shape)
    S, n = mu.shape
    z = rng.standard_normal((S, n))
    w = rng.standard_normal((S, len(s.levels)))[:, s.codes]
    return mu + sigma * (np.sqrt(1.0 - rho) * z + np.sqrt(rho) * w)


def _draw_cov_arma(fit, draws, mu, params, design, rng) -> np.ndarray:
    """Joint draws of a cov = TRUE model per group: y_j = μ_j + σ e_j, e_j ~ N(0, Γ[1:n_j, 1:n_j])
    (brms' posterior_predict draws the MVN), in O(T) through the banded factor of
    design/autocor.py: u = L̃ζ (u_t = L̃_tt ζ_t + θ ζ_{t−1} L̃_{t−1,t−1}⁻¹), then e_t = ρ e_{t−1} + u_t;
    student: the multivariate t, that draw times √(ν/W_j), W_j ~ χ²_ν one per group and draw."""
    from ..design.autocor import arma_band, geometric_scan
    s = fit.design.autocor
    if design is not fit.design:
        raise MixedFormulaError(f"response draws for new data of a model with {s.text} are not "
                                "supported; use kind='epred' or the fitted data")
    S, n = mu.shape
    T, G = int(s.pos.max()) + 1, len(s.levels)
    ar = draws.scalar("ar[1]") if s.p else np.zeros(S)
    ma = draws.scalar("ma[1]") if s.q else np.zeros(S)
    D = np.stack([arma_band(a, m, np.arange(1.0, T + 1)) for a, m in zip(ar, ma)], axis=1)
    d = np.sqrt(D[1:] / D[:-1])                                       # (T, S): L̃_tt
    zeta = rng.standard_normal((T, S, G))
    u = d[:, :, None] * zeta
    u[1:] += (ma[None, :] / d[:-1])[:, :, None] * zeta[:-1]
    e = geometric_scan(u, ar[:, None], T)[s.pos, :, s.codes].T        # (S, n)
    if "nu" in params:
        nu = np.broadcast_to(params["nu"], mu.shape)[:, :1]
        w = rng.chisquare(np.broadcast_to(nu, (S, len(s.levels))))
        e = e * np.sqrt(nu / w)[:, s.codes]
    sigma = np.broadcast_to(params["sigma"], mu.shape)
    return mu + sigma * e


# --------------------------------------------------------------------------- public

def predict(fit, newdata=None, kind: str = "epred", re_formula=None, new_groups: str = "sample",
            summary: bool = False, ndraws: int | None = None, seed=None,
            probs=(0.025, 0.975), dpar: str | None = None):
    """Draws (draws × rows; multivariate: draws × rows × responses) or a brms-style table.

    See :meth:`mixedformula.results.fit.Fit.predict`.
    """
    if kind not in KINDS:
        raise MixedFormulaError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if dpar is not None and dpar != "mu":
        return _predict_dpar(fit, newdata, kind, re_formula, new_groups, summary, ndraws,
                             seed, probs, dpar)
    rng = np.random.default_rng(seed)
    idx = draw_subset(fit.idata.posterior, ndraws, rng)
    keep = _re_selection(fit, re_formula, newdata)
    design = design_for(fit, newdata, keep)
    draws = PosteriorDraws.of_fit(fit, idx)
    eta = linpred(draws, design, keep, new_groups, rng)
    if kind == "linpred":
        out = eta
    elif kind == "epred":
        out = expected_value(fit, draws, eta, design, newdata)
    else:
        out = draw_response(fit, draws, eta, design, newdata, rng)
    if newdata is None and design.fixed_cols is not None and design.observed is not None:
        # bf() formulas on the fitted rows: response k's X is only evaluated where k is
        # observed; elsewhere there is no prediction (pass those rows as newdata instead)
        out = np.where(design.observed[None], out, np.nan)
    names = list(fit.design.response_names)
    if out.ndim == 4:        # ordinal epred (S, n, 1, K): brms' S x N x K probabilities
        out = out[:, :, 0, :]
        labels = fit.family.mean_categories(out.shape[-1] - 1) or range(1, out.shape[-1] + 1)
        names = [f"P(Y = {c})" for c in labels]
    elif out.shape[-1] == 1:
        out = out[..., 0]
    if not summary:
        return out
    return summarise(out, design, names, probs)


def _predict_dpar(fit, newdata, kind, re_formula, new_groups, summary, ndraws, seed, probs,
                  dpar: str):
    """``predict(dpar=)``: a family parameter per draw and row (brms' ``posterior_epred(fit,
    dpar = "sigma")``, ``posterior_linpred(..., dpar = )``): θ_{d,i} = h_d⁻¹(η_{d,i}) for a
    parameter with its own formula, else its scalar draws on every row."""
    fam = fit.family
    if dpar not in fam.dpars:
        raise MixedFormulaError(f"dpar={dpar!r}: the family {fam.name!r} has no such parameter "
                                f"(its parameters: mu{''.join(', ' + d for d in fam.dpars)})")
    if kind == "response":
        raise MixedFormulaError("dpar= gives a parameter, not responses: use kind='epred' "
                                "(the parameter) or kind='linpred' (its linear predictor)")
    rng = np.random.default_rng(seed)
    idx = draw_subset(fit.idata.posterior, ndraws, rng)
    keep = _re_selection(fit, re_formula, newdata)
    design = design_for(fit, newdata, keep)
    draws = PosteriorDraws.of_fit(fit, idx)
    linpred(draws, design, keep, new_groups, rng)
    resp = list(fit.design.response_names)
    n = design.X.shape[0]
    tags = draws.residual_tags(design, newdata)
    cols = []
    from ..families.links import get_link
    for k, rn in enumerate(resp):
        fam_k = fam.response(k)        # one family per response: its own parameters
        if dpar not in fam_k.dpars:    # (NaN for a response whose family has no such one)
            cols.append(np.full((draws.S, n), np.nan))
            continue
        if (dpar, k) in fit.design.dpar_keys:
            link = get_link(fam_k.dpar_link(dpar))
            ident = get_link("identity")
            v = draws.dpar_rows(dpar, k, design, ident if kind == "linpred" else link)
        else:
            if kind == "linpred":
                raise MixedFormulaError(f"{dpar} has no formula in this model, so it has no "
                                        "linear predictor: use kind='epred'")
            mv = len(resp) > 1
            v = draws.sigma_rows(rn if mv else None, tags, n) if dpar == "sigma" \
                else draws.dpar(dpar, rn if mv else None, fam_k.fixed_dpars.get(dpar))[:, None]
        cols.append(np.broadcast_to(v, (draws.S, n)))
    out = np.stack(cols, axis=-1)
    if out.shape[-1] == 1:
        out = out[..., 0]
    if not summary:
        return out
    return summarise(out, design, resp, probs)


def summarise(draws: np.ndarray, design, responses: list[str], probs=(0.025, 0.975)):
    index = pd.Index(design.row_index if design.row_index is not None
                     else np.arange(draws.shape[1]))

    def table(d):
        q = np.quantile(d, probs, axis=0)
        data = {"Estimate": d.mean(axis=0), "Est.Error": d.std(axis=0, ddof=1)}
        for name, row in zip(q_names(probs), q):
            data[name] = row
        return pd.DataFrame(data, index=index)

    if draws.ndim == 2:
        return table(draws)
    return pd.concat({rn: table(draws[..., k]) for k, rn in enumerate(responses)}, axis=1)




# --------------------------------------------------------------------------- predictive groups

def posterior_predictive(fit, seed=None):
    """Add ``posterior_predictive`` (and ``observed_data``) to ``fit.idata``: one response draw
    per posterior draw and observation, variables named after the responses (dims chain, draw,
    obs)."""
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    rng = np.random.default_rng(seed)
    design = fit.design
    draws = PosteriorDraws.of_fit(fit)
    eta = linpred(draws, design, None, "sample", rng)
    y = draw_response(fit, draws, eta, design, None, rng)
    n = y.shape[1]
    cd = {"chain": post.coords["chain"].values, "draw": post.coords["draw"].values,
          "obs": np.arange(n)}
    resp = list(design.response_names)
    pp = xr.Dataset({rn: xr.DataArray(y[..., k].reshape(C, D, n), dims=("chain", "draw", "obs"),
                                      coords=cd) for k, rn in enumerate(resp)})
    obs = xr.Dataset({rn: xr.DataArray(np.asarray(design.y)[:, k], dims=("obs",),
                                       coords={"obs": np.arange(n)})
                      for k, rn in enumerate(resp)})
    if "observed_data" in fit.idata.groups():
        old = fit.idata.observed_data
        obs = xr.merge([old[[v for v in old.data_vars if v not in resp]], obs],
                       compat="override")
    set_group(fit.idata, "observed_data", obs)
    set_group(fit.idata, "posterior_predictive", pp)
    return fit.idata
