"""mf.lmer against lme4 1.1-31 where lme4 refuses, warns, or needs a careful optimiser (issue 17,
items 2, 8 and 9). Reference numbers: tests/data/lme4_checks.json, made by
tests/data/r/lme4_checks.R from the data files next to it (tests/data/orthodont.csv is nlme's
Orthodont; sleepstudy is the package's copy of lme4's).
"""

import inspect
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.errors import DataError
from mixedformula.reml import LmerFit

DATA = Path(__file__).parent / "data"
DOCS = Path(__file__).parent.parent / "docs"


@pytest.fixture(scope="module")
def ref():
    return json.loads((DATA / "lme4_checks.json").read_text())


@pytest.fixture(scope="module")
def edge():
    return pd.read_csv(DATA / "lme4_checks_data.csv")


# ------------------------------------------------------------------ item 2: refuse / warn like lme4
# what our message must say (plain words) besides lme4's own phrase, per case
REFUSAL_WORDS = {
    "one_level": ["'one'", "only one level", "at least 2 groups"],
    "level_per_row": ["'id'", "20 levels for 20 observations", "residual variance"],
    "more_effects": ["(1 + x1 + x2 + x3 | g)", "40 group effects", "10 levels × 4 coefficients",
                     "20 observations"],
    "as_many_effects": ["(1 + x1 | g)", "20 group effects", "20 observations"],
}


@pytest.mark.parametrize("case", sorted(REFUSAL_WORDS))
def test_lmer_refuses_what_lme4_refuses(case, ref, edge):
    r = ref["refusals"][case]
    with pytest.raises(DataError) as err:
        mf.lmer(r["formula"], edge)
    msg = str(err.value)
    for words in REFUSAL_WORDS[case]:
        assert words in msg, (words, msg)
    # lme4's own wording is quoted (up to where it names the factor or term)
    assert re.split(r" \(problems| for term", r["error"])[0] in msg, (r["error"], msg)


def test_lmer_accepts_what_lme4_accepts(ref, edge):
    """Fewer effects than observations (10 < 20): fitted, and to lme4's criterion."""
    r = ref["accepted"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = mf.lmer(r["formula"], edge)
    assert abs(fit.reml_criterion - r["REMLcrit"]) < 1e-6
    assert abs(fit.sigma - r["sigma"]) < 1e-6 * r["sigma"]


def test_lmer_warns_on_constant_response_like_lme4(ref, edge):
    """lme4 fits it with two warnings, σ = 0, REML criterion −Inf, isSingular FALSE, and its
    vcov() fails ("not a positive definite matrix"): we warn in plain words, report σ = 0, the
    criterion −∞ and NaN standard errors (no t = 1e17)."""
    r = ref["constant_response"]
    assert r["warnings"] and r["vcov_error"] and r["REMLcrit"] == "-Inf" and r["sigma"] == 0
    with pytest.warns(UserWarning, match=r"response 'yc' is constant \(all 20 values are 3\)"):
        fit = mf.lmer(r["formula"], edge)
    assert fit.sigma == r["sigma"]
    assert fit.reml_criterion == -math.inf
    assert fit.is_singular == r["isSingular"]
    fe = fit.fixef()
    for name, v in r["fixef"].items():
        assert abs(fe.loc[name, "Estimate"] - v) < 1e-9
    assert fe["Std. Error"].isna().all() and fe["t value"].isna().all()
    assert (fit.varcorr()["vcov"] == 0).all()
    text = str(fit)
    assert "no residual variation" in text


def _model_warnings(formula, data, **kw):
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        mf.Model(formula, data, **kw)
    return [str(w.message) for w in rec if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("case", sorted(REFUSAL_WORDS))
def test_bayesian_model_warns_before_sampling(case, ref, edge):
    """mf.fit builds its Model first: the same check speaks there (as a warning — the priors
    keep the posterior proper), before any PyMC model is built or sampled."""
    msgs = _model_warnings(ref["refusals"][case]["formula"], edge)
    hits = [m for m in msgs if all(w in m for w in REFUSAL_WORDS[case])]
    assert hits and "lme4 would refuse" in hits[0] and "priors" in hits[0], msgs


def test_bayesian_model_warning_scope(ref, edge):
    """Constant Gaussian response warns; a well-posed model does not; observation-level
    effects in a Poisson model (no residual variance, lme4's glmer allows them) do not."""
    msgs = _model_warnings(ref["constant_response"]["formula"], edge)
    assert any("is constant" in m and "sigma" in m for m in msgs), msgs
    assert _model_warnings("y ~ x + (1 | g)", edge) == []
    counts = edge.assign(k=np.arange(len(edge)) % 4)
    assert _model_warnings("k ~ x + (1 | id)", counts, family="poisson") == []


# --------------------------------------------------------------------------- item 8: the docs
def _lmer_doc_members():
    text = (DOCS / "api.md").read_text()
    start = text.index("### `mf.lmer(")
    end = text.index("\n### ", start + 1)
    return text[start:end], re.findall(r"`\.([A-Za-z_]\w*)(\(\))?`", text[start:end])


def test_api_doc_lmerfit_members_exist_and_are_called_right():
    """Every ``.member`` of the LmerFit section exists; methods are written ``.m()``,
    attributes and properties (logLik, deviance: floats, as lme4 users would call) ``.m``."""
    section, members = _lmer_doc_members()
    assert members, section
    for name, call in members:
        assert hasattr(LmerFit, name) or name in LmerFit.__dataclass_fields__, name
        attr = inspect.getattr_static(LmerFit, name, None)
        is_method = inspect.isfunction(attr)
        assert bool(call) == is_method, (name, "documented as method" if call else "attribute")
    documented = {n for n, _ in members}
    for name in ("logLik", "deviance", "fixef", "ranef", "varcorr", "vcov", "theta", "sigma",
                 "is_singular", "AIC", "BIC", "summary", "reml_criterion"):
        assert name in documented, name


# ------------------------------------------------------- item 9: 3 × 3 correlated REML optima
QUAD = {"sleepstudy_quad": lambda: mf.datasets.load("sleepstudy"),
        "orthodont_quad": lambda: pd.read_csv(DATA / "orthodont.csv")}


def _r_name(name):
    return None if name is None else name.replace(" ** ", "^")


@pytest.fixture(scope="module")
def quad_fits(ref):
    return {k: mf.lmer(ref["quad"][k]["formula"], load()) for k, load in QUAD.items()}


@pytest.mark.parametrize("case", sorted(QUAD))
def test_correlated_3x3_reml_reaches_lme4_optimum(case, ref, quad_fits):
    """lme4's best REML optimum (21-start refinement of lme4's own deviance function; lme4's
    default nloptwrap stops at −864.638 with a convergence warning on sleepstudy, and at
    −223.668 on Orthodont where Nelder_Mead reaches −223.230): logLik within 1e-3, the same
    isSingular verdict (sleepstudy interior, Orthodont on the boundary: I(age^2) is a linear
    combination of the other two effects), and θ, sd/cor, σ, β within tolerances set by how well
    the optimum is defined: lme4's own runs that end within 1e-6 of its best criterion disagree
    on θ and sd/cor by the recorded spread (up to 1.2e-3 on sd(Intercept) for Orthodont, whose
    criterion is flat along a ridge); we allow 10× that spread plus 1e-4 relative (the
    tolerance of the other lme4 tests in test_reml.py)."""
    r, fit = ref["quad"][case], quad_fits[case]
    best, spread = r["best"], r["multistart"]
    assert spread["n_within_1e6"] >= 10
    assert abs(fit.logLik - best["logLik"]) <= 1e-3, (fit.logLik, best["logLik"])
    assert fit.is_singular == best["isSingular"]
    if not best["isSingular"]:
        assert "boundary (singular) fit" not in str(fit)
    # names: formulaic writes I(Days ** 2) where R deparses I(Days^2) (not this test's subject)
    theta = fit.theta.rename(index=_r_name)
    assert list(theta.index) == list(best["theta"])
    for name, v in best["theta"].items():
        tol = 10 * spread["theta_spread"][name] + 1e-4 * max(abs(v), 1e-2)
        assert abs(theta[name] - v) <= tol, (name, theta[name], v, tol)
    vc = fit.varcorr()
    assert len(vc) == len(best["varcorr"])
    for (_, row), rv, s in zip(vc.iterrows(), best["varcorr"], spread["sdcor_spread"]):
        assert (row["grp"], _r_name(row["var1"]), _r_name(row["var2"])) == \
            (rv["grp"], rv["var1"], rv["var2"])
        tol = 10 * s + 1e-4 * abs(rv["sdcor"])
        assert abs(row["sdcor"] - rv["sdcor"]) <= tol, (row.to_dict(), rv, tol)
    fe = fit.fixef().rename(index=_r_name)
    for name, v in best["fixef"].items():
        assert abs(fe.loc[name, "Estimate"] - v) <= 1e-4 * max(abs(v), 1.0), name
    for name, v in best["fixef_se"].items():
        assert abs(fe.loc[name, "Std. Error"] - v) <= 1e-3 * v, name


def test_boundary_result_is_checked_by_restarts_and_second_optimiser(quad_fits):
    """Orthodont's first stop is on the boundary (lme4: isSingular): it is checked by an
    interior restart, and the reported criterion is the lowest of all runs; sleepstudy's first
    search ends in the interior (lme4's optimum, no check needed). The false-boundary case
    itself is the synthetic test below (these two models' first searches no longer stop at a
    false boundary)."""
    checks = quad_fits["orthodont_quad"].optimizer["checks"]
    names = [c[0] for c in checks]
    assert names[0] == "L-BFGS-B" and "L-BFGS-B from an interior start" in names
    assert quad_fits["orthodont_quad"].reml_criterion <= min(c[1] for c in checks) + 1e-9
    assert [c[0] for c in quad_fits["sleepstudy_quad"].optimizer["checks"]] == ["L-BFGS-B"]


def _false_boundary(x):
    """f = u + v − 3uv + u² + v² + (u + v)³/100 with u = x₀², v = x₁² on x ≥ 0: θ²-symmetric
    like the profiled deviance at a zero diagonal, so x = 0 is a stationary point where
    L-BFGS-B stops; moving either entry alone raises f (the one-entry probes fail), moving both
    lowers it (f(t, t) = 2t − t² + 0.08t³ has its interior minimum at t ≈ 7.17)."""
    u, v = x[0] ** 2, x[1] ** 2
    return u + v - 3 * u * v + u * u + v * v + (u + v) ** 3 / 100


def _false_boundary_min():
    # the interior minimum by hand: f(t, t) = 2t − t² + 0.08t³, f' = 2 − 2t + 0.24t² = 0
    t = max(np.roots([0.24, -2.0, 2.0]).real)
    return 2 * t - t * t + 0.08 * t ** 3, math.sqrt(t)


@pytest.mark.parametrize("method", ["L-BFGS-B", "BOBYQA"])
def test_false_boundary_stop_is_found_by_an_interior_restart(method):
    """The first search stops at the false boundary x = 0 (f = 0); the restart from the
    interior start finds the interior minimum (computed by hand), a second restart confirms
    it, and the checks stop there (no further restart, no Nelder–Mead)."""
    from mixedformula.reml import optimize_bounded
    fmin, xmin = _false_boundary_min()
    starts = [np.array([2.0, 2.0]), np.array([3.0, 3.0]), np.array([1.5, 2.5])]
    out = optimize_bounded(_false_boundary, np.zeros(2), np.zeros(2), method=method,
                           interior_starts=lambda x: starts)
    names = [c[0] for c in out["checks"]]
    if method == "L-BFGS-B":
        assert out["checks"][0][1] == 0.0                    # the first stop: the false one
    assert out["checks"][0][1] > fmin + 1.0 or method == "BOBYQA"
    assert names[1:] == [f"{method} from an interior start"] * 2
    assert out["fun"] == pytest.approx(fmin, abs=1e-8)
    np.testing.assert_allclose(out["x"], [xmin, xmin], rtol=1e-5)


def test_unconfirmed_boundary_stop_gets_every_restart_and_nelder_mead():
    """When no second run confirms the best deviance, every restart runs and, after L-BFGS-B,
    Nelder–Mead as well; the lowest deviance wins. Here the first restart (2, 2) beats the
    false stop, and the others slide back to x = 0 (from (1, 1): ∂f/∂u = 0.12 > 0), so
    nothing confirms the minimum."""
    from mixedformula.reml import optimize_bounded
    fmin, _ = _false_boundary_min()
    starts = [np.array([2.0, 2.0]), np.array([1.0, 1.0]), np.array([0.5, 0.5])]
    out = optimize_bounded(_false_boundary, np.zeros(2), np.zeros(2), method="L-BFGS-B",
                           interior_starts=lambda x: starts)
    names = [c[0] for c in out["checks"]]
    assert names == ["L-BFGS-B"] + ["L-BFGS-B from an interior start"] * 3 + \
        ["Nelder-Mead, polished by L-BFGS-B"]
    assert [c[1] for c in out["checks"][2:4]] == [0.0, 0.0]
    assert out["fun"] == pytest.approx(fmin, abs=1e-8)


def test_genuinely_singular_fit_is_still_reported_singular(ref):
    """Every group's least-squares slope is exactly 0.5 (see the R script): lme4 finds the slope
    variance 0 (isSingular TRUE), and so do we, at lme4's criterion, after the checks."""
    r = ref["singular_slope"]
    assert r["isSingular"] is True
    fit = mf.lmer(r["formula"], pd.read_csv(DATA / "lme4_singular_slope.csv"))
    assert fit.is_singular
    assert "boundary (singular) fit" in str(fit)
    assert abs(fit.logLik - r["logLik"]) <= 1e-6
    assert abs(fit.sigma - r["sigma"]) <= 1e-5 * r["sigma"]
    sd = fit.varcorr()["sdcor"].to_numpy()
    assert abs(sd[0] - r["varcorr"][0]["sdcor"]) <= 1e-4 * r["varcorr"][0]["sdcor"]
    assert sd[1] < 1e-5                                      # sd(x): 0 (lme4: 8.6e-8)
