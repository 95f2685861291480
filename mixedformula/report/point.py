r"""The HTML report of a point-estimate fit (``mf.lmer`` / ``mf.glmer``), on the page of
:mod:`.html` (same styles, tables, figures, average-effects section).

Sections: header (formula, model, criterion, logLik/AIC/BIC), verdicts (convergence and
singularity, one plain sentence per problem), data, fixed effects, variance components,
average slopes and comparisons, plots, the printed summary.

* Fixed effects — lmer: lmerTest's t-tests with Satterthwaite df (``fit.coef_table``) and
  95% profile intervals (``fit.confint("profile")``, lme4's ``confint``); glmer: lme4's Wald
  z tests with 95% Wald intervals β̂ ∓ z_{0.975} SE.
* Variance components — per covariance block the standard deviations and correlations with
  lme4's ``.sig01``… names and their profile intervals (glmer: the Laplace deviance profiled
  over (sd/cor, β), as lme4's ``confint(method = "profile")``).
* Verdicts — each diagonal θ below 10⁻⁴ (lme4's ``isSingular`` tolerance): "the standard
  deviation of … is estimated as 0"; each |correlation| > 0.99: "… is estimated as ±1"; the
  optimiser's and glmer's convergence messages.
* Plots — residuals against fitted values and their normal Q–Q plot (lmer: response
  residuals y − ŷ; glmer: Pearson residuals); caterpillar plots of the conditional modes with
  ±1.96 conditional standard deviations (``fit.condvar()``, lme4's ``ranef(condVar = TRUE)``).
"""

from __future__ import annotations

import datetime as _dt
import html

import numpy as np
import pandas as pd
from scipy.stats import norm

from ..errors import MixedFormulaError
from . import plots
from .html import (effects_section, figure_html, matrix_table, meta_table, page,
                   residual_structure_html)

SINGULAR_TOL = 1e-4
COR_TOL = 0.99
POINT_EFFECTS_NOTE = ("Response scale (g⁻¹ of the linear predictor; the probability for "
                      "binomial models), averaged over the fitted rows at their conditional "
                      "modes (marginaleffects' avg_slopes / avg_comparisons): estimate with "
                      "delta-method standard error and 95% normal interval.")


def _e(x) -> str:
    return html.escape(str(x))


def _is_glmer(fit) -> bool:
    return getattr(fit, "family", None) is not None


def number_table(df: pd.DataFrame, digits: int = 4, cls: str = "stats") -> str:
    """A table of numbers (4 significant digits; p-values as R prints them) with row names."""
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = []
    for r, row in df.iterrows():
        tds = []
        for c, v in row.items():
            if isinstance(v, (float, np.floating)) and str(c).startswith("Pr("):
                text = "NA" if not np.isfinite(v) else ("< 2e-16" if v < 2e-16 else f"{v:.3g}")
            elif isinstance(v, (float, np.floating, int, np.integer)):
                text = "NA" if not np.isfinite(v) else f"{v:.{digits}g}"
            else:
                text = "" if v is None else str(v)
            tds.append(f"<td>{_e(text)}</td>")
        body.append(f"<tr><th>{_e(r)}</th>{''.join(tds)}</tr>")
    return (f"<table class='{cls}'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


# -- content -----------------------------------------------------------------------------------

def _header(fit) -> str:
    from .. import __version__
    if _is_glmer(fit):
        how = ("Laplace approximation" if fit.nagq == 1
               else f"adaptive Gauss–Hermite quadrature, nAGQ = {fit.nagq}")
        model = (f"generalized linear mixed model, maximum likelihood ({how}); family "
                 f"{fit.family.name} (link {fit.family.link}) — like lme4's glmer")
        crit = f"deviance {fit.deviance:.4f}"
    else:
        model = ("linear mixed model by " + ("REML" if fit.reml else "maximum likelihood")
                 + " — like lme4's lmer")
        crit = (f"REML criterion {fit.objective:.4f}" if fit.reml
                else f"deviance {fit.objective:.4f}")
    rows = [("Formula", f"<code>{_e(fit.formula)}</code>"), ("Model", _e(model)),
            ("Fit", _e(f"{crit}; logLik {fit.logLik:.4f}; AIC {fit.AIC:.2f}; "
                       f"BIC {fit.BIC:.2f}; {fit.n_params} parameters")),
            ("Generated", _e(f"{_dt.datetime.now():%Y-%m-%d %H:%M} by mixedformula "
                             f"{__version__}"))]
    return "<h1>mixedformula report</h1>" + meta_table(rows)


def _block_rows(fit):
    """(lme4 name .sigNN, label, estimate) per sd/cor parameter, in θ's order."""
    from ..inference.sdcor import sdcor_names
    lam, theta = fit.lambda_factor, fit.theta.to_numpy()
    names = sdcor_names(len(theta))
    out, k = [], 0
    for i, t in enumerate(fit.terms):
        rows, cols = t.layout.entries
        for label, T in zip(t.block_labels(), lam.templates(theta, i)):
            S = fit.sigma ** 2 * T @ T.T
            sd = np.sqrt(np.diag(S))
            for r, c in zip(rows, cols):
                if r == c:
                    out.append((names[k], f"sd({t.coefs[r]} | {label})", sd[r]))
                else:
                    den = sd[r] * sd[c]
                    out.append((names[k], f"cor({t.coefs[c]}, {t.coefs[r]} | {label})",
                                S[r, c] / den if den > 0 else np.nan))
                k += 1
    return out


def verdicts(fit) -> list[str]:
    """One plain sentence per convergence or singularity problem (module docstring)."""
    out = []
    for name, label, est in _block_rows(fit):
        if label.startswith("sd(") and fit.sigma > 0 and est < SINGULAR_TOL * fit.sigma:
            what = label[3:-1]
            out.append(f"Singular fit: the standard deviation of {what} is estimated as 0 "
                       f"({name}); the data do not support this variance: consider removing "
                       "that term.")
        elif label.startswith("cor(") and np.isfinite(est) and abs(est) > COR_TOL:
            out.append(f"Singular fit: the correlation {label} is estimated as {est:+.3f} "
                       f"(±1); consider uncorrelated terms (||) or dropping the slope.")
    if not _is_glmer(fit) and not fit.optimizer.get("converged", True):
        out.append(f"The optimiser did not converge: {fit.optimizer.get('message')}.")
    for m in getattr(fit, "messages", []):
        if not m.startswith("boundary (singular) fit"):        # said above, per variance
            out.append(m[0].upper() + m[1:] + ("" if m.endswith(".") else "."))
    return out


def _structured(fit) -> bool:
    """ar1/cs/toep group terms or ar()/cosy() residuals (lmer refuses df and profiles)."""
    return getattr(fit, "structure_map", None) is not None or \
        getattr(fit, "residual_corr", None) is not None


def structure_sections(fit) -> list[str]:
    """Each structured G (parameters, implied correlation matrix) and R_j of a typical
    subject (parameters, matrix, heatmap)."""
    from ..design.covstruct import correlation_from_rho
    if not _structured(fit):
        return []
    out = ["<h3>Structured covariances</h3>"]
    cp = fit.corpars()
    for grp, rows in cp[cp.grp != "Residual"].groupby("grp", sort=False):
        t = next(t for t in fit.terms if t.group == grp and t.block.structure)
        st, Q = rows.structure.iloc[0], t.block.Q
        C = correlation_from_rho(st, Q, rows.estimate.to_numpy())
        labels = list(t.coefs)
        pars = ", ".join(f"{p} = {v:.3f}" for p, v in zip(rows.parameter, rows.estimate))
        out.append(f"<p class='note'>G of {_e(grp)}: {_e(st)}({Q} x {Q}), {_e(pars)}; "
                   "implied correlation matrix:</p>"
                   + matrix_table(pd.DataFrame(C, index=labels, columns=labels)))
    out += residual_structure_html(fit)
    return out


def _fixed_section(fit, level: float = 0.95) -> str:
    if _is_glmer(fit):
        tab = fit.fixef()
        q = norm.ppf(0.5 + level / 2)
        tab["2.5 %"] = tab["Estimate"] - q * tab["Std. Error"]
        tab["97.5 %"] = tab["Estimate"] + q * tab["Std. Error"]
        note = ("Wald z tests (lme4's summary); 95% Wald intervals β̂ ∓ 1.96 SE (lme4's "
                "confint(method = \"Wald\")).")
        return number_table(tab) + f"<p class='note'>{_e(note)}</p>"
    if _structured(fit):
        tab = fit.coef_table("none")
        q = norm.ppf(0.5 + level / 2)
        tab["2.5 %"] = tab["Estimate"] - q * tab["Std. Error"]
        tab["97.5 %"] = tab["Estimate"] + q * tab["Std. Error"]
        note = ("Estimates and standard errors (lme4's summary, no df); 95% Wald intervals: "
                "Satterthwaite df and profile intervals are not available for fits with "
                "structured G or R.")
        return number_table(tab) + f"<p class='note'>{_e(note)}</p>"
    tab = fit.coef_table("satterthwaite")
    ci = _profile(fit, level)
    note = ("t-tests with Satterthwaite's degrees of freedom (lmerTest's summary); "
            "95% likelihood-profile intervals (lme4's confint(method = \"profile\")).")
    if ci is not None:
        tab = tab.join(ci.loc[[r for r in tab.index if r in ci.index]])
    else:
        note += " The profile intervals could not be computed."
    return number_table(tab) + f"<p class='note'>{_e(note)}</p>"


def _profile(fit, level: float = 0.95):
    """Profile intervals (lme4's names) or None; cached on the fit for the report."""
    return _profile_and_warnings(fit, level)[0]


def _profile_and_warnings(fit, level: float = 0.95):
    """(profile intervals or None, the warnings computing them gave), cached on the fit."""
    import warnings
    key = ("report_profile", level)
    cache = getattr(fit, "_cache", {})
    if key not in cache:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                ci = fit.confint(method="profile", level=level)
            except (MixedFormulaError, ValueError, np.linalg.LinAlgError, RuntimeError,
                    NotImplementedError):       # structured G / R: no profile
                ci = None
        cache[key] = (ci, list(dict.fromkeys(str(w.message) for w in caught)))
    return cache[key]


def _variance_section(fit, level: float = 0.95) -> str:
    rows = _block_rows(fit)
    tab = pd.DataFrame({"parameter": [r[1] for r in rows], "estimate": [r[2] for r in rows]},
                       index=[r[0] for r in rows])
    if not _is_glmer(fit):
        tab.loc[".sigma"] = ["sigma (residual sd)", fit.sigma]
    note = ""
    ci = _profile(fit, level)         # glmer: the Laplace deviance profiled (inference/profile)
    if ci is not None:
        cols = list(ci.columns)
        for c in cols:
            tab[c] = [float(ci.loc[r, c]) if r in ci.index else np.nan for r in tab.index]
        note = note or ("95% likelihood-profile intervals, lme4's confint(method = "
                        "\"profile\") with its row names.")
    elif not note:
        note = "The profile intervals could not be computed."
    if ci is not None:
        for w in _profile_and_warnings(fit, level)[1]:         # e.g. a profile hitting a bound
            note += f" Warning: {w}."
    vc = fit.varcorr()
    groups = "; ".join(f"{g}: {n} levels" for g, n in fit.ngrps.items())
    return (number_table(tab) + f"<p class='note'>{_e(note)}</p>"
            + f"<p class='note'>{_e(fit.nobs)} observations; {_e(groups)}.</p>"
            + "<h3>Variances and covariances (lme4's VarCorr)</h3>"
            + number_table(vc.set_index(pd.Index(range(1, len(vc) + 1)))))


def _figures(fit) -> list[str]:
    out = []
    if _is_glmer(fit):
        fitted, resid, ylabel = fit.fitted(), fit.residuals(), "Pearson residual"
    else:
        fitted, resid, ylabel = fit.fitted(), fit.residuals(), "residual y − ŷ"
    out.append(figure_html(plots.residual_plots(fitted, resid, ylabel),
                           "Residuals against fitted values (left: no pattern expected) and "
                           "their normal Q–Q plot (right: points near the line). "
                           + ("Fitted values are probabilities/means g⁻¹(η̂)."
                              if _is_glmer(fit) else "Fitted values Xβ̂ + Zb̂."),
                           "residual and Q-Q plots"))
    for cv in fit.condvar():
        lo, hi = cv.modes - 1.96 * cv.sd, cv.modes + 1.96 * cv.sd
        fig = plots.caterpillar_intervals(cv.modes, lo, hi, cv.levels, cv.coefs, cv.group,
                                          title="{group}: {coef}")
        out.append(figure_html(fig, f"Caterpillar plot of the conditional modes of "
                               f"{_e(cv.group)} (lme4's ranef), sorted, with ±1.96 conditional "
                               "standard deviations (ranef(condVar = TRUE)).",
                               f"caterpillar plot {cv.group}"))
    return out


def build_point_html(fit, title: str | None = None) -> str:
    """The report of an lmer / glmer fit as one HTML string (module docstring)."""
    title = title or f"mixedformula: {fit.formula}"
    problems = verdicts(fit)
    alerts = ([f"<div class='alert'><b>Problem:</b> {_e(p)}</div>" for p in problems]
              or ["<div class='good'>Converged; no variance at zero and no correlation at "
                  "±1 (not a singular fit).</div>"])
    text = fit.summary(ddf="satterthwaite") if not (_is_glmer(fit) or _structured(fit)) \
        else fit.summary()
    nav = [("verdicts", "Convergence"), ("fixed", "Fixed effects"),
           ("variance", "Variance components"), ("effects", "Average effects"),
           ("plots", "Plots"), ("text", "Summary text")]
    verdict_list = ("<ul>" + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>"
                    if problems else "<p class='note'>No problems found.</p>")
    body = [
        "<h2 id='verdicts'>Convergence and singularity</h2>", verdict_list,
        "<h2 id='fixed'>Fixed effects</h2>", _fixed_section(fit),
        "<h2 id='variance'>Variance components</h2>", _variance_section(fit),
        *structure_sections(fit),
        "<h2 id='effects'>Average slopes and comparisons</h2>",
        effects_section(fit, POINT_EFFECTS_NOTE),
        "<h2 id='plots'>Plots</h2>", *_figures(fit),
        "<h2 id='text'>Summary (as printed)</h2>", f"<pre>{_e(text)}</pre>"]
    return page(title, _header(fit), nav, alerts, body)
