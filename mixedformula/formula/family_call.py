"""The family-call reader: ``"name"`` or ``"name(arg, key = value)"`` read as text, never
evaluated (the top-level ``family=``, the CLI's ``--family`` and brms' ``bf(..., family =
poisson())`` all go through it; :func:`~mixedformula.families.registry.get_family` then checks
the name and the family's arguments)."""

from __future__ import annotations

from ..errors import FamilyError

#: the longest family text read (``"categorical(refcat = '...')"`` with a long category label
#: fits easily); longer text is refused before any pattern runs on it (untrusted input: the
#: CLI's ``--family``), so reading costs O(MAX_FAMILY_CALL) at most and no error message
#: echoes an unbounded string
MAX_FAMILY_CALL = 1000


def parse_family_call(text: str):
    """``"name"`` or ``"name(arg, key = value, ...)"`` → (name, positional, keywords), never
    evaluated: a value is a quoted string, ``NA`` (R's NA: ``math.nan``), ``NULL`` (None),
    ``TRUE``/``FALSE`` or a bare name (taken as text, R's ``cumulative(probit)``). Text longer
    than :data:`MAX_FAMILY_CALL` characters is refused unread."""
    import math
    import re
    if len(text) > MAX_FAMILY_CALL:
        raise FamilyError(f"family text is {len(text)} characters long, more than the "
                          f"{MAX_FAMILY_CALL} a family name or call may have (it begins "
                          f"{text[:40]!r})")
    s = text.strip()
    m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.]*)\s*(?:\((.*)\))?", s, flags=re.S)
    if m is None:
        raise FamilyError(f"family {text!r} is not a family name or a call like "
                          "cumulative('probit') / categorical(refcat = 'C')")
    name, inner = m.group(1), m.group(2)
    args, kwargs = [], {}
    if inner is None or not inner.strip():
        return name, args, kwargs
    token = re.compile(r"\s*(?:([A-Za-z][A-Za-z0-9_.]*)\s*=(?!=)\s*)?"
                       r"('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[A-Za-z0-9_.+-]+)\s*(,|$)")
    at = 0
    while at < len(inner):
        t = token.match(inner, at)
        if t is None or t.end() == at:
            raise FamilyError(f"family {text!r}: cannot read the arguments at "
                              f"{inner[at:]!r} (write quoted strings, NA, NULL or names)")
        key, raw, comma = t.group(1), t.group(2), t.group(3)
        if raw[0] in "'\"":
            value = raw[1:-1].replace("\\" + raw[0], raw[0])
        else:
            value = {"NA": math.nan, "NULL": None, "TRUE": True, "FALSE": False}.get(raw, raw)
        if key is None:
            if kwargs:
                raise FamilyError(f"family {text!r}: a positional argument after a named one")
            args.append(value)
        elif key in kwargs:
            raise FamilyError(f"family {text!r}: argument {key!r} is given twice")
        else:
            kwargs[key] = value
        at = t.end()
        if not comma:
            break
    if at < len(inner):
        raise FamilyError(f"family {text!r}: cannot read the arguments at {inner[at:]!r}")
    return name, args, kwargs
