"""Multivariate bf() + bf() with a distributional sigma formula on one response (issue #18):
``bf(y1 ~ x + (1 | g), sigma ~ x) + bf(y2 ~ x + (1 | g)) + set_rescor(FALSE)`` against brms 2.18
(tests/data/brms_mv_dpar.json from tests/data/r/brms_mv_dpar.R, data stored with it): brms'
names, default priors and posterior means. With rescor brms allows a sigma formula too
(brms_dpar.json's ``rescor_with_sigma``; its likelihood against scipy is
tests/test_dpar.py::test_multivariate_with_a_sigma_formula_and_rescor).
"""

import json
import os
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

DATA = os.path.join(os.path.dirname(__file__), "data")
FORMULA = "bf(y1 ~ x + (1 | g), sigma ~ x) + bf(y2 ~ x + (1 | g))"


@pytest.fixture(scope="module")
def ref():
    with open(os.path.join(DATA, "brms_mv_dpar.json")) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def data(ref):
    return pd.DataFrame(ref["data"])


def test_default_priors_are_brms(data, ref):
    """Every non-flat default prior of brms' prior_summary, keyed by (class, resp, dpar)."""
    ours = mf.Model(FORMULA, data, rescor=False).prior_summary()
    mine = {(r["class"], r["resp"], r["dpar"]): r["prior"] for _, r in ours.iterrows()
            if r["prior"] != "(flat)"}
    p = ref["prior"]
    brms = {(c, r, d): pr for pr, c, r, d in zip(p["prior"], p["class"], p["resp"], p["dpar"])
            if pr}
    assert mine == brms


def test_rescor_with_a_sigma_formula_is_allowed_as_in_brms(data):
    with open(os.path.join(DATA, "brms_dpar.json")) as f:
        assert json.load(f)["rescor_with_sigma"] == "allowed"
    assert "_corr__rescor" in mf.Model(FORMULA, data, rescor=True).pymc_model.named_vars


def test_names_and_posterior_means_match_brms(data, ref):
    """brms 4 × 1000 draws (ESS of the means ≥ 865, stored); ours 4 × 1000, ESS ≥ 400
    asserted (b_y1_Intercept's is 570–650 for a correct sampler), so the Monte-Carlo sd of a
    difference of means is ≤ √(1/865 + 1/400) = 0.060 posterior sd and 0.2 sd is 3.3 of it:
    a correct sampler fails one of the 9 checks with probability < 1 %."""
    from sim import assert_means_near_brms
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit(FORMULA, data, rescor=False, draws=1000, tune=1000, chains=4, seed=5)
    post = fit.idata.posterior
    names = set(ref["names"])
    assert {"b_y1_x", "b_sigma_y1_Intercept", "b_sigma_y1_x", "sigma_y2"} <= names
    assert {v for v in post.data_vars if not v.startswith("r_")} == names
    assert min(ref["ess"]) >= 865
    assert_means_near_brms(post, dict(zip(ref["names"], ref["mean"])),
                           dict(zip(ref["names"], ref["sd"])), min_ess=400)
    assert np.isfinite(fit.loo().elpd)
