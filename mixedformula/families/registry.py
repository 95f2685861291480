"""Families by name: ``register`` (a class decorator used by each family module), ``get_family``
and ``family_names``. Adding a family is one module that defines a :class:`~.base.Family`
subclass decorated with ``@register`` and is imported in ``families/__init__.py``."""

from __future__ import annotations

from ..errors import FamilyError
from .base import Family

#: the longest family text read (``"categorical(refcat = '...')"`` with a long category label
#: fits easily); longer text is refused before any pattern runs on it (untrusted input: the
#: CLI's ``--family``), so reading costs O(MAX_FAMILY_CALL) at most and no error message
#: echoes an unbounded string
MAX_FAMILY_CALL = 1000

_FAMILIES: dict[str, type[Family]] = {}
_ALIASES: dict[str, str] = {}


def register(cls: type[Family]) -> type[Family]:
    """Register a family class under ``cls.name`` and its ``cls.aliases``."""
    if not cls.name or cls.name in _FAMILIES:
        raise ValueError(f"family name {cls.name!r} is empty or registered twice")
    if cls.default_link not in cls.allowed_links:
        raise ValueError(f"family {cls.name!r}: default link not among its allowed links")
    _FAMILIES[cls.name] = cls
    for a in cls.aliases:
        _ALIASES[a] = cls.name
    return cls


def get_family(family: "str | Family", link: str | None = None) -> Family:
    """``"gaussian"``, ``"bernoulli"``, aliases (``"normal"``, ``"negbin"``, ...) or a
    ``Family`` object; ``link=`` overrides the default link. A string may be a call written as
    in R (:func:`parse_family_call`): ``"cumulative('probit')"``, ``"cumulative(probit)"``,
    ``"sratio(link = 'cloglog')"``, ``"categorical(refcat = 'C')"``, ``"categorical(refcat =
    NA)"``; arguments other than the link are those the family names in
    ``Family.family_arguments``."""
    if isinstance(family, Family):
        return family.with_link(link)
    if not isinstance(family, str):
        raise FamilyError(f"family must be a string like 'gaussian', not {family!r}")
    name, args, kwargs = parse_family_call(family)
    key = _ALIASES.get(name, name).lower()
    if key not in _FAMILIES:
        raise FamilyError(f"unknown family {name!r}; known: {', '.join(sorted(_FAMILIES))}")
    cls = _FAMILIES[key]
    if len(args) > 1:
        raise FamilyError(f"family {family!r}: only the link may be given without a name "
                          f"(write {name}(link = ..., name = value))")
    call_link = args[0] if args else kwargs.pop("link", None)
    if "link" in kwargs:
        raise FamilyError(f"family {family!r}: the link is given twice")
    if call_link is not None and not isinstance(call_link, str):
        raise FamilyError(f"family {family!r}: the link must be a name like 'probit'")
    if call_link is not None and link is not None and call_link != link:
        raise FamilyError(f"family {family!r} has link {call_link!r} but link={link!r} was "
                          "also passed")
    unknown = [k for k in kwargs if k not in cls.family_arguments]
    if unknown:
        known = ", ".join(("link",) + tuple(cls.family_arguments))
        raise FamilyError(f"family {family!r}: {cls.name}() has no argument "
                          f"{', '.join(map(repr, unknown))} (its arguments: {known})")
    return cls(link if link is not None else call_link, **kwargs)


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


def family_names() -> list[str]:
    return sorted(_FAMILIES)
