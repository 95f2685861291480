r"""brms' addition terms on the left of ``~`` (syntax only): ``y | weights(w) + cens(c, y2) +
trunc(lb = 0, ub = u) + se(sei, sigma = TRUE) ~ ...``; ``trials(n)`` is read by
:mod:`.spec` as before.

=================================  ==========================================================
``weights(w)``                     each row's log-likelihood multiplied by w (brms)
``cens(c)``, ``cens(c, y2)``       censoring code per row: "left"/-1, "none"/0, "right"/1,
                                   "interval"/2 (brms); y2 the upper end of interval rows
``trunc(lb = a, ub = b)``          truncated likelihood; a, b numbers or columns (either may
                                   be left out: no bound on that side)
``se(sei)``, ``se(sei, sigma =     known standard errors: residual sd sqrt(se² + σ²), σ = 0
TRUE)``                            (no σ parameter) unless ``sigma = TRUE`` (brms)
=================================  ==========================================================

Nothing is evaluated here: ``cens()`` and its ``y2`` take a column name (their values may be
strings), the numeric parts (weights, se, bounds) a number, a column or arithmetic on columns,
written as formulaic text through the same validator as ``trials()``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FormulaError
from .syntax import Call, Keyword, Name, Neg, Node, Number, Paren, String
from .validate import CONSTANTS, check_constants, check_name, render, variables

#: the addition terms this module reads, and trials() (read by spec.py)
ADDITIONS = ("weights", "cens", "trunc", "se")


@dataclass(frozen=True)
class Bound:
    """One truncation bound: a constant (``value``) or formulaic text of a column/arithmetic."""

    value: float | None = None
    text: str | None = None

    def __str__(self) -> str:
        return repr(self.value) if self.text is None else self.text


@dataclass(frozen=True)
class AdditionTerms:
    """The parsed addition terms of one response (all None: none given)."""

    weights: str | None = None        # formulaic text
    cens: str | None = None           # column name
    cens_y2: str | None = None        # column name
    lb: Bound | None = None
    ub: Bound | None = None
    se: str | None = None             # formulaic text
    se_sigma: bool = False
    variables: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        return bool(self.weights or self.cens or self.lb or self.ub or self.se)

    @property
    def trunc(self) -> bool:
        return self.lb is not None or self.ub is not None

    def __str__(self) -> str:
        out = []
        if self.weights:
            out.append(f"weights({self.weights})")
        if self.cens:
            out.append(f"cens({self.cens}" + (f", {self.cens_y2})" if self.cens_y2 else ")"))
        if self.trunc:
            b = [f"lb = {self.lb}"] if self.lb else []
            b += [f"ub = {self.ub}"] if self.ub else []
            out.append(f"trunc({', '.join(b)})")
        if self.se:
            out.append(f"se({self.se}" + (", sigma = TRUE)" if self.se_sigma else ")"))
        return " + ".join(out)


def numeric_text(node: Node, text: str) -> str:
    """A numeric addition argument as generated text: a column as it is, an expression
    (``s + f``) as arithmetic inside ``I()`` (in formula text ``s + f`` would be two terms)."""
    inner = node.inner if isinstance(node, Paren) else node
    if isinstance(inner, Name):
        return render(inner, text)
    return f"I({render(node, text, arithmetic=True)})"


def _column(node: Node, what: str, text: str) -> str:
    if not isinstance(node, Name) or node.name in CONSTANTS:
        raise FormulaError(f"{what} takes a column name", text, node.start, node.end)
    check_name(node, text)
    return node.name


def _numeric(node: Node, what: str, text: str) -> str:
    if isinstance(node, (String, Keyword)):
        raise FormulaError(f"{what} takes a column or arithmetic on columns", text,
                           node.start, node.end)
    check_constants(node, text)
    return numeric_text(node, text)


def _bound(node: Node, text: str) -> Bound:
    if isinstance(node, String):
        raise FormulaError("trunc() bounds are numbers or columns", text, node.start, node.end)
    if isinstance(node, Name) and node.name == "Inf":
        return Bound(value=float("inf"))
    if isinstance(node, Neg) and isinstance(node.operand, Name) and node.operand.name == "Inf":
        return Bound(value=float("-inf"))
    value = check_constants(node, text)
    if value is not None:
        return Bound(value=float(value))
    return Bound(text=numeric_text(node, text))


def _positional(call: Call, names: tuple[str, ...], text: str) -> dict[str, Node]:
    """R's argument matching for the few arguments of an addition term."""
    out: dict[str, Node] = {}
    pos = 0
    for a in call.args:
        if isinstance(a, Keyword):
            if a.key not in names:
                raise FormulaError(f"{call.func}() has no argument {a.key!r} (it takes "
                                   f"{', '.join(names)})", text, a.start, a.end)
            key, value = a.key, a.value
        else:
            while pos < len(names) and names[pos] in out:
                pos += 1
            if pos >= len(names):
                raise FormulaError(f"too many arguments to {call.func}()", text, a.start,
                                   a.end)
            key, value = names[pos], a
        if key in out:
            raise FormulaError(f"{call.func}(): argument {key!r} given twice", text,
                               a.start, a.end)
        out[key] = value
    return out


def parse_additions(calls: list[Call], text: str) -> AdditionTerms:
    """The addition terms ``calls`` (weights, cens, trunc, se; trials is not one of them)."""
    seen: set[str] = set()
    fields: dict = {}
    used: list[str] = []
    for call in calls:
        if call.func in seen:
            raise FormulaError(f"{call.func}() is given twice", text, call.start, call.end)
        seen.add(call.func)
        if call.func == "weights":
            args = _positional(call, ("w",), text)
            if "w" not in args:
                raise FormulaError("weights() takes one argument: the weight column", text,
                                   call.start, call.end)
            fields["weights"] = _numeric(args["w"], "weights()", text)
            used += variables(args["w"])
        elif call.func == "cens":
            args = _positional(call, ("x", "y2"), text)
            if "x" not in args:
                raise FormulaError("cens() takes the censoring column, like cens(censored) or "
                                   "cens(c, y2)", text, call.start, call.end)
            fields["cens"] = _column(args["x"], "cens()", text)
            used.append(fields["cens"])
            if "y2" in args:
                fields["cens_y2"] = _column(args["y2"], "cens(, y2)", text)
                used.append(fields["cens_y2"])
        elif call.func == "trunc":
            args = _positional(call, ("lb", "ub"), text)
            if not args:
                raise FormulaError("trunc() needs lb = and/or ub =", text, call.start, call.end)
            for key in ("lb", "ub"):
                if key in args:
                    fields[key] = _bound(args[key], text)
                    used += variables(args[key]) if fields[key].text else []
            lb, ub = fields.get("lb"), fields.get("ub")
            if (lb is not None and ub is not None and lb.value is not None
                    and ub.value is not None and not lb.value < ub.value):
                raise FormulaError("trunc(): lb must be below ub", text, call.start, call.end)
        elif call.func == "se":
            args = _positional(call, ("x", "sigma"), text)
            if "x" not in args:
                raise FormulaError("se() takes the standard-error column, like se(sei)", text,
                                   call.start, call.end)
            fields["se"] = _numeric(args["x"], "se()", text)
            used += variables(args["x"])
            if "sigma" in args:
                s = args["sigma"]
                if not (isinstance(s, Name) and s.name in ("TRUE", "FALSE", "T", "F", "True",
                                                           "False")):
                    raise FormulaError("se(sigma = ) takes TRUE or FALSE", text, s.start, s.end)
                fields["se_sigma"] = CONSTANTS[s.name] == "True"
    out: list[str] = []
    for v in used:
        if v not in out:
            out.append(v)
    return AdditionTerms(variables=tuple(out), **fields)
