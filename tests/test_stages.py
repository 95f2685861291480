"""The fitting stages (specify → build → sample → assemble, mixedformula/model.py) each on its
own; the typed Built and FitInfo; the version-checked nutpie shim."""

import json
import warnings

import numpy as np
import pytest

import mixedformula as mf
from mixedformula.backends.pymc import nutpie_shim
from mixedformula.design.crossprod import MarginalStats
from mixedformula.model import Run, Specification, assemble, build, sample, specify
from mixedformula.priors import PriorSet
from mixedformula.results.info import FitInfo

FORMULA = "Yield ~ 1 + (1 | Batch)"


def test_specify_gives_design_and_engine(dyestuff):
    s = specify(FORMULA, dyestuff)
    assert isinstance(s, Specification)
    assert s.design.nobs == 30 and [t.name for t in s.design.terms] == ["Batch"]
    assert (s.engine.likelihood, s.engine.statistics) == ("marginal", "block")
    assert s.family.name == "gaussian" and s.residual_by is None
    c = specify(FORMULA, dyestuff, likelihood="conditional")
    assert (c.engine.likelihood, c.engine.stats) == ("conditional", None)
    with pytest.raises(mf.MixedFormulaError, match="likelihood must be one of"):
        specify(FORMULA, dyestuff, likelihood="exact")


def test_build_gives_a_typed_built(dyestuff):
    m = build(specify(FORMULA, dyestuff), PriorSet([]))
    assert m.likelihood == "marginal" and isinstance(m.stats, MarginalStats)
    assert m.parametrization == {} and m.residual_by is None and not m.multivariate_marginal
    assert m.extras == {"residual_by": None, "stats": m.stats}
    assert [b.key for b in m.blocks] == ["Batch"]
    c = build(specify(FORMULA, dyestuff, likelihood="conditional"), PriorSet([]))
    assert c.stats is None
    # dyestuff's Batch: (ŝ²/σ̂²) · 5 rows ≈ 3.6 < 5 (sd 42, σ 49.5 by lme4)
    assert c.parametrization["Batch"][0] == "noncentred"
    assert "<" in c.parametrization["Batch"][1]
    assert c.extras["parametrization"] is c.parametrization
    assert "z__Batch" in [v.name for v in c.model.free_RVs]


def test_sample_then_assemble_is_model_fit(dyestuff):
    """The stages run by hand give the draws Model.fit gives with the same seed."""
    kw = dict(draws=60, tune=60, chains=2, seed=17, sampler="pymc", progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mf.Model(FORMULA, dyestuff)
        whole = model.fit(**kw)
        raw, run = sample(model.built, **kw)
    assert isinstance(run, Run)
    assert (run.sampler, run.backend, run.draws, run.tune, run.chains, run.seed) == \
        ("pymc", None, 60, 60, 2, 17)
    assert "_beta" in raw.posterior and "b_Intercept" not in raw.posterior
    fit = assemble(model.built, raw, run, model.formula, model.engine_note, data=dyestuff)
    for name in ("b_Intercept", "sd_Batch__Intercept", "sigma", "r_Batch"):
        np.testing.assert_array_equal(fit.idata.posterior[name].values,
                                      whole.idata.posterior[name].values)
    assert isinstance(fit.info, FitInfo)
    assert {k: v for k, v in fit.info.items() if k != "seconds"} == \
        {k: v for k, v in whole.info.items() if k != "seconds"}


def test_fit_info_is_typed_and_reads_like_the_dict():
    info = FitInfo.record(sampler="nutpie", draws=10, backend="c", tune=5, chains=2, seed=1,
                          seconds=0.5, engine_note="", parametrization={},
                          likelihood="marginal", formula="y ~ 1 + (1 | g)", family="gaussian",
                          link="identity", nobs=30, target_accept=0.8, rescor_by=None)
    assert info.sampler == "nutpie" and info["draws"] == 10 and info.get("tune", 0) == 5
    assert list(info)[:3] == ["sampler", "draws", "backend"]
    assert json.loads(json.dumps(info)) == dict(info)
    info.setdefault("rescor_by", "h")          # present as None: unchanged, as for a dict
    assert info.rescor_by is None
    old = FitInfo.of({"sampler": "pymc", "data_name": "d.csv"})   # a partial stored record
    assert old.draws is None and "tune" not in old and old["data_name"] == "d.csv"
    src = {"seed": 3}
    assert FitInfo.of(src) is not src and FitInfo.of(None) == {}


def test_nutpie_shim_names_installed_and_supported_versions(monkeypatch):
    import nutpie
    assert nutpie_shim.supported("nutpie", nutpie.__version__)
    assert nutpie_shim.supported("nutpie", "0.16.8")
    assert not nutpie_shim.supported("nutpie", "0.16.7")
    assert not nutpie_shim.supported("nutpie", "0.17.0")
    assert nutpie_shim.supported("pytensor", "2.38.3")
    assert not nutpie_shim.supported("pytensor", "2.39.0rc1")
    monkeypatch.setattr(nutpie_shim, "SUPPORTED", {"nutpie": ("0.1", "0.2")})
    monkeypatch.setattr(nutpie_shim, "_CHECKED", set())
    with pytest.raises(mf.MixedFormulaError) as e:
        nutpie_shim.make_functions(None)
    msg = str(e.value)
    assert f"nutpie {nutpie.__version__} is installed" in msg
    assert "nutpie >= 0.1, < 0.2" in msg and "sampler='pymc'" in msg
