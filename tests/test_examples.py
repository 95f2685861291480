"""Every script in examples/ runs (small draws via environment variables) and prints its answer.

Each example also writes its HTML report (MIXEDFORMULA_EXAMPLE_REPORTS), which covers the report
for multivariate and rescor_by fits.
"""

import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEADINGS = ("Regression Coefficients:", "Draws were sampled using")

EXPECT = {
    "sleepstudy.py": ["Multilevel Hyperparameters:", "~Subject (Number of levels: 18)",
                      "cor(Intercept,Days)", "REML criterion at convergence"],
    "scenario1_correlated_slopes.py": ["cor(p1,p2)", "Recovery check", "cor_g__p1__p2",
                                       "rescor(m1,m2)", "cor(m1_p1,m2_p1)",
                                       "Correlation of the predictor values"],
    "scenario2_group_covariance.py": ["rescor(x,y:groupA)", "rescor(x,y:groupB)",
                                      "sigma_x:groupB", "groupB: correlation"],
    "multivariate_bf_missing.py": ["sd(y1_Intercept)", "y1_x", "y2_z", "rescor(y1,y2)",
                                   "observations per response: y1 300, y2 237",
                                   "y2: 63 of 300 rows not used"],
    "scenario3_conditional_vs_marginal.py": ["Likelihood: conditional",
                                             "Likelihood: marginal", "side by side",
                                             "Var[y] = Z G Zᵀ + σ² I", "REML criterion"],
}


def test_every_example_is_tested():
    assert sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_")) \
        == sorted(EXPECT)


class _Imgs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs).get("src", ""))


@pytest.mark.parametrize("script", sorted(EXPECT))
def test_example_runs_and_prints_summary(script, tmp_path):
    env = dict(os.environ, MIXEDFORMULA_EXAMPLE_DRAWS="150", MIXEDFORMULA_EXAMPLE_CHAINS="2",
               MIXEDFORMULA_EXAMPLE_REPORTS=str(tmp_path))
    r = subprocess.run([sys.executable, str(EXAMPLES / script)], capture_output=True,
                       text=True, env=env, timeout=900, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for needle in HEADINGS + tuple(EXPECT[script]):
        assert needle in r.stdout, needle
    reports = list(tmp_path.glob("*.html"))
    assert reports
    for rep in reports:
        p = _Imgs()
        p.feed(rep.read_text(encoding="utf-8"))
        assert len(p.srcs) >= 5 and all(s.startswith("data:image/png;base64,") for s in p.srcs)
