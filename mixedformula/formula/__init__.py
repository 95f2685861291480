"""Formula text → :class:`FormulaSpec` (syntax only; no data, nothing evaluated)."""

from .spec import FormulaSpec, GroupTerm, bf, mvbind_as_parts, parse, parse_fixed

__all__ = ["FormulaSpec", "GroupTerm", "bf", "mvbind_as_parts", "parse", "parse_fixed"]
