"""priors= for the autocorrelation and structure parameters (issue 23).

References: brms 2.18's prior rows for the classes ``ar`` and ``cosy`` (get_prior defaults and
validate_prior with a user prior: tests/data/r/autocor_priors.R -> autocor_priors_brms.json);
the log density of each parameter's prior at a point against scipy (normal, beta, truncated
normal, uniform), and for ``ar`` the whole model's log density with the prior minus the one
with brms' flat default = Σ_k log N(ar[k]; 0, 0.5) (scipy).
glmmTMB structures have no brms counterpart: their ρ is class ``rho`` with the group
(``rho_<group>`` in the posterior), flat on its range by default (ar1 (−1, 1), cs (−1/(Q−1), 1)).
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedformula as mf
from mixedformula.errors import PriorError

HERE = os.path.dirname(__file__)
BRMS = json.load(open(os.path.join(HERE, "data", "autocor_priors_brms.json")))
COLS = ["prior", "class", "coef", "group", "lb", "ub", "source"]


def _autocor_data():
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"time": np.tile(np.arange(1, 6), 6) * 1.0,
                      "g": np.repeat([f"s{j}" for j in range(6)], 5)})
    d["x"] = rng.normal(size=len(d))
    d["y"] = 1 + 0.5 * d.x + rng.normal(size=len(d))
    return d


@pytest.fixture(scope="module")
def covdata():
    d = pd.read_csv(os.path.join(HERE, "data", "covstruct_data.csv"))
    d["times"] = d["times"].astype(str)
    return d


def _rows(model, cls):
    ps = model.prior_summary()
    ps = ps[ps["class"] == cls]
    out = ps[COLS].to_dict("records")
    for r in out:                       # brms writes its flat default as an empty string
        r["prior"] = "" if r["prior"] == "(flat)" and r["source"] == "default" else r["prior"]
    return out


def _prior_logp(model, name, value):
    """log prior density of the constrained ``value`` of ``name`` (no Jacobian)."""
    rv = model[name]
    vv = model.rvs_to_values[rv]
    tr = model.rvs_to_transforms.get(rv)
    x = np.asarray(value, dtype=float)
    u = x if tr is None else np.asarray(tr.forward(x, *rv.owner.inputs).eval())
    f = model.compile_logp(vars=[rv], jacobian=False)
    point = model.initial_point()
    point[vv.name] = u
    return float(f(point))


@pytest.mark.parametrize("key", ["ar_default", "ar_user", "cosy_default", "cosy_user"])
def test_prior_summary_rows_match_brms(key):
    kind, src = key.split("_")
    term = "ar(time, g, p = 2)" if kind == "ar" else "cosy(time, g)"
    user = {"ar": mf.prior("normal(0, 0.5)", class_="ar"),
            "cosy": mf.prior("beta(2, 2)", class_="cosy")}[kind]
    m = mf.Model(f"y ~ x + {term}", _autocor_data(), priors=[user] if src == "user" else None)
    assert _rows(m, kind) == BRMS[key]


def test_ar_prior_is_applied():
    d = _autocor_data()
    f = "y ~ x + ar(time, g, p = 2)"
    m0 = mf.Model(f, d).pymc_model
    m1 = mf.Model(f, d, priors=[mf.prior("normal(0, 0.5)", class_="ar")]).pymc_model
    rng = np.random.default_rng(3)
    lp0, lp1 = m0.compile_logp(jacobian=False), m1.compile_logp(jacobian=False)
    for _ in range(3):
        point = {k: rng.normal(size=np.shape(v)) * 0.7 for k, v in m0.initial_point().items()}
        assert set(point) == set(m1.initial_point())
        ar = point["ar"]
        assert lp1(point) - lp0(point) == pytest.approx(
            stats.norm.logpdf(ar, 0, 0.5).sum(), rel=1e-9)


def test_cosy_prior_is_applied():
    m = mf.Model("y ~ x + cosy(time, g)", _autocor_data(),
                 priors=[mf.prior("beta(2, 2)", class_="cosy")]).pymc_model
    for rho in (0.1, 0.45, 0.9):
        assert _prior_logp(m, "cosy", rho) == pytest.approx(stats.beta.logpdf(rho, 2, 2),
                                                            rel=1e-9)


def test_rho_prior_of_glmmtmb_structures(covdata):
    f = "y_ar ~ x + ar1(0 + times | group)"
    m = mf.Model(f, covdata)
    assert _rows(m, "rho") == [{"prior": "", "class": "rho", "coef": "", "group": "group",
                                "lb": "-1", "ub": "1", "source": "default"}]
    for r in (-0.5, 0.2, 0.8):            # flat on (-1, 1) = uniform (rel 1e-7: PyMC keeps the bounds in float32)
        assert _prior_logp(m.pymc_model, "rho__" + m.built.blocks[0].key, [r]) == \
            pytest.approx(np.log(0.5), rel=1e-7)
    m = mf.Model(f, covdata, priors=[mf.prior("normal(0, 0.5)", class_="rho", group="group")])
    assert _rows(m, "rho") == [{"prior": "normal(0, 0.5)", "class": "rho", "coef": "",
                                "group": "group", "lb": "-1", "ub": "1", "source": "user"}]
    for r in (-0.5, 0.2, 0.8):            # truncated to (-1, 1): scipy's truncnorm
        assert _prior_logp(m.pymc_model, "rho__" + m.built.blocks[0].key, [r]) == \
            pytest.approx(stats.truncnorm.logpdf(r, -2, 2, 0, 0.5), rel=1e-7)
    cs = mf.Model("y_cs ~ x + cs(0 + times | group)", covdata)     # Q = 4 time points
    assert _rows(cs, "rho")[0]["lb"] == "-0.333333"
    assert _prior_logp(cs.pymc_model, "rho__" + cs.built.blocks[0].key, [0.3]) == \
        pytest.approx(stats.uniform.logpdf(0.3, -1 / 3, 4 / 3), rel=1e-7)


def test_rho_prior_refusals(covdata):
    with pytest.raises(PriorError, match="not supported for toep"):
        mf.Model("y_cs ~ x + toep(0 + times | group)", covdata,
                 priors=[mf.prior("normal(0, 0.5)", class_="rho")]).pymc_model
    with pytest.raises(PriorError, match="reaches outside its range"):
        mf.Model("y_ar ~ x + ar1(0 + times | group)", covdata,
                 priors=[mf.prior("uniform(-2, 1)", class_="rho")]).pymc_model
    with pytest.raises(PriorError, match="does not match any parameter"):
        mf.Model("y_ar ~ x + (1 | group)", covdata,
                 priors=[mf.prior("normal(0, 0.5)", class_="rho")]).pymc_model
