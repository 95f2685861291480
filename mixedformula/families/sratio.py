"""sratio: ordinal y in 1..K, stopping ratio P(y = k | y ≥ k) = F(disc (τ_k − η)) (brms'
``sratio``; links logit (default), probit, cloglog; cs() allowed). Math: :mod:`.ordinal`."""
from .ordinal import OrdinalFamily, sratio_log_probs, sratio_observed_log_prob
from .registry import register


@register
class Sratio(OrdinalFamily):
    name = "sratio"
    _log_probs = staticmethod(sratio_log_probs)
    _observed_log_prob = staticmethod(sratio_observed_log_prob)
