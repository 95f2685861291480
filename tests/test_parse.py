"""Formula language (issue 2): every supported form parses to the right FormulaSpec, and every
error is a FormulaError that shows the formula with a caret under the offending token."""

import pytest

import mixedformula as mf
from mixedformula import FormulaError


def groups(text):
    return [(g.expr, g.group, g.correlated, g.id, g.by) for g in mf.parse(text).groups]


# -- group terms -------------------------------------------------------------------------------

def test_slope_and_intercept():
    spec = mf.parse("y ~ x + (1 + x | g)")
    assert spec.responses == ("`y`",)
    assert spec.fixed == "`x`"
    assert groups("y ~ x + (1 + x | g)") == [("1 + `x`", "g", True, None, None)]
    assert spec.variables == ("y", "x", "g")
    assert spec.groups[0].variables == ("x",)
    assert not spec.multivariate and spec.trials is None


def test_implicit_intercept():
    # (x | g) keeps the intercept: formulaic adds it to "`x`" as lme4 does
    assert groups("y ~ (x | g)") == [("`x`", "g", True, None, None)]
    assert mf.parse("y ~ (x | g)").fixed == "1"


@pytest.mark.parametrize("text,expr", [("y ~ (0 + x | g)", "0 + `x`"),
                                       ("y ~ (-1 + x | g)", "-1 + `x`"),
                                       ("y ~ (x - 1 | g)", "`x` - 1")])
def test_no_intercept(text, expr):
    assert groups(text) == [(expr, "g", True, None, None)]


@pytest.mark.parametrize("text,expr", [("y ~ (x || g)", "`x`"), ("y ~ (f || g)", "`f`"),
                                       ("y ~ (1 + f || g)", "1 + `f`"),
                                       ("y ~ (0 + f || g)", "0 + `f`")])
def test_double_bar_is_uncorrelated(text, expr):
    assert groups(text) == [(expr, "g", False, None, None)]


def test_nested_expands_like_lme4():
    assert groups("y ~ (1 | g1/g2)") == [("1", "g1", True, None, None),
                                         ("1", "g1:g2", True, None, None)]
    spec = mf.parse("y ~ (1 | g1/g2)")
    assert spec.groups[1].factors == ("g1", "g2")


def test_deeper_nesting():
    assert [g.group for g in mf.parse("y ~ (x | a/b/c)").groups] == ["a", "a:b", "a:b:c"]
    assert [g.group for g in mf.parse("y ~ (1 | a/b/c/d)").groups] == [
        "a", "a:b", "a:b:c", "a:b:c:d"]
    assert [g.group for g in mf.parse("y ~ (1 | a/(b:c))").groups] == ["a", "a:b:c"]
    assert all(g.expr == "`x`" for g in mf.parse("y ~ (x | a/b/c)").groups)


def test_interaction_group():
    spec = mf.parse("y ~ (1 | g1:g2)")
    assert [(g.group, g.factors) for g in spec.groups] == [("g1:g2", ("g1", "g2"))]
    assert spec.variables == ("y", "g1", "g2")


def test_several_crossed_terms():
    assert groups("y ~ x + (1 | a) + (1 + x | b) + (0 + z || c)") == [
        ("1", "a", True, None, None), ("1 + `x`", "b", True, None, None),
        ("0 + `z`", "c", False, None, None)]


def test_shared_id():
    assert groups("y ~ (1 + x | p | g) + (0 + z | p | g)") == [
        ("1 + `x`", "g", True, "p", None), ("0 + `z`", "g", True, "p", None)]
    assert mf.parse("mvbind(y1, y2) ~ x + (1 | p | g)").groups[0].id == "p"


def test_gr_by():
    assert groups("y ~ (1 + x | gr(g, by = h))") == [("1 + `x`", "g", True, None, "h")]
    assert "h" in mf.parse("y ~ (1 | gr(g, by = h))").variables
    assert groups('y ~ (1 | gr(g, by = "h"))')[0][4] == "h"
    assert groups("y ~ (1 | gr(g, by = NULL))")[0][4] is None


@pytest.mark.parametrize("value,correlated", [("FALSE", False), ("F", False), ("False", False),
                                              ("TRUE", True), ("T", True)])
def test_gr_cor(value, correlated):
    assert groups(f"y ~ (1 + x | gr(g, cor = {value}))") == [
        ("1 + `x`", "g", correlated, None, None)]


def test_gr_id():
    assert groups('y ~ (1 | gr(g, id = "p"))') == [("1", "g", True, "p", None)]
    assert groups("y ~ (1 | gr(g, id = p)) + (x | p | g)")[1][3] == "p"
    assert groups('y ~ (1 | gr(g, by = h, cor = FALSE, id = "q"))') == [
        ("1", "g", False, "q", "h")]


def test_mvbind():
    spec = mf.parse("mvbind(y1, y2) ~ x + (1 | g)")
    assert spec.multivariate
    assert spec.responses == ("`y1`", "`y2`")
    assert spec.response_variables == ("y1", "y2")
    spec3 = mf.parse("mvbind(y1, log(y2), y3) ~ x")
    assert spec3.responses == ("`y1`", "log(`y2`)", "`y3`")


def test_trials():
    spec = mf.parse("y | trials(n) ~ x + (1 | g)")
    assert spec.responses == ("`y`",) and spec.trials == "`n`"
    assert spec.trials_variables == ("n",)
    assert spec.variables == ("y", "x", "n", "g")


# -- fixed part ------------------------------------------------------------------------------

@pytest.mark.parametrize("text,fixed", [
    ("y ~ x * f", "`x` * `f`"),
    ("y ~ x:f", "`x` : `f`"),
    ("y ~ x + z + x:z", "`x` + `z` + `x` : `z`"),
    ("y ~ (x + z)^2", "(`x` + `z`) ^ 2"),
    ("y ~ C(f)", "C(`f`)"),
    ("y ~ C(f, contr.sum)", "C(`f`, contr.sum)"),
    ('y ~ C(f, contr.treatment(base = "b"))', "C(`f`, contr.treatment(base='b'))"),
    ("y ~ scale(x)", "scale(`x`)"),
    ("y ~ scale(x, center = TRUE, scale = FALSE)", "scale(`x`, center=True, scale=False)"),
    ("y ~ center(x)", "center(`x`)"),
    ("y ~ log(x)", "log(`x`)"),
    ("y ~ poly(x, 2)", "poly(`x`, 2)"),
    ("y ~ bs(x, df=3)", "bs(`x`, df=3)"),
    ("y ~ 0 + x", "0 + `x`"),
    ("y ~ x - 1", "`x` - 1"),
    ("y ~ -1 + x", "-1 + `x`"),
    ("y ~ 1", "1"),
    ("y ~ I(x^2)", "I(`x` ** 2)"),
    ("y ~ I(x**2)", "I(`x` ** 2)"),
    ("y ~ I(log(x^2))", "I(log(`x` ** 2))"),
    ("y ~ log(x^2)", "log(`x` ** 2)"),
    ("y ~ I(2 * x - z / 3)", "I(2 * `x` - `z` / 3)"),
    ("y ~ `my col` + x.y", "`my col` + `x.y`"),
])
def test_fixed_part(text, fixed):
    spec = mf.parse(text)
    assert spec.fixed == fixed
    assert spec.groups == ()


def test_power_means_power_only_inside_calls():
    # In the formula, ^ crosses terms (R); inside I(), log(), ... it is arithmetic power
    assert "**" not in mf.parse("y ~ (a + b)^2").fixed
    assert mf.parse("y ~ I(x^2) + (a + b)^2").fixed == "I(`x` ** 2) + (`a` + `b`) ^ 2"


@pytest.mark.parametrize("lhs,expr", [
    ("1 + x * f", "1 + `x` * `f`"), ("x:f", "`x` : `f`"), ("C(f)", "C(`f`)"),
    ("scale(x)", "scale(`x`)"), ("center(x)", "center(`x`)"), ("log(x)", "log(`x`)"),
    ("poly(x, 2)", "poly(`x`, 2)"), ("bs(x, df=3)", "bs(`x`, df=3)"), ("0 + f", "0 + `f`"),
    ("-1 + x", "-1 + `x`"), ("I(x^2)", "I(`x` ** 2)")])
def test_fixed_features_inside_bar(lhs, expr):
    assert groups(f"y ~ x + ({lhs} | g)") == [(expr, "g", True, None, None)]


def test_response_transform_and_str():
    spec = mf.parse("log(y) ~ x + (1 | gr(g, by = h, cor = FALSE, id = 'p'))")
    assert spec.responses == ("log(`y`)",)
    text = str(spec)
    assert "log(`y`)" in text and "uncorrelated" in text and "by=h" in text and "id=p" in text


def test_long_sum_parses_without_recursion_error():
    text = "y ~ " + " + ".join(f"x{i}" for i in range(900))
    spec = mf.parse(text)
    assert len(spec.fixed_variables) == 900


def test_parse_fixed():
    from mixedformula.formula import parse_fixed
    assert parse_fixed("~ 0 + g") == ("0 + `g`", ("g",))
    with pytest.raises(FormulaError):
        parse_fixed("~ (1 | g)")


# -- errors: message + caret -----------------------------------------------------------------

def caret(err: FormulaError) -> tuple[int, int]:
    """Position and width of the caret under the formula line of ``str(err)``."""
    lines = str(err).split("\n")
    assert len(lines) == 3, str(err)
    assert lines[1] == "    " + err.formula
    line = lines[2][4:]
    start = line.index("^")
    return start, len(line) - start


ERRORS = [
    # (formula, token the caret points at, occurrence, words in the message)
    ("y ~ (1 | g", "(", 0, "never closed"),
    ("y ~ x + (1 + x | g", "(", 0, "never closed"),
    ("y ~ log(x", "log", 0, "never closed"),
    ("y ~ x)", ")", 0, "no matching"),
    ("y ~ (1 | g))", ")", 1, "no matching"),
    ("y ~ ( | g)", "|", 0, "empty left side"),
    ("y ~ (|| g)", "||", 0, "empty left side"),
    ("y ~ (1 | )", "|", 0, "empty right side"),
    ("y ~ x + (1 || )", "||", 0, "empty right side"),
    ("y ~ (1 || gr(g))", "||", 0, "gr(g, cor = FALSE)"),
    ("y ~ (1 | gr(g, foo = 1))", "foo", 0, "unknown option 'foo' to gr()"),
    ("y ~ (1 | gr(g, by = h, by = k))", "by", 1, "twice"),
    ("y ~ (1 | gr(g, cor = 3))", "3", 0, "TRUE or FALSE"),
    ("y ~ (1 | gr(g, 3))", "3", 0, "named"),
    ("y ~ (1 | gr(by = h))", "gr", 0, "grouping factor first"),
    ("y ~ (1 | gr(g, cov = 3))", "3", 0, "name of a matrix"),
    ("y ~ x | g", "x", 0, "inside parentheses"),
    ("y ~ x + z | g", "x", 0, "inside parentheses"),
    ("y ~ log((1 | g))", "(", 1, "top level"),
    ("y ~ x - (1 | g)", "(", 0, "cannot be removed"),
    ("y ~ (1 | p | q | g)", "1", 0, "too many bars"),
    ("y ~ (1 | 1)", "1", 1, "grouping side"),
    ("y ~ (1 | x + g)", "x", 0, "grouping side"),
    ("y ~ (1 | g1/(g2/g3))", "(", 1, "g1/g2/g3"),
    ("y ~ (1 | p | g) + (1 | p | h)", "1 | p | h", 0, "same grouping factor"),
    ("y x", "y", 0, "'~'"),
    ("y ~ x ~ z", "~", 1, "only one '~'"),
    ("y ~", "~", 0, "nothing after"),
    ("~ x", "~", 0, "response"),
    ("y ~ .", ".", 0, "not supported"),
    ("y ~ {x}", "{", 0, "Python blocks"),
    ("y ~ x[1]", "[", 0, "subscripts"),
    ("y ~ d$x", "$", 0, "column access"),
    ("y ~ x %in% g", "%", 0, "not supported"),
    ('y ~ C(f, "abc)', '"', 0, "unterminated string"),
    ("y ~ `x", "`", 0, "unterminated"),
    ("y ~ foo(x)", "foo", 0, "not allowed"),
    ("y ~ log(x, x)", "x", 1, "at most 1"),
    ("y ~ scale(x, out = z)", "out", 0, "unknown option 'out' to scale()"),
    ("y ~ log(x:z)", ":", 0, "inside a function"),
    ("y ~ poly(x, 1000)", "1000", 0, "too large"),
    ("y ~ x +", "+", 0, "empty right side"),
    ("y ~ ()", ")", 0, "empty parentheses"),
    ("y ~ x, z", ",", 0, "expected an operator"),
    ("y ~ x @ z", "@", 0, "not allowed"),
    ("cbind(a, b, c) ~ x", "cbind", 0, "mvbind"),
    ("mvbind(y) ~ x", "mvbind", 0, "at least two"),
    ("mvbind(y, y) ~ x", "mvbind", 0, "twice"),
    ("y | foo(n) ~ x", "foo", 0, "trials(n)"),
    ("y | trials(n, m) ~ x", "trials", 0, "exactly one"),
    ("1 ~ x", "1", 0, "response"),
    ("y ~ x + __y", "__y", 0, "'__'"),
    ("y ~ if + x", "if", 0, "reserved word"),
    ("y ~ contr.sum", "contr.sum", 0, "only appear as an argument of C()"),
    ('y ~ "x"', '"x"', 0, "strings"),
]


@pytest.mark.parametrize("text,token,occurrence,words", ERRORS)
def test_error_has_message_and_caret(text, token, occurrence, words):
    with pytest.raises(FormulaError) as info:
        mf.parse(text)
    err = info.value
    assert words in err.message, err.message
    assert err.formula == text
    expected = -1
    for _ in range(occurrence + 1):
        expected = text.index(token, expected + 1)
    start, width = caret(err)
    assert start == expected, str(err)
    assert width >= 1


def test_caret_width_covers_token():
    with pytest.raises(FormulaError) as info:
        mf.parse("y ~ x + foo(z)")
    assert caret(info.value) == (8, 3)
    with pytest.raises(FormulaError) as info:
        mf.parse("y ~ (1 | gr(g, bogus = 1))")
    assert caret(info.value) == (15, 5)


def test_caret_on_very_long_formula_shows_a_window():
    text = "y ~ " + " + ".join(f"x{i}" for i in range(100)) + " + foo(x)"
    with pytest.raises(FormulaError) as info:
        mf.parse(text)
    lines = str(info.value).split("\n")
    assert lines[1].startswith("    ...")
    line, pointer = lines[1][4:], lines[2][4:]
    start = pointer.index("^")
    assert line[start:start + 3] == "foo"


def test_not_a_string():
    with pytest.raises(FormulaError, match="must be a string"):
        mf.parse(None)
    with pytest.raises(FormulaError, match="must be a string"):
        mf.parse(b"y ~ x")


def test_term_power_is_bounded_by_the_number_of_terms():
    """(a + b)^k expands like (a + b)^2 for any k >= 2 (a:a is a), so k is written as at most
    the number of terms; a power that is not a whole number >= 1 is refused (issue 17)."""
    assert mf.parse("y ~ (x + z)^1000000000").fixed == "(`x` + `z`) ^ 2"
    assert mf.parse("y ~ (x + z + w)^3").fixed == "(`x` + `z` + `w`) ^ 3"
    for bad in ["y ~ (x + z)^2.5", "y ~ (x + z)^0", "y ~ (x + z)^w", "y ~ (x + z)^(10 ^ 10)"]:
        with pytest.raises(FormulaError, match="whole number"):
            mf.parse(bad)


def test_constant_arithmetic_is_bounded_before_evaluation():
    """Constants are checked in floating point before formulaic sees them (issue 17)."""
    for bad in ["y ~ I(x ^ 10 ^ 10 ^ 10)", "y ~ poly(x, 2 ^ 10)", "y ~ I(x + 1 / (1 - 1))",
                "y ~ poly(x, degree = z)", "y ~ poly(x, 50):poly(z, 50):poly(w, 50)"]:
        with pytest.raises(FormulaError):
            mf.parse(bad)
    assert mf.parse("y ~ I(x ^ 2 ^ 3) + poly(x, 1 + 2)").fixed == \
        "I(`x` ** 2 ** 3) + poly(`x`, 1 + 2)"
