r"""brms' ``hypothesis()`` on the posterior draws, with our own safe parser.

A hypothesis is ``left OP right`` with OP one of ``=``, ``<``, ``>``; both sides are arithmetic
(``+ − * /``, unary minus, parentheses, numbers) over parameter names. brms' rules
(R/hypothesis.R, ``eval_hypothesis``), for draws s of H⁽ˢ⁾ = left⁽ˢ⁾ − right⁽ˢ⁾:

* names are looked up as ``class_ + name`` (``class_="b"`` → ``b_<name>``; with ``group=`` the
  prefix is ``<class>_<group>__``, e.g. ``class_="sd", group="Subject"`` → ``sd_Subject__``;
  ``class_=""`` takes full names); ``scope="coef"``/``"ranef"`` with ``group=`` evaluates the
  hypothesis once per level of the group on brms' ``coef()``/``ranef()`` draws (column
  ``Group``);
* ``Estimate`` = mean(H), ``Est.Error`` = sd(H) (``robust=True``: median and MAD);
* ``CI.Lower``/``CI.Upper``: quantiles α/2, 1 − α/2 for ``=``; α, 1 − α for ``<`` and ``>``
  (brms reports the 90% interval for a one-sided hypothesis at α = 0.05);
* ``Evid.Ratio``: ``>``: #{H > 0} / #{H ≤ 0}; ``<``: #{H < 0} / #{H ≥ 0}; ``=``: the
  Savage–Dickey ratio p(H = 0 | y) / p(H = 0) of kernel density estimates of the posterior
  and prior draws of H, which needs prior draws (``idata.prior``); without them NA, as brms;
* ``Post.Prob`` = ER / (1 + ER) (1 if ER = ∞; NA for a point hypothesis);
* ``Star`` = ``*`` when 0 is outside the CI (``=``) or Post.Prob > 1 − α (``<``, ``>``);
* ``Hypothesis`` = ``(left)-(right) OP 0`` with spaces removed (``(left) OP 0`` when the right
  side is ``0``).

Parsing never evaluates Python: a tokenizer and a recursive-descent parser build a small tree
(numbers, names, + − * /) that is evaluated on numpy arrays; the text is limited to
``MAX_CHARS`` characters and the nesting to ``MAX_DEPTH``, so the cost is bounded before
anything runs.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import MixedFormulaError
from .answer_frame import AnswerFrame
from .posterior import flat

MAX_CHARS = 2000
MAX_DEPTH = 50
TOKEN = re.compile(r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
                   r"|(?P<name>[A-Za-z_.][A-Za-z0-9_.:\[\],]*)"
                   r"|(?P<op>[-+*/()=<>]))")


class HypothesisError(MixedFormulaError):
    """A hypothesis string that cannot be read."""


def tokenize(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_CHARS:
        raise HypothesisError(f"hypothesis longer than {MAX_CHARS} characters")
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise HypothesisError(f"cannot read the hypothesis {text!r} at {text[pos:]!r}: "
                                  "use parameter names, numbers, + - * /, parentheses and one "
                                  "of = < >")
        kind = m.lastgroup
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens):
        self.t = tokens
        self.i = 0
        self.depth = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else (None, None)

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expr(self):
        node = self.term()
        while self.peek() in (("op", "+"), ("op", "-")):
            op = self.take()[1]
            node = (op, node, self.term())
        return node

    def term(self):
        node = self.factor()
        while self.peek() in (("op", "*"), ("op", "/")):
            op = self.take()[1]
            node = (op, node, self.factor())
        return node

    def factor(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise HypothesisError(f"hypothesis nested deeper than {MAX_DEPTH} levels")
        kind, val = self.take()
        if (kind, val) in (("op", "-"), ("op", "+")):
            node = ("neg", self.factor()) if val == "-" else self.factor()
        elif kind == "num":
            node = ("num", float(val))
        elif kind == "name":
            node = ("name", val)
        elif (kind, val) == ("op", "("):
            node = self.expr()
            if self.take() != ("op", ")"):
                raise HypothesisError("unbalanced parentheses in the hypothesis")
        else:
            raise HypothesisError(f"unexpected {val!r} in the hypothesis" if val else
                                  "the hypothesis ends too early")
        self.depth -= 1
        return node


def parse_hypothesis(text: str):
    """(left tree, sign, right tree, left text, right text) of ``left OP right``."""
    if not isinstance(text, str):
        raise HypothesisError("a hypothesis must be a string like 'Days > 0'")
    tokens = tokenize(text)
    signs = [k for k, (kind, v) in enumerate(tokens) if kind == "op" and v in "=<>"]
    if len(signs) != 1:
        raise HypothesisError(f"every hypothesis must be of the form 'left (= or < or >) "
                              f"right': {text!r}")
    k = signs[0]
    sides = []
    for part in (tokens[:k], tokens[k + 1:]):
        p = _Parser(part)
        if not part:
            raise HypothesisError(f"a side of the hypothesis {text!r} is empty")
        node = p.expr()
        if p.i != len(part):
            raise HypothesisError(f"unexpected {part[p.i][1]!r} in the hypothesis {text!r}")
        sides.append(node)
    raw = re.sub(r"\s", "", text)
    sign = tokens[k][1]
    left, right = raw.split(sign, 1)
    return sides[0], sign, sides[1], left, right


def names_in(node) -> list[str]:
    if node[0] == "name":
        return [node[1]]
    if node[0] == "num":
        return []
    return [n for child in node[1:] for n in names_in(child)]


def evaluate(node, values: dict):
    op = node[0]
    if op == "num":
        return node[1]
    if op == "name":
        return values[node[1]]
    if op == "neg":
        return -evaluate(node[1], values)
    a, b = evaluate(node[1], values), evaluate(node[2], values)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b}[op]


# --------------------------------------------------------------------------- draws

def scalar_draws(group) -> dict[str, np.ndarray]:
    """Every parameter of an xarray posterior/prior as brms-named (S,) draws
    (``r_g[level,coef]`` for the group-effect arrays)."""
    out = {}
    for name, da in group.data_vars.items():
        v = flat(da.values)
        if v.ndim == 1:
            out[name] = v
        elif v.ndim == 3:
            dims = da.dims[2:]
            levels = [str(x) for x in da.coords[dims[0]].values]
            coefs = [str(x) for x in da.coords[dims[1]].values]
            for j, lev in enumerate(levels):
                for q, c in enumerate(coefs):
                    out[f"{name}[{lev},{c}]"] = v[:, j, q]
    return out


def kde_at(x: np.ndarray, point: float) -> float:
    """Gaussian kernel density of the draws x at ``point`` (bandwidth: R's bw.nrd0, brms'
    ``density()`` default)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    sd = np.std(x, ddof=1)
    iqr = np.subtract(*np.quantile(x, [0.75, 0.25]))
    lo = min(sd, iqr / 1.34) if iqr > 0 else sd
    bw = 0.9 * (lo if lo > 0 else (abs(x[0]) or 1.0)) * n ** -0.2
    z = (point - x) / bw
    return float(np.mean(np.exp(-0.5 * z * z)) / (bw * np.sqrt(2 * np.pi)))


def summarise_one(H: np.ndarray, sign: str, prior_H, alpha: float, robust: bool) -> dict:
    if robust:
        est = float(np.median(H))
        err = float(1.4826 * np.median(np.abs(H - est)))
    else:
        est, err = float(np.mean(H)), float(np.std(H, ddof=1))
    probs = (alpha / 2, 1 - alpha / 2) if sign == "=" else (alpha, 1 - alpha)
    lo, hi = np.quantile(H, probs)
    if sign == "=":
        if prior_H is None:
            er = np.nan
        else:
            pr = kde_at(prior_H, 0.0)
            er = kde_at(H, 0.0) / pr if pr > 0 else np.nan
    else:
        k = int(np.sum(H > 0)) if sign == ">" else int(np.sum(H < 0))
        er = k / (len(H) - k) if k < len(H) else np.inf
    pp = 1.0 if np.isinf(er) else er / (1 + er)
    if sign == "=":
        star = "*" if not (lo <= 0 <= hi) else ""
    else:
        star = "*" if pp > 1 - alpha else ""
    return {"Estimate": est, "Est.Error": err, "CI.Lower": float(lo), "CI.Upper": float(hi),
            "Evid.Ratio": er, "Post.Prob": pp, "Star": star}


def _name(left: str, right: str, sign: str) -> str:
    h = f"({left})" + (f"-({right})" if right != "0" else "")
    return f"{h} {sign} 0"


def _lookup(names, table: dict, prefix: str, text: str) -> dict:
    missing = [prefix + n for n in names if prefix + n not in table]
    if missing:
        raise MixedFormulaError(f"some parameters of the hypothesis {text!r} cannot be found "
                                f"in the model: {', '.join(missing)}")
    return {n: table[prefix + n] for n in names}


def hypothesis(fit, hypotheses, class_: str = "b", group: str = "", scope: str = "standard",
               alpha: float = 0.05, robust: bool = False) -> AnswerFrame:
    """brms' ``hypothesis(fit, hypotheses, class, group, scope, alpha, robust)``."""
    if isinstance(hypotheses, str):
        hypotheses = [hypotheses]
    parsed = [parse_hypothesis(h) for h in hypotheses]
    if scope not in ("standard", "coef", "ranef"):
        raise MixedFormulaError("scope must be 'standard', 'coef' or 'ranef'")
    rows, draws = [], []
    if scope == "standard":
        prefix = (f"{class_}_{group}__" if group else f"{class_}_") if class_ else (
            f"_{group}__" if group else "")
        post = scalar_draws(fit.idata.posterior)
        prior = scalar_draws(fit.idata.prior) if "prior" in fit.idata.groups() else None
        for (lt, sign, rt, ls, rs), text in zip(parsed, hypotheses):
            names = names_in(lt) + names_in(rt)
            vals = _lookup(names, post, prefix, text)
            H = np.broadcast_to(evaluate(lt, vals) - evaluate(rt, vals),
                                (len(next(iter(post.values()))),)).astype(float)
            prior_H = None
            if prior is not None and all(prefix + n in prior for n in names):
                pv = {n: prior[prefix + n] for n in names}
                prior_H = np.asarray(evaluate(lt, pv) - evaluate(rt, pv), dtype=float)
            rows.append({"Hypothesis": _name(ls, rs, sign),
                         **summarise_one(H, sign, prior_H, alpha, robust)})
            draws.append(H)
    else:
        if not group:
            raise MixedFormulaError(f"scope={scope!r} needs group=")
        co = (fit.coef if scope == "coef" else fit.ranef)(summary=False)
        if group not in co:
            raise MixedFormulaError(f"group should be one of {', '.join(co)}")
        da = co[group]
        coefs = [str(c) for c in da.coords["coef"].values]
        for (lt, sign, rt, ls, rs), text in zip(parsed, hypotheses):
            for j, lev in enumerate(da.coords[group].values):
                table = {c: da.values[:, j, q] for q, c in enumerate(coefs)}
                vals = _lookup(names_in(lt) + names_in(rt), table, "", text)
                H = np.asarray(evaluate(lt, vals) - evaluate(rt, vals), dtype=float)
                rows.append({"Group": str(lev), "Hypothesis": _name(ls, rs, sign),
                             **summarise_one(H, sign, None, alpha, robust)})
                draws.append(H)
    return AnswerFrame.of(pd.DataFrame(rows), np.stack(draws), "hypothesis")
