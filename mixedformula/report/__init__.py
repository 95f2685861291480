"""HTML report of a fit: ``write_report(fit, "out.html")`` (also ``mixedformula fit ... --report``).

=================  ==========================================================================
module             computes
=================  ==========================================================================
``html.py``        the page: tables (brms layout), diagnostics, figures as base64 PNG
``plots.py``       matplotlib figures (object API, Agg canvas; pyplot state is never touched)
``diagnostics.py`` divergences, tree depth, Rhat, ESS, E-BFMI with status and advice
``draws.py``       η = Xβ + Zu and replicated data y_rep per posterior draw
``effects.py``     conditional effect of the main predictor (population level)
=================  ==========================================================================
"""

from __future__ import annotations


def write_report(fit, path) -> str:
    """Write a self-contained HTML report for ``fit`` to ``path``; returns the path."""
    from .html import write_report as _write
    return _write(fit, path)


def build_html(fit, title: str | None = None) -> str:
    """The report as an HTML string."""
    from .html import build_html as _build
    return _build(fit, title)


__all__ = ["write_report", "build_html"]
