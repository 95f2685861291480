"""Command line: fits, saved fits, examples, and one-line errors for bad input (issue 9)."""

import os
import subprocess
import sys

import pytest

import mixedformula as mf
from mixedformula.cli import main, read_data

FORMULA = "Reaction ~ Days + (Days | Subject)"
HEADINGS = ("Multilevel Hyperparameters:", "Regression Coefficients:",
            "Further Distributional Parameters:")
SMALL = ["--chains", "2", "--draws", "200", "--tune", "200"]


@pytest.fixture(scope="module")
def files(tmp_path_factory, sleepstudy):
    d = tmp_path_factory.mktemp("cli")
    sleepstudy.to_csv(d / "sleep.csv", index=False)
    sleepstudy.to_csv(d / "sleep_semicolon.csv", index=False, sep=";")
    sleepstudy.to_parquet(d / "sleep.parquet")
    (d / "junk.csv").write_bytes(bytes(range(256)) * 40)
    (d / "huge.csv").write_text("Reaction,Days,Subject\n" + "1" * 2_000_000 + ",1,a\n")
    (d / "empty.csv").write_text("")
    (d / "header_only.csv").write_text("Reaction,Days,Subject\n")
    return d


@pytest.fixture(scope="module")
def fitted(files):
    """One CLI fit with a prior, --save and --report; (exit code, stdout, paths)."""
    import contextlib
    import io
    out, err = io.StringIO(), io.StringIO()
    nc, html = files / "fit.nc", files / "fit.html"
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["fit", str(files / "sleep_semicolon.csv"), FORMULA, *SMALL, "--seed", "3",
                   "--prior", "normal(0, 10)", "class=b", "coef=Days", "--save", str(nc),
                   "--report", str(html)])
    return rc, out.getvalue(), err.getvalue(), nc, html


def _run_error(capsys, argv):
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 2, cap
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), cap.err
    assert "Traceback" not in cap.err and cap.out == ""
    return lines[0]


def test_fit_prints_brms_summary_and_writes_files(fitted):
    rc, out, err, nc, html = fitted
    assert rc == 0
    for h in HEADINGS:
        assert h in out
    assert "Data: sleep_semicolon.csv (Number of observations: 180)" in out   # ';' detected
    assert "2 chains, each with iter = 400; warmup = 200" in out
    assert nc.exists() and html.exists()
    assert f"Saved the fit to {nc}" in err
    assert "<img" in html.read_text()


def test_prior_from_command_line_is_used(fitted):
    fit = mf.load(fitted[3])
    table = fit.prior_summary()
    row = table[(table["class"] == "b") & (table["coef"] == "Days")].iloc[0]
    assert row["prior"] == "normal(0, 10)" and row["source"] == "user"


def test_summary_command_reprints_saved_fit(fitted, capsys):
    rc = main(["summary", str(fitted[3])])
    out = capsys.readouterr().out
    assert rc == 0
    block = fitted[1].split("Regression Coefficients:")[1].split("\n\n")[0]
    assert block in out


def test_parquet_reads_like_csv(files, sleepstudy):
    a = read_data(str(files / "sleep.parquet"))
    b = read_data(str(files / "sleep.csv"))
    assert list(a.columns) == list(b.columns) == list(sleepstudy.columns)
    assert (a["Reaction"].to_numpy() == b["Reaction"].to_numpy()).all()


def test_reml_prints_lmer_estimates(files, capsys):
    rc = main(["fit", str(files / "sleep.parquet"), FORMULA, "--reml"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "REML criterion at convergence: 1743.6" in out      # lme4: 1743.628
    assert "251.405" in out and "10.467" in out               # lme4's fixef


@pytest.mark.parametrize("case", [
    "missing_file", "directory", "binary", "huge_field", "wrong_delimiter", "empty",
    "header_only", "bad_formula", "missing_column", "bad_prior", "bad_prior_key",
    "unknown_family", "bad_link", "injection", "bad_chains", "summary_of_junk",
    "summary_missing", "reml_non_gaussian", "report_dir_missing"])
def test_bad_input_is_one_line_and_exit_2(case, files, capsys, tmp_path):
    csv = str(files / "sleep.csv")
    canary = tmp_path / "canary"
    (files / "no_parquet_here").mkdir(exist_ok=True)   # a directory of Parquet files is data
    argv = {
        "missing_file": ["fit", str(files / "nope.csv"), FORMULA],
        "directory": ["fit", str(files / "no_parquet_here"), FORMULA],
        "binary": ["fit", str(files / "junk.csv"), FORMULA],
        "huge_field": ["fit", str(files / "huge.csv"), FORMULA],
        "wrong_delimiter": ["fit", str(files / "sleep_semicolon.csv"), FORMULA, "--sep", ","],
        "empty": ["fit", str(files / "empty.csv"), FORMULA],
        "header_only": ["fit", str(files / "header_only.csv"), FORMULA],
        "bad_formula": ["fit", csv, "Reaction ~ Days + (Days | "],
        "missing_column": ["fit", csv, "Reaction ~ Dayz + (Days | Subject)"],
        "bad_prior": ["fit", csv, FORMULA, "--prior", "normal(0, )"],
        "bad_prior_key": ["fit", csv, FORMULA, "--prior", "normal(0, 5)", "klass=b"],
        "unknown_family": ["fit", csv, FORMULA, "--family", "gausian"],
        "bad_link": ["fit", csv, FORMULA, "--link", "logit"],
        "injection": ["fit", csv, f"Reaction ~ __import__('os').system('touch {canary}')"],
        "bad_chains": ["fit", csv, FORMULA, "--chains", "0"],
        "summary_of_junk": ["summary", str(files / "junk.csv")],
        "summary_missing": ["summary", str(files / "nope.nc")],
        "reml_non_gaussian": ["fit", csv, FORMULA, "--reml", "--family", "poisson"],
        "report_dir_missing": ["fit", csv, FORMULA, "--report", str(files / "no" / "r.html")],
    }[case]
    line = _run_error(capsys, argv)
    expect = {
        "missing_file": "does not exist", "directory": "is a directory",
        "binary": "binary file", "huge_field": "longer than 1,000,000 characters",
        "wrong_delimiter": "wrong delimiter", "empty": "is empty", "header_only": "no rows",
        "bad_formula": "bad formula", "missing_column": "did you mean Days",
        "bad_prior": "bad prior", "bad_prior_key": "klass=b", "unknown_family": "gausian",
        "bad_link": "logit", "injection": "bad formula", "bad_chains": "--chains",
        "summary_of_junk": "cannot read", "summary_missing": "does not exist",
        "reml_non_gaussian": "Gaussian", "report_dir_missing": "does not exist",
    }[case]
    assert expect in line
    assert not canary.exists()


def test_usage_error_is_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        main(["fit", "x.csv", FORMULA, "--chains", "many"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid int value" in err[0]


def _entry(*args, **kw):
    exe = os.path.join(os.path.dirname(sys.executable), "mixedformula")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "mixedformula.cli"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=600, **kw)


def test_help_explains_with_examples():
    top = _entry("--help")
    assert top.returncode == 0
    assert "fit" in top.stdout and "example" in top.stdout and "summary" in top.stdout
    fit = _entry("fit", "--help")
    assert fit.returncode == 0
    for needle in ("FORMULA", "--prior", "class=b coef=Days", "--likelihood", "--report",
                   "--save", "--reml", "Parquet", "mixedformula fit sleep.csv"):
        assert needle in fit.stdout, needle


def test_entry_point_error_has_no_traceback_unless_debug(tmp_path):
    r = _entry("fit", str(tmp_path / "missing.csv"), FORMULA)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = _entry("fit", str(tmp_path / "missing.csv"), FORMULA, "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_example_command_prints_summary():
    """The README's first command (with fewer draws to keep the suite fast)."""
    r = _entry("example", "sleepstudy", *SMALL)
    assert r.returncode == 0, r.stderr
    for h in HEADINGS:
        assert h in r.stdout
    assert "Formula: Reaction ~ Days + (Days | Subject)" in r.stdout
    assert "Data: sleepstudy (Number of observations: 180)" in r.stdout


def _fresh_env(tmp_path):
    """Empty caches a first run fills: compiled functions, matplotlib's font cache, arviz's
    once-a-day banner stamp (platformdirs' user cache); the shared PyTensor op cache stays."""
    env = dict(os.environ)
    for name in ("compiled", "mpl", "xdg"):
        (tmp_path / name).mkdir()
    env.update(MIXEDFORMULA_COMPILE_CACHE=str(tmp_path / "compiled"),
               MPLCONFIGDIR=str(tmp_path / "mpl"), XDG_CACHE_HOME=str(tmp_path / "xdg"))
    env.pop("CI", None)
    return env


def test_clean_example_writes_only_phase_lines(tmp_path):
    """Issue 21: a clean `mixedformula example sleepstudy` (the README's command, default
    draws) on empty caches, then again (functions loaded from the disk cache), writes no
    warning to stderr (numpy's overflow warnings from the first warm-up steps, arviz's banner,
    PyTensor's BLAS probe, matplotlib's), only one line per phase."""
    env = _fresh_env(tmp_path)
    for run in ("cold", "warm"):
        r = _entry("example", "sleepstudy", env=env)
        assert r.returncode == 0, r.stderr
        lines = r.stderr.splitlines()
        assert "warn" not in r.stderr.lower(), (run, r.stderr)
        assert all(ln.endswith("...") for ln in lines), r.stderr
        assert any(ln.startswith("compiling the model") for ln in lines) == (run == "cold")
        assert any(ln.startswith("sampling 4 chains x (1000 warm-up + 1000 draws)")
                   for ln in lines)
        assert "Regression Coefficients:" in r.stdout


def test_quiet_example_prints_only_the_convergence_warning(tmp_path):
    """Issue 17 item 11 / issue 21: --quiet drops the phase lines; a fit that cannot have
    converged says so on stderr in one line.  2 chains × 30 draws: arviz's ESS is at most
    S·log10(S) ≈ 107 for S = 60 draws, below 100 per chain (200), whatever the seed."""
    r = _entry("example", "sleepstudy", "--chains", "2", "--draws", "30", "--tune", "30",
               "--quiet", env=_fresh_env(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("warning: the fit may not be reliable: ")
    assert "bulk ESS below 200 (100 per chain) for " in lines[0]
