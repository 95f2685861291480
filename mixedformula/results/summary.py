"""brms' ``summary()``: header, Multilevel Hyperparameters, Regression Coefficients, Further
Distributional Parameters, Residual Correlations, closing note and warnings.

Layout and rounding are those of ``brms:::print.brmssummary`` (brms ≥ 2.21 block headings), with
one extra header line naming the likelihood engine (conditional, or marginal with the group
effects integrated out and recovered exactly after sampling).

Warnings (printed after the closing note, also in :attr:`Summary.warnings`):

* divergent transitions after warmup (``sample_stats.diverging``), as brms words it;
* any Rhat > 1.05 (brms' threshold and wording);
* any Bulk_ESS or Tail_ESS < 100 (rstan's checks).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .naming import fixed_label
from .params import ParamIndex
from .tables import format_table, html_table, posterior_table

RHAT_MAX = 1.05          # brms' "have not converged" warning
RHAT_CAUTION = 1.01      # current recommendation (Vehtari et al. 2021)
ESS_MIN = 100
ESS_CAUTION = 400

CLOSING = ("For each parameter, Bulk_ESS\n"
           "and Tail_ESS are effective sample size measures, and Rhat is the potential\n"
           "scale reduction factor on split chains (at convergence, Rhat = 1).")

LIKELIHOOD_TEXT = {
    "marginal": "marginal (group effects integrated out, recovered exactly)",
    "conditional": "conditional",
}


@dataclass
class Summary:
    """A brms-style summary. ``str(summary)`` is the printed text; the tables are DataFrames.

    Attributes
    ----------
    fixed : DataFrame
        Regression coefficients (rows ``Intercept``, ``Days``; multivariate ``y1_x``).
    random : dict[str, DataFrame]
        Per grouping factor (formula order): rows ``sd(...)`` then ``cor(...,...)``.
    spec_pars : DataFrame
        Further distributional parameters (``sigma``, ``nu``, ``shape``, ``sigma_y1``).
    rescor : DataFrame
        Residual correlations (``rescor(y1,y2)``); empty for univariate models.
    ngrps : dict[str, int]
        Number of levels per grouping factor.
    warnings : list[str]
        Convergence and divergence warnings.
    """

    family: str
    links: list[str]
    formula: str
    data_name: str
    nobs: int
    chains: int
    iter: int
    warmup: int
    thin: int
    total_draws: int
    likelihood: str
    engine_note: str
    sampler: str
    fixed: pd.DataFrame
    random: dict[str, pd.DataFrame]
    spec_pars: pd.DataFrame
    rescor: pd.DataFrame
    ngrps: dict[str, int]
    #: brms' "Correlation Structures:" block (``ar[1]``, ``cosy``), printed first as brms does
    autocor: pd.DataFrame = field(default_factory=pd.DataFrame)
    warnings: list[str] = field(default_factory=list)
    digits: int = 2
    n_divergent: int = 0
    nobs_by_response: dict[str, int] = field(default_factory=dict)
    not_used: dict[str, str] = field(default_factory=dict)
    #: the implied R_j of a typical subject under the Correlation Structures block
    #: (:mod:`mixedformula.results.structures`; not in brms' print)
    structure_lines: list[str] = field(default_factory=list)

    # -- text ----------------------------------------------------------------------------
    def header_lines(self) -> list[str]:
        links = ("\n" + " " * 9).join(self.links)
        lines = [f" Family: {self.family} ", f"  Links: {links} ",
                 f"Formula: {self.formula} ",
                 f"   Data: {self.data_name} (Number of observations: {self.nobs}) ",
                 *([" " * 9 + "observations per response: " + ", ".join(
                     f"{k} {v}" for k, v in self.nobs_by_response.items())]
                   if self.nobs_by_response else []),
                 *[" " * 9 + f"{k}: {v}" for k, v in self.not_used.items()],
                 f"  Draws: {self.chains} chains, each with iter = {self.iter}; "
                 f"warmup = {self.warmup}; thin = {self.thin};",
                 f"         total post-warmup draws = {self.total_draws}"]
        lik = LIKELIHOOD_TEXT.get(self.likelihood, str(self.likelihood))
        if self.engine_note:
            lik += f"; {self.engine_note}"
        lines.append(f"Likelihood: {lik}")
        return lines

    def blocks(self) -> list[tuple[str, pd.DataFrame]]:
        """(heading, table) in print order; group blocks use the ``~g (Number of levels)`` line."""
        out = []
        for g, tab in self.random.items():
            if len(tab):
                out.append((f"~{g} (Number of levels: {self.ngrps.get(g, 'NA')}) ", tab))
        return out

    def __str__(self) -> str:
        lines = self.header_lines() + [""]
        if len(self.autocor):
            lines.append("Correlation Structures:")
            lines += format_table(self.autocor, self.digits)
            lines += self.structure_lines
            lines.append("")
        groups = self.blocks()
        if groups:
            lines.append("Multilevel Hyperparameters:")
            for head, tab in groups:
                lines.append(head)
                lines += format_table(tab, self.digits)
                lines.append("")
        for heading, tab in (("Regression Coefficients:", self.fixed),
                             ("Further Distributional Parameters:", self.spec_pars),
                             ("Residual Correlations: ", self.rescor)):
            if len(tab):
                lines.append(heading)
                lines += format_table(tab, self.digits)
                lines.append("")
        lines.append(f"Draws were sampled using {self.sampler}. " + CLOSING)
        if self.warnings:
            lines.append("")
            lines += [f"Warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        parts = [f"<pre>{html.escape(chr(10).join(self.header_lines()))}</pre>"]
        if len(self.autocor):
            parts.append("<h4>Correlation Structures</h4>")
            parts.append(html_table(self.autocor, self.digits))
        groups = self.blocks()
        if groups:
            parts.append("<h4>Multilevel Hyperparameters</h4>")
            for head, tab in groups:
                parts.append(f"<p><code>{html.escape(head.strip())}</code></p>")
                parts.append(html_table(tab, self.digits))
        for heading, tab in (("Regression Coefficients", self.fixed),
                             ("Further Distributional Parameters", self.spec_pars),
                             ("Residual Correlations", self.rescor)):
            if len(tab):
                parts.append(f"<h4>{heading}</h4>")
                parts.append(html_table(tab, self.digits))
        parts.append(f"<p>Draws were sampled using {html.escape(self.sampler)}. "
                     f"{html.escape(CLOSING.replace(chr(10), ' '))}</p>")
        for w in self.warnings:
            parts.append(f"<p style='color:#b00'><b>Warning:</b> {html.escape(w)}</p>")
        return "<div class='mixedformula-summary'>" + "".join(parts) + "</div>"

    def to_frame(self) -> pd.DataFrame:
        """All rows in one DataFrame with a ``block`` column (``~Subject``, ``fixed``, ...)."""
        parts = [self.autocor.assign(block="autocor")] if len(self.autocor) else []
        for g, tab in self.random.items():
            parts.append(tab.assign(block=f"~{g}"))
        for name, tab in (("fixed", self.fixed), ("spec_pars", self.spec_pars),
                          ("rescor", self.rescor)):
            parts.append(tab.assign(block=name))
        parts = [p for p in parts if len(p)]
        if not parts:
            return self.fixed.assign(block=pd.Series(dtype=object))
        return pd.concat(parts)


def _table(posterior, params, prob) -> pd.DataFrame:
    return posterior_table(posterior, [p.var for p in params], [p.label for p in params], prob)


def convergence_warnings(tables: list[pd.DataFrame], n_divergent: int,
                         target_accept: float, n_treedepth: int = 0) -> list[str]:
    out = []
    if n_divergent > 0:
        out.append(f"There were {n_divergent} divergent transitions after warmup. Increasing "
                   f"target_accept above {target_accept:g} may help (fit(..., "
                   "target_accept=0.95)), or use stronger priors. See "
                   "https://mc-stan.org/misc/warnings.html#divergent-transitions-after-warmup")
    allt = pd.concat([t for t in tables if len(t)]) if any(len(t) for t in tables) else None
    if allt is None:
        return out
    rhat = allt["Rhat"].to_numpy(dtype=float)
    if np.any(rhat > RHAT_MAX):
        out.append("Parts of the model have not converged (some Rhats are > 1.05). Be careful "
                   "when analysing the results! We recommend running more iterations and/or "
                   "setting stronger priors.")
    elif np.any(rhat > RHAT_CAUTION):
        out.append(f"Some Rhats are above {RHAT_CAUTION} (max {np.nanmax(rhat):.3f}): the chains "
                   "may not have mixed. Run more iterations (draws=, tune=) before relying on "
                   "the results; for group-level sds near 0 a stronger sd prior helps.")
    bulk = allt["Bulk_ESS"].to_numpy(dtype=float)
    if np.any(bulk < ESS_MIN):
        out.append("Bulk Effective Samples Size (ESS) is too low, indicating posterior means and "
                   "medians may be unreliable. Running the chains for more iterations may help. "
                   "See https://mc-stan.org/misc/warnings.html#bulk-ess")
    tail = allt["Tail_ESS"].to_numpy(dtype=float)
    if np.any(tail < ESS_MIN):
        out.append("Tail Effective Samples Size (ESS) is too low, indicating posterior variances "
                   "and tail quantiles may be unreliable. Running the chains for more iterations "
                   "may help. See https://mc-stan.org/misc/warnings.html#tail-ess")
    low = np.nanmin(np.concatenate([bulk, tail])) if len(bulk) else np.inf
    if ESS_MIN <= low < ESS_CAUTION:
        out.append(f"Some effective sample sizes are below {ESS_CAUTION} (min {low:.0f}): "
                   "interval ends are uncertain; more draws would help.")
    if n_treedepth > 0:
        out.append(f"{n_treedepth} transitions hit the maximum tree depth: the sampler took "
                   "very long trajectories. The posterior may be badly scaled or strongly "
                   "correlated; the marginal engine (Gaussian models) or stronger priors help.")
    return out


DIVERGENCE_STATS = ("diverging", "divergences", "divergent__")
TREEDEPTH_STATS = ("reached_max_treedepth", "maxdepth_reached")   # PyMC, nutpie


def count_flag(idata, names) -> int | None:
    """How many draws have the first recorded sample stat in ``names`` set; None if none is."""
    if "sample_stats" not in idata.groups():
        return None
    ss = idata.sample_stats
    for name in names:
        if name in ss:
            return int(np.asarray(ss[name].values, dtype=bool).sum())
    return None


def count_treedepth(idata) -> int:
    return count_flag(idata, TREEDEPTH_STATS) or 0


def count_divergences(idata) -> int:
    return count_flag(idata, DIVERGENCE_STATS) or 0


def build_summary(idata, index: ParamIndex, *, family: str, links: list[str], formula: str,
                  data_name: str, nobs: int, ngrps: dict[str, int], likelihood: str,
                  engine_note: str, sampler: str, warmup: int, thin: int,
                  target_accept: float, prob: float = 0.95, digits: int = 2,
                  nobs_by_response: dict | None = None, not_used: dict | None = None) -> Summary:
    post = idata.posterior
    chains, draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    random = {}
    for g in index.groups:
        params = index.sd.get(g, []) + index.cor.get(g, [])
        if params:
            random[g] = _table(post, params, prob)
    fixed = posterior_table(post, index.fixed, [fixed_label(v) for v in index.fixed], prob)
    spec = _table(post, index.spec, prob)
    rescor = _table(post, index.rescor, prob)
    # brms' summary shows unstr()'s cortime__1__2 as cortime(1,2)
    autocor = posterior_table(post, index.autocor, [_brms_autocor_label(v) for v in
                                                    index.autocor], prob)
    n_div = count_divergences(idata)
    warns = convergence_warnings([autocor, *random.values(), fixed, spec, rescor], n_div,
                                 target_accept,
                                 count_treedepth(idata))
    return Summary(family=family, links=links, formula=formula, data_name=data_name, nobs=nobs,
                   chains=chains, iter=warmup + draws * thin, warmup=warmup, thin=thin,
                   total_draws=chains * draws, likelihood=likelihood, engine_note=engine_note,
                   sampler=sampler, fixed=fixed, random=random, spec_pars=spec, rescor=rescor,
                   ngrps=dict(ngrps), autocor=autocor, warnings=warns, digits=digits, n_divergent=n_div,
                   nobs_by_response=dict(nobs_by_response or {}),
                   not_used=dict(not_used or {}))


def _brms_autocor_label(name: str) -> str:
    """``cortime__1__2`` → ``cortime(1,2)`` (brms' summary.brmsfit); other names as they are."""
    if name.startswith("cortime__"):
        a, b = name[len("cortime__"):].split("__", 1)
        return f"cortime({a},{b})"
    return name
