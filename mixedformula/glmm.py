r"""Maximum-likelihood generalized linear mixed models, matching lme4's ``glmer`` (and glmmTMB's
``nbinom2`` for the negative binomial).

    fit = mf.glmer("incidence | trials(size) ~ period + (1 | herd)", cbpp, family="binomial")
    fit = mf.glmer("TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)", grouse,
                   family="poisson")
    print(fit)                  # like summary(glmer(...))
    fit.fixef(); fit.varcorr(); fit.ranef(); fit.vcov(); fit.logLik; fit.predict(new)

Model: η = o + Xβ + ZΛ(θ)u, u ~ N(0, I), y_i | u ~ family(g⁻¹(η_i), params), Var(b) = ΛΛᵀ
(Λ(θ) and θ's layout as in ``mf.lmer``, :mod:`mixedformula.linalg.lambda_factor`). The
likelihood integrates u out; it is approximated (:mod:`mixedformula.linalg.pirls`) by

* the Laplace approximation at the conditional modes û (``nagq = 1``, lme4's default), or
* adaptive Gauss–Hermite quadrature with ``nagq`` nodes per level (``nagq > 1``; only for one
  scalar random-effect term, as lme4 — the integral then factorises over the levels).

Fitting follows lme4's two stages: (1) θ alone, with β estimated jointly with u inside PIRLS
(lme4's nAGQ = 0 criterion), from θ = 1; (2) the Laplace/AGQ deviance over (θ, β) — and the
logarithm of the family's further parameter (negative binomial / gamma ``shape``, which lme4's
glmer cannot estimate; glmmTMB does it the same way) — from stage 1's result, by L-BFGS-B with
the boundary checks of ``mf.lmer``. Var(β̂) is the β block of 2 H⁻¹, H the finite-difference
Hessian (step 10⁻⁴) of the deviance over all parameters at the optimum — what lme4's
``vcov`` does by default. A fit whose scaled gradient H⁻¹∇ exceeds 0.002 (lme4's tolerance),
whose Hessian is not positive definite or whose PIRLS fails is reported in a warning and in
``fit.converged``; a variance at zero gets a warning naming it.

Rows use Fisher's information in PIRLS and in log|L|² (lme4); families whose reference is
glmmTMB (negative binomial, gamma) use the observed information (TMB's Laplace), see
``Family.laplace_information``. The two coincide for canonical links (logit binomial and
bernoulli, log Poisson).

Binomial counts are written ``y | trials(n) ~ ...`` or, as in lme4, ``cbind(y, n - y) ~ ...``
(the same model: ``cbind(s, f)`` is ``s | trials(s + f)``). Prior weights multiply each row's
log-density (lme4's ``weights`` for non-binomial families); an offset is an array or column
name (``offset=``) and/or ``offset(expr)`` in the formula (they add up, as in lme4; in
predictions for new data the formula's offset is taken from newdata).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.stats import norm

from .design import design_matrices
from .design.row_values import prior_weights, row_values as _row_values
from .errors import DataError, FamilyError, FormulaError
from .families import Family, get_family
from .identifiability import identifiability_problems
from .linalg import LambdaFactor
from .linalg.pirls import PIRLS, PIRLSError
from .linalg.threads import one_blas_thread
from .inference.coef_table import stars
from .inference.numderiv import forward_value_gradient
from .reml import (LmerFit, fixef_lme4_names, information_lines, interior_starts, lmer_terms,
                   optimize_bounded, r_format, residual_lines, table_lines, theta_names)

__all__ = ["GlmerFit", "GlmerConvergenceWarning", "glmer"]

#: lme4's convergence tolerance on the scaled gradient H⁻¹∇ (check.conv.grad)
GRAD_TOL = 2e-3
#: step of the finite-difference Hessian. lme4's deriv12 uses 1e-4; with deviances accurate to
#: ~1e-12 (PIRLS to convergence) the truncation error at 1e-3 is ~1e-6 relative and the rounding
#: error smaller than at 1e-4 (VerbAgg: SEs at h = 3e-3 and 1e-3 agree to 4e-5)
HESS_STEP = 1e-3


class GlmerConvergenceWarning(UserWarning):
    """The glmer optimum is doubtful: not converged, singular, or an indefinite Hessian."""


class GlmerDeviance:
    """The fit's Laplace / AGQ deviance −2 log L(θ, β, params) (β on X's scale), for profiles
    and the parametric bootstrap. ``x`` vectors are the optimiser's (θ, β / scale of X's
    columns, log params); :meth:`with_response` gives the same model for another response
    (the PIRLS structure — Z, the weighted-PLS maps — is reused)."""

    def __init__(self, pirls: PIRLS, xscale, nth: int, dpars, nagq: int, lower):
        self.pirls, self.xscale = pirls, np.asarray(xscale, dtype=float)
        self.nth, self.p, self.dpars, self.nagq = nth, len(xscale), list(dpars), nagq
        self.lower = np.asarray(lower, dtype=float)

    def unpack(self, x):
        x = np.asarray(x, dtype=float)
        th, b = x[:self.nth], x[self.nth:self.nth + self.p]
        prm = {k: math.exp(v) for k, v in zip(self.dpars, x[self.nth + self.p:])}
        return th, b, prm

    def pack(self, theta, beta, params) -> np.ndarray:
        return np.concatenate([np.asarray(theta, float), np.asarray(beta, float) * self.xscale,
                               [math.log(params[k]) for k in self.dpars]])

    def __call__(self, x) -> float:
        th, b, prm = self.unpack(x)
        return self.pirls.agq(th, b, prm, self.nagq)

    def with_response(self, y) -> "GlmerDeviance":
        import copy
        pirls = copy.copy(self.pirls)
        pirls.y = np.asarray(y, dtype=float)
        pirls.reset()
        new = copy.copy(self)
        new.pirls = pirls
        return new


@dataclass
class GlmerFit(LmerFit):
    """ML fit of a generalized linear mixed model (lme4's ``glmerMod``). ``sigma`` is 1 (no
    residual scale); ``params`` holds the further parameters (``shape``)."""

    residual_row = False        # the variance table has no Residual row
    family: Family | None = None
    nagq: int = 1
    params: dict = field(default_factory=dict)
    offset: np.ndarray | None = field(default=None, repr=False)
    prior_weights: np.ndarray | None = field(default=None, repr=False)
    converged: bool = True
    messages: list = field(default_factory=list)
    vcov_full: np.ndarray | None = field(default=None, repr=False)
    devfun: GlmerDeviance | None = field(default=None, repr=False)

    @property
    def n_params(self) -> int:
        """p fixed effects + len(θ) + the further parameters (lme4's ``df`` of logLik)."""
        return len(self.beta) + len(self.theta) + len(self.params)

    @property
    def deviance(self) -> float:
        """−2 × log-likelihood (the ``deviance`` of lme4's summary line)."""
        return self.objective

    # -- tables --------------------------------------------------------------------------------
    def fixef(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) per fixed coefficient (lme4 names)."""
        se = np.sqrt(np.diag(self.vcov_beta))
        z = self.beta / se
        return pd.DataFrame({"Estimate": self.beta, "Std. Error": se, "z value": z,
                             "Pr(>|z|)": 2 * norm.sf(np.abs(z))},
                            index=pd.Index(self.fixef_names, dtype=object))

    def varcorr(self) -> pd.DataFrame:
        """Like R's ``as.data.frame(VarCorr(fit))`` (no Residual row: no residual scale)."""
        vc = super().varcorr()
        return vc[vc["grp"] != "Residual"].reset_index(drop=True)

    # -- predictions ---------------------------------------------------------------------------
    def _eta(self, design, offset) -> np.ndarray:
        eta = design.X @ self.beta
        if offset is not None:
            eta = eta + offset
        blocks = _lme4_order(design)
        for t, b, blk in zip(self.terms, self.b, blocks):
            codes = np.asarray(blk.codes)
            ok = (codes >= 0) & (codes < len(t.levels))      # new levels and missing: 0
            bb = np.zeros((len(codes), b.shape[1]))
            bb[ok] = b[codes[ok]]
            eta = eta + np.einsum("nq,nq->n", blk.X, bb)
        return eta

    def predict(self, newdata=None, type: str = "link", offset=None) -> np.ndarray:
        """Linear predictor (``type="link"``) or mean parameter g⁻¹(η) (``"response"``: the
        probability for binomial models, as lme4) at the conditional modes; levels not in
        the data get random effects 0 (lme4's ``allow.new.levels = TRUE``). ``offset``: the
        new rows' ``offset=`` (default 0 for new data); ``offset()`` terms of the formula are
        evaluated on newdata and added."""
        if type not in ("link", "response"):
            raise ValueError("type must be 'link' or 'response'")
        if newdata is None:
            eta = self._eta(self.design, self.offset)
        else:
            nd = self.design.spec.transform(newdata)
            off = None if offset is None else np.asarray(offset, dtype=float)
            if off is not None and off.shape != (nd.nobs,):
                raise DataError(f"offset has {off.size} values for {nd.nobs} rows of newdata")
            if nd.offset is not None:      # offset() of the formula, from newdata
                off = nd.offset if off is None else off + nd.offset
            eta = self._eta(nd, off)
        return eta if type == "link" else self.family.inverse_link(eta)

    def fitted(self) -> np.ndarray:
        """g⁻¹(η̂) per fitted row (lme4's ``fitted``)."""
        return self.predict(type="response")

    def residuals(self) -> np.ndarray:
        """Pearson residuals (y − E y)/√Var y (the ``Scaled residuals`` of the summary)."""
        mu = self.fitted()
        trials = self.design.trials
        m = self.family.mean(mu, self.params, trials)
        v = self.family.variance(mu, self.params, trials)
        r = (self.design.y[:, 0] - m) / np.sqrt(v)
        if self.prior_weights is not None:
            r = r * np.sqrt(self.prior_weights)
        return r

    # -- printing ------------------------------------------------------------------------------
    def summary(self) -> str:
        """Text like lme4's ``summary(glmer(...))``."""
        how = ("Laplace\n  Approximation" if self.nagq == 1 else
               f"Adaptive\n  Gauss-Hermite Quadrature, nAGQ = {self.nagq}")
        fam = self.family
        lines = [f"Generalized linear mixed model fit by maximum likelihood ({how}) ['glmerMod']"]
        lines.append(f" Family: {fam.name}  ( {fam.link} )")
        lines.append(f"Formula: {self.formula}")
        if self.data_name:
            lines.append(f"   Data: {self.data_name}")
        lines.append("")
        lines += information_lines(self, self.deviance)
        lines.append("")
        qs = np.quantile(self.residuals(), [0, 0.25, 0.5, 0.75, 1.0])
        qstr = r_format(np.round(qs, 4), 4)
        lines += residual_lines(qstr)
        lines.append("")
        lines.append("Random effects:")
        lines += self._random_effects_table()
        groups = "; ".join(f"{g}, {n}" for g, n in self.ngrps.items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        for k, v in self.params.items():
            lines.append(f"{fam.name} {k} parameter: {v:.4g}")
        lines.append("")
        lines.append("Fixed effects:")
        lines += self._fixed_effects_table()
        lines.append("---")
        lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
        for m in self.messages:
            lines.append(m)
        return "\n".join(lines)

    def _fixed_effects_table(self) -> list[str]:
        fe = self.fixef()
        p = len(fe)
        est_se = r_format(np.concatenate([fe["Estimate"], fe["Std. Error"]]), 4)
        zval = r_format(np.round(fe["z value"].to_numpy(), 3), 4)
        pv = fe["Pr(>|z|)"].to_numpy()
        pstr = [_format_p(x) for x in pv]
        signif = [stars(x) for x in pv]
        cols = [("", list(fe.index), "l"), ("Estimate", est_se[:p], "r"),
                ("Std. Error", est_se[p:], "r"), ("z value", zval, "r"),
                ("Pr(>|z|)", pstr, "r"), ("", signif, "l")]
        return table_lines(cols, lead="")

    # -- answers (results/emmeans.py, marginaleffects.py, nakagawa.py; shared with lmer) -------
    def _emm_source(self, ddf: str = "auto"):
        """β̂, Var(β̂) and the family (response scale); df = ∞ (emmeans' asymptotic z for
        glmer fits, columns ``asymp.LCL``/``asymp.UCL``)."""
        if ddf not in ("auto", "asymptotic"):
            raise DataError(f"ddf={ddf!r}: glmer fits are asymptotic (df = Inf), as in emmeans")
        from .results.emmeans import FreqSource
        return FreqSource(self.design, self.data, self.beta, self.vcov_beta, family=self.family)

    def null_fit(self) -> "GlmerFit":
        """The null model: the same random part, offset and weights, intercept only, refitted
        by ML to the same data (insight's ``null_model``, for Nakagawa's R²); warnings of the
        refit are not shown. Refused (DataError) where the refit could not reproduce the
        fit's offset= argument or match its weights to the data's rows."""
        import dataclasses
        formula_offset = self.design.offset
        if self.offset is not None and (formula_offset is None
                                        or not np.array_equal(self.offset, formula_offset)):
            raise DataError("the null model of a glmer fit with an offset= argument is not "
                            "available (use offset() in the formula)")
        if self.prior_weights is not None and len(self.prior_weights) != len(self.data):
            raise DataError("the null model of a weighted glmer fit with dropped rows is not "
                            "available (drop the incomplete rows from the data first)")
        spec = dataclasses.replace(self.design.formula, fixed="1", fixed_variables=())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return glmer(spec, self.data, family=self.family, nagq=self.nagq,
                         weights=self.prior_weights)


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "NA"
    if p < 2e-16:
        return "< 2e-16"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"


def _lme4_order(design):
    """The design's group blocks in lme4's term order (decreasing number of levels, stable —
    the order of :func:`mixedformula.reml.lmer_terms`)."""
    blocks = list(design.terms)
    order = sorted(range(len(blocks)), key=lambda k: -len(blocks[k].levels))
    return [blocks[k] for k in order]


def _check(design, fam: Family) -> None:
    spec = design.formula
    if spec.distributional:
        from .engine import reml_refusal
        raise reml_refusal(design)
    if spec.multivariate or design.y is None or design.y.shape[1] != 1:
        raise NotImplementedError("glmer fits univariate models only; use mf.fit for "
                                  "multivariate (mvbind) models")
    if not design.terms:
        raise FormulaError("glmer needs at least one group term like (1 | g); without one this "
                           "is an ordinary GLM", spec.text)
    if spec.additions.any:
        raise NotImplementedError("glmer does not read brms' addition terms (weights(), "
                                  "cens(), trunc(), se()); pass weights= as lme4 does, or use "
                                  "mf.fit for brms' semantics")
    ids = [t.term.id for t in design.terms if t.term.id is not None]
    if len(ids) != len(set(ids)):
        raise NotImplementedError("group terms sharing an ID (|p|, gr(id=)) correlate "
                                  "coefficients across terms; glmer does not support that yet")
    n, p = design.X.shape
    if n <= p:
        raise DataError(f"{n} observations are not enough for {p} fixed effects")
    refused = [pr.message for pr in identifiability_problems(design, residual_scale=False)
               if pr.refused_by_lme4]
    if refused:
        raise DataError("the model cannot be estimated from these data: " + "; ".join(refused))
    fam.check_response(design.y[:, 0], design.trials, design.response_names[0])


def glmer(formula, data, family="binomial", nagq: int = 1, weights=None, *, offset=None,
          link: str | None = None, start=None, data_name: str | None = None,
          na_action: str = "drop") -> GlmerFit:
    """Fit a generalized linear mixed model by maximum likelihood, like ``lme4::glmer``.

    Parameters
    ----------
    formula : formula text (binomial counts as ``y | trials(n) ~ ...``).
    data : pandas/polars DataFrame.
    family : ``"binomial"``, ``"bernoulli"``, ``"poisson"``, ``"negbinomial"`` (shape
        estimated, like glmmTMB's nbinom2), ``"gamma"`` (shape estimated), or a Family.
    nagq : 1 (Laplace) or the number of adaptive Gauss–Hermite nodes (one scalar term only).
    weights, offset : prior weights / offset, a column name or one value per row of data.
    link : overrides the family's default link.
    start : optional starting θ (lme4's order).

    Raises FamilyError for a family without an ML path (gaussian with identity link: use
    :func:`mixedformula.lmer`), ValueError for ``nagq > 1`` with several or vector-valued
    terms; warns (GlmerConvergenceWarning) when the optimum is doubtful or singular.
    """
    with one_blas_thread():
        fit = _glmer(formula, data, family, nagq, weights, offset, link, start, data_name,
                     na_action)
    fit.data = data            # the fitted data: emmeans' grid, answers, R², the report
    return fit


def _glmer(formula, data, family, nagq, weights, offset, link, start, data_name,
           na_action) -> GlmerFit:
    fam = get_family(family, link)
    if fam.linear_gaussian:
        raise FamilyError("family 'gaussian' with the identity link is a linear mixed model: "
                          "use mf.lmer(formula, data, reml=False) for its ML fit")
    if not fam.ml_glmm:
        raise FamilyError(f"family {fam.name!r} (link {fam.link!r}) has no maximum-likelihood "
                          "path in glmer (families with one: bernoulli, binomial, poisson, "
                          "negbinomial, gamma); fit it with mf.fit (Bayesian)")
    if not (isinstance(nagq, (int, np.integer)) and nagq >= 1):
        raise ValueError(f"nagq must be a whole number >= 1, not {nagq!r}")
    from .design.distributed import is_dask_frame
    if is_dask_frame(data):
        from .engine import glmer_dask_refusal
        raise DataError(glmer_dask_refusal())
    design = design_matrices(formula, data, na_action=na_action, drop_aliased=True)
    pw = prior_weights(weights, data, design)
    trials = design.trials
    if pw is not None and fam.uses_trials and trials is None:
        # lme4's binomial with a proportion response: weights are the numbers of trials
        # (binomial()$initialize), the same model as cbind(y * w, w - y * w)
        y0 = design.y[:, 0]
        if np.any((y0 < 0) | (y0 > 1)):
            raise DataError(f"binomial with weights= and no trials(): the response "
                            f"{design.response_names[0]!r} must be proportions in [0, 1] "
                            f"({int(np.sum((y0 < 0) | (y0 > 1)))} row(s) are not)")
        succ = y0 * pw
        off_int = np.abs(succ - np.round(succ)) > 1e-7 * np.maximum(1.0, pw)
        if off_int.any():
            raise DataError(f"binomial with weights= as the numbers of trials: proportion x "
                            f"weight is not a whole number of successes in "
                            f"{int(off_int.sum())} row(s) (lme4 warns 'non-integer #successes'"
                            "); pass y | trials(n) with counts instead")
        design.y = np.round(succ)[:, None]
        design.trials = pw
        trials, pw = pw, None
    _check(design, fam)
    from .engine import autocor_refusal, structure_refusal
    refusal = structure_refusal(design, "glmer fits") or autocor_refusal(design.formula,
                                                                        "glmer fits")
    if refusal is not None:
        raise refusal
    terms = lmer_terms(design)
    if nagq > 1 and (len(terms) != 1 or len(terms[0].coefs) != 1 or terms[0].by is not None):
        raise ValueError("nagq > 1 is only available for models with a single, scalar "
                         "random-effects term (like (1 | g)); this model has "
                         f"{len(terms)} term(s) with {[len(t.coefs) for t in terms]} "
                         "coefficient(s): use nagq = 1 (Laplace)")
    off = _row_values(offset, "offset", data, design)
    if design.offset is not None:          # offset() in the formula adds to offset=
        off = design.offset if off is None else off + design.offset
    lam = LambdaFactor([t.layout for t in terms])
    y = design.y[:, 0]
    # β is optimised for the columns of X divided by their standard deviations (constant
    # columns: 1), so that the search, the Hessian step and the convergence test do not depend
    # on the predictors' units (x in mm or km gives the same fit); reported on X's scale
    sd = np.std(design.X, axis=0) if design.X.shape[1] else np.zeros(0)
    xscale = np.where(sd > 1e-12 * np.maximum(1.0, np.abs(np.mean(design.X, axis=0))), sd, 1.0)
    pirls = PIRLS(design.X / xscale, y, [(t.X, t.codes) for t in terms], lam, fam, design.trials,
                  off, pw, information=fam.laplace_information)
    dpars = list(fam.dpars)
    params0 = fam.ml_start(y, design.trials)
    nth, p = lam.n_theta, design.X.shape[1]
    theta0 = lam.theta0 if start is None else np.asarray(start, dtype=float)
    if theta0.shape != (nth,):
        raise ValueError(f"start must have {nth} values (θ in lme4's order)")

    # stage 1: θ alone, β estimated inside PIRLS (lme4's nAGQ = 0)
    beta_box = [np.zeros(p)]
    failure = ["PIRLS failed"]

    def stage1(th):
        try:
            m = pirls.modes(th, beta_box[0], params0, joint=True)
        except (PIRLSError, np.linalg.LinAlgError, ValueError) as e:
            failure[0] = str(e)
            pirls.reset()
            return math.inf
        beta_box[0] = m.beta
        return m.laplace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        r1 = minimize(lambda th: (stage1(th), _central_gradient(stage1, th, lower=lam.lower)),
                      theta0, method="L-BFGS-B", jac=True,
                      bounds=[(lo if np.isfinite(lo) else None, None) for lo in lam.lower],
                      options=dict(ftol=1e-10, maxiter=1000))
    opt1 = {"fun": float(r1.fun), "nfev": int(r1.nfev), "nit": int(r1.nit)}
    th1 = np.asarray(r1.x, dtype=float)
    try:
        m1 = pirls.modes(th1, beta_box[0], params0, joint=True) if np.isfinite(r1.fun) \
            else None
    except (PIRLSError, np.linalg.LinAlgError, ValueError) as e:
        failure[0] = str(e)
        m1 = None
    if m1 is None:
        raise DataError(f"glmer could not fit the model: the penalized IRLS for β and the group "
                        f"effects did not converge ({failure[0]}). Usual causes: a predictor "
                        "that separates the outcomes completely (every 0 on one side, every 1 "
                        "on the other: the estimate is infinite), or a response the family "
                        "cannot produce; simplify the fixed effects or check the data")

    # stage 2: the Laplace / AGQ deviance over (θ, β, log params)
    def unpack(x):
        th, b = x[:nth], x[nth:nth + p]
        prm = {k: math.exp(v) for k, v in zip(dpars, x[nth + p:])}
        return th, b, prm

    def dev(x):
        th, b, prm = unpack(np.asarray(x, dtype=float))
        return pirls.agq(th, b, prm, nagq)

    x0 = np.concatenate([th1, m1.beta, [math.log(params0[k]) for k in dpars]])
    lower = np.concatenate([lam.lower, np.full(p + len(dpars), -np.inf)])

    def starts(x):
        return [np.concatenate([s, x[nth:]]) for s in interior_starts(lam, x[:nth], theta0)]

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        # forward differences (k + 1 deviances per gradient): the Newton polish below makes
        # the last digits, so this search only needs to get close
        r2 = minimize(lambda z: forward_value_gradient(dev, z), x0,
                      method="L-BFGS-B", jac=True, bounds=bounds,
                      options=dict(ftol=1e-11, gtol=1e-5, maxiter=2000, maxls=40))
        x, objective = np.asarray(r2.x, dtype=float), float(r2.fun)
        opt = {"x": x, "fun": objective, "nfev": int(r2.nfev), "nit": int(r2.nit),
               "message": str(r2.message), "checks": [("L-BFGS-B", objective)]}
        if np.any(lam.is_diagonal & (x[:nth] < 1e-4)):
            # a variance at 0: lmer's boundary checks (interior restarts, Nelder-Mead)
            ob = optimize_bounded(dev, x, lower, restarts=1, one_thread=True,
                                  interior_starts=starts)
            opt["checks"] += ob["checks"]
            opt["nfev"] += ob["nfev"]
            if ob["fun"] < objective:
                x, objective = ob["x"], float(ob["fun"])
    if not np.isfinite(objective):
        raise DataError("glmer: the deviance is not finite anywhere the optimiser looked "
                        "(PIRLS failed); the model does not fit these data")
    # Newton polish with the finite-difference Hessian (also the one Var(β̂) comes from)
    messages, converged = [], True
    vcov_full = None
    for _newton in range(4):
        at_bound = np.concatenate([lam.is_diagonal, np.zeros(p + len(dpars), bool)]) \
            & (x < 1e-4)
        free = ~at_bound
        objective = dev(x)
        H, g = _hessian(dev, x, objective)
        Hf = H[np.ix_(free, free)]
        if not (np.all(np.isfinite(Hf)) and np.all(np.isfinite(g))):
            break
        try:
            step = np.linalg.solve(Hf, g[free])
        except np.linalg.LinAlgError:
            break
        if not np.all(np.linalg.eigvalsh(Hf) > 0) or np.max(np.abs(step)) < 1e-7:
            break
        xn = x.copy()
        xn[free] -= step
        xn = np.maximum(xn, lower)
        fn = dev(xn)
        if not fn < objective:
            break
        x, objective = xn, fn
        if np.max(np.abs(step)) < 1e-4:
            # a small step: H (and the gradient) at the new point differ by O(step); the
            # gradient there is O(step²) and checked below
            g = _central_gradient(dev, x, lower=lower)
            break
    opt.update(x=x, fun=objective)
    theta, beta_s, params = unpack(x)
    m = pirls.modes(theta, beta_s, params)
    beta = beta_s / xscale
    fixef_names = fixef_lme4_names(design.spec.fixed_spec, design.X_names,
                                   getattr(design.spec, "columns", ()))

    at_bound = np.concatenate([lam.is_diagonal, np.zeros(p + len(dpars), bool)]) & (x < 1e-4)
    free = ~at_bound
    Hf = H[np.ix_(free, free)]
    try:
        pd_ok = bool(np.all(np.isfinite(Hf)) and np.all(np.isfinite(g))
                     and np.all(np.linalg.eigvalsh(Hf) > 0))
    except np.linalg.LinAlgError:
        pd_ok = False
    if pd_ok:
        Vf = 2.0 * np.linalg.inv(Hf)
        scaled = np.abs(np.linalg.solve(Hf, g[free]))
        if np.max(scaled, initial=0.0) > GRAD_TOL:
            converged = False
            worst = _param_names(terms, fixef_names, dpars)[
                np.nonzero(free)[0][int(np.argmax(scaled))]]
            messages.append(f"the fit did not converge: the scaled gradient is "
                            f"{np.max(scaled):.2g} (tolerance {GRAD_TOL}) for {worst}; "
                            "the estimates may be off; try rescaling the predictors")
        vcov_full = np.full((len(x), len(x)), np.nan)
        vcov_full[np.ix_(free, free)] = Vf
        scale = np.concatenate([np.ones(nth), xscale, np.ones(len(dpars))])
        vcov_full = vcov_full / np.outer(scale, scale)
        vb = vcov_full[nth:nth + p, nth:nth + p]
    else:
        converged = False
        messages.append("the fit did not converge: the Hessian of the deviance is not "
                        "positive definite (or not finite) at the optimum, so this is not a "
                        "proper maximum of the likelihood; usual causes are predictors on very "
                        "different scales (rescale them) or a nearly unidentifiable model. "
                        "The standard errors come from the PIRLS approximation and are "
                        "unreliable")
        try:
            vb = _pirls_vcov(pirls, m, theta, params) / np.outer(xscale, xscale)
        except (np.linalg.LinAlgError, ValueError):
            vb = np.full((p, p), np.nan)
    small = lam.is_diagonal & (theta < 1e-4)
    if np.any(small):
        names = theta_names(terms)
        zero = [names[i] for i in np.nonzero(small)[0]]
        messages.append("boundary (singular) fit: the random-effect standard deviation of "
                        + ", ".join(_plain_theta(n) for n in zero)
                        + " is estimated as 0; consider removing that term")
    for msg in messages:
        warnings.warn(msg, GlmerConvergenceWarning, stacklevel=2)

    b_all = lam.sparse(theta) @ m.u
    b = []
    for k, t in enumerate(terms):
        lo, hi = lam.col_offsets[k], lam.col_offsets[k + 1]
        b.append(b_all[lo:hi].reshape(t.layout.J, t.layout.q))
    opt["stage1"] = opt1
    return GlmerFit(formula=design.formula.text, reml=False, design=design, terms=terms,
                    fixef_names=fixef_names,
                    theta=pd.Series(theta, index=pd.Index(theta_names(terms), dtype=object),
                                    name="theta"),
                    beta=beta, sigma=1.0, vcov_beta=vb, objective=objective,
                    ml_deviance=objective, b=b, optimizer=opt, data_name=data_name,
                    family=fam, nagq=nagq, params=params, offset=off, prior_weights=pw,
                    converged=converged, messages=messages, vcov_full=vcov_full,
                    devfun=GlmerDeviance(pirls, xscale, nth, dpars, nagq, lower))


def _plain_theta(name: str) -> str:
    """θ name ``herd.(Intercept)`` → ``(Intercept) | herd``."""
    grp, _, coef = name.partition(".")
    return f"{coef} | {grp}" if coef else name


def _param_names(terms, fixef_names, dpars) -> list[str]:
    return ([f"theta {n}" for n in theta_names(terms)] + list(fixef_names)
            + [f"log {d}" for d in dpars])


def _central_gradient(fun, x, h: float = 1e-5, lower=None) -> np.ndarray:
    """Central differences, forward ones where x − h would cross a lower bound."""
    x = np.asarray(x, dtype=float)
    g = np.empty(len(x))
    f0 = None
    with np.errstate(all="ignore"):          # +∞ deviances give non-finite entries, checked
        for i in range(len(x)):
            e = np.zeros(len(x))
            e[i] = h * max(1.0, abs(x[i]))
            if lower is not None and x[i] - e[i] < lower[i]:
                f0 = fun(x) if f0 is None else f0
                g[i] = (fun(x + e) - f0) / e[i]
            else:
                g[i] = (fun(x + e) - fun(x - e)) / (2 * e[i])
    return g


    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h * max(1.0, abs(x[i]))
        g[i] = (fun(x + e) - f0) / e[i]
    return f0, g


def _hessian(fun, x, f0: float, h: float = HESS_STEP) -> tuple[np.ndarray, np.ndarray]:
    """Central-difference Hessian with step h (lme4's ``deriv12``) and the central-difference
    gradient from the same evaluations."""
    k = len(x)
    H = np.empty((k, k))
    fp, fm = np.empty(k), np.empty(k)
    E = np.eye(k) * h
    with np.errstate(all="ignore"):          # +∞ deviances give non-finite entries, checked
        for i in range(k):
            fp[i], fm[i] = fun(x + E[i]), fun(x - E[i])
            H[i, i] = (fp[i] - 2 * f0 + fm[i]) / h ** 2
        for i in range(k):
            for j in range(i):
                H[i, j] = H[j, i] = (fun(x + E[i] + E[j]) - fp[i] - fp[j] + 2 * f0
                                     - fm[i] - fm[j] + fun(x - E[i] - E[j])) / (2 * h ** 2)
        return H, (fp - fm) / (2 * h)


def _pirls_vcov(pirls: PIRLS, m, theta, params) -> np.ndarray:
    """(L_X L_Xᵀ)⁻¹ of the weighted PLS at the modes (lme4's vcov without the Hessian)."""
    s, w = pirls.family.score_information(pirls.y, m.eta, params, pirls.trials)
    f = pirls.wpls.factor(theta, pirls.a * w, True)
    return np.linalg.inv(pirls.wpls.beta_precision(f))
