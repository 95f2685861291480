r"""The conditional likelihood of brms' ``unstr(time, gr)`` (math: :mod:`mixedformula.design.unstr`).

``cortime``: the T × T correlation matrix C ~ LKJ(η) (brms' ``Lcortime ~ lkj_corr_cholesky(1)``
by default; ``prior(lkj(η), class = "cortime")``), sampled through its Cholesky factor
(:func:`cortime_parameter`).

Per time pattern s (the groups observed at the same times) one factor C[s, s] = L_s L_sᵀ and one
forward substitution z = L_s⁻¹ e of the (G_s × n_s) scaled residuals e = (y − η)/σ of its
groups, both unrolled into scalar / elementwise ops: PyTensor's Cholesky and triangular solve
(batched, and 2-D as well, tried here) failed in nutpie's chain threads in the C backend. The per-group MVN is written as its exact sequential conditionals, so
``y`` stays an observed variable with one term per row: the k-th row of a group (k = 0, 1, …
in time order) has

    normal:  y_k | earlier ~ N(η_k + σ_k(e_k − L_kk z_k),  σ_k L_kk)
    student: y_k | earlier ~ t_{ν + k}(η_k + σ_k(e_k − L_kk z_k),
                                       σ_k L_kk √((ν + δ_k)/(ν + k))),   δ_k = Σ_{i<k} z_i²

(e_k − L_kk z_k = Σ_{i<k} L_ki z_i the regression on the earlier rows; the multivariate t's
conditionals are t's with k more degrees of freedom). Their log-densities add up to the
group's MVN (or multivariate t) log-density; tests/test_unstr.py checks them against scipy.
"""

from __future__ import annotations

import numpy as np

from ...design.unstr import time_patterns
from ...priors import Prior
from .marginal import chol_unrolled, forward_unrolled
from .mvnormal import mvt_sequential


def cortime_parameter(T: int, priors):
    """(C, L): C (T, T) ~ LKJ(η) and its Cholesky factor L, η from the user's ``cortime``
    prior or brms' lkj(1). Sampled as PyMC's ``LKJCholeskyCov`` with unit-exponential
    nuisance scales s: Σ = diag(s) C diag(s) with C ~ LKJ(η) independent of s, so
    L = chol(Σ)/s row-wise is the factor of C (Stan's cholesky_factor_corr, as brms'
    ``Lcortime``, without PyMC's ``LKJCorr`` whose box transform leaves most of the cube
    outside the positive-definite matrices for T > 3). s does not enter the likelihood."""
    import pymc as pm
    eta = priors.resolve("cortime", Prior("lkj", (1.0,), "cortime")).prior.args[0]
    chol, corr, std = pm.LKJCholeskyCov("chol__cortime", n=T, eta=eta,
                                        sd_dist=pm.Exponential.dist(1.0, shape=T),
                                        compute_corr=True)
    pm.Deterministic("_corr__cortime", corr)
    return corr, chol / std[:, None]


def unstr_conditionals(structure, resid, sigma, corr, L_full, data):
    """(z, Lkk) per row: the standardised sequential residual and L_s[k, k] of the row's
    position k in its group (module docstring); ``resid`` (n,) = y − η, ``sigma`` (n,) or
    (1,) row scales. The factors and solves are unrolled into scalar and elementwise ops
    (:func:`.marginal.chol_unrolled`, :func:`.marginal.forward_unrolled`)."""
    import pytensor.tensor as pt
    n = len(structure.codes)
    e = resid / sigma
    zs, ls, where = [], [], []
    for i, p in enumerate(time_patterns(structure)):
        L = pattern_factor(corr, L_full, p.times)
        E = e[data(f"unstr_rows_{i}", p.rows)]                              # (G_s, n_s)
        Z = forward_unrolled(L, [E[:, a] for a in range(len(p.times))])
        zs.append(pt.stack(Z, axis=1).ravel())
        diag = pt.stack([L[a][a] for a in range(len(p.times))])
        ls.append(pt.tile(diag, len(p.groups)))
        where.append(p.rows.ravel())
    back = np.empty(n, dtype=np.int64)
    back[np.concatenate(where)] = np.arange(n)
    back = data("unstr_back", back)
    z = pt.concatenate(zs)[back]
    Lkk = pt.concatenate(ls)[back]
    return z, Lkk


def pattern_factor(corr, L_full, times):
    """L_s (nested lists of scalars) with L_s L_sᵀ = C[s, s]: a leading block of C's factor
    (s = the first |s| times), else unrolled from C[s, s]."""
    if tuple(times) == tuple(range(len(times))):
        return [[L_full[a, b] for b in range(len(times))] for a in range(len(times))]
    return chol_unrolled([[corr[a, b] for b in times] for a in times])


def add_unstr_likelihood(structure, family, eta, params: dict, y_obs, priors, data):
    """Add ``cortime`` and ``y`` (one sequential conditional per row) to the model in context;
    ``params["sigma"]`` (1,) or (n,) (a sigma formula), ``params["nu"]`` for the student
    family."""
    T = len(structure.times)
    corr, L_full = cortime_parameter(T, priors)
    sigma = params["sigma"]
    z, Lkk = unstr_conditionals(structure, y_obs - eta, sigma, corr, L_full, data)
    r = y_obs - eta
    mean = eta + r - sigma * Lkk * z
    sd = sigma * Lkk
    rest = {k: v for k, v in params.items() if k not in ("sigma", "nu")}
    if "nu" in params:                 # the multivariate t's conditionals (module docstring)
        rest["nu"], scale = mvt_sequential(structure, z, params["nu"], data, "unstr")
        sd = sd * scale
    rest["sigma"] = sd
    return family.pymc_likelihood("y", mean, rest, y_obs, None, dims="obs")


__all__ = ["add_unstr_likelihood", "cortime_parameter", "unstr_conditionals"]
