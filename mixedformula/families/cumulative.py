"""cumulative: ordinal y in 1..K, P(y ≤ k) = F(disc (τ_k − η)) with ordered thresholds τ
(brms' ``cumulative``; links logit (default), probit, cloglog). Math: :mod:`.ordinal`."""
import numpy as np

from .ordinal import OrdinalFamily, cumulative_log_probs, cumulative_observed_log_prob
from .registry import register


@register
class Cumulative(OrdinalFamily):
    name = "cumulative"
    ordered_thresholds = True
    allows_cs = False          # brms 2.18: cs() fitted with a warning (experimental)
    _log_probs = staticmethod(cumulative_log_probs)
    _observed_log_prob = staticmethod(cumulative_observed_log_prob)

    def working_weights(self, y, trials):
        """Fisher information about η per row at the intercept-only fit (the rule that
        centres group effects, :func:`...backends.pymc.build.level_information`): with p_k
        the categories' shares, τ_k = F⁻¹(p_1 + … + p_k) and f = F' (so f(τ_0) = f(τ_K) = 0),

            I = Σ_k (f(τ_k) − f(τ_{k−1}))² / p_k      (p_k(η) = F(τ_k − η) − F(τ_{k−1} − η));

        disc = 1, categories that do not occur left out."""
        y = np.asarray(y, dtype=float)
        _, counts = np.unique(y[np.isfinite(y)], return_counts=True)
        if counts.size < 2:
            return None
        p = counts / counts.sum()
        f = np.concatenate([[0.0], self.link_obj.dmu_deta(np.cumsum(p)[:-1]), [0.0]])
        return np.full(len(y), float(np.sum(np.diff(f) ** 2 / p)))
