"""HTML report of point-estimate fits (lmer, glmer): written, self-contained, with lmerTest /
lme4 numbers, rendered by headless Chromium without console messages; lme4's conditional
variances (ranef(condVar = TRUE)); the CLI writes it with --reml and --ml.

References: tests/data/lmer_inference.json (lmerTest 3.1.3 / lme4 1.1-31), glmer_reference.json,
answers_glmer.json (tests/data/r/answers_glmer.R). The screenshot tests need /usr/bin/chromium.
"""

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.cli import main
from mixedformula.report import build_html

DATA = Path(__file__).parent / "data"
CHROMIUM = "/usr/bin/chromium"
INF = json.loads((DATA / "lmer_inference.json").read_text())["sleep"]
GLMER = json.loads((DATA / "glmer_reference.json").read_text())["cbpp_laplace"]
ANS = json.loads((DATA / "answers_glmer.json").read_text())
#: the tables print 4 significant digits (rounding: 5e-4 relative at most) of numbers that
#: agree with lme4 / lmerTest to 1e-4 (profile intervals 1e-3)
REL = 2e-3


class _Page(HTMLParser):
    """Tags, image sources, links and the tables (rows: header cell → data cells)."""

    def __init__(self):
        super().__init__()
        self.tags, self.imgs, self.links, self.tables = [], [], [], []
        self._cell = None
        self._row = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        for key in ("src", "href"):
            if key in a and tag != "img":
                self.links.append(a[key])
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None
        elif tag == "tr" and self.tables:
            self.tables[-1].append(self._row)
            self._row = None

    def table_with(self, header: str) -> dict[str, dict[str, str]]:
        """The first table whose header row has ``header``: row name → {column: cell}."""
        for t in self.tables:
            if t and header in t[0]:
                cols = t[0]
                return {r[0]: dict(zip(cols[1:], r[1:])) for r in t[1:]}
        raise AssertionError(f"no table with a column {header!r}")


def _parse(text) -> _Page:
    p = _Page()
    p.feed(text)
    return p


def _num(cell: str) -> float:
    return float(cell.replace("−", "-"))


@pytest.fixture(scope="module")
def sleep():
    df = pd.read_csv(Path(mf.__file__).parent / "datasets" / "sleepstudy.csv")
    df["Subject"] = df["Subject"].astype(str)
    return df


@pytest.fixture(scope="module")
def cbpp():
    return pd.read_csv(DATA / "glmer_cbpp.csv", dtype={"herd": str, "period": str})


@pytest.fixture(scope="module")
def lmer_fit(sleep):
    return mf.lmer(INF["formula"], sleep)


@pytest.fixture(scope="module")
def glmer_fit(cbpp):
    return mf.glmer("incidence | trials(size) ~ period + (1 | herd)", cbpp, family="binomial")


@pytest.fixture(scope="module")
def lmer_report(lmer_fit, tmp_path_factory):
    return Path(lmer_fit.report(tmp_path_factory.mktemp("rp") / "lmer.html"))


@pytest.fixture(scope="module")
def glmer_report(glmer_fit, tmp_path_factory):
    return Path(glmer_fit.report(tmp_path_factory.mktemp("rp") / "glmer.html"))


def _self_contained(text):
    page = _parse(text)
    assert len(page.imgs) == 2                        # residual/Q-Q and one caterpillar
    assert all(src.startswith("data:image/png;base64,") for src in page.imgs)
    assert "script" not in page.tags and "link" not in page.tags
    assert all(h.startswith("#") for h in page.links)             # only in-page anchors
    assert "http://" not in text and "https://" not in text       # no external URL anywhere
    return page


def test_lmer_report_tables_have_lmertest_numbers(lmer_report):
    page = _self_contained(lmer_report.read_text(encoding="utf-8"))
    fixed = page.table_with("Pr(>|t|)")
    ref = INF["satterthwaite"]
    ci = INF["confint_profile"]
    for i, row in enumerate(ref["rows"]):
        for col in ("Estimate", "Std. Error", "df", "t value"):
            assert _num(fixed[row][col]) == pytest.approx(ref["columns"][col][i], rel=REL)
        j = ci["rows"].index(row)
        for col in ("2.5 %", "97.5 %"):
            assert _num(fixed[row][col]) == pytest.approx(ci["columns"][col][j], rel=REL)
    assert fixed["Days"]["Pr(>|t|)"] == f"{ref['columns']['Pr(>|t|)'][1]:.3g}"
    var = page.table_with("parameter")
    assert list(var) == [".sig01", ".sig02", ".sig03", ".sigma"]
    assert var[".sig02"]["parameter"] == "cor((Intercept), Days | Subject)"
    for name in var:
        j = ci["rows"].index(name)
        for col in ("2.5 %", "97.5 %"):
            assert _num(var[name][col]) == pytest.approx(ci["columns"][col][j], rel=REL)
    text = lmer_report.read_text(encoding="utf-8")
    assert "(not a singular fit)" in text
    effects = page.table_with("std.error")           # 3 significant digits: 5e-3 rounding
    assert _num(effects["Days"]["estimate"]) == pytest.approx(ref["columns"]["Estimate"][1],
                                                              rel=5e-3)


def test_glmer_report_tables_and_profile_note(glmer_report):
    text = glmer_report.read_text(encoding="utf-8")
    page = _self_contained(text)
    fixed = page.table_with("Pr(>|z|)")
    wald = ANS["cbpp"]["confint_wald"][1:]
    for i, row in enumerate(GLMER["fixef"]):
        assert _num(fixed[row]["Estimate"]) == pytest.approx(GLMER["fixef"][row], rel=REL)
        assert _num(fixed[row]["Std. Error"]) == pytest.approx(GLMER["se"][row], rel=REL)
        assert _num(fixed[row]["z value"]) == pytest.approx(GLMER["z"][row], rel=REL)
        assert _num(fixed[row]["2.5 %"]) == pytest.approx(wald[i][0], rel=REL)
        assert _num(fixed[row]["97.5 %"]) == pytest.approx(wald[i][1], rel=REL)
    var = page.table_with("parameter")
    assert _num(var[".sig01"]["estimate"]) == pytest.approx(GLMER["varcorr"]["sdcor"],
                                                            rel=REL)
    # glmer's profile interval of .sig01 (lme4's confint(method = "profile"), 1e-3)
    prof = json.loads((DATA / "freq_reference.json").read_text())["cbpp_confint"]["profile"]
    for col in ("2.5 %", "97.5 %"):
        assert _num(var[".sig01"][col]) == pytest.approx(prof["columns"][col][0], rel=1e-3)
    effects = next(t for t in page.tables if t and "std.error" in t[0])
    assert [r[1] for r in effects[1:]] == ["2 - 1", "3 - 1", "4 - 1", "3 - 2", "4 - 2", "4 - 3"]
    hand = {c["contrast"]: c["estimate"] for c in ANS["cbpp"]["comparisons"]}
    for r in effects[1:]:                            # 3 significant digits: 5e-3 rounding
        assert _num(r[2]) == pytest.approx(hand[r[1]], rel=5e-3)


def test_verdicts_name_the_zero_variance():
    df = pd.read_csv(DATA / "lme4_singular_slope.csv")
    formula = json.loads((DATA / "lmer_inference.json").read_text())["singular"]["formula"]
    fit = mf.lmer(formula, df)
    assert fit.is_singular
    text = build_html(fit)
    assert "<b>Problem:</b> Singular fit:" in text
    assert "is estimated as" in text
    # the profile's warning (a limit at the parameter's bound) is in the report, not lost
    assert "does not reach the 95% cutoff" in text


def _render(path, tmp_path, name):
    assert os.path.exists(CHROMIUM), "chromium is needed for this test (.ci/run installs it)"
    shot = tmp_path / f"{name}.png"
    run = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                          "--disable-background-networking", "--no-first-run",
                          "--enable-logging=stderr", "--v=0", f"--screenshot={shot}",
                          "--window-size=1280,3000", f"file://{path}"],
                         check=True, capture_output=True, text=True, timeout=120)
    console = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]
    return shot, console


def test_reports_render_in_chromium_without_console_messages(lmer_report, glmer_report,
                                                             tmp_path):
    from matplotlib.image import imread
    bad = tmp_path / "bad.html"            # the console check can fail: a page that logs
    bad.write_text("<html><body><script>console.error('boom')</script></body></html>")
    assert _render(bad, tmp_path, "bad")[1]
    for path in (lmer_report, glmer_report):
        shot, console = _render(path, tmp_path, path.stem)
        assert console == []
        rgb = imread(shot)[..., :3]
        assert rgb.shape[:2] == (3000, 1280)
        # tables, text and plots drawn: ~2.8% of the pixels are dark (a blank page: 0.04%)
        assert (rgb.min(axis=2) < 0.9).mean() > 0.01
        assert rgb.std() > 0.05
        colours = np.unique((rgb[::7, ::7] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
        assert len(colours) > 50


def _postvar(ref_term, levels):
    pos = [ref_term["levels"].index(lev) for lev in levels]
    return np.asarray(ref_term["postVar"], dtype=float).reshape(len(ref_term["levels"]), -1)[pos]


def test_condvar_matches_lme4_postvar(lmer_fit, glmer_fit, sleep):
    (cv,) = lmer_fit.condvar()
    r = ANS["sleep"]["condvar"]["Subject"]
    assert cv.coefs == r["coefs"]
    np.testing.assert_allclose(cv.var.reshape(18, 4), _postvar(r, cv.levels), rtol=1e-6)
    np.testing.assert_allclose(cv.modes, lmer_fit.ranef()["Subject"].to_numpy())
    uncorr = mf.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", sleep).condvar()
    r = ANS["sleep_uncorr"]["condvar"]["Subject"]
    for c in uncorr:
        ref = {"postVar": r["postVar"][c.coefs[0]], "levels": r["levels"]}
        np.testing.assert_allclose(c.var.reshape(-1, 1), _postvar(ref, c.levels), rtol=1e-6)
    (g,) = glmer_fit.condvar()
    r = ANS["cbpp"]["condvar"]["herd"]
    np.testing.assert_allclose(g.var.reshape(-1, 1), _postvar(r, g.levels), rtol=0, atol=1e-6)
    assert set(g.frame().columns) == {"grpvar", "term", "grp", "condval", "condsd"}


@pytest.fixture(scope="module")
def sleep_csv(sleep, tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "sleep.csv"
    sleep.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("how", ["--reml", "--ml"])
def test_cli_writes_the_report_for_point_fits(how, sleep_csv, tmp_path, capsys):
    """Failed on main: --reml/--ml with --report exited 0 and wrote nothing."""
    out = tmp_path / "r.html"
    rc = main(["fit", str(sleep_csv), INF["formula"], how, "--report", str(out)])
    assert rc == 0
    assert out.exists(), "the report was not written"
    text = out.read_text(encoding="utf-8")
    assert ("by REML" if how == "--reml" else "by maximum likelihood") in text
    assert "Wrote the report" in capsys.readouterr().err


def test_cli_glmer_report_and_factor_of_integer_column(tmp_path, capsys):
    """cbpp's period is read from CSV as integers: factor(period) makes it a factor."""
    out = tmp_path / "g.html"
    rc = main(["fit", str(DATA / "glmer_cbpp.csv"),
               "incidence | trials(size) ~ factor(period) + (1 | herd)", "--ml", "--family",
               "binomial", "--report", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "factor(period)2" in printed
    page = _parse(out.read_text(encoding="utf-8"))
    fixed = page.table_with("Pr(>|z|)")
    assert _num(fixed["factor(period)2"]["Estimate"]) == pytest.approx(
        GLMER["fixef"]["period2"], rel=REL)
    effects = next(t for t in page.tables if t and "std.error" in t[0])
    assert [r[1] for r in effects[1:]] == ["2 - 1", "3 - 1", "4 - 1", "3 - 2", "4 - 2", "4 - 3"]


def test_cli_save_of_a_point_fit_is_refused(sleep_csv, tmp_path, capsys):
    rc = main(["fit", str(sleep_csv), INF["formula"], "--reml", "--save",
               str(tmp_path / "f.nc")])
    assert rc == 2
    assert "cannot be saved" in capsys.readouterr().err
