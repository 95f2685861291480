"""One self-contained HTML page for a :class:`~mixedformula.results.fit.Fit`.

Sections, in order: header (formula, family, likelihood, sampler), warnings, data, group-level
covariance G (one table per grouping factor, plus its correlation and covariance matrices),
regression coefficients, residual part R, diagnostics, plots, priors, and the printed brms
summary. Styles are inline in one ``<style>`` block, figures are base64 PNG ``data:`` URIs:
no network access is needed to view the file, and nothing in it runs scripts.
"""

from __future__ import annotations

import datetime as _dt
import html
import os

import numpy as np
import pandas as pd

from ..errors import MixedFormulaError
from ..results.naming import fixed_label
from ..results.tables import format_cells
from . import plots
from .diagnostics import Check, checks, ess_status, rhat_status

CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;margin:0;
 background:#f4f5f7}
main{max-width:1100px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:32px 0 8px;padding-bottom:4px;
 border-bottom:2px solid #1f5a96}h3{font-size:15px;margin:18px 0 6px}
code,pre{font-family:'SFMono-Regular',Menlo,Consolas,monospace;font-size:13px}
pre{background:#f6f8fa;padding:10px;overflow-x:auto;border:1px solid #e1e4e8}
table{border-collapse:collapse;margin:6px 0 12px;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid #e6e6e6}
thead th{background:#eef2f7;text-align:right}thead th:first-child{text-align:left}
tbody th{text-align:left;font-weight:normal;font-family:Menlo,Consolas,monospace}
td{text-align:right;font-variant-numeric:tabular-nums}
td.warn{background:#fff3cd}td.bad{background:#f8d7da;color:#842029;font-weight:bold}
td.ok{color:#146c43}
.meta td{text-align:left}.meta th{font-family:inherit;color:#555;padding-right:18px}
.alert{border-left:5px solid #d1495b;background:#fdf0f1;padding:8px 12px;margin:10px 0}
.alert.warn{border-color:#e0a800;background:#fffaeb}.good{border-left:5px solid #2a9d8f;
 background:#eefaf7;padding:8px 12px;margin:10px 0}
figure{margin:14px 0 22px}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:12.5px;color:#555;margin-top:4px}
nav a{margin-right:14px;font-size:13px;color:#1f5a96}
.note{color:#555;font-size:13px}
table.priors td,table.priors th{text-align:left}
"""

MAX_TRACE = 12


# -- small HTML helpers -------------------------------------------------------------------------

def _e(x) -> str:
    return html.escape(str(x))


def stats_table(df: pd.DataFrame, digits: int = 2, highlight: bool = True) -> str:
    """A brms summary table (Estimate … Tail_ESS) with Rhat / ESS cells coloured by status."""
    cells = format_cells(df, digits)
    head = "".join(f"<th>{_e(c)}</th>" for c in cells.columns)
    body = []
    for i, r in enumerate(cells.index):
        tds = []
        for j, c in enumerate(cells.columns):
            cls = ""
            if highlight and c == "Rhat":
                cls = rhat_status(float(df.iloc[i, j]))
            elif highlight and c in ("Bulk_ESS", "Tail_ESS"):
                cls = ess_status(float(df.iloc[i, j]))
            cls = f" class='{cls}'" if cls and cls != "ok" else ""
            tds.append(f"<td{cls}>{_e(cells.iloc[i, j])}</td>")
        body.append(f"<tr><th>{_e(r)}</th>{''.join(tds)}</tr>")
    return (f"<table class='stats'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def matrix_table(df: pd.DataFrame, digits: int = 2) -> str:
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = "".join(
        f"<tr><th>{_e(r)}</th>" + "".join(f"<td>{float(v):.{digits}f}</td>" for v in row)
        + "</tr>" for r, row in zip(df.index, df.to_numpy(dtype=float)))
    return (f"<table class='matrix'><thead><tr><th></th>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def meta_table(rows: list[tuple[str, str]]) -> str:
    return "<table class='meta'>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def figure_html(fig, caption: str, alt: str) -> str:
    uri = plots.to_data_uri(fig)
    return (f"<figure><img src='{uri}' alt='{_e(alt)}'>"
            f"<figcaption>{caption}</figcaption></figure>")


# -- sections -----------------------------------------------------------------------------------

def _header(fit, summary) -> str:
    from .. import __version__
    info = fit.info
    from ..results.summary import LIKELIHOOD_TEXT
    lik = _e(LIKELIHOOD_TEXT.get(summary.likelihood, summary.likelihood))
    if summary.engine_note:
        lik += f" <span class='note'>({_e(summary.engine_note)})</span>"
    rows = [("Formula", f"<code>{_e(fit.formula)}</code>"),
            ("Family", _e(summary.family) + " &nbsp; <span class='note'>"
             + _e("; ".join(summary.links)) + "</span>"),
            ("Likelihood", lik),
            ("Draws", _e(f"{summary.chains} chains × {summary.total_draws // max(summary.chains, 1)}"
                         f" draws after {summary.warmup} warmup = {summary.total_draws} draws"
                         f"; sampler {summary.sampler}"
                         + (f"; seed {info['seed']}" if info.get("seed") is not None else "")
                         + (f"; {info['seconds']:.1f} s" if isinstance(info.get("seconds"),
                                                                     (int, float)) else ""))),
            ("Generated", _e(f"{_dt.datetime.now():%Y-%m-%d %H:%M} by mixedformula "
                             f"{__version__}"))]
    return "<h1>mixedformula report</h1>" + meta_table(rows)


def _data_section(fit) -> str:
    design = fit.design
    rows = [("Observations used", _e(fit.nobs))]
    dropped = fit.meta.n_dropped
    if dropped:
        rows.append(("Rows dropped (missing values)", _e(dropped)))
    for resp, note in fit.meta.not_used.items():
        rows.append((f"Rows not used for {resp}", _e(note)))
    rows.append(("Response(s)", _e(", ".join(fit.meta.response_names))))
    if design is not None:
        rows.append(("Columns used", _e(", ".join(design.formula.variables))))
        resp = list(design.response_names)
        names = ([f"{r}_{c}" for k, r in enumerate(resp) for c in design.fixed(k)[1]]
                 if design.fixed_cols is not None else list(design.X_names))
        rows.append(("Regression coefficients", _e(", ".join(names) or "none")))
    out = [meta_table(rows)]
    if design is not None and design.y is not None:
        y = np.asarray(design.y, dtype=float)
        # nan-aware: a multivariate response may be missing in some rows (not used there)
        stats = pd.DataFrame({"n": np.isfinite(y).sum(axis=0), "mean": np.nanmean(y, axis=0),
                              "sd": np.nanstd(y, axis=0, ddof=1) if len(y) > 1 else np.nan,
                              "min": np.nanmin(y, axis=0), "median": np.nanmedian(y, axis=0),
                              "max": np.nanmax(y, axis=0)},
                             index=list(design.response_names))
        out.append("<h3>Response</h3>" + matrix_table(stats))
    groups = []
    if design is not None:
        seen = set()
        for t in design.terms:
            if t.name in seen:
                continue
            seen.add(t.name)
            counts = np.bincount(t.codes[(t.codes >= 0) & (t.codes < t.J)], minlength=t.J)
            by = f"{t.term.by} ({len(t.by_levels)} levels)" if t.by_levels else ""
            groups.append((t.name, t.J, int(counts.min()) if t.J else 0,
                           float(np.median(counts)) if t.J else 0,
                           int(counts.max()) if t.J else 0, by))
    else:
        for g in fit.meta.groups:
            groups.append((g.name, g.nlevels, "", "", "", g.by or ""))
    if groups:
        head = ("<tr><th>grouping factor</th><th>levels</th><th>min obs/level</th>"
                "<th>median</th><th>max</th><th>by</th></tr>")
        body = "".join("<tr><th>" + _e(g[0]) + "</th>" + "".join(
            f"<td>{_e(v)}</td>" for v in g[1:]) + "</tr>" for g in groups)
        out.append(f"<h3>Grouping factors</h3><table class='groups'><thead>{head}</thead>"
                   f"<tbody>{body}</tbody></table>")
    return "".join(out)


def _g_section(fit, summary, vc) -> str:
    out = []
    for head, tab in summary.blocks():
        g = head.strip()[1:].split(" (")[0]
        out.append(f"<h3>{_e(head.strip())}</h3>" + stats_table(tab, summary.digits))
        entry = vc.get(g)
        if entry is None:
            continue
        subs = ([(f"{entry['by']} = {lev}", e) for lev, e in entry["levels"].items()]
                if "levels" in entry else [("", entry)])
        for label, e in subs:
            if len(e["cor"]) > 1:
                out.append(_cor_cov_pair("G", label, "correlation", e))
    if not out:
        return "<p class='note'>The model has no group-level terms.</p>"
    return "".join(out)


def _cor_cov_pair(matrix: str, label: str, what: str, e) -> str:
    """A correlation and a covariance matrix side by side, with a caption."""
    return (f"<p class='note'>{matrix}{(' for ' + _e(label)) if label else ''}: "
            f"posterior mean {what} (left) and covariance (right)</p>"
            "<div style='display:flex;gap:28px;flex-wrap:wrap'>"
            + matrix_table(e["cor"]) + matrix_table(e["cov"]) + "</div>")


def _r_section(fit, summary, vc) -> str:
    out = []
    if len(summary.spec_pars):
        out.append("<h3>Further distributional parameters</h3>"
                   + stats_table(summary.spec_pars, summary.digits))
    if len(summary.rescor):
        out.append("<h3>Residual correlations</h3>" + stats_table(summary.rescor,
                                                                  summary.digits))
    res = vc.get("residual")
    if res is not None:
        subs = ([(lev, e) for lev, e in res["levels"].items()] if "levels" in res
                else [("", res)])
        for label, e in subs:
            if len(e["cov"]) > 1:
                out.append(_cor_cov_pair("R", label, "residual correlation", e))
            elif len(e["cov"]) == 1:
                out.append("<p class='note'>R = σ² I: residual variance "
                           f"{float(e['cov'].iloc[0, 0]):.4g} (posterior mean of σ²), "
                           "independent observations given the group effects.</p>")
    out += residual_structure_html(fit)
    return "".join(out) or "<p class='note'>This family has no residual parameters.</p>"


def residual_structure_html(fit) -> list[str]:
    """The ar()/cosy() residual structure: its parameters, the implied correlation matrix R_j
    of a typical subject (:mod:`mixedformula.results.structures`) and its heatmap."""
    from ..results.structures import residual_structure
    v = residual_structure(fit)
    if v is None:
        return []
    who = f"{v.group} = {v.level}" if v.group else "the series"
    pars = ", ".join(f"{k} = {x:.3f}" for k, x in v.parameters.items())
    more = f"; the first {len(v.matrix)} shown" if len(v.matrix) < v.n_rows else ""
    head = (f"<h3>Residual structure {_e(v.text)}</h3><p class='note'>{_e(pars)}. Implied "
            f"correlation R_j of {_e(who)} ({v.n_rows} rows, labelled by time{_e(more)}); "
            f"{_e(v.form)}:</p>")
    fig = figure_html(plots.correlation_heatmap([(f"R_j ({who})", v.matrix)]),
                      f"Residual correlation matrix R_j of a typical subject ({_e(who)}) "
                      f"implied by {_e(v.text)}.", "R_j heatmap")
    return [head + matrix_table(v.matrix), fig]


def _diagnostics_section(items: list[Check]) -> str:
    label = {"ok": "OK", "warn": "warning", "bad": "problem"}
    body = "".join(
        f"<tr><th>{_e(c.name)}</th><td class='{c.status}'>{_e(c.value)}</td>"
        f"<td class='{c.status}'>{label[c.status]}</td>"
        f"<td style='text-align:left;max-width:520px'>{_e(c.advice)}</td></tr>" for c in items)
    return ("<table class='diagnostics'><thead><tr><th>check</th><th>value</th><th>status</th>"
            f"<th style='text-align:left'>advice</th></tr></thead><tbody>{body}</tbody></table>"
            "<p class='note'>Thresholds: Rhat ≤ 1.01 and ESS ≥ 400 are fine; Rhat &gt; 1.05 "
            "or ESS &lt; 100 are problems (Vehtari et al. 2021). Table cells above use the "
            "same colours.</p>")


def _flat(da) -> np.ndarray:
    a = np.asarray(da.values)
    return a.reshape((-1,) + a.shape[2:])


def _figures(fit, summary, vc) -> list[str]:
    """Every plot as an HTML <figure>; a plot that cannot be drawn leaves a note instead."""
    post = fit.posterior
    index = fit.index
    out: list[str] = []
    names = index.scalar_vars()
    shown = names[:MAX_TRACE]
    if shown:
        fig = plots.trace_rank({v: np.asarray(post[v].values) for v in shown})
        more = f" (first {MAX_TRACE} of {len(names)} parameters)" if len(names) > MAX_TRACE \
            else ""
        out.append(figure_html(fig, "Trace and rank plots" + _e(more) + ": chains should "
                               "overlap and rank histograms be flat.", "trace and rank plots"))
    if index.fixed:
        fixed = {fixed_label(v): _flat(post[v]) for v in index.fixed}
        non_int = {k: v for k, v in fixed.items() if not k.endswith("Intercept")}
        draws = non_int or fixed
        fig = plots.forest(draws)
        note = " Intercepts are left out (their scale differs); see the table." \
            if non_int and len(non_int) < len(fixed) else ""
        out.append(figure_html(fig, "Forest plot of the regression coefficients." + note,
                               "forest plot"))
    for g, var in index.ranef.items():
        da = post[var]
        levels = [str(x) for x in da.coords[da.dims[2]].values]
        coefs = [str(x) for x in da.coords[da.dims[3]].values]
        fig = plots.caterpillar(_flat(da), levels, coefs, g)
        out.append(figure_html(fig, f"Caterpillar plot of the group effects of {_e(g)} "
                               "(deviations from the population coefficients), sorted, with "
                               "95% intervals.", f"caterpillar plot {g}"))
    gmats = []
    for g, entry in vc.items():
        if g == "residual":
            continue
        subs = ([(f"G {g} ({entry['by']} = {lev})", e) for lev, e in entry["levels"].items()]
                if "levels" in entry else [(f"G {g}", entry)])
        gmats += [(t, e["cor"]) for t, e in subs if len(e["cor"]) > 1]
    if gmats:
        out.append(figure_html(plots.correlation_heatmap(gmats), "Group-level correlation "
                               "matrices (posterior means): correlations among the group "
                               "effects (e.g. intercepts and slopes), not among predictors.",
                               "G correlation heatmap"))
    res = vc.get("residual")
    if res is not None:
        subs = ([(f"R ({lev})", e) for lev, e in res["levels"].items()] if "levels" in res
                else [("R", res)])
        rmats = [(t, e["cor"]) for t, e in subs if len(e["cor"]) > 1]
        if rmats:
            out.append(figure_html(plots.correlation_heatmap(rmats), "Residual correlation "
                                   "matrices (posterior means).", "R correlation heatmap"))
    if fit.design is not None and fit.design.y is not None:
        from .draws import draw_indices, replicate
        idx = draw_indices(post, 50)
        yrep, why = replicate(fit, idx, seed=1)
        if yrep is None:
            out.append(f"<p class='note'>Posterior predictive check skipped: {_e(why)}.</p>")
        else:
            fig = plots.ppc_density(np.asarray(fit.design.y, dtype=float), yrep,
                                    list(fit.design.response_names),
                                    discrete=bool(getattr(fit.family, "discrete", False)))
            out.append(figure_html(fig, "Posterior predictive check: the observed distribution "
                                   "(black) should look like a typical replicated one (blue), "
                                   "y_rep = Xβ + Zu + noise from the posterior.",
                                   "posterior predictive check"))
    else:
        out.append("<p class='note'>Posterior predictive check and conditional effects need "
                   "the data; this fit was loaded without them.</p>")
    from .effects import conditional_effect
    ce = conditional_effect(fit) if fit.design is not None else None
    if ce is not None:
        out.append(figure_html(plots.conditional_effect(ce), f"Conditional effect of "
                               f"<code>{_e(ce.xname)}</code> at the population level (group "
                               "effects 0), other predictors at their means; band: 95% "
                               "interval.", "conditional effects"))
    return out


# -- page ---------------------------------------------------------------------------------------

BAYES_EFFECTS_NOTE = ("Response scale, averaged over the fitted rows with the group effects of "
                      "each row (marginaleffects' avg_slopes / avg_comparisons): posterior "
                      "median and 95% equal-tailed interval.")


def _effects_section(fit, note: str = BAYES_EFFECTS_NOTE) -> str:
    """Average slope / pairwise comparison of each predictor (results/marginaleffects.py)."""
    try:
        from ..results.marginaleffects import average_effects
        tab = average_effects(fit)
    except MixedFormulaError as e:
        return f"<p class='note'>Not available: {_e(e)}</p>"
    if not len(tab):
        return "<p class='note'>No predictors in the fixed part.</p>"
    return (tab.to_html(index=False, border=0, classes="effects", float_format=lambda v:
                        f"{v:.3g}", escape=True)
            + f"<p class='note'>{_e(note)}</p>")


def page(title: str, header: str, nav: list[tuple[str, str]], alerts: list[str],
         body: list[str]) -> str:
    """The page scaffolding every report shares: head with the inline styles, the header, the
    navigation (anchor, text), the alerts, then the body's sections."""
    links = "".join(f"<a href='#{a}'>{t}</a>" for a, t in nav)
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        header, f"<nav>{links}</nav>", *alerts, *body, "</main></body></html>"]
    return "\n".join(parts)


def build_html(fit, title: str | None = None) -> str:
    """The report as one HTML string (point-estimate fits: :mod:`.point`)."""
    if not hasattr(fit, "idata"):
        from .point import build_point_html
        return build_point_html(fit, title)
    summary = fit.summary()
    vc = fit.varcorr()
    items = checks(fit.idata, [*summary.random.values(), summary.fixed, summary.spec_pars,
                               summary.rescor])
    problems = [c for c in items if c.status != "ok"]
    figs = _figures(fit, summary, vc)
    title = title or f"mixedformula: {fit.formula}"
    nav = [("data", "Data"), ("G", "Group level (G)"), ("fixed", "Coefficients"),
           ("R", "Residual (R)"), ("effects", "Average effects"), ("diagnostics", "Diagnostics"),
           ("plots", "Plots"), ("priors", "Priors"), ("text", "Summary text")]
    alerts = []
    for w in summary.warnings:
        alerts.append(f"<div class='alert'><b>Warning:</b> {_e(w)}</div>")
    for c in problems:
        alerts.append(f"<div class='alert {'warn' if c.status == 'warn' else ''}'><b>"
                      f"{_e(c.name)}: {_e(c.value)}.</b> {_e(c.advice)}</div>")
    if not alerts:
        alerts.append("<div class='good'>No sampling problems detected (no divergences, "
                      "Rhat ≤ 1.01, effective sample sizes ≥ 400).</div>")
    try:
        priors = fit.prior_summary()
        prior_html = priors.to_html(index=False, border=0, classes="priors", escape=True) \
            if priors is not None and len(priors) else "<p class='note'>No prior table.</p>"
    except Exception as e:   # a loaded fit without priors: say so, do not fail the report
        prior_html = f"<p class='note'>Prior table unavailable ({_e(type(e).__name__)}).</p>"
    body = [
        "<h2 id='data'>Data</h2>", _data_section(fit),
        "<h2 id='G'>Multilevel hyperparameters: group-level covariance G</h2>",
        _g_section(fit, summary, vc),
        "<h2 id='fixed'>Regression coefficients</h2>",
        stats_table(summary.fixed, summary.digits) if len(summary.fixed)
        else "<p class='note'>No regression coefficients.</p>",
        "<h2 id='R'>Residual: further distributional parameters and R</h2>",
        _r_section(fit, summary, vc),
        "<h2 id='effects'>Average slopes and comparisons</h2>", _effects_section(fit),
        "<h2 id='diagnostics'>Diagnostics</h2>", _diagnostics_section(items),
        "<h2 id='plots'>Plots</h2>", *figs,
        "<h2 id='priors'>Priors</h2>", prior_html,
        "<h2 id='text'>Summary (as printed)</h2>", f"<pre>{_e(str(summary))}</pre>"]
    return page(title, _header(fit, summary), nav, alerts, body)


def write_report(fit, path) -> str:
    """Write the report for ``fit`` to ``path`` (atomically: temporary file, then rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        from ..errors import MixedFormulaError
        raise MixedFormulaError(f"cannot write the report to {path!r}: the directory "
                                f"{directory!r} does not exist")
    text = build_html(fit)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    from ..results.atomic import atomic_write
    return atomic_write(path, write, suffix=".html", shared=True)   # a report is shared


#: the average-effects section, shared with the point-estimate report (point.py)
effects_section = _effects_section
