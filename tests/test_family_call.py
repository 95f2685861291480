"""The family-call text (``family="categorical(refcat = 'C')"``, the CLI's ``--family``) is
read by :func:`mixedformula.families.registry.parse_family_call`, never evaluated; its cost is
bounded by a length cap (untrusted input)."""

from __future__ import annotations

import math
import time

import pytest

from mixedformula.errors import FamilyError
from mixedformula.families import get_family
from mixedformula.families.registry import MAX_FAMILY_CALL, parse_family_call


@pytest.mark.parametrize("text,want", [
    ("gaussian", ("gaussian", [], {})),
    ("cumulative('probit')", ("cumulative", ["probit"], {})),
    ("cumulative(probit)", ("cumulative", ["probit"], {})),
    ("sratio(link = \"cloglog\")", ("sratio", [], {"link": "cloglog"})),
    ("categorical(refcat = 'C')", ("categorical", [], {"refcat": "C"})),
    ("categorical(refcat = NULL)", ("categorical", [], {"refcat": None})),
])
def test_calls_are_read_as_r_writes_them(text, want):
    assert parse_family_call(text) == want


def test_na_and_the_family_objects():
    name, args, kw = parse_family_call("categorical(refcat = NA)")
    assert name == "categorical" and args == [] and math.isnan(kw["refcat"])
    fam = get_family("categorical(refcat = 'C')")
    assert fam.refcat == "C" and fam.link == "logit"
    assert get_family("cumulative(probit)").link == "probit"


@pytest.mark.parametrize("text,msg", [
    ("cumulative(probit, logit)", "only the link may be given without a name"),
    ("cumulative(probit, link = 'logit')", "the link is given twice"),
    ("categorical(refcat = 'A', refcat = 'B')", "given twice"),
    ("categorical(ref = 'A')", "has no argument 'ref'"),
    ("categorical(refcat = 'A', 'logit')", "positional argument after a named one"),
    ("cumulative(__import__('os'))", "cannot read the arguments"),
    ("categorical('logit', refcat = 'it''s')", "cannot read the arguments"),
    ("1gaussian", "not a family name or a call"),
    ("nosuchfamily", "unknown family"),
])
def test_bad_calls_are_clear_errors(text, msg):
    with pytest.raises(FamilyError, match=msg):
        get_family(text)


@pytest.mark.parametrize("text", [
    "categorical(refcat = '" + "a" * 5_000_000 + "')",
    "cumulative(" + "a = 1, " * 1_000_000 + ")",
    "x" * 5_000_000,
])
def test_overlong_family_text_is_refused_before_it_is_read(text):
    """Text over MAX_FAMILY_CALL characters is refused at once (the message names the length
    and the cap, and quotes only the first 40 characters); the longest allowed text is read
    in well under a second however it is built."""
    t0 = time.perf_counter()
    with pytest.raises(FamilyError, match=f"{len(text)} characters long, more than the "
                                          f"{MAX_FAMILY_CALL}") as err:
        get_family(text)
    assert time.perf_counter() - t0 < 0.5
    assert len(str(err.value)) < 200
    label = "C" * (MAX_FAMILY_CALL - len("categorical(refcat = '')"))
    call = f"categorical(refcat = '{label}')"
    assert len(call) == MAX_FAMILY_CALL
    t0 = time.perf_counter()
    assert parse_family_call(call)[2] == {"refcat": label}
    for worst in ("cumulative(" + "a" * (MAX_FAMILY_CALL - 13) + " b)",
                  "cumulative(" + "'" * (MAX_FAMILY_CALL - 12) + ")"):
        with pytest.raises(FamilyError):
            parse_family_call(worst)
    assert time.perf_counter() - t0 < 0.5
