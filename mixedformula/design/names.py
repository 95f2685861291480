"""brms-style coefficient names from formulaic column names.

formulaic writes ``f[T.b]`` for the treatment-coded level b of f, ``C(f, contr.sum)[S.a]`` for a
sum-coded one and ``log(`z`)`` for a transform. brms writes ``fb`` and ``logz``: it drops the
contrast marker and applies ``brms:::rename`` (spaces, parentheses, brackets, commas and quotes
removed; ``+ - * / ^ = $`` spelled ``P M MU D E EQ USD``, brms' R/misc.R), keeping ``:`` for interactions.
"""

from __future__ import annotations

import re

_CONTRAST_MARK = re.compile(r"\[(?:[A-Za-z]+\.)?([^\[\]]*)\]")
_RENAME = [(" ", ""), ("(", ""), (")", ""), ("[", ""), ("]", ""), (",", ""), ('"', ""),
           ("'", ""), ("`", ""), ("?", "Q"), ("+", "P"), ("-", "M"), ("*", "MU"), ("/", "D"),
           ("^", "E"), ("=", "EQ"), ("$", "USD")]


def brms_name(column: str) -> str:
    """``'f[T.b]:x'`` → ``'fb:x'``; ``'log(`z`)'`` → ``'logz'``; ``'Intercept'`` stays."""
    name = column.replace("**", "^")
    name = _CONTRAST_MARK.sub(lambda m: m.group(1), name)
    for old, new in _RENAME:
        name = name.replace(old, new)
    return name


def brms_names(columns) -> list[str]:
    """Rename every column; where two collapse to one name, keep them apart with a suffix."""
    out: list[str] = []
    for c in columns:
        n = brms_name(str(c))
        base, k = n, 2
        while n in out:
            n = f"{base}_{k}"
            k += 1
        out.append(n)
    return out


def response_name(expr: str) -> str:
    """brms' name of a response in multivariate names: ``log(`y`)`` → ``logy``; ``y_1`` → ``y1``."""
    return brms_name(expr).replace("_", "").replace(".", "")
