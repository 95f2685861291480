"""Syntax tree → :class:`FormulaSpec`: responses, fixed part and group terms (lme4's findbars/nobars).

Group-term semantics (lme4 and brms):

=============================  =====================================================================
``(1 + x | g)``, ``(x | g)``    correlated intercept and slope per level of g (intercept implicit)
``(0 + x | g)``, ``(-1+x|g)``   slope only
``(x || g)``                    one independent sd per expanded column, no correlations (brms)
``(1 | g1/g2)``                 ``(1 | g1) + (1 | g1:g2)``; deeper nesting likewise
``(1 | g1:g2)``                 one level per observed combination of g1 and g2
``(1 + x | p | g)``             terms with the same ID ``p`` share one correlation matrix, also
                                across the formulas of a multivariate model
``(1 | gr(g, by = h))``         one sd vector and correlation matrix per level of h
``gr(g, cor = FALSE)``          like ``||``;  ``gr(g, id = "p")`` like ``|p|``
``(1 | gr(g, cov = A))``        effects correlated across levels by a known matrix A passed as
                                ``data2={"A": A}`` (brms): Cov(u) = A ⊗ Σ (:mod:`..design.known_cov`)
=============================  =====================================================================

Distributional regression (brms): ``bf(y ~ x + (1 | g), sigma ~ x + (1 | g))`` (or
``bf("y ~ x + (1 | g)", sigma="~ x + (1 | g)")``) gives a family parameter its own linear
predictor on brms' link for it; the parameter's group terms join ``groups`` with
``GroupTerm.dpar`` set (so ``|p|`` IDs shared with the mean's terms give one correlation
matrix), its fixed part is a :class:`DparFormula` in ``FormulaSpec.dpars``.

Pure syntax: nothing here looks at data, and nothing is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import FormulaError
from .syntax import BinOp, Call, Keyword, Name, Neg, Node, Number, Paren, String, parse_tree, \
    split_terms
from .additions import ADDITIONS, AdditionTerms, numeric_text, parse_additions
from .autocor import autocor_term, is_autocor
from .validate import CONSTANTS, check_constants, check_name, expansion, render, variables

_GR_OPTIONS = {"by", "cor", "id", "cov", "dist"}
GR_DISTS = ("gaussian",)    # gr(dist = ...): the distribution of group effects (brms)


@dataclass(frozen=True)
class GroupTerm:
    """One bar term after expansion: coefficients ``expr`` vary over levels of ``factors``."""

    expr: str                       # formulaic text of the bar's left side, e.g. "1 + `Days`"
    factors: tuple[str, ...]        # ("g1", "g2") for g1:g2
    correlated: bool = True
    id: str | None = None
    by: str | None = None
    text: str = ""                  # the term as written, for messages
    variables: tuple[str, ...] = ()  # columns used by the left side
    response: int | None = None     # bf() formulas: the response this term belongs to
    cov: str | None = None          # gr(g, cov = A): name of the known matrix in data2
    structure: str | None = None    # ar1(...)/cs(...)/toep(...): glmmTMB's structure of Σ
    dpar: str | None = None         # distributional formulas: the parameter (None: the mean)

    @property
    def group(self) -> str:
        """brms' name of the grouping factor: ``g1:g2`` for an interaction."""
        return ":".join(self.factors)


#: brms' distributional parameters that may get a formula (the family decides which it has)
DPAR_NAMES = ("sigma", "nu", "shape", "phi", "zi", "hu", "zoi", "coi", "disc", "ndt", "beta",
              "kappa", "alpha", "quantile", "bs", "xi")


def is_dpar_name(name: str) -> bool:
    """A name bf() reads as a distributional parameter: brms' (:data:`DPAR_NAMES`) or
    ``mu<category>``, one category's linear predictor of a categorical model (brms' ``muB``;
    the family decides which exist)."""
    import re
    return name in DPAR_NAMES or re.fullmatch(r"mu[A-Za-z0-9._]+", name) is not None


@dataclass(frozen=True)
class DparFormula:
    """The fixed part of one distributional parameter's formula (``sigma ~ x``); its group
    terms are in ``FormulaSpec.groups`` with ``dpar`` set."""

    name: str                               # "sigma"
    fixed: str                              # formulaic text of the fixed part
    fixed_variables: tuple[str, ...] = ()
    text: str = ""                          # as written, e.g. "sigma ~ x + (1 | g)"


@dataclass(frozen=True)
class FormulaSpec:
    """A parsed formula: what to model, without data."""

    text: str
    responses: tuple[str, ...]              # formulaic text of each response
    response_variables: tuple[str, ...]     # columns the responses use
    fixed: str                              # formulaic text of the fixed part
    groups: tuple[GroupTerm, ...] = ()
    trials: str | None = None               # formulaic text of trials(n)
    fixed_variables: tuple[str, ...] = ()
    multivariate: bool = False
    trials_variables: tuple[str, ...] = ()
    parts: tuple["FormulaSpec", ...] = ()  # bf(...) + bf(...): one univariate spec per response
    offset: str | None = None               # formulaic text of the sum of the offset() terms
    offset_variables: tuple[str, ...] = ()
    autocor: tuple = ()                     # ar()/cosy() terms (formula/autocor.AutocorTerm)
    dpars: tuple[DparFormula, ...] = ()     # distributional formulas (univariate spec or part)
    #: ``cs(x)`` terms of the fixed part (formulaic text of each argument): brms'
    #: category-specific effects in an ordinal model, formulaic's spline otherwise; ``cs_fixed``
    #: the fixed part with each ``cs(x)`` written as ``x``
    cs_terms: tuple[str, ...] = ()
    cs_fixed: str | None = None
    #: the cs() terms read as category-specific effects (:meth:`with_category_specific`)
    category_specific: tuple[str, ...] = ()
    #: ``bf(y ~ x, family = poisson())``: this response's family call as written (read by the
    #: family-call reader, :func:`.family_call.parse_family_call`, never
    #: evaluated); None: the model's ``family=``
    family: str | None = None
    #: ``bf(...) + bf(...) + set_rescor(FALSE)``: brms' residual-correlation switch (None: not
    #: written; the model's ``rescor=`` or brms' default decides)
    rescor: bool | None = None

    def with_category_specific(self) -> "FormulaSpec":
        """This formula with its ``cs(x)`` terms as brms' category-specific effects of an
        ordinal family: x enters the fixed part, and its columns get one coefficient per
        threshold (``bcs_x[k]``) instead of one on the linear predictor."""
        if not self.cs_terms or self.category_specific:
            return self
        from dataclasses import replace
        return replace(self, fixed=self.cs_fixed, category_specific=self.cs_terms)

    @property
    def dpar_names(self) -> tuple[str, ...]:
        """The parameters with a formula (of every part of a multivariate formula)."""
        out = [d.name for d in self.dpars] + [d.name for p in self.parts for d in p.dpars]
        return tuple(dict.fromkeys(out))

    @property
    def distributional(self) -> bool:
        return bool(self.dpar_names)
    #: brms' addition terms weights(), cens(), trunc(), se() (:mod:`.additions`)
    additions: AdditionTerms = AdditionTerms()

    def __add__(self, other: "FormulaSpec") -> "FormulaSpec":
        """``bf("y1 ~ x") + bf("y2 ~ z")``: one multivariate formula (brms' ``bf() + bf()``)."""
        if not isinstance(other, FormulaSpec):
            return NotImplemented
        pieces = [p.text for p in (self.parts or (self,))] + \
            [p.text for p in (other.parts or (other,))]
        # a univariate spec with distributional formulas is written bf(y ~ x, sigma ~ x)
        text = " + ".join(t if t.lstrip().startswith("bf(") else f"bf({t})" for t in pieces)
        flags = {x.rescor for x in (self, other) if x.rescor is not None}
        if len(flags) > 1:
            raise FormulaError("set_rescor() is given as both TRUE and FALSE")
        if flags:
            text += f" + set_rescor({'TRUE' if flags.pop() else 'FALSE'})"
        return parse(text)

    def response_variables_of(self, k: int) -> tuple[str, ...]:
        """Columns response k needs (its response, its predictors, its grouping factors)."""
        if not self.parts:
            return self.variables
        return self.parts[k].variables

    @property
    def variables(self) -> tuple[str, ...]:
        """Every column the formula uses, in order of first appearance."""
        out: list[str] = []
        names = list(self.response_variables) + list(self.fixed_variables)
        if self.trials_variables:
            names += list(self.trials_variables)
        names += list(self.offset_variables)
        names += [v for a in self.autocor for v in a.variables]
        for d in self.dpars:
            names += list(d.fixed_variables)
        names += list(self.additions.variables)
        for p in self.parts or ():       # bf() parts: their offsets and addition terms
            names += list(p.offset_variables) + list(p.additions.variables)
        for g in self.groups:
            names += list(g.variables) + list(g.factors) + ([g.by] if g.by else [])
        for n in names:
            if n not in out:
                out.append(n)
        return tuple(out)

    def __str__(self) -> str:
        if self.parts:
            return "\n".join([f"Formula: {self.text}"] + [
                "  " + line for p in self.parts for line in str(p).splitlines()])
        lines = [f"Formula: {self.text}",
                 f"  responses: {', '.join(self.responses)}"
                 + (f" | trials({self.trials})" if self.trials else "")
                 + ((" + " if self.trials else " | ") + str(self.additions)
                    if self.additions.any else ""),
                 f"  fixed:     {self.fixed}"]
        if self.offset:
            lines.append(f"  offset:    {self.offset}")
        for d in self.dpars:
            lines.append(f"  {d.name}:{' ' * max(1, 10 - len(d.name))}{d.fixed}")
        for g in self.groups:
            flags = [] if g.correlated else ["uncorrelated"]
            if g.id:
                flags.append(f"id={g.id}")
            if g.by:
                flags.append(f"by={g.by}")
            if g.cov:
                flags.append(f"cov={g.cov}")
            if g.structure:
                flags.append(g.structure)
            if g.dpar:
                flags.append(f"dpar={g.dpar}")
            lines.append(f"  group:     ({g.expr} | {g.group})"
                         + (f"  [{', '.join(flags)}]" if flags else ""))
        return "\n".join(lines)


def bf(text: str, family=None, **dpars: str) -> FormulaSpec:
    """brms' ``bf()``: one response's formula; combine responses with ``+``.

    ``bf("y1 ~ x + (1 | p | g)") + bf("y2 ~ z + (1 | p | g)")`` is the multivariate formula
    written ``"bf(y1 ~ x + (1 | p | g)) + bf(y2 ~ z + (1 | p | g))"``; each part goes through the
    same parser and validator as any formula. Keyword arguments are distributional formulas:
    ``bf("y ~ x + (1 | g)", sigma="~ x + (1 | g)")`` is ``"bf(y ~ x + (1 | g), sigma ~ x +
    (1 | g))"``. ``family=``: this response's family (a name, a call string like
    ``"poisson(link = 'log')"`` or a family object), written into the text as brms'
    ``bf(y ~ x, family = poisson())``.
    """
    fam_text = None if family is None else family_call_text(family)
    if dpars or fam_text is not None:
        if not isinstance(text, str):
            raise FormulaError("bf() with distributional formulas or family= takes the formula "
                               "as text")
        pieces = [text]
        for name, rhs in dpars.items():
            if not isinstance(rhs, str):
                raise FormulaError(f"the formula for {name} must be text like '~ x + (1 | g)'")
            body = rhs.strip()
            if body.startswith(name) and body[len(name):].lstrip().startswith("~"):
                body = body[len(name):].lstrip()
            pieces.append(f"{name} {body}" if body.startswith("~") else f"{name} ~ {body}")
        if fam_text is not None:
            pieces.append(f"family = {fam_text}")
        text = "bf(" + ", ".join(pieces) + ")"
    spec = parse(text)
    if spec.multivariate:
        raise FormulaError("bf() takes one response; combine responses as bf(...) + bf(...)",
                           spec.text, 0, len(spec.text))
    return spec


def family_call_text(family) -> str:
    """``family=`` of :func:`bf` as the family-call text stored in the formula: a name or call
    string (checked by the family-call reader, nothing evaluated) or a family object (its name
    and link)."""
    from .family_call import parse_family_call
    if hasattr(family, "name") and hasattr(family, "link") and not isinstance(family, str):
        if getattr(family, "family_arguments", ()) or getattr(family, "thresholds", False):
            raise FormulaError(f"bf(family=) takes the {family.name} family as text, like "
                               f"{family.name}(link = '{family.link}')")
        return f"{family.name}(link = '{family.link}')"
    if not isinstance(family, str):
        raise FormulaError(f"bf(family=) takes a family name, a call like 'poisson()' or a "
                           f"family object, not {type(family).__name__}")
    parse_family_call(family)       # read as text now (FamilyError); the name is checked by
    return family.strip()           # get_family when the model is specified


def parse(text: str) -> FormulaSpec:
    """Parse an lme4/brms formula. Raises :class:`~mixedformula.FormulaError` with a caret.

    ``bf(y1 ~ ...) + bf(y2 ~ ...)`` gives a multivariate spec with one part per response.
    """
    if isinstance(text, FormulaSpec):
        return text
    try:
        if isinstance(text, str) and text.lstrip().startswith("bf") \
                and text.lstrip()[2:].lstrip().startswith("("):
            return _parse_bf(text)
        return _parse(text)
    except RecursionError:
        # Backstop: the parser bounds nesting, but a long chain of one operator other than
        # + and - (a:b:c:..., g1/g2/...) still makes a deep tree.
        raise FormulaError("the formula is too deeply nested or has too long a chain of "
                           "operators", text if isinstance(text, str) else None,
                           0 if isinstance(text, str) else None) from None


def _bf_spans(text: str, rescor: list | None = None) -> list[tuple[int, int]]:
    """Spans of the formulas inside ``bf(...) + bf(...)``, found from the tokens (quotes and
    nested parentheses respected); anything else between the parts is an error, but for
    brms' ``+ set_rescor(TRUE/FALSE)``, whose value is appended to ``rescor``."""
    rescor = [] if rescor is None else rescor
    from .tokens import tokenize
    toks = tokenize(text)
    spans, i = [], 0
    while True:
        t = toks[i]
        if t.kind == "NAME" and t.value == "set_rescor" and not t.quoted:
            i = _set_rescor(toks, i, text, rescor)
            if toks[i].kind == "END":
                return spans
            if not (toks[i].kind == "OP" and toks[i].value == "+"):
                raise FormulaError("bf() formulas are combined with '+'", text, toks[i].start,
                                   toks[i].end)
            i += 1
            continue
        if not (t.kind == "NAME" and t.value == "bf" and not t.quoted
                and toks[i + 1].kind == "OP" and toks[i + 1].value == "("):
            raise FormulaError("expected bf(<formula>) here: write several responses as "
                               "bf(y1 ~ x) + bf(y2 ~ z)", text, t.start, t.end)
        depth, j = 0, i + 1
        while True:
            tj = toks[j]
            if tj.kind == "END":
                raise FormulaError("bf( is not closed", text, toks[i].start, toks[i + 1].end)
            if tj.kind == "OP" and tj.value == "(":
                depth += 1
            elif tj.kind == "OP" and tj.value == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        spans.append((toks[i + 1].end, toks[j].start))
        nxt = toks[j + 1]
        if nxt.kind == "END":
            return spans
        if not (nxt.kind == "OP" and nxt.value == "+"):
            raise FormulaError("bf() formulas are combined with '+'", text, nxt.start, nxt.end)
        i = j + 2


def _set_rescor(toks, i: int, text: str, out: list) -> int:
    """``set_rescor(TRUE)`` / ``set_rescor(rescor = FALSE)`` at token i: its value appended to
    ``out``; returns the index of the token after the call."""
    j = i + 1
    vals = []
    if toks[j].kind == "OP" and toks[j].value == "(":
        j += 1
        if toks[j].kind == "NAME" and toks[j].value == "rescor" and toks[j + 1].value == "=":
            j += 2
        if toks[j].kind == "NAME" and toks[j].value in ("TRUE", "FALSE", "T", "F") \
                and toks[j + 1].kind == "OP" and toks[j + 1].value == ")":
            vals.append(toks[j].value in ("TRUE", "T"))
            j += 2
    if not vals:
        close = next((t for t in toks[i:] if t.kind == "OP" and t.value == ")"), toks[-1])
        raise FormulaError("set_rescor() takes TRUE or FALSE, like set_rescor(FALSE)", text,
                           toks[i].start, close.end)
    if out and out[0] != vals[0]:
        raise FormulaError("set_rescor() is given twice with different values", text,
                           toks[i].start, toks[j - 1].end)
    out.append(vals[0])
    return j


def _top_level_commas(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of ``text[start:end]`` between commas outside parentheses (from the tokens)."""
    from .tokens import tokenize
    out, depth, at = [], 0, start
    for t in tokenize(text[start:end]):
        if t.kind == "OP" and t.value == "(":
            depth += 1
        elif t.kind == "OP" and t.value == ")":
            depth -= 1
        elif t.kind == "OP" and t.value == "," and depth == 0:
            out.append((at, start + t.start))
            at = start + t.end
    out.append((at, end))
    return out


def _shifted(e: FormulaError, text: str, start: int) -> FormulaError:
    at = None if e.start is None else e.start + start
    stop = None if e.end is None else e.end + start
    return FormulaError(e.message, text, at, stop)


def _parse_part(text: str, start: int, end: int) -> FormulaSpec:
    """The inside of one ``bf(...)``: the response's formula, then ``<dpar> ~ rhs`` formulas
    (brms' distributional regression), separated by commas."""
    pieces = _top_level_commas(text, start, end)
    s0, e0 = pieces[0]
    try:
        spec = _parse(text[s0:e0])
    except FormulaError as e:
        raise _shifted(e, text, s0) from None
    if len(pieces) == 1:
        return spec
    dpars: list[DparFormula] = []
    groups = list(spec.groups)
    family = None
    for s, e in pieces[1:]:
        piece = text[s:e]
        lead = len(piece) - len(piece.lstrip())
        fam = _family_option(text, s, e)
        if fam is not None:
            if family is not None:
                raise FormulaError("family is given twice in one bf()", text, s + lead, e)
            family = fam
            continue
        try:
            tree = parse_tree(piece)
        except FormulaError as err:
            raise _shifted(err, text, s) from None
        left = tree.left
        if not isinstance(left, Name) or not is_dpar_name(left.name):
            at = s + (left.start if left is not None else lead)
            stop = s + (left.end if left is not None else lead + 1)
            what = "keyword options of bf() (nl = , ...) are not supported; " \
                if "=" in piece.split("~")[0] else ""
            raise FormulaError(f"{what}after the response's formula, bf() takes formulas for "
                               f"distributional parameters, like sigma ~ x "
                               f"({', '.join(DPAR_NAMES)}; mu<category> in a categorical "
                               f"model)", text, at, stop)
        name = left.name
        if name in [d.name for d in dpars]:
            raise FormulaError(f"{name} has two formulas", text, s + left.start, s + left.end)
        try:
            sub = _parse(piece)
        except FormulaError as err:
            raise _shifted(err, text, s) from None
        if sub.offset:
            raise FormulaError("offset() in a distributional formula is not supported yet",
                               text, s, e)
        for g in sub.groups:
            if g.by:
                raise FormulaError("gr(by = ) in a distributional formula is not supported "
                                   "yet", text, s, e)
        dpars.append(DparFormula(name=name, fixed=sub.fixed,
                                 fixed_variables=sub.fixed_variables,
                                 text=piece.strip()))
        groups += [GroupTerm(expr=g.expr, factors=g.factors, correlated=g.correlated, id=g.id,
                             by=g.by, text=g.text, variables=g.variables, dpar=name)
                   for g in sub.groups]
    if spec.multivariate:
        raise FormulaError("distributional formulas or family = with mvbind() are not "
                           "supported: write bf(y1 ~ x, sigma ~ x) + bf(y2 ~ x)", text, start,
                           end)
    _check_ids(groups, text)
    from dataclasses import replace
    return replace(spec, text=text[start:end].strip(), groups=tuple(groups),
                   dpars=tuple(dpars), family=family)


def _family_option(text: str, start: int, end: int) -> str | None:
    """``family = poisson()`` inside bf() (brms): the family call's text, or None when the
    piece is not a family option. The call is checked by the family-call reader
    (:func:`.family_call.parse_family_call`: a name and quoted / bare arguments; the name and
    the family's arguments are checked by ``get_family`` when the model is specified);
    nothing is evaluated."""
    from .tokens import tokenize
    toks = tokenize(text[start:end])
    if not (len(toks) > 2 and toks[0].kind == "NAME" and toks[0].value == "family"
            and not toks[0].quoted and toks[1].kind == "OP" and toks[1].value == "="):
        return None
    at, stop = start + toks[2].start, end
    call = text[at:stop].strip()
    if toks[2].kind == "STRING" and toks[3].kind == "END":
        call = toks[2].value            # family = "poisson"
    if not call:
        raise FormulaError("family = needs a family, like family = poisson()", text, start, end)
    from ..errors import FamilyError
    from .family_call import parse_family_call
    try:
        parse_family_call(call)
    except FamilyError as err:
        raise FormulaError(str(err), text, at, stop) from None
    return call


def _parse_bf(text: str) -> FormulaSpec:
    """``bf(f1) + bf(f2) + ...`` → a multivariate FormulaSpec whose ``parts`` are the
    univariate specs; errors inside a part point into the whole text. One ``bf(f, sigma ~ x)``
    alone is a univariate spec with distributional formulas."""
    parts: list[FormulaSpec] = []
    rescor: list = []
    spans = _bf_spans(text, rescor)
    if len(spans) == 1:
        spec = _parse_part(text, *spans[0])
        if rescor:
            raise FormulaError("set_rescor() belongs to a multivariate formula (two or more "
                               "bf() parts)", text, 0, len(text))
        if not spec.dpars and spec.family is None:
            raise FormulaError("a multivariate formula needs at least two bf() parts (one "
                               "response's formula is written without bf(), or with its "
                               "distributional formulas: bf(y ~ x, sigma ~ x))", text, 0,
                               len(text))
        from dataclasses import replace
        return replace(spec, text=text.strip())
    for start, end in spans:
        spec = _parse_part(text, start, end)
        if spec.multivariate:
            raise FormulaError("bf() takes one response; combine responses as "
                               "bf(...) + bf(...)", text, start, end)
        if spec.autocor:
            raise FormulaError("ar()/cosy() in multivariate formulas is not supported yet",
                               text, start, end)
        parts.append(spec)
    if len(parts) < 2:
        raise FormulaError("a multivariate formula needs at least two bf() parts", text, 0,
                           len(text))
    from dataclasses import replace
    return replace(_combine_parts(text, parts), rescor=rescor[0] if rescor else None)


def _combine_parts(text: str, parts: list[FormulaSpec]) -> FormulaSpec:
    """One multivariate FormulaSpec from one univariate spec per response (their addition
    terms and offsets stay in the parts: brms takes them per response)."""
    responses = [p.responses[0] for p in parts]
    for k, r in enumerate(responses):
        if r in responses[:k]:
            raise FormulaError(f"the response {r} has two bf() formulas", text, 0, len(text))
    groups = [GroupTerm(expr=g.expr, factors=g.factors, correlated=g.correlated, id=g.id,
                        by=g.by, text=g.text, variables=g.variables, response=k, cov=g.cov,
                        structure=g.structure, dpar=g.dpar)
              for k, p in enumerate(parts) for g in p.groups]
    _check_ids(groups, text)
    return FormulaSpec(text=text, responses=tuple(responses),
                       response_variables=_unique(v for p in parts
                                                  for v in p.response_variables),
                       fixed="", groups=tuple(groups), trials=None,
                       fixed_variables=_unique(v for p in parts for v in p.fixed_variables
                                               + tuple(x for d in p.dpars
                                                       for x in d.fixed_variables)),
                       multivariate=True,
                       trials_variables=_unique(v for p in parts for v in p.trials_variables),
                       parts=tuple(parts))


def _mvbind_parts(tree, text: str) -> FormulaSpec:
    """``mvbind(y1, y2) | adds ~ rhs`` with addition terms or an offset → the spec of
    ``bf(y1 | adds ~ rhs) + bf(y2 | adds ~ rhs)``: brms' ``split_bf`` copies the addition
    terms and the right-hand side (its offset too) to every response."""
    left = tree.left
    adds = None
    if isinstance(left, BinOp) and left.op == "|":
        adds, left = text[left.right.start:left.right.end], left.left
    rhs = text[tree.right.start:tree.right.end]
    parts = []
    for a in left.args:
        piece = text[a.start:a.end] + (f" | {adds}" if adds else "") + " ~ " + rhs
        parts.append(_parse(piece))
    from dataclasses import replace
    return replace(_combine_parts(text, parts), text=text)


def mvbind_as_parts(spec: FormulaSpec) -> FormulaSpec:
    """``mvbind(y1, y2) ~ rhs`` as ``bf(y1 ~ rhs) + bf(y2 ~ rhs)`` (brms' ``split_bf``): the
    spec of a multivariate model whose responses each get their own family object (brms'
    ``MV(poisson, poisson)`` for ``family = poisson()``); other specs unchanged."""
    if not spec.multivariate or spec.parts:
        return spec
    return _mvbind_parts(parse_tree(spec.text), spec.text)


def _parse(text: str) -> FormulaSpec:
    tree = parse_tree(text)
    if tree.left is None:
        raise FormulaError("a response is needed on the left of '~'", text, 0, 1)
    responses, response_vars, trials, trials_vars, multivariate, additions = _responses(
        tree.left, text)
    fixed_terms: list[tuple[int, Node]] = []
    groups: list[GroupTerm] = []
    offsets: list[Node] = []
    autocor: list = []
    for sign, term in split_terms(tree.right):
        bar = term.inner if isinstance(term, Paren) else None
        if isinstance(bar, BinOp) and bar.op in ("|", "||"):
            if sign < 0:
                raise FormulaError("a group term cannot be removed with '-'", text,
                                   term.start, term.end)
            groups.extend(_group_terms(bar, text))
        elif isinstance(term, Call) and term.func in _STRUCTURES and (
                term.func != "cs" or _has_bar(term)):
            groups.extend(_structured_terms(sign, term, text))
        elif isinstance(term, Call) and term.func == "offset":
            offsets.append(_offset_term(sign, term, text))
        elif is_autocor(term):
            autocor.append(autocor_term(sign, term, text))
        else:
            _reject_bars(term, text)
            fixed_terms.append((sign, term))
    offset = None
    if (offsets or additions.any) and multivariate and not autocor:
        return _mvbind_parts(tree, text)
    if offsets:
        offset = "I(" + " + ".join(f"({render(t, text, arithmetic=True)})"
                                   for t in offsets) + ")"
    if len(autocor) > 1:
        raise FormulaError("only one residual structure: only one autocorrelation term "
                           "(ar() or cosy()) per formula", text,
                           0, len(text))
    if autocor and multivariate:
        raise FormulaError("ar()/cosy() in multivariate formulas is not supported yet", text,
                           0, len(text))
    fixed = _join(fixed_terms, text)
    _count_terms(fixed_terms, text)
    fixed_vars = tuple(v for s, t in fixed_terms for v in variables(t))
    _check_ids(groups, text)
    cs_args = [(s, t.args[0]) for s, t in fixed_terms if _category_specific(s, t)]
    cs_fixed = _join([(s, t.args[0]) if _category_specific(s, t) else (s, t)
                      for s, t in fixed_terms], text) if cs_args else None
    return FormulaSpec(text=text, responses=tuple(responses),
                       response_variables=tuple(response_vars), fixed=fixed,
                       groups=tuple(groups), trials=trials, fixed_variables=_unique(fixed_vars),
                       multivariate=multivariate, trials_variables=tuple(trials_vars),
                       offset=offset,
                       offset_variables=_unique(v for t in offsets for v in variables(t)),
                       autocor=tuple(autocor), additions=additions,
                       cs_terms=tuple(render(t, text) for _, t in cs_args), cs_fixed=cs_fixed)


def _category_specific(sign: int, term: Node) -> bool:
    """``+ cs(x)`` with one plain argument (brms' category-specific effect in an ordinal
    model); ``cs(x, df = 4)`` is only ever formulaic's spline."""
    return (sign > 0 and isinstance(term, Call) and term.func == "cs" and len(term.args) == 1
            and not isinstance(term.args[0], (Keyword, String)))


def _offset_term(sign: int, term: Call, text: str) -> Node:
    """``offset(expr)`` in the fixed part: expr is added to the linear predictor with
    coefficient 1 (R's and brms' offset); several offsets add up."""
    if sign < 0:
        raise FormulaError("an offset cannot be removed with '-'; write offset(-x)", text,
                           term.start, term.end)
    if len(term.args) != 1 or isinstance(term.args[0], Keyword):
        raise FormulaError("offset() takes one argument, like offset(log(t))", text,
                           term.start, term.end)
    arg = term.args[0]
    if isinstance(arg, String):
        raise FormulaError("offset() takes a column or an expression of columns", text,
                           arg.start, arg.end)
    _reject_bars(arg, text)
    check_constants(arg, text)
    return arg


def parse_fixed(text: str) -> tuple[str, tuple[str, ...]]:
    """Parse ``~ terms`` or ``terms`` with no bars (e.g. for ``sigma ~ 0 + group``)."""
    from .syntax import parse_expression
    body = text.split("~", 1)[1] if "~" in text else text
    try:
        terms = split_terms(parse_expression(body))
        for _, t in terms:
            _reject_bars(t, body)
        _count_terms(terms, body)
        return _join(terms, body), _unique(v for _, t in terms for v in variables(t))
    except RecursionError:
        raise FormulaError("the formula is too deeply nested", body, 0) from None


def _count_terms(terms: list[tuple[int, Node]], text: str) -> None:
    from .validate import MAX_COLUMNS, MAX_TERMS
    total = cols = 0
    for sign, t in terms:
        if sign > 0:
            k, c = expansion(t, text)
            total, cols = total + k, cols + c
    if total > MAX_TERMS:
        raise FormulaError(f"the formula has more than {MAX_TERMS} terms", text, 0, len(text))
    if cols > MAX_COLUMNS:
        raise FormulaError(f"the formula has more than {MAX_COLUMNS} model-matrix columns",
                           text, 0, len(text))


def _unique(names) -> tuple[str, ...]:
    out: list[str] = []
    for n in names:
        if n not in out:
            out.append(n)
    return tuple(out)


def _join(terms: list[tuple[int, Node]], text: str) -> str:
    """Write signed terms back as formulaic text; no terms means intercept only."""
    if not terms:
        return "1"
    out = ""
    for i, (sign, term) in enumerate(terms):
        piece = render(term, text)
        if i == 0:
            out = piece if sign > 0 else f"-{piece}"
        else:
            out += (" + " if sign > 0 else " - ") + piece
    return out


def _reject_bars(node: Node, text: str) -> None:
    stack = [node]
    while stack:
        node = stack.pop()
        if isinstance(node, BinOp):
            if node.op in ("|", "||"):
                raise FormulaError(f"a bar {node.op!r} must be inside parentheses, like (1 | g)",
                                   text, node.start, node.end)
            stack.extend((node.right, node.left))
        elif isinstance(node, Paren):
            inner = node.inner
            if isinstance(inner, BinOp) and inner.op in ("|", "||"):
                raise FormulaError("a group term must be added to the formula at the top "
                                   "level, like y ~ x + (1 | g)", text, node.start, node.end)
            stack.append(inner)
        elif isinstance(node, Neg):
            stack.append(node.operand)
        elif isinstance(node, Call):
            stack.extend(a.value if isinstance(a, Keyword) else a for a in reversed(node.args))


def _addition_calls(node: Node) -> list[Node]:
    """The terms of ``a(x) + b(y) + ...`` right of the response's ``|``."""
    out: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, BinOp) and n.op == "+":
            stack.extend((n.right, n.left))
        else:
            out.append(n)
    return out


def _responses(node: Node, text: str):
    trials = None
    trials_vars: list[str] = []
    additions = AdditionTerms()
    if isinstance(node, BinOp) and node.op == "|":
        calls = _addition_calls(node.right)
        others = []
        for add in calls:
            if not (isinstance(add, Call) and add.func in ("trials",) + ADDITIONS):
                raise FormulaError("after '|' on the left of '~' only trials(n), weights(w), "
                                   "cens(c), trunc(lb =, ub =) and se(s) are supported "
                                   "(brms' addition terms), joined by '+'", text,
                                   add.start, add.end)
            if add.func != "trials":
                others.append(add)
                continue
            if trials is not None:
                raise FormulaError("trials() is given twice", text, add.start, add.end)
            if len(add.args) != 1 or isinstance(add.args[0], Keyword):
                raise FormulaError("trials() takes exactly one argument: the number of trials",
                                   text, add.start, add.end)
            trials = _trials_text(add.args[0], text)
            trials_vars = variables(add.args[0])
        additions = parse_additions(others, text)
        node = node.left
        if trials is not None and isinstance(node, Call) and node.func == "cbind":
            raise FormulaError("cbind(successes, failures) already gives the number of trials; "
                               "drop the | trials()", text, node.start, node.end)
    multivariate = False
    if isinstance(node, Call) and node.func == "cbind":
        # lme4's binomial response: cbind(successes, failures) = successes | trials(s + f)
        args = node.args
        if len(args) != 2 or any(isinstance(a, Keyword) for a in args):
            raise FormulaError("cbind(successes, failures) takes two columns (lme4's binomial "
                               "response); several responses are written mvbind(y1, y2)", text,
                               node.start, node.end)
        for a in args:
            if isinstance(a, (Number, String)):
                raise FormulaError("cbind() takes columns or transforms of columns", text,
                                   a.start, a.end)
            _reject_bars(a, text)
        total = BinOp(node.start, node.end, "+", args[0], Paren(args[1].start, args[1].end,
                                                                 args[1]))
        trials = _trials_text(total, text)
        trials_vars = variables(total)
        node = args[0]
    if isinstance(node, Call) and node.func == "mvbind":
        if len(node.args) < 2:
            raise FormulaError("mvbind() needs at least two responses", text, node.start,
                               node.end)
        parts = list(node.args)
        multivariate = True
    else:
        parts = [node]
    responses, response_vars = [], []
    for p in parts:
        if isinstance(p, Keyword) or isinstance(p, (Number, String)):
            raise FormulaError("a response must be a column or a transform of one", text,
                               p.start, p.end)
        _reject_bars(p, text)
        if isinstance(p, BinOp) and p.op in ("+", "*", ":", "/"):
            raise FormulaError("several responses are written mvbind(y1, y2)", text, p.start,
                               p.end)
        responses.append(render(p, text))
        response_vars.extend(v for v in variables(p) if v not in response_vars)
    if len(set(responses)) != len(responses):
        raise FormulaError("the same response appears twice in mvbind()", text, node.start,
                           node.end)
    return responses, response_vars, trials, trials_vars, multivariate, additions


def _trials_text(node: Node, text: str) -> str:
    """The number of trials as generated text (:func:`.additions.numeric_text`)."""
    return numeric_text(node, text)


def _group_terms(bar: BinOp, text: str) -> list[GroupTerm]:
    """Expand one bar ``(lhs | [id |] group)`` into GroupTerms."""
    correlated = bar.op == "|"
    lhs, group_node, term_id = bar.left, bar.right, None
    if isinstance(lhs, BinOp) and lhs.op in ("|", "||"):
        # (lhs | ID | group): lme4 parses ((lhs | ID) | group)
        if lhs.op == "||" or not correlated:
            raise FormulaError("write shared-ID terms as (lhs | ID | group)", text, bar.start,
                               bar.end)
        if isinstance(lhs.left, BinOp) and lhs.left.op in ("|", "||"):
            raise FormulaError("too many bars in one group term", text, lhs.left.start,
                               lhs.left.end)
        id_node = lhs.right
        if isinstance(id_node, Name):
            check_name(id_node, text)
            term_id = id_node.name
        elif isinstance(id_node, Number):
            term_id = id_node.text
        else:
            raise FormulaError("the ID between the bars must be a plain name, like |p|", text,
                               id_node.start, id_node.end)
        lhs = lhs.left
    by = None
    if isinstance(group_node, Call) and group_node.func == "gr":
        if not correlated:
            at = text.find("||", bar.left.end)
            raise FormulaError("'||' cannot be combined with gr(): use gr(g, cor = FALSE)", text,
                               at, at + 2)
        group_node, opts = _gr(group_node, text)
        if "cor" in opts:
            correlated = opts["cor"]
        if "id" in opts:
            if term_id is not None:
                raise FormulaError("the ID is given twice (|ID| and gr(id=))", text, bar.start,
                                   bar.end)
            term_id = opts["id"]
        by = opts.get("by")
        cov = opts.get("cov")
    else:
        cov = None
    factor_sets = _group_factors(group_node, text)
    if cov is not None and len(factor_sets) != 1:
        raise FormulaError("gr(cov = ...) takes one grouping factor, not a nesting g1/g2", text,
                           bar.start, bar.end)
    lhs_text = _bar_lhs(lhs, text)
    lhs_vars = tuple(variables(lhs))
    written = text[bar.start:bar.end]
    return [GroupTerm(expr=lhs_text, factors=f, correlated=correlated, id=term_id, by=by,
                      text=written, variables=lhs_vars, cov=cov) for f in factor_sets]


#: glmmTMB's covariance structures of group terms, ``ar1(0 + f | g)`` (see
#: :mod:`mixedformula.design.covstruct`); ``us`` is ``|`` and ``diag`` is ``||``
_STRUCTURES = ("us", "diag", "cs", "ar1", "toep")


def _has_bar(term: Call) -> bool:
    """``cs(0 + f | g)`` (glmmTMB's structure) rather than ``cs(x)`` (a fixed-part call:
    brms' category-specific effect in ordinal models, formulaic's spline otherwise)."""
    arg = term.args[0] if len(term.args) == 1 else None
    if isinstance(arg, Paren):
        arg = arg.inner
    return isinstance(arg, BinOp) and arg.op in ("|", "||")


def _structured_terms(sign: int, term: Call, text: str) -> list[GroupTerm]:
    """``struct(lhs | g)``: a group term with glmmTMB's covariance structure ``struct``."""
    if sign < 0:
        raise FormulaError("a group term cannot be removed with '-'", text, term.start,
                           term.end)
    bar = term.args[0] if len(term.args) == 1 else None
    if isinstance(bar, Paren):
        bar = bar.inner
    if not (isinstance(bar, BinOp) and bar.op == "|") or isinstance(bar.left, BinOp) and \
            bar.left.op in ("|", "||"):
        raise FormulaError(f"{term.func}() takes one group term, like {term.func}(0 + f | g)",
                           text, term.start, term.end)
    if isinstance(bar.right, Call) and bar.right.func == "gr":
        raise FormulaError(f"{term.func}() cannot be combined with gr()", text, term.start,
                           term.end)
    out = []
    for g in _group_terms(bar, text):
        structure = None if term.func in ("us", "diag") else term.func
        out.append(GroupTerm(expr=g.expr, factors=g.factors,
                             correlated=term.func != "diag", id=None, by=None,
                             text=text[term.start:term.end], variables=g.variables,
                             structure=structure))
    return out


def _bar_lhs(lhs: Node, text: str) -> str:
    terms = split_terms(lhs)
    for _, t in terms:
        _reject_bars(t, text)
    _count_terms(terms, text)
    return _join(terms, text)


def _gr(node: Call, text: str) -> tuple[Node, dict]:
    if not node.args or isinstance(node.args[0], Keyword):
        raise FormulaError("gr() needs the grouping factor first, like gr(g, by = h)", text,
                           node.start, node.end)
    opts: dict = {}
    seen: set[str] = set()
    for arg in node.args[1:]:
        if not isinstance(arg, Keyword):
            raise FormulaError("options of gr() are named, like by = h", text, arg.start,
                               arg.end)
        if arg.key not in _GR_OPTIONS:
            raise FormulaError(f"unknown option {arg.key!r} to gr(); expected one of "
                               f"by, cor, id, cov", text, arg.start,
                               arg.start + len(arg.key))
        if arg.key in seen:
            raise FormulaError(f"option {arg.key!r} is given twice", text, arg.start,
                               arg.start + len(arg.key))
        seen.add(arg.key)
        v = arg.value
        if arg.key == "by":
            if isinstance(v, Name) and v.name in ("NULL", "None"):
                continue
            if not isinstance(v, (Name, String)):
                raise FormulaError("gr(by = ...) takes a column name", text, v.start, v.end)
            if isinstance(v, Name):
                check_name(v, text)
            elif "__" in v.value or not v.value:
                raise FormulaError("gr(by = ...) takes a column name", text, v.start, v.end)
            opts["by"] = v.name if isinstance(v, Name) else v.value
        elif arg.key == "cor":
            if not (isinstance(v, Name) and v.name in CONSTANTS
                    and CONSTANTS[v.name] in ("True", "False")):
                raise FormulaError("gr(cor = ...) takes TRUE or FALSE", text, v.start, v.end)
            opts["cor"] = CONSTANTS[v.name] == "True"
        elif arg.key == "id":
            if isinstance(v, String) and v.value and "__" not in v.value:
                opts["id"] = v.value
            elif isinstance(v, Name):
                check_name(v, text)
                opts["id"] = v.name
            elif isinstance(v, Number):
                opts["id"] = v.text
            else:
                raise FormulaError("gr(id = ...) takes a name", text, v.start, v.end)
        elif arg.key == "dist":
            if not (isinstance(v, String) and v.value in GR_DISTS):
                raise FormulaError("only gr(dist = \"gaussian\") is supported", text, v.start,
                                   v.end)
        elif arg.key == "cov":
            # the name of a matrix passed as data2 (brms); never evaluated
            if isinstance(v, Name) and v.name not in CONSTANTS:
                check_name(v, text)
                opts["cov"] = v.name
            elif isinstance(v, String) and v.value and "__" not in v.value:
                opts["cov"] = v.value
            else:
                raise FormulaError("gr(cov = ...) takes the name of a matrix passed as data2, "
                                   "like gr(species, cov = A) with data2={'A': A}", text,
                                   v.start, v.end)
    return node.args[0], opts


def _group_factors(node: Node, text: str) -> list[tuple[str, ...]]:
    """``g`` → [(g,)]; ``g1:g2`` → [(g1, g2)]; ``g1/g2`` → [(g1,), (g1, g2)]."""
    if isinstance(node, Paren):
        return _group_factors(node.inner, text)
    if isinstance(node, Name):
        from .validate import check_name
        check_name(node, text)
        return [(node.name,)]
    if isinstance(node, BinOp) and node.op == ":":
        left = _group_factors(node.left, text)
        right = _group_factors(node.right, text)
        if len(left) != 1 or len(right) != 1:
            raise FormulaError("nesting '/' inside ':' is not supported", text, node.start,
                               node.end)
        return [left[0] + right[0]]
    if isinstance(node, BinOp) and node.op == "/":
        outer = _group_factors(node.left, text)
        inner = _group_factors(node.right, text)
        if len(inner) != 1:
            raise FormulaError("write deeper nesting as g1/g2/g3", text, node.right.start,
                               node.right.end)
        return outer + [outer[-1] + inner[0]]
    if isinstance(node, Call) and node.func in ("factor", "as.factor"):
        # a grouping factor is coded as a factor anyway: factor(g) is g (levels sorted)
        if len(node.args) != 1 or not isinstance(node.args[0], Name):
            raise FormulaError(f"{node.func}() as a grouping factor takes one column name, "
                               f"like (1 | {node.func}(g))", text, node.start, node.end)
        return _group_factors(node.args[0], text)
    if isinstance(node, Call) and node.func == "gr":
        raise FormulaError("gr() must be the whole grouping side of the bar", text, node.start,
                           node.end)
    raise FormulaError("the grouping side of a bar must be a factor name, g1:g2, g1/g2 or "
                       "gr(g, ...)", text, node.start, node.end)


def _check_ids(groups: list[GroupTerm], text: str) -> None:
    seen: dict[str, GroupTerm] = {}
    for g in groups:
        if g.id is None:
            continue
        other = seen.setdefault(g.id, g)
        if other.group == g.group and other.correlated == g.correlated and other.cov == g.cov:
            continue
        first = text.find(other.text)
        at = text.find(g.text, first + len(other.text)) if first >= 0 else -1
        at = at if at >= 0 else text.find(g.text)
        span = (at, at + len(g.text)) if at >= 0 else (None, None)
        if other.group != g.group:
            raise FormulaError(f"terms sharing ID {g.id!r} must have the same grouping factor "
                               f"({other.group} vs {g.group})", text, *span)
        if other.cov != g.cov:
            raise FormulaError(f"terms sharing ID {g.id!r} must use the same gr(cov = ...)",
                               text, *span)
        raise FormulaError(f"terms sharing ID {g.id!r} must all be correlated", text, *span)
