"""Formula text → syntax tree, with R's operator precedence.

Precedence, loosest first (as in R's ``?Syntax`` for the operators formulas use)::

    ~          (only at the top: response ~ predictors)
    | ||       group bars (only inside parentheses, or ``y | trials(n)`` on the left)
    + -        term addition / removal
    * /        crossing, nesting
    :          interaction
    ^ **       power (crossing to degree k; inside I() arithmetic power)
    unary -    ``-1``
    calls, names, numbers, strings, ( ... )

Every node keeps the span ``[start, end)`` of the text it came from so later stages can raise
FormulaError with a caret under the right token. Security: this module only builds the tree;
:mod:`mixedformula.formula.validate` decides what may be evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import FormulaError
from .tokens import Token, tokenize

_BINARY = {"|": 2, "||": 2, "+": 3, "-": 3, "*": 4, "/": 4, ":": 5, "^": 6, "**": 6}
_RIGHT_ASSOC = {"^", "**"}
_MAX_DEPTH = 60
#: operators in one chain (``a + b + ...``, ``x:x:...``); a fixed, recursion-limit-independent
#: bound, so very long expressions are refused the same way in every process
_MAX_CHAIN = 1000


@dataclass(frozen=True)
class Node:
    start: int
    end: int


@dataclass(frozen=True)
class Name(Node):
    name: str
    quoted: bool = False


@dataclass(frozen=True)
class Number(Node):
    text: str


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Keyword(Node):
    key: str
    value: "Node"


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple = field(default_factory=tuple)  # Node or Keyword


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class Paren(Node):
    inner: Node


@dataclass(frozen=True)
class Tilde(Node):
    left: Node | None
    right: Node


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens: list[Token] = tokenize(text)
        self.pos = 0
        self.depth = 0

    # -- helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def error(self, message: str, tok: Token | None = None) -> FormulaError:
        tok = tok or self.tok
        return FormulaError(message, self.text, tok.start, max(tok.end, tok.start + 1))

    def advance(self) -> Token:
        tok = self.tok
        self.pos += 1
        return tok

    def expect(self, value: str, what: str) -> Token:
        if self.tok.kind == "OP" and self.tok.value == value:
            return self.advance()
        found = "the end of the formula" if self.tok.kind == "END" else repr(self.tok.value)
        raise self.error(f"expected {what}, found {found}")

    # -- grammar -------------------------------------------------------------------------
    def formula(self) -> Tilde:
        tilde_positions = [t for t in self.tokens if t.kind == "OP" and t.value == "~"]
        if not tilde_positions:
            raise FormulaError("a formula needs '~' between the response and the predictors",
                               self.text, 0, len(self.text))
        if len(tilde_positions) > 1:
            raise self.error("only one '~' is allowed", tilde_positions[1])
        left = None
        if not (self.tok.kind == "OP" and self.tok.value == "~"):
            left = self.expr(0)
        tilde = self.expect("~", "'~'")
        if self.tok.kind == "END":
            raise self.error("nothing after '~': give the predictors (or 1 for intercept only)",
                             tilde)
        right = self.expr(0)
        if self.tok.kind != "END":
            if self.tok.value == ")":
                raise self.error("unbalanced parentheses: this ')' has no matching '('")
            raise self.error(f"unexpected {self.tok.value!r}: expected an operator "
                             "(+ - * / : ^) or the end of the formula")
        return Tilde(left.start if left else tilde.start, right.end, left, right)

    def expr(self, min_prec: int) -> Node:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"formula is nested more than {_MAX_DEPTH} levels deep")
        left = self.unary()
        n_ops = 0
        while True:
            tok = self.tok
            if tok.kind != "OP" or tok.value not in _BINARY:
                break
            prec = _BINARY[tok.value]
            if prec < min_prec:
                break
            n_ops += 1
            if n_ops > _MAX_CHAIN:
                raise self.error(f"the formula has a chain of more than {_MAX_CHAIN} operators; "
                                 "write it shorter", tok)
            self.advance()
            if self.tok.kind == "END" or (self.tok.kind == "OP" and self.tok.value in ")|,~"):
                side = "bar" if tok.value in ("|", "||") else "operator"
                raise self.error(f"empty right side of {side} {tok.value!r}", tok)
            next_min = prec if tok.value in _RIGHT_ASSOC else prec + 1
            right = self.expr(next_min)
            left = BinOp(left.start, right.end, tok.value, left, right)
        self.depth -= 1
        return left

    def unary(self) -> Node:
        tok = self.tok
        if tok.kind == "OP" and tok.value in ("-", "+"):
            self.advance()
            operand = self.expr(_BINARY["^"])  # binds tighter than :, looser than ^
            return operand if tok.value == "+" else Neg(tok.start, operand.end, operand)
        return self.atom()

    def atom(self) -> Node:
        tok = self.tok
        if tok.kind == "NUMBER":
            self.advance()
            return Number(tok.start, tok.end, tok.value)
        if tok.kind == "STRING":
            self.advance()
            return String(tok.start, tok.end, tok.value)
        if tok.kind == "NAME":
            self.advance()
            if self.tok.kind == "OP" and self.tok.value == "(" and not tok.quoted:
                return self.call(tok)
            return Name(tok.start, tok.end, tok.value, tok.quoted)
        if tok.kind == "OP" and tok.value == "(":
            self.advance()
            if self.tok.kind == "OP" and self.tok.value in (")", "|", "||"):
                raise self.error("empty parentheses" if self.tok.value == ")"
                                 else "empty left side of bar " + repr(self.tok.value))
            inner = self.expr(0)
            if self.tok.kind == "END":
                raise self.error("unbalanced parentheses: '(' is never closed", tok)
            close = self.expect(")", "')'")
            return Paren(tok.start, close.end, inner)
        if tok.kind == "END":
            raise self.error("the formula ends where a term was expected")
        if tok.value in ("|", "||"):
            raise self.error(f"empty left side of bar {tok.value!r}")
        raise self.error(f"unexpected {tok.value!r} where a term was expected")

    def call(self, name_tok: Token) -> Call:
        self.advance()  # '('
        args: list[Node] = []
        while not (self.tok.kind == "OP" and self.tok.value == ")"):
            if self.tok.kind == "END":
                raise self.error(f"unbalanced parentheses: '{name_tok.value}(' is never closed",
                                 name_tok)
            if (self.tok.kind == "NAME" and self.tokens[self.pos + 1].kind == "OP"
                    and self.tokens[self.pos + 1].value == "="):
                key = self.advance()
                self.advance()  # '='
                value = self.expr(3)
                args.append(Keyword(key.start, value.end, key.value, value))
            else:
                args.append(self.expr(0))
            if self.tok.kind == "OP" and self.tok.value == ",":
                self.advance()
                continue
            if self.tok.kind == "END":
                raise self.error(f"unbalanced parentheses: '{name_tok.value}(' is never closed",
                                 name_tok)
            if not (self.tok.kind == "OP" and self.tok.value == ")"):
                raise self.error(f"expected ',' or ')' in the arguments of {name_tok.value}()")
        close = self.advance()
        return Call(name_tok.start, close.end, name_tok.value, tuple(args))


def parse_tree(text: str) -> Tilde:
    """Parse a whole formula ``response ~ predictors`` into a :class:`Tilde` node."""
    return _Parser(text).formula()


def parse_expression(text: str) -> Node:
    """Parse a right-hand-side expression alone (used for ``re_formula`` and ``sigma ~`` parts)."""
    p = _Parser(text)
    node = p.expr(0)
    if p.tok.kind != "END":
        if p.tok.value == ")":
            raise p.error("unbalanced parentheses: this ')' has no matching '('")
        raise p.error(f"unexpected {p.tok.value!r}: expected an operator or the end")
    return node


def split_terms(node: Node) -> list[tuple[int, Node]]:
    """Flatten a top-level chain of ``+``/``-`` into ``(sign, term)`` pairs (lme4's term split).

    Iterative: a long sum is a left-deep tree deeper than Python's recursion limit."""
    out: list[tuple[int, Node]] = []
    stack: list[tuple[int, Node]] = [(1, node)]
    while stack:
        sign, n = stack.pop()
        if isinstance(n, BinOp) and n.op in ("+", "-"):
            stack.append((-sign if n.op == "-" else sign, n.right))
            stack.append((sign, n.left))
        elif isinstance(n, Neg):
            stack.append((-sign, n.operand))
        else:
            out.append((sign, n))
    return out
