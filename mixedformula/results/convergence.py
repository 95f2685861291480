"""Convergence checks at the end of ``fit()``: which parameters are not trustworthy yet.

For every scalar parameter of the posterior (brms names: ``b_``, ``sd_``, ``cor_``, ``sigma``,
…) with C chains:

* R-hat (rank-normalised split R-hat, the summary's ``Rhat``) above :data:`RHAT_MAX` = 1.01
  (Vehtari et al. 2021's recommendation; brms prints a warning above 1.05);
* bulk or tail ESS below :data:`ESS_PER_CHAIN` · C = 100 per chain (the threshold of rstan's
  warnings, which brms passes on);
* any divergent transition after warmup.

:func:`convergence_problems` lists them in plain words; :func:`warn_if_not_converged` issues
one :class:`mixedformula.ConvergenceWarning` with that text.
"""

from __future__ import annotations

import warnings

from ..errors import ConvergenceWarning
from .summary import count_divergences
from .tables import posterior_table

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
SHOWN = 4            # parameters named per problem, then "and k more"


def _names(worst: list[tuple[str, float]], fmt: str) -> str:
    shown = ", ".join(f"{n} ({fmt.format(v)})" for n, v in worst[:SHOWN])
    more = len(worst) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def convergence_problems(idata) -> list[str]:
    """One sentence per problem found (empty when none): R-hat, bulk ESS, tail ESS,
    divergences; parameters ordered worst first."""
    post = idata.posterior
    scalars = [v for v in post.data_vars if post[v].dims == ("chain", "draw")]
    out = []
    if scalars:
        chains = int(post.sizes["chain"])
        tab = posterior_table(post, scalars, scalars)
        rhat = tab["Rhat"].to_numpy(dtype=float)
        bad = [(n, r) for n, r in zip(scalars, rhat) if r > RHAT_MAX]
        if bad:
            bad.sort(key=lambda t: -t[1])
            out.append(f"R-hat above {RHAT_MAX} for {_names(bad, '{:.3f}')}: the chains have "
                       "not converged to one distribution")
        floor = ESS_PER_CHAIN * chains
        for col, what in (("Bulk_ESS", "bulk"), ("Tail_ESS", "tail")):
            ess = tab[col].to_numpy(dtype=float)
            low = sorted([(n, e) for n, e in zip(scalars, ess) if e < floor],
                         key=lambda t: t[1])
            if low:
                out.append(f"{what} ESS below {floor} ({ESS_PER_CHAIN} per chain) for "
                           f"{_names(low, '{:.0f}')}")
    n_div = count_divergences(idata)
    if n_div:
        out.append(f"{n_div} divergent transitions after warmup")
    return out


def warn_if_not_converged(idata, hint: str = "") -> list[str]:
    """Issue a :class:`ConvergenceWarning` listing :func:`convergence_problems`; returns them."""
    problems = convergence_problems(idata)
    if problems:
        advice = ("run longer chains (draws=, tune=), raise target_accept (e.g. 0.95) for "
                  "divergences" + (f", {hint}" if hint else "") + "; see fit.summary()")
        warnings.warn("the fit may not be reliable: " + "; ".join(problems) + ". To fix: "
                      + advice + ".", ConvergenceWarning, stacklevel=3)
    return problems
