"""von_mises: an angle −π ≤ y ≤ π ~ VonMises(μ, κ), μ = g⁻¹(η); links tan_half (default,
μ = 2 atan η, brms'), identity; ``kappa`` > 0 (brms' default prior gamma(2, 0.01)).

log p(y) = κ cos(y − μ) − log(2π) − log I₀(κ), log I₀(κ) = log(e^{−κ} I₀(κ)) + κ (no overflow
for large κ); E y = μ as brms' posterior_epred (the circular mean); the variance of an angle is
not a number on the line and is not offered.
"""

from __future__ import annotations

import numpy as np

from ..errors import FamilyError
from .logdensity import LogDensityFamily
from .registry import register


@register
class VonMises(LogDensityFamily):
    name = "von_mises"
    default_link = "tan_half"
    allowed_links = ("tan_half", "identity")
    dpars = ("kappa",)
    mu_domain = (-np.pi, np.pi)

    @property
    def link_can_leave_domain(self) -> bool:      # any real μ is an angle
        return False

    def _check_y(self, y, trials, fail):
        bad = ~((y >= -np.pi) & (y <= np.pi))
        if bad.any():
            fail("angles in [-pi, pi] (radians)", bad)

    def _logdensity(self, o, y, eta, p, trials):
        k = p["kappa"]
        return k * o.cos(y - o.mu(self.link_obj, eta)) - np.log(2 * np.pi) - o.log_i0(k)

    def rvs(self, mu, params, rng, trials=None):
        mu = np.asarray(mu, dtype=float)
        return rng.vonmises(mu, np.broadcast_to(params["kappa"], mu.shape))

    def variance(self, mu, params=None, trials=None):
        raise FamilyError("von_mises: the variance of an angle is not defined on the line "
                          "(the circular variance is 1 − I₁(κ)/I₀(κ))")
