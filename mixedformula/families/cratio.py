"""cratio: ordinal y in 1..K, continuation ratio P(y > k | y ≥ k) = F(disc (η − τ_k)) (brms'
``cratio``; links logit (default), probit, cloglog; cs() allowed). Math: :mod:`.ordinal`."""
from .ordinal import OrdinalFamily, cratio_log_probs, cratio_observed_log_prob
from .registry import register


@register
class Cratio(OrdinalFamily):
    name = "cratio"
    _log_probs = staticmethod(cratio_log_probs)
    _observed_log_prob = staticmethod(cratio_observed_log_prob)
