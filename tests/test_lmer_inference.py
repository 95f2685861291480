"""Inference for lmer fits (issue 20) against lmerTest 3.1-3 / pbkrtest 0.5.2 / lme4 1.1-31.

References: tests/data/lmer_inference.json, made by tests/data/r/lmer_inference.R (sleepstudy
and lmerTest's ham data, exported to tests/data/ham.csv)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

DATA = Path(__file__).parent / "data"
REF = json.loads((DATA / "lmer_inference.json").read_text())
RTOL = 1e-3


def _list(v):
    return v if isinstance(v, list) else [v]      # jsonlite unboxes one-row tables


def ref_table(entry) -> pd.DataFrame:
    cols = {k: [np.nan if v == "NA" else v for v in _list(vals)]
            for k, vals in entry["columns"].items()}
    return pd.DataFrame(cols, index=pd.Index(_list(entry["rows"]), dtype=object)).astype(float)


def assert_table(ours: pd.DataFrame, ref: pd.DataFrame, rtol=RTOL, atol=0.0):
    """Columns within rtol. p-values below 1e-12 (|t| ≈ 37) get 10 rtol: there
    d log p / d t ≈ t, so the ~2e-5 relative difference between our optimum and lme4's on a
    flat deviance (equal to 1e-11) moves p by ~2e-3."""
    assert list(ours.index) == list(ref.index)
    for c in ref.columns:
        a, b = ours[c].to_numpy(dtype=float), ref[c].to_numpy()
        tol = np.where(c.startswith("Pr(") & (b < 1e-12), 10 * rtol, rtol)
        assert np.array_equal(np.isnan(a), np.isnan(b)), (c, a, b)
        ok = np.isnan(b) | (np.abs(a - b) <= atol + tol * np.abs(b))
        assert np.all(ok), (c, a, b)


@pytest.fixture(scope="module")
def sleep():
    return pd.read_csv(Path(mf.__file__).parent / "datasets" / "sleepstudy.csv")


@pytest.fixture(scope="module")
def fm1(sleep):
    return mf.lmer("Reaction ~ Days + (Days | Subject)", sleep)


@pytest.fixture(scope="module")
def ham():
    d = pd.read_csv(DATA / "ham.csv")
    for c in ["Consumer", "Product", "Information", "Gender"]:
        d[c] = d[c].astype(str)
    return d


@pytest.fixture(scope="module")
def ham_fit(ham):
    return mf.lmer(REF["ham"]["formula"], ham)


@pytest.mark.parametrize("ddf,key", [("satterthwaite", "satterthwaite"),
                                     ("kenward-roger", "kenward_roger"),
                                     ("none", "none")])
def test_sleepstudy_coef_table(fm1, ddf, key):
    assert_table(fm1.coef_table(ddf), ref_table(REF["sleep"][key]))


@pytest.mark.parametrize("ddf,key", [("satterthwaite", "satterthwaite"),
                                     ("kenward-roger", "kenward_roger")])
def test_ham_coef_table(ham_fit, ddf, key):
    assert_table(ham_fit.coef_table(ddf), ref_table(REF["ham"][key]))


def test_ml_fit_satterthwaite(sleep):
    fit = mf.lmer("Reaction ~ Days + (Days | Subject)", sleep, reml=False)
    assert_table(fit.coef_table(), ref_table(REF["sleep_ml"]["satterthwaite"]))
    with pytest.raises(ValueError, match="only available for REML"):
        fit.coef_table("kenward-roger")


def test_summary_shows_lmertest_table(fm1):
    text = fm1.summary(ddf="satterthwaite")
    assert "t-tests use Satterthwaite's method" in text
    assert "Pr(>|t|)" in text and "Signif. codes" in text
    assert "Kenward-Roger's" in fm1.summary(ddf="kenward-roger")
    with pytest.raises(ValueError, match="ddf must be"):
        fm1.coef_table("bogus")


ANOVA = [("anova3_satt", 3, "satterthwaite"), ("anova3_kr", 3, "kenward-roger"),
         ("anova1_satt", 1, "satterthwaite"), ("anova1_kr", 1, "kenward-roger")]


@pytest.mark.parametrize("key,type_,ddf", ANOVA)
def test_ham_anova(ham_fit, key, type_, ddf):
    """lmerTest's anova example: three-way interaction, two random terms."""
    tab = mf.anova(ham_fit, type=type_, ddf=ddf)
    assert_table(tab, ref_table(REF["ham"][key]))
    assert tab.attrs["heading"].startswith(f"Type {'III' if type_ == 3 else 'I'} Analysis")


@pytest.mark.parametrize("key,type_,ddf", [a for a in ANOVA if a[0] in REF["ham_age"]])
def test_anova_with_covariate(ham, key, type_, ddf):
    """A factor × numeric interaction: type III contrasts with a covariate."""
    fit = mf.lmer(REF["ham_age"]["formula"], ham)
    assert_table(mf.anova(fit, type=type_, ddf=ddf), ref_table(REF["ham_age"][key]))


@pytest.mark.parametrize("key,ddf", [("anova3_satt", "satterthwaite"),
                                     ("anova3_kr", "kenward-roger")])
def test_sleepstudy_anova(fm1, key, ddf):
    assert_table(mf.anova(fm1, ddf=ddf), ref_table(REF["sleep"][key]))


def test_lrt_refits_with_ml(sleep):
    fits = [mf.lmer(f, sleep) for f in REF["lrt"]["formulas"]]
    with pytest.warns(UserWarning, match=r"refitting model\(s\) with ML \(instead of REML\)"):
        tab = mf.anova(fits[2], fits[0], fits[1], names=["fmq", "fm0", "fm1l"])
    ref = ref_table(REF["lrt"]["table"])
    assert list(tab.columns) == list(ref.columns)
    assert_table(tab, ref, rtol=1e-6)
    assert fits[0].reml            # the fits passed in are left as they were
    with pytest.raises(ValueError, match="same size of dataset"):
        mf.anova(fits[0], mf.lmer(REF["lrt"]["formulas"][0], sleep.iloc[:-10]))


@pytest.fixture(scope="module")
def profile_ci(fm1):
    return fm1.confint("profile")


def test_confint_profile(profile_ci):
    """lme4's confint(method = "profile"). lme4 profiles the ML deviance (devfun2 refits a
    REML fit by ML), so this also covers ML fits (same numbers as the ML fit's profile)."""
    ref = ref_table(REF["sleep"]["confint_profile"])
    assert list(profile_ci.columns) == ["2.5 %", "97.5 %"]
    assert_table(profile_ci, ref)


def test_confint_wald(fm1):
    ci = fm1.confint("wald")
    ref = ref_table(REF["sleep"]["confint_wald"])
    assert ci.iloc[:4].isna().all().all()            # lme4: NA for the variance parameters
    assert_table(ci, ref)
    assert list(fm1.confint("wald", level=0.9).columns) == ["5 %", "95 %"]
    with pytest.raises(ValueError, match="method must be"):
        fm1.confint("bogus")


@pytest.fixture(scope="module")
def boot(fm1):
    return fm1.bootstrap(50, seed=20, workers=2)


def test_bootstrap_replicates_are_lmer_refits(fm1, sleep, boot):
    """Each replicate equals mf.lmer on its simulated response (the draws do not depend on
    nsim or on the number of workers)."""
    from mixedformula.inference.bootstrap import simulate_responses
    Y = simulate_responses(fm1, 2, seed=20)
    for i in range(2):
        d = sleep.copy()
        d["Reaction"] = Y[i]
        ref = mf.lmer("Reaction ~ Days + (Days | Subject)", d)
        row = boot.iloc[i]
        assert abs(row["objective"] - ref.objective) < 1e-6
        np.testing.assert_allclose(row[list(ref.fixef_names)].to_numpy(float), ref.beta,
                                   rtol=1e-7)
        np.testing.assert_allclose(row[".sigma"], ref.sigma, rtol=1e-5)
    again = fm1.bootstrap(3, seed=20, workers=1)
    pd.testing.assert_frame_equal(again, boot.iloc[:3], check_exact=False, rtol=1e-6)


def test_bootstrap_mean_matches_fit(fm1, boot):
    """Under the fitted model E[β̂*] = β̂ (β̂ is unbiased given θ): the replicate mean is within
    4 standard errors of the mean (t₄₉: two-sided 2e-4 per coefficient, < 1e-3 family-wise)."""
    assert list(boot.columns[:3]) == ["objective", "(Intercept)", "Days"]
    assert len(boot) == 50
    for j, name in enumerate(fm1.fixef_names):
        x = boot[name].to_numpy()
        assert abs(x.mean() - fm1.beta[j]) < 4 * x.std(ddof=1) / np.sqrt(len(x))


def test_confint_boot(fm1):
    ci = fm1.confint("boot", nsim=20, seed=3)
    assert list(ci.index) == [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"]
    assert np.all(ci["2.5 %"] < ci["97.5 %"])


def test_cli_ddf(tmp_path, sleep, capsys):
    from mixedformula.cli import main
    csv = tmp_path / "sleep.csv"
    sleep.to_csv(csv, index=False)
    formula = "Reaction ~ Days + (Days | Subject)"
    assert main(["fit", str(csv), formula, "--reml", "--ddf", "satterthwaite"]) == 0
    out = capsys.readouterr().out
    assert "t-tests use Satterthwaite's method" in out and "Pr(>|t|)" in out
    assert "17.00" in out                                     # lmerTest: df 16.9997
    assert main(["fit", str(csv), formula, "--ml", "--ddf", "kenward-roger"]) != 0
    assert "only available for REML" in capsys.readouterr().err


@pytest.fixture(scope="module")
def uncorr(sleep):
    return mf.lmer(REF["sleep_uncorr"]["formula"], sleep)


@pytest.mark.parametrize("ddf,key", [("satterthwaite", "satterthwaite"),
                                     ("kenward-roger", "kenward_roger")])
def test_uncorrelated_terms_coef_table(uncorr, ddf, key):
    """(Days || Subject): lme4 splits it into two terms (two variance parameters for KR)."""
    assert_table(uncorr.coef_table(ddf), ref_table(REF["sleep_uncorr"][key]))


def test_uncorrelated_terms_profile(uncorr):
    assert_table(uncorr.confint(), ref_table(REF["sleep_uncorr"]["confint_profile"]))


@pytest.mark.parametrize("key", ["satterthwaite", "kenward_roger", "anova3_satt"])
def test_singular_fit(key):
    """Slope variance at 0 (boundary): the finite differences cross θ = 0 as numDeriv's do."""
    fit = mf.lmer(REF["singular"]["formula"], pd.read_csv(DATA / "lme4_singular_slope.csv"))
    assert fit.is_singular
    ours = mf.anova(fit) if key.startswith("anova") else \
        fit.coef_table(key.replace("_", "-"))
    assert_table(ours, ref_table(REF["singular"][key]))


def test_profile_of_singular_fit_ends_at_bounds():
    """Slope sd estimated as 0 (lme4 1.1-31's confint fails here: 'need at least two non-NA
    values to interpolate'): the sd's lower limit is its bound 0, the correlation (undetermined
    when one sd is 0) spans [-1, 1], and both are said in a warning."""
    fit = mf.lmer(REF["singular"]["formula"], pd.read_csv(DATA / "lme4_singular_slope.csv"))
    with pytest.warns(RuntimeWarning, match=r"does not reach the 95% cutoff.*\.sig02.*\.sig03"):
        ci = fit.confint()
    assert ci.loc[".sig03", "2.5 %"] == 0.0 and ci.loc[".sig03", "97.5 %"] > 0
    assert list(ci.loc[".sig02"]) == [-1.0, 1.0]
    est = pd.Series(fit.beta, index=fit.fixef_names)
    assert np.all(ci.loc[fit.fixef_names, "2.5 %"] < est)
    assert np.all(ci.loc[fit.fixef_names, "97.5 %"] > est)
    assert ci.notna().all().all()


# ---- type II F-tables (lmerTest's anova(m, type = 2); tests/data/r/freq_reference.R) ----------
REF2 = json.loads((DATA / "freq_reference.json").read_text())["anova2"]
ANOVA2 = [("ham_satt", REF["ham"]["formula"], "satterthwaite"),
          ("ham_kr", REF["ham"]["formula"], "kenward-roger"),
          ("ham_age_satt", REF["ham_age"]["formula"], "satterthwaite"),
          ("ham_age_kr", REF["ham_age"]["formula"], "kenward-roger")]


@pytest.mark.parametrize("key,formula,ddf", ANOVA2)
def test_ham_anova_type2(ham, ham_fit, key, formula, ddf):
    fit = ham_fit if formula == REF["ham"]["formula"] else mf.lmer(formula, ham)
    tab = mf.anova(fit, type=2, ddf=ddf)
    assert_table(tab, ref_table(REF2[key]))
    assert tab.attrs["heading"].startswith("Type II Analysis")


@pytest.mark.parametrize("key,formula,ddf", [
    ("sleep_satt", "Reaction ~ Days + (Days | Subject)", "satterthwaite"),
    ("sleep_long_satt", "Reaction ~ Days * long + (Days | Subject)", "satterthwaite"),
    ("sleep_long_kr", "Reaction ~ Days * long + (Days | Subject)", "kenward-roger")])
def test_sleepstudy_anova_type2(sleep, key, formula, ddf):
    d = sleep.assign(long=sleep["Days"] > 4)
    fit = mf.lmer(formula, d)
    assert_table(mf.anova(fit, type="II", ddf=ddf), ref_table(REF2[key]))
