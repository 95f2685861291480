"""Which engine fits a model, and why: the one decision every entry point asks.

Engines (docs/engines.md):

* ``"marginal"`` — Gaussian family with identity link and at least one group term: the group
  effects u are integrated out, the likelihood log N(y; Xβ, ZGZᵀ + σ²I) is evaluated from
  sufficient statistics (:mod:`mixedformula.design.crossprod`) and u is drawn exactly afterwards.
  The statistics come in three kinds: ``"block"`` (one grouping factor, O(J Q³) per gradient),
  ``"general"`` (crossed/nested factors: Schur complement on a dense part of r columns,
  O(r² J₁Q₁ + r³)), ``"multivariate"`` (mvbind, one grouping factor, built with the
  covariance blocks) and ``"structured"`` (ar()/cosy() residuals and gr(cov = A):
  :mod:`mixedformula.design.structured_crossprod`, per-level blocks or one dense system).
* ``"conditional"`` — any family: u is sampled, the likelihood has one term per row (the rows
  must be in memory). For a Gaussian model whose crossed/nested factors make the full marginal
  factorisation too costly, ``"auto"`` integrates out the effects of the block with the most
  levels exactly and samples the rest (``Decision.integrate``,
  :mod:`mixedformula.backends.pymc.partial_marginal`); ``likelihood="partial"`` asks for it.
* ``"reml"`` — ``mf.lmer``: REML/ML point estimates of a univariate Gaussian model.

:func:`decide` returns a :class:`Decision` (likelihood, reason, statistics kind) for a pandas
design or for statistics reduced from a Dask DataFrame; :func:`dask_refusal` says before any
pass over a Dask frame why it cannot be fitted; :func:`reml_refusal` says why ``lmer`` cannot fit
a design. Every message about which engine applies is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import FormulaError, MixedFormulaError

REQUESTS = ("auto", "conditional", "marginal", "partial")

#: appended to every refusal of a Dask DataFrame
DASK_HINT = ("; the conditional engine needs the rows in memory: pass data.compute() "
             "(a pandas DataFrame)")


@dataclass(frozen=True)
class Decision:
    """The engine chosen for one model.

    ``likelihood``: ``"marginal"`` or ``"conditional"``; ``reason``: why the marginal engine does
    not apply (``""`` when it does); ``statistics``: ``"block"``, ``"general"``,
    ``"multivariate"``, ``"rows"`` (se(sigma = TRUE): no statistics, the rows are read per
    gradient) or None (conditional engine); ``stats``: the sufficient statistics made for
    the decision (univariate marginal engine), handed to the builder; ``note``: what the summary
    header says (only when ``"auto"`` fell back to the conditional engine for a Gaussian model);
    ``integrate``: the block key whose effects the conditional engine integrates out.
    """

    likelihood: str
    reason: str
    statistics: str | None
    stats: object = field(default=None, repr=False, compare=False)
    note: str = ""
    #: the covariance block whose effects are integrated out by the per-row path (or None);
    #: with ``likelihood="marginal"`` it is the only block (se(sigma = TRUE))
    integrate: str | None = None


def _gaussian_identity(family) -> bool:
    return family.gaussian and family.link == "identity"


def _family_reason(family) -> str:
    parts = getattr(family, "families", None)     # one family per response (MV(...))
    if parts is not None and not _gaussian_identity(family):
        which = ", ".join(f"{f.name} ({f.link} link)" for f in parts
                          if not _gaussian_identity(f))
        return (f"the marginal engine applies only when every response is gaussian with "
                f"identity link, and this model ({family.name}) has {which}")
    if not _gaussian_identity(family):
        return (f"family {family.name} ({family.link} link) is not Gaussian with identity "
                "link")
    return ""


def marginal_reason(design, family, rescor_by=None, univariate: bool = False,
                    structured: bool = False, se_sigma_ok: bool = False) -> str:
    """Why the marginal engine cannot fit this design (``""``: the structure allows it; the
    cost of the statistics is judged by :func:`decide`). ``univariate``: for the marginal
    group likelihood of LOO (:mod:`mixedformula.results.loo`), computed for one response.
    ``structured``: for the structured marginal engine
    (:mod:`mixedformula.design.structured_crossprod`: ar()/cosy() residuals, gr(cov = A)),
    which takes those terms (and, with ar()/cosy(), no group terms at all). ``se_sigma_ok``:
    se(sigma = TRUE) is no reason (for the per-row path of :func:`partial_block`)."""
    why = _family_reason(family)
    if why:
        return why
    dpar_why = distributional_reason(design.formula)
    if dpar_why:
        return dpar_why
    autocor = getattr(design, "autocor", None)
    if autocor is not None and autocor.kind == "cov_arma":
        return (f"{autocor.text} (brms' covariance form) is fitted by the conditional "
                "engine only: the marginal statistics assume independent residuals")
    if autocor is not None and autocor.kind == "unstr" and not structured_unstr():
        return (f"{autocor.text} is fitted by the conditional engine only (its structured "
                "marginal statistics are not built yet)")
    if autocor is not None and autocor.kind == "arma":
        return (f"{autocor.text} (brms' arma()/ma() regression form) is fitted by the "
                "conditional engine only: its moving-average part reads the earlier rows' "
                "errors, computed one time step after another given the group effects")
    if autocor is not None and not structured:
        # the per-level statistics assume R = σ²I: ar() makes R = σ²(MᵀM)⁻¹, cosy() block
        # diagonal per group (the structured statistics take both)
        return (f"{autocor.text} (a residual autocorrelation term) correlates the residuals, "
                "which the per-level marginal statistics assume independent")
    if not design.terms and not (structured and autocor is not None):
        return "the model has no group terms"
    if univariate and len(design.response_names) != 1:
        return "the marginal group likelihood is computed for univariate models only"
    if design.y is None:
        return "the design has no response"
    if not structured and any(getattr(t, "cov_factor", None) is not None
                              for t in design.terms):
        # Cov(u) = A ⊗ Σ couples the levels: Z G Zᵀ is not block diagonal over levels, which
        # the per-level statistics of the marginal engine assume
        return ("gr(cov = ...) correlates the levels of a grouping factor, which the "
                "marginal engine's per-level statistics do not yet support")
    if design.trials is not None:
        return "trials() belongs to the binomial family"
    why = addition_reason(design, se_sigma_ok)
    if why:
        return why
    if structured and (getattr(design, "weights", None) is not None
                       or getattr(design, "se", None) is not None):
        # the structured statistics (design/structured_crossprod.py) are of the unscaled rows
        return ("weights() / se() together with ar(), cosy() or gr(cov = ...) are not in the "
                "structured marginal statistics")
    if design.y.shape[1] > 1:
        if design.fixed_cols is not None:
            return ("bf() + bf() formulas (a right-hand side per response) are not yet "
                    "supported by the marginal engine")
        if design.observed is not None:
            return ("responses with missing values in some rows are not yet supported "
                    "by the marginal engine")
        codes = design.terms[0].codes
        if any(not np.array_equal(t.codes, codes) for t in design.terms[1:]):
            return ("multivariate models with several grouping factors are not yet "
                    "supported by the marginal engine")
        if any(t.by_levels for t in design.terms):
            return "gr(by=) in multivariate models is not yet supported by the marginal engine"
    if rescor_by is not None:
        return "rescor_by is not supported by the marginal engine yet"
    return ""


def structured_unstr() -> bool:
    """Whether the structured marginal engine takes unstr() residuals (it does:
    :mod:`mixedformula.design.structured_crossprod`)."""
    return True


def distributional_reason(formula) -> str:
    """Why a model with distributional formulas (``sigma ~ x``) is not Gaussian-marginal
    (``""`` without any)."""
    names = getattr(formula, "dpar_names", ())
    if not names:
        return ""
    return (f"{', '.join(names)} has its own formula (distributional regression): the "
            "residual covariance is not σ²I and the marginal engine integrates u out only "
            "for a Gaussian with one residual scale")


def se_sigma(design) -> bool:
    """The design has ``se(sei, sigma = TRUE)`` (residual variance se_i² + σ² per row)."""
    return (getattr(design, "se", None) is not None
            and bool(design.formula.additions.se_sigma))


def addition_reason(design, se_sigma_ok: bool = False) -> str:
    r"""Why brms' addition terms keep a model off the marginal engine ("" without them, or when
    the marginal engine takes them).

    * weights(w) and se(sei) without sigma = TRUE are exact on the marginal engine: per row
      w_i·log N(y_i | η_i, σ k_i) = log N(a_i y_i | a_i η_i, σ) − (w_i − 1)/2·log 2πσ²
      − w_i log k_i with a_i = √w_i / k_i (k_i = se_i and σ ≡ 1 with se(), else 1), so u
      integrates out of the scaled rows' Gaussian and the statistics of design/crossprod.py are
      those of the scaled rows, with Σw_i in place of N and a constant
      (:class:`~mixedformula.design.additions.RowScaling`).
    * se(sei, sigma = TRUE): R = diag(se² + σ²) has σ inside each row's variance, so no
      cross-product ZᵀR⁻¹Z can be formed once from the data and the statistics of the
      marginal engine do not apply. Its effects are integrated out per row instead
      (``se_sigma_ok``: the partial path, :mod:`mixedformula.backends.pymc.partial_marginal`,
      which already reads the rows at every gradient: a per-level Woodbury with the row
      weights w_i/(se_i² + σ²), O(N Q²) per gradient; :func:`decide` takes it). brms'
      weights() are exact there too: w log N(r | m, d) = log N(r | m, d/w) + a term in σ
      alone, so the effects still integrate out of a Gaussian (the partial module's
      docstring). When that block is the model's only group term the fit is the marginal
      engine's (``likelihood="marginal"``, leave-one-group-out LOO), evaluated per row.
    * cens()/trunc(): the censored/truncated likelihood is not Gaussian in y.
    """
    if getattr(design, "response_parts", None) is not None:
        return ("addition terms of a multivariate model (per response) are fitted by the "
                "conditional engine: the multivariate marginal engine integrates u out for "
                "responses sharing one unweighted residual covariance")
    if getattr(design, "cens", None) is not None:
        return "cens() (censored rows) needs the conditional likelihood"
    if getattr(design, "trunc", None) is not None:
        return "trunc() (a truncated likelihood) needs the conditional likelihood"
    if se_sigma(design) and not se_sigma_ok:
        return ("se(sigma = TRUE) gives each row its own residual variance se² + sigma², so "
                "the marginal statistics cannot be formed once from the data; its group "
                "effects are integrated out per row (weights() included) for a group "
                "term of one grouping factor without gr(by=)")
    return ""


def _statistics(design, stats, cost_rule: bool):
    """(statistics, kind, reason): sufficient statistics of a univariate design (``stats``:
    already reduced elsewhere, e.g. from Dask) or the reason they are not used — too large, or
    (``cost_rule``) slower per gradient than the conditional engine."""
    from .design.crossprod import MarginalTooLargeError, sufficient_statistics
    if design.y.shape[1] > 1:
        return None, "multivariate", ""       # made by the builder with the covariance blocks
    if stats is None:
        try:
            stats = sufficient_statistics(design)
        except MarginalTooLargeError as e:
            return None, None, f"the marginal factorisation is too large ({e})"
    if stats.kind == "general" and cost_rule:
        # per gradient: Schur complement O(r² J₁Q₁ + r³) against the conditional engine's
        # O(N (p + Σq)); measured: 1000 × 300 crossed levels, N = 10⁵ did not finish in 240 s
        # marginally (benchmarks/README.md, case 4); InstEval shape (r = 1142, J₁ = 2972,
        # N = 73k): 21 s per marginal gradient against 12 ms conditional, while NUTS takes only
        # a few times more steps per draw conditionally (benchmarks/insteval_scale.py)
        r, first = stats.r, stats.segments[0].size
        marginal_cost = r * r * first + r ** 3
        conditional_cost = 10.0 * design.nobs * (design.X.shape[1]
                                                  + sum(t.q for t in design.terms))
        if marginal_cost > conditional_cost:
            return None, None, (
                f"the crossed/nested factorisation (dense part {r} columns) would cost "
                f"about {marginal_cost:.1e} operations per gradient, more than the "
                f"conditional engine ({conditional_cost:.1e})")
    return stats, stats.kind, ""


def partial_block(design, family, rescor_by=None):
    """(block, reason): the covariance block whose effects the conditional engine can integrate
    out exactly (:mod:`mixedformula.backends.pymc.partial_marginal`; the one with the most
    J·Q among blocks of one term without ``by``), or (None, why not). se(sei, sigma = TRUE)
    is taken (each row's residual variance se_i² + σ²), weights() and se() without sigma are
    not (the marginal engine's row scaling fits those), unless with se(sigma = TRUE)."""
    why = marginal_reason(design, family, rescor_by, univariate=True, se_sigma_ok=True)
    if why:
        return None, why
    if not se_sigma(design) and (getattr(design, "weights", None) is not None
                                 or getattr(design, "se", None) is not None):
        return None, ("weights() and se() without sigma = TRUE are not in the partial "
                      "marginalisation")
    from .design.reterms import covariance_blocks
    blocks = [b for b in covariance_blocks(design, 1, list(design.response_names))
              if len(b.parts) == 1 and not b.by_levels
              and getattr(b, "structure", None) in (None, "us", "diag")]
    if not blocks:
        return None, "no group term of one grouping factor without gr(by=)"
    return max(blocks, key=lambda b: b.J * b.Q), ""


def _se_sigma_decision(design, family, likelihood: str, rescor_by,
                       why: str) -> Decision | None:
    """se(sei, sigma = TRUE) with group terms: the per-row marginal of the partial path
    (:func:`addition_reason`), which integrates out the effects of the block with the most
    J·Q: all of them when that is the only block (then it is the marginal likelihood,
    ``likelihood="marginal"`` evaluated per row, ``statistics="rows"``; an explicit
    ``"marginal"`` takes it only then). None: the caller's reason stands."""
    if likelihood not in ("auto", "marginal"):
        return None
    block, _ = partial_block(design, family, rescor_by)
    if block is None:
        return None
    others = len(design.terms) - len(block.parts)
    if likelihood == "marginal" and others:
        return None
    rest = (f"; the other {others} group term(s) sampled" if others
            else "; no group effect is sampled (marginal likelihood)")
    weighted = " and weights()" if getattr(design, "weights", None) is not None else ""
    note = (f"se(sigma = TRUE){weighted}: the group effects of {block.group} integrated out "
            f"exactly, per row (residual variance se^2 + sigma^2){rest}")
    if others:
        return Decision(likelihood="conditional", reason=why, statistics=None,
                        integrate=block.key, note=note)
    return Decision(likelihood="marginal", reason="", statistics="rows", integrate=block.key,
                    note=note)


def _partial(design, family, rescor_by, why: str) -> Decision | None:
    block, _ = partial_block(design, family, rescor_by)
    if block is None or len(design.terms) < 2:
        return None
    return Decision(likelihood="conditional", reason=why, statistics=None, integrate=block.key,
                    note=f"marginal engine not used: {why}; the group effects of "
                         f"{block.group} are integrated out exactly, the others sampled")


def decide(design, family, likelihood: str = "auto", rescor_by=None, stats=None,
           dask: bool = False) -> Decision:
    """The engine for ``design`` fitted with ``family``.

    ``likelihood``: what was asked for (``"auto"``: marginal where it applies and is not
    costlier than the conditional engine). ``stats``: statistics reduced from a Dask DataFrame
    (``dask=True``): only the marginal engine runs from them, so any reason is an error.
    Raises :class:`~mixedformula.errors.MixedFormulaError` when the marginal engine is asked
    for (or is the only one, Dask) and does not apply.
    """
    if likelihood not in REQUESTS:
        raise MixedFormulaError(f"likelihood must be one of {', '.join(REQUESTS)}, "
                                f"not {likelihood!r}")
    if likelihood == "partial":
        block, why = partial_block(design, family, rescor_by)
        if block is None or dask:
            raise MixedFormulaError("likelihood='partial' does not apply: "
                                    + (why or "a Dask DataFrame" + DASK_HINT))
        if len(design.terms) == len(block.parts):
            # every group effect integrated out: that is the marginal likelihood, evaluated per
            # row (labelled so: summary, idata attrs, leave-one-group-out LOO)
            return Decision(likelihood="marginal", reason="", statistics="rows",
                            integrate=block.key,
                            note=f"likelihood='partial' with one group term: the group effects "
                                 f"of {block.group} integrated out exactly, per row (marginal "
                                 f"likelihood)")
        return Decision(likelihood="conditional", reason="likelihood='partial' was asked for",
                        statistics=None, integrate=block.key,
                        note=f"the group effects of {block.group} integrated out exactly")
    why = marginal_reason(design, family, rescor_by)
    if why and not dask and se_sigma(design) and not marginal_reason(
            design, family, rescor_by, se_sigma_ok=True):
        chosen = _se_sigma_decision(design, family, likelihood, rescor_by, why)
        if chosen is not None:
            return chosen
    if why and not dask and likelihood != "conditional":
        structured = _structured(design, family, likelihood, rescor_by)
        if structured is not None:
            return structured
    made, kind = None, None
    if not why and (likelihood != "conditional" or dask):
        # the conditional engine cannot run on a Dask frame: no cost comparison there
        made, kind, why = _statistics(design, stats, cost_rule=likelihood == "auto" and not dask)
    if why and dask:
        raise MixedFormulaError(f"the marginal likelihood does not apply: {why}{DASK_HINT}")
    if why and likelihood == "marginal":
        raise MixedFormulaError(f"the marginal likelihood does not apply: {why}")
    if likelihood == "auto" and why and kind is None and not dask:
        partial = _partial(design, family, rescor_by, why)
        if partial is not None:
            return partial
    chosen = likelihood if likelihood != "auto" else ("conditional" if why else "marginal")
    note = f"marginal engine not used: {why}" if (likelihood == "auto" and why and design.terms
                                                   and family.gaussian) else ""
    if likelihood == "auto" and why and distributional_reason(design.formula):
        note = f"marginal engine not used: {why}"
    if chosen == "conditional":
        made, kind = None, None
    return Decision(likelihood=chosen, reason=why, statistics=kind, stats=made, note=note)


def _structured(design, family, likelihood: str, rescor_by) -> Decision | None:
    """The structured marginal engine (ar()/cosy() residuals, gr(cov = A);
    :mod:`mixedformula.backends.pymc.marginal_structured`) where it applies, or None (the
    caller's reason stands). ``"auto"``: only for models with group terms (without them the
    conditional engine keeps pointwise LOO) and, for the dense layout, when its O(M³) per
    gradient is below the conditional engine's O(N (p + Σq)) or below 10⁶; an explicit ``"marginal"``
    skips both rules and raises when the statistics are too large."""
    from .design.structured_crossprod import (StructuredTooLargeError, structured_design,
                                              structured_statistics)
    if not structured_design(design):
        return None
    if marginal_reason(design, family, rescor_by, structured=True):
        return None
    if design.y.shape[1] != 1 or design.observed is not None:
        return None
    if likelihood == "auto" and not design.terms:
        return None
    try:
        stats = structured_statistics(design)
    except StructuredTooLargeError as e:
        if likelihood == "marginal":
            raise MixedFormulaError(f"the marginal likelihood does not apply: {e}") from None
        return None
    if likelihood == "auto" and stats.layout == "dense":
        conditional_cost = 10.0 * design.nobs * (design.X.shape[1]
                                                  + sum(t.q for t in design.terms))
        # both are negligible below ~10⁶ operations (about a millisecond), where the
        # marginal form still removes J·q sampled dimensions and their funnel
        if 3.0 * stats.cost() > max(conditional_cost, 1e6):
            return None
    autocor = getattr(design, "autocor", None)
    what = [f"{autocor.text} residuals exact"] if autocor is not None else []
    if any(getattr(t, "cov_factor", None) is not None for t in design.terms):
        what.append("gr(cov = ...) levels correlated")
    how = ("per-level blocks" if stats.layout == "block"
           else f"one dense {stats.Qb} x {stats.Qb} system")
    return Decision(likelihood="marginal", reason="", statistics="structured", stats=stats,
                    note=f"{', '.join(what)} ({how})")


def dask_refusal(formula, family, likelihood: str = "auto", rescor_by=None) -> str | None:
    """Why a Dask DataFrame cannot be fitted (from sufficient statistics, marginal engine), known
    from the formula before any pass over the data; None when the reduction may start."""
    why = _family_reason(family) or distributional_reason(formula)
    if not why and likelihood == "conditional":
        why = "likelihood='conditional' was asked for"
    elif not why and not formula.groups:
        why = "the model has no group terms"
    elif not why and (formula.multivariate or formula.trials):
        why = "mvbind()/trials() models are not reduced to statistics"
    elif not why and rescor_by is not None:
        why = "rescor_by is not supported by the marginal engine yet"
    elif not why and any(g.cov is not None for g in formula.groups):
        why = "gr(cov = ...) statistics are not reduced from a Dask DataFrame yet"
    elif not why and getattr(getattr(formula, "additions", None), "any", False):
        why = ("addition terms (weights(), cens(), trunc(), se()) are not reduced to "
               "statistics from a Dask DataFrame")
    elif not why and getattr(formula, "autocor", ()):
        why = (f"{formula.autocor[0].text} (a residual autocorrelation term): its structured "
               "statistics are not reduced from a Dask DataFrame yet")
    if not why:
        return None
    return (f"a Dask DataFrame is fitted from sufficient statistics by the marginal engine, "
            f"which does not apply: {why}{DASK_HINT}")


def glmer_dask_refusal() -> str:
    """Why ``glmer`` does not fit a Dask DataFrame (``lmer`` does, from cross-products)."""
    return ("glmer needs the rows in memory: its penalized IRLS re-weights every row at every "
            "iteration (the working weights depend on each row's linear predictor), so unlike "
            "lmer's [Z X y]'[Z X y] the data do not reduce to fixed cross-products. If the rows "
            "fit in memory, pass data.compute(); mixedformula does not bring them in silently")


def dask_too_large(error) -> str:
    """The message when reducing a Dask frame finds the dense factorisation too large."""
    return f"the marginal factorisation is too large ({error}){DASK_HINT}"


def reml_family_refusal(family) -> str | None:
    """Why ``lmer`` (REML/ML) cannot fit this family; None for Gaussian with identity link."""
    if _gaussian_identity(family):
        return None
    return "REML/ML (lmer) fits Gaussian models with identity link only"


def reml_refusal(design) -> Exception | None:
    """The error ``lmer`` raises for a design it cannot fit (None: it can), lme4's limits."""
    spec = design.formula
    if spec.distributional:
        return NotImplementedError(
            f"lme4 has no distributional regression: {', '.join(spec.dpar_names)} has its own "
            "formula, which lmer/glmer cannot fit (one residual scale or dispersion per model); "
            "use mf.fit for brms' bf(y ~ ..., sigma ~ ...) models")
    if spec.multivariate or design.y is None or design.y.shape[1] != 1:
        return NotImplementedError("lmer fits univariate Gaussian models only; "
                                   "use mf.fit for multivariate (mvbind) models")
    if spec.additions.any:
        return NotImplementedError("lmer does not read brms' addition terms (weights(), "
                                   "cens(), trunc(), se()); pass weights= as lme4 does, or use "
                                   "mf.fit for brms' semantics")
    if spec.trials:
        return NotImplementedError("cbind(successes, failures) and y | trials(n) responses "
                                   "are binomial; lmer fits Gaussian models only (use "
                                   "mf.glmer or mf.fit with family='binomial')")
    if not design.terms:
        return FormulaError("lmer needs at least one group term like (1 | g); without one "
                            "this is an ordinary linear model", spec.text)
    return None


def structure_refusal(design, what: str) -> Exception | None:
    """The error for glmmTMB-structured group terms (``ar1()``, ``cs()``, ``toep()``) where
    ``what`` (e.g. "Bayesian fits") does not support them yet; None when there are none."""
    st = [t.term.structure for t in design.terms if getattr(t.term, "structure", None)]
    if not st:
        return None
    return NotImplementedError(f"{', '.join(sorted(set(st)))}() group structures are fitted by "
                               f"mf.lmer (REML/ML) and mf.fit; {what} do not support them yet")


def autocor_refusal(formula, what: str) -> Exception | None:
    """The error for brms' residual structures (``ar()``, ``cosy()``) where ``what`` does not
    support them yet (they are fitted by mf.lmer and mf.fit); None without such a term."""
    if not getattr(formula, "autocor", ()) and not any(
            getattr(p, "autocor", ()) for p in getattr(formula, "parts", ())):
        return None
    return NotImplementedError(f"ar()/cosy() residual structures are fitted by mf.lmer "
                               f"(REML/ML) and mf.fit (Bayesian), arma()/ma() by mf.fit; "
                               f"{what} do not support them yet")


__all__ = ["DASK_HINT", "Decision", "dask_refusal", "dask_too_large", "decide",
           "distributional_reason", "glmer_dask_refusal", "marginal_reason", "partial_block",
           "reml_family_refusal", "reml_refusal", "se_sigma", "structure_refusal",
           "autocor_refusal"]
