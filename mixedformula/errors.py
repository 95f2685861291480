"""Exceptions raised by mixedformula.

Every user-facing problem is one of these, with a message that names the problem:
the formula with a caret under the offending token, the missing column, the unseen level.
"""

from __future__ import annotations


class MixedFormulaError(Exception):
    """Base class of every error raised on purpose by mixedformula."""


class FormulaError(MixedFormulaError, ValueError):
    """A formula that cannot be parsed, or that refers to something that cannot be evaluated.

    ``str(err)`` shows the message, then the formula with a caret line under the span
    ``[start, end)`` that caused it.
    """

    def __init__(self, message: str, formula: str | None = None, start: int | None = None,
                 end: int | None = None):
        self.message = message
        self.formula = formula
        self.start = start
        self.end = end
        super().__init__(self._render())

    def _render(self) -> str:
        if self.formula is None or self.start is None:
            return self.message
        start = max(0, min(self.start, len(self.formula)))
        end = self.end if self.end is not None and self.end > start else start + 1
        # Keep the pointer readable on very long formulas: show a window around it.
        text, offset = self.formula, 0
        if len(text) > 160:
            offset = max(0, start - 60)
            text = ("..." if offset else "") + text[offset:offset + 140] + (
                "..." if offset + 140 < len(self.formula) else "")
            start, end = start - offset + (3 if offset else 0), end - offset + (3 if offset else 0)
        caret = " " * start + "^" * max(1, min(end - start, len(text) - start + 1))
        return f"{self.message}\n    {text}\n    {caret}"


class DataError(MixedFormulaError, ValueError):
    """The data do not fit the formula: a missing column, an unusable response, an unseen level."""


class FamilyError(MixedFormulaError, ValueError):
    """An unknown family or a response the family cannot describe."""


class PriorError(MixedFormulaError, ValueError):
    """A prior string or class/coef/group combination that cannot be used."""


class ConvergenceWarning(UserWarning):
    """A fit whose chains have not converged or mixed: R-hat above 1.01, divergent transitions
    after warmup, or bulk / tail effective sample sizes below brms' (rstan's) 100 per chain.
    Issued at the end of ``fit()``, naming the parameters; the CLI prints it on stderr."""
