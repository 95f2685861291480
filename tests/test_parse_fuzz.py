"""Parser fuzzing (issues 2 and 9): parse returns a FormulaSpec or raises FormulaError — never
another exception — on formula-like token soup and on random text (>= 10^4 examples per run).
Round trip: formulas generated valid by construction parse, with the group terms they were
built with."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixedformula as mf
from mixedformula import FormulaError, FormulaSpec

FAST = dict(deadline=None, suppress_health_check=list(HealthCheck), derandomize=False)

NAMES = ["x", "y", "g", "g1", "g2", "f", "z", "n", "a.b", "x_1", "`my col`", "`a'b`", "__x",
         "if", "T", "FALSE", "NULL", "contr.sum", "._", ".", "p", "h", "é"]
CALLS = ["log(", "exp(", "I(", "C(", "scale(", "center(", "poly(", "bs(", "gr(", "mvbind(",
         "trials(", "eval(", "open(", "__import__(", "contr.treatment(", "sqrt(", "cbind(",
         "factor(", "as.factor(", "as.numeric(", "ns(", "offset(", "splines::", "base::",
         "stats::", "::", "base::eval("]
OPERATORS = ["~", "+", "-", "*", "/", ":", "^", "**", "|", "||", "(", ")", ",", "=", " ", " ",
             "|||", "~~", "%in%", "%%"]
LITERALS = ["0", "1", "2", "-1", "1e9", "1.5", ".5", "1e999", '"p"', "'q'", "''", '"',
            "by = h", "cor = FALSE", "id = 'p'", "degree = 2", "df = 3", "out = x"]
JUNK = ["{", "}", "[", "]", ";", "@", "$", "!", "&", "<", ">", "\\", "`", "\n", "\t", "#",
        "lambda", ":=", "?", "\x00", "\u037e", "＿", "ｏｐｅｎ", "\ud7ff", "'\"", "..."]

token = st.sampled_from(NAMES + CALLS + OPERATORS + LITERALS + JUNK)
soup = st.lists(token, min_size=0, max_size=40).map("".join)
# Mostly well-formed skeletons with a hole of token soup: reaches deep parser states.
skeleton = st.tuples(st.sampled_from(["y ~ ", "mvbind(y1, y2) ~ ", "y | trials(n) ~ ", "",
                                      "log(y) ~ x + "]),
                     soup,
                     st.sampled_from(["", " + (1 | g)", ")", " | g)", " + (x || g1/g2)"])
                     ).map("".join)


def check(text):
    try:
        out = mf.parse(text)
    except FormulaError as e:
        str(e)  # rendering the caret must not fail either
        return
    assert isinstance(out, FormulaSpec)
    str(out)
    _ = out.variables


@settings(max_examples=4000, **FAST)
@given(soup)
def test_token_soup(text):
    check(text)


@settings(max_examples=3000, **FAST)
@given(skeleton)
def test_skeletons(text):
    check(text)


@settings(max_examples=2000, **FAST)
@given(st.text(max_size=60))
def test_random_text(text):
    check(text)


@settings(max_examples=1000, **FAST)
@given(st.text(alphabet="yxg~+-*/:^|()., =`'\"1", max_size=40))
def test_operator_alphabet(text):
    check(text)


# -- round trip on formulas valid by construction ----------------------------------------------

var = st.sampled_from(["x", "z", "w", "f", "`my col`", "x.1"])
transform = st.one_of(
    var,
    var.map(lambda v: f"log({v})"),
    var.map(lambda v: f"scale({v})"),
    var.map(lambda v: f"I({v}^2)"),
    var.map(lambda v: f"poly({v}, 2)"),
    var.map(lambda v: f"C({v})"),
    var.map(lambda v: f"factor({v})"),
    var.map(lambda v: f"as.numeric({v})"),
    var.map(lambda v: f"splines::ns({v}, 3)"),
)
fixed_term = st.one_of(transform, st.tuples(transform, st.sampled_from([":", "*"]), transform)
                       .map(" ".join))
lhs = st.tuples(st.sampled_from(["", "1 + ", "0 + ", "-1 + "]),
                st.lists(transform, max_size=2)).map(
    lambda t: (t[0] + " + ".join(t[1])).rstrip(" +") or "1")
group_name = st.sampled_from(["g", "g1", "h", "`sub ject`"])


@st.composite
def group_term(draw):
    """Returns (text, number of GroupTerms it expands to)."""
    left = draw(lhs)
    kind = draw(st.sampled_from(["plain", "double", "nested", "nested3", "inter", "id", "gr"]))
    g1, g2 = draw(group_name), draw(group_name)
    if kind == "plain":
        return f"({left} | {g1})", 1
    if kind == "double":
        return f"({left} || {g1})", 1
    if kind == "nested":
        return f"({left} | {g1}/{g2})", 2
    if kind == "nested3":
        return f"({left} | {g1}/{g2}/k)", 3
    if kind == "inter":
        return f"({left} | {g1}:{g2})", 1
    if kind == "id":
        return f"({left} | p | {g1})", 1
    opts = draw(st.lists(st.sampled_from(["by = b", "cor = FALSE", "id = 'q'"]), unique=True))
    return f"({left} | gr({', '.join([g1] + opts)}))", 1


@st.composite
def valid_formula(draw):
    response = draw(st.sampled_from(["y", "log(y)", "mvbind(y1, y2)", "y | trials(n)",
                                     "cbind(s, n - s)"]))
    parts = draw(st.lists(fixed_term, max_size=4))
    terms = draw(st.lists(group_term(), max_size=4))
    intercept = draw(st.sampled_from(["", "0 + ", "1 + "]))
    pieces = parts + [t for t, _ in terms]
    rhs = intercept + (" + ".join(pieces) if pieces else "1")
    # shared IDs must have one grouping factor: keep IDs only when that holds
    return f"{response} ~ {rhs}", sum(k for _, k in terms)


@settings(max_examples=1500, **FAST)
@given(valid_formula())
def test_round_trip(case):
    text, n_groups = case
    try:
        spec = mf.parse(text)
    except FormulaError as e:
        # the only legitimate refusal: one ID used with different grouping factors
        assert "sharing ID" in e.message, str(e)
        return
    assert len(spec.groups) == n_groups
    assert mf.parse(str(spec.text)) == spec
