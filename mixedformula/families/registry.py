"""Families by name: ``register`` (a class decorator used by each family module), ``get_family``
and ``family_names``. Adding a family is one module that defines a :class:`~.base.Family`
subclass decorated with ``@register`` and is imported in ``families/__init__.py``."""

from __future__ import annotations

from ..errors import FamilyError
from .base import Family

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
    ``Family`` object; ``link=`` overrides the default link."""
    if isinstance(family, Family):
        return family.with_link(link)
    if not isinstance(family, str):
        raise FamilyError(f"family must be a string like 'gaussian', not {family!r}")
    key = _ALIASES.get(family, family).lower()
    if key not in _FAMILIES:
        raise FamilyError(f"unknown family {family!r}; known: {', '.join(sorted(_FAMILIES))}")
    return _FAMILIES[key](link)


def family_names() -> list[str]:
    return sorted(_FAMILIES)
