r"""REML / ML point estimates of Gaussian linear mixed models, matching lme4's ``lmer``.

    fit = mf.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)          # REML
    fit = mf.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy, reml=False)  # ML
    print(fit)                      # like summary(lmer(...))
    fit.fixef(); fit.varcorr(); fit.ranef(); fit.theta; fit.sigma; fit.logLik

Model (Bates et al. 2015, JSS 67(1)): y = Xβ + Zb + ε, ε ~ N(0, σ²I), b = Λ(θ)u,
u ~ N(0, σ²I), so Var(b) = σ²ΛΛᵀ (see :mod:`mixedformula.linalg.lambda_factor` for the layout of
θ). β and σ are profiled out: for each θ the penalized least-squares problem

    min_{β,u} ‖y − Xβ − ZΛu‖² + ‖u‖²  =: r²_θ

is solved through the Cholesky factor L Lᵀ = ΛᵀZᵀZΛ + I (:mod:`mixedformula.linalg.penalized`),
and the profiled objectives

    ML:    d(θ)   = log|L|² + n [1 + log(2π r²_θ / n)]
    REML:  d_R(θ) = log|L|² + log|L_X|² + (n − p) [1 + log(2π r²_θ / (n − p))]

are minimised over θ (diagonal entries of each T ≥ 0) from lme4's start (T = I) with scipy's
L-BFGS-B, or with nlopt's BOBYQA (lme4's default optimiser) polished by L-BFGS-B for
zero-correlation vector-valued terms (the one rule: :func:`_search_method`); a result on the
boundary (a zero diagonal: a singular fit) is checked by restarts from interior points until two
runs agree on the lowest deviance and, after L-BFGS-B when none agree, by a second optimiser
(scipy's Nelder–Mead), and the best deviance wins (:func:`_optimize`). Then σ̂² = r²_θ / n (ML) or r²_θ / (n − p)
(REML), Var(β̂) = σ̂² (L_X L_Xᵀ)⁻¹, the group-level covariance of term k is σ̂² T_k T_kᵀ and the
conditional modes are b̂ = Λ L⁻ᵀ (c_u − R_ZX β̂).

Conventions follow lme4: group terms are ordered by decreasing number of levels (stable), θ is
named ``"<group>.<coef>"`` (diagonal) and ``"<group>.<row coef>.<col coef>"``; ``||`` terms get
one variance per coefficient, reported as groups ``g``, ``g.1``, … like lme4's split terms;
coefficient names are lme4's (``(Intercept)``, ``fb``, ``log(z)``). Group names of interactions
are brms' (``g1:g2``; lme4 writes ``g2:g1`` for ``(1 | g1/g2)``). ``gr(g, by = h)`` terms get one
T per level of h, reported as groups ``g:h<level>``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from .design import Design, design_matrices
from .design.reterms import CovBlock, covariance_blocks
from .design.row_values import prior_weights
from .design.safe_text import from_alias
from .engine import reml_refusal
from .errors import DataError, MixedFormulaError
from .identifiability import check_identifiability
from .linalg import LambdaFactor, PenalizedLS, TermLayout
from .linalg.penalized import add_crossproducts, crossproducts
from .linalg.threads import dense_blas_threads, one_blas_thread

__all__ = ["LmerFit", "lmer"]

_CONTRAST = re.compile(r"\[(?:[A-Za-z]+\.)?([^\[\]]*)\]")


_ALIAS = re.compile(r"_mf[vc](\d+)_")


def lme4_name(column: str) -> str:
    """formulaic column → lme4 name: ``f[T.b]`` → ``fb``, ``Intercept`` → ``(Intercept)``."""
    if column == "Intercept":
        return "(Intercept)"
    return _CONTRAST.sub(lambda m: m.group(1), str(column)).replace("`", "")


def _lme4_names(model_spec, brms: list[str], columns) -> list[str]:
    """lme4 names of a formulaic model matrix's columns (aliases ``_mfv<k>_`` of the design's
    private frame mapped back to the data's column names); brms names if that fails."""
    fallback = ["(Intercept)" if c == "Intercept" else c for c in brms]
    names = list(getattr(model_spec, "column_names", None) or [])
    if len(names) != len(brms):
        return fallback
    columns = list(columns or ())
    out = []
    for c in names:
        try:
            c = from_alias(str(c), columns)
        except IndexError:
            return fallback
        out.append(lme4_name(c))
    if any(_ALIAS.search(c) for c in out) or len(set(out)) != len(out):
        return fallback
    return out


def make_unique(names: list[str]) -> list[str]:
    """R's ``make.unique``: the second ``g`` becomes ``g.1``, the third ``g.2``."""
    seen: dict[str, int] = {}
    out = []
    taken = set(names)
    for n in names:
        if n not in seen:
            seen[n] = 0
            out.append(n)
            continue
        k = seen[n] + 1
        while f"{n}.{k}" in taken:
            k += 1
        seen[n] = k
        taken.add(f"{n}.{k}")
        out.append(f"{n}.{k}")
    return out


@dataclass
class _Term:
    """A covariance block (:class:`~mixedformula.design.reterms.CovBlock`: its group terms,
    levels and block of Λ) as lmer sees it, with lme4's coefficient names and its columns."""

    block: CovBlock
    coefs: list[str]           # lme4 coefficient names
    X: np.ndarray              # (n, q) per-row multipliers of the block's terms, side by side
    codes: np.ndarray          # (n,) level of each row

    @property
    def group(self) -> str:
        """Grouping factor ("Subject", "g1:g2")."""
        return self.block.group

    @property
    def levels(self) -> list[str]:
        return self.block.levels

    @property
    def correlated(self) -> bool:
        return self.block.correlated or self.block.Q == 1

    @property
    def by(self) -> str | None:
        return self.block.by

    @property
    def by_levels(self) -> list[str] | None:
        return self.block.by_levels

    @property
    def layout(self) -> TermLayout:
        return self.block.layout

    def block_labels(self) -> list[str]:
        """One label per template T (per by-level)."""
        if self.by_levels is None:
            return [self.group]
        return [f"{self.group}:{self.by}{lev}" for lev in self.by_levels]


@dataclass
class LmerFit:
    """REML/ML fit of a Gaussian linear mixed model (lme4's ``lmerMod``)."""

    formula: str
    reml: bool
    design: Design = field(repr=False)
    terms: list[_Term] = field(repr=False)
    fixef_names: list[str]
    theta: pd.Series
    beta: np.ndarray
    sigma: float
    vcov_beta: np.ndarray = field(repr=False)
    objective: float
    ml_deviance: float
    b: list[np.ndarray] = field(repr=False)
    optimizer: dict = field(default_factory=dict, repr=False)
    data_name: str | None = None
    data: object = field(default=None, repr=False)        # the data fitted (type III contrasts, emmeans, R²)
    offset: np.ndarray | None = field(default=None, repr=False)   # offset() per fitted row
    weights: np.ndarray | None = field(default=None, repr=False)  # prior weights per fitted row
    weights_arg: object = field(default=None, repr=False)         # weights= as given (refit)
    data2: dict | None = field(default=None, repr=False)   # gr(cov = A): the known matrices
    #: glmmTMB structures (ar1/cs/toep): the optimiser's parameters φ and their map to θ
    structure_phi: np.ndarray | None = field(default=None, repr=False)
    structure_map: object = field(default=None, repr=False)
    #: ar()/cosy() residuals (:mod:`mixedformula.linalg.residual_corr`) and their ρ̂, or
    #: unstr() (:mod:`mixedformula.linalg.unstr_corr`) and Ĉ's correlations in brms' order
    residual_corr: object = field(default=None, repr=False)
    residual_rho: float | np.ndarray | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    # -- scalars -------------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def reml_criterion(self) -> float | None:
        """REML criterion at convergence (lme4's ``REMLcrit``); None for ML fits."""
        return self.objective if self.reml else None

    @property
    def deviance(self) -> float:
        """−2 × log-likelihood (ML). For a REML fit: the ML deviance profiled at the REML θ
        (what lme4's ``deviance(fit, REML = FALSE)`` reports)."""
        return self.objective if not self.reml else self.ml_deviance

    @property
    def logLik(self) -> float:
        """Log restricted likelihood (REML) or log-likelihood (ML) at the optimum."""
        return -0.5 * self.objective

    @property
    def n_params(self) -> int:
        """Number of parameters: p fixed effects + len(θ) + σ (lme4's ``df`` of logLik); with
        ar1/cs/toep terms, their parameters φ instead of θ (glmmTMB's df)."""
        extra = 0 if self.residual_corr is None else self.residual_corr.n_par
        if self.structure_map is not None:
            return len(self.beta) + self.structure_map.n_phi + 1 + extra
        return len(self.beta) + len(self.theta) + 1 + extra

    def corpars(self) -> pd.DataFrame:
        """Correlation parameters of the structured group terms (glmmTMB's ``ar1``, ``cs``,
        ``toep``) and of the residuals (grp ``Residual``: ``ar[1]``, ``cosy``, or unstr()'s
        ``cortime__<t1>__<t2>`` as brms names them): columns grp, structure, parameter
        (``rho``, ``rho[k]``, …), estimate. The sds are in :meth:`varcorr` (lme4's layout)."""
        from .design import covstruct
        rows = []
        rp = self.structure_map
        if rp is not None:
            for t, st, sl in zip(self.terms, rp.structures, rp.slices):
                if st is None:
                    continue
                rho = covstruct.correlations(st, t.block.Q, self.structure_phi[sl])
                for name, v in zip(covstruct.parameter_names(st, t.block.Q), rho):
                    rows.append((t.group, st, name, float(v)))
        if self.residual_corr is not None:
            rc = self.residual_corr
            if rc.kind == "unstr":
                from .design.unstr import cortime_pairs
                from .results.naming import cortime_name
                for (a, b), v in zip(cortime_pairs(rc.T), np.asarray(self.residual_rho)):
                    rows.append(("Residual", "unstr", cortime_name(rc.times[a], rc.times[b]),
                                 float(v)))
            else:
                rows.append(("Residual", rc.kind, rc.parameter_name(),
                             float(self.residual_rho)))
        return pd.DataFrame(rows, columns=["grp", "structure", "parameter", "estimate"])

    @property
    def AIC(self) -> float:
        return self.objective + 2 * self.n_params

    @property
    def BIC(self) -> float:
        return self.objective + math.log(self.nobs) * self.n_params

    @property
    def ngrps(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.terms:
            out.setdefault(t.group, len(t.levels))
        return out

    @property
    def is_singular(self) -> bool:
        """Some variance on the boundary (lme4's ``isSingular``, tol 1e-4 on diagonal θ)."""
        return bool(np.any(self._lam.is_diagonal & (self.theta.to_numpy() < 1e-4)))

    @property
    def lambda_factor(self) -> LambdaFactor:
        """Λ(θ)'s layout (one template T per block and by-level)."""
        return self._lam

    @property
    def _lam(self) -> LambdaFactor:
        return LambdaFactor([t.layout for t in self.terms])

    #: formulaic column → lme4 name (``f[T.b]`` → ``fb``), for code that names columns like lme4
    column_name = staticmethod(lme4_name)

    def refit(self, reml: bool | None = None) -> "LmerFit":
        """The same model refitted to the same data, by REML or ML (default: as this fit),
        started at this fit's θ (lme4's ``refitML`` for ``reml=False``)."""
        if self.data is None:
            raise ValueError("refitting needs the fitted data (fit.data is None)")
        return lmer(self.formula, self.data, reml=self.reml if reml is None else reml,
                    start=self.theta.to_numpy(), data_name=self.data_name,
                    weights=self.weights_arg, data2=self.data2)

    def penalized_ls(self) -> PenalizedLS:
        """The penalized least-squares system of this fit (X, y, Z, Λ(θ) layout), for
        re-evaluating the deviance, β̂(θ) and vcov at other θ (inference, profiles, bootstrap)."""
        if "pls" not in self._cache:
            self._cache["pls"] = _penalized_ls(self.design.X, self.design.y[:, 0], self.terms,
                                               self._lam, weights=self.weights)
        return self._cache["pls"]

    # -- inference (mixedformula.inference) ------------------------------------------------------
    def coef_table(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Fixed effects with lmerTest's columns Estimate, Std. Error, df, t value, Pr(>|t|):
        ``ddf="satterthwaite"`` (lmerTest's default), ``"kenward-roger"`` (pbkrtest; REML fits
        only) or ``"none"`` (lme4's Estimate, Std. Error, t value)."""
        from .inference.coef_table import coef_table
        if str(ddf).lower() not in ("none", "lme4"):
            self._structure_refusal(f"ddf={ddf!r}")
        return coef_table(self, ddf)

    def _structure_refusal(self, what: str) -> None:
        """Inference that differentiates or refits in θ does not know the ar1/cs/toep
        constraints (θ = θ(φ)): refused for such fits rather than answered for the
        unstructured model."""
        if self.structure_map is not None or self.residual_corr is not None:
            raise NotImplementedError(f"{what} is not implemented for lmer fits with ar1(), "
                                      f"cs(), toep() terms or ar()/cosy()/unstr() residuals; use "
                                      f"ddf='none' / method='wald'")

    def _known_cov_refusal(self, what: str) -> None:
        """What simulates or summarises b level by level (the bootstrap, Nakagawa's R²) does
        not know gr(cov = A): refused rather than answered for independent levels."""
        if any(t.block.cov_factor is not None for t in self.terms):
            raise NotImplementedError(f"{what} is not implemented for lmer fits with "
                                      f"gr(cov = ...) terms")

    def confint(self, method: str = "profile", level: float = 0.95, **kwargs) -> pd.DataFrame:
        """Confidence intervals like lme4's ``confint.merMod``: rows ``.sig01``, …, ``.sigma``
        and the fixed effects; ``method="profile"`` (likelihood profile), ``"wald"`` (fixed
        effects only, NaN for the variance parameters) or ``"boot"`` (parametric bootstrap
        percentiles; ``nsim``, ``seed``)."""
        from .inference.confint import confint
        if method != "wald":
            self._structure_refusal(f"confint(method={method!r})")
        if method == "boot":
            self._known_cov_refusal("the parametric bootstrap")
        return confint(self, method=method, level=level, **kwargs)

    def bootstrap(self, nsim: int = 1000, seed=None, workers: int | None = None) -> pd.DataFrame:
        """Parametric bootstrap (lme4's ``bootMer``, MixedModels.jl's ``parametricbootstrap``):
        one row per replicate, columns θ, σ, the fixed effects and lme4's ``.sig01``… scale."""
        from .inference.bootstrap import bootstrap
        self._structure_refusal("the parametric bootstrap")
        self._known_cov_refusal("the parametric bootstrap")
        return bootstrap(self, nsim=nsim, seed=seed, workers=workers)

    # -- tables --------------------------------------------------------------------------------
    def fixef(self) -> pd.DataFrame:
        """Estimate and Std. Error per fixed coefficient (lme4 names), plus t value."""
        se = np.sqrt(np.diag(self.vcov_beta))
        return pd.DataFrame({"Estimate": self.beta, "Std. Error": se,
                             "t value": self.beta / se},
                            index=pd.Index(self.fixef_names, dtype=object))

    def vcov(self) -> pd.DataFrame:
        """σ̂² (L_X L_Xᵀ)⁻¹, the covariance matrix of β̂."""
        return pd.DataFrame(self.vcov_beta, index=self.fixef_names, columns=self.fixef_names)

    def _components(self):
        """(grp label, coef names, Σ) per reported covariance block, lme4's order and names."""
        lam, comps = self._lam, []
        s2 = self.sigma ** 2
        theta = self.theta.to_numpy()
        for k, t in enumerate(self.terms):
            Ts = lam.templates(theta, k)
            for label, T in zip(t.block_labels(), Ts):
                S = s2 * T @ T.T
                if t.correlated or len(t.coefs) == 1:
                    comps.append([label, list(t.coefs), S])
                else:
                    for c, name in enumerate(t.coefs):
                        comps.append([label, [name], S[c:c + 1, c:c + 1]])
        for comp, name in zip(comps, make_unique([c[0] for c in comps])):
            comp[0] = name
        return comps

    def varcorr(self) -> pd.DataFrame:
        """Like R's ``as.data.frame(VarCorr(fit))``: grp, var1, var2, vcov, sdcor.

        Per block the standard deviations first, then the correlations (lower triangle, column
        by column: (1,2), (1,3), …, (2,3), …), the Residual row last; var2 is None on sd rows.
        """
        rows = []
        for grp, names, S in self._components():
            sd = np.sqrt(np.diag(S))
            for i, n in enumerate(names):
                rows.append((grp, n, None, S[i, i], sd[i]))
            for j in range(len(names)):
                for i in range(j + 1, len(names)):
                    den = sd[i] * sd[j]
                    cor = S[i, j] / den if den > 0 else float("nan")
                    rows.append((grp, names[j], names[i], S[i, j], cor))
        rows.append(("Residual", None, None, self.sigma ** 2, self.sigma))
        cols = list(zip(*rows))
        data = {name: pd.Series(np.array(vals, dtype=object), dtype=object)
                for name, vals in zip(["grp", "var1", "var2"], cols[:3])}
        data["vcov"] = np.array(cols[3], dtype=float)
        data["sdcor"] = np.array(cols[4], dtype=float)
        return pd.DataFrame(data)

    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes b̂ per grouping factor: DataFrame levels × coefficients.

        Terms of the same factor (``(1 | g) + (0 + x | g)``, ``||``) are joined column-wise,
        as lme4's ``ranef`` does."""
        out: dict[str, pd.DataFrame] = {}
        for t, b in zip(self.terms, self.b):
            df = pd.DataFrame(b, index=pd.Index(t.levels, dtype=object, name=t.group),
                              columns=pd.Index(t.coefs, dtype=object))
            if t.group in out:
                prev = out[t.group]
                dup = [c for c in df.columns if c in prev.columns]
                df = df.rename(columns={c: f"{c}.1" for c in dup})
                joined = prev.join(df, how="outer")
                joined.columns = pd.Index(list(joined.columns), dtype=object)
                joined.index = pd.Index(list(joined.index), dtype=object, name=t.group)
                out[t.group] = joined
            else:
                out[t.group] = df
        return out

    def fitted(self) -> np.ndarray:
        """Xβ̂ + Zb̂ (+ the offset) for the fitted rows."""
        self.need_rows("fitted values")
        eta = self.design.X @ self.beta
        for t, b in zip(self.terms, self.b):
            eta = eta + np.einsum("nq,nq->n", t.X, b[t.codes])
        return eta if self.offset is None else eta + self.offset

    def linear_predictor_parts(self, newdata=None, re_formula=None):
        """(X, Zb̂) of the rows of ``newdata`` (default: the fitted rows): η = Xβ̂ + Zb̂.

        ``re_formula=None`` uses the conditional modes b̂ of seen levels (new levels and missing
        group values get b = 0, lme4's ``allow.new.levels = TRUE``); ``"NA"``/``"~0"``: Zb̂ = 0.
        """
        design = self.design if newdata is None else self.design.spec.transform(newdata)
        X = np.asarray(design.fixed(0)[0] if newdata is not None else design.X, dtype=float)
        off = np.zeros(X.shape[0])
        text = None if re_formula is None else str(re_formula).strip()
        if text is not None:
            rhs = text.split("~", 1)[-1].strip()
            if rhs.upper() in ("NA", "0", "-1", ""):
                return X, off
            raise MixedFormulaError("re_formula for lmer fits is None (all group terms) or "
                                    "'NA' / '~0' (none)")
        terms = self.terms if newdata is None else _lmer_terms(design)
        for t, tf, b in zip(terms, self.terms, self.b):
            if t.group != tf.group:
                raise MixedFormulaError("internal: group terms of new data out of order")
            codes = np.asarray(t.codes)
            ok = (codes >= 0) & (codes < b.shape[0])
            bb = np.zeros((len(codes), b.shape[1]))
            bb[ok] = b[codes[ok]]
            off = off + np.einsum("nq,nq->n", np.asarray(t.X, dtype=float), bb)
        return X, off

    def need_rows(self, what: str) -> None:
        """Raise a clear error when ``what`` needs the fitted rows and this fit has none (a
        Dask fit is made from cross-products)."""
        if not getattr(self.design, "rows_in_memory", True):
            raise DataError(
                f"{what} needs the rows of the data, and this fit was made from the "
                "cross-products of a Dask DataFrame without them; fit in memory "
                "(mf.lmer(formula, data.compute())) if the rows fit")

    def residuals(self) -> np.ndarray:
        self.need_rows("residuals")
        # design.y is y - offset (lmer's working response, see lmer())
        return self.design.y[:, 0] - (self.fitted() if self.offset is None
                                      else self.fitted() - self.offset)

    # -- printing ------------------------------------------------------------------------------
    def summary(self, ddf: str | None = None) -> str:
        """Text like lme4's ``summary(lmer(...))``; with ``ddf="satterthwaite"`` or
        ``"kenward-roger"`` like lmerTest's (fixed effects with df and p-values)."""
        lines = []
        how = "REML " if self.reml else "maximum likelihood  "
        coefs = None
        if ddf is not None and ddf.lower() not in ("none", "lme4"):
            self._structure_refusal(f"ddf={ddf!r}")
            from .inference.coef_table import coef_table, method_name
            coefs = coef_table(self, ddf)
            lines.append(f"Linear mixed model fit by {how.rstrip()}. t-tests use "
                         f"{method_name(ddf)} method ['lmerModLmerTest']")
        else:
            lines.append(f"Linear mixed model fit by {how}['lmerMod']")
        lines.append(f"Formula: {self.formula}")
        if self.data_name:
            lines.append(f"   Data: {self.data_name}")
        lines.append("")
        if self.reml:
            lines.append(f"REML criterion at convergence: {round(self.objective, 1)}")
        else:
            lines += information_lines(self, self.objective)
        lines.append("")
        if getattr(self.design, "rows_in_memory", True):
            res = (self.residuals() / self.sigma if self.sigma > 0
                   else np.full(self.nobs, np.nan))      # σ = 0: no residual variation
            if self.weights is not None:                 # lme4: Pearson residuals √a (y − ŷ) / σ
                res = res * np.sqrt(self.weights)
            qs = np.quantile(res, [0, 0.25, 0.5, 0.75, 1.0])
            zap = max(0, 5 - int(math.ceil(math.log10(np.max(np.abs(qs)))))) \
                if np.any(qs) and np.all(np.isfinite(qs)) else 5
            qstr = r_format(np.round(qs, zap), 4)
            lines += residual_lines(qstr)
        else:
            lines.append("Scaled residuals: not computed (fitted from the cross-products of a "
                         "Dask DataFrame)")
        lines.append("")
        lines.append("Random effects:")
        lines += self._random_effects_table()
        lines += self._structure_lines()
        groups = "; ".join(f"{g}, {n}" for g, n in self.ngrps.items())
        lines.append(f"Number of obs: {self.nobs}, groups:  {groups}")
        lines.append("")
        lines.append("Fixed effects:")
        if coefs is not None:
            from .inference.coef_table import format_coef_table
            lines += format_coef_table(coefs, r_format)
        else:
            lines += self._fixed_effects_table()
        if self.is_singular:
            lines.append("boundary (singular) fit: see help('isSingular')")
        if not self.optimizer.get("converged", True):
            lines.append(f"optimizer did not converge: {self.optimizer.get('message')}")
        return "\n".join(lines)

    #: the variance table ends with lme4's ``Residual`` row (not for glmer: no residual scale)
    residual_row = True

    def _structure_lines(self) -> list[str]:
        """The structured G and R under the variance table: ``Known covariance: phylo ~ A
        (30 x 30 across levels)``, ``Structure: group ar1(4 x 4), rho = 0.660``,
        ``Residual structure: ar, ar[1] = 0.607``."""
        cp = self.corpars()
        out = []
        for t in self.terms:
            if t.block.cov_factor is not None:
                name = self.design.terms[t.block.parts[0].term].term.cov
                out.append(f"Known covariance: {t.group} ~ {name} ({t.block.J} x {t.block.J} "
                           f"across levels)")
        for grp, rows in cp.groupby("grp", sort=False):
            if grp == "Residual":
                pars = ", ".join(f"{p} = {v:.3f}" for p, v in zip(rows.parameter,
                                                                   rows.estimate))
                out.append(f"Residual structure: {rows.structure.iloc[0]}, {pars}")
                from .results.structures import residual_structure
                view = residual_structure(self)
                if view is not None:
                    out += view.lines()
                continue
            t = next(t for t in self.terms if t.group == grp and t.block.structure)
            pars = ", ".join(f"{p} = {v:.3f}" for p, v in zip(rows.parameter, rows.estimate))
            out.append(f"Structure: {grp} {rows.structure.iloc[0]}({t.block.Q} x "
                       f"{t.block.Q}), {pars}")
        return out

    def _random_effects_table(self) -> list[str]:
        """Groups / Name / Variance / Std.Dev. / Corr, as lme4's ``VarCorr`` print."""
        comps = self._components()
        names, groups, sds, cors = [], [], [], []
        maxq = max(len(c[1]) for c in comps)
        for grp, coefs, S in comps:
            sd = np.sqrt(np.diag(S))
            for i, c in enumerate(coefs):
                groups.append(grp if i == 0 else "")
                names.append(c)
                sds.append(sd[i])
                row = []
                for j in range(i):
                    den = sd[i] * sd[j]
                    row.append(S[i, j] / den if den > 0 else float("nan"))
                cors.append(row)
        if self.residual_row:
            groups.append("Residual")
            names.append("")
            sds.append(self.sigma)
            cors.append([])
        sds = np.array(sds)
        var_s = r_format(sds ** 2, 4)
        sd_s = r_format(sds, 4)
        cols = [("Groups", groups, "l"), ("Name", names, "l"), ("Variance", var_s, "l"),
                ("Std.Dev.", sd_s, "l")]
        for j in range(maxq - 1):
            col = [(f"{r[j]:.2f}" if j < len(r) else "") for r in cors]
            width = max(len(s) for s in col if s) if any(col) else 0
            col = [s.rjust(width) for s in col]
            cols.append(("Corr" if j == 0 else "", col, "l"))
        return _table(cols)

    # -- answers (results/emmeans.py, results/nakagawa.py) -------------------------------------
    def _emm_source(self, ddf: str = "auto"):
        """β̂, Var(β̂) and the df of emmeans' ``lmer.df``: ``"asymptotic"`` (∞),
        ``"satterthwaite"`` or ``"kenward-roger"`` (V the KR-adjusted covariance);
        ``"auto"`` as emmeans' defaults: Kenward–Roger for REML fits of at most 3000 rows
        (``pbkrtest.limit``), else Satterthwaite up to 3000 rows (``lmerTest.limit``), else
        asymptotic."""
        from .results.emmeans import FreqSource
        if ddf == "auto":       # (KR is not available with prior weights)
            ddf = "asymptotic" if self.nobs > 3000 else \
                "kenward-roger" if self.reml and self.weights is None else "satterthwaite"
        if ddf == "asymptotic":
            return FreqSource(self.design, self.data, self.beta, self.vcov_beta)
        from .inference.coef_table import ddf_method, tester
        try:
            method = ddf_method(ddf)
        except ValueError:
            method = None
        if method not in ("satterthwaite", "kenward-roger"):
            raise MixedFormulaError(f"ddf must be 'asymptotic', 'satterthwaite' or "
                                    f"'kenward-roger', not {ddf!r}")
        t = tester(self, method)
        vcov = t.vcov_adj if method == "kenward-roger" else self.vcov_beta
        return FreqSource(self.design, self.data, self.beta, vcov,
                          df=lambda L: np.array([t.df(row) for row in np.atleast_2d(L)]))

    def emmeans(self, specs, by=None, at: dict | None = None, type: str = "link",
                level: float = 0.95, ddf: str = "auto"):
        """emmeans' ``emmeans()``: columns ``emmean``, ``SE``, ``df``, ``lower.CL``,
        ``upper.CL`` (``asymp.LCL``/``asymp.UCL`` for ``ddf="asymptotic"``, df = ∞); ``ddf``:
        ``"kenward-roger"``, ``"satterthwaite"``, ``"asymptotic"`` or ``"auto"`` (emmeans'
        default rule, :meth:`_emm_source`); ``.pairs(adjust="tukey" | "holm" | "none")`` on the
        result."""
        from .results.emmeans import emm_table
        return emm_table(self._emm_source(ddf), specs, by, at, type, None, level)

    def emtrends(self, specs, var: str, by=None, at: dict | None = None, level: float = 0.95,
                 ddf: str = "auto"):
        """emmeans' ``emtrends()`` (``<var>.trend``, ``SE``, ``df``, CLs)."""
        from .results.emmeans import emm_table
        return emm_table(self._emm_source(ddf), specs, by, at, "link", var, level)

    def predictions(self, newdata=None, grid=None, by=None, re_formula=None,
                    conf_level: float = 0.95):
        """marginaleffects' ``predictions()`` with delta-method ``std.error`` (see
        :mod:`mixedformula.results.marginaleffects`)."""
        from .results.marginaleffects import lmer_predictions
        return lmer_predictions(self, newdata, grid, by, re_formula, conf_level)

    def comparisons(self, variable: str, contrast="+1", newdata=None, grid=None, by=None,
                    re_formula=None, conf_level: float = 0.95):
        """marginaleffects' ``comparisons()`` with delta-method ``std.error``."""
        from .results.marginaleffects import lmer_comparisons
        return lmer_comparisons(self, variable, contrast, newdata, grid, by, re_formula,
                                conf_level)

    def slopes(self, variable: str, newdata=None, grid=None, by=None, re_formula=None,
               conf_level: float = 0.95, eps=None):
        """marginaleffects' ``slopes()`` (centred difference) with delta-method ``std.error``."""
        from .results.marginaleffects import lmer_slopes
        return lmer_slopes(self, variable, newdata, grid, by, re_formula, conf_level, eps)

    def r2(self) -> dict:
        """Nakagawa's marginal and conditional R² (``performance::r2_nakagawa``)."""
        from .results.nakagawa import r2_nakagawa
        self._known_cov_refusal("Nakagawa's R²")
        return r2_nakagawa(self)

    def _fixed_effects_table(self) -> list[str]:
        fe = self.fixef()
        est_se = r_format(np.concatenate([fe["Estimate"], fe["Std. Error"]]), 4)
        p = len(fe)
        tval = r_format(np.round(fe["t value"].to_numpy(), 3), 4)
        cols = [("", list(fe.index), "l"), ("Estimate", est_se[:p], "r"),
                ("Std. Error", est_se[p:], "r"), ("t value", tval, "r")]
        return _table(cols, lead="")

    def __str__(self) -> str:
        return self.summary()

    # -- conditional variances and the HTML report ---------------------------------------------
    def condvar(self):
        """Conditional modes with their conditional variances per random-effects term (lme4's
        ``ranef(fit, condVar = TRUE)`` and its ``postVar``): a list of
        :class:`~mixedformula.inference.condvar.CondVar` (``.modes`` J × q, ``.var`` J × q × q,
        ``.sd``, ``.frame()``), in lme4's term order."""
        from .inference.condvar import conditional_variances
        return conditional_variances(self)

    def report(self, path) -> str:
        """Write the self-contained HTML report of this point-estimate fit to ``path``
        (:mod:`mixedformula.report.point`); returns the path."""
        from .report import write_report
        return write_report(self, path)


def r_format(values, digits: int) -> list[str]:
    """R's ``format(x, digits = d)`` for a numeric vector: as many decimals as the element that
    needs most to show ``d`` significant digits (trailing zeros dropped), common width."""
    x = np.asarray(values, dtype=float)
    dec = 0
    for v in x[np.isfinite(x) & (x != 0)]:
        mant, exp = f"{abs(v):.{digits - 1}e}".split("e")
        sig = len(mant.replace(".", "").rstrip("0")) or 1
        dec = max(dec, sig - 1 - int(exp))
    dec = min(dec, 15)
    out = [("NaN" if np.isnan(v) else f"{v:.{dec}f}") for v in x]
    width = max((len(s) for s in out), default=0)
    return [s.rjust(width) for s in out]


def _table(cols, lead: str = " ") -> list[str]:
    """Columns (header, cells, align) → lines, one space between columns."""
    widths = [max([len(h)] + [len(c) for c in cells]) for h, cells, _ in cols]
    def fmt(s, w, a):
        return s.ljust(w) if a == "l" else s.rjust(w)
    n = len(cols[0][1])
    head = lead + " ".join(fmt(h, w, a if h else "l") for (h, _, a), w in zip(cols, widths))
    lines = [head]
    for i in range(n):
        lines.append(lead + " ".join(fmt(c[i], w, a) for (_, c, a), w in zip(cols, widths)))
    return lines


# -- building the fit ------------------------------------------------------------------------------
def _lmer_terms(design: Design) -> list[_Term]:
    spec = design.spec
    terms = []
    for block in covariance_blocks(design):
        coefs = [c for k in block.terms for c in _lme4_names(
            spec.term_specs[k], design.terms[k].coef_names, getattr(spec, "columns", ()))]
        codes, X = block.columns(design)
        terms.append(_Term(block=block, coefs=coefs, X=X, codes=codes))
    # lme4 (mkReTrms): terms ordered by decreasing number of levels, stable
    order = sorted(range(len(terms)), key=lambda k: -len(terms[k].levels))
    return [terms[k] for k in order]


def _penalized_ls(X, y, terms: list[_Term], lam: LambdaFactor, weights=None):
    """lme4's penalized least-squares system of the terms: :class:`PenalizedLS` (blocked,
    one level per row, prior ``weights``), or with a ``gr(cov = A)`` term the dense system in
    Z* = Z (L_A ⊗ I) (:mod:`mixedformula.linalg.dense_pls`)."""
    if any(t.block.cov_factor is not None for t in terms):
        if weights is not None:
            raise NotImplementedError("weights with gr(cov = ...) terms are not supported by "
                                      "lmer")
        from .linalg.dense_pls import DensePLS
        return DensePLS(X, y, [(t.X, t.codes, t.block.cov_factor) for t in terms], lam)
    return PenalizedLS(X, y, [(t.X, t.codes) for t in terms], lam, weights=weights)


def _structure_map(terms: list[_Term], lam: LambdaFactor):
    """The φ → θ map of glmmTMB-structured terms (:mod:`mixedformula.design.covstruct`), or
    None when no term is structured."""
    from .design.covstruct import PARAMETRISED, StructuredTheta
    structures = [t.block.structure if t.block.structure in PARAMETRISED else None
                  for t in terms]
    if not any(structures):
        return None
    for t, st in zip(terms, structures):
        if st is not None and (t.block.by_levels is not None or t.block.cov_factor is not None):
            raise NotImplementedError(f"{st}() with gr(by = ...) or gr(cov = ...) is not "
                                      f"supported")
    return StructuredTheta([t.layout for t in terms], structures, lam.lower)


def _theta_names(terms: list[_Term]) -> list[str]:
    names = []
    for t in terms:
        rows, cols = t.layout.entries
        for label in t.block_labels():
            for r, c in zip(rows, cols):
                names.append(f"{label}.{t.coefs[r]}" if r == c
                             else f"{label}.{t.coefs[r]}.{t.coefs[c]}")
    return names


def _check(design: Design) -> None:
    refusal = reml_refusal(design)
    if refusal is not None:
        raise refusal
    ids = [t.term.id for t in design.terms if t.term.id is not None]
    if len(ids) != len(set(ids)):
        raise NotImplementedError("group terms sharing an ID (|p|, gr(id=)) correlate "
                                  "coefficients across terms; lmer does not support that yet")
    n, p = design.X.shape
    if p and np.linalg.matrix_rank(design.X) < p:
        raise DataError(f"the fixed-effects model matrix is rank deficient "
                        f"(rank {np.linalg.matrix_rank(design.X)} < {p} columns: "
                        f"{', '.join(design.X_names)}); drop the aliased terms")
    if n <= p:
        raise DataError(f"{n} observations are not enough for {p} fixed effects")


def _gradient(fun, x: np.ndarray, f0: float, lower: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central differences (second-order one-sided ones next to a lower bound)."""
    g = np.empty_like(x)
    for i in range(len(x)):
        hi = h * max(1.0, abs(x[i]))
        e = np.zeros_like(x)
        e[i] = hi
        if x[i] - hi >= lower[i]:
            g[i] = (fun(x + e) - fun(x - e)) / (2 * hi)
        else:
            g[i] = (-3 * f0 + 4 * fun(x + e) - fun(x + 2 * e)) / (2 * hi)
    return g


def _bobyqa(f, x0: np.ndarray, lower: np.ndarray, ftol: float = 1e-8):
    """nlopt's BOBYQA from x0 with lower bounds: (x, f(x), message). Initial trust-region
    radius minqa's (lme4's ``bobyqa``) rhobeg = min(0.95, 0.2 max|x0|); stops when a step
    changes the deviance by less than ``ftol`` (10⁻⁸, lme4's nloptwrap value) or every θ by
    less than 1e-10. The last digits come from the L-BFGS-B polish that follows every BOBYQA
    search in :func:`_optimize`: on kb07 zero-correlation, ftol 10⁻¹⁰ cost 727 + 290
    evaluations (first search, confirming restart) against 494 + 279 at 10⁻⁸, and the polished
    deviances agree to 2·10⁻⁹. A non-finite deviance is passed on as 10³⁰⁰ (a region BOBYQA's
    model then avoids)."""
    import nlopt
    n = len(x0)
    seen = {"x": np.array(x0, dtype=float), "f": math.inf}

    def obj(x, grad):
        v = f(x)
        if v < seen["f"]:
            seen["x"], seen["f"] = np.array(x), v
        return v if np.isfinite(v) else 1e300

    opt = nlopt.opt(nlopt.LN_BOBYQA, n)
    lo = np.where(np.isfinite(lower), lower, -np.inf)
    opt.set_lower_bounds(lo)
    opt.set_min_objective(obj)
    opt.set_initial_step(min(0.95, 0.2 * max(float(np.max(np.abs(x0), initial=0.0)), 1e-3)))
    opt.set_ftol_abs(ftol)
    opt.set_xtol_abs(1e-10)
    opt.set_maxeval(max(1000, 200 * n * n))
    try:
        opt.optimize(np.maximum(x0, lo))
        msg = {nlopt.FTOL_REACHED: "ftol reached", nlopt.XTOL_REACHED: "xtol reached",
               nlopt.MAXEVAL_REACHED: "evaluation limit reached"}.get(
            opt.last_optimize_result(), f"nlopt code {opt.last_optimize_result()}")
    except nlopt.RoundoffLimited:
        msg = "stopped by roundoff"
    return seen["x"], seen["f"], msg


def _search_method(lam: LambdaFactor) -> str:
    """The one rule choosing the first optimiser of :func:`_optimize`: ``"BOBYQA"`` when Λ is
    diagonal and some term has several coefficients (zero-correlation ``(1 + x + … || g)``
    terms), ``"L-BFGS-B"`` otherwise.

    Why: fits of zero-correlation vector terms typically end with several variances at 0
    (kb07-shaped: 10 of 16), and at θ_i = 0 the deviance is stationary in θ_i (it depends on
    θ_i² only), so L-BFGS-B stops there and needs the one-entry probes of :func:`_optimize`
    (4 evaluations per zero entry per round: 397 of 2141 evaluations on kb07, plus a gradient
    search after each improving probe); BOBYQA is not held there (kb07 zero-correlation:
    657 evaluations to within 5·10⁻⁸ of lme4's best deviance). With correlated terms (and
    for scalar terms) L-BFGS-B with the exact gradient needs fewer evaluations (kb07-small
    maximal: 120 evaluation-equivalents against BOBYQA's 424, benchmarks/README.md) and a
    maximal crossed model starts at the zero-correlation optimum."""
    vector_zc = any(t.q > 1 and not t.correlated for t in lam.terms)
    return "BOBYQA" if vector_zc and bool(np.all(lam.is_diagonal)) else "L-BFGS-B"


#: BOBYQA's absolute deviance tolerance in :func:`lmer` when an exact gradient polishes its
#: result (L-BFGS-B, :func:`_optimize`): BOBYQA only has to bring the search near the optimum
#: without being held at a zero variance; the last digits are the polish's. kb07-shaped
#: zero-correlation (16 θ, ML; benchmarks/README.md, 2026-12-03): 10⁻⁸ → 10⁻² cut the fit from
#: 864 to 335 evaluations with the same deviance (28642.8153618364, lme4's best to 2·10⁻¹¹),
#: and on twelve simulated kb07-shaped data sets (random zero/non-zero variances) the logLik
#: equals the 10⁻⁸ fit's to ≤ 1.4·10⁻⁹ (751–1499 → 261–438 evaluations); kb07-small the same.
#: What it gives up: BOBYQA then stops early (kb07: after 65 evaluations, 90 deviance units
#: above the optimum) and the search is mostly L-BFGS-B's, which can stop at a zero variance
#: (kb07: at 28642.890); the one-entry probes and the interior restarts find the way out, and
#: unconfirmed fits get Nelder–Mead as after L-BFGS-B searches (:func:`_optimize`).
BOBYQA_POLISHED_FTOL = 1e-2

#: cost of one exact-gradient call in deviance evaluations (measured on kb07-shaped crossed
#: models: 9.9 ms against 3.4 ms per evaluation), for the Nelder–Mead budget of :func:`_optimize`
GRAD_COST = 3


def _optimize(fun, x0, lower, restarts: int = 2, one_thread: bool = True,
              fun_grad=None, interior_starts=None, boundary_tol: float = 1e-4,
              method: str = "L-BFGS-B", agree: float = 1e-10,
              log_scale: bool = False, bobyqa_ftol: float = 1e-8) -> dict:
    """Minimise the profiled deviance over θ with bounds (diagonals of T ≥ 0).

    ``method="L-BFGS-B"``: L-BFGS-B (scipy) with central-difference gradients (or the exact
    ones of ``fun_grad(x)`` → (f, ∇f), where it returns not None) from lme4's start, restarted
    from its result (a fresh quasi-Newton model) until the deviance stops improving.
    ``method="BOBYQA"`` (:func:`_search_method` says when): every search below is first
    nlopt's derivative-free BOBYQA (lme4's default optimiser, ``nloptwrap``; bounded quadratic
    models over a trust region, so not held at a zero variance by the θ² symmetry below), its
    result then polished by the same L-BFGS-B (and its boundary probes). BLAS is limited to
    one thread meanwhile: the problems are tiny and OpenBLAS' thread start-up would dominate.
    ``log_scale`` (every θ a scale with lower bound 0, exact gradient: scalar terms) puts a
    first L-BFGS-B phase in log θ before each L-BFGS-B search (``log_lbfgsb`` below).
    ``bobyqa_ftol``: BOBYQA's absolute deviance tolerance (looser for a mere start, or where
    the exact gradient polishes: :data:`BOBYQA_POLISHED_FTOL`; above 10⁻⁶ the searches count
    as gradient searches for the Nelder–Mead check below).

    Boundary escape: a diagonal entry c of T at 0 is a stationary point of the deviance in c
    (T Tᵀ depends on c², e.g. Σ₂₂ = b² + c² for q = 2), so a gradient method can stop there
    although the deviance decreases into the interior. Each diagonal entry at its bound is
    therefore probed at c = 10⁻³ … 1 (times the scale of its term), and the search restarted
    from the best probe while that improves the deviance.

    Boundary check: probing one entry at a time is not enough when the way into the interior
    moves several entries together (3 × 3 correlated terms: sleepstudy's quadratic model stopped
    at a zero diagonal 11.4 deviance units above lme4's interior optimum). So whenever the
    result has a diagonal θ below ``boundary_tol`` (lme4's ``isSingular`` tolerance, so every
    fit reported singular has been checked), the search is repeated

    1. by the same search (L-BFGS-B, or BOBYQA + L-BFGS-B) from ``interior_starts(x)``
       (interior points near x, e.g. the Cholesky factors of Σ + ε·tr(Σ)/q·I per template),
       one after another until the lowest deviance found so far has been reached by two runs
       from different starts (equal to ``agree`` relative, 10⁻¹⁰: 3·10⁻⁶ on kb07's deviance;
       the restarts that agree end within 10⁻¹⁰ absolute in practice, below), and
    2. after L-BFGS-B searches (gradient-based, the ones that stop at such points; also after
       BOBYQA searches with ``bobyqa_ftol`` > 10⁻⁶, mostly L-BFGS-B then), when the
       restarts did not confirm a result that way, by a second, derivative-free optimiser,
       scipy's Nelder–Mead (bounded, adaptive; one of lme4's optimisers), from the first
       interior start, its result polished by L-BFGS-B (at most twice the cost of the first
       search in evaluations, an exact gradient counted as :data:`GRAD_COST`, and at least
       min(50 per θ, 500); so a large model's singular fit costs a few times its first
       search, not more);

    the lowest deviance of all runs wins, so a boundary (singular) fit is only reported when no
    run found a better interior one.

    Why stopping at two agreeing runs still detects a false boundary optimum: a false stop is
    a point where a search ended although a lower deviance is reachable; any restart that
    reaches lower replaces it and resets the count, so the result is accepted only when a
    search from an interior start (every variance positive, correlations shrunk; not the
    first search's start) ends at the same lowest deviance as another run — i.e. the interior
    start, which is not held at the boundary by the θ² symmetry, descended to it. Further
    restarts from the same family of starts (ε = 1, 0.1, T = I) then mostly repeat that descent
    (kb07 zero-correlation: the second restart ended at the first one's deviance to 10⁻¹¹,
    kb07 maximal: the second and third within 5·10⁻¹¹ of the first restart, Nelder–Mead at the
    same value; benchmarks/README.md) and cost as much as the first search each. A first stop
    that no restart confirms (they end lower, or higher, each differently) gets every restart
    and, after L-BFGS-B, Nelder–Mead, as before. What this gives up: a restart that slides
    back into the first search's false stop now confirms it, where the later restarts and
    Nelder–Mead were further chances to escape; hence the start deepest in the interior
    (ε = 1) goes first (tests/test_lmer_lme4_checks.py: a synthetic θ²-symmetric false
    boundary, found by the restart; and the unconfirmed case, which still gets every check).
    ``checks`` in the result lists (run, deviance) of each.
    """
    lower = np.asarray(lower, dtype=float)
    bounded = np.isfinite(lower)
    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    nfev = [0]
    ngrad = [0]
    # the last (f, ∇f) by the bytes of x: L-BFGS-B asks again for points it has (the start of
    # each restart, its line search at the end; MovieLens-shaped: 4 of 19 calls)
    seen: dict[bytes, tuple] = {}

    def f(x):
        key = np.asarray(x, dtype=float).tobytes()
        if key in seen:
            return seen[key][0]
        nfev[0] += 1
        return fun(x)

    def fg(x):
        key = np.asarray(x, dtype=float).tobytes()
        if key in seen:
            f0, g = seen[key]
            return f0, g.copy()
        if fun_grad is not None:
            out = fun_grad(x)
            if out is not None:
                nfev[0] += 1
                ngrad[0] += 1
                f0, g = out
                for i in np.nonzero(np.isnan(g))[0]:
                    # an entry the exact gradient leaves out (at its bound): one-sided
                    # second-order difference
                    hi = 1e-5 * max(1.0, abs(x[i]))
                    e = np.zeros_like(x)
                    e[i] = hi
                    g[i] = (-3 * f0 + 4 * f(x + e) - f(x + 2 * e)) / (2 * hi)
                if len(seen) > 8:
                    seen.clear()
                seen[key] = (f0, g.copy())
                return f0, g
        f0 = f(x)
        if not np.isfinite(f0):
            return f0, np.zeros_like(x)
        return f0, _gradient(f, x, f0, lower)

    def lbfgsb(x, ftol=1e-13):
        """L-BFGS-B with restarts and the one-entry boundary probes: (x, f, message, nit).
        ``ftol``: the relative decrease per iteration at which L-BFGS-B stops (10⁻¹³: kb07
        maximal's runs converge linearly at the end, and 10⁻¹⁵ spent ~15 % more gradients
        for the last 3·10⁻⁹ of a deviance of 2.9·10⁴)."""
        x = np.asarray(x, dtype=float)
        best = f(x)
        message, nit = "", 0
        for _escape in range(1 + len(x)):
            for _ in range(1 + restarts):
                r = minimize(fg, x, jac=True, method="L-BFGS-B", bounds=bounds,
                             options=dict(ftol=ftol, gtol=1e-7, maxiter=5000, maxls=40))
                nit += r.nit
                message = r.message
                improved = r.fun < best - 1e-10
                if r.fun <= best:
                    x, best = r.x, r.fun
                if not improved:
                    break
            scale = max(1.0, float(np.max(np.abs(x), initial=0.0)))
            probes = []
            for i in np.nonzero(bounded & (x <= lower + 1e-6 * scale))[0]:
                for delta in (1e-3, 1e-2, 1e-1, 1.0):
                    xp = x.copy()
                    xp[i] = lower[i] + delta * scale
                    probes.append((f(xp), i, xp))
            good = [p for p in probes if p[0] < best - 1e-8]
            if not good:
                break
            best, _, x = min(good, key=lambda p: p[0])
        return x, best, str(message), nit

    def bobyqa(x):
        """BOBYQA, then L-BFGS-B from its result: (x, f, message, nit)."""
        x = np.where(bounded, np.maximum(np.asarray(x, dtype=float), lower), x)
        xb, fb, msg = _bobyqa(f, x, lower, ftol=bobyqa_ftol)
        xs, fs, message, nit = lbfgsb(xb)
        return (xs, fs, f"BOBYQA: {msg}; L-BFGS-B: {message}", nit) if fs <= fb \
            else (xb, fb, f"BOBYQA: {msg}", nit)

    def log_lbfgsb(x):
        """L-BFGS-B in s = log θ (unbounded but for θ ≥ e⁻²⁰), then :func:`lbfgsb` in θ from
        its result: (x, f, message, nit).

        Why: for scalar terms the profiled deviance is close to a function of the log variance
        ratios, badly scaled in θ where the variances differ (InstEval: θ ≈ (0.27, 0.44,
        0.046)); L-BFGS-B in θ overshoots onto the bound 0 three times (32 exact gradients,
        2.5 s) where the search in log θ needs 17 and the bounded polish 4 more. A true zero
        variance is left to the polish: s drifts down slowly, the θ-space search and its
        one-entry probes then put θ on the bound."""
        x = np.asarray(x, dtype=float)
        if not np.all(x > 0):
            return lbfgsb(x)

        def fs(z):
            th = np.exp(z)
            v, g = fg(th)
            return v, g * th

        r = minimize(fs, np.log(x), jac=True, method="L-BFGS-B",
                     bounds=[(-20.0, None)] * len(x),
                     options=dict(ftol=1e-12, gtol=1e-6, maxiter=5000, maxls=40))
        # the θ-space polish (bounds, probes) stops at a relative decrease of 10⁻¹², not
        # 10⁻¹⁵: at InstEval's deviance (2.4·10⁵, rounding ~3·10⁻¹¹) the tighter one spent 22
        # gradients on line searches within the rounding noise
        xs, fs_, message, nit = lbfgsb(np.exp(r.x), ftol=1e-12)
        return xs, fs_, message, nit + r.nit

    search = bobyqa if method == "BOBYQA" else (log_lbfgsb if log_scale else lbfgsb)

    def on_boundary(x):
        return bool(np.any(bounded & (x < lower + boundary_tol)))

    with one_blas_thread(one_thread):
        x, best, message, nit = search(x0)
        # cost of the first search in deviance evaluations (an exact gradient ≈ GRAD_COST)
        first_cost = nfev[0] + (GRAD_COST - 1) * ngrad[0]
        checks = [(method, float(best))]
        if interior_starts is not None and on_boundary(x):
            starts = [np.asarray(s, dtype=float) for s in interior_starts(x)]
            # runs (first search, restarts) whose deviance is the lowest so far, within `agree`
            confirmed = 1
            for s in starts:
                if confirmed >= 2:
                    break
                xs, fs, msg, it = search(s)
                nit += it
                checks.append((f"{method} from an interior start", float(fs)))
                tol = agree * max(1.0, abs(best))
                if fs < best - tol:
                    confirmed = 1           # the earlier best was a false stop: start anew
                elif fs <= best + tol:
                    confirmed += 1
                if fs < best - 1e-10:
                    x, best, message = xs, fs, msg
            if starts and confirmed < 2 and (method == "L-BFGS-B" or bobyqa_ftol > 1e-6):
                # (BOBYQA searches run to a tight tolerance: the interior restarts above are
                # already runs of a derivative-free optimiser, the check this one adds to
                # gradient searches; a loose BOBYQA is a short start for L-BFGS-B, so its
                # searches get it like L-BFGS-B's)
                # budget: twice the cost of the first search (at least 50 per θ up to 500)
                r = minimize(f, starts[0], method="Nelder-Mead", bounds=bounds,
                             options=dict(xatol=1e-6, fatol=1e-8, adaptive=True,
                                          maxfev=max(min(50 * (len(x) + 1), 500),
                                                     2 * first_cost)))
                xs, fs, msg, it = lbfgsb(np.where(bounded, np.maximum(r.x, lower), r.x))
                nit += it
                checks.append(("Nelder-Mead, polished by L-BFGS-B", float(fs)))
                if fs < best - 1e-10:
                    x, best, message = xs, fs, msg
    x = np.where(bounded, np.maximum(x, lower), x)
    # the convergence check: the exact gradient where there is one (≈ GRAD_COST evaluations
    # against 2 len(θ) + 1 for differences: 145 for the maximal kb07 model)
    out = fun_grad(x) if fun_grad is not None else None
    g = out[1] if out is not None and not np.any(np.isnan(out[1])) \
        else _gradient(fun, x, best, lower)
    free = ~(bounded & (x <= lower + 1e-10) & (g > 0))
    return {"x": x, "fun": best, "nfev": nfev[0], "nit": nit,
            "converged": bool(np.isfinite(best)), "message": str(message),
            "grad_norm": float(np.max(np.abs(g[free]), initial=0.0)), "checks": checks}


def _fun_grad(pls, reml: bool):
    """θ → (d, ∇d) or None for :func:`_optimize`; the blocked system leaves the entries at a
    zero bound to differences (NaN) instead of refusing the whole gradient."""
    if isinstance(pls, PenalizedLS):
        return lambda th: pls.deviance_and_gradient(th, reml, nan_at_zero=True)
    return lambda th: pls.deviance_and_gradient(th, reml)


def _zero_correlation_start(pls: PenalizedLS, lam: LambdaFactor, reml: bool) -> np.ndarray:
    """θ of the zero-correlation fit, the start of a maximal crossed model: the same deviance
    with every off-diagonal entry of T fixed at 0 (``(… || g)`` for each correlated term),
    minimised over the diagonal entries by L-BFGS-B with the exact gradient from lme4's start
    (no boundary checks: only a start)."""
    diag = lam.is_diagonal

    def full(z):
        th = np.zeros(lam.n_theta)
        th[diag] = z
        return th

    k = int(np.sum(diag))
    sub = LambdaFactor([dataclasses.replace(t, correlated=False) for t in lam.terms])
    # the same system with the diagonal layout (θ = the diagonal entries, in order): its
    # deviance and exact gradient drop the columns at 0 (PenalizedLS.deviance); BOBYQA to
    # BOBYQA_POLISHED_FTOL before the L-BFGS-B polish, as for the zero-correlation fit itself
    zc = pls.with_layout(sub)
    opt = _optimize(lambda z: zc.deviance(z, reml), np.ones(k), np.zeros(k),
                    restarts=0, one_thread=False, fun_grad=_fun_grad(zc, reml),
                    method=_search_method(sub), bobyqa_ftol=BOBYQA_POLISHED_FTOL)
    return full(opt["x"]) if np.isfinite(opt["fun"]) else lam.theta0


def _interior_starts(lam: LambdaFactor, theta: np.ndarray, x0: np.ndarray) -> list[np.ndarray]:
    """Interior points near a boundary θ: per template, the Cholesky factor of
    Σ + ε·(tr Σ / q)·I (ε = 1, then 0.1; Σ = T Tᵀ, I where Σ = 0), then lme4's start T = I if
    the search did not begin there. Correlations shrink towards 0 and no variance is 0. The
    farthest from the boundary (ε = 1) comes first: :func:`_optimize` may stop after it when
    it confirms the best deviance, and a start deep in the interior is the least likely to
    slide back into the first search's false stop."""
    out = []
    for eps in (1.0, 0.1):
        Ts = []
        for k, t in enumerate(lam.terms):
            T = lam.templates(theta, k)
            S = T @ np.swapaxes(T, 1, 2)
            tr = np.trace(S, axis1=1, axis2=2) / t.q
            tr = np.where(tr > 0, tr, 1.0)
            Ts.append(np.linalg.cholesky(S + eps * tr[:, None, None] * np.eye(t.q)))
        out.append(lam.theta_from_templates(Ts))
    if not np.array_equal(np.asarray(x0, dtype=float), lam.theta0):
        out.append(lam.theta0)
    return out


def lmer(formula, data, reml: bool = True, *, weights=None, start=None,
         data_name: str | None = None, na_action: str = "drop",
         data2: dict | None = None) -> LmerFit:
    """Fit a Gaussian linear mixed model by REML (default) or ML, like ``lme4::lmer``.

    Parameters
    ----------
    formula : lme4/brms formula text (or FormulaSpec), the same as for :func:`mixedformula.fit`.
    data : pandas/polars DataFrame.
    reml : REML (True, lme4's default) or maximum likelihood (False).
    weights : prior weights a_i ≥ 0 (a column name or one value per row of data; or
        ``y | weights(w)`` in the formula): Var(ε_i) = σ²/a_i, and the criteria are lme4's
        with the −Σ log a_i term (:mod:`mixedformula.linalg.penalized`).
    start : optional starting θ (lme4's order, see ``LmerFit.theta``); default T = I.
    data_name : shown as ``Data:`` in the printed summary.
    data2 : named matrices the formula refers to (brms' ``data2``), e.g. ``{"A": A}`` for
        ``(1 | gr(g, cov = A))``: Var(b) = σ_g² A (⊗ Σ for several coefficients).

    Raises NotImplementedError for multivariate/binomial models and group terms sharing an ID,
    FormulaError without a group term; aliased fixed-effect columns are dropped with a warning,
    as lme4 does. Like lme4, refuses (DataError) a grouping factor with one level or with as
    many levels as observations and a term with at least as many group effects as observations,
    and warns when the fixed effects reproduce the response exactly (a constant response):
    σ is then 0 and the standard errors NaN (:mod:`mixedformula.identifiability`).
    """
    from .design.distributed import is_dask_frame
    if is_dask_frame(data):
        if data2:
            raise NotImplementedError("data2 (gr(cov = ...)) with a Dask DataFrame is not "
                                      "supported; fit in memory (data.compute())")
        return _lmer_dask(formula, data, reml, weights, start, data_name, na_action)
    design = design_matrices(formula, data, na_action=na_action, drop_aliased=True,
                             data2=data2)
    weights_arg = weights
    weights = prior_weights(weights, data, design)
    if weights is not None and np.any(weights == 0):
        raise DataError(f"weights has {int(np.sum(weights == 0))} zero value(s): lme4's lmer "
                        "criterion is then -Inf (it adds -sum(log w)) and its fit fails; drop "
                        "the rows of weight 0 from the data (they carry no information)")
    if design.offset is not None and design.y is not None:
        design.y = design.y - design.offset[:, None]   # offset(): lmer fits y - offset
    terms = _lmer_terms(design) if design.terms else []
    # one BLAS thread always: OpenBLAS' threads cost more than they give for small problems,
    # and the dense 1142 × 1142 Schur Cholesky at InstEval shape took 0.057 s on one thread
    # against 0.17–2.6 s on two on a loaded machine (benchmarks/README.md)
    with one_blas_thread(True), contextlib.ExitStack() as stack:
        _check(design)
        lam = LambdaFactor([t.layout for t in terms])
        rc = _residual_correlation(design, data)
        if rc is not None:
            if weights is not None:
                raise NotImplementedError("weights with ar()/cosy()/unstr() residuals are not "
                                          "supported by lmer")
            return _lmer_residual_corr(design, terms, lam, rc, reml, data, data_name, data2)
        pls = _penalized_ls(design.X, design.y[:, 0], terms, lam, weights=weights)
        # a large dense Schur block (MovieLens-1M: 3706 columns) is factorised on every core
        stack.enter_context(dense_blas_threads(getattr(pls, "r", 0) or 0))
        x0 = lam.theta0 if start is None else np.asarray(start, dtype=float)
        rp = _structure_map(terms, lam)
        if x0.shape != (lam.n_theta,):
            raise ValueError(f"start must have {lam.n_theta} values (θ in lme4's order)")
        exact = any(p.kind == "exact_fit" for p in check_identifiability(design))
        if start is None and not exact and getattr(pls, "update_kind", None) == "dense" \
                and not np.all(lam.is_diagonal):
            x0 = _zero_correlation_start(pls, lam, reml)
        if exact:
            # r²_θ = 0 for every θ: the criterion is −∞ everywhere and θ arbitrary (lme4 warns
            # and cannot compute vcov); keep the start, report σ = 0 and NaN standard errors
            opt = {"x": x0, "fun": -math.inf, "nfev": 0, "nit": 0, "converged": False,
                   "message": "no residual variation: the fixed effects reproduce the "
                              "response exactly", "grad_norm": float("nan"), "checks": []}
        elif rp is not None:
            # ar1/cs/toep terms: the optimiser moves the structures' parameters φ, θ = θ(φ)
            def dev(phi):
                try:
                    th = rp.theta(phi)
                except np.linalg.LinAlgError:
                    return math.inf
                return pls.deviance(th, reml)
            opt = _optimize(dev, rp.start(lam.theta0), rp.lower, one_thread=False)
        else:
            opt = _optimize(lambda th: pls.deviance(th, reml), x0, lam.lower, one_thread=False,
                            fun_grad=_fun_grad(pls, reml),
                            interior_starts=lambda th: _interior_starts(lam, th, x0),
                            method=_search_method(lam),
                            bobyqa_ftol=BOBYQA_POLISHED_FTOL
                            if getattr(pls, "has_exact_gradient", False) else 1e-8,
                            log_scale=_search_method(lam) == "L-BFGS-B"
                            and bool(np.all(lam.is_diagonal))
                            and getattr(pls, "has_exact_gradient", False))
        phi = None
        if rp is not None and not exact:
            phi = opt["x"]
            opt = {**opt, "x": rp.theta(phi)}
        theta = opt["x"]
        f = pls.factor(theta)
        objective = pls.deviance_from(f, reml)
        n, p = pls.n, design.X.shape[1]
        sigma2 = f.r2 / (n - p if reml else n)
        beta = pls.beta(f)
        vcov_beta = sigma2 * np.linalg.inv(pls.beta_precision(f)) if p else np.zeros((0, 0))
        b = pls.conditional_modes(f)
        ml_deviance = pls.deviance_from(f, False)
        if exact:
            sigma2, objective, ml_deviance = 0.0, -math.inf, -math.inf
            vcov_beta = np.full_like(vcov_beta, np.nan)
            b = [np.zeros_like(bk) for bk in b]
    fixef_names = _lme4_names(design.spec.fixed_spec, design.X_names,
                              getattr(design.spec, "columns", ()))
    text = design.formula.text
    return LmerFit(formula=text, reml=reml, design=design, terms=terms, fixef_names=fixef_names,
                   theta=pd.Series(theta, index=pd.Index(_theta_names(terms), dtype=object),
                                   name="theta"),
                   beta=beta, sigma=math.sqrt(sigma2), vcov_beta=vcov_beta,
                   objective=objective, ml_deviance=ml_deviance,
                   b=b, optimizer=opt, data_name=data_name, data=data, offset=design.offset,
                   weights=weights, weights_arg=weights_arg, data2=data2,
                   structure_phi=phi, structure_map=rp)


def _dask_part(df, dspec, used):
    """lmer's cross-products of one partition of a Dask frame (None when it has no rows)."""
    from .design.distributed import complete_rows
    df = complete_rows(df, used)
    if len(df) == 0:
        return None
    d = dspec.transform(df, require_response=True)
    y = d.y[:, 0] if d.offset is None else d.y[:, 0] - d.offset
    terms = _lmer_terms(d)
    return crossproducts(d.X, y, [(t.X, t.codes) for t in terms], [len(t.levels) for t in terms])


def _lmer_dask(formula, ddf, reml, weights, start, data_name, na_action) -> LmerFit:
    r"""``lmer`` on a Dask DataFrame: REML/ML from the cross-products [Z X y]ᵀ[Z X y] reduced
    over the partitions (:func:`mixedformula.linalg.penalized.crossproducts`, summed in a tree;
    :mod:`mixedformula.design.distributed` for the levels pass), never the rows: the profiled
    deviance needs only them (:meth:`PenalizedLS.from_crossproducts`). The fit has no rows:
    residuals, Kenward–Roger, type I/III contrasts and the bootstrap refuse; Satterthwaite,
    profiles (refits read the Dask frame again) and the tables work."""
    from .design.distributed import design_spec, map_reduce, reduced_design
    from .formula import FormulaSpec, parse
    if weights is not None:
        raise NotImplementedError("weights= with a Dask DataFrame is not supported; fit in "
                                  "memory (data.compute())")
    spec = formula if isinstance(formula, FormulaSpec) else parse(formula)
    probe = Design(formula=spec, y=np.zeros((0, 1)), response_names=[], X=np.zeros((0, 0)),
                   X_names=[], terms=[None] * len(spec.groups), spec=None)
    if spec.multivariate or spec.trials or not spec.groups:
        raise reml_refusal(probe)
    dspec, used, n_dropped = design_spec(spec, ddf, na_action)
    cp = map_reduce(ddf, _dask_part, add_crossproducts, dspec, used)
    if cp is None:
        raise DataError("the data have no complete rows")
    n, p = int(cp["N"]), cp["XtX"].shape[0]
    design = reduced_design(dspec, n, n_dropped, np.full(p, np.nan))
    terms = _lmer_terms(design)
    R = cp["R"]
    norms = np.sqrt(np.maximum(np.diag(cp["XtX"]), 0))
    bad = [design.X_names[j] for j in range(p) if not abs(R[j, j]) > 1e-7 * norms[j]]
    if bad:
        raise DataError(f"the fixed-effect columns are collinear ({', '.join(bad)} is a "
                        "combination of earlier columns or all zero); drop the aliased terms "
                        "from the formula (the in-memory fit drops them as lme4 does)")
    if n <= p:
        raise DataError(f"{n} observations are not enough for {p} fixed effects")
    for t in terms:
        if len(t.levels) < 2 or len(t.levels) * len(t.coefs) >= n:
            raise DataError(f"the grouping factor {t.group!r} has {len(t.levels)} level(s) "
                            f"for {n} observations: its variance cannot be estimated")
    with one_blas_thread(True):
        lam = LambdaFactor([t.layout for t in terms])
        pls = PenalizedLS.from_crossproducts(cp, lam)
        x0 = lam.theta0 if start is None else np.asarray(start, dtype=float)
        if x0.shape != (lam.n_theta,):
            raise ValueError(f"start must have {lam.n_theta} values (θ in lme4's order)")
        opt = _optimize(lambda th: pls.deviance(th, reml), x0, lam.lower, one_thread=False,
                        fun_grad=_fun_grad(pls, reml),
                        interior_starts=lambda th: _interior_starts(lam, th, x0),
                        method=_search_method(lam))
        theta = opt["x"]
        f = pls.factor(theta)
        sigma2 = f.r2 / (n - p if reml else n)
        vcov_beta = sigma2 * np.linalg.inv(pls.beta_precision(f)) if p else np.zeros((0, 0))
        fit = LmerFit(formula=spec.text, reml=reml, design=design, terms=terms,
                      fixef_names=_lme4_names(dspec.fixed_spec, design.X_names,
                                              getattr(dspec, "columns", ())),
                      theta=pd.Series(theta, index=pd.Index(_theta_names(terms), dtype=object),
                                      name="theta"),
                      beta=pls.beta(f), sigma=math.sqrt(sigma2), vcov_beta=vcov_beta,
                      objective=pls.deviance_from(f, reml),
                      ml_deviance=pls.deviance_from(f, False), b=pls.conditional_modes(f),
                      optimizer=opt, data_name=data_name, data=ddf, offset=None)
    fit._cache["pls"] = pls
    return fit



def _residual_correlation(design: Design, data):
    """The ar()/cosy() residual structure of the formula on the fitted rows, or None."""
    if not design.formula.autocor:
        return None
    from .design.spec import as_pandas
    from .linalg.residual_corr import ResidualCorrelation
    a = design.formula.autocor[0]
    if a.kind == "cov_arma" and a.q:
        raise NotImplementedError(f"{a.text}: lmer does not fit a moving-average residual "
                                  "structure (nlme's corARMA); use mf.fit")
    if a.kind == "cov_arma":
        raise NotImplementedError(f"{a.text}: lmer's ar(time, gr) is already the stationary "
                                  "AR(1) correlation (nlme's corAR1); write it without cov = TRUE "
                                  "for lmer, or use mf.fit")
    if a.kind == "unstr":
        from .linalg.unstr_corr import UnstrCorrelation
        return UnstrCorrelation(design.autocor)
    if a.kind == "arma":
        raise NotImplementedError(f"{a.text}: lmer does not fit brms' arma()/ma() residual "
                                  "structures (nlme's corARMA is a stationary covariance, not "
                                  "brms' regression form); use mf.fit")
    if a.kind == "ar" and a.p != 1:
        raise NotImplementedError(f"{a.text}: lmer fits ar() of order p = 1 only (nlme's "
                                  "corAR1); use mf.fit for higher orders")
    df = as_pandas(data).loc[design.row_index]
    if a.gr is not None:
        groups = pd.factorize(df[a.gr].astype(str), sort=True)[0]
    else:
        groups = np.zeros(len(df), dtype=np.int64)
    time = None
    if a.time is not None:
        col = df[a.time]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise DataError(f"the time variable {a.time!r} of {a.kind}() must be numeric")
        time = col.to_numpy(dtype=float)
    return ResidualCorrelation(a.kind, groups, time, (a.time, a.gr))


def _lmer_residual_corr(design, terms, lam, rc, reml, data, data_name, data2) -> LmerFit:
    """REML/ML with ar()/cosy()/unstr() residuals: d(θ, a) = d_W(θ) + log|R(a)| minimised
    over θ and the unconstrained a of R (ρ for ar/cosy, :mod:`mixedformula.linalg.residual_corr`;
    the T(T − 1)/2 coordinates of C for unstr, :mod:`mixedformula.linalg.unstr_corr`)."""
    from .linalg.dense_pls import DensePLS
    blocks = [(t.X, t.codes, t.block.cov_factor) for t in terms]
    y = design.y[:, 0]
    k = rc.n_par
    cache: dict = {}

    def system(a: tuple) -> DensePLS:
        if a not in cache:
            if len(cache) > 64:
                cache.clear()
            v = rc.value(np.array(a))
            cache[a] = DensePLS(design.X, y, blocks, lam,
                                row_transform=lambda M: rc.whiten(M, v))
        return cache[a]

    def dev(x):
        a = tuple(float(v) for v in x[len(x) - k:])
        v = rc.value(np.array(a))
        if not rc.valid(v):
            return math.inf
        return system(a).deviance(x[:len(x) - k], reml) + rc.logdet(v)

    x0 = np.concatenate([lam.theta0, rc.start()])
    opt = _optimize(dev, x0, np.concatenate([lam.lower, np.full(k, -np.inf)]),
                    one_thread=False)
    theta = opt["x"][:len(opt["x"]) - k]
    a = tuple(float(v) for v in opt["x"][len(opt["x"]) - k:])
    v = rc.value(np.array(a))
    pls = system(a)
    f = pls.factor(theta)
    ld = rc.logdet(v)
    objective = pls.deviance_from(f, reml) + ld
    n, p = design.X.shape
    sigma2 = f.r2 / (n - p if reml else n)
    vcov_beta = sigma2 * np.linalg.inv(pls.beta_precision(f)) if p else np.zeros((0, 0))
    fixef_names = _lme4_names(design.spec.fixed_spec, design.X_names,
                              getattr(design.spec, "columns", ()))
    est = rc.correlations(v) if rc.kind == "unstr" else v
    return LmerFit(formula=design.formula.text, reml=reml, design=design, terms=terms,
                   fixef_names=fixef_names,
                   theta=pd.Series(theta, index=pd.Index(_theta_names(terms), dtype=object),
                                   name="theta"),
                   beta=pls.beta(f), sigma=math.sqrt(sigma2), vcov_beta=vcov_beta,
                   objective=objective, ml_deviance=pls.deviance_from(f, False) + ld,
                   b=pls.conditional_modes(f), optimizer={**opt, "x": theta},
                   data_name=data_name, data=data, offset=design.offset, data2=data2,
                   residual_corr=rc, residual_rho=est)


def residual_lines(qstr: list[str]) -> list[str]:
    """lme4's ``Scaled residuals:`` block from the formatted quartiles (three lines)."""
    w = max(len(s) for s in qstr + ["Median"])
    return ["Scaled residuals: ",
            " ".join(h.rjust(w) for h in ["Min", "1Q", "Median", "3Q", "Max"]) + " ",
            " ".join(s.rjust(w) for s in qstr) + " "]


def information_lines(fit, deviance: float) -> list[str]:
    """lme4's ``AIC BIC logLik deviance df.resid`` header of an ML fit (two aligned lines)."""
    heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    vals = [f"{fit.AIC:.1f}", f"{fit.BIC:.1f}", f"{fit.logLik:.1f}", f"{deviance:.1f}",
            str(fit.nobs - fit.n_params)]
    w = max(len(x) for x in heads + vals)
    return [" ".join(h.rjust(w) for h in heads) + " ", " ".join(v.rjust(w) for v in vals) + " "]


# public names of the building blocks that mixedformula.glmer shares with lmer
lmer_terms = _lmer_terms
theta_names = _theta_names
fixef_lme4_names = _lme4_names
optimize_bounded = _optimize
interior_starts = _interior_starts
table_lines = _table
