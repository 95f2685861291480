"""Raw PyMC draws → posterior variables with brms names (see docs/dev/CONTRACT.md).

``b_<coef>`` (original scale), ``sd_<group>__<coef>``, ``cor_<group>__<c1>__<c2>``,
``sigma``, ``nu``, ``shape``, ``r_<group>`` (dims: level, coefficient); multivariate
``b_<resp>_<coef>``, ``sigma_<resp>``, ``rescor__<r1>__<r2>``; by-groups append
``:<by><level>`` (``sd_g__Intercept:hA``), to each coefficient of a correlation
(``cor_g__Intercept:hA__x:hA``) as brms does.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ...results.naming import (SPEC_DPARS, ar_name, cortime_name, b_name, ma_name, by_tag, cor_name, cs_name,
                               dpar_prefix,
                               ranef_coef_dim, ranef_name, rescor_name, rho_names, sd_name,
                               sigma_name, threshold_name)
from .build import Built


def _scalar(arr: np.ndarray, chain_draw) -> xr.DataArray:
    return xr.DataArray(arr, dims=("chain", "draw"), coords=chain_draw)


def brms_posterior(raw: xr.Dataset, built: Built, group_effects: dict | None = None
                   ) -> xr.Dataset:
    """Build the brms-named posterior from the raw one.

    ``group_effects`` maps block key → array (chain, draw, J, Q) for engines that draw u after
    sampling (the marginal engine); otherwise u is read from the ``u__<block>`` deterministics.
    """
    design = built.design
    resp = design.response_names
    mv = len(resp) > 1
    cd = {"chain": raw.coords["chain"].values, "draw": raw.coords["draw"].values}
    out: dict[str, xr.DataArray] = {}
    for k, rname in enumerate(resp):
        sfx = f"__{rname}" if mv else ""
        beta = raw[f"_beta{sfx}"].values
        if "_thres" in raw:              # ordinal: thresholds instead of the intercept, first
            thres = raw["_thres"].values
            for j in range(thres.shape[-1]):
                out[threshold_name(j + 1)] = _scalar(thres[..., j], cd)
        cs = design.cs_names
        for j, name in enumerate(design.fixed(k)[1]):
            if name == "Intercept" and "_thres" in raw or name in cs:
                continue
            out[b_name(name, rname if mv else None)] = _scalar(beta[..., j], cd)
        if cs:                           # category-specific effects: bcs_x[k], after the b_
            bcs = raw["_bcs"].values     # (chain, draw, Kcs, K − 1)
            for j, name in enumerate(cs):
                for t in range(bcs.shape[-1]):
                    out[cs_name(name, t + 1)] = _scalar(bcs[..., j, t], cd)
    for d, k in design.dpar_keys:                 # distributional formulas: b_sigma_x
        rname = resp[k] if mv else None
        beta = raw[f"_beta_{d}" + (f"__{rname}" if mv else "")].values
        for j, name in enumerate(design.dpar_fixed(d, k)[1]):
            out[b_name(name, dpar_prefix(d, rname))] = _scalar(beta[..., j], cd)
    r_parts: dict[str, list] = {}
    for b in built.blocks:
        H = b.H
        for h in range(H):
            hs = f"__{h}" if b.by_levels else ""
            by = by_tag(b.by, b.by_levels[h]) if b.by_levels else ""
            if f"_rho__{b.key}" in raw:          # ar1/cs/toep: sds and rho (covstruct.py)
                std = raw[f"_std__{b.key}"].values
                rho = raw[f"_rho__{b.key}"].values
                for c, lab in enumerate(b.labels):
                    out[sd_name(b.group, lab)] = _scalar(std[..., c], cd)
                for k, name in enumerate(rho_names(b.group, b.structure, b.Q)):
                    out[name] = _scalar(rho[..., k], cd)
            elif b.correlated and b.Q > 1:
                std = raw[f"_std__{b.key}{hs}"].values
                corr = raw[f"_corr__{b.key}{hs}"].values
                for c, lab in enumerate(b.labels):
                    out[sd_name(b.group, lab, by)] = _scalar(std[..., c], cd)
                for c1 in range(b.Q):
                    for c2 in range(c1 + 1, b.Q):
                        out[cor_name(b.group, b.labels[c1], b.labels[c2], by)] = _scalar(
                            corr[..., c1, c2], cd)
            else:
                sd = raw[f"sd__{b.key}{hs}"].values
                for c, lab in enumerate(b.labels):
                    out[sd_name(b.group, lab, by)] = _scalar(sd[..., c], cd)
        if group_effects is not None and b.key in group_effects:
            u = np.asarray(group_effects[b.key])
        else:
            u = raw[f"u__{b.key}"].values
        r_parts.setdefault(b.group, []).append((b, u))
    for group, parts in r_parts.items():
        levels = parts[0][0].levels
        labels = [lab for b, _ in parts for lab in b.labels]
        u = np.concatenate([u for _, u in parts], axis=-1)
        dim = ranef_coef_dim(group)
        out[ranef_name(group)] = xr.DataArray(
            u, dims=("chain", "draw", group, dim), coords={**cd, group: levels, dim: labels})
    rby = built.residual_by
    by_tags = [by_tag(rby.column, lev) for lev in rby.levels] if rby is not None \
        else [""]
    for h, tag in enumerate(by_tags):
        hs = f"__{h}" if rby is not None else ""
        if f"chol__rescor{hs}" in raw:
            std = raw[f"_std__rescor{hs}"].values
            corr = raw[f"_corr__rescor{hs}"].values
            for k, rname in enumerate(resp):
                out[sigma_name(rname, tag)] = _scalar(std[..., k], cd)
            for k1 in range(len(resp)):
                for k2 in range(k1 + 1, len(resp)):
                    out[rescor_name(resp[k1], resp[k2], tag)] = _scalar(
                        corr[..., k1, k2], cd)
        elif "_corr__rescor" in raw:       # sigma formula: Ω sampled as a correlation
            corr = raw["_corr__rescor"].values
            for k1 in range(len(resp)):
                for k2 in range(k1 + 1, len(resp)):
                    out[rescor_name(resp[k1], resp[k2], tag)] = _scalar(
                        corr[..., k1, k2], cd)
        elif rby is not None:
            for rname in resp:
                raw_name = f"sigma__{rname}__by" if mv else "sigma__by"
                out[sigma_name(rname if mv else None, tag)] = _scalar(
                    raw[raw_name].values[..., h], cd)
    if mv:                   # sigma_y2; one family per response also shape_y1, nu_y1, ...
        for rname in resp:
            for d in SPEC_DPARS:
                if f"{d}__{rname}" in raw:
                    out[dpar_prefix(d, rname)] = _scalar(raw[f"{d}__{rname}"].values, cd)
    for name in SPEC_DPARS:
        if name in raw:
            out[name] = _scalar(raw[name].values, cd)
    if "ar" in raw:                                   # ar(): ar[1], ..., as brms
        for k in range(raw["ar"].shape[-1]):
            out[ar_name(k + 1)] = _scalar(raw["ar"].values[..., k], cd)
    if "ma" in raw:                                   # arma()/ma(): ma[1], ..., as brms
        for k in range(raw["ma"].shape[-1]):
            out[ma_name(k + 1)] = _scalar(raw["ma"].values[..., k], cd)
    if "cosy" in raw:
        out["cosy"] = _scalar(raw["cosy"].values, cd)
    if "_corr__cortime" in raw:                       # unstr(): cortime__<t1>__<t2>, as brms
        from ...design.unstr import cortime_pairs
        times = built.design.autocor.times
        corr = raw["_corr__cortime"].values
        for a, b in cortime_pairs(len(times)):
            out[cortime_name(times[a], times[b])] = _scalar(corr[..., a, b], cd)
    return xr.Dataset(out, attrs=dict(raw.attrs))
