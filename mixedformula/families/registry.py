"""Families by name: ``register`` (a class decorator used by each family module), ``get_family``
and ``family_names``. Adding a family is one module that defines a :class:`~.base.Family`
subclass decorated with ``@register`` and is imported in ``families/__init__.py``."""

from __future__ import annotations

from ..errors import FamilyError
from .base import Family
from ..formula.family_call import MAX_FAMILY_CALL, parse_family_call  # noqa: F401

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


def family_names() -> list[str]:
    return sorted(_FAMILIES)
