"""cumulative: ordinal y in 1..K, P(y ≤ k) = F(disc (τ_k − η)) with ordered thresholds τ
(brms' ``cumulative``; links logit (default), probit, cloglog). Math: :mod:`.ordinal`."""
from .ordinal import OrdinalFamily, cumulative_log_probs, cumulative_observed_log_prob
from .registry import register


@register
class Cumulative(OrdinalFamily):
    name = "cumulative"
    ordered_thresholds = True
    allows_cs = False          # brms 2.18: cs() fitted with a warning (experimental)
    _log_probs = staticmethod(cumulative_log_probs)
    _observed_log_prob = staticmethod(cumulative_observed_log_prob)
