"""Fit / Summary / fixef / ranef / coef / varcorr against numpy computations on known draws,
and the printed layout against brms' summary() (reference text copied from
../shared/reference/brms_sleepstudy_summary.txt)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pandas as pd
import pytest
from _results_helpers import by_fit, flat, mv_fit, sleepstudy_fit

from mixedformula.results.tables import format_table

COLS = ["Estimate", "Est.Error", "l-95% CI", "u-95% CI", "Rhat", "Bulk_ESS", "Tail_ESS"]

# brms 2.18 summary() of Reaction ~ Days + (Days | Subject): the tables, verbatim.
BRMS_RANDOM = """\
                    Estimate Est.Error l-95% CI u-95% CI Rhat Bulk_ESS Tail_ESS
sd(Intercept)          27.25      6.92    15.81    43.36 1.00     1801     2472
sd(Days)                6.57      1.46     4.20     9.85 1.00     1547     2191
cor(Intercept,Days)     0.08      0.30    -0.48     0.66 1.00      991     1486"""
BRMS_FIXED = """\
          Estimate Est.Error l-95% CI u-95% CI Rhat Bulk_ESS Tail_ESS
Intercept   251.22      7.34   236.88   265.93 1.00     1842     2506
Days         10.45      1.67     7.16    13.78 1.00     1370     2234"""
BRMS_SPEC = """\
      Estimate Est.Error l-95% CI u-95% CI Rhat Bulk_ESS Tail_ESS
sigma    25.83      1.58    22.94    29.16 1.00     3316     2717"""
BRMS_CLOSING = """\
For each parameter, Bulk_ESS
and Tail_ESS are effective sample size measures, and Rhat is the potential
scale reduction factor on split chains (at convergence, Rhat = 1)."""


def _parse(text: str) -> pd.DataFrame:
    lines = text.splitlines()
    rows = {}
    for line in lines[1:]:
        parts = line.split()
        rows[parts[0]] = [float(x) for x in parts[1:]]
    return pd.DataFrame.from_dict(rows, orient="index", columns=COLS)


@pytest.fixture(scope="module")
def fit():
    return sleepstudy_fit(n_divergent=5)


@pytest.mark.parametrize("text", [BRMS_RANDOM, BRMS_FIXED, BRMS_SPEC])
def test_table_printing_matches_brms_verbatim(text):
    # Values slightly off the printed ones must round to them (%.2f, ESS %.0f).
    df = _parse(text)
    df.iloc[:, :5] += 0.001
    df.iloc[:, 5:] += 0.3
    assert format_table(df) == text.splitlines()


def test_negative_zero_and_missing_print_like_r():
    df = pd.DataFrame([[-0.001, 0.5, -0.2, 0.2, np.nan, 10.0, 12.0]], columns=COLS,
                      index=["cor(a,b)"])
    assert format_table(df)[1] == ("cor(a,b)    -0.00      0.50    -0.20     0.20   NA"
                                   "       10       12")


def test_summary_numbers_equal_numpy(fit):
    s = fit.summary()
    post = fit.idata.posterior
    for table, rows in ((s.fixed, {"Intercept": "b_Intercept", "Days": "b_Days"}),
                        (s.random["Subject"], {"sd(Intercept)": "sd_Subject__Intercept",
                                               "sd(Days)": "sd_Subject__Days",
                                               "cor(Intercept,Days)":
                                                   "cor_Subject__Intercept__Days"}),
                        (s.spec_pars, {"sigma": "sigma"})):
        assert list(table.index) == list(rows)
        assert list(table.columns) == COLS
        for label, var in rows.items():
            x = flat(post[var].values)
            row = table.loc[label]
            assert row["Estimate"] == pytest.approx(x.mean(), rel=1e-12)
            assert row["Est.Error"] == pytest.approx(x.std(ddof=1), rel=1e-12)
            assert row["l-95% CI"] == pytest.approx(np.quantile(x, 0.025), rel=1e-12)
            assert row["u-95% CI"] == pytest.approx(np.quantile(x, 0.975), rel=1e-12)
            assert row["Rhat"] == pytest.approx(float(az.rhat(post[var].values)), rel=1e-12)
            assert row["Bulk_ESS"] == pytest.approx(
                float(az.ess(post[var].values, method="bulk")), rel=1e-12)
            assert row["Tail_ESS"] == pytest.approx(
                float(az.ess(post[var].values, method="tail")), rel=1e-12)
    assert s.rescor.empty
    assert s.ngrps == {"Subject": 18}


def test_summary_layout_line_by_line(fit):
    s = fit.summary()
    lines = str(s).splitlines()
    assert lines[:8] == [
        " Family: gaussian ",
        "  Links: mu = identity ",
        "Formula: Reaction ~ Days + (Days | Subject) ",
        "   Data: data (Number of observations: 180) ",
        "  Draws: 4 chains, each with iter = 1500; warmup = 1000; thin = 1;",
        "         total post-warmup draws = 2000",
        "Likelihood: marginal (group effects integrated out, recovered exactly)",
        "",
    ]
    assert lines[8] == "Multilevel Hyperparameters:"
    assert lines[9] == "~Subject (Number of levels: 18) "
    assert lines[10:14] == format_table(s.random["Subject"])
    assert lines[10] == BRMS_RANDOM.splitlines()[0]          # same column header as brms
    assert [ln.split()[0] for ln in lines[11:14]] == ["sd(Intercept)", "sd(Days)",
                                                      "cor(Intercept,Days)"]
    assert lines[14] == ""
    assert lines[15] == "Regression Coefficients:"
    assert lines[16] == BRMS_FIXED.splitlines()[0]
    assert lines[16:19] == format_table(s.fixed)
    assert [ln.split()[0] for ln in lines[17:19]] == ["Intercept", "Days"]
    assert lines[19:21] == ["", "Further Distributional Parameters:"]
    assert lines[21] == BRMS_SPEC.splitlines()[0]
    assert lines[22].split()[0] == "sigma"
    assert lines[23] == ""
    closing = "\n".join(lines[24:27])
    assert closing == "Draws were sampled using nutpie(NUTS). " + BRMS_CLOSING
    # each printed number is the table's value in brms' rounding
    row = s.fixed.loc["Days"]
    assert lines[18].split()[1:] == [f"{row['Estimate']:.2f}", f"{row['Est.Error']:.2f}",
                                     f"{row['l-95% CI']:.2f}", f"{row['u-95% CI']:.2f}",
                                     f"{row['Rhat']:.2f}", f"{row['Bulk_ESS']:.0f}",
                                     f"{row['Tail_ESS']:.0f}"]
    assert "Residual Correlations" not in str(s)


def test_divergence_warning(fit):
    text = str(fit.summary())
    assert "There were 5 divergent transitions after warmup." in text
    assert text.index("There were 5") > text.index("Rhat = 1).")
    assert fit.summary().n_divergent == 5
    clean = sleepstudy_fit(n_divergent=0)
    assert clean.summary().warnings == []
    assert "Warning" not in str(clean.summary())


def test_rhat_and_ess_warnings():
    fit = sleepstudy_fit()
    post = fit.idata.posterior
    stuck = post["b_Days"].values.copy()
    stuck[0] += 50.0                       # one chain elsewhere: Rhat >> 1.05, ESS tiny
    post["b_Days"].values[:] = stuck
    warns = fit.summary().warnings
    assert fit.summary().fixed.loc["Days", "Rhat"] > 1.05
    assert any(w.startswith("Parts of the model have not converged (some Rhats are > 1.05).")
               for w in warns)
    assert any(w.startswith("Bulk Effective Samples Size (ESS) is too low") for w in warns)


def test_summary_prob_and_dataframes(fit):
    s = fit.summary(prob=0.9)
    assert list(s.fixed.columns[2:4]) == ["l-90% CI", "u-90% CI"]
    x = flat(fit.idata.posterior["b_Intercept"].values)
    assert s.fixed.loc["Intercept", "l-90% CI"] == pytest.approx(np.quantile(x, 0.05))
    allrows = fit.summary().to_frame()
    assert list(allrows["block"]) == ["~Subject"] * 3 + ["fixed"] * 2 + ["spec_pars"]


def test_html_and_repr(fit):
    html = fit._repr_html_()
    assert html == fit.summary()._repr_html_()
    for piece in ("Multilevel Hyperparameters", "~Subject (Number of levels: 18)",
                  "Regression Coefficients", "sd(Intercept)", "cor(Intercept,Days)",
                  "Bulk_ESS", "There were 5 divergent transitions"):
        assert piece in html
    assert repr(fit) == str(fit.summary())


def test_fixef_equals_numpy(fit):
    fe = fit.fixef()
    assert list(fe.columns) == ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
    assert list(fe.index) == ["Intercept", "Days"]
    x = flat(fit.idata.posterior["b_Days"].values)
    np.testing.assert_allclose(fe.loc["Days"].to_numpy(),
                               [x.mean(), x.std(ddof=1), *np.quantile(x, [0.025, 0.975])])
    fe90 = fit.fixef(probs=(0.05, 0.95))
    assert list(fe90.columns) == ["Estimate", "Est.Error", "Q5", "Q95"]
    draws = fit.fixef(summary=False)
    assert draws.shape == (2000, 2)
    np.testing.assert_array_equal(draws["Days"].to_numpy(), x)


def test_ranef_shape_and_labels(fit):
    re = fit.ranef()
    assert list(re) == ["Subject"]
    df = re["Subject"]
    levels = fit.design.terms[0].levels
    assert df.shape == (18, 8)
    assert list(df.index) == levels and df.index.name == "Subject"
    assert list(df.columns.names) == ["coef", "stat"]
    assert list(df["Days"].columns) == ["Estimate", "Est.Error", "Q2.5", "Q97.5"]
    r = flat(fit.idata.posterior["r_Subject"].values)          # (S, J, 2)
    j = levels.index("309")
    np.testing.assert_allclose(df.loc["309", ("Days", "Estimate")], r[:, j, 1].mean())
    np.testing.assert_allclose(df.loc["309", ("Intercept", "Q97.5")],
                               np.quantile(r[:, j, 0], 0.975))
    draws = fit.ranef(summary=False)["Subject"]
    assert draws.dims == ("sample", "Subject", "coef") and draws.shape == (2000, 18, 2)


def test_coef_is_b_plus_r_per_draw(fit):
    post = fit.idata.posterior
    b = flat(post["b_Days"].values)
    r = flat(post["r_Subject"].values)[:, :, 1]
    total = b[:, None] + r
    co = fit.coef()["Subject"]
    np.testing.assert_allclose(co[("Days", "Estimate")].to_numpy(), total.mean(axis=0))
    np.testing.assert_allclose(co[("Days", "Est.Error")].to_numpy(), total.std(axis=0, ddof=1))
    np.testing.assert_allclose(co[("Days", "Q2.5")].to_numpy(),
                               np.quantile(total, 0.025, axis=0))
    # per draw, not mean + mean for quantiles
    naive = np.quantile(b, 0.025) + np.quantile(r, 0.025, axis=0)
    assert not np.allclose(co[("Days", "Q2.5")].to_numpy(), naive)


def test_coef_union_of_coefficients_like_brms():
    fit = by_fit()
    co = fit.coef()
    # group h has only an intercept: x enters with its fixed effect alone (brms' coef)
    assert list(co["h"].columns.get_level_values("coef").unique()) == ["Intercept", "x"]
    bx = flat(fit.idata.posterior["b_x"].values)
    np.testing.assert_allclose(co["h"][("x", "Estimate")].to_numpy(), [bx.mean()] * 2)


def test_varcorr_cov_is_mean_of_per_draw_products(fit):
    post = fit.idata.posterior
    s1 = flat(post["sd_Subject__Intercept"].values)
    s2 = flat(post["sd_Subject__Days"].values)
    rho = flat(post["cor_Subject__Intercept__Days"].values)
    vc = fit.varcorr()
    g = vc["Subject"]
    assert set(g) == {"sd", "cor", "cov"}
    np.testing.assert_allclose(g["cov"].to_numpy(),
                               [[np.mean(s1 * s1), np.mean(s1 * s2 * rho)],
                                [np.mean(s1 * s2 * rho), np.mean(s2 * s2)]])
    assert g["cov"].loc["Intercept", "Days"] != pytest.approx(s1.mean() * s2.mean() * rho.mean())
    np.testing.assert_allclose(g["cor"].to_numpy(), [[1, rho.mean()], [rho.mean(), 1]])
    assert list(g["cor"].index) == ["Intercept", "Days"]
    np.testing.assert_allclose(g["sd"].loc["Days"].to_numpy(),
                               [s2.mean(), s2.std(ddof=1), *np.quantile(s2, [0.025, 0.975])])
    sig = flat(post["sigma"].values)
    res = vc["residual"]
    assert res["sd"].loc["Reaction", "Estimate"] == pytest.approx(sig.mean())
    assert res["cov"].iloc[0, 0] == pytest.approx(np.mean(sig ** 2))
    text = str(vc).splitlines()
    assert text[0].split() == ["Groups", "Name", "Std.Dev.", "Corr"]
    assert text[1].split()[:2] == ["Subject", "(Intercept)"]
    assert text[2].split()[0] == "Days" and text[2].split()[-1] == f"{rho.mean():.2f}"
    assert text[3].split()[0] == "Residual"


def test_prior_summary_is_the_prior_table(fit):
    ps = fit.prior_summary()
    assert list(ps.columns) == ["prior", "class", "coef", "group", "resp", "dpar", "lb", "ub",
                                "source"]
    pd.testing.assert_frame_equal(ps, fit.priors.summary())
    assert ps.loc[0, "prior"] == "normal(0, 5)" and ps.loc[0, "source"] == "user"


def test_multivariate_summary_blocks():
    fit = mv_fit()
    s = fit.summary()
    text = str(s)
    lines = text.splitlines()
    assert lines[0] == " Family: MV(gaussian, gaussian) "
    assert lines[1:3] == ["  Links: mu = identity", "         mu = identity "]
    assert lines[7] == "Likelihood: conditional"
    assert list(s.random["g"].index) == [
        "sd(y1_Intercept)", "sd(y1_x)", "sd(y2_Intercept)", "sd(y2_x)",
        "cor(y1_Intercept,y1_x)", "cor(y1_Intercept,y2_Intercept)", "cor(y1_Intercept,y2_x)",
        "cor(y1_x,y2_Intercept)", "cor(y1_x,y2_x)", "cor(y2_Intercept,y2_x)"]
    assert list(s.fixed.index) == ["y1_Intercept", "y1_x", "y2_Intercept", "y2_x"]
    assert list(s.spec_pars.index) == ["sigma_y1", "sigma_y2"]
    assert list(s.rescor.index) == ["rescor(y1,y2)"]
    i = lines.index("Residual Correlations: ")
    assert lines[i - 5] == "Further Distributional Parameters:"
    assert lines[i + 1] == (" " * len("rescor(y1,y2)")
                            + " Estimate Est.Error l-95% CI u-95% CI Rhat Bulk_ESS Tail_ESS")
    assert lines[i + 2].split()[0] == "rescor(y1,y2)"
    post = fit.idata.posterior
    rc = flat(post["rescor__y1__y2"].values)
    assert s.rescor.iloc[0]["Estimate"] == pytest.approx(rc.mean())
    res = fit.varcorr()["residual"]
    s1, s2 = flat(post["sigma_y1"].values), flat(post["sigma_y2"].values)
    np.testing.assert_allclose(res["cov"].to_numpy(),
                               [[np.mean(s1 ** 2), np.mean(s1 * s2 * rc)],
                                [np.mean(s1 * s2 * rc), np.mean(s2 ** 2)]])
    np.testing.assert_allclose(res["cor"].to_numpy(), [[1, rc.mean()], [rc.mean(), 1]])
    g = fit.varcorr()["g"]
    assert g["cov"].shape == (4, 4)
    c = flat(post["cor_g__y1_Intercept__y2_x"].values)
    a, b = flat(post["sd_g__y1_Intercept"].values), flat(post["sd_g__y2_x"].values)
    assert g["cov"].loc["y1_Intercept", "y2_x"] == pytest.approx(np.mean(a * b * c))
    assert g["cov"].loc["y2_x", "y1_Intercept"] == pytest.approx(np.mean(a * b * c))
    co = fit.coef()["g"]
    assert list(co.columns.get_level_values("coef").unique()) == [
        "y1_Intercept", "y1_x", "y2_Intercept", "y2_x"]


def test_by_group_blocks():
    fit = by_fit()
    s = fit.summary()
    assert list(s.random) == ["g", "h"]
    assert list(s.random["g"].index) == ["sd(Intercept:hA)", "sd(x:hA)", "sd(Intercept:hB)",
                                         "sd(x:hB)", "cor(Intercept,x:hA)",
                                         "cor(Intercept,x:hB)"]
    assert s.ngrps == {"g": 8, "h": 2}
    text = str(s)
    assert "~g (Number of levels: 8) \n" in text and "~h (Number of levels: 2) \n" in text
    vc = fit.varcorr()
    g = vc["g"]
    assert g["by"] == "h" and list(g["levels"]) == ["A", "B"]
    assert list(g["sd"].index) == ["Intercept:hA", "x:hA", "Intercept:hB", "x:hB"]
    post = fit.idata.posterior
    for lev in "AB":
        s1 = flat(post[f"sd_g__Intercept:h{lev}"].values)
        s2 = flat(post[f"sd_g__x:h{lev}"].values)
        rho = flat(post[f"cor_g__Intercept:h{lev}__x:h{lev}"].values)
        blk = g["levels"][lev]
        assert blk["cov"].loc["Intercept", "x"] == pytest.approx(np.mean(s1 * s2 * rho))
        assert blk["cor"].loc["x", "Intercept"] == pytest.approx(rho.mean())
    assert vc["g"]["levels"]["A"]["cor"].loc["Intercept", "x"] > 0 > \
        vc["g"]["levels"]["B"]["cor"].loc["Intercept", "x"]
    assert set(vc["h"]) == {"sd", "cor", "cov"}
    assert "g:hA" in str(vc) and "g:hB" in str(vc)


def test_info_defaults_and_engine_note():
    fit = sleepstudy_fit(info={"engine_note": "marginal engine needs a gaussian family"})
    lines = str(fit.summary()).splitlines()
    assert lines[4] == "  Draws: 4 chains, each with iter = 500; warmup = 0; thin = 1;"
    assert lines[6] == ("Likelihood: marginal (group effects integrated out, recovered exactly); "
                        "marginal engine needs a gaussian family")
    assert "Draws were sampled using sampling(NUTS). For each parameter" in str(fit.summary())


def test_moderate_rhat_low_ess_and_treedepth_warnings():
    """Rhat in (1.01, 1.05], ESS in [100, 400) and max-treedepth hits are reported too."""
    fit = sleepstudy_fit()
    post = fit.idata.posterior
    x = post["b_Days"].values.copy()
    x[0] += 0.5 * x.std()                   # a small shift of one chain: Rhat just above 1.01
    post["b_Days"].values[:] = x
    s = fit.summary()
    rhat = s.fixed.loc["Days", "Rhat"]
    assert 1.01 < rhat <= 1.05
    assert any(w.startswith("Some Rhats are above 1.01") for w in s.warnings)
    fit = sleepstudy_fit()                  # summaries are cached: a fresh fit
    fit.idata.sample_stats["reached_max_treedepth"] = fit.idata.sample_stats["diverging"] | True
    n = fit.idata.sample_stats["reached_max_treedepth"].size
    assert any(w.startswith(f"{n} transitions hit the maximum tree depth")
               for w in fit.summary().warnings)


def _arviz_split_rhat_one_chain(x):
    """Reference (issue 17 item 6): arviz's R-hat formula (``method="identity"``: no further
    split) on the chain's two halves, rank-normalised with scipy (Vehtari et al. 2021) — what
    ``posterior::rhat`` does for one chain, while ``arviz.rhat(method="rank")`` needs 2."""
    from scipy.stats import norm, rankdata
    half = len(x) // 2
    halves = np.stack([x[:half], x[-half:]])

    def z(a):
        return norm.ppf((rankdata(a, axis=None).reshape(a.shape) - 0.375) / (a.size + 0.25))
    return max(float(az.rhat(z(halves), method="identity")),
               float(az.rhat(z(np.abs(halves - np.median(halves))), method="identity")))


def test_rhat_of_one_chain_is_split_rhat():
    """One chain: brms/posterior print split-R-hat; we printed NA. Checked against arviz on
    the halves, for a stationary chain (≈ 1) and one with a drift (> 1.05, warned), and for an
    odd number of draws (the middle draw is dropped)."""
    from mixedformula.results import Fit
    fit = sleepstudy_fit()
    post = fit.idata.posterior.isel(chain=[0])
    drift = post["b_Days"].values.copy()
    drift[0] += np.linspace(0.0, 3.0 * drift.std(), drift.shape[1])
    post["b_Days"].values[:] = drift
    for ndraw in (post.sizes["draw"], post.sizes["draw"] - 1):
        p = post.isel(draw=slice(0, ndraw))
        one = Fit(az.InferenceData(posterior=p,
                                   sample_stats=fit.idata.sample_stats.isel(
                                       chain=[0], draw=slice(0, ndraw))),
                  fit.design, fit.family, fit.priors, "marginal", dict(fit.info), data=fit.data)
        s = one.summary()
        for row, var in (("Intercept", "b_Intercept"), ("Days", "b_Days")):
            ref = _arviz_split_rhat_one_chain(p[var].values[0])
            assert np.isfinite(s.fixed.loc[row, "Rhat"])
            assert s.fixed.loc[row, "Rhat"] == pytest.approx(ref, rel=1e-12)
        assert s.fixed.loc["Intercept", "Rhat"] < 1.01
        assert s.fixed.loc["Days", "Rhat"] > 1.05
        assert np.isfinite(s.random["Subject"]["Rhat"]).all()
        assert "NA" not in "\n".join(str(s).splitlines()[8:20])
        assert any(w.startswith("Parts of the model have not converged") for w in s.warnings)
