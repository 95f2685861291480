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
import math
import unicodedata

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
#: R functions written for formulaic under a Python name (``as.factor`` is not a Python name);
#: factor()/as.factor() are formulaic's C() (design/spec.py's evaluation context), ns() is
#: :mod:`mixedformula.design.splines`, as.numeric()/as.integer() :mod:`.design.transforms`.
R_FUNCTIONS = {"factor": "factor", "as.factor": "as_factor", "as.numeric": "as_numeric",
               "as.integer": "as_integer", "ns": "ns"}
#: calls that code their argument as a factor (same meaning)
FACTOR_CALLS = {"C", "factor", "as.factor"}
CONTRASTS = {"contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.diff"}
TRANSFORMS = set(NUMPY_FUNCTIONS) | FORMULAIC_FUNCTIONS | CONTRASTS | set(R_FUNCTIONS)
#: the function names generated text may contain (what :mod:`..design.safe_text` accepts)
GENERATED_FUNCTIONS = (TRANSFORMS - set(R_FUNCTIONS)) | set(R_FUNCTIONS.values())


def _pnorm(x):
    from scipy.special import ndtr
    return ndtr(x)


def _inv_logit(x):
    from scipy.special import expit
    return expit(x)


NUMPY_FUNCTIONS["pnorm"] = _pnorm
NUMPY_FUNCTIONS["inv_logit"] = _inv_logit
#: Keyword arguments each function accepts (anything else is rejected before evaluation:
#: numpy's ``out=``/``where=`` could write into the data, formulaic's ``_state``/``_spec`` are
#: internal). Lists (``knots``, ``levels``) cannot be written in a formula.
KEYWORDS = {
    "scale": {"center", "scale", "ddof"}, "standardize": {"center", "rescale", "ddof"},
    "C": {"contrasts", "spans_intercept"}, "poly": {"degree", "raw"},
    "bs": {"df", "degree", "include_intercept", "lower_bound", "upper_bound", "extrapolation"},
    "cr": {"df", "lower_bound", "upper_bound", "constraints", "extrapolation"},
    "cs": {"df", "lower_bound", "upper_bound", "constraints", "extrapolation"},
    "cc": {"df", "lower_bound", "upper_bound", "constraints", "extrapolation"},
    "round": {"decimals"}, "contr.treatment": {"base"}, "contr.helmert": {"reverse", "scale"},
    "contr.diff": {"backward"}, "ns": {"df"},
}
#: Most positional arguments each function accepts (default 1: the data).
POSITIONAL = {"scale": 3, "standardize": 3, "C": 2, "poly": 2, "bs": 2, "cr": 2, "cs": 2,
              "cc": 2, "round": 2, "contr.treatment": 1, "contr.sum": 0, "contr.helmert": 2,
              "contr.poly": 0, "contr.diff": 1, "ns": 2}
#: Arguments that set a number of basis columns, and their upper bound (a huge degree or df
#: would allocate n x df memory before anything could stop it).
_SIZE_ARGS = {"poly": ("degree", 1), "bs": ("df", 1), "cr": ("df", 1), "cs": ("df", 1),
              "cc": ("df", 1), "ns": ("df", 1)}
MAX_BASIS = 100
#: Upper bound on the number of terms a formula may expand to (a*b*c*... doubles each time).
MAX_TERMS = 1000
#: Upper bound on the number of model-matrix columns the formula's structure implies (a term's
#: columns multiply across ':': ``poly(x, 100):poly(z, 100):poly(w, 100)`` would be 10^6);
#: categorical columns count as one here (their levels are checked against the data later).
MAX_COLUMNS = 10_000
#: Largest magnitude of a constant sub-expression (``10 ** 10 ** 10`` is an exact Python
#: integer with 10^10 digits: computing it would never finish). Constants are bounded by the
#: largest double, so every integer that formulaic computes from literals has at most 1024 bits.
MAX_CONSTANT = 1.7976931348623157e308
#: Literal constants accepted as keyword values (R spellings too).
CONSTANTS = {"TRUE": "True", "FALSE": "False", "T": "True", "F": "False", "True": "True",
              "False": "False", "NULL": "None", "None": "None"}


def check_name(node: Name, text: str) -> None:
    """A column name: no dunders (also after Unicode normalisation), no keywords unquoted."""
    name = node.name
    folded = unicodedata.normalize("NFKC", name)
    if "__" in name or "__" in folded:
        raise FormulaError("names containing '__' are not allowed", text, node.start, node.end)
    if not name or any(unicodedata.category(ch)[0] == "C" for ch in name):
        raise FormulaError("names may not be empty or contain control characters", text,
                           node.start, node.end)
    if not node.quoted and (name.startswith(".") or name.endswith(".")):
        raise FormulaError(f"{name!r} is not a valid name", text, node.start, node.end)
    if not node.quoted and keyword.iskeyword(name) and name not in CONSTANTS:
        raise FormulaError(f"{name!r} is a reserved word; write `{name}` in "
                           "backquotes if it is a column", text, node.start, node.end)


def left_spine(node: Node, ops) -> tuple[Node, list[tuple[BinOp, Node]]]:
    """``((a o1 b) o2 c)`` → ``(a, [(o1-node, b), (o2-node, c)])`` for ops in ``ops``, without
    recursion (long sums are left-deep trees deeper than Python's recursion limit)."""
    chain: list[tuple[BinOp, Node]] = []
    while isinstance(node, BinOp) and node.op in ops:
        chain.append((node, node.right))
        node = node.left
    chain.reverse()
    return node, chain


def variables(node: Node) -> list[str]:
    """Column names a validated term refers to, in order of appearance."""
    out: list[str] = []
    stack: list[tuple[Node, bool]] = [(node, False)]   # (node, is a keyword value)
    while stack:
        n, kw_value = stack.pop()
        if isinstance(n, Name):
            if n.name not in CONTRASTS and not (kw_value and n.name in CONSTANTS):
                if n.name not in out:
                    out.append(n.name)
        elif isinstance(n, Call):
            for a in reversed(n.args):
                stack.append((a.value, True) if isinstance(a, Keyword) else (a, False))
        elif isinstance(n, BinOp):
            stack.append((n.right, False))
            stack.append((n.left, False))
        elif isinstance(n, Neg):
            stack.append((n.operand, False))
        elif isinstance(n, Paren):
            stack.append((n.inner, False))
        elif isinstance(n, Keyword):
            stack.append((n.value, True))
    return out


def render(node: Node, text: str, arithmetic: bool = False) -> str:
    """Validate ``node`` and write it as formulaic text.

    ``arithmetic`` is true inside function arguments, which formulaic evaluates as Python:
    there ``^`` means power (as in R) and is written ``**``, and the formula operators
    ``:`` and ``|`` have no meaning.
    """
    if isinstance(node, Number):
        return node.text
    if isinstance(node, Name):
        check_name(node, text)
        if node.name in CONTRASTS:
            raise FormulaError(f"{node.name} may only appear as an argument of C()", text,
                               node.start, node.end)
        return f"`{node.name}`"
    if isinstance(node, String):
        raise FormulaError("strings may only appear as arguments of a function", text,
                           node.start, node.end)
    if isinstance(node, Neg):
        return f"-{render(node.operand, text, arithmetic)}"
    if isinstance(node, Paren):
        return f"({render(node.inner, text, arithmetic)})"
    if isinstance(node, BinOp):
        first, chain = left_spine(node, ("+", "-", "*", "/", ":", "^", "**", "|", "||"))
        out = render(first, text, arithmetic)
        for op_node, right in chain:
            if not arithmetic and op_node.op in ("^", "**"):
                out = f"{out} ^ {_term_power(op_node, text)}"
                continue
            op = op_node.op
            if op in ("|", "||"):
                raise FormulaError(f"a bar {op!r} must be inside parentheses, like (1 | g)",
                                   text, op_node.start, op_node.end)
            if arithmetic and op == ":":
                raise FormulaError("':' (interaction) cannot be used inside a function's "
                                   "arguments", text, op_node.left.end, op_node.right.start)
            if arithmetic and op == "^":
                op = "**"
            if not arithmetic and op == "**":
                op = "^"
            out = f"{out} {op} {render(right, text, arithmetic)}"
        return out
    if isinstance(node, Call):
        return _render_call(node, text)
    if isinstance(node, Keyword):
        raise FormulaError("keyword arguments only go inside a function call", text,
                           node.start, node.end)
    raise FormulaError("unsupported expression", text, node.start, node.end)


def _term_power(op_node: BinOp, text: str) -> str:
    """``(a + b + c)^k`` in a formula: k must be a whole number >= 1; it is written as
    min(k, terms of the left side), which expands to the same terms (``a:a`` is ``a``) at a
    bounded cost (formulaic multiplies the term set k times)."""
    right = op_node.right
    while isinstance(right, Paren):
        right = right.inner
    k = None
    if isinstance(right, Number):
        try:
            k = float(right.text)
        except ValueError:
            k = None
    if k is None or not math.isfinite(k) or k < 1 or k != int(k):
        raise FormulaError("the power of formula terms must be a whole number >= 1, like "
                           "(a + b)^2 (inside I() '^' is arithmetic)", text,
                           op_node.right.start, op_node.right.end)
    return str(int(min(k, count_terms(op_node.left, text))))


def check_constants(node: Node, text: str) -> float | None:
    """Bound every constant sub-expression of a function argument before anything runs.

    formulaic evaluates arguments as Python, where ``10 ** 10 ** 10`` is an exact integer with
    10^10 digits. Each sub-expression made only of numbers is computed here in floating point
    (cost O(1) per node) and refused when its magnitude exceeds :data:`MAX_CONSTANT` or it
    divides by zero; so every constant Python later computes has at most 1024 bits. Powers with
    a column on either side are numpy's elementwise floating-point powers (bounded cost).
    Returns the value of ``node`` when it is constant, else None.
    """
    values: dict[int, float | None] = {}
    stack: list[tuple[Node, bool]] = [(node, False)]
    while stack:
        n, done = stack.pop()
        kids = ([n.left, n.right] if isinstance(n, BinOp) else [n.operand] if isinstance(n, Neg)
                else [n.inner] if isinstance(n, Paren) else [])
        if not done and kids:
            stack.append((n, True))
            stack.extend((k, False) for k in kids)
            continue
        v: float | None = None
        if isinstance(n, Number):
            try:
                v = float(n.text)
            except ValueError:
                v = None
        elif isinstance(n, (Neg, Paren)):
            v = values.get(id(kids[0]))
            v = -v if isinstance(n, Neg) and v is not None else v
        elif isinstance(n, BinOp):
            a, b = values.get(id(n.left)), values.get(id(n.right))
            if a is not None and b is not None:
                v = _constant_op(n, a, b, text)
        if v is not None and not abs(v) <= MAX_CONSTANT:
            raise FormulaError(f"the constant {text[n.start:n.end]} is too large (more than "
                               f"{MAX_CONSTANT:.3g} in magnitude)", text, n.start, n.end)
        values[id(n)] = v
    return values[id(node)]


def _constant_op(n: BinOp, a: float, b: float, text: str) -> float | None:
    try:
        if n.op == "+":
            return a + b
        if n.op == "-":
            return a - b
        if n.op == "*":
            return a * b
        if n.op == "/":
            if b == 0:
                raise FormulaError("division by zero", text, n.start, n.end)
            return a / b
        if n.op in ("^", "**"):
            if a == 0 and b < 0:
                raise FormulaError("division by zero (0 to a negative power)", text,
                                   n.start, n.end)
            if a < 0 and b != int(b):
                return math.pow(-a, b)   # complex in Python: bound its magnitude |a|^b
            return math.pow(a, b)
    except OverflowError:
        return math.inf
    return None


def _render_call(node: Call, text: str) -> str:
    func_span = (node.start, node.start + len(node.func))
    if "__" in node.func or node.func not in TRANSFORMS:
        allowed = ", ".join(sorted(TRANSFORMS - CONTRASTS))
        raise FormulaError(f"function {node.func}() is not allowed in a formula "
                           f"(allowed: {allowed})", text, *func_span)
    positional = [a for a in node.args if not isinstance(a, Keyword)]
    most = POSITIONAL.get(node.func, 1)
    if len(positional) > most:
        extra = positional[most]
        raise FormulaError(f"{node.func}() takes at most {most} unnamed argument"
                           f"{'s' if most != 1 else ''}", text, extra.start, extra.end)
    if node.func not in CONTRASTS and not positional:
        raise FormulaError(f"{node.func}() needs an argument", text, *func_span)
    parts = []
    seen: set[str] = set()
    for i, arg in enumerate(node.args):
        check_constants(arg.value if isinstance(arg, Keyword) else arg, text)
        if isinstance(arg, Keyword):
            allowed_keys = KEYWORDS.get(node.func, set())
            if arg.key not in allowed_keys:
                what = (f"expected one of {', '.join(sorted(allowed_keys))}" if allowed_keys
                        else "it takes none")
                raise FormulaError(f"unknown option {arg.key!r} to {node.func}(); {what}",
                                   text, arg.start, arg.start + len(arg.key))
            if arg.key in seen:
                raise FormulaError(f"option {arg.key!r} is given twice", text, arg.start,
                                   arg.start + len(arg.key))
            seen.add(arg.key)
            _check_size(node.func, arg.key, arg.value, text)
            if node.func == "C" and arg.key == "contrasts":
                if isinstance(arg.value, String):
                    _check_contrast_name(arg.value, text)
                elif isinstance(arg.value, Name) and arg.value.name in CONTRASTS:
                    parts.append(f"contrasts={arg.value.name}")
                    continue
                elif isinstance(arg.value, Call) and arg.value.func in CONTRASTS:
                    parts.append(f"contrasts={_render_call(arg.value, text)}")
                    continue
            parts.append(f"{arg.key}={_render_value(arg.value, text)}")
        elif isinstance(arg, String) and node.func in CONTRASTS:
            parts.append(repr(arg.value))
        elif isinstance(arg, String) and node.func == "C" and i > 0:
            _check_contrast_name(arg, text)
            parts.append(repr(arg.value))
        elif isinstance(arg, Name) and arg.name in CONTRASTS and node.func == "C" and i > 0:
            parts.append(arg.name)
        elif isinstance(arg, Call) and arg.func in CONTRASTS and node.func == "C" and i > 0:
            parts.append(_render_call(arg, text))
        else:
            if i == 1:
                _check_size(node.func, None, arg, text)
            parts.append(render(arg, text, arithmetic=True))
    return f"{R_FUNCTIONS.get(node.func, node.func)}({', '.join(parts)})"


def _check_contrast_name(node: String, text: str) -> None:
    raise FormulaError("contrasts are not strings: write C(f, contr.sum), contr.helmert, "
                       "contr.poly, contr.diff or contr.treatment(base = \"b\")", text,
                       node.start, node.end)


def _check_size(func: str, key: str | None, value: Node, text: str) -> None:
    """poly(x, 1e9) or bs(x, df = 1e9) would allocate n x 1e9 numbers: refuse it. The size
    must be a number (or arithmetic on numbers) of at most :data:`MAX_BASIS`."""
    size = _SIZE_ARGS.get(func)
    if size is None or (key is not None and key not in (size[0], "degree")):
        return
    v = check_constants(value, text)
    if v is None:
        raise FormulaError(f"{func}(): {key or size[0]} must be a number", text, value.start,
                           value.end)
    if not math.isfinite(v) or v > MAX_BASIS:
        raise FormulaError(f"{func}(): {key or size[0]} = {text[value.start:value.end]} is too "
                           f"large (at most {MAX_BASIS})", text, value.start, value.end)


def _render_value(node: Node, text: str) -> str:
    """A keyword argument value: a number, a string, a constant or a plain term."""
    if isinstance(node, String):
        return repr(node.value)
    if isinstance(node, Name) and node.name in CONSTANTS:
        return CONSTANTS[node.name]
    if isinstance(node, Neg) and isinstance(node.operand, Number):
        return "-" + node.operand.text
    return render(node, text, arithmetic=True)


def count_terms(node: Node, text: str) -> int:
    """Upper bound on the number of terms a fixed part expands to (see :func:`expansion`)."""
    return expansion(node, text)[0]


def _width(node: Node, widths: dict[str, int] | None = None) -> int:
    """Columns one factor makes at most: the size of poly()/bs()/cr()/cs()/cc(); a column's
    (or ``C(column, ...)``'s) entry in ``widths`` (levels of a categorical, at design time);
    else 1."""
    while isinstance(node, Paren):
        node = node.inner
    if widths and isinstance(node, Name):
        return widths.get(node.name, 1)
    if widths and isinstance(node, Call) and node.func in FACTOR_CALLS and node.args \
            and isinstance(node.args[0], Name):
        return widths.get(node.args[0].name, 1)
    if not isinstance(node, Call) or node.func not in _SIZE_ARGS:
        return 1
    key = _SIZE_ARGS[node.func][0]
    sizes = {}
    positional = [a for a in node.args if not isinstance(a, Keyword)]
    if len(positional) > 1:
        sizes[key] = positional[1]
    for a in node.args:
        if isinstance(a, Keyword):
            sizes[a.key] = a.value
    value = sizes.get(key, sizes.get("degree"))
    v = check_constants(value, "") if value is not None else None
    if v is None or not math.isfinite(v):
        return 1 if node.func == "poly" else 3
    return int(min(max(math.ceil(v), 1), MAX_BASIS))


def expansion(node: Node, text: str, widths: dict[str, int] | None = None) -> tuple[int, int]:
    """Upper bounds on the terms and model-matrix columns ``node`` expands to.

    ``a*b`` has 3 terms, ``a*b*c`` 7, ``(a+b+c)^3`` 7: crossing doubles the count, so a short
    formula could ask for millions of columns. Columns multiply across ``:`` (a term's columns
    are the product of its factors' widths, :func:`_width`). Raises FormulaError past
    :data:`MAX_TERMS` terms or :data:`MAX_COLUMNS` columns; counts are capped just above them."""
    cap, ccap = MAX_TERMS + 1, MAX_COLUMNS + 1

    def walk(n: Node) -> tuple[int, int]:
        if isinstance(n, Paren):
            return walk(n.inner)
        if isinstance(n, Neg):
            return walk(n.operand)
        if isinstance(n, BinOp):
            if n.op in ("+", "-"):
                first, chain = left_spine(n, ("+", "-"))
                total, cols = walk(first)
                for op_node, right in chain:
                    if op_node.op == "+":
                        t, c = walk(right)
                        total, cols = min(cap, total + t), min(ccap, cols + c)
                return total, cols
            left, lcols = walk(n.left)
            if n.op in ("^", "**"):
                k = n.right
                while isinstance(k, Paren):
                    k = k.inner
                k = float(k.text) if isinstance(k, Number) else 1.0
                k = int(min(max(k, 1), left)) if math.isfinite(k) else left
                total, comb = 0, 1
                for i in range(1, k + 1):
                    comb = comb * (left - i + 1) // i
                    total = min(cap, total + comb)
                    if total >= cap:
                        break
                # a product of at most k of the terms, each of at most lcols columns in all
                cols = ccap if k * math.log(1 + lcols) > math.log(ccap + 1) else \
                    min(ccap, (1 + lcols) ** k - 1)
                return max(total, left), max(cols, lcols)
            right, rcols = walk(n.right)
            if n.op == ":":
                return min(cap, left * right), min(ccap, lcols * rcols)
            return (min(cap, left + right + left * right),          # * and /
                    min(ccap, lcols + rcols + lcols * rcols))
        return 1, _width(n, widths)

    total, cols = walk(node)
    if total > MAX_TERMS:
        raise FormulaError(f"this expands to more than {MAX_TERMS} terms (each '*' crosses "
                           "every term on its left with every term on its right)", text,
                           node.start, node.end)
    if cols > MAX_COLUMNS:
        raise FormulaError(f"this expands to more than {MAX_COLUMNS} model-matrix columns "
                           "(the columns of the factors of an interaction multiply)", text,
                           node.start, node.end)
    return total, cols


def check_data_columns(text: str, widths: dict[str, int], formula: str | None = None) -> None:
    """The :data:`MAX_COLUMNS` bound again at design time, before formulaic runs, with each
    categorical column counted by its number of levels in the data (``id1:id2:id3`` of three
    ID columns with 100 levels each would be 10^6 columns). ``text`` is generated term text."""
    from .syntax import parse_expression, split_terms
    if not text.strip():
        return
    cols = 0
    for sign, term in split_terms(parse_expression(text)):
        if sign > 0:
            cols += expansion(term, text, widths)[1]
    if cols > MAX_COLUMNS:
        raise FormulaError(f"{text!r} expands to more than {MAX_COLUMNS} model-matrix columns "
                           "with the levels of its categorical columns in these data (the "
                           "columns of the factors of an interaction multiply)", formula)
