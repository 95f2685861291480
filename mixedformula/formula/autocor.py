"""brms' autocorrelation terms in the fixed part: ``ar()``, ``arma()``, ``cosy()``.

=================================  ===================================================================
``ar(time = t, gr = g, p = 1)``     AR(p) of the residuals within each level of g, in order of t
                                    (brms' regression form, ``cov = FALSE``); positional ``ar(t, g)``
``arma(t, g, p = 1, q = 1)``        brms' ARMA(p, q) regression form (``cov = FALSE``): the MA part
                                    reads the earlier rows' errors (:mod:`mixedformula.design.autocor`)
``ma(t, g, q = 1)``                 the same with p = 0
``ar(t, g, cov = TRUE)``            brms' covariance form (p, q ≤ 1; also ``ma()``, ``arma()``): per
                                    group y ~ MVN(η, σ² Γ), Γ the stationary AR(1) / MA(1) /
                                    ARMA(1, 1) covariance of unit innovations (kind "cov_arma")
``cosy(time = t, gr = g)``          compound symmetry: within a level of g, every pair of residuals
                                    has correlation ``cosy``
``unstr(time = t, gr = g)``         brms' unstructured correlation: within a level of g the
                                    residuals at times s, t have correlation ``cortime[s, t]``, a
                                    T × T correlation matrix over the distinct times (both
                                    arguments required, as brms; :mod:`mixedformula.design.unstr`)
=================================  ===================================================================

``time`` and ``gr`` are column names (``time`` omitted: the data order; ``gr`` omitted: one
series). Pure syntax: nothing here looks at data (:mod:`mixedformula.design.autocor` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FormulaError
from .syntax import Call, Keyword, Name, Number, String
from .validate import CONSTANTS, check_name

AUTOCOR_FUNCS = ("ar", "arma", "ma", "cosy", "unstr", "car", "sar", "fcor")
_ARGS = {"ar": ("time", "gr", "p", "cov"), "arma": ("time", "gr", "p", "q", "cov"),
         "ma": ("time", "gr", "q", "cov"), "cosy": ("time", "gr"), "unstr": ("time", "gr")}
MAX_ORDER = 10


@dataclass(frozen=True)
class AutocorTerm:
    """One autocorrelation term: ``kind`` "ar" (order ``p``), "arma" (``arma()``/``ma()``:
    orders ``p`` ≥ 0, ``q`` ≥ 1), "cov_arma" (any of them with ``cov = TRUE``: p, q ≤ 1),
    "cosy" or "unstr"."""

    kind: str
    time: str | None = None
    gr: str | None = None
    p: int = 0
    q: int = 0
    text: str = ""
    cov: bool = False           # cov = TRUE (brms' covariance formulation)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(v for v in (self.time, self.gr) if v is not None)


def is_autocor(term) -> bool:
    return isinstance(term, Call) and term.func in AUTOCOR_FUNCS


def autocor_term(sign: int, call: Call, text: str) -> AutocorTerm:
    """The AutocorTerm of ``ar(...)``/``cosy(...)`` (refusing what we do not fit)."""
    written = text[call.start:call.end]
    if sign < 0:
        raise FormulaError(f"{call.func}() cannot be removed with '-'", text, call.start,
                           call.end)
    if call.func not in _ARGS:
        raise FormulaError(f"brms' {call.func}() residual structure is not supported; "
                           "supported: ar(time, gr, p), ma(time, gr, q), arma(time, gr, p, q), "
                           "cosy(time, gr) and unstr(time, gr)", text, call.start,
                           call.end)
    names = _ARGS[call.func]
    given: dict = {}
    for i, arg in enumerate(call.args):
        if isinstance(arg, Keyword):
            key, node = arg.key, arg.value
            if key not in names:
                raise FormulaError(f"unknown argument {key!r} to {call.func}(); expected "
                                   f"{', '.join(names)}", text, arg.start, arg.end)
        else:
            if any(isinstance(a, Keyword) for a in call.args[:i]):
                raise FormulaError("a positional argument cannot follow a named one", text,
                                   arg.start, arg.end)
            if i >= len(names):
                raise FormulaError(f"{call.func}() takes at most {len(names)} arguments "
                                   f"({', '.join(names)})", text, arg.start, arg.end)
            key, node = names[i], arg
        if key in given:
            raise FormulaError(f"argument {key!r} of {call.func}() is given twice", text,
                               arg.start, arg.end)
        given[key] = node
    cols = {}
    for key in ("time", "gr"):
        node = given.get(key)
        if node is None or (isinstance(node, Name) and node.name == "NA"
                            and not node.quoted):
            cols[key] = None
            continue
        if isinstance(node, String) and node.value:
            node = Name(node.start, node.end, node.value, True)
        if not isinstance(node, Name):
            raise FormulaError(f"{call.func}({key} = ...) takes a column name", text,
                               node.start, node.end)
        check_name(node, text)
        cols[key] = node.name
    if call.func == "unstr":
        for key in ("time", "gr"):
            if cols[key] is None:
                raise FormulaError(f"unstr() needs both time and gr (as brms): "
                                   f"{key} is missing", text, call.start, call.end)
        return AutocorTerm(kind="unstr", time=cols["time"], gr=cols["gr"], text=written)
    cov = given.get("cov")
    if cov is not None:
        if not (isinstance(cov, Name) and CONSTANTS.get(cov.name) in ("True", "False")):
            raise FormulaError(f"{call.func}(cov = ...) takes TRUE or FALSE", text, cov.start,
                               cov.end)
        cov = CONSTANTS[cov.name] == "True"
    p = _order(given, "p", 1 if call.func in ("ar", "arma") else 0, text, call.func)
    q = _order(given, "q", 1 if call.func in ("arma", "ma") else 0, text, call.func)
    if call.func == "arma" and p + q == 0:
        raise FormulaError("arma(p = 0, q = 0) has no terms: at least one of p and q must be "
                           "greater than zero (as brms requires)", text, call.start, call.end)
    kind = "cosy" if call.func == "cosy" else "arma" if q > 0 else "ar"
    if cov:
        if p > 1 or q > 1:
            raise FormulaError(f"{call.func}(cov = TRUE): the covariance formulation is only "
                               "possible for orders p and q of at most one (as brms requires); "
                               "use cov = FALSE", text, call.start, call.end)
        kind = "cov_arma"
    return AutocorTerm(kind=kind, time=cols["time"], gr=cols["gr"], p=p, q=q, text=written,
                       cov=bool(cov))


def _order(given: dict, key: str, default: int, text: str, func: str) -> int:
    node = given.get(key)
    if node is None:
        return default
    value = None
    if isinstance(node, Number):
        try:
            f = float(node.text.rstrip("L"))
            value = int(f) if f.is_integer() else None
        except ValueError:
            value = None
    low = 1 if func in ("ar", "ma") else 0
    if value is None or value < low or value > MAX_ORDER:
        raise FormulaError(f"{func}({key} = ...) takes a whole number from "
                           f"{low} to {MAX_ORDER}", text, node.start, node.end)
    return value
