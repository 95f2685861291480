"""Implied marginal moments of y: E[y] = Xβ and Var[y] = Z G Zᵀ + R for chosen rows.

The conditional and marginal formulations are one model: given β, G and R,

    y = Xβ + Zu + ε,  u ~ N(0, G),  ε ~ N(0, R)   ⇒   E[y] = Xβ,  Var[y] = Z G Zᵀ + R.

For each posterior draw, G per covariance block (and per by-level of ``gr(by=)``, the G of the
row's level) and R per row (R_i = diag(σ_i) Ω_i diag(σ_i); with ``rescor_by`` the σ and Ω of
the row's level; univariate R_i = σ_i²; responses stacked row by row) are read by
:class:`~mixedformula.results.posterior.PosteriorDraws`; the result is the posterior mean of
E[y] and Var[y] over draws.

Families: Gaussian (identity link) as above. Student-t (identity link): Var[ε_i] = σ_i² ν/(ν − 2)
for ν > 2; a draw with ν ≤ 2 has infinite variance, so the posterior mean of Var[y] is then
infinite: the diagonal is ``inf`` (and a warning says how many draws have ν ≤ 2). Other
families, and non-identity links, raise :class:`~mixedformula.MixedFormulaError`: their
Var[y] is not Z G Zᵀ + R (the mean is g⁻¹(η) and the variance depends on it), and a
log-scale "R" would be a wrong number on any scale.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import MixedFormulaError
from .posterior import PosteriorDraws


@dataclass
class MarginalMoments:
    mean: pd.Series          # posterior mean of E[y] for the chosen rows (× responses)
    cov: pd.DataFrame        # posterior mean of Var[y]
    G_part: pd.DataFrame     # posterior mean of Z G Zᵀ
    R_part: pd.DataFrame     # posterior mean of R

    def __repr__(self) -> str:
        with pd.option_context("display.width", 120, "display.max_columns", 12):
            return (f"E[y] = Xβ (posterior mean):\n{self.mean.round(3)}\n\n"
                    f"Var[y] = Z G Zᵀ + R (posterior mean):\n{self.cov.round(3)}")


def _residual_scale(fit, draws: PosteriorDraws):
    """Var[ε] / σ² per draw: 1 (gaussian), ν/(ν − 2) (student; inf for ν ≤ 2)."""
    fam = fit.family
    if fit.design is not None and fit.design.dpar_keys:
        raise MixedFormulaError("marginal_cov() is not available for distributional formulas "
                                "(sigma ~ x): R is not one matrix of the model's parameters "
                                "but differs per row; use fit.predict(dpar='sigma')")
    student = "nu" in fam.dpars            # the student family: sigma and nu
    if fam.link != "identity" or not (fam.gaussian or student):
        raise MixedFormulaError(
            f"marginal_cov() gives Var[y] = Z G Zᵀ + R, which holds for gaussian and student "
            f"models with identity link; this model is {fam.name} with {fam.link} link, whose "
            f"variance of y depends on its mean g⁻¹(η) and is not of that form (use "
            f"fit.predict(kind='response') to see the spread of y)")
    if not student:
        return 1.0
    nu = draws.dpar("nu")
    low = nu <= 2
    if low.any():
        warnings.warn(f"marginal_cov(): {int(low.sum())} of {len(nu)} posterior draws have "
                      f"nu <= 2, where the student-t variance is infinite; the posterior mean "
                      f"of Var[y] is therefore infinite (inf on the diagonal)", stacklevel=3)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(low, np.inf, nu / (nu - 2.0))


def marginal_moments(fit, rows=None, group: str | None = None, level=None,
                     max_rows: int = 500) -> MarginalMoments:
    """Moments for ``rows`` (positions in the fitted data) or all rows of ``level`` of ``group``."""
    design = fit.design
    if design is None:
        raise ValueError("this fit has no design (saved without data)")
    if group is not None:
        terms = [t for t in design.terms if t.name == group]
        if not terms:
            raise ValueError(f"no group term for {group!r}")
        t0 = terms[0]
        if str(level) not in t0.levels:
            raise ValueError(f"{level!r} is not a level of {group}")
        rows = np.nonzero(t0.codes == t0.levels.index(str(level)))[0]
    rows = np.arange(min(design.nobs, 10)) if rows is None else np.asarray(rows, dtype=int)
    if len(rows) > max_rows:
        raise ValueError(f"{len(rows)} rows asked; at most {max_rows} (the matrix is dense)")
    draws = PosteriorDraws.of_fit(fit)
    scale = _residual_scale(fit, draws)
    resp = design.response_names
    mv = len(resp) > 1
    n, r = len(rows), len(resp)
    # E[y] = X β̄ per response
    mean = np.zeros((n, r))
    for k in range(r):
        Xk, names = design.fixed(k)
        mean[:, k] = Xk[rows] @ draws.beta(k, names).mean(axis=0)
    # Z G Zᵀ: per block, rows i, j share u only on the same level (then also the same by-level)
    GZ = np.zeros((n * r, n * r))
    for blk in draws.blocks:
        G = draws.block_cov(blk).mean(axis=0)                          # (H, Q, Q)
        for pa in blk.parts:
            ta = design.terms[pa.term]
            ca = np.asarray(ta.codes)[rows]
            h = np.asarray(blk.by_codes)[np.clip(ca, 0, None)] if blk.by_levels \
                else np.zeros(n, dtype=int)
            sa = slice(pa.offset, pa.offset + pa.q)
            for pb in blk.parts:
                tb = design.terms[pb.term]
                cb = np.asarray(tb.codes)[rows]
                sb = slice(pb.offset, pb.offset + pb.q)
                A = np.einsum("ia,iab->ib", ta.X[rows], G[h][:, sa, sb])    # (n, q_b)
                same = (ca[:, None] == cb[None, :]) & (ca[:, None] >= 0)
                if blk.cov_factor is not None:      # gr(cov = A): Cov(u_j, u_j') = A_jj' G
                    Lc = np.asarray(blk.cov_factor)
                    ok = (ca[:, None] >= 0) & (cb[None, :] >= 0)
                    Ar = Lc[np.clip(ca, 0, None)] @ Lc[np.clip(cb, 0, None)].T
                    same = np.where(ok, Ar, 0.0)
                GZ[pa.response::r, pb.response::r] += same * (A @ tb.X[rows].T)
    # R per row (rescor_by: the row's level), times the family's variance factor
    tags = draws.residual_tags(design)
    sig, cor = draws.residual_sd_cor(None if tags is None else tags[rows], n)  # (S, n, r(, r))
    R = sig[..., :, None] * cor * sig[..., None, :]
    if np.ndim(scale):
        with np.errstate(invalid="ignore"):
            R = np.where(R != 0, R * scale[:, None, None, None], 0.0)
    else:
        R = R * scale
    Rbar = R.mean(axis=0)                                              # (n, r, r)
    Rm = np.zeros((n * r, n * r))
    for k1 in range(r):
        for k2 in range(r):
            Rm[np.arange(n) * r + k1, np.arange(n) * r + k2] = Rbar[:, k1, k2]
    index = [f"{i}" for i in rows] if not mv else [f"{i}:{rn}" for i in rows for rn in resp]
    return MarginalMoments(mean=pd.Series(mean.reshape(-1), index=index, name="E[y]"),
                           cov=pd.DataFrame(GZ + Rm, index=index, columns=index),
                           G_part=pd.DataFrame(GZ, index=index, columns=index),
                           R_part=pd.DataFrame(Rm, index=index, columns=index))
