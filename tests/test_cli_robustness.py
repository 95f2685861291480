"""Command line under hostile input (issue 9), through the installed entry point in a subprocess.

Complements tests/test_cli.py (which checks the messages of the common bad inputs in-process):
here every case runs the real ``mixedformula`` program and must end with exactly ONE line on
stderr starting with ``error:``, exit code 2, no traceback, and nothing written. Attack formulas
on the command line are refused before the data file is even read; a canary file shows that none
of them ran. (Tests run as root, so "unreadable" is exercised with a directory, binary junk and
non-UTF-8 bytes rather than chmod 000.)
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

FORMULA = "Reaction ~ Days + (1 | Subject)"


def run(*args, cwd=None):
    exe = os.path.join(os.path.dirname(sys.executable), "mixedformula")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "mixedformula.cli"]
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def assert_one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("clirob")
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"Reaction": rng.normal(300, 30, 40).round(2), "Days": np.tile(range(4), 10),
                       "Subject": np.repeat([f"s{k}" for k in range(8)], 5)})
    df.to_csv(d / "ok.csv", index=False)
    df.to_csv(d / "semi.csv", index=False, sep=";")
    df.to_csv(d / "tab.tsv", index=False, sep="\t")
    # European CSV: ';' separator and decimal commas, so Reaction is text
    df.to_csv(d / "decimal_comma.csv", index=False, sep=";", decimal=",")
    # 10 MB in one field of an otherwise valid file
    (d / "huge_field.csv").write_text("Reaction,Days,Subject\n" + "7" * 10_000_000 + ",1,a\n"
                                      + "300,2,b\n")
    (d / "huge_header.csv").write_text("x" * 3_000_000 + "\n1\n")
    (d / "junk_nul.csv").write_bytes(rng.integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    junk = rng.integers(128, 256, 50_000, dtype=np.uint8).tobytes()       # no NUL, not UTF-8
    (d / "junk_high.csv").write_bytes(b"Reaction,Days,Subject\n" + junk)
    (d / "ragged.csv").write_text("Reaction,Days,Subject\n1,2,a\n1,2,3,4,5\n")
    (d / "bom_only.csv").write_bytes(b"\xef\xbb\xbf")
    (d / "broken.parquet").write_bytes(b"PAR1" + b"\x00garbage" * 100)
    (d / "gzipped.csv").write_bytes(__import__("gzip").compress((d / "ok.csv").read_bytes()))
    (d / "truncated.nc").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    return d


@pytest.mark.parametrize("case, argv, needles", [
    ("missing file", ["fit", "{d}/nope.csv", FORMULA], ["does not exist"]),
    ("directory", ["fit", "{d}", FORMULA], ["is a directory"]),
    ("binary junk with NUL", ["fit", "{d}/junk_nul.csv", FORMULA], ["binary file"]),
    ("not UTF-8", ["fit", "{d}/junk_high.csv", FORMULA], ["not utf-8 text", "--encoding"]),
    ("gzip file", ["fit", "{d}/gzipped.csv", FORMULA], ["binary file"]),
    ("10 MB field", ["fit", "{d}/huge_field.csv", FORMULA], ["line 2 is longer than"]),
    ("3 MB header", ["fit", "{d}/huge_header.csv", FORMULA], ["line 1 is longer than"]),
    ("semicolon file, --sep ,", ["fit", "{d}/semi.csv", FORMULA, "--sep", ","],
     ["wrong delimiter", "--sep ';'"]),
    ("tab file, --sep ;", ["fit", "{d}/tab.tsv", FORMULA, "--sep", ";"], ["wrong delimiter"]),
    ("decimal comma", ["fit", "{d}/decimal_comma.csv", FORMULA], ["'Reaction' must be numeric"]),
    ("ragged rows", ["fit", "{d}/ragged.csv", FORMULA], ["cannot parse", "line 3"]),
    ("BOM only", ["fit", "{d}/bom_only.csv", FORMULA], ["no columns"]),
    ("broken parquet", ["fit", "{d}/broken.parquet", FORMULA], ["cannot read", "Parquet"]),
    ("summary of truncated fit", ["summary", "{d}/truncated.nc"], ["cannot read", "truncated"]),
    ("summary of a CSV", ["summary", "{d}/ok.csv"], ["cannot read"]),
    ("summary of a directory", ["summary", "{d}"], ["is a directory"]),
    ("save into missing dir", ["fit", "{d}/ok.csv", FORMULA, "--save", "{d}/no/such/fit.nc"],
     ["does not exist"]),
    ("negative draws", ["fit", "{d}/ok.csv", FORMULA, "--draws", "-5"], ["--draws"]),
    ("target accept 1.5", ["fit", "{d}/ok.csv", FORMULA, "--target-accept", "1.5"],
     ["--target-accept"]),
    ("unknown option", ["fit", "{d}/ok.csv", FORMULA, "--drawz", "5"], ["unrecognized"]),
])
def test_bad_files_and_options(files, case, argv, needles):
    r = run(*[a.replace("{d}", str(files)) for a in argv])
    assert_one_line_error(r, *needles)
    assert not (files / "no").exists()


def test_semicolon_and_tab_files_are_detected(files):
    """The delimiter is detected from the header: these are read, not rejected (fit with
    --reml: no sampling, so this stays fast)."""
    outs = [run("fit", files / name, FORMULA, "--reml") for name in ("ok.csv", "semi.csv",
                                                                       "tab.tsv")]
    for r in outs:
        assert r.returncode == 0, r.stderr
    blocks = [r.stdout.split("Fixed effects:")[1] for r in outs]
    assert blocks[0] == blocks[1] == blocks[2]


# Formulas an attacker might put on the command line; {C} is the canary path.
ATTACKS = [
    "Reaction ~ __import__('os').system('touch {C}')",
    "Reaction ~ Days + {open('{C}', 'w')}",
    "Reaction ~ I(open('{C}', 'w').write('x'))",
    "Reaction ~ eval(\"open('{C}', 'w')\")",
    "Reaction ~ exec(\"open('{C}', 'w')\")",
    "Reaction ~ Days.to_csv('{C}')",
    "Reaction ~ getattr(Days, 'to_csv')('{C}')",
    "Reaction ~ (lambda: open('{C}', 'w'))()",
    "Reaction ~ I([open('{C}', 'w') for _ in [1]])",
    "Reaction ~ I((q := open('{C}', 'w')))",
    "Reaction ~ I(f'{{open(\"{C}\", \"w\")}}')",
    "Reaction ~ Days + (1 | gr(Subject, by = __import__('os').system('touch {C}')))",
    "Reaction ~ poly(Days, degree=__import__('os').system('touch {C}'))",
    "Reaction ~ Days; import os; os.system('touch {C}')",
    "Reaction ~ Days\nimport os; os.system('touch {C}')",
    "Reaction ~ C(Days, '\"); open(\"{C}\", \"w\"); (\"')",
    "Reaction ~ ＿＿import＿＿('os').system('touch {C}')",
    "Reaction ~ $(touch {C})",
    "Reaction ~ `touch {C}`",
    "Reaction ~ " + "(" * 3000 + "Days" + ")" * 3000,
]


@pytest.mark.parametrize("k", range(len(ATTACKS)))
def test_attack_formulas_on_the_command_line(files, tmp_path, k):
    canary = tmp_path / "canary"
    formula = ATTACKS[k].replace("{C}", str(canary))
    r = run("fit", files / "ok.csv", formula, "--draws", "10", "--tune", "10", "--chains", "1",
            "--save", tmp_path / "fit.nc", cwd=tmp_path)
    line = assert_one_line_error(r)
    assert "bad formula" in line or "column" in line, line
    assert not canary.exists()
    assert list(tmp_path.iterdir()) == []          # nothing saved, nothing created


def test_attack_formulas_are_at_least_ten():
    assert len(ATTACKS) >= 10


def test_hostile_data_file_name_and_column_names(files, tmp_path):
    """A path with shell syntax is just a path; a header full of code is just column names."""
    canary = tmp_path / "canary"
    r = run("fit", f"$(touch {canary}).csv", FORMULA, cwd=tmp_path)
    assert_one_line_error(r, "does not exist")
    code = f"open('{canary}', 'w')"
    df = pd.read_csv(files / "ok.csv").rename(columns={"Days": code})
    path = tmp_path / "evil.csv"
    df.to_csv(path, index=False)
    r = run("fit", path, f"Reaction ~ `{code}` + (1 | Subject)", "--reml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "open(" in r.stdout                      # printed as a coefficient name
    # dunder names are refused even backquoted (the parser's rule), still one line
    dunder = f"__import__('os').system('touch {canary}')"
    df.rename(columns={code: dunder}).to_csv(path, index=False)
    r = run("fit", path, f"Reaction ~ `{dunder}` + (1 | Subject)", "--reml", cwd=tmp_path)
    assert_one_line_error(r, "bad formula", "'__'")
    assert not canary.exists()
