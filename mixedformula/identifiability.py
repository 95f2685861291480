r"""Can the data identify a mixed model's variances? lme4's checks, shared by ``lmer`` and ``fit``.

lme4 1.1-31 (``lmerControl()`` defaults) refuses a model whose variances the data cannot
separate, and ``mf.lmer`` refuses the same models (:class:`~mixedformula.errors.DataError`):

* a grouping factor with one level — a variance between groups needs at least two groups
  (lme4: "grouping factors must have > 1 sampled level");
* a grouping factor with as many levels as observations, J ≥ n — one effect per observation
  cannot be told apart from the residual (lme4: "number of levels of each grouping factor must
  be < number of observations");
* a term with as many group effects as observations, J·q ≥ n (q coefficients per level; a
  ``||`` term counts each coefficient on its own, J, as lme4 splits it) — the effects can fit
  every observation exactly (lme4: "number of observations (=n) <= number of random effects
  (=J·q) ...").

Families without a residual variance (bernoulli, binomial, Poisson) have no residual to confuse
the effects with: lme4's ``glmer`` only refuses J > n and J·q > n there, and so do we
(observation-level effects ``(1 | obs)`` in a Poisson model stay allowed).

A response that the fixed effects reproduce exactly (a constant response with an intercept)
leaves no residual variation: σ̂ = 0 and the profiled REML criterion is −∞ for every θ, so the
group-level variances are arbitrary. lme4 fits it with warnings ("unable to evaluate scaled
gradient", "Problem with Hessian check") and its ``vcov()`` fails; ``mf.lmer`` warns in plain
words and reports σ = 0 with NaN standard errors.

The Bayesian ``mf.fit`` is told the same before sampling, as warnings: proper priors still give
a posterior, but for these parameters it is the prior speaking, not the data.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .errors import DataError

__all__ = ["IdentifiabilityWarning", "Problem", "check_identifiability",
           "identifiability_problems"]


class IdentifiabilityWarning(UserWarning):
    """The data cannot identify some parameters of the model."""


@dataclass(frozen=True)
class Problem:
    """One identifiability problem: ``kind`` is ``"one_level"``, ``"level_per_row"``,
    ``"effects_vs_obs"`` (lme4 refuses these) or ``"exact_fit"`` (lme4 warns)."""

    kind: str
    message: str

    @property
    def refused_by_lme4(self) -> bool:
        return self.kind != "exact_fit"


def identifiability_problems(design, residual_scale: bool = True) -> list[Problem]:
    """lme4's identifiability checks on a design (see the module docstring).

    ``residual_scale``: the family has a residual variance (Gaussian, student, lognormal),
    then J ≥ n and J·q ≥ n are problems; without one only J > n and J·q > n are.
    """
    if not getattr(design, "rows_in_memory", True):
        return []
    n = int(sum(design.nobs_by_response.values()))
    out: list[Problem] = []
    flagged: set[str] = set()
    too_many = (lambda m: m >= n) if residual_scale else (lambda m: m > n)
    relation = "at least as many" if residual_scale else "more"
    for blk in design.terms:
        name, J = blk.name, blk.J
        if name in flagged:
            continue
        if J < 2:
            flagged.add(name)
            level = f" ({blk.levels[0]!r})" if J == 1 else ""
            out.append(Problem("one_level", (
                f"grouping factor {name!r} has only one level{level} in the {n} observations "
                "used: a variance between groups needs at least 2 groups (lme4 refuses this: "
                "'grouping factors must have > 1 sampled level')")))
        elif too_many(J):
            flagged.add(name)
            out.append(Problem("level_per_row", (
                f"grouping factor {name!r} has {J} levels for {n} observations, one effect per "
                "observation: its variance cannot be told apart from the residual variance; "
                "a grouping factor needs fewer levels than observations (lme4 refuses this: "
                "'number of levels of each grouping factor must be < number of observations')"
                if residual_scale else
                f"grouping factor {name!r} has {J} levels for {n} observations: more levels "
                "than observations (lme4 refuses this: 'number of levels of each grouping "
                "factor must be <= number of observations')")))
    for blk in design.terms:
        if blk.name in flagged:
            continue
        q = blk.q if blk.correlated else 1          # lme4 splits || terms per coefficient
        m = blk.J * q
        if too_many(m):
            text = blk.term.text or f"... | {blk.name}"
            text = text if text.startswith("(") else f"({text})"
            per = f"{blk.J} levels × {q} coefficients" if q > 1 else f"{blk.J} levels"
            out.append(Problem("effects_vs_obs", (
                f"term {text} has {m} group effects ({per}) for {n} observations: with "
                f"{relation} effects as observations they can fit every observation, so the "
                "group-level variances "
                + ("and the residual variance cannot be told apart" if residual_scale
                   else "are not identified")
                + f" (lme4 refuses this: 'number of observations (={n}) "
                + ("<=" if residual_scale else "<") + f" number of random effects (={m})')")))
    if residual_scale:
        out += _exact_fit(design)
    return out


def _exact_fit(design) -> list[Problem]:
    """Responses the fixed effects reproduce exactly (residual sum of squares 0)."""
    out = []
    y = np.asarray(design.y, dtype=float)
    for k, resp in enumerate(design.response_names):
        rows = design.rows(k)
        yk = y[rows, k]
        if yk.size == 0:
            continue
        if np.ptp(yk) == 0:
            what = f"the response {resp!r} is constant (all {yk.size} values are {yk[0]:g})"
        else:
            X = design.fixed(k)[0][rows]
            if X.shape[1] == 0 or X.shape[1] >= yk.size:
                continue
            beta = np.linalg.lstsq(X, yk, rcond=None)[0]
            tol = 64 * np.finfo(float).eps * yk.size * np.linalg.norm(yk)
            if np.linalg.norm(yk - X @ beta) > tol:
                continue
            what = f"the fixed effects reproduce the response {resp!r} exactly"
        out.append(Problem("exact_fit", (
            f"{what}: there is no residual variation, so the residual standard deviation is 0, "
            "the variances of the group effects are not identified and the standard errors "
            "cannot be computed (lme4 warns too: 'unable to evaluate scaled gradient')")))
    return out


def check_identifiability(design, residual_scale: bool = True, *,
                          bayesian: bool = False) -> list[Problem]:
    """Act on :func:`identifiability_problems` and return them.

    ``bayesian=False`` (``mf.lmer``): raise DataError naming every problem lme4 refuses, warn
    (IdentifiabilityWarning) about the rest. ``bayesian=True`` (``mf.fit``, before sampling):
    warn about all of them — the priors keep the posterior proper, but these parameters are
    then learnt from the priors, not from the data.
    """
    problems = identifiability_problems(design, residual_scale)
    if not bayesian:
        refused = [p.message for p in problems if p.refused_by_lme4]
        if refused:
            raise DataError("the model cannot be estimated from these data: "
                            + "; ".join(refused))
    for p in problems:
        if bayesian and p.refused_by_lme4:
            msg = (f"{p.message}; lme4 would refuse to fit this model. The posterior of these "
                   "variances is then driven by their priors, not by the data")
        elif bayesian:
            msg = (f"{p.message}; sigma's posterior then piles up near 0, held off only by "
                   "its prior, and the sampler is likely to struggle")
        else:
            msg = p.message
        warnings.warn(msg, IdentifiabilityWarning, stacklevel=3)
    return problems
