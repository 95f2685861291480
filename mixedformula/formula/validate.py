"""What a term may contain before anything is evaluated, and how it is written for formulaic.

Security model: formulas may come from untrusted places. formulaic evaluates the text of each
factor as Python, so the text we hand it is *generated* from a validated syntax tree, never
passed through. Allowed in a term: column names (always emitted backquoted, so formulaic looks
them up as variables and can never see attribute access), numeric literals, the operators of
the formula language, string literals only as arguments of allow-listed calls, and calls to the
functions in :data:`TRANSFORMS`. Everything else (dunder names, attribute access, subscripts,
lambdas, ``{...}`` blocks, other calls) is rejected with a FormulaError pointing at it.
"""

from __future__ import annotations

import keyword

import numpy as np

from ..errors import FormulaError
from .syntax import BinOp, Call, Keyword, Name, Neg, Node, Number, Paren, String

#: Functions a term may call. Stateful ones (scale, center, standardize, poly, bs, cr, cc, cs,
#: C) are formulaic's own; the numpy ones are passed to formulaic in its evaluation context.
NUMPY_FUNCTIONS = {
    "sqrt": np.sqrt, "abs": np.abs, "log1p": np.log1p, "expm1": np.expm1,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "floor": np.floor, "ceiling": np.ceil, "round": np.round,
    "pnorm": None,  # filled lazily below
    "inv_logit": None,
}
FORMULAIC_FUNCTIONS = {"log", "log2", "log10", "exp", "scale", "center", "standardize", "C",
                       "I", "poly", "bs", "cr", "cc", "cs"}
CONTRASTS = {"contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.diff"}
TRANSFORMS = set(NUMPY_FUNCTIONS) | FORMULAIC_FUNCTIONS | CONTRASTS


def _pnorm(x):
    from scipy.special import ndtr
    return ndtr(x)


def _inv_logit(x):
    from scipy.special import expit
    return expit(x)


NUMPY_FUNCTIONS["pnorm"] = _pnorm
NUMPY_FUNCTIONS["inv_logit"] = _inv_logit
#: Functions whose arguments are raw Python-ish arithmetic rather than formula terms.
_ARITHMETIC_CALLS = {"I"}
#: Literal constants accepted as keyword values (R spellings too).
_CONSTANTS = {"TRUE": "True", "FALSE": "False", "T": "True", "F": "False", "True": "True",
              "False": "False", "NULL": "None", "None": "None"}


def check_name(node: Name, text: str) -> None:
    if "__" in node.name:
        raise FormulaError("names containing '__' are not allowed", text, node.start, node.end)
    if not node.quoted and (node.name.startswith(".") or node.name.endswith(".")):
        raise FormulaError(f"{node.name!r} is not a valid name", text, node.start, node.end)
    if not node.quoted and keyword.iskeyword(node.name) and node.name not in _CONSTANTS:
        raise FormulaError(f"{node.name!r} is a reserved word; write `{node.name}` in "
                           "backquotes if it is a column", text, node.start, node.end)


def variables(node: Node) -> list[str]:
    """Column names a validated term refers to, in order of appearance."""
    out: list[str] = []

    def walk(n: Node, in_call: str | None = None) -> None:
        if isinstance(n, Name):
            if n.name not in CONTRASTS and not (in_call and n.name in _CONSTANTS):
                if n.name not in out:
                    out.append(n.name)
        elif isinstance(n, Call):
            for a in n.args:
                if isinstance(a, Keyword):
                    walk(a.value, n.func)
                else:
                    walk(a, None)
        elif isinstance(n, BinOp):
            walk(n.left)
            walk(n.right)
        elif isinstance(n, (Neg,)):
            walk(n.operand)
        elif isinstance(n, Paren):
            walk(n.inner)

    walk(node)
    return out


def render(node: Node, text: str, arithmetic: bool = False) -> str:
    """Validate ``node`` and write it as formulaic text.

    ``arithmetic`` is true inside ``I(...)``, where ``^`` means power (R) and is written ``**``.
    """
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Name):
        check_name(node, text)
        if node.name in CONTRASTS:
            raise FormulaError(f"{node.name} may only appear as an argument of C()", text,
                               node.start, node.end)
        name = node.name.replace("`", "")
        return f"`{name}`"
    if isinstance(node, String):
        raise FormulaError("strings may only appear as arguments of a function", text,
                           node.start, node.end)
    if isinstance(node, Neg):
        return f"-{render(node.operand, text, arithmetic)}"
    if isinstance(node, Paren):
        return f"({render(node.inner, text, arithmetic)})"
    if isinstance(node, BinOp):
        if node.op in ("|", "||"):
            raise FormulaError(f"a bar {node.op!r} must be inside parentheses, like (1 | g)",
                               text, node.start, node.end)
        op = node.op
        if arithmetic and op == "^":
            op = "**"
        if not arithmetic and op == "**":
            op = "^"
        left = render(node.left, text, arithmetic)
        right = render(node.right, text, arithmetic)
        return f"{left} {op} {right}"
    if isinstance(node, Call):
        return _render_call(node, text)
    if isinstance(node, Keyword):
        raise FormulaError("keyword arguments only go inside a function call", text,
                           node.start, node.end)
    raise FormulaError("unsupported expression", text, node.start, node.end)


def _render_call(node: Call, text: str) -> str:
    if "__" in node.func or node.func not in TRANSFORMS:
        allowed = ", ".join(sorted(TRANSFORMS - CONTRASTS))
        raise FormulaError(f"function {node.func}() is not allowed in a formula "
                           f"(allowed: {allowed})", text, node.start,
                           node.start + len(node.func))
    if node.func in ("mvbind", "gr", "trials"):
        raise FormulaError(f"{node.func}() is not allowed here", text, node.start, node.end)
    arithmetic = node.func in _ARITHMETIC_CALLS
    parts = []
    for arg in node.args:
        if isinstance(arg, Keyword):
            if "__" in arg.key or not arg.key.isidentifier() or keyword.iskeyword(arg.key):
                raise FormulaError(f"invalid argument name {arg.key!r}", text, arg.start,
                                   arg.end)
            parts.append(f"{arg.key}={_render_value(arg.value, text)}")
        elif isinstance(arg, String) and node.func in CONTRASTS | {"C"}:
            parts.append(repr(arg.value))
        elif isinstance(arg, Name) and arg.name in CONTRASTS and node.func == "C":
            parts.append(arg.name)
        elif isinstance(arg, Call) and arg.func in CONTRASTS and node.func == "C":
            parts.append(_render_call(arg, text))
        else:
            parts.append(render(arg, text, arithmetic))
    func = "I" if node.func == "I" else node.func
    return f"{func}({', '.join(parts)})"


def _render_value(node: Node, text: str) -> str:
    """A keyword argument value: a number, a string, a constant or a plain term."""
    if isinstance(node, String):
        return repr(node.value)
    if isinstance(node, Name) and node.name in _CONSTANTS:
        return _CONSTANTS[node.name]
    if isinstance(node, Neg) and isinstance(node.operand, Number):
        return "-" + node.operand.text
    return render(node, text)
