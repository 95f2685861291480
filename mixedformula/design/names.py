"""brms-style coefficient names from formulaic column names.

formulaic writes ``f[T.b]`` for the treatment-coded level b of f, ``C(f, contr.sum)[S.a]`` for a
sum-coded one and ``log(`z`)`` for a transform. brms writes ``fb`` and ``logz``: it drops the
contrast marker and applies ``brms:::rename`` (spaces, parentheses, brackets, commas and quotes
removed; ``+ - * / ^ =`` spelled ``P M MU D E EQ``), keeping ``:`` for interactions.
"""

from __future__ import annotations

import re

_CONTRAST_MARK = re.compile(r"\[(?:[A-Za-z]+\.)?([^\[\]]*)\]")
_RENAME = [(" ", ""), ("(", ""), (")", ""), ("[", ""), ("]", ""), (",", ""), ('"', ""),
           ("'", ""), ("`", ""), ("?", "Q"), ("+", "P"), ("-", "M"), ("*", "MU"), ("/", "D"),
           ("^", "E"), ("=", "EQ")]


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


def cor_name(group: str, c1: str, c2: str, tag: str = "") -> str:
    """brms' name of a group-level correlation: ``cor_g__Intercept__x``; for gr(g, by = h) the
    level tag follows each coefficient, ``cor_g__Intercept:hA__x:hA`` (``tag = ":hA"``)."""
    return f"cor_{group}__{c1}{tag}__{c2}{tag}"


def legacy_cor_names(names, terms) -> dict[str, str]:
    """Old name → brms name of by-group correlations in fits saved before the names followed
    brms (``cor_g__Intercept__x:hA`` → ``cor_g__Intercept:hA__x:hA``); ``terms`` are the
    design's GroupBlocks. Coefficient names never contain ``__``, so the split is unique."""
    out = {}
    names = set(names)
    for t in terms:
        if not t.by_levels:
            continue
        head = f"cor_{t.name}__"
        for lev in t.by_levels:
            tag = f":{t.term.by}{lev}"
            for v in names:
                if v.startswith(head) and v.endswith(tag):
                    parts = v[len(head):-len(tag)].split("__")
                    if len(parts) == 2 and not parts[0].endswith(tag):
                        new = cor_name(t.name, parts[0], parts[1], tag)
                        if new not in names:
                            out[v] = new
    return out


def legacy_logical_names(names, design) -> dict[str, str]:
    """Old name → current name of fixed effects of logical predictors in fits saved before they
    were coded as R does (``b_b`` → ``b_bTRUE``, ``b_b:x`` → ``b_bTRUE:x``)."""
    specs = design.spec.parts or [design.spec]
    logical = {c for s in specs for c, k in s.codings.items() if k.kind == "logical"}
    if not logical:
        return {}
    names = set(names)
    prefixes = [""] + [f"{r}_" for r in design.response_names]
    out = {}
    for x in dict.fromkeys(design.X_names):
        old = ":".join(t[:-4] if t.endswith("TRUE") and t[:-4] in logical else t
                       for t in x.split(":"))
        for pre in prefixes:
            if old != x and f"b_{pre}{old}" in names and f"b_{pre}{x}" not in names:
                out[f"b_{pre}{old}"] = f"b_{pre}{x}"
    return out
