"""HTML report: self-contained page, tables, diagnostics, figures, and what Chromium renders.

The screenshot test needs /usr/bin/chromium (.ci/run installs it); without it the test fails.
"""

import os
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

import mixedformula as mf
from mixedformula.report import build_html, write_report
from mixedformula.report.diagnostics import checks
from mixedformula.report.draws import draw_indices, linear_predictor, replicate
from mixedformula.report.effects import conditional_effect
from mixedformula.results.fit import Fit

CHROMIUM = "/usr/bin/chromium"
FORMULA = "Reaction ~ Days + (Days | Subject)"
N_FIGURES = 6   # trace/rank, forest, caterpillar, G heatmap, posterior predictive, cond. effect


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.imgs, self.tags, self.links = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        for key in ("src", "href"):
            if key in a and tag != "img":
                self.links.append(a[key])


def _parse(text):
    p = _Page()
    p.feed(text)
    return p


@pytest.fixture(scope="module")
def fit(sleepstudy):
    f = mf.fit(FORMULA, sleepstudy, draws=300, tune=300, chains=2, seed=1)
    f.data = sleepstudy
    return f


@pytest.fixture(scope="module")
def report(fit, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "sleep.html"
    write_report(fit, path)
    return path


def test_report_is_one_self_contained_file(report):
    text = report.read_text(encoding="utf-8")
    page = _parse(text)
    assert len(page.imgs) == N_FIGURES
    assert all(src.startswith("data:image/png;base64,") for src in page.imgs)
    assert "script" not in page.tags and "link" not in page.tags
    assert all(h.startswith("#") for h in page.links)         # only in-page anchors
    assert oct(os.stat(report).st_mode & 0o044) != "0o0"        # readable by others (umask)


def test_report_has_brms_tables_and_diagnostics(report, fit):
    text = report.read_text(encoding="utf-8")
    for needle in ("Reaction ~ Days + (Days | Subject)", "~Subject (Number of levels: 18)",
                   "sd(Intercept)", "sd(Days)", "cor(Intercept,Days)",
                   "Regression coefficients", "Intercept", "sigma", "Grouping factors",
                   "Observations used", "Divergent transitions", "Largest Rhat",
                   "Smallest Bulk_ESS", "Priors", "student_t(3, 0, 59.3)",
                   "Multilevel Hyperparameters:"):
        assert needle in text, needle
    # the fixed-effects table shows the same rounded numbers as the printed summary
    est = fit.summary().fixed.loc["Days", "Estimate"]
    assert f"<td>{est:.2f}</td>" in text


def test_screenshot_renders_nonblank_page(report, tmp_path):
    assert os.path.exists(CHROMIUM), "chromium is needed for this test (.ci/run installs it)"
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--no-first-run",
                    f"--screenshot={shot}", "--window-size=1280,4000", f"file://{report}"],
                   check=True, capture_output=True, timeout=120)
    from matplotlib.image import imread
    img = imread(shot)
    assert img.shape[:2] == (4000, 1280)
    rgb = img[..., :3]
    nonwhite = (rgb.min(axis=2) < 0.9).mean()
    assert nonwhite > 0.05                                     # text, tables, plots drawn
    assert rgb.std() > 0.05
    colours = np.unique((rgb[::7, ::7] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50                                   # images, not just text


def test_linear_predictor_is_xb_plus_zu(fit):
    idx = np.array([0, 17, 299])
    eta = linear_predictor(fit, idx)[:, :, 0]
    post = fit.posterior
    days = fit.design.X[:, 1]
    subj = fit.design.terms[0].codes
    r = post["r_Subject"].values.reshape(-1, 18, 2)[idx]
    b0 = post["b_Intercept"].values.ravel()[idx]
    b1 = post["b_Days"].values.ravel()[idx]
    manual = (b0[:, None] + r[:, subj, 0]) + (b1[:, None] + r[:, subj, 1]) * days[None, :]
    np.testing.assert_allclose(eta, manual, rtol=1e-10)


def test_replicated_data_have_the_data_scale(fit):
    idx = draw_indices(fit.posterior, 200)
    yrep, note = replicate(fit, idx, seed=3)
    assert note == "" and yrep.shape == (len(idx), 180, 1)
    y = fit.design.y[:, 0]
    # Var(y_rep) ≈ Var(Zu) + σ² ≈ Var(y) for a well-fitting model; means agree closely
    assert abs(yrep.mean() - y.mean()) < 0.1 * y.std()
    assert abs(yrep.std(axis=1).mean() / y.std() - 1) < 0.15


def test_conditional_effect_slope_is_b_days(fit):
    ce = conditional_effect(fit)
    assert ce.xname == "Days" and not ce.categorical
    slope = (ce.mean[-1, 0] - ce.mean[0, 0]) / (ce.x[-1] - ce.x[0])
    assert slope == pytest.approx(float(fit.posterior["b_Days"].mean()), rel=1e-6)
    assert np.all(ce.lower <= ce.mean) and np.all(ce.mean <= ce.upper)


def test_divergences_are_highlighted_with_advice(fit):
    idata = fit.idata.copy()
    div = idata.sample_stats["diverging"].values.copy()
    div[0, :7] = True
    idata.sample_stats["diverging"] = (("chain", "draw"), div)
    items = {c.name: c for c in checks(idata, [fit.summary().fixed])}
    d = items["Divergent transitions"]
    assert d.status == "bad" and d.value.startswith("7 of 600") and "target_accept" in d.advice
    bad = Fit(idata, fit.design, fit.family, fit.priors, fit.likelihood, fit.info)
    text = build_html(bad)
    assert "There were 7 divergent transitions" in text
    assert "<div class='alert '><b>Divergent transitions: 7 of 600 draws." in text


def test_report_of_a_loaded_fit(fit, tmp_path):
    mf.save(fit, tmp_path / "fit.nc")
    loaded = mf.load(tmp_path / "fit.nc")
    text = build_html(loaded)
    assert len(_parse(text).imgs) == N_FIGURES
    assert "~Subject (Number of levels: 18)" in text


def test_report_to_missing_directory_is_a_clear_error(fit, tmp_path):
    with pytest.raises(mf.MixedFormulaError, match="does not exist"):
        write_report(fit, tmp_path / "nope" / "r.html")


def test_fit_and_summary_render_in_jupyter(fit):
    html = fit._repr_html_()
    assert "<table" in html and "Regression Coefficients" in html
    assert "<table" in fit.summary()._repr_html_()


def test_fit_report_method_writes_the_page(fit, tmp_path):
    path = fit.report(tmp_path / "r.html")
    assert len(_parse(open(path, encoding="utf-8").read()).imgs) == N_FIGURES
