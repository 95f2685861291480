r"""Likelihood-profile confidence intervals, as lme4's ``profile()`` + ``confint()``.

lme4 profiles the ML deviance (a REML fit is refitted by ML first). With ψ = (sd/cor…, σ)
(:mod:`.sdcor`) and β profiled out, the ML deviance is

    d(ψ) = log|L_θ|² + r²_θ / σ² + n log(2πσ²),   θ = θ(ψ),

and for a fixed coefficient β_j, with V(θ) = (L_X L_Xᵀ)⁻¹ and everything else profiled
(the penalized RSS is r²_θ + (β − β̂_θ)ᵀ V⁻¹ (β − β̂_θ)),

    d_j(β_j) = min_θ  log|L_θ|² + n [1 + log(2π (r²_θ + (β_j − β̂_{θ,j})² / V_jj) / n)].

The profile of a parameter φ is ζ(φ) = sign(φ − φ̂) √(d_prof(φ) − d̂) with the other
parameters re-optimised (L-BFGS-B, warm-started). The interval at level 1 − α solves
ζ(φ) = ±z_{1−α/2} (secant steps on ζ from the Wald-type guess φ̂ ± z·SE, Brent's method on a
bracket as fallback); lme4 interpolates ζ by splines between profile points instead, which
agrees to about 10⁻⁴. Where ζ does not reach the cutoff before a bound (sd = 0, cor = ±1)
the bound is returned.

glmer fits (:class:`GlmerProfile`, lme4's ``profile.merMod`` for GLMMs): the Laplace / AGQ
deviance d(ψ, β, log params) of the fit (:class:`mixedformula.glmm.GlmerDeviance`; ψ the
sd/cor of the group terms — no σ), each parameter fixed in turn and all others (ψ, β and the
family's further parameters) re-optimised; the same ζ root finding.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import optimize, stats

from .numderiv import hessian
from .sdcor import SdCor, sdcor_names
from ..linalg.threads import one_blas_thread

_LOG2PI = math.log(2 * math.pi)


def minimize_lbfgsb(fun, x0, bounds):
    """L-BFGS-B with central-difference gradients (accurate near the optimum)."""
    x0 = np.asarray(x0, dtype=float)
    if x0.size == 0:
        return x0, float(fun(x0))

    def fg(x):
        f0 = fun(x)
        g = np.empty_like(x)
        for i in range(len(x)):
            h = 1e-6 * max(1.0, abs(x[i]))
            e = np.zeros_like(x)
            e[i] = h
            lo, hi = bounds[i]
            xp, xm = x + e, x - e
            if lo is not None and xm[i] < lo:
                g[i] = (fun(xp) - f0) / h
            elif hi is not None and xp[i] > hi:
                g[i] = (f0 - fun(xm)) / h
            else:
                g[i] = (fun(xp) - fun(xm)) / (2 * h)
        return f0, g

    lo = np.array([b[0] if b[0] is not None else -np.inf for b in bounds])
    hi = np.array([b[1] if b[1] is not None else np.inf for b in bounds])
    x0 = np.clip(x0, lo, hi)
    r = optimize.minimize(fg, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                          options=dict(ftol=1e-13, gtol=1e-6, maxiter=2000, maxls=50))
    return r.x, float(r.fun)


class Profile:
    """Profiles of an LmerFit's ML deviance in lme4's parameters."""

    def __init__(self, fit):
        from .anova import refit_ml
        ml = refit_ml(fit)
        self.fit = ml
        self.pls = ml.penalized_ls()
        self.lam = ml._lam
        self.sc = SdCor(self.lam)
        self.n = self.pls.n
        self.psi_hat = self.sc.from_theta(ml.theta.to_numpy(), ml.sigma)
        self.beta_hat = np.asarray(ml.beta, dtype=float)
        self.theta_hat = ml.theta.to_numpy()
        self.dev_hat = self.dev_psi(self.psi_hat)
        self.names = sdcor_names(self.sc.n_theta) + list(ml.fixef_names)
        self.bounds = self.sc.bounds()

    def dev_psi(self, psi) -> float:
        try:
            theta = self.sc.to_theta(psi)
            f = self.pls.factor(theta)
        except (ValueError, np.linalg.LinAlgError):
            return math.inf
        s2 = psi[-1] ** 2
        return f.logdet_L + f.r2 / s2 + self.n * (_LOG2PI + math.log(s2))

    def dev_beta(self, j: int, bj: float, theta) -> float:
        try:
            f = self.pls.factor(theta)
        except (ValueError, np.linalg.LinAlgError):
            return math.inf
        V = np.linalg.inv(self.pls.beta_precision(f))
        r2 = f.r2 + (bj - self.pls.beta(f)[j]) ** 2 / V[j, j]
        if not r2 > 0:
            return math.inf
        return f.logdet_L + self.n * (1 + _LOG2PI + math.log(r2 / self.n))

    # -- one parameter ---------------------------------------------------------------------------
    def profiled(self, k: int, value: float, start=None):
        """(d_prof, argmin of the others) with parameter k (of ``names``) fixed at value."""
        m = len(self.psi_hat)
        if k < m:
            others = [i for i in range(m) if i != k]
            x0 = self.psi_hat[others] if start is None else start

            def fun(x):
                psi = np.empty(m)
                psi[k] = value
                psi[others] = x
                return self.dev_psi(psi)
            return _minimize_swap(fun, x0, [self.bounds[i] for i in others])
        j = k - m
        x0 = self.theta_hat if start is None else start
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in self.lam.lower]
        return _minimize_swap(lambda th: self.dev_beta(j, value, th), x0, bounds)

    def std_errors(self) -> np.ndarray:
        """Wald-type scales: √ of 2 H⁻¹ of d(ψ) (variance parameters) and the ML SEs of β."""
        with np.errstate(all="ignore"):     # steps across a bound give inf at a boundary fit
            H = hessian(self.dev_psi, self.psi_hat)
        H = np.where(np.isfinite(H), H, 0.0)
        try:
            se_psi = np.sqrt(np.abs(np.diag(2 * np.linalg.pinv(H))))
        except np.linalg.LinAlgError:
            se_psi = np.abs(self.psi_hat) * 0.1 + 0.1
        se_beta = np.sqrt(np.diag(self.fit.vcov_beta))
        # a boundary fit's Hessian says nothing about some directions: floor the step scale
        floor = 0.1 * np.abs(self.psi_hat) + np.where(
            np.append(self.sc.is_cor, False), 0.05, 0.05 * self.psi_hat[-1])
        se_psi = np.where(np.isfinite(se_psi) & (se_psi > 1e-6 * (1 + np.abs(self.psi_hat))),
                          se_psi, floor)
        return np.concatenate([se_psi, se_beta])

    def interval(self, k: int, level: float, se: float) -> tuple[float, float]:
        """Solve ζ(φ) = ±z by the secant method on ζ (nearly linear in φ), warm-starting the
        inner optimisations; Brent's method on a bracket if the secant steps misbehave."""
        z = stats.norm.ppf(0.5 + level / 2)
        est = float(np.concatenate([self.psi_hat, self.beta_hat])[k])
        m = len(self.psi_hat)
        lo_b, hi_b = (self.bounds[k] if k < m else (None, None))
        out = []
        for sign in (-1.0, 1.0):
            bound = lo_b if sign < 0 else hi_b
            state = {"start": None}

            def zeta(v):
                d, x = self.profiled(k, v, state["start"])
                if np.isfinite(d):
                    state["start"] = x
                return sign * math.sqrt(max(d - self.dev_hat, 0.0)) if np.isfinite(d) \
                    else math.nan

            def clip(v):
                return v if bound is None or sign * (v - bound) < 0 else bound

            target = sign * z
            v0, z0 = est, 0.0
            v1 = clip(est + sign * z * se)
            z1 = zeta(v1)
            found = None
            for _ in range(30):
                if not np.isfinite(z1):
                    v1 = (v0 + v1) / 2
                    z1 = zeta(v1)
                    continue
                if abs(z1 - target) < 1e-7:
                    found = v1
                    break
                if bound is not None and v1 == bound and sign * (z1 - target) < 0:
                    found = bound          # the profile does not reach the cutoff
                    break
                slope = (z1 - z0) / (v1 - v0) if v1 != v0 else 0.0
                if not slope > 0:
                    break
                v2 = clip(v1 + (target - z1) / slope)
                v0, z0, v1 = v1, z1, v2
                z1 = zeta(v1)
            if found is None:       # fall back to a bracket and Brent's method
                state["start"] = None
                a, b = est, clip(est + sign * z * se)
                for _ in range(20):
                    zb = zeta(b)
                    if np.isfinite(zb) and sign * (zb - target) >= 0:
                        break
                    if b == bound:
                        break
                    a, b = b, clip(b + sign * z * se)
                if np.isfinite(zb) and sign * (zb - target) >= 0:
                    state["start"] = None
                    try:
                        found = optimize.brentq(lambda v: zeta(v) - target, a, b,
                                                xtol=1e-9 * se)
                    except ValueError:      # ζ not monotone: the inner optimum jumped
                        found = None
                elif b == bound:
                    found = bound
            out.append(np.nan if found is None else float(found))
        return out[0], out[1]


class GlmerProfile(Profile):
    """Profiles of a GlmerFit's deviance over (ψ, β) (the family's parameters re-optimised)."""

    def __init__(self, fit):
        dv = fit.devfun
        if dv is None:
            raise ValueError("this glmer fit has no deviance function (fit.devfun) to profile")
        self.fit, self.dv = fit, dv
        self.lam = fit._lam
        self.sc = SdCor(self.lam)
        self.x_hat = dv.pack(fit.theta.to_numpy(), fit.beta, fit.params)
        self.psi_hat = self.sc.from_theta(fit.theta.to_numpy(), 1.0)[:-1]
        self.beta_hat = np.asarray(fit.beta, dtype=float)
        self.rest_hat = self.x_hat[dv.nth + dv.p:]
        self.dev_hat = float(dv(self.x_hat))
        self.names = sdcor_names(self.sc.n_theta)[:-1] + list(fit.fixef_names)
        self.bounds = self.sc.bounds()[:-1]
        self.all_bounds = (self.bounds + [(None, None)] * (dv.p + len(self.rest_hat)))

    def dev_all(self, v) -> float:
        """Deviance at v = (ψ, β on X's scale, log params)."""
        m, p = len(self.psi_hat), self.dv.p
        try:
            theta = self.sc.to_theta(np.append(v[:m], 1.0))
        except (ValueError, np.linalg.LinAlgError):
            return math.inf
        x = np.concatenate([theta, v[m:m + p] * self.dv.xscale, v[m + p:]])
        return float(self.dv(x))

    def profiled(self, k: int, value: float, start=None):
        v_hat = np.concatenate([self.psi_hat, self.beta_hat, self.rest_hat])
        others = [i for i in range(len(v_hat)) if i != k]
        x0 = v_hat[others] if start is None else start

        def fun(x):
            v = np.empty(len(v_hat))
            v[k] = value
            v[others] = x
            return self.dev_all(v)
        return _minimize_swap(fun, x0, [self.all_bounds[i] for i in others])

    def std_errors(self) -> np.ndarray:
        """Step scales: √ of the diagonal of the fit's 2 H⁻¹ (θ for ψ, which is ψ for scalar
        terms), floored where a boundary fit leaves them undetermined; the SEs of β."""
        nth = self.dv.nth
        V = self.fit.vcov_full
        se_t = np.sqrt(np.abs(np.diag(V)[:nth])) if V is not None else np.full(nth, np.nan)
        floor = 0.1 * np.abs(self.psi_hat) + 0.05
        se_psi = np.where(np.isfinite(se_t) & (se_t > 1e-6), se_t, floor)
        return np.concatenate([se_psi, np.sqrt(np.diag(self.fit.vcov_beta))])


def _minimize_swap(fun, x0, bounds):
    x, f = minimize_lbfgsb(fun, x0, bounds)
    return f, x


def profile_confint(fit, level: float = 0.95):
    """(names, lower, upper) of the profile intervals of every parameter."""
    with one_blas_thread():
        return _profile_confint(fit, level)


def _profile_confint(fit, level):
    prof = GlmerProfile(fit) if getattr(fit, "devfun", None) is not None else Profile(fit)
    se = prof.std_errors()
    lows, highs, at_bound, failed = [], [], [], []
    for k in range(len(prof.names)):
        lo, hi = prof.interval(k, level, se[k])
        if np.isnan(lo) or np.isnan(hi):
            failed.append(prof.names[k])
        lows.append(lo)
        highs.append(hi)
        b = prof.bounds[k] if k < len(prof.bounds) else (None, None)
        hit = [str(v) for v, lim in ((lo, b[0]), (hi, b[1])) if lim is not None and v == lim]
        if hit:
            at_bound.append(f"{prof.names[k]} ({', '.join(hit)})")
    if at_bound:
        warnings.warn(f"the likelihood profile does not reach the {100 * level:g}% cutoff "
                      f"before the parameter's bound for {', '.join(at_bound)}: that limit is "
                      f"the bound (a singular fit or a poorly determined variance)",
                      RuntimeWarning, stacklevel=4)
    if failed:
        warnings.warn(f"the likelihood profile of {', '.join(failed)} could not be solved for "
                      f"the cutoff (not monotone: the other parameters' optimum jumps); those "
                      f"limits are NaN", RuntimeWarning, stacklevel=4)
    return prof.names, np.array(lows), np.array(highs)
