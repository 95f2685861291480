"""student: y ~ StudentT(ν, μ, σ), μ = g⁻¹(η); links identity (default), log, inverse.

log p = log Γ((ν+1)/2) − log Γ(ν/2) − ½ log(νπ) − log σ − (ν+1)/2 · log(1 + z²/ν),
z = (y − μ)/σ;  E y = μ (ν > 1), Var y = σ² ν/(ν − 2) (ν > 2, else ∞).
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaln

from .base import Family
from .censoring import student_log_cdf
from .registry import register


@register
class Student(Family):
    name = "student"
    allows_rescor = True
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    dpars = ("sigma", "nu")
    autocor_terms = ("ar", "arma", "cov_arma", "unstr")
    aliases = ("student_t",)

    def logpdf(self, y, eta, params=None, trials=None):
        sigma, nu = params["sigma"], params["nu"]
        z = (y - self.inverse_link(eta)) / sigma
        return (gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi)
                - np.log(sigma) - (nu + 1) / 2 * np.log1p(z ** 2 / nu))

    def truncated_mean(self, mu, params, lb, ub, trials=None):
        """μ + σ G (A − B), G = Γ((ν−1)/2) ν^(ν/2) / (2 (T(b) − T(a)) Γ(ν/2) Γ(½)),
        A = (ν + a²)^(−(ν−1)/2), B likewise at b (brms' posterior_epred_trunc_student)."""
        from scipy.special import gammaln
        from scipy.stats import t
        s, nu = params["sigma"], params["nu"]
        a, b = (lb - mu) / s, (ub - mu) / s
        G = np.exp(gammaln((nu - 1) / 2) + nu / 2 * np.log(nu) - gammaln(nu / 2)
                   - gammaln(0.5)) / (2 * (t.cdf(b, nu) - t.cdf(a, nu)))
        A = (nu + a ** 2) ** (-(nu - 1) / 2)
        B = (nu + b ** 2) ** (-(nu - 1) / 2)
        return mu + s * G * (A - B)

    def rvs(self, mu, params, rng, trials=None):
        nu = np.broadcast_to(params["nu"], np.shape(mu))
        return mu + params["sigma"] * rng.standard_t(nu)

    def variance(self, mu, params=None, trials=None):
        nu = np.asarray(params["nu"], dtype=float)
        s2 = np.asarray(params["sigma"], dtype=float) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(nu > 2, s2 * nu / (nu - 2), np.inf)
        return np.broadcast_to(v, np.broadcast_shapes(np.shape(mu), v.shape))

    def log_density(self, o, y, eta, params, trials=None):
        sigma, nu = params["sigma"], params["nu"]
        z = (y - o.mu(self.link_obj, eta)) / sigma
        return (o.gammaln((nu + 1) / 2) - o.gammaln(nu / 2) - 0.5 * o.log(nu * np.pi)
                - o.log(sigma) - (nu + 1) / 2 * o.log1p(z * z / nu))

    def log_cdf(self, o, y, eta, params, trials=None):
        return student_log_cdf(o, (y - o.mu(self.link_obj, eta)) / params["sigma"],
                               params["nu"])

    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        import pymc as pm
        return pm.StudentT(name, nu=params["nu"], mu=self.inverse_link_tensor(eta),
                           sigma=params["sigma"], observed=observed, dims=dims)
