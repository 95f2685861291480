r"""Confidence intervals of lmer fits, lme4's ``confint.merMod``: rows ``.sig01``, …,
``.sigma`` (sd/cor scale, :mod:`.sdcor`; no ``.sigma`` for glmer fits, which have no
residual scale) then the fixed effects, columns ``2.5 %`` and
``97.5 %`` (for level 0.95).

- ``"profile"``: likelihood-profile intervals (:mod:`.profile`);
- ``"wald"``: β̂ ± z_{1−α/2} SE for the fixed effects, NaN for the variance parameters;
- ``"boot"``: percentile intervals of a parametric bootstrap (:mod:`.bootstrap`; lme4's
  default ``nsim = 500``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .sdcor import sdcor_names


def pct_names(level: float) -> list[str]:
    """R's ``paste(format(100 * a, trim = TRUE, scientific = FALSE, digits = 3), "%")``."""
    a = [(1 - level) / 2, 1 - (1 - level) / 2]
    return [f"{float(f'{100 * x:.3g}'):g} %" for x in a]


def confint(fit, method: str = "profile", level: float = 0.95, nsim: int = 500, seed=None,
            workers=None) -> pd.DataFrame:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, not {level!r}")
    method = str(method).lower()
    cols = pct_names(level)
    scale = getattr(fit, "residual_row", True)        # lmer: .sigma; glmer: no residual scale
    sig = sdcor_names(len(fit.theta))
    names = (sig if scale else sig[:-1]) + list(fit.fixef_names)
    if method == "wald":
        z = stats.norm.ppf(0.5 + level / 2)
        se = np.sqrt(np.diag(fit.vcov_beta))
        m = len(fit.theta) + (1 if scale else 0)
        lo = np.r_[np.full(m, np.nan), fit.beta - z * se]
        hi = np.r_[np.full(m, np.nan), fit.beta + z * se]
    elif method == "profile":
        from .profile import profile_confint
        names, lo, hi = profile_confint(fit, level)
    elif method == "boot":
        from .bootstrap import bootstrap
        reps = bootstrap(fit, nsim=nsim, seed=seed, workers=workers)
        a = (1 - level) / 2
        vals = reps[names].to_numpy()
        lo = np.nanquantile(vals, a, axis=0)
        hi = np.nanquantile(vals, 1 - a, axis=0)
    else:
        raise ValueError(f"method must be 'profile', 'wald' or 'boot', not {method!r}")
    return pd.DataFrame({cols[0]: lo, cols[1]: hi}, index=pd.Index(names, dtype=object))
