r"""The one reader of brms-named posterior draws, and the one linear predictor.

:class:`PosteriorDraws` reads a posterior (``idata.posterior``, or one parameter set for
:func:`mixedformula.simulate`) through the name codec :mod:`~mixedformula.results.naming`,
pooled over chains into S draws (optionally a subset ``idx``), and gives per draw s

* β_k⁽ˢ⁾ of response k (:meth:`~PosteriorDraws.beta`, :meth:`~PosteriorDraws.xb`);
* per covariance block b (the design's group terms grouped by shared ID, one G per level h of
  ``gr(g, by = h)``) G_{b,h}⁽ˢ⁾ = diag(sd) Ω diag(sd) and a factor T with T Tᵀ = G
  (:meth:`~PosteriorDraws.block_cov`, :meth:`~PosteriorDraws.block_factor`); a correlation that
  is not a parameter is 0;
* the group effects u = ``r_<group>`` (level × coefficient, blocks of one factor side by side);
* per row i the residual sd σ_i (``sigma`` or, with ``rescor_by = x``, ``sigma:x<level of i>``;
  multivariate ``sigma_<resp>``) and correlation Ω_i (``rescor__<r1>__<r2>[:x<level>]``), i.e.
  R_i = diag(σ_i) Ω_i diag(σ_i) (:meth:`~PosteriorDraws.residual_sd_cor`);
* family parameters ``nu``, ``shape`` (:meth:`~PosteriorDraws.dpar`); a parameter with its
  own formula (``sigma ~ x + (1 | g)``) per row, θ_{d,i} = h_d⁻¹(η_{d,i}) with
  η_d = X_d β_d + Σ_t z_t u_t over the parameter's terms (:meth:`~PosteriorDraws.dpar_rows`).

:func:`linpred` computes, for the rows of a design (the fitted one or
``design.spec.transform(newdata)``), with term t's multipliers z_{t,i} and level j = code_t(i),

    η_i⁽ˢ⁾ = x_iᵀ β⁽ˢ⁾ + Σ_t z_{t,i}ᵀ u_{t, j}⁽ˢ⁾

where a missing group value (code −1) contributes 0 and a level not seen in fitting (code ≥ J)
gets, with ``new_groups="sample"``, u⁽ˢ⁾ ~ N(0, G⁽ˢ⁾) drawn once per new level and draw (G of
its by-level), ``"zero"`` u = 0, ``"error"`` a :class:`~mixedformula.DataError`. ``keep``
(from ``re_formula``) lists per term the coefficients to keep. The same pass gives the linear
predictor of every distributional formula (new levels drawn once per block, shared by the
mean's and the parameter's coefficients); :meth:`PosteriorDraws.dpar_rows` reads it.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr

from ..design.reterms import covariance_blocks as build_blocks
from ..design import as_pandas
from ..errors import DataError, MixedFormulaError
from .naming import (b_name, by_tag, cor_name, dpar_prefix, ranef_coef_dim, ranef_name,
                     rescor_name, rho_names, sd_name, sigma_name, threshold_name, cs_name)

NEW_GROUPS = ("sample", "error", "zero")


def flat(values: np.ndarray) -> np.ndarray:
    """(chain, draw, ...) → (chain·draw, ...)."""
    a = np.asarray(values)
    return a.reshape((-1,) + a.shape[2:])


def psd_factor(C: np.ndarray) -> np.ndarray:
    """A factor F with F Fᵀ = C for a stack of correlation matrices (Cholesky; eigen fallback)."""
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        w, V = np.linalg.eigh(C)
        return V * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def draw_subset(post, ndraws: int | None, rng) -> np.ndarray | None:
    """Indices of ``ndraws`` draws chosen at random without replacement (None: all draws)."""
    total = post.sizes["chain"] * post.sizes["draw"]
    if ndraws is None or ndraws >= total:
        return None
    if ndraws < 1:
        raise MixedFormulaError("ndraws must be at least 1")
    return np.sort(rng.choice(total, size=int(ndraws), replace=False))


def fit_info(fit) -> dict:
    """``fit.info`` completed by the JSON metadata stored in ``idata.attrs["mixedformula"]``."""
    info = dict(fit.info or {})
    if not info.get("rescor_by"):
        raw = fit.idata.attrs.get("mixedformula")
        if raw:
            try:
                info.update({k: v for k, v in json.loads(raw).items() if k not in info})
            except (TypeError, ValueError):
                pass
    return info


def covariance_blocks(design) -> list:
    """The design's group terms grouped into covariance blocks (one G each)."""
    resp = list(design.response_names)
    return build_blocks(design, len(resp), resp)


def parameter_names(design) -> dict[str, list[str]]:
    """The b / sd / cor names a model of ``design`` has (for checks of given parameters)."""
    resp = list(design.response_names)
    mv = len(resp) > 1
    out = {"b": [b_name(c, r if mv else None) for k, r in enumerate(resp)
                 for c in design.fixed(k)[1]], "sd": [], "cor": []}
    out["b"] += [b_name(c, dpar_prefix(d, resp[k] if mv else None))
                 for d, k in design.dpar_keys for c in design.dpar_fixed(d, k)[1]]
    for blk in covariance_blocks(design):
        for tag in block_tags(blk):
            out["sd"] += [sd_name(blk.group, lab, tag) for lab in blk.labels]
            if blk.correlated:
                out["cor"] += [cor_name(blk.group, l1, l2, tag)
                               for i, l1 in enumerate(blk.labels) for l2 in blk.labels[i + 1:]]
    return out


def block_tags(blk) -> list[str]:
    """The by-level tags of a block (``[""]`` without ``gr(by=)``)."""
    return [by_tag(blk.by, lev) for lev in blk.by_levels] if blk.by_levels else [""]


class PosteriorDraws:
    """Brms-named draws of one model, pooled to S draws (see the module docstring).

    ``posterior``: xarray Dataset (dims chain, draw); ``design``: the fitted design (it fixes
    responses, fixed-effect names and covariance blocks); ``idx``: a subset of the pooled
    draws; ``residual_by``: the ``rescor_by`` column; ``data``: the fitted data (for the
    ``rescor_by`` level of each fitted row).
    """

    def __init__(self, posterior, design, idx: np.ndarray | None = None,
                 residual_by: str | None = None, data=None):
        self.posterior = posterior
        self.design = design
        self.idx = idx
        self.residual_by = residual_by
        self.data = data
        self.responses = list(design.response_names)
        self.multivariate = len(self.responses) > 1
        total = int(posterior.sizes["chain"]) * int(posterior.sizes["draw"])
        self.S = total if idx is None else len(idx)
        self._blocks = None
        self._cache: dict = {}
        self._dpar_eta: list = []      # [(design, {(dpar, k): η (S, n)})] from linpred

    @classmethod
    def of_fit(cls, fit, idx: np.ndarray | None = None) -> "PosteriorDraws":
        if fit.design is None:
            raise MixedFormulaError("this Fit has no design (saved without data)")
        return cls(fit.idata.posterior, fit.design, idx, fit_info(fit).get("rescor_by"),
                   fit.data)

    @classmethod
    def from_params(cls, params: dict, design) -> "PosteriorDraws":
        """One draw (S = 1) from a dict name → value (scalars, or arrays for ``r_<group>``
        with dims level × coefficient)."""
        data = {}
        for name, v in params.items():
            a = np.asarray(v, dtype=float)
            if a.ndim == 0:
                data[name] = xr.DataArray(a.reshape(1, 1), dims=("chain", "draw"))
            else:
                g = name[2:]
                data[name] = xr.DataArray(a[None, None], dims=("chain", "draw", g,
                                                               ranef_coef_dim(g)))
        return cls(xr.Dataset(data, coords={"chain": [0], "draw": [0]}), design)

    # -- scalars -----------------------------------------------------------------------
    def has(self, name: str) -> bool:
        return name in self.posterior

    def scalar(self, name: str) -> np.ndarray:
        """(S,) draws of the scalar ``name``."""
        if name not in self._cache:
            v = flat(self.posterior[name].values)
            self._cache[name] = v if self.idx is None else v[self.idx]
        return self._cache[name]

    @property
    def n_thresholds(self) -> int:
        """Number of ordinal thresholds ``b_Intercept[1]``, ... in the posterior (0: none)."""
        k = 0
        while threshold_name(k + 1) in self.posterior:
            k += 1
        return k

    def thresholds(self) -> np.ndarray:
        """(S, K − 1) draws of the ordinal thresholds ``b_Intercept[k]``."""
        return np.stack([self.scalar(threshold_name(k + 1))
                         for k in range(self.n_thresholds)], axis=-1)

    def dpar(self, name: str, resp: str | None = None, fixed: float | None = None
             ) -> np.ndarray:
        """(S,) draws of a family parameter (``nu``, ``shape``; ``<name>_<resp>`` if present);
        ``thres``: (S, K − 1) ordinal thresholds; ``fixed``: the value of a parameter held
        constant when it has no formula (``Family.fixed_dpars``: the ordinal disc = 1)."""
        if name == "thres":
            return self.thresholds()
        if fixed is not None and name not in self.posterior:
            return np.full(self.S, float(fixed))
        if resp is not None and self.multivariate and f"{name}_{resp}" in self.posterior:
            return self.scalar(f"{name}_{resp}")
        return self.scalar(name)

    # -- fixed part --------------------------------------------------------------------
    def beta(self, k: int = 0, names: list[str] | None = None) -> np.ndarray:
        """(S, p_k) draws of response k's coefficients (``names``: default design.fixed(k))."""
        names = self.design.fixed(k)[1] if names is None else names
        resp = self.responses[k] if self.multivariate else None
        if not names:
            return np.zeros((self.S, 0))
        zero = np.zeros(self.S)     # ordinal: thresholds take the intercept's place, and
        cs = set(self.design.cs_names)   # cs() columns act on the thresholds, not on η
        return np.stack([zero if (c == "Intercept" or c in cs)
                         and b_name(c, resp) not in self.posterior
                         and self.n_thresholds else self.scalar(b_name(c, resp))
                         for c in names], axis=-1)

    def threshold_rows(self, design) -> np.ndarray:
        """(S, n, K − 1) thresholds per row of ``design``: b_Intercept[k] − Σ_j Xcs_ij
        bcs_j[k] with category-specific effects (brms' ``Intercept - mucs``), else the
        thresholds (S, 1, K − 1) shared by every row."""
        thres = self.thresholds()[:, None, :]
        cs = self.design.cs_names
        if not cs:
            return thres
        X, names = design.fixed(0)
        K1 = thres.shape[-1]
        for c in cs:
            b = np.stack([self.scalar(cs_name(c, k + 1)) for k in range(K1)], axis=-1)
            thres = thres - X[:, names.index(c)][None, :, None] * b[:, None, :]
        return thres

    def dpar_beta(self, dpar: str, k: int = 0, names: list[str] | None = None) -> np.ndarray:
        """(S, p) draws of the coefficients of ``dpar``'s formula (``b_sigma_x``)."""
        names = self.design.dpar_fixed(dpar, k)[1] if names is None else names
        pre = dpar_prefix(dpar, self.responses[k] if self.multivariate else None)
        if not names:
            return np.zeros((self.S, 0))
        return np.stack([self.scalar(b_name(c, pre)) for c in names], axis=-1)

    def dpar_rows(self, dpar: str, k: int, design, link) -> np.ndarray:
        """(S, n) draws of a parameter with its own formula on the rows of ``design``:
        h⁻¹(η_d) with ``link`` (a :class:`~mixedformula.families.links.Link`); η_d from the
        :func:`linpred` call for this design (its new-level draws and ``re_formula``), or from a
        fresh one with the defaults."""
        for dsg, etas in self._dpar_eta:
            if dsg is design:
                return link.inverse(etas[(dpar, k)])
        linpred(self, design)
        return self.dpar_rows(dpar, k, design, link)

    def xb(self, X: np.ndarray, fixed_cols=None) -> np.ndarray:
        """X β per draw (S, n, r) for a full-width X (the fitted design's columns)."""
        X = np.asarray(X, dtype=float)
        fixed_cols = self.design.fixed_cols if fixed_cols is None else fixed_cols
        out = np.zeros((self.S, X.shape[0], len(self.responses)))
        for k in range(len(self.responses)):
            cols = fixed_cols[k] if fixed_cols is not None else list(range(X.shape[1]))
            names = [self.design.X_names[j] for j in cols]
            if names:
                out[:, :, k] = self.beta(k, names) @ X[:, cols].T
        return out

    # -- G per block -------------------------------------------------------------------
    @property
    def blocks(self) -> list:
        if self._blocks is None:
            self._blocks = covariance_blocks(self.design)
        return self._blocks

    def block_sd_cor(self, blk) -> tuple[np.ndarray, np.ndarray]:
        """sd (S, H, Q) and correlation (S, H, Q, Q) of a block per by-level."""
        sds, cors = [], []
        for tag in block_tags(blk):
            sd = np.stack([self.scalar(sd_name(blk.group, lab, tag)) for lab in blk.labels],
                          axis=-1)
            cor = np.broadcast_to(np.eye(blk.Q), (self.S, blk.Q, blk.Q)).copy()
            if blk.structure in ("ar1", "cs", "toep") and blk.Q > 1:
                from ..design.covstruct import correlation_from_rho
                rho = np.stack([self.scalar(n) for n in
                                rho_names(blk.group, blk.structure, blk.Q)], axis=-1)
                cor = correlation_from_rho(blk.structure, blk.Q, rho)
            elif blk.correlated and blk.Q > 1:
                for i in range(blk.Q):
                    for j in range(i + 1, blk.Q):
                        name = cor_name(blk.group, blk.labels[i], blk.labels[j], tag)
                        if name in self.posterior:
                            cor[:, i, j] = cor[:, j, i] = self.scalar(name)
            sds.append(sd)
            cors.append(cor)
        return np.stack(sds, axis=1), np.stack(cors, axis=1)

    def block_factor(self, blk) -> np.ndarray:
        """T with G = T Tᵀ per draw and by-level: (S, H, Q, Q), T = diag(sd) chol(Ω)."""
        sd, cor = self.block_sd_cor(blk)
        return sd[..., :, None] * psd_factor(cor)

    def block_cov(self, blk) -> np.ndarray:
        """G = diag(sd) Ω diag(sd) per draw and by-level: (S, H, Q, Q)."""
        sd, cor = self.block_sd_cor(blk)
        return sd[..., :, None] * cor * sd[..., None, :]

    def block_offsets(self) -> dict:
        """Block key → first column of the block inside ``r_<group>`` (blocks in order)."""
        out, used = {}, {}
        for blk in self.blocks:
            out[blk.key] = used.get(blk.group, 0)
            used[blk.group] = out[blk.key] + blk.Q
        return out

    def ranef(self, group: str) -> np.ndarray:
        """(S, J, Q_group) draws of ``r_<group>``."""
        return self.scalar(ranef_name(group))

    # -- R per row ---------------------------------------------------------------------
    def residual_tags(self, design=None, newdata=None) -> np.ndarray | None:
        """Per row the ``:<column><level>`` tag of ``rescor_by`` (None without rescor_by):
        from ``newdata``, else from the fitted data at ``design.row_index``."""
        col = self.residual_by
        if not col:
            return None
        if newdata is None:
            if self.data is None:
                raise MixedFormulaError(f"the rescor_by column {col!r} is needed: pass newdata=")
            df = as_pandas(self.data)
            if col not in df.columns:
                raise MixedFormulaError(f"the rescor_by column {col!r} is not in the stored "
                                        "data: pass newdata=")
            design = self.design if design is None else design
            vals = df.loc[design.row_index, col] if design.row_index is not None else df[col]
        else:
            df = as_pandas(newdata)
            if col not in df.columns:
                raise DataError(f"new data need the rescor_by column {col!r}")
            vals = df[col]
        return np.array([by_tag(col, v) for v in vals.astype(object)], dtype=object)

    def sigma_rows(self, resp: str | None, tags, n: int) -> np.ndarray:
        """σ per draw and row: (S, n), or (S, 1) without rescor_by (``resp``: multivariate)."""
        base = sigma_name(resp)
        if tags is None:
            return self.scalar(base)[:, None]
        out = np.empty((self.S, n))
        for tag in pd.unique(tags):
            name = base + tag
            if name not in self.posterior:
                raise DataError(f"level {tag[1:]!r} of the rescor_by column was not in the data "
                                "the model was fitted to")
            out[:, tags == tag] = self.scalar(name)[:, None]
        return out

    def residual_sd_cor(self, tags, n: int, design=None, family=None
                        ) -> tuple[np.ndarray, np.ndarray]:
        """Residual sds (S, n, r) and correlations (S, n, r, r) per draw and row
        (``rescor__a__b`` overall, or ``rescor__a__b:<by><level>`` per row; a response whose
        sigma has a formula: its row-wise σ on ``design``'s rows, link of ``family``)."""
        resp = self.responses
        r, S = len(resp), self.S
        mv = self.multivariate
        keys = self.design.dpar_keys

        def sd_of(k, rn):
            if ("sigma", k) in keys:
                from ..families.links import get_link
                link = get_link(family.dpar_link("sigma") if family is not None else "log")
                return self.dpar_rows("sigma", k, design if design is not None
                                      else self.design, link)
            return self.sigma_rows(rn if mv else None, tags, n)
        sig = np.stack([np.broadcast_to(sd_of(k, rn), (S, n))
                        for k, rn in enumerate(resp)], axis=-1)
        cor = np.broadcast_to(np.eye(r), (S, n, r, r)).copy()
        for i in range(r):
            for j in range(i + 1, r):
                base = rescor_name(resp[i], resp[j])
                if tags is None:
                    if base in self.posterior:
                        cor[..., i, j] = cor[..., j, i] = self.scalar(base)[:, None]
                else:
                    for tag in pd.unique(tags):
                        if base + tag in self.posterior:
                            v = self.scalar(base + tag)[:, None]
                            cor[:, tags == tag, i, j] = v
                            cor[:, tags == tag, j, i] = v
        return sig, cor


def linpred(draws: PosteriorDraws, design=None, keep=None, new_groups: str = "sample",
            rng=None) -> np.ndarray:
    """η draws (S, n, r) for the rows of ``design`` (default: the fitted design); see the
    module docstring."""
    if new_groups not in NEW_GROUPS:
        raise MixedFormulaError(f"new_groups must be one of {', '.join(NEW_GROUPS)}")
    design = draws.design if design is None else design
    rng = np.random.default_rng(rng)
    S, n = draws.S, design.X.shape[0]
    eta = np.zeros((S, n, len(draws.responses)))
    for k in range(len(draws.responses)):
        X, names = design.fixed(k)
        if names:
            eta[:, :, k] = draws.beta(k, names) @ np.asarray(X, dtype=float).T
    if getattr(design, "offset", None) is not None:    # offset() / offset=
        off = np.asarray(design.offset, dtype=float)
        if off.ndim == 2:                                # bf() parts: (n, r) per response
            eta += off[None]
        else:
            eta[:, :, 0] += off
    deta = {}                                   # distributional formulas: η_d (S, n)
    for d, k in getattr(design, "dpar_keys", ()):
        X, names = design.dpar_fixed(d, k)
        deta[(d, k)] = draws.dpar_beta(d, k, names) @ np.asarray(X, dtype=float).T \
            if names else np.zeros((S, n))
    if deta:
        draws._dpar_eta = [(dsg, e) for dsg, e in draws._dpar_eta if dsg is not design]
        draws._dpar_eta.append((design, deta))
    if not design.terms:
        return _with_ar(draws, design, eta)
    if new_groups == "error":
        for k, t in enumerate(design.terms):
            if t.new_levels and (keep is None or keep[k]):
                raise DataError(f"new data have level(s) {', '.join(map(repr, t.new_levels))} "
                                f"of {t.name} that the model has not seen (new_groups='error'; "
                                f"use 'sample' to draw them from G or 'zero' for u = 0)")
    offsets = draws.block_offsets()
    for blk in draws.blocks:
        terms_in = [p for p in blk.parts if keep is None or keep[p.term]]
        if not terms_in:
            continue
        R = draws.ranef(blk.group)                                           # (S, J, Qg)
        J = R.shape[1]
        t0 = design.terms[blk.parts[0].term]
        K = len(t0.new_levels)
        u_new = None
        if K and new_groups == "sample" and blk.cov_factor is not None:
            raise DataError(f"new data have level(s) {', '.join(map(repr, t0.new_levels[:10]))} "
                            f"of {blk.group}, whose effects are correlated through "
                            f"gr(cov = ...) with a matrix that does not cover them; use "
                            f"new_groups='zero' (u = 0) or refit with the levels in the matrix")
        if K and new_groups == "sample":
            T = draws.block_factor(blk)                                      # (S, H, Q, Q)
            if blk.by_levels:
                Tk = T[:, np.asarray(t0.by_codes)[J:J + K]]                  # (S, K, Q, Q)
            else:
                Tk = np.broadcast_to(T[:, :1], (S, K, blk.Q, blk.Q))
            z = rng.standard_normal((S, K, blk.Q))
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
            pos = offsets[blk.key] + p.offset + cols
            target = eta[:, :, p.response] if getattr(p, "dpar", None) is None \
                else deta[(p.dpar, p.response)]                              # a view (S, n)
            if seen.any():
                rows = np.nonzero(seen)[0]
                U = R[:, codes[rows]][:, :, pos]                             # (S, m, c)
                target[:, rows] += np.einsum("smc,mc->sm", U, Xt[rows])
            new = codes >= J
            if new.any() and u_new is not None:
                rows = np.nonzero(new)[0]
                U = u_new[:, codes[rows] - J][:, :, p.offset + cols]
                target[:, rows] += np.einsum("smc,mc->sm", U, Xt[rows])
    return _with_ar(draws, design, eta)


def _with_ar(draws: PosteriorDraws, design, eta: np.ndarray) -> np.ndarray:
    """brms' ar() term added to η of the fitted rows: μ = η + Σ_k ar[k] (y − η)_{lag k}
    (:mod:`mixedformula.design.autocor`); new data: their own lags and response
    (``results.predict.design_for``, as brms), else refused."""
    s = getattr(draws.design, "autocor", None)
    if s is None or s.kind not in ("ar", "arma"):
        return eta
    if design is not draws.design:
        s = getattr(design, "autocor", None)
        if s is None or design.y is None:
            raise DataError(f"predictions for new data of a model with "
                            f"{draws.design.autocor.text} need the new rows' series, times "
                            "and responses (the lagged residuals y − η); pass them with "
                            "newdata to predict()")
    from ..design.autocor import ar_term, arma_term
    from .naming import ar_name, ma_name
    S = eta.shape[0]
    ar = np.stack([draws.scalar(ar_name(k + 1)) for k in range(s.p)] or [np.zeros(S)],
                  axis=1)[:, :s.p]                                              # (S, p)
    resid = np.asarray(design.y, dtype=float)[None, :, 0] - eta[:, :, 0]
    eta = eta.copy()
    if s.kind == "arma":            # brms 2.18's .predictor_arma: the same recursion as Stan
        ma = np.stack([draws.scalar(ma_name(k + 1)) for k in range(s.q)], axis=1)
        eta[:, :, 0] += arma_term(resid, s, ar, ma)
    else:
        eta[:, :, 0] += ar_term(resid, s.lags, ar)
    return eta
