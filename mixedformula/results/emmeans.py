r"""Estimated marginal means and trends (emmeans' ``emmeans()``, ``emtrends()``, ``pairs()``).

**Reference grid** (emmeans' ``ref_grid``): every combination of the levels of the factors of
the fixed part, each numeric covariate at its mean over the fitted rows (or at the values in
``at=``; a covariate with at most two distinct values, e.g. a 0/1 dummy, is kept at both
values like a factor: emmeans' default ``cov.keep = "2"``). Its rows r have the fixed-effect
rows x_r (group effects left out: emmeans predicts at the population level), so the grid
prediction is x_rᵀβ.

**Marginal means** for ``specs`` (factor names, with ``by`` factors): per combination c of the
spec (and by) levels, the equally weighted mean over the other factors' levels (emmeans'
default ``weights = "equal"``), i.e. L_c = mean_{r ∈ c} x_r and ``emmean`` = L_c β.

**Trends** (``emtrends(var=)``): emmeans' difference quotient of the grid prediction in var,
L_c = mean_{r ∈ c} (x_r(var + δ) − x_r(var)) / δ, δ = 0.001 · range(var).

Frequentist (lmer): SE_c = √(L_c V Lᵀ_c), V = Var(β̂); ``df`` per row from ``ddf``
(``"asymptotic"``: ∞, then emmeans' columns ``asymp.LCL``/``asymp.UCL`` and ``z.ratio``;
``"satterthwaite"``: lmerTest's ν of L_c β; ``"kenward-roger"``: pbkrtest's ν, with V the
KR-adjusted covariance, as emmeans' ``lmer.df``); CL = est ± t_{df,0.975}·SE.
``type="response"``: μ = g⁻¹(emmean) with SE · |dμ/dη| (delta method) and back-transformed
limits (emmeans' ``regrid``; identity links are unchanged), named as emmeans does
(``prob`` for binomial families, ``rate`` for Poisson, else ``response``: the family's
``emmeans_label``). glmer fits are asymptotic (df = ∞): ``asymp.LCL``/``asymp.UCL``,
``z.ratio``, Tukey's p-values from the studentized range with df = ∞.

Bayesian: the draws L_c β⁽ˢ⁾ summarised as emmeans does for MCMC models: ``emmean`` = the
posterior median, ``lower.HPD``/``upper.HPD`` the 95% highest posterior density interval
(arviz.hdi); ``type="response"`` transforms each draw.

**Pairs**: every pair i < j of the rows (within each by group), label ``"a - b"``, estimate
e_i − e_j, SE = √(c V cᵀ), ``t.ratio`` = estimate / SE and ``p.value``: ``"tukey"`` the
studentized range tail P(Q_{k,df} > √2 |t|) (scipy.stats.studentized_range; k = rows in the
group), ``"holm"`` Holm's step-down on the two-sided t p-values, ``"none"`` the raw p-values.
Levels that are numbers are labelled with their factor's name (``period1 - period2``), as
emmeans does (frequentist fits; Bayesian tables keep the bare levels). Pairs of means on the response scale of a log or logit link are ratios
(emmeans' back-transformed contrasts): ``"a / b"``, ``ratio`` (log) or ``odds.ratio`` (logit)
= exp(e_i − e_j), SE = ratio · SE_link, ``null`` = 1, the test statistic and p-value those of
the link-scale difference; other links keep the link-scale differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..design import as_pandas
from ..errors import MixedFormulaError
from .answer_frame import AnswerFrame
from .factors import formula_factor_levels

ADJUST = ("tukey", "holm", "none")
#: emmeans' ``cov.keep`` default: covariates with at most this many values are kept as levels
COV_KEEP = 2
#: emmeans' name of a back-transformed contrast (a ratio) per link
RATIO_NAMES = {"log": "ratio", "logit": "odds.ratio"}


def _numeric_label(v) -> bool:
    try:
        float(str(v))
    except ValueError:
        return False
    return True


def _as_list(x) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        x = x.replace("~", " ").replace("|", " ").replace("+", " ").replace("*", " ").split()
        return [v for v in x if v != "1"]
    return list(x)


def reference_grid(design, data: pd.DataFrame, at: dict | None = None) -> pd.DataFrame:
    """emmeans' reference grid (module docstring)."""
    spec = design.spec
    f = spec.formula
    levels = dict(getattr(spec, "factor_levels", {}) or {})
    at = dict(at or {})
    grid = {}
    for c in f.fixed_variables:
        wrapped = formula_factor_levels(design, data, c) if c in data.columns else None
        if wrapped is not None:
            levels.setdefault(c, wrapped)             # factor(x) of a numeric column
        if c in at:
            grid[c] = list(np.atleast_1d(at[c]))
        elif c in levels:
            grid[c] = list(levels[c])
        else:
            s = data[c]
            if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
                vals = np.unique(s.dropna().to_numpy(dtype=float))
                # emmeans' cov.keep = "2": a covariate with at most two values (a 0/1 dummy)
                # is kept at its values, like a factor, and averaged over them equally
                grid[c] = list(vals) if len(vals) <= COV_KEEP else [float(s.mean())]
            else:
                grid[c] = sorted(s.dropna().unique(), key=str)
    if not grid:
        return pd.DataFrame(index=[0])
    return pd.MultiIndex.from_product(list(grid.values()), names=list(grid)).to_frame(
        index=False)


def _grid_X(design, grid: pd.DataFrame) -> np.ndarray:
    df = grid.copy()
    for t in design.terms:
        for c in list(t.term.factors) + ([t.term.by] if t.term.by else []):
            if c not in df.columns:
                df[c] = None
    for c in design.spec.formula.trials_variables:
        if c not in df.columns:
            df[c] = 1
    X, _ = design.spec.transform(df).fixed(0)
    return np.asarray(X, dtype=float)


def _weights(grid: pd.DataFrame, keys: list[str]):
    """(table of key combinations, matrix W with rows averaging grid rows equally)."""
    for k in keys:
        if k not in grid.columns:
            raise MixedFormulaError(f"{k!r} is not a predictor of the fixed part "
                                    f"(predictors: {', '.join(grid.columns)})")
    if not keys:
        return pd.DataFrame({"1": ["overall"]}), np.full((1, len(grid)), 1.0 / len(grid))
    combos = grid[keys].drop_duplicates().reset_index(drop=True)
    mi = pd.MultiIndex.from_frame(combos.astype(object))
    code = mi.get_indexer(pd.MultiIndex.from_frame(grid[keys].astype(object)))
    W = np.zeros((len(combos), len(grid)))
    W[code, np.arange(len(grid))] = 1.0
    W /= W.sum(axis=1, keepdims=True)
    return combos, W


class BayesSource:
    """β draws of a Bayesian :class:`~mixedformula.results.fit.Fit`."""

    bayesian = True

    def __init__(self, fit):
        from .posterior import PosteriorDraws
        if fit.family.mean_categories() is not None:
            raise MixedFormulaError(
                f"emmeans of a {fit.family.name} model is not available: its "
                "expected value is K category probabilities; use fit.predictions(grid=..., "
                "by=...) (one row per category, column 'group')")
        self.design, self.family = fit.design, fit.family
        self.data = emm_data(fit.data, fit.design)
        self._draws = PosteriorDraws.of_fit(fit)

    def beta_draws(self) -> np.ndarray:
        return self._draws.beta(0)


class FreqSource:
    """β̂ and Var(β̂) of a frequentist fit; ``df``: a function L (rows × p) → one df per row
    (default ∞)."""

    bayesian = False

    def __init__(self, design, data, beta, vcov, family=None, df=None):
        self.design, self.data = design, emm_data(data, design)
        self.beta, self.vcov, self.family = np.asarray(beta), np.asarray(vcov), family
        self.df = df or (lambda L: np.full(len(np.atleast_2d(L)), np.inf))

    def inverse_link(self, eta):
        return eta if self.family is None else self.family.inverse_link(eta)

    @property
    def link_name(self) -> str:
        return "identity" if self.family is None else self.family.link

    @property
    def response_label(self) -> str:
        return "response" if self.family is None else self.family.emmeans_label


class EMM:
    """Linear functions L of β with their table (one row per mean or trend)."""

    def __init__(self, fit, lead: pd.DataFrame, L: np.ndarray, by: list[str], what: str,
                 type_: str, name: str):
        self.fit, self.lead, self.L, self.by, self.what = fit, lead, L, by, what
        self.type, self.name = type_, name

    # ---------------------------------------------------------------- frequentist
    def _freq(self):
        beta, V = self.fit.beta, self.fit.vcov
        return self.L @ beta, np.sqrt(np.einsum("ij,jk,ik->i", self.L, V, self.L))

    def table(self, level: float = 0.95) -> AnswerFrame:
        if self.fit.bayesian:
            return self._bayes_table(level)
        est, se = self._freq()
        df = np.broadcast_to(np.asarray(self.fit.df(self.L), dtype=float), est.shape)
        q = stats.t.ppf(0.5 + level / 2, df)
        lo, hi = est - q * se, est + q * se
        name, lcl, ucl = self.name, "lower.CL", "upper.CL"
        if np.all(np.isinf(df)):
            lcl, ucl = "asymp.LCL", "asymp.UCL"
        if (self.type == "response" and self.what == "emmean"
                and self.fit.link_name != "identity"):
            inv = self.fit.inverse_link
            d = np.abs((inv(est + 1e-6) - inv(est - 1e-6)) / 2e-6)
            est, se, lo, hi = inv(est), se * d, inv(lo), inv(hi)
            name = self.fit.response_label
        out = self.lead.copy()
        out[name], out["SE"], out["df"], out[lcl], out[ucl] = est, se, df, lo, hi
        return AnswerFrame.of(out, None, "emmeans")

    def _bayes_draws(self):
        B = self.fit.beta_draws()                     # (S, p)
        d = (B @ self.L.T).T                              # (rows, S)
        if self.type == "response" and self.what == "emmean":
            d = self.fit.family.inverse_link(d)
        return d

    def _bayes_table(self, level: float) -> AnswerFrame:
        import arviz as az
        d = self._bayes_draws()
        hdi = np.array([az.hdi(row, hdi_prob=level) for row in d])
        out = self.lead.copy()
        out["response" if (self.type == "response" and self.what == "emmean"
                           and self.fit.family.link != "identity") else self.name] = \
            np.median(d, axis=1)
        out["lower.HPD"], out["upper.HPD"] = hdi[:, 0], hdi[:, 1]
        return AnswerFrame.of(out, d, "emmeans")

    # ---------------------------------------------------------------- pairs
    def pairs(self, adjust: str = "tukey", level: float = 0.95) -> AnswerFrame:
        if adjust not in ADJUST:
            raise MixedFormulaError(f"adjust must be one of {', '.join(ADJUST)}")
        keys = [c for c in self.lead.columns if c not in self.by]
        # emmeans labels numeric levels with their factor's name ("period1 - period2",
        # "Days0 - Days9"), for Bayesian (brms + emmeans) and frequentist fits alike
        numeric = {k: all(_numeric_label(v) for v in self.lead[k]) for k in keys}
        ratio = (not self.fit.bayesian and self.type == "response" and self.what == "emmean"
                 and RATIO_NAMES.get(self.fit.link_name))
        sep = " / " if ratio else " - "
        groups = (self.lead.groupby(self.by, sort=False).indices if self.by
                  else {None: np.arange(len(self.lead))})
        rows, C = [], []
        for gkey, idx in groups.items():
            idx = list(idx)
            for a in range(len(idx)):
                for b in range(a + 1, len(idx)):
                    i, j = idx[a], idx[b]
                    lab = sep.join(" ".join((k if numeric[k] else "")
                                            + str(self.lead.iloc[r][k])
                                            for k in keys) for r in (i, j))
                    c = np.zeros(len(self.lead))
                    c[i], c[j] = 1.0, -1.0
                    row = {"contrast": lab}
                    if self.by:
                        gk = gkey if isinstance(gkey, tuple) else (gkey,)
                        row.update(dict(zip(self.by, gk)))
                    row["_k"] = len(idx)
                    rows.append(row)
                    C.append(c @ self.L)
        C = np.array(C)
        out = pd.DataFrame(rows)
        k = out.pop("_k").to_numpy()
        if self.fit.bayesian:
            import arviz as az
            d = (self.fit.beta_draws() @ C.T).T
            hdi = np.array([az.hdi(r, hdi_prob=level) for r in d])
            out["estimate"] = np.median(d, axis=1)
            out["lower.HPD"], out["upper.HPD"] = hdi[:, 0], hdi[:, 1]
            return AnswerFrame.of(out, d, "pairs")
        beta, V = self.fit.beta, self.fit.vcov
        est = C @ beta
        se = np.sqrt(np.einsum("ij,jk,ik->i", C, V, C))
        df = np.broadcast_to(np.asarray(self.fit.df(C), dtype=float), est.shape)
        t = est / se
        if adjust == "tukey":
            p = np.array([stats.studentized_range.sf(np.sqrt(2) * abs(ti), kk, dfi)
                          if kk > 2 else 2 * stats.t.sf(abs(ti), dfi)
                          for ti, kk, dfi in zip(t, k, df)])
        else:
            p = 2 * stats.t.sf(np.abs(t), df)
            if adjust == "holm":
                p = _holm(p, out, self.by)
        if ratio:
            out[ratio], out["SE"], out["df"], out["null"] = np.exp(est), np.exp(est) * se, df, 1.0
        else:
            out["estimate"], out["SE"], out["df"] = est, se, df
        out["z.ratio" if np.all(np.isinf(df)) else "t.ratio"] = t
        out["p.value"] = p
        return AnswerFrame.of(out, None, "pairs")


def _holm(p, out, by):
    res = np.empty_like(p)
    groups = out.groupby(by, sort=False).indices if by else {None: np.arange(len(p))}
    for idx in groups.values():
        idx = np.asarray(idx)
        pv = p[idx]
        order = np.argsort(pv)
        m = len(pv)
        adj = np.maximum.accumulate((m - np.arange(m)) * pv[order])
        r = np.empty(m)
        r[order] = np.minimum(adj, 1.0)
        res[idx] = r
    return res


def emm_table(src, specs, by=None, at=None, type="link", trend=None, level=0.95):
    """The emmeans / emtrends table; its ``.pairs(adjust)`` gives the pairwise contrasts."""
    emm = emmeans(src, specs, by, at, type, trend)
    out = emm.table(level)
    out._mf_emm = emm
    return out


def emmeans(src, specs, by=None, at: dict | None = None, type: str = "link",
            trend: str | None = None) -> EMM:
    """The EMM of ``specs`` (see the module docstring); ``trend``: emtrends' ``var``."""
    if type not in ("link", "response"):
        raise MixedFormulaError("type must be 'link' or 'response'")
    design = src.design
    if len(design.response_names) > 1:
        raise MixedFormulaError("emmeans is for models with one response")
    data = src.data
    specs_l, by_l = _as_list(specs), _as_list(by)
    if isinstance(specs, str) and "|" in specs:
        left, right = specs.split("|", 1)
        specs_l, by_l = _as_list(left), _as_list(right) + by_l
    grid = reference_grid(design, data, at)
    X = _grid_X(design, grid)
    what, name = "emmean", "emmean"
    if trend is not None:
        if trend not in grid.columns:
            raise MixedFormulaError(f"var={trend!r} is not a numeric predictor of the fixed part")
        x = data[trend].to_numpy(dtype=float)
        delta = 0.001 * float(x.max() - x.min()) or 0.001
        g2 = grid.copy()
        g2[trend] = g2[trend].astype(float) + delta
        X = (_grid_X(design, g2) - X) / delta
        what, name = "trend", f"{trend}.trend"
    keys = by_l + specs_l if by_l else specs_l
    combos, W = _weights(grid, keys)
    if by_l:
        # emmeans prints specs within by groups, the first spec varying fastest
        order = combos.sort_values(by_l + specs_l[::-1], kind="stable",
                                   key=lambda s: s.map(_rank(grid, s.name))).index
        combos, W = combos.loc[order].reset_index(drop=True), W[order]
        combos = combos[specs_l + by_l]
    elif len(specs_l) > 1:
        order = combos.sort_values(specs_l[::-1], kind="stable",
                                   key=lambda s: s.map(_rank(grid, s.name))).index
        combos, W = combos.loc[order].reset_index(drop=True), W[order]
    return EMM(src, combos, W @ X, by_l, what, type, name)


def _rank(grid, col):
    vals = list(dict.fromkeys(grid[col].tolist()))
    return {v: i for i, v in enumerate(vals)}


def emm_data(data, design) -> pd.DataFrame:
    """The fitted rows (the reference grid's covariate means come from them)."""
    if data is None:
        raise MixedFormulaError("emmeans needs the data the model was fitted to")
    df = as_pandas(data)
    ri = design.row_index
    return (df.loc[ri] if ri is not None else df).reset_index(drop=True)
