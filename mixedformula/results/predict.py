r"""Predictions from the posterior draws (brms' ``posterior_linpred``/``posterior_epred``/
``posterior_predict``), posterior and prior predictive draws.

For posterior draw s and a row i of (new) data with fixed-part row x_i and, for group term k,
coefficient multipliers z_{k,i} (the term's left side) and level j = code_k(i):

    linpred:   η_i⁽ˢ⁾ = x_iᵀ β⁽ˢ⁾ + Σ_k z_{k,i}ᵀ u_{k, j}⁽ˢ⁾
    epred:     E[y_i | η] = g⁻¹(η_i)          (lognormal: exp(μ + σ²/2); binomial: trials · p)
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

The prior predictive (:func:`prior_predictive`, ``sample_prior="only"``) is forward sampling of
the *conditional* form of the model (``pm.sample_prior_predictive``): for a Gaussian model the
conditional and marginal forms define the same joint distribution of (β, G, σ, y), and the
marginal engine's ``pm.Potential`` is not a random variable that could be forward-sampled.
Forward sampling is exact (independent draws, no MCMC); it needs proper priors, so — like brms —
it refuses models with flat priors (brms' default for ``b``).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..design.names import cor_name
from ..errors import DataError, MixedFormulaError
from ..families import inverse_link_numpy

KINDS = ("epred", "linpred", "response")
NEW_GROUPS = ("sample", "error", "zero")


# --------------------------------------------------------------------------- draws

def _flat(post, name: str, idx: np.ndarray | None = None) -> np.ndarray:
    """(chain, draw, ...) → (S, ...), optionally a subset of draws."""
    v = post[name].values
    v = v.reshape((-1,) + v.shape[2:])
    return v if idx is None else v[idx]


def draw_subset(post, ndraws: int | None, rng) -> np.ndarray | None:
    """Indices of ``ndraws`` draws chosen at random without replacement (None: all draws)."""
    total = post.sizes["chain"] * post.sizes["draw"]
    if ndraws is None or ndraws >= total:
        return None
    if ndraws < 1:
        raise MixedFormulaError("ndraws must be at least 1")
    return np.sort(rng.choice(total, size=int(ndraws), replace=False))


def _blocks(fit):
    from ..backends.pymc.structure import build_blocks
    d = fit.design
    return build_blocks(d, len(d.response_names), list(d.response_names))


def _block_offsets(blocks) -> dict:
    """Block key → first column of the block inside ``r_<group>`` (blocks concatenated in order)."""
    out, used = {}, {}
    for b in blocks:
        out[b.key] = used.get(b.group, 0)
        used[b.group] = out[b.key] + b.Q
    return out


def block_cholesky(post, b, idx=None) -> np.ndarray:
    """Factors T with G = T Tᵀ per draw (and by-level): (S, H, Q, Q), T = diag(sd) chol(Ω)."""
    H = b.H
    out = []
    for h in range(H):
        tag = f":{b.by}{b.by_levels[h]}" if b.by_levels else ""
        sd = np.stack([_flat(post, f"sd_{b.group}__{lab}{tag}", idx) for lab in b.labels],
                      axis=-1)                                          # (S, Q)
        S, Q = sd.shape
        cor = np.broadcast_to(np.eye(Q), (S, Q, Q)).copy()
        if b.correlated and Q > 1:
            for i in range(Q):
                for j in range(i + 1, Q):
                    name = cor_name(b.group, b.labels[i], b.labels[j], tag)
                    cor[:, i, j] = cor[:, j, i] = _flat(post, name, idx)
        out.append(sd[:, :, None] * _psd_factor(cor))
    return np.stack(out, axis=1)


def _psd_factor(C: np.ndarray) -> np.ndarray:
    """A factor F with F Fᵀ = C for a stack of correlation matrices (Cholesky; eigen fallback)."""
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh(C)
        return V * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


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
    from ..design import design_matrices
    from ..formula import parse
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
    from ..design import as_pandas
    df = as_pandas(df).copy()
    df["mf_dummy_response_"] = 0.0
    import warnings
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


# --------------------------------------------------------------------------- design for rows

def _prepare_newdata(fit, newdata, keep):
    """Fill grouping columns that are absent from newdata but not needed (dropped terms)."""
    from ..design import as_pandas
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
    return fit.design.spec.transform(_prepare_newdata(fit, newdata, keep))


# --------------------------------------------------------------------------- linear predictor

def linear_predictor(fit, design, keep=None, new_groups: str = "sample", idx=None,
                     rng=None) -> np.ndarray:
    """η draws (S, n, r) for the rows of ``design`` (see the module docstring)."""
    if new_groups not in NEW_GROUPS:
        raise MixedFormulaError(f"new_groups must be one of {', '.join(NEW_GROUPS)}")
    rng = np.random.default_rng(rng)
    post = fit.idata.posterior
    resp = list(fit.design.response_names)
    mv = len(resp) > 1
    n = design.X.shape[0]
    eta = []
    for k, rname in enumerate(resp):
        pre = f"{rname}_" if mv else ""
        X, names = design.fixed(k)
        X = np.asarray(X, dtype=float)
        B = np.stack([_flat(post, f"b_{pre}{c}", idx) for c in names], axis=-1) \
            if names else None
        eta.append(B @ X.T if B is not None else 0.0)
    S = post.sizes["chain"] * post.sizes["draw"] if idx is None else len(idx)
    eta = np.stack([np.broadcast_to(e, (S, n)) for e in eta], axis=-1).copy()
    if not design.terms:
        return eta
    if new_groups == "error":
        for k, t in enumerate(design.terms):
            if t.new_levels and (keep is None or keep[k]):
                raise DataError(f"new data have level(s) {', '.join(map(repr, t.new_levels))} "
                                f"of {t.name} that the model has not seen (new_groups='error'; "
                                f"use 'sample' to draw them from G or 'zero' for u = 0)")
    blocks = _blocks(fit)
    offsets = _block_offsets(blocks)
    R_cache: dict[str, np.ndarray] = {}
    for b in blocks:
        terms_in = [p for p in b.parts if keep is None or keep[p.term]]
        if not terms_in:
            continue
        if b.group not in R_cache:
            R_cache[b.group] = _flat(post, f"r_{b.group}", idx)          # (S, J, Qg)
        R = R_cache[b.group]
        J = R.shape[1]
        t0 = design.terms[b.parts[0].term]
        K = len(t0.new_levels)
        u_new = None
        if K and new_groups == "sample":
            T = block_cholesky(post, b, idx)                                # (S, H, Q, Q)
            if b.by_levels:
                h = np.asarray(t0.by_codes)[J:J + K]
                Tk = T[:, h]                                                # (S, K, Q, Q)
            else:
                Tk = np.broadcast_to(T[:, :1], (S, K, b.Q, b.Q))
            z = rng.standard_normal((S, K, b.Q))
            u_new = np.einsum("skab,skb->ska", Tk, z)
        for p in terms_in:
            t = design.terms[p.term]
            cols = np.arange(p.q)
            if keep is not None:
                cols = np.array([c for c, name in enumerate(t.coef_names) if name in keep[p.term]],
                                dtype=int)
            if cols.size == 0:
                continue
            Xt = np.asarray(t.X, dtype=float)[:, cols]
            codes = np.asarray(t.codes)
            seen = (codes >= 0) & (codes < J)
            pos = offsets[b.key] + p.offset + cols
            if seen.any():
                rows = np.nonzero(seen)[0]
                U = R[:, codes[rows]][:, :, pos]                            # (S, m, c)
                eta[:, rows, p.response] += np.einsum("smc,mc->sm", U, Xt[rows])
            new = codes >= J
            if new.any() and u_new is not None:
                rows = np.nonzero(new)[0]
                U = u_new[:, codes[rows] - J][:, :, p.offset + cols]
                eta[:, rows, p.response] += np.einsum("smc,mc->sm", U, Xt[rows])
    return eta


# --------------------------------------------------------------------------- family pieces

def _info(fit) -> dict:
    info = dict(fit.info or {})
    if not info.get("rescor_by"):
        raw = fit.idata.attrs.get("mixedformula") if hasattr(fit.idata, "attrs") else None
        if raw:
            try:
                info.update({k: v for k, v in json.loads(raw).items() if k not in info})
            except (TypeError, ValueError):
                pass
    return info


def _residual_tags(fit, design, newdata) -> np.ndarray | None:
    """Per row the ``:<column><level>`` tag of ``rescor_by`` (None without rescor_by)."""
    col = _info(fit).get("rescor_by")
    if not col:
        return None
    from ..design import as_pandas
    if newdata is None:
        if fit.data is None:
            raise MixedFormulaError(f"the rescor_by column {col!r} is needed: pass newdata=")
        vals = as_pandas(fit.data).loc[design.row_index, col]
    else:
        df = as_pandas(newdata)
        if col not in df.columns:
            raise DataError(f"new data need the rescor_by column {col!r}")
        vals = df[col]
    tags = np.array([f":{col}{v}" for v in vals.astype(object)], dtype=object)
    return tags


def residual_sd_cor(fit, post, resp: list[str], tags, idx, S: int, n: int):
    """Per draw and row: residual sds (S, n, r) and residual correlations (S, n, r, r) of a
    multivariate model (``rescor__a__b`` overall, or ``rescor__a__b:<by><level>`` per row)."""
    r = len(resp)
    sig = np.stack([np.broadcast_to(_sigma_rows(fit, rn, tags, idx, n), (S, n))
                    for rn in resp], axis=-1)
    cor = np.broadcast_to(np.eye(r), (S, n, r, r)).copy()
    for i in range(r):
        for j in range(i + 1, r):
            base = f"rescor__{resp[i]}__{resp[j]}"
            if tags is None:
                if base in post:
                    cor[..., i, j] = cor[..., j, i] = _flat(post, base, idx)[:, None]
            else:
                for tag in pd.unique(tags):
                    if f"{base}{tag}" in post:
                        v = _flat(post, f"{base}{tag}", idx)[:, None]
                        cor[:, tags == tag, i, j] = v
                        cor[:, tags == tag, j, i] = v
    return sig, cor


def _sigma_rows(fit, rname: str | None, tags, idx, n: int) -> np.ndarray:
    """σ per draw and row: (S, n) (or (S, 1) without rescor_by)."""
    post = fit.idata.posterior
    base = "sigma" if rname is None else f"sigma_{rname}"
    if tags is None:
        return _flat(post, base, idx)[:, None]
    out = None
    for tag in pd.unique(tags):
        name = f"{base}{tag}"
        if name not in post:
            raise DataError(f"level {tag[1:]!r} of the rescor_by column was not in the data the "
                            "model was fitted to")
        v = _flat(post, name, idx)
        if out is None:
            out = np.empty((v.shape[0], n))
        out[:, tags == tag] = v[:, None]
    return out


def _trials(fit, design, newdata) -> np.ndarray | None:
    spec = fit.design.spec
    if not spec.formula.trials:
        return None
    if newdata is None:
        return np.asarray(fit.design.trials, dtype=float)
    from ..design import as_pandas
    from ..design.spec import _formulaic, _frame
    df = as_pandas(newdata)
    missing = [c for c in spec.formula.trials_variables if c not in df.columns]
    if missing:
        raise DataError(f"binomial predictions need the trials column(s) {', '.join(missing)}")
    mm = _formulaic("0 + " + spec.formula.trials, _frame(df, spec.columns), spec.formula,
                    spec.columns)
    return np.asarray(mm, dtype=float)[:, 0]


def expected_value(fit, eta: np.ndarray, design, newdata, idx) -> np.ndarray:
    """E[y | η, θ] per draw (S, n, r) in brms' posterior_epred convention."""
    fam = fit.family
    mu = inverse_link_numpy(fam.link)(eta)
    if fam.name == "lognormal":
        sig = _sigma_rows(fit, None, _residual_tags(fit, design, newdata), idx, eta.shape[1])
        return np.exp(mu + 0.5 * sig[..., None] ** 2)
    if fam.name == "binomial":
        return mu * _trials(fit, design, newdata)[None, :, None]
    return mu


def draw_response(fit, eta: np.ndarray, design, newdata, idx, rng) -> np.ndarray:
    """One response draw per posterior draw and row (S, n, r)."""
    fam = fit.family
    post = fit.idata.posterior
    S, n, r = eta.shape
    resp = list(fit.design.response_names)
    tags = _residual_tags(fit, design, newdata)
    if r > 1:
        sig, cor = residual_sd_cor(fit, post, resp, tags, idx, S, n)
        L = _psd_factor(cor)
        z = rng.standard_normal((S, n, r))
        return eta + sig * np.einsum("snab,snb->sna", L, z)
    mu = inverse_link_numpy(fam.link)(eta[..., 0])
    name = fam.name
    if "sigma" in fam.dpars:
        sigma = _sigma_rows(fit, None, tags, idx, n)
    if name == "gaussian":
        y = rng.normal(mu, sigma)
    elif name == "student":
        nu = _flat(post, "nu", idx)[:, None]
        y = mu + sigma * rng.standard_t(np.broadcast_to(nu, mu.shape))
    elif name == "lognormal":
        y = np.exp(rng.normal(mu, sigma))
    elif name == "bernoulli":
        y = (rng.random(mu.shape) < mu).astype(float)
    elif name == "binomial":
        y = rng.binomial(_trials(fit, design, newdata).astype(np.int64)[None, :],
                         np.clip(mu, 0, 1)).astype(float)
    elif name == "poisson":
        y = rng.poisson(mu).astype(float)
    elif name == "negbinomial":
        shape = _flat(post, "shape", idx)[:, None]
        y = rng.poisson(rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape)).astype(float)
    elif name == "gamma":
        shape = _flat(post, "shape", idx)[:, None]
        y = rng.gamma(np.broadcast_to(shape, mu.shape), mu / shape)
    else:  # pragma: no cover - families are checked in get_family
        raise MixedFormulaError(f"family {name!r} has no response draws")
    return y[..., None]


# --------------------------------------------------------------------------- public

def predict(fit, newdata=None, kind: str = "epred", re_formula=None, new_groups: str = "sample",
            summary: bool = False, ndraws: int | None = None, seed=None,
            probs=(0.025, 0.975)):
    """Draws (draws × rows; multivariate: draws × rows × responses) or a brms-style table.

    See :meth:`mixedformula.results.fit.Fit.predict`.
    """
    if kind not in KINDS:
        raise MixedFormulaError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    rng = np.random.default_rng(seed)
    post = fit.idata.posterior
    idx = draw_subset(post, ndraws, rng)
    keep = _re_selection(fit, re_formula, newdata)
    design = design_for(fit, newdata, keep)
    eta = linear_predictor(fit, design, keep, new_groups, idx, rng)
    if kind == "linpred":
        out = eta
    elif kind == "epred":
        out = expected_value(fit, eta, design, newdata, idx)
    else:
        out = draw_response(fit, eta, design, newdata, idx, rng)
    if newdata is None and design.fixed_cols is not None and design.observed is not None:
        # bf() formulas on the fitted rows: response k's X is only evaluated where k is
        # observed; elsewhere there is no prediction (pass those rows as newdata instead)
        out = np.where(design.observed[None], out, np.nan)
    if out.shape[-1] == 1:
        out = out[..., 0]
    if not summary:
        return out
    return summarise(out, design, list(fit.design.response_names), probs)


def summarise(draws: np.ndarray, design, responses: list[str], probs=(0.025, 0.975)):
    from .tables import q_names
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

def _set_group(idata, name: str, ds) -> None:
    if name in idata.groups():
        delattr(idata, name)
        idata._groups = [g for g in idata._groups if g != name]
    idata.add_groups({name: ds})


def posterior_predictive(fit, seed=None):
    """Add ``posterior_predictive`` (and ``observed_data``) to ``fit.idata``: one response draw
    per posterior draw and observation, variables named after the responses (dims chain, draw,
    obs)."""
    import xarray as xr
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    rng = np.random.default_rng(seed)
    design = fit.design
    eta = linear_predictor(fit, design, None, "sample", None, rng)
    y = draw_response(fit, eta, design, None, None, rng)
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
    _set_group(fit.idata, "observed_data", obs)
    _set_group(fit.idata, "posterior_predictive", pp)
    return fit.idata


# --------------------------------------------------------------------------- prior sampling

def _conditional_built(model):
    """The conditional form of ``model`` (same priors and parameters, u sampled, y observed)."""
    from ..backends.pymc.build import build_model
    from ..priors import PriorSet
    if model.likelihood == "conditional":
        return model.built
    return build_model(model.design, model.family, PriorSet(model.prior_list),
                       likelihood="conditional", rescor=model.rescor,
                       residual_by=model.residual_by,
                       parametrization=model.parametrization)


def _check_proper(pm_model) -> None:
    flat = [rv.name for rv in pm_model.free_RVs
            if type(rv.owner.op).__name__ in ("FlatRV", "HalfFlatRV")]
    if flat:
        raise MixedFormulaError(
            "sampling from the prior needs proper priors, but " + ", ".join(flat)
            + " has a flat prior (brms' default for b); set one, e.g. "
            "priors=[mf.prior('normal(0, 10)', class_='b')]")


def check_proper_priors(model) -> None:
    """Raise before sampling when ``sample_prior`` cannot work (flat priors)."""
    _check_proper(model.built.model)


def _forward(model, draws: int, seed):
    import warnings

    import pymc as pm
    built = _conditional_built(model)
    _check_proper(built.model)
    m = built.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            idata = pm.sample_prior_predictive(draws=int(draws), model=m, random_seed=seed)
        except NotImplementedError:
            # the row-wise MvNormal (rescor) has no random method: draw the parameters here
            # and y from them with draw_response (prior_predictive below)
            names = [v.name for v in m.free_RVs] + [v.name for v in m.deterministics]
            idata = pm.sample_prior_predictive(draws=int(draws), model=m, random_seed=seed,
                                               var_names=names)
    return built, idata


def prior_predictive(model, draws: int = 500, seed=None):
    """Forward draws from the priors: InferenceData with ``prior`` (brms names, plus the
    internal variables) and ``prior_predictive`` (the response(s), dims chain, draw, obs)."""
    import arviz as az
    import xarray as xr

    from ..backends.pymc.names import brms_posterior
    built, idata = _forward(model, draws, seed)
    prior = brms_posterior(idata.prior, built)
    prior = xr.merge([prior, idata.prior[[v for v in idata.prior.data_vars
                                          if v not in prior]]], compat="override")
    if "prior_predictive" in idata.groups():
        pp = idata.prior_predictive
    else:
        fit = fit_from_forward(model, built, idata, int(draws), 1, seed)
        y = fit.predict(kind="response", seed=seed)
        y = y if y.ndim == 3 else y[..., None]
        pp = xr.Dataset({"y": xr.DataArray(y[None], dims=("chain", "draw", "obs", "response"),
                                           coords={"response": list(model.design.response_names)})})
    groups = {"prior": prior, "prior_predictive": pp}
    if "observed_data" in idata.groups():
        groups["observed_data"] = idata.observed_data
    return az.InferenceData(**groups)


def prior_fit(model, draws: int = 1000, chains: int = 4, seed=None):
    """``sample_prior="only"``: a :class:`Fit` whose "posterior" holds ``chains × draws``
    independent forward draws from the prior (brms names), so that ``summary``, ``predict``,
    ``pp_check`` etc. show the prior and the prior predictive distribution."""
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))
    built, idata = _forward(model, draws * chains, seed)
    return fit_from_forward(model, built, idata, draws, chains, seed)


def fit_from_forward(model, built, idata, draws: int, chains: int, seed=None):
    """A :class:`Fit` from ``pm.sample_prior_predictive`` output (chain 0 split in ``chains``)."""
    import arviz as az
    import xarray as xr

    from ..backends.pymc.names import brms_posterior
    from .fit import Fit
    raw = idata.prior
    raw = raw.isel(chain=0, drop=True)
    raw = raw.assign_coords(draw=np.arange(raw.sizes["draw"]))
    split = {}
    for v in raw.data_vars:
        a = raw[v].values
        dims = raw[v].dims[1:]
        split[v] = xr.DataArray(a.reshape((chains, draws) + a.shape[1:]),
                                dims=("chain", "draw") + dims)
    raw = xr.Dataset(split, coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    posterior = brms_posterior(raw, built)
    ss = xr.Dataset({"diverging": xr.DataArray(np.zeros((chains, draws), dtype=bool),
                                               dims=("chain", "draw"))},
                    coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    out = az.InferenceData(posterior=posterior, sample_stats=ss)
    info = {"sampler": "prior (independent forward draws)", "draws": draws, "tune": 0,
            "chains": chains, "seed": seed, "seconds": 0.0, "sample_prior": "only",
            "engine_note": "sample_prior='only': draws from the prior, no likelihood",
            "likelihood": model.likelihood, "formula": model.formula.text,
            "family": model.family.name, "link": model.family.link,
            "nobs": model.design.nobs,
            "rescor_by": model.residual_by.column if model.residual_by else None}
    out.attrs["mixedformula"] = json.dumps(info)
    return Fit(out, model.design, model.family, built.priors, model.likelihood, info,
               data=model.data)


def add_prior_group(fit, model, seed=None) -> None:
    """``sample_prior="yes"``: store forward prior draws (brms names) as ``fit.idata.prior``."""
    from ..backends.pymc.names import brms_posterior
    post = fit.idata.posterior
    n = post.sizes["chain"] * post.sizes["draw"]
    built, idata = _forward(model, n, seed)
    _set_group(fit.idata, "prior", brms_posterior(idata.prior, built))
