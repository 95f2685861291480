"""acat: ordinal y in 1..K, adjacent categories P(y = k) ∝ ∏_{j<k} F(a_j) ∏_{j≥k} S(a_j),
a_j = disc (η − τ_j) (brms' ``acat``; links logit (default), probit, cloglog; cs() allowed).
Math: :mod:`.ordinal`."""
from .ordinal import OrdinalFamily, acat_log_probs, acat_observed_log_prob
from .registry import register


@register
class Acat(OrdinalFamily):
    name = "acat"
    _log_probs = staticmethod(acat_log_probs)
    _observed_log_prob = staticmethod(acat_observed_log_prob)
