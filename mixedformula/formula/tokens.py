"""Tokenizer for lme4/brms formulas.

Hand-written because the token set is R's formula language (``|``, ``||``, ``%in%``-free,
backquoted names, dotted R names), not Python's: formulaic's own tokenizer accepts Python
blocks (``{...}``) that would run arbitrary code, so untrusted text must never reach it
unchecked. Every token keeps its character span so errors can point at it.

Only these characters may appear outside strings and backquotes: letters, digits, ``_``,
``.``, white space and ``~ + - * / : ^ | ( ) , =``. Anything else (``{``, ``[``, ``;``,
``@``, ``$``, ``!``, ``&``, ``<``, ``%``, ...) is rejected here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import FormulaError

MAX_FORMULA_LENGTH = 10_000

_NAME = re.compile(r"[A-Za-z_.][A-Za-z0-9_.]*")
_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
#: ``pkg::f`` prefixes accepted before these functions (the prefix is dropped: the call is the
#: same allow-listed function; names are written without it)
PACKAGE_FUNCTIONS = {
    "stats": {"poly", "offset", "scale"},
    "splines": {"ns", "bs"},
    "base": {"factor", "as.factor", "as.numeric", "as.integer", "I", "log", "log2", "log10",
             "exp", "sqrt", "abs", "round", "floor", "ceiling", "scale"},
}
_OPERATORS = ("||", "**", "~", "+", "-", "*", "/", ":", "^", "|", "(", ")", ",", "=")


@dataclass(frozen=True)
class Token:
    kind: str  # NAME, NUMBER, STRING, OP, END
    value: str
    start: int
    end: int
    quoted: bool = False  # NAME written in backquotes


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raise FormulaError at the first character that is not allowed."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, not {type(text).__name__}")
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaError(f"formula is {len(text)} characters long; at most "
                           f"{MAX_FORMULA_LENGTH} are accepted")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                raise FormulaError("unterminated backquoted name", text, i, n)
            name = text[i + 1:j]
            if not name or "\n" in name:
                raise FormulaError("empty or multi-line backquoted name", text, i, j + 1)
            tokens.append(Token("NAME", name, i, j + 1, quoted=True))
            i = j + 1
            continue
        if ch in "\"'":
            j = i + 1
            while j < n and text[j] != ch:
                if text[j] == "\\":
                    raise FormulaError("escapes are not allowed in strings", text, j, j + 1)
                j += 1
            if j >= n:
                raise FormulaError("unterminated string", text, i, n)
            tokens.append(Token("STRING", text[i + 1:j], i, j + 1))
            i = j + 1
            continue
        m = _NUMBER.match(text, i)
        if m and (ch.isdigit() or (ch == "." and i + 1 < n and text[i + 1].isdigit())):
            tokens.append(Token("NUMBER", m.group(), i, m.end()))
            i = m.end()
            continue
        m = _NAME.match(text, i)
        if m:
            name = m.group()
            if name == ".":
                raise FormulaError("'.' (all other columns) is not supported: name the predictors",
                                   text, i, i + 1)
            start = i
            if text.startswith("::", m.end()):
                name, i = _package_call(text, name, start, m.end())
                tokens.append(Token("NAME", name, start, i))
                continue
            tokens.append(Token("NAME", name, i, m.end()))
            i = m.end()
            continue
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("OP", op, i, i + len(op)))
                i += len(op)
                break
        else:
            hint = {
                "{": "Python blocks {...} are not allowed in formulas",
                "[": "subscripts [...] are not allowed in formulas",
                "$": "'$' column access is not allowed; write the column name",
                "%": "'%...%' operators are not supported (write g1/g2 for nesting)",
            }.get(ch, f"character {ch!r} is not allowed in a formula")
            raise FormulaError(hint, text, i, i + 1)
    tokens.append(Token("END", "", n, n))
    return tokens


def _package_call(text: str, pkg: str, start: int, end: int) -> tuple[str, int]:
    """``pkg::f(`` → the name ``f`` when f is one of :data:`PACKAGE_FUNCTIONS` [pkg]."""
    m = _NAME.match(text, end + 2)
    funcs = PACKAGE_FUNCTIONS.get(pkg)
    if funcs is None:
        raise FormulaError(f"'{pkg}::' is not supported; the package prefix is accepted for "
                           f"{', '.join(sorted(PACKAGE_FUNCTIONS))} only", text, start, end + 2)
    if m is None or m.group() not in funcs:
        what = repr(m.group()) if m else "nothing"
        raise FormulaError(f"{pkg}::{m.group() if m else ''} is not allowed: after '{pkg}::' "
                           f"expected one of {', '.join(sorted(funcs))}, found {what}", text,
                           start, m.end() if m else end + 2)
    j = m.end()
    while j < len(text) and text[j].isspace():
        j += 1
    if not text.startswith("(", j):
        raise FormulaError(f"{pkg}::{m.group()} must be called, like {m.group()}(x)", text,
                           start, m.end())
    return m.group(), m.end()
