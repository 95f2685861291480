"""brms' ``hypothesis()`` and ``bayes_R2()`` on sleepstudy against brms 2.18 itself.

Reference: tests/data/brms_answers.json, made by tests/data/r/brms_answers.R (brms 2.18.0,
rstan 2.21, default priors, 4 chains × (1000 warm-up + 5000 draws), seed 1; smallest bulk ESS
4470). Our fit: the same model and priors, marginal engine, 4 × (1000 + 2000).

brms 2.18's ``bayes_R2`` has one definition, the residual-based one (var of y − E[y]); brms ≥
2.22 added ``method = "model"`` (σ² for gaussian) and made it the gaussian default, as ours is:
so brms 2.18 is compared with ``method="residual"``.

Tolerances and their false-failure rate for a correct sampler: the difference of two
independent Monte-Carlo means has sd = posterior sd × sqrt(1/ESS_brms + 1/ESS_ours) ≤ 0.028 sd
with ESS_brms ≥ 4470 and ESS_ours ≥ 2000 (asserted below, so a poorly mixing run fails as such,
not as a mismatch). Means are checked within 0.1 posterior sd (3.5 sd of the difference: 4e-4
per check); 5 %/95 % and 2.5 %/97.5 % quantiles within 0.25 posterior sd (their Monte-Carlo sd is
about 2.1 sd/sqrt(ESS) per side for a near-normal posterior, ≤ 0.055 sd for the difference:
4.5 sd, 1e-5 per check); posterior probabilities within 0.04 (sd of the difference ≤
sqrt(0.25/2000 + 0.25/4470) = 0.0135: 3 sd, 3e-3 for the one probability near 0.5; the others
are far from 0.5 and safer); posterior sds within 10 % (relative Monte-Carlo sd of each ≈
1/sqrt(2 ESS) ≤ 0.016: 5 sd of the difference). 27 checks in all: about 6e-3 family-wise.
"""

import json
from pathlib import Path

import arviz as az
import numpy as np
import pytest

import mixedformula as mf

REF = json.loads((Path(__file__).parent / "data" / "brms_answers.json").read_text())


@pytest.fixture(scope="module")
def bfit(sleepstudy):
    fit = mf.fit("Reaction ~ Days + (Days | Subject)", sleepstudy, draws=2000, tune=1000,
                 chains=4, seed=11)
    ess = az.ess(fit.idata, var_names=["b_Intercept", "b_Days", "sd_Subject__Days", "sigma"])
    assert min(float(ess[v]) for v in ess.data_vars) >= 2000
    return fit


def _check(row, ref):
    sd = ref["Est.Error"]
    assert row["Estimate"] == pytest.approx(ref["Estimate"], abs=0.1 * sd)
    assert row["Est.Error"] == pytest.approx(sd, rel=0.1)
    for col in ("CI.Lower", "CI.Upper"):
        assert row[col] == pytest.approx(ref[col], abs=0.25 * sd)
    if ref["Post.Prob"] == "NA":
        assert np.isnan(row["Post.Prob"]) and np.isnan(row["Evid.Ratio"])
    else:
        assert row["Post.Prob"] == pytest.approx(ref["Post.Prob"], abs=0.04)
    assert row["Hypothesis"] == ref["Hypothesis"]


def test_hypothesis_matches_brms(bfit):
    h = bfit.hypothesis(["Days > 10.5", "Intercept - 25 * Days = 0", "Days < 11"])
    for (_, row), ref in zip(h.iterrows(), REF["hyp_b"]):
        _check(row, ref)
    sd = bfit.hypothesis("Days < 10", class_="sd", group="Subject").iloc[0]
    _check(sd, REF["hyp_sd"][0])
    assert sd["Star"] == REF["hyp_sd"][0]["Star"] == "*"


@pytest.mark.parametrize("kind, re_formula", [("conditional", None), ("marginal", "NA")])
def test_bayes_r2_matches_brms(bfit, kind, re_formula):
    ref = REF["bayes_r2"][kind]
    got = bfit.bayes_r2(re_formula=re_formula, method="residual").iloc[0]
    sd = ref["Est.Error"]
    assert got["Estimate"] == pytest.approx(ref["Estimate"], abs=0.1 * sd)
    assert got["Est.Error"] == pytest.approx(sd, rel=0.1)
    for col in ("Q2.5", "Q97.5"):
        assert got[col] == pytest.approx(ref[col], abs=0.25 * sd)
