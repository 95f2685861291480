r"""PSIS-LOO that says what it leaves out, and with which likelihood.

Both engines sample the same posterior p(β, G, σ, u | y) (the marginal engine draws u exactly
after sampling), so every pointwise log-likelihood below can be computed from either fit. What
matters is the *unit* left out and the *pointwise likelihood* used for the importance weights:

``fit.loo()`` on a conditional-engine fit — **LOO over observations (conditional likelihood)**:
    log p(y_i | β, u, σ) per observation i, from η_i = x_iᵀβ + z_iᵀu_{j(i)} (numpy, vectorised
    over draws and rows, all families; stored as ``idata.log_likelihood[<response>]``). Target:
    elpd = Σ_i log p(y_i | y_{−i}) — predicting a *new observation of a group already seen*.

``fit.loo()`` on a marginal-engine fit — **leave-one-group-out over g (marginal likelihood)**:
    log p(y_j | β, G, σ) per level j of the (single) grouping factor g, u_j integrated out. With
    G = TTᵀ (T per level for ``gr(by=)``), A_j = Z_jᵀZ_j, r_j = y_j − X_jβ, s_j = Z_jᵀr_j and
    L_jL_jᵀ = TᵀA_jT/σ² + I:

        −2 log p_j = n_j log(2πσ²) + 2 log|L_j| + (r_jᵀr_j − σ⁻² ‖L_j⁻¹ Tᵀ s_j‖²) / σ²

    (numpy, vectorised over draws and groups; Σ_j log p_j is the engine's marginal
    log-likelihood). Target: elpd = Σ_j log p(y_j | y_{−j}) — predicting *all observations of a
    new group*. With several grouping factors (crossed or nested) the marginal likelihood does
    not factor over the levels of one factor, and this raises an error that says so. With
    brms' ``weights()`` / ``se()`` the same from the rows scaled by √w/se, with Σ_{i∈j} w_i in
    place of n_j and − Σ_{i∈j} w_i log se_i added: group j's share of brms' weighted likelihood
    (:class:`~mixedformula.design.additions.RowScaling`).

``fit.loo(group="g")`` on a conditional-engine fit — **leave-one-group-out over g (conditional
likelihood summed within groups)**: Σ_{i ∈ j} log p(y_i | β, u_j, σ). This is *not* the marginal
group likelihood p(y_j | β, G, σ) — it conditions on u_j — but because u_j belongs to the
posterior draw, PSIS with these weights targets the same quantity Σ_j log p(y_j | y_{−j}) as the
marginal version: the two estimates are comparable. The importance sampling is much harder,
though (u_j is informed almost only by y_j), so expect large Pareto k; the marginal form gives
the reliable estimate of the same elpd. ``likelihood=`` chooses the pointwise likelihood
explicitly: ``fit.loo(likelihood="conditional")`` on a marginal fit gives LOO over observations
from its exact u draws; ``fit.loo(group="g", likelihood="marginal")`` on a conditional fit of a
Gaussian model gives the marginal group LOO.

:func:`compare` (``mf.compare``) refuses to rank LOO over observations against LOO over groups
(or over groups of different factors): they estimate the predictive density of different things
(a new observation vs a new group), on different numbers of terms, and their elpd values are not
on a common scale. Pareto-k diagnostics follow arviz (good k ≤ min(1 − 1/log10 S, 0.7)).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from ..design.reterms import covariance_blocks, segments
from ..engine import marginal_reason
from ..errors import MixedFormulaError
from .naming import sigma_name
from .idata_groups import KINDS as LOGLIK_KINDS
from .idata_groups import set_group
from .posterior import PosteriorDraws, fit_info, linpred
from .mv_family import is_mixed
from .mv_family import loglik_rows as mixed_loglik_rows
from .predict import family_params, trials

LIKELIHOODS = ("conditional", "marginal")


# --------------------------------------------------------------------------- pointwise (obs)

def pointwise_loglik(fit, chunk: int = 20_000_000) -> np.ndarray:
    """log p(y_i | θ⁽ˢ⁾) per draw and observation (S, n), conditional on u (see module doc).

    Multivariate models: one term per row (the joint density of the row's responses).
    """
    design = fit.design
    if design is None or design.y is None:
        raise MixedFormulaError("the pointwise log-likelihood needs the fitted data")
    autocor = getattr(design, "autocor", None)
    if autocor is not None and autocor.kind in ("cosy", "cov_arma", "unstr"):
        raise MixedFormulaError(f"the pointwise log-likelihood (loo, waic) of a model with "
                                f"{autocor.text} is not supported: its residuals are "
                                "correlated within groups, so the rows do not factorize")
    post = fit.idata.posterior
    S_all = post.sizes["chain"] * post.sizes["draw"]
    n, r = design.y.shape
    step = max(1, int(chunk // max(1, n * r)))
    out = np.empty((S_all, n))
    for a in range(0, S_all, step):
        idx = np.arange(a, min(S_all, a + step))
        draws = PosteriorDraws.of_fit(fit, idx)
        eta = linpred(draws, design, None, "sample")
        out[idx] = _loglik_rows(fit, draws, eta, design)
    return out


def _mvnormal_rows(y, eta, sig, cor):
    """log N(y_i; η_i, diag(σ_i) C_i diag(σ_i)) per draw and row: (S, n)."""
    r = y.shape[-1]
    L = np.linalg.cholesky(cor)
    e = (y - eta) / sig
    w = np.linalg.solve(L, e[..., None])[..., 0]
    logdet = np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1) + np.log(sig).sum(-1)
    return -0.5 * (w ** 2).sum(-1) - logdet - 0.5 * r * np.log(2 * np.pi)


def _per_response_rows(fam, y, eta, sig, cor, design) -> np.ndarray:
    """Addition terms per response (bf() parts), brms' ``log_lik`` of a multivariate model.
    Without rescor: Σ_k of response k's w·(censored / truncated) log p on its observed rows,
    sd √(se² + σ²). With rescor (only se() and weights()): w_i · log N(y_i; η_i,
    diag(s_i) Ω diag(s_i)), s_ik = √(σ_k² + se_ik²) (brms' ``LSigma[n] =
    diag_pre_multiply(sigma[n], Lrescor)``)."""
    from ..design.additions import common_weights, loglik_rows, response_sds
    S, n, r = eta.shape
    if np.any(cor != np.eye(r)):                 # rescor estimated
        ll = _mvnormal_rows(y[None], eta, response_sds(sig, design), cor)
        w = common_weights(design)
        return ll if w is None else ll * w[None, :]
    out = np.zeros((S, n))
    for k, part in enumerate(design.response_parts):
        rows = design.rows(k)
        out[:, rows] += loglik_rows(fam, y[rows, k][None, :], eta[:, rows, k],
                                    {"sigma": sig[:, rows, k]}, part)
    return out


def _loglik_rows(fit, draws, eta, design):
    fam = fit.family
    if is_mixed(fam):                 # one family per response (results/mv_family.py)
        return mixed_loglik_rows(fam, draws, eta, design)
    y = np.asarray(design.y, dtype=float)
    S, n, r = eta.shape
    tags = draws.residual_tags(design, None)
    if r > 1:
        sig, cor = draws.residual_sd_cor(tags, n, design, fam)
        if getattr(design, "response_parts", None) is not None:
            return _per_response_rows(fam, y, eta, sig, cor, design)
        if design.observed is None:
            return _mvnormal_rows(y[None], eta, sig, cor)
        # missing responses: each row's density is the marginal of its observed components
        # (the sub-vector of y, sub-matrix of R), as in the model
        out = np.empty((S, n))
        patterns, which = np.unique(design.observed, axis=0, return_inverse=True)
        for p, pattern in enumerate(patterns):
            rows = np.nonzero(which.ravel() == p)[0]
            ks = np.nonzero(pattern)[0]
            out[:, rows] = _mvnormal_rows(y[np.ix_(rows, ks)][None], eta[:, rows][..., ks],
                                          sig[:, rows][..., ks],
                                          cor[:, rows][:, :, ks][..., ks])
        return out
    yv = y[:, 0][None, :]
    params = family_params(draws, fam.dpars, tags, n, design, fam)   # sigma ~ x: per row
    t = trials(fit, design, None)
    from ..design.additions import has_additions, loglik_rows
    if has_additions(design):          # weights(), cens(), trunc(), se(): brms' log_lik
        return loglik_rows(fam, yv, eta[..., 0], params, design,
                           None if t is None else t[None, :])
    return fam.logpdf(yv, eta[..., 0], params, trials=None if t is None else t[None, :])


# --------------------------------------------------------------------------- marginal (group)

def _group_terms(fit, group: str):
    d = fit.design
    names = [t.name for t in d.terms]
    if group not in names:
        raise MixedFormulaError(f"the model has no grouping factor {group!r} (it has: "
                                f"{', '.join(dict.fromkeys(names)) or 'none'})")
    return [k for k, t in enumerate(d.terms) if t.name == group]


def marginal_group_loglik(fit, group: str | None = None, chunk: int = 20_000_000
                          ) -> tuple[np.ndarray, str, list[str]]:
    """log p(y_j | β, G, σ) per draw and level j of ``group`` (S, J), u_j integrated out.

    Returns (array, group, level labels). See the module docstring for the formula.
    """
    d = fit.design
    fam = fit.family
    from ..design.structured_crossprod import structured_design
    if structured_design(d) and d.terms and not marginal_reason(
            d, fam, rescor_by=fit_info(fit).get("rescor_by"), univariate=True, structured=True):
        from .structured_loo import structured_group_loglik      # ar()/cosy(), gr(cov = A)
        return structured_group_loglik(fit, group)
    why = marginal_reason(d, fam, rescor_by=fit_info(fit).get("rescor_by"), univariate=True,
                          se_sigma_ok=True)
    if why:
        raise MixedFormulaError(f"leave-one-group-out with the marginal likelihood does not "
                                f"apply: {why}")
    factors = list(dict.fromkeys(t.name for t in d.terms))
    if group is None:
        if len(factors) > 1:
            raise MixedFormulaError(
                "leave-one-group-out with the marginal likelihood needs the likelihood to "
                "factor over the levels of ONE grouping factor, but this model has several ("
                + ", ".join(factors) + "): with crossed or nested factors the groups are "
                "coupled through the other factor's effects. Use fit.loo(group='<g>', "
                "likelihood='conditional') (conditional log-likelihood summed within groups) "
                "or fit.loo(likelihood='conditional') (LOO over observations).")
        group = factors[0]
    if len(factors) > 1:
        raise MixedFormulaError(
            f"the marginal likelihood of this model does not factor over the levels of "
            f"{group!r}: the model also has group terms for "
            f"{', '.join(f for f in factors if f != group)} (crossed or nested factors couple "
            f"the groups). Use fit.loo(group={group!r}, likelihood='conditional') instead.")
    _group_terms(fit, group)
    # the segment of the factor (its terms' columns side by side, design order); G assembled
    # from the covariance blocks' factors at their terms' columns
    seg, = [s for s in segments(d) if s.group == group]
    blocks = [b for b in covariance_blocks(d) if b.group == group]
    Q, J = seg.Q, seg.J
    codes, W = seg.columns(d)
    y = np.asarray(d.y, dtype=float)[:, 0]
    if d.offset is not None:
        y = y - d.offset                   # offset(): the marginal model of y - offset
    X = np.asarray(d.X, dtype=float)
    n = len(y)
    P = _indicator(codes, J, n)                                          # (J, n) sparse
    nj = np.asarray(P.sum(axis=1)).ravel()
    const = np.zeros(J)
    from ..design.additions import marginal_scaling
    from ..engine import se_sigma
    rows = _RowVariance.of(d) if se_sigma(d) else None
    scaling = None if rows is not None else marginal_scaling(d)
    if scaling is not None:
        # weights()/se(): the group's share of brms' weighted likelihood, from the rows scaled
        # by √w/se, Σ_{i∈j} w_i in place of n_j and −Σ_{i∈j} w_i log se_i (RowScaling)
        a = scaling.scale
        y, X, W = y * a, X * a[:, None], W * a[:, None]
        nj = P @ scaling.weight
        const = -(P @ (scaling.weight * scaling.log_k))
    A = np.stack([np.stack([P @ (W[:, a] * W[:, b]) for b in range(Q)], -1)
                  for a in range(Q)], -2)                                # (J, Q, Q)
    post = fit.idata.posterior
    S_all = post.sizes["chain"] * post.sizes["draw"]
    step = max(1, int(chunk // max(1, n + J * Q * Q * 4)))
    out = np.empty((S_all, J))
    for a0 in range(0, S_all, step):
        idx = np.arange(a0, min(S_all, a0 + step))
        S = len(idx)
        draws = PosteriorDraws.of_fit(fit, idx)
        beta = draws.beta(0, list(d.X_names))
        sigma2 = (np.ones(S) if scaling is not None and scaling.sigma_known
                  else draws.scalar(sigma_name()) ** 2)                   # (S,)
        T = np.zeros((S, J, Q, Q))
        for b in blocks:
            Tb = draws.block_factor(b)                                      # (S, H, Qb, Qb)
            Tb = Tb[:, np.asarray(b.by_codes)] if b.by_levels else \
                np.broadcast_to(Tb[:, :1], (S, J) + Tb.shape[2:])
            pos = np.concatenate([seg.offset_of(p.term) + np.arange(p.q) for p in b.parts])
            T[:, :, pos[:, None], pos[None, :]] = Tb
        r = y[None, :] - beta @ X.T                                          # (S, n)
        if rows is not None:      # se(sigma = TRUE): per-draw row weights, no σ² factor out
            out[idx] = rows.level_loglik(P, W, r, sigma2, T)
            continue
        rr = (P @ (r ** 2).T).T                                              # (S, J)
        s = np.stack([(P @ (r * W[:, c]).T).T for c in range(Q)], -1)        # (S, J, Q)
        Tt = np.swapaxes(T, -1, -2)
        M = Tt @ A[None] @ T / sigma2[:, None, None, None] + np.eye(Q)
        L = np.linalg.cholesky(M)
        logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)   # (S, J)
        v = np.linalg.solve(L, (Tt @ s[..., None]))[..., 0]
        quad = (v ** 2).sum(-1)
        s2 = sigma2[:, None]
        out[idx] = -0.5 * (nj[None] * np.log(2 * np.pi * s2) + logdet
                           + (rr - quad / s2) / s2) + const[None]
    return out, group, list(d.terms[seg.terms[0]].levels)


@dataclass
class _RowVariance:
    r"""se(sei, sigma = TRUE) [+ weights(w)]: row variance d_i = se_i² + σ², ω_i = w_i/d_i,

        log p(y_j) = −½ [ Σ_{i∈j} w_i log 2πd_i + log|M_j| + Σ_{i∈j} ω_i r_i² − ‖L_j⁻¹Tᵀb_j‖² ],

    M_j = I + Tᵀ A_j T = L_j L_jᵀ, A_j = Σ ω_i z_i z_iᵀ, b_j = Σ ω_i z_i r_i (the per-row
    marginal of :mod:`mixedformula.backends.pymc.partial_marginal`, per level)."""

    se2: np.ndarray
    w: np.ndarray

    @classmethod
    def of(cls, d) -> "_RowVariance":
        w = getattr(d, "weights", None)
        return cls(se2=np.asarray(d.se, dtype=float) ** 2,
                   w=np.ones(d.nobs) if w is None else np.asarray(w, dtype=float))

    def level_loglik(self, P, W, r, sigma2, T) -> np.ndarray:
        """(S, J) for residuals r (S, n), σ² (S,) and factors T (S, J, Q, Q)."""
        dv = self.se2[None] + sigma2[:, None]                                # (S, n)
        om = self.w[None] / dv
        Q = W.shape[1]
        A = np.stack([np.stack([(P @ (om * (W[:, a] * W[:, b])[None]).T).T
                                for b in range(Q)], -1) for a in range(Q)], -2)
        s = np.stack([(P @ (om * r * W[:, c][None]).T).T for c in range(Q)], -1)
        Tt = np.swapaxes(T, -1, -2)
        L = np.linalg.cholesky(Tt @ A @ T + np.eye(Q))
        logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
        quad = (np.linalg.solve(L, Tt @ s[..., None])[..., 0] ** 2).sum(-1)
        return -0.5 * ((P @ (self.w[None] * np.log(2 * np.pi * dv)).T).T + logdet
                       + (P @ (om * r ** 2).T).T - quad)


def _indicator(codes, J, n):
    ok = (codes >= 0) & (codes < J)
    rows = codes[ok]
    cols = np.nonzero(ok)[0]
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(J, n))


def conditional_group_loglik(fit, group: str) -> tuple[np.ndarray, list[str]]:
    """Σ_{i in group j} log p(y_i | β, u_j, σ) per draw and level (S, J)."""
    ks = _group_terms(fit, group)
    t = fit.design.terms[ks[0]]
    ll = pointwise_loglik(fit)
    P = _indicator(np.asarray(t.codes), t.J, ll.shape[1])
    return np.asarray((P @ ll.T).T), list(t.levels)


# --------------------------------------------------------------------------- result

@dataclass
class Loo:
    """PSIS-LOO estimate with a statement of what was left out and which likelihood was used."""

    unit: str                    # "observation" or the grouping factor left out level by level
    likelihood: str              # "conditional" or "marginal"
    elpd_data: object            # arviz ELPDData (pointwise=True)
    labels: list = field(default_factory=list)
    var_name: str = ""
    nobs: int = 0

    @property
    def grouped(self) -> bool:
        return self.unit != "observation"

    @property
    def elpd(self) -> float:
        return float(self.elpd_data["elpd_loo"])

    @property
    def se(self) -> float:
        return float(self.elpd_data["se"])

    @property
    def p_loo(self) -> float:
        return float(self.elpd_data["p_loo"])

    @property
    def looic(self) -> float:
        return -2.0 * self.elpd

    @property
    def pareto_k(self) -> np.ndarray:
        return np.asarray(self.elpd_data["pareto_k"])

    @property
    def good_k(self) -> float:
        return float(getattr(self.elpd_data, "good_k", 0.7) or 0.7)

    @property
    def n_units(self) -> int:
        return int(len(self.pareto_k))

    @property
    def pointwise(self) -> pd.DataFrame:
        return pd.DataFrame({"elpd_loo": np.asarray(self.elpd_data["loo_i"]),
                             "pareto_k": self.pareto_k},
                            index=pd.Index(self.labels, name=self.unit))

    @property
    def description(self) -> str:
        if not self.grouped:
            return f"LOO over observations ({self.likelihood} likelihood)"
        how = "marginal likelihood" if self.likelihood == "marginal" else \
            "conditional likelihood summed within groups"
        return f"leave-one-group-out over {self.unit} ({how})"

    def comparable_with(self, other: "Loo") -> bool:
        return self.unit == other.unit and self.n_units == other.n_units

    def __repr__(self) -> str:
        k = self.pareto_k
        units = "observations" if not self.grouped else f"levels of {self.unit}"
        S = int(getattr(self.elpd_data, "n_samples", 0) or 0)
        tab = pd.DataFrame({"Estimate": [self.elpd, self.p_loo, self.looic],
                            "SE": [self.se, np.nan, 2 * self.se]},
                           index=["elpd_loo", "p_loo", "looic"])
        lines = [f"{self.description}: {len(k)} {units}, {S} posterior draws", "",
                 tab.to_string(float_format=lambda x: f"{x:.1f}", na_rep=""), ""]
        good = self.good_k
        n_good = int(np.sum(k <= good))
        n_mid = int(np.sum((k > good) & (k <= 1)))
        n_bad = int(np.sum(k > 1))
        lines.append(f"Pareto k diagnostics: {int(np.sum(k > 0.7))} of {len(k)} {units} with "
                     f"k > 0.7")
        lines.append(f"  (-Inf, {good:.2f}] (good) {n_good:6d}")
        lines.append(f"  ({good:.2f}, 1]   (bad)  {n_mid:6d}")
        lines.append(f"  (1, Inf)     (very bad) {n_bad:3d}")
        if n_mid + n_bad:
            lines.append("Some Pareto k values are high: the PSIS estimate is unreliable for "
                         "those units" + (" (typical when u_j is conditioned on: the marginal "
                                          "likelihood estimates the same elpd reliably)"
                                          if self.grouped and self.likelihood == "conditional"
                                          else "") + ".")
        return "\n".join(lines)


def _store(fit, name: str, ll: np.ndarray, dim: str, labels) -> None:
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(ll.reshape(C, D, -1), dims=("chain", "draw", dim),
                      coords={"chain": post.coords["chain"].values,
                              "draw": post.coords["draw"].values, dim: list(labels)})
    if "log_likelihood" in fit.idata.groups():
        ds = fit.idata.log_likelihood
        if name in ds:
            ds = ds.drop_vars(name)
        ds = ds.drop_dims([dm for dm in [dim] if dm in ds.dims and
                           not any(dm in ds[v].dims for v in ds.data_vars)])
        ds = xr.merge([ds, da.to_dataset(name=name)], compat="override", join="outer")
        set_group(fit.idata, "log_likelihood", ds)
    else:
        fit.idata.add_groups({"log_likelihood": da.to_dataset(name=name)})


def loo(fit, group: str | None = None, likelihood: str | None = None) -> Loo:
    """See :meth:`mixedformula.results.fit.Fit.loo` and the module docstring."""
    if likelihood is not None and likelihood not in LIKELIHOODS:
        raise MixedFormulaError(f"likelihood must be 'conditional' or 'marginal', not "
                                f"{likelihood!r}")
    if likelihood is None:
        likelihood = fit.likelihood if fit.likelihood in LIKELIHOODS else "conditional"
    resp = "_".join(fit.design.response_names)
    if likelihood == "marginal":
        ll, group, labels = marginal_group_loglik(fit, group)
        name, dim, unit = f"{resp}__{group}__marginal", f"{group}__level", group
    elif group is not None:
        ll, labels = conditional_group_loglik(fit, group)
        name, dim, unit = f"{resp}__{group}__conditional", f"{group}__level", group
    else:
        ll = pointwise_loglik(fit)
        labels = list(range(ll.shape[1]))
        name, dim, unit = resp, "obs", "observation"
    _store(fit, name, ll, dim, labels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        elpd = az.loo(fit.idata, pointwise=True, var_name=name)
    return Loo(unit=unit, likelihood=likelihood, elpd_data=elpd, labels=labels,
               var_name=name, nobs=int(fit.design.nobs))


# --------------------------------------------------------------------------- compare

@dataclass
class Comparison:
    """``mf.compare`` result: arviz' comparison table plus what was compared."""

    table: pd.DataFrame
    description: str
    loos: dict

    @property
    def warnings(self) -> list[str]:
        out = []
        for name, lo in self.loos.items():
            k = lo.pareto_k
            bad = int(np.sum(k > 0.7))
            if bad:
                hint = (" (conditional likelihood summed within groups: the marginal likelihood "
                        "estimates the same elpd with better importance weights)"
                        if lo.grouped and lo.likelihood == "conditional" else "")
                out.append(f"{name}: {bad} of {len(k)} units with Pareto k > 0.7, its elpd "
                           f"estimate is unreliable{hint}")
        return out

    def __repr__(self) -> str:
        text = f"Model comparison by {self.description}\n\n{self.table.to_string()}"
        if self.warnings:
            text += "\n\nWarning:\n" + "\n".join(f"  {w}" for w in self.warnings)
        return text

    def _repr_html_(self) -> str:
        warn = "".join(f"<p>Warning: {w}</p>" for w in self.warnings)
        return (f"<p>Model comparison by {self.description}</p>" + self.table.to_html()
                + warn)


def compare(*fits, **named) -> Comparison:
    """Compare fits (or :class:`Loo` results) by PSIS-LOO, refusing incomparable LOOs.

    ``mf.compare(fit1, fit2)``, ``mf.compare(m1=fit1, m2=fit2)`` or ``mf.compare({"m1": ...})``.
    Each Fit contributes ``fit.loo()`` (its engine's default); pass ``fit.loo(...)`` results to
    choose. All must leave out the same unit (observations, or the levels of the same grouping
    factor) on the same data size, otherwise :class:`~mixedformula.MixedFormulaError` explains
    why they cannot be ranked.
    """
    items: dict = {}
    if len(fits) == 1 and isinstance(fits[0], dict):
        items.update(fits[0])
    else:
        for i, f in enumerate(fits):
            items[f"model{i + 1}"] = f
    items.update(named)
    if len(items) < 2:
        raise MixedFormulaError("compare needs at least two fits")
    loos = {name: (x if isinstance(x, Loo) else x.loo()) for name, x in items.items()}
    names = list(loos)
    first = loos[names[0]]
    for nm in names[1:]:
        other = loos[nm]
        if first.unit != other.unit:
            raise MixedFormulaError(
                f"cannot compare {names[0]!r} ({first.description}) with {nm!r} "
                f"({other.description}): they estimate the predictive density of different "
                f"things — {_target(first)} vs {_target(other)} — summed over different units, "
                f"so their elpd values are not on a common scale. Compute the same LOO for "
                f"both, e.g. fit.loo(group={_some_group(first, other)!r}) for both fits, or "
                f"fit.loo(likelihood='conditional') for both.")
        if first.n_units != other.n_units:
            raise MixedFormulaError(
                f"cannot compare {names[0]!r} and {nm!r}: they leave out {first.n_units} and "
                f"{other.n_units} units — were they fitted to the same data?")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = az.compare({nm: loos[nm].elpd_data for nm in names}, ic="loo")
    liks = sorted({lo.likelihood for lo in loos.values()})
    what = ("LOO over observations" if not first.grouped
            else f"leave-one-group-out over {first.unit}")
    desc = f"{what} ({' and '.join(liks)} likelihood{'s' if len(liks) > 1 else ''})"
    return Comparison(table=table, description=desc, loos=loos)


def _target(lo: Loo) -> str:
    if lo.grouped:
        return f"all observations of a new level of {lo.unit}"
    return "a new observation of an already seen group"


def _some_group(a: Loo, b: Loo) -> str:
    for lo in (a, b):
        if lo.grouped:
            return lo.unit
    return "<group>"


# --------------------------------------------------------------------------- arviz group

def add_log_likelihood(fit, kind: str | None = None, group: str | None = None) -> str:
    """Put exactly one pointwise log-likelihood variable into ``fit.idata.log_likelihood``
    (replacing what was there); returns its name. See the module docstring."""
    if kind is None:
        kind = "group" if fit.likelihood == "marginal" else "observation"
    if kind not in LOGLIK_KINDS:
        raise MixedFormulaError(f"kind must be 'observation' or 'group', not {kind!r}")
    resp = "_".join(fit.design.response_names)
    if kind == "observation":
        if group is not None:
            raise MixedFormulaError("group= goes with kind='group' (leave-one-group-out)")
        ll = pointwise_loglik(fit)
        name, dim, labels = resp, "obs", np.arange(ll.shape[1])
    elif fit.likelihood == "marginal":
        ll, group, labels = marginal_group_loglik(fit, group)
        name, dim = f"{resp}__{group}__marginal", f"{group}__level"
    else:
        if group is None:
            factors = list(dict.fromkeys(t.name for t in fit.design.terms))
            if len(factors) != 1:
                raise MixedFormulaError(
                    "kind='group' needs group='<factor>' when the model has "
                    + ("no grouping factor" if not factors else
                       "several grouping factors (" + ", ".join(factors) + ")"))
            group = factors[0]
        ll, labels = conditional_group_loglik(fit, group)
        name, dim = f"{resp}__{group}__conditional", f"{group}__level"
    post = fit.idata.posterior
    C, D = post.sizes["chain"], post.sizes["draw"]
    da = xr.DataArray(np.asarray(ll).reshape(C, D, -1), dims=("chain", "draw", dim),
                      coords={"chain": post.coords["chain"].values,
                              "draw": post.coords["draw"].values, dim: list(labels)})
    set_group(fit.idata, "log_likelihood", da.to_dataset(name=name))
    return name
