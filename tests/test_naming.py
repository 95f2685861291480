"""The brms name codec: names written by results/naming.py split back into their parts."""

import pytest

from mixedformula.results.naming import (b_name, by_tag, coef_label, cor_name, name_kind,
                                         ranef_name, rescor_name, sd_name, sigma_name,
                                         split_by, split_group, split_pair, split_spec)


def test_written_names_are_brms_names():
    assert b_name("Days") == "b_Days"
    assert b_name("x", "y1") == "b_y1_x"
    assert sd_name("Subject", "Intercept") == "sd_Subject__Intercept"
    assert sd_name("g", "Intercept", by_tag("h", "A")) == "sd_g__Intercept:hA"
    assert cor_name("g", coef_label("Intercept", "y1"), coef_label("x", "y2")) == \
        "cor_g__y1_Intercept__y2_x"
    assert sigma_name() == "sigma" and sigma_name("y1") == "sigma_y1"
    assert sigma_name(None, by_tag("grp", "B")) == "sigma:grpB"
    assert rescor_name("y1", "y2", ":grpA") == "rescor__y1__y2:grpA"
    assert ranef_name("h:g") == "r_h:g"
    assert by_tag(None, "A") == ""


@pytest.mark.parametrize("name, kind", [("b_x", "b"), ("sd_g__x", "sd"), ("cor_g__a__b", "cor"),
                                        ("rescor__y1__y2", "rescor"), ("r_g", "r"),
                                        ("sigma", "spec"), ("sigma_y1:hA", "spec"),
                                        ("nu", "spec"), ("shape", "spec"), ("lp", None)])
def test_name_kind(name, kind):
    assert name_kind(name) == kind


def test_split_back():
    # longest by-level first: "A1" is not read as "A" + "1"
    assert split_by("Intercept:hA1", "h", ["A", "A1"]) == ("Intercept", "hA1", "A1")
    assert split_by("Intercept", "h", ["A"]) == ("Intercept", None, None)
    # group names containing ":" and "__" inside labels
    assert split_group("h:g__Intercept", ["h:g", "g"]) == ("h:g", "Intercept")
    assert split_group("k__x", ["h:g"]) is None
    assert split_pair("a__b__c", {"a__b", "c"}) == ("a__b", "c")
    assert split_pair("a__b__c", set()) == ("a", "b__c")
    assert split_spec("sigma_y1:grpA") == ("sigma", "y1", "grpA")
    assert split_spec("sigma:grpA") == ("sigma", None, "grpA")
    assert split_spec("nu") == ("nu", None, None)
