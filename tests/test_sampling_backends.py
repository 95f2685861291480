"""nutpie backends, the in-process cache of compiled models and the disk cache of compiled
functions (issue 7).

The cache must (a) reuse a compiled model for a second fit of the same structure, (b) feed it
the *new* data — a cached re-fit on other data gives bit for bit the draws of a fresh compile on
that data — and (c) never reuse a model whose graph differs (other priors, other levels).
brms' data-dependent default priors are shared data, not graph constants (issue 21), so other
data of the same structure (other y, other row counts) reuse the compiled model.  Both backends sample the same
posterior: checked against lme4's REML estimates for dyestuff within Monte-Carlo error.

The disk cache must give bit for bit the draws of a fresh compile, feed the loaded functions
the current data, survive a corrupt file, and key structures the same way in every process
(Python's ``hash`` is salted per process, so a key built from it would never match).

Small on purpose: dyestuff (30 rows), 2 chains × (150 + 150).  Every test here uses its own
empty disk-cache directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.backends.pymc import sampling
from mixedformula.errors import MixedFormulaError

FORMULA = "Yield ~ 1 + (1 | Batch)"
KW = dict(draws=150, tune=150, chains=2, seed=11, progressbar=False)


def _fit(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mf.fit(FORMULA, data, **{**KW, **kw})


def _draws(fit):
    post = fit.idata.posterior
    return {v: post[v].values for v in post.data_vars}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture(autouse=True)
def disk_cache(tmp_path, monkeypatch):
    folder = tmp_path / "compiled"
    monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", str(folder))
    sampling.clear_cache()
    return folder


@pytest.fixture(scope="module")
def dyestuff():
    return mf.datasets.load("dyestuff")


@pytest.fixture(scope="module")
def other(dyestuff):
    """Same structure, other response: Yield permuted across rows (median and MAD of y, and
    with them brms' default priors, stay the same; the marginal statistics change)."""
    d = dyestuff.copy()
    d["Yield"] = np.random.default_rng(5).permutation(d["Yield"].to_numpy())
    return d


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_marginal_refit_reuses_compiled_model_with_new_data(dyestuff, other, backend,
                                                           monkeypatch):
    monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")
    sampling.clear_cache()
    before = dict(sampling.CACHE_STATS)
    first = _fit(dyestuff, backend=backend)
    cached = _fit(other, backend=backend)
    assert sampling.CACHE_STATS["compiled"] - before["compiled"] == 1
    assert sampling.CACHE_STATS["reused"] - before["reused"] == 1
    assert cached.info["backend"] == backend
    sampling.clear_cache()
    fresh = _fit(other, backend=backend)
    assert sampling.CACHE_STATS["compiled"] - before["compiled"] == 2
    # the cached model really read the new statistics: identical draws to a fresh compile
    assert _same(_draws(cached), _draws(fresh))
    assert not np.array_equal(first.idata.posterior["sd_Batch__Intercept"].values,
                              cached.idata.posterior["sd_Batch__Intercept"].values)


def test_conditional_data_change_is_a_new_structure(dyestuff, other):
    """Conditional-engine rows and brms' data-dependent default priors are shared data
    (issue 21): other rows, other default priors (median/MAD of y shifted and scaled) and
    fewer rows are the same structure, for both engines; another prior distribution or
    another number of levels is not."""
    a = mf.Model(FORMULA, dyestuff, likelihood="conditional").pymc_model
    a2 = mf.Model(FORMULA, dyestuff, likelihood="conditional").pymc_model
    b = mf.Model(FORMULA, other, likelihood="conditional").pymc_model
    shifted = dyestuff.assign(Yield=dyestuff["Yield"] * 3.0 + 100.0).iloc[1:]
    c = mf.Model(FORMULA, shifted, likelihood="conditional").pymc_model
    assert sampling.structure_key(a)[0] == sampling.structure_key(a2)[0]
    assert sampling.structure_key(a)[0] == sampling.structure_key(b)[0]
    assert sampling.structure_key(a)[0] == sampling.structure_key(c)[0]
    fewer_levels = dyestuff[dyestuff["Batch"] != dyestuff["Batch"].iloc[0]]
    d = mf.Model(FORMULA, fewer_levels, likelihood="conditional").pymc_model
    assert sampling.structure_key(a)[0] != sampling.structure_key(d)[0]
    # marginal engine: statistics and default priors are shared variables
    m1 = mf.Model(FORMULA, dyestuff).pymc_model
    m2 = mf.Model(FORMULA, other).pymc_model
    assert sampling.structure_key(m1)[0] == sampling.structure_key(m2)[0]
    assert (sampling.structure_key(m1)[0]
            == sampling.structure_key(mf.Model(FORMULA, shifted).pymc_model)[0])
    # a different prior distribution is a different graph
    m3 = mf.Model(FORMULA, dyestuff, priors=[mf.prior("normal(0, 3)", "sigma")]).pymc_model
    assert sampling.structure_key(m1)[0] != sampling.structure_key(m3)[0]


@pytest.mark.parametrize("likelihood", ["marginal", "conditional"])
def test_c_backend_matches_lme4(dyestuff, likelihood):
    """lme4 REML for dyestuff: (Intercept) 1527.5 (SE 19.38).  With a flat-ish prior the
    posterior mean of b_Intercept is within 4 posterior-sd/√ESS of 1527.5 plus the
    REML-vs-posterior gap (< 0.2 posterior sd)."""
    fit = _fit(dyestuff, likelihood=likelihood, backend="c", draws=500, tune=500)
    post = fit.idata.posterior["b_Intercept"].values.ravel()
    import arviz as az
    ess = float(az.ess(fit.idata.posterior, var_names=["b_Intercept"])["b_Intercept"])
    assert ess > 100
    sd = post.std()
    assert abs(post.mean() - 1527.5) < 0.2 * sd + 4 * sd / np.sqrt(ess)


def test_choose_backend_rule(dyestuff):
    sleep = mf.Model("Reaction ~ Days + (Days | Subject)", mf.datasets.load("sleepstudy"))
    size = sampling.evaluation_size(sleep.design, "marginal")
    assert size == 18 * 2 ** 2                       # J·q², independent of N
    # sleepstudy 4 × (1000 + 1000), the README's example (≈ 17 s of C evaluations): numba,
    # whose cold compile costs what C's does and whose warm runs and sampling are faster
    assert sampling.choose_backend("auto", "marginal", size, 1000, 1000, 4) == "numba"
    # a short marginal fit (2 × (500 + 500), ≈ 2 s): C
    assert sampling.choose_backend("auto", "marginal", size, 500, 500, 2) == "c"
    # case 3, 20 000 bernoulli rows, 4 × (1000 + 1000): numba
    assert sampling.choose_backend("auto", "conditional", 20_000, 1000, 1000, 4) == "numba"
    # a short conditional fit of a small data set: C
    assert sampling.choose_backend("auto", "conditional", 30, 300, 300, 2) == "c"
    assert sampling.choose_backend("numba", "marginal", 30, 10, 10, 1) == "numba"
    # the rule has no input from the caches (issue 17 item 10): nothing but size and settings
    import inspect
    assert list(inspect.signature(sampling.choose_backend).parameters) == [
        "backend", "likelihood", "size", "draws", "tune", "chains"]
    with pytest.raises(MixedFormulaError, match="backend must be one of"):
        sampling.choose_backend("gpu", "marginal", 30, 10, 10, 1)
    with pytest.raises(MixedFormulaError, match="backend must be one of"):
        _fit(dyestuff, backend="gpu")


@pytest.mark.parametrize("backend", ["c", "numba"])
def test_disk_cache_gives_the_draws_of_a_fresh_compile(dyestuff, other, backend, disk_cache,
                                                       monkeypatch):
    """Compile (writes the disk cache), forget the in-process cache, fit again: the functions
    come from disk and the draws are bit for bit those of the compiled run — also on other
    data of the same structure, whose statistics the loaded functions must read."""
    first = _fit(dyestuff, backend=backend)
    assert len(list(disk_cache.glob(f"{backend}-*.pkl"))) == 1
    before = dict(sampling.CACHE_STATS)
    sampling.clear_cache()
    again = _fit(dyestuff, backend=backend)
    sampling.clear_cache()
    loaded_other = _fit(other, backend=backend)
    assert sampling.CACHE_STATS["loaded"] - before["loaded"] == 2
    # numba: the graph functions came from PyTensor's numba cache, no PyTensor Function rebuilt
    assert (sampling.CACHE_STATS["loaded_without_graph"] - before["loaded_without_graph"]
            == (2 if backend == "numba" else 0))
    assert sampling.CACHE_STATS["compiled"] == before["compiled"]
    assert _same(_draws(first), _draws(again))
    sampling.clear_cache()
    monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")   # off: compile afresh
    fresh_other = _fit(other, backend=backend)
    assert sampling.CACHE_STATS["compiled"] == before["compiled"] + 1
    assert _same(_draws(loaded_other), _draws(fresh_other))
    assert not _same(_draws(first), _draws(loaded_other))


def test_corrupt_disk_cache_is_recompiled(dyestuff, disk_cache):
    first = _fit(dyestuff, backend="c")
    [path] = disk_cache.glob("c-*.pkl")
    path.write_bytes(path.read_bytes()[:1000])              # truncated
    sampling.clear_cache()
    before = dict(sampling.CACHE_STATS)
    again = _fit(dyestuff, backend="c")
    assert sampling.CACHE_STATS["compiled"] == before["compiled"] + 1
    assert _same(_draws(first), _draws(again))
    assert path.stat().st_size > 1000                       # rewritten whole


def test_disk_cache_is_bounded(dyestuff, disk_cache, monkeypatch):
    """Pickles above DISK_CACHE_MAX_BYTES are not written; the directory keeps the
    DISK_CACHE_MAX_FILES most recently used files."""
    monkeypatch.setattr(sampling, "DISK_CACHE_MAX_BYTES", 10)
    _fit(dyestuff, backend="c")
    assert list(disk_cache.glob("*")) == []
    monkeypatch.setattr(sampling, "DISK_CACHE_MAX_BYTES", 2**30)
    monkeypatch.setattr(sampling, "DISK_CACHE_MAX_FILES", 1)
    sampling.clear_cache()                                  # else served from memory
    _fit(dyestuff, backend="c")
    [first] = disk_cache.glob("*.pkl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mf.fit("Yield ~ 1 + (1 || Batch)", dyestuff, **{**KW, "backend": "c",
                                                         "likelihood": "conditional"})
    [second] = disk_cache.glob("*.pkl")
    assert second != first and not list(disk_cache.glob("*.tmp"))


def test_auto_backend_and_draws_do_not_depend_on_the_cache(disk_cache, monkeypatch):
    """Issue 17 item 10: the same seed gave other draws once the cache was warm (``auto`` took
    C on a cold cache and numba once C's functions were on disk).  sleepstudy at 2 × (500 + 700)
    predicts ≈ 5.1 s of C sampling, just above the C limit (5 s): numba.  Cold cache, then warm
    (in-process cache cleared: functions loaded from disk), then the disk cache turned off: one
    backend, bit-for-bit the same draws."""
    sleep = mf.datasets.load("sleepstudy")
    kw = {**KW, "draws": 700, "tune": 500, "seed": 3}
    fits = []
    for setting in (str(disk_cache), str(disk_cache), "0"):
        monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", setting)
        sampling.clear_cache()
        model = mf.Model("Reaction ~ Days + (Days | Subject)", sleep)
        on_disk = sampling.disk_cached(model.pymc_model)
        assert on_disk == (frozenset() if not fits else frozenset({"numba"})
                           if setting != "0" else frozenset())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(model.fit(**kw))
    assert [f.info["backend"] for f in fits] == ["numba", "numba", "numba"]
    assert _same(_draws(fits[0]), _draws(fits[1]))
    assert _same(_draws(fits[0]), _draws(fits[2]))


def test_structure_key_is_the_same_in_another_process(dyestuff):
    """The disk cache is keyed by the structure digest: it must not depend on per-process
    state (salted string hashes, object ids)."""
    code = ("import mixedformula as mf; from mixedformula.backends.pymc import sampling; "
            "m = mf.Model('Reaction ~ Days + (Days | Subject)', mf.datasets.load('sleepstudy'));"
            "print(sampling.structure_key(m.pymc_model)[0])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout.strip().splitlines()[-1]
    m = mf.Model("Reaction ~ Days + (Days | Subject)", mf.datasets.load("sleepstudy"))
    key = sampling.structure_key(m.pymc_model)[0]
    assert out == key
    assert not key.startswith("volatile-")


def test_initial_points_are_support_points_jittered(dyestuff):
    """nutpie starts each chain at PyMC's support point (transformed space) plus U(-1, 1)
    jitter, seeded by the chain: the cached support point equals PyMC's own initial point."""
    model = mf.Model("Reaction ~ Days + (Days | Subject)",
                     mf.datasets.load("sleepstudy")).pymc_model
    compiled = sampling.compiled_model(model, "c")
    names = [v.name for v in model.value_vars]
    start = model.initial_point()
    expected = np.concatenate([np.ravel(start[n]) for n in names])
    shape_info = sampling._CACHE[("c", sampling._structure(model)[0])][1]
    x0 = sampling._support_point(model, shape_info)
    np.testing.assert_array_equal(x0, expected)
    a, b = compiled._make_initial_points(7), compiled._make_initial_points(7)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(a - x0) <= 1.0) and not np.allclose(a, x0)
    assert not np.array_equal(a, compiled._make_initial_points(8))



def test_numba_functions_missing_from_numba_cache_come_from_the_pickle(dyestuff, disk_cache,
                                                                       monkeypatch):
    """When PyTensor's numba cache no longer holds the compiled graph (cleared, other machine),
    the disk entry falls back to its pickled PyTensor Functions: same draws, nothing compiled
    by us."""
    from mixedformula.backends.pymc import c_callbacks
    first = _fit(dyestuff, backend="numba")
    sampling.clear_cache()
    before = dict(sampling.CACHE_STATS)
    monkeypatch.setattr(c_callbacks.JitFunction, "from_spec", classmethod(lambda cls, s: None))
    again = _fit(dyestuff, backend="numba")
    assert sampling.CACHE_STATS["loaded"] - before["loaded"] == 1
    assert sampling.CACHE_STATS["loaded_without_graph"] == before["loaded_without_graph"]
    assert sampling.CACHE_STATS["compiled"] == before["compiled"]
    assert _same(_draws(first), _draws(again))


def test_conditional_refits_compile_once(monkeypatch):
    """Issue 21: the conditional engine's rows (y, X, group codes and columns) are shared data,
    and their number is not part of the structure key.  20 simulated bernoulli data sets of
    one structure: one compile, 19 re-uses; each re-fit gives bit for bit the draws of a fresh
    compile on that data set (checked for three of them); fewer rows (all levels kept) and
    ``fit.update(newdata=...)`` re-use the compiled model too."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=96),
                       "g": np.repeat([f"s{j:02d}" for j in range(12)], 8)})
    truth = {"b_Intercept": -0.3, "b_x": 0.7, "sd_g__Intercept": 0.8}
    formula = "y ~ x + (1 | g)"
    kw = dict(family="bernoulli", parametrization="noncentred", draws=60, tune=60, chains=2,
              seed=3, progressbar=False, backend="c")
    sets = [mf.simulate(formula, df, truth, family="bernoulli", seed=k) for k in range(20)]
    before = dict(sampling.CACHE_STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [mf.fit(formula, d, **kw) for d in sets]
        assert sampling.CACHE_STATS["compiled"] - before["compiled"] == 1
        assert sampling.CACHE_STATS["reused"] - before["reused"] == 19
        fewer = sets[4].drop(index=sets[4].index[::8])        # one row less per level
        again = fits[0].update(newdata=fewer)
        assert again.nobs == 84
        assert sampling.CACHE_STATS["compiled"] - before["compiled"] == 1
        monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")
        for k in (1, 10, 19):
            sampling.clear_cache()
            fresh = mf.fit(formula, sets[k], **kw)
            assert _same(_draws(fits[k]), _draws(fresh)), k
        sampling.clear_cache()
        assert _same(_draws(again), _draws(mf.fit(formula, fewer, **kw)))
    assert not _same(_draws(fits[1]), _draws(fits[10]))


@pytest.mark.parametrize("family", ["poisson", "zero_inflated_poisson"])
def test_count_refits_compile_once_with_their_own_log_factorial(family, monkeypatch):
    """The count families' −log y! is shared data computed when the model is built
    (``Family.y_constant``, ``data__y_const``): re-fits on other counts of the same structure
    compile once and give bit for bit the draws of a fresh compile, and the sampler's
    log-density (sample statistic) too, so the swapped constant is the new data's."""
    from scipy.special import gammaln
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=60),
                       "g": np.repeat([f"s{j:02d}" for j in range(6)], 10)})
    truth = {"b_Intercept": 0.8, "b_x": 0.4, "sd_g__Intercept": 0.5}
    formula = "y ~ x + (1 | g)"
    kw = dict(family=family, parametrization="noncentred", draws=40, tune=40, chains=1,
              seed=5, progressbar=False, backend="c")
    sets = [mf.simulate(formula, df, truth, family="poisson", seed=k) for k in range(3)]
    # a stale −log y! would shift the sampler's log-density by the difference of Σ log y!
    _check_refits_compile_once(formula, sets, kw, monkeypatch,
                               lambda d: gammaln(d["y"] + 1).sum())


def _check_refits_compile_once(formula, sets, kw, monkeypatch, y_term):
    """Fits of ``sets`` (one structure) compile once and reuse it twice; the last re-fit gives
    bit for bit the draws and the sampler's absolute log-density of a fresh fit in a fresh
    cache, where ``y_term`` (the data-only term of the log-density, swapped as shared data)
    differs between the first and last data set, so a stale one would show."""
    before = dict(sampling.CACHE_STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [mf.fit(formula, d, **kw) for d in sets]
        assert sampling.CACHE_STATS["compiled"] - before["compiled"] == 1
        assert sampling.CACHE_STATS["reused"] - before["reused"] == 2
        monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")
        sampling.clear_cache()
        fresh = mf.fit(formula, sets[2], **kw)
        assert _same(_draws(fits[2]), _draws(fresh))
        assert not np.isclose(y_term(sets[0]), y_term(sets[2]))
        lp = [n for n in ("lp", "logp") if n in fresh.idata.sample_stats][0]
        assert np.array_equal(fits[2].idata.sample_stats[lp].values,
                              fresh.idata.sample_stats[lp].values)


@pytest.mark.parametrize("likelihood", ["conditional", "marginal"])
def test_gaussian_refits_with_other_default_priors_compile_once(likelihood, monkeypatch):
    """Issue 21: brms' default priors depend on the data (Intercept student_t(3, median(y),
    mad(y)), sd and sigma student_t(3, 0, mad(y))); they are shared data, so 5 simulated
    gaussian data sets of one structure (12 levels; 6–10 rows per level; y scales 1 to 81, so
    every prior constant differs) compile once, and each re-fit gives bit for bit the draws of
    a fresh fit in a fresh cache (its own priors, its own support point)."""
    rng = np.random.default_rng(2)
    sets = []
    for k in range(5):
        m = 6 + k
        df = pd.DataFrame({"x": rng.normal(size=12 * m),
                           "g": np.repeat([f"s{j:02d}" for j in range(12)], m)})
        truth = {"b_Intercept": 10.0 ** k, "b_x": 0.7 * 3 ** k,
                 "sd_g__Intercept": 0.8 * 3 ** k, "sigma": 3.0 ** k}
        sets.append(mf.simulate("y ~ x + (1 | g)", df, truth, seed=k))
    # one parametrization for all: "auto" decides per data set from its information about
    # the levels (these sets straddle the threshold), and each of its two structures would
    # compile once
    kw = dict(likelihood=likelihood, draws=60, tune=60, chains=2, seed=3, progressbar=False,
              backend="c", parametrization="noncentred")
    monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")
    sampling.clear_cache()
    before = dict(sampling.CACHE_STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [mf.fit("y ~ x + (1 | g)", d, **kw) for d in sets]
        assert sampling.CACHE_STATS["compiled"] - before["compiled"] == 1
        assert sampling.CACHE_STATS["reused"] - before["reused"] == 4
        scales = {str(f.prior_summary().query("`class` == 'sigma'")["prior"].iloc[0])
                  for f in fits}
        assert len(scales) == 5                 # the default priors differ between data sets
        for k, d in enumerate(sets):
            sampling.clear_cache()
            fresh = mf.fit("y ~ x + (1 | g)", d, **kw)
            assert _same(_draws(fits[k]), _draws(fresh)), k


def test_centred_refits_start_from_their_own_support_point(monkeypatch, tmp_path):
    """Centred group effects have the fixed effects (the data's column means) in their prior,
    so the support point where nutpie starts depends on the data: a re-fit on other data
    recomputes it (the same draws as a fresh compile on that data), a re-fit on the same data
    — in this process or from the disk cache — reuses the stored one (no recompile of PyMC's
    initial-point function) and gives the same draws."""
    monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", str(tmp_path))
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"x": rng.normal(size=96),
                       "g": np.repeat([f"s{j:02d}" for j in range(12)], 8)})
    truth = {"b_Intercept": -0.3, "b_x": 0.7, "sd_g__Intercept": 0.8}
    formula = "y ~ x + (1 | g)"
    kw = dict(family="bernoulli", parametrization="centred", draws=40, tune=40, chains=2,
              seed=5, progressbar=False, backend="c")
    sets = [mf.simulate(formula, df.assign(x=df.x + k), truth, family="bernoulli", seed=k)
            for k in range(2)]
    calls = []
    real = sampling._support_point
    monkeypatch.setattr(sampling, "_support_point",
                        lambda *a: calls.append(1) or real(*a))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampling.clear_cache()
        first = mf.fit(formula, sets[0], **kw)
        assert len(calls) == 1                       # computed once, at the compile
        same = mf.fit(formula, sets[0], **kw)        # in-process cache, same data
        assert len(calls) == 1 and _same(_draws(first), _draws(same))
        sampling.clear_cache()
        loaded = mf.fit(formula, sets[0], **kw)      # disk cache, same data
        assert len(calls) == 1 and _same(_draws(first), _draws(loaded))
        other = mf.fit(formula, sets[1], **kw)       # other data: its own support point
        assert len(calls) == 2
        monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")
        sampling.clear_cache()
        fresh = mf.fit(formula, sets[1], **kw)
        assert _same(_draws(other), _draws(fresh))


def test_prior_argument_checks_are_dropped_and_bad_scales_refused(dyestuff):
    """Prior arguments as shared data kept PyMC's ``sigma > 0`` checks in the compiled graph
    (with constants PyTensor folded them): the sampler's rewrite removes the checks that read
    only prior arguments, so ``priors.pymc_dist`` must refuse a non-positive scale itself."""
    from mixedformula.errors import PriorError
    model = mf.Model(FORMULA, dyestuff).pymc_model
    logp_fn = sampling._compile_functions(model, "c")[1]
    ops = [type(n.op).__name__ for n in logp_fn.maker.fgraph.apply_nodes]
    assert "CheckParameterValue" not in ops
    for spec in ("normal(0, -1)", "student_t(3, 0, 0)"):
        with pytest.raises(PriorError, match="must be positive"):
            _ = mf.Model(FORMULA, dyestuff, priors=[mf.prior(spec, "sigma")]).pymc_model


def test_support_point_function_compiles_once_per_structure(dyestuff, monkeypatch):
    """Issue 21: a re-fit whose priors read other data (brms' default Intercept prior
    student_t(3, median(y), mad(y))) evaluates the support point again without compiling
    PyMC's initial-point function again.  Reference by hand: the Intercept's support point is
    its prior's location, median(y), for each data set (y and 3y + 7)."""
    calls = []
    compile_once = sampling._compile_support_point
    monkeypatch.setattr(sampling, "_compile_support_point",
                        lambda *a: calls.append(1) or compile_once(*a))
    sampling.clear_cache()
    for scale, shift in ((1.0, 0.0), (3.0, 7.0)):
        d = dyestuff.assign(Yield=dyestuff["Yield"] * scale + shift)
        model = mf.Model(FORMULA, d, likelihood="marginal").built.model
        names = [model.rvs_to_values[v].name for v in model.free_RVs]
        shapes = [model.rvs_to_values[v].type.shape for v in model.free_RVs]
        x0 = sampling._support_point(model, (names, None, shapes))
        assert x0[names.index("Intercept")] == pytest.approx(np.median(d["Yield"]), rel=1e-12)
    assert len(calls) == 1


@pytest.mark.parametrize("family", ["binomial", "zero_inflated_binomial"])
def test_binomial_refits_compile_once_with_their_own_trials(family, monkeypatch):
    """trials(n) and log C(n, y) are shared data (``data__trials``, ``data__y_const``), not
    graph constants: re-fits of one structure on other counts and other trials compile once,
    and give bit for bit the draws (and the sampler's absolute log-density) of a fresh fit."""
    from scipy.special import gammaln
    rng = np.random.default_rng(3)
    formula = "y | trials(n) ~ x + (1 | g)"
    kw = dict(family=family, parametrization="noncentred", draws=40, tune=40, chains=1,
              seed=5, progressbar=False, backend="c")
    sets = []
    for k in range(3):
        g = np.repeat(np.arange(6), 10)
        x = rng.normal(size=60)
        n = rng.integers(3, 20, size=60)
        p = 1 / (1 + np.exp(-(0.2 + 0.5 * x + 0.4 * rng.normal(size=6)[g])))
        sets.append(pd.DataFrame({"y": rng.binomial(n, p), "n": n, "x": x,
                                  "g": [f"s{j}" for j in g]}))
    # a stale log C(n, y) would shift the sampler's log-density
    _check_refits_compile_once(
        formula, sets, kw, monkeypatch,
        lambda d: (gammaln(d["n"] + 1) - gammaln(d["y"] + 1) - gammaln(d["n"] - d["y"] + 1)).sum())
