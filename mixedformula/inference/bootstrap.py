r"""Parametric bootstrap of an lmer fit (lme4's ``bootMer``, MixedModels.jl's
``parametricbootstrap``).

Replicate r simulates from the fitted model,

    y* = Xβ̂ + σ̂ Z Λ(θ̂) u* + σ̂ W^{-1/2} ε*,   u* ~ N(0, I_q), ε* ~ N(0, I_n),

(W the prior weights, I without them),

and refits it by the fit's criterion (REML or ML). The refit reuses the fit's penalized
least-squares system (:meth:`PenalizedLS.with_response`: only Xᵀe, eᵀe, Zᵀe change with y,
the Z-only cross-products and the Schur-update structure are kept) and starts the optimiser
at θ̂ (as MixedModels.jl does), BFGS seeded with the inverse Hessian of the criterion at θ̂; a
replicate whose optimum has a diagonal θ below 10⁻⁴ is refitted by bounded L-BFGS-B, also
from interior starts, and the best optimum kept. Replicate r draws from its own seed
stream (the r-th child of ``numpy.random.SeedSequence(seed)``), so it does not depend on nsim
or on the number of worker processes; the replicates are split over ``workers`` forked processes (the refits
are small and Python-bound, so threads would serialise on the GIL).

glmer fits (:func:`glmer_bootstrap`, lme4's ``bootMer`` of a ``glmerMod``): replicate r draws
u* ~ N(0, I_q), η* = o + Xβ̂ + ZΛ(θ̂)u* and y* from the family at g⁻¹(η*) (its ``rvs``, with the
fit's trials and further parameters; prior weights are not used to simulate, as lme4's
``simulate``), and refits the Laplace / AGQ deviance over (θ, β, log params) by L-BFGS-B from
the fit's estimates (:class:`mixedformula.glmm.GlmerDeviance` for the new response: the PIRLS
structure is reused; the conditional modes warm-start from the previous evaluation).
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .kenward_roger import z_matrix
from .sdcor import SdCor, sdcor_names
from ..linalg.threads import one_blas_thread
from .numderiv import forward_value_gradient

_JOB: dict = {}


class Simulator:
    """Draws replicate r's response from its own stream ``SeedSequence(entropy, spawn_key=(r,))``
    (the r-th child of ``SeedSequence(seed)``), so replicate r is the same whatever nsim and the
    number of workers are, and no nsim × n array is held."""

    def __init__(self, fit, seed=None):
        lam = fit._lam
        Z = sp.hstack([z_matrix(t.X, t.codes, t.layout.J) for t in fit.terms], format="csr")
        self.ZL = (Z @ lam.sparse(fit.theta.to_numpy())).tocsr()
        self.mean = fit.design.X @ fit.beta
        self.sigma = float(fit.sigma)
        w = getattr(fit, "weights", None)      # prior weights: Var(ε_i) = σ²/a_i
        self.noise_scale = None if w is None else np.where(w > 0, 1.0 / np.sqrt(
            np.where(w > 0, w, 1.0)), 0.0)
        self.entropy = np.random.SeedSequence(seed).entropy

    def __call__(self, r: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(int(r),)))
        q = self.ZL.shape[1]
        d = rng.standard_normal(q + len(self.mean))
        e = d[q:] if self.noise_scale is None else d[q:] * self.noise_scale
        return self.mean + self.sigma * (self.ZL @ d[:q] + e)


def simulate_responses(fit, nsim: int, seed=None) -> np.ndarray:
    """(nsim, n) responses simulated from the fitted model (replicates 0 … nsim − 1)."""
    sim = Simulator(fit, seed)
    return np.stack([sim(r) for r in range(int(nsim))])


def _fg(p, th, reml):
    """Deviance and its gradient: exact where available, else central differences."""
    out = p.deviance_and_gradient(th, reml) if p._gradient_applies else None
    if out is not None:
        return out
    m = len(th)
    hs = 1e-6 * np.maximum(1.0, np.abs(th))
    E = np.diag(hs)
    batch = p.deviance_batch(np.vstack([th[None], th + E, th - E]), reml)
    if batch is not None:
        return float(batch[0]), (batch[1:m + 1] - batch[m + 1:]) / (2 * hs)
    f0 = p.deviance(th, reml)
    g = np.empty_like(th)
    for i in range(len(th)):
        h = 1e-6 * max(1.0, abs(th[i]))
        e = np.zeros_like(th)
        e[i] = h
        g[i] = (p.deviance(th + e, reml) - p.deviance(th - e, reml)) / (2 * h)
    return f0, g


def start_hessian_inverse(pls, theta, reml):
    """Inverse Hessian of the criterion at θ̂ (central differences of the gradient), to seed
    BFGS in every replicate; None if it is not positive definite (a boundary fit)."""
    m = len(theta)
    H = np.empty((m, m))
    for i in range(m):
        h = 1e-3 * max(1.0, abs(theta[i]))
        e = np.zeros(m)
        e[i] = h
        H[i] = (_fg(pls, theta + e, reml)[1] - _fg(pls, theta - e, reml)[1]) / (2 * h)
    H = (H + H.T) / 2
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return None
    Hi = np.linalg.inv(H)
    return (Hi + Hi.T) / 2


def refit(pls, y, reml: bool, x0, lower, interior, hess_inv=None):
    """θ̂, β̂, σ̂, criterion of one simulated response.

    BFGS from θ̂ seeded with the inverse Hessian at θ̂ (about half the evaluations of a cold
    L-BFGS-B); if that ends near or beyond a bound (a diagonal θ below 10⁻⁴), bounded
    L-BFGS-B from there and from interior starts, the best optimum kept."""
    from scipy.optimize import minimize
    p = pls.with_response(y)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    bounded = np.isfinite(lower)

    def bounded_run(start):
        r = minimize(lambda th: _fg(p, th, reml), np.maximum(start, np.where(bounded, lower,
                                                                             -np.inf)),
                     jac=True, method="L-BFGS-B", bounds=bounds,
                     options=dict(ftol=1e-13, gtol=1e-7, maxiter=2000))
        return r.x, float(r.fun)

    x = None
    if hess_inv is not None:
        r = minimize(lambda th: _fg(p, th, reml), x0, jac=True, method="BFGS",
                     options=dict(hess_inv0=hess_inv, gtol=1e-4, maxiter=200))
        if np.isfinite(r.fun) and not np.any(bounded & (r.x < lower + 1e-4)):
            x, f = r.x, float(r.fun)
    if x is None:
        x, f = bounded_run(x0)
        if np.any(bounded & (x < lower + 1e-4)):
            for s in interior:
                xs, fs = bounded_run(s)
                if fs < f - 1e-10:
                    x, f = xs, fs
    x = np.where(bounded, np.maximum(x, lower), x)
    fac = p.factor(x)
    n = p.n
    s2 = fac.r2 / (n - p.p if reml else n)
    return x, p.beta(fac), math.sqrt(max(s2, 0.0)), f


def _work(rows):
    job = _JOB
    out = []
    with one_blas_thread():
        for i in rows:
            out.append(refit(job["pls"], job["sim"](i), job["reml"], job["x0"], job["lower"],
                             job["interior"], job["hess_inv"]))
    return out


def bootstrap(fit, nsim: int = 1000, seed=None, workers: int | None = None) -> pd.DataFrame:
    """DataFrame of nsim replicates: ``objective``, the fixed effects, ``.sig01``, …,
    ``.sigma`` (lme4's sd/cor scale) and ``theta.<name>``."""
    if getattr(fit, "devfun", None) is not None:
        return glmer_bootstrap(fit, nsim=nsim, seed=seed, workers=workers)
    if hasattr(fit, "need_rows"):
        fit.need_rows("the parametric bootstrap (it simulates responses row by row)")
    nsim = int(nsim)
    if nsim < 1:
        raise ValueError(f"nsim must be at least 1, not {nsim}")
    lam = fit._lam
    theta = fit.theta.to_numpy()
    interior = [np.where(lam.is_diagonal, np.maximum(theta, 0.1), theta), lam.theta0]
    pls = fit.penalized_ls()
    with one_blas_thread():
        hess_inv = start_hessian_inverse(pls, theta, fit.reml)
    job = {"pls": pls, "sim": Simulator(fit, seed), "reml": fit.reml, "x0": theta,
           "lower": lam.lower, "interior": interior, "hess_inv": hess_inv}
    results = _run(job, _work, nsim, workers)
    sc = SdCor(lam)
    rows = []
    for th, beta, sigma, f in results:
        rows.append(np.concatenate([[f], beta, sc.from_theta(th, sigma), th]))
    cols = (["objective"] + list(fit.fixef_names) + sdcor_names(len(theta))
            + [f"theta.{n}" for n in fit.theta.index])
    return pd.DataFrame(np.array(rows), columns=pd.Index(cols, dtype=object))


# -- glmer --------------------------------------------------------------------------------------
class GlmerSimulator:
    """Replicate r's response of a glmer fit from its own seed stream (as :class:`Simulator`)."""

    def __init__(self, fit, seed=None):
        lam = fit._lam
        Z = sp.hstack([z_matrix(t.X, t.codes, t.layout.J) for t in fit.terms], format="csr")
        self.ZL = (Z @ lam.sparse(fit.theta.to_numpy())).tocsr()
        eta = fit.design.X @ fit.beta
        self.eta = eta if fit.offset is None else eta + fit.offset
        self.family, self.params, self.trials = fit.family, dict(fit.params), fit.design.trials
        self.entropy = np.random.SeedSequence(seed).entropy

    def __call__(self, r: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence(self.entropy, spawn_key=(int(r),)))
        u = rng.standard_normal(self.ZL.shape[1])
        mu = self.family.inverse_link(self.eta + self.ZL @ u)
        return np.asarray(self.family.rvs(mu, self.params, rng, self.trials), dtype=float)


def glmer_refit(devfun, y, x0, h: float = 1e-6):
    """(x̂*, deviance) of one simulated response: L-BFGS-B (forward-difference gradients,
    stepping away from the bounds) from x0."""
    from scipy.optimize import minimize
    dv = devfun.with_response(y)
    lower = dv.lower
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]

    def fg(x):
        return forward_value_gradient(dv, x, h)

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r = minimize(fg, np.maximum(x0, lower), jac=True, method="L-BFGS-B", bounds=bounds,
                     options=dict(ftol=1e-11, gtol=1e-5, maxiter=2000, maxls=40))
    return np.asarray(r.x, dtype=float), float(r.fun)


def _work_glmer(rows):
    job = _JOB
    with one_blas_thread():
        return [glmer_refit(job["devfun"], job["sim"](i), job["x0"]) for i in rows]


def glmer_bootstrap(fit, nsim: int = 1000, seed=None, workers: int | None = None):
    """DataFrame of nsim replicates of a glmer fit: ``objective``, the fixed effects,
    ``.sig01``, … (sd/cor; no ``.sigma``), ``theta.<name>`` and the family's further
    parameters (``shape``)."""
    nsim = int(nsim)
    if nsim < 1:
        raise ValueError(f"nsim must be at least 1, not {nsim}")
    dv = fit.devfun
    if dv is None:
        raise ValueError("this glmer fit has no deviance function (fit.devfun) to refit")
    lam = fit._lam
    x0 = dv.pack(fit.theta.to_numpy(), fit.beta, fit.params)
    job = {"devfun": dv, "sim": GlmerSimulator(fit, seed), "x0": x0}
    results = _run(job, _work_glmer, nsim, workers)
    sc = SdCor(lam)
    rows = []
    for x, f in results:
        th, b, prm = dv.unpack(x)
        rows.append(np.concatenate([[f], b / dv.xscale, sc.from_theta(th, 1.0)[:-1], th,
                                    [prm[k] for k in dv.dpars]]))
    cols = (["objective"] + list(fit.fixef_names) + sdcor_names(len(x0[:dv.nth]))[:-1]
            + [f"theta.{n}" for n in fit.theta.index] + list(dv.dpars))
    return pd.DataFrame(np.array(rows), columns=pd.Index(cols, dtype=object))


def _run(job, work, nsim, workers):
    """Replicates 0 … nsim − 1 split over ``workers`` forked processes (1: in-process)."""
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
    workers = max(1, min(int(workers), nsim))
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():     # Windows: no fork, run in-process
        workers = 1
    chunks = [list(c) for c in np.array_split(np.arange(nsim), workers)]
    _JOB.clear()
    _JOB.update(job)
    try:
        if workers == 1:
            return work(chunks[0])
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
            return [r for part in ex.map(work, chunks) for r in part]
    finally:
        _JOB.clear()
