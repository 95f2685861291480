"""Reproducibility (issue 9): the same seed gives bit-for-bit identical draws, for both likelihood
engines and both samplers, in this process and in a fresh Python process; different seeds differ.

The fresh process matters: it has a different hash seed and memory layout, and it compiles the
numba code for nutpie afresh (``numba__cache=False``) while this process may load it from
pytensor's cache. That once broke reproducibility with nutpie (numba ``fastmath`` code rounds
differently when loaded from the cache; see docs/reliability.md).

Small on purpose: dyestuff, ``Yield ~ 1 + (1 | Batch)``, 2 chains × (100 warmup + 100 draws).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

COMBOS = [("marginal", "nutpie"), ("marginal", "pymc"), ("conditional", "nutpie"),
          ("conditional", "pymc")]

SCRIPT = textwrap.dedent('''
    import warnings
    import numpy as np
    import mixedformula as mf

    COMBOS = %r

    def run(out, seed=2024):
        data = mf.datasets.load("dyestuff")
        arrays = {}
        for likelihood, sampler in COMBOS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = mf.fit("Yield ~ 1 + (1 | Batch)", data, likelihood=likelihood,
                             sampler=sampler, seed=seed, draws=100, tune=100, chains=2,
                             progressbar=False)
            post = fit.idata.posterior
            for v in post.data_vars:
                arrays[f"{likelihood}/{sampler}/{v}"] = post[v].values
        np.savez(out, **arrays)
''' % (COMBOS,))


def _run_here(out, seed=2024):
    ns: dict = {}
    exec(SCRIPT, ns)  # noqa: S102 - our own fixed script, shared with the subprocess
    ns["run"](out, seed)
    return dict(np.load(out))


@pytest.fixture(scope="module")
def draws(tmp_path_factory):
    d = tmp_path_factory.mktemp("repro")
    here = _run_here(d / "here.npz")
    code = SCRIPT + f"\nrun({str(d / 'there.npz')!r})\n"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    env["PYTHONHASHSEED"] = "random"
    # compile the numba (nutpie) code afresh there while this process may have loaded it from
    # the cache: fresh and cached code must give the same bits (the fastmath bug)
    env["PYTENSOR_FLAGS"] = ",".join(f for f in (env.get("PYTENSOR_FLAGS"), "numba__cache=False")
                                     if f)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=900, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    there = dict(np.load(d / "there.npz"))
    return here, there


def test_every_engine_and_sampler_was_run(draws):
    here, _ = draws
    for likelihood, sampler in COMBOS:
        for v in ("b_Intercept", "sd_Batch__Intercept", "sigma", "r_Batch"):
            assert f"{likelihood}/{sampler}/{v}" in here
    assert here["marginal/nutpie/sigma"].shape == (2, 100)
    assert here["conditional/pymc/r_Batch"].shape == (2, 100, 6, 1)


@pytest.mark.parametrize("likelihood, sampler", COMBOS)
def test_same_seed_same_draws_across_processes(draws, likelihood, sampler):
    here, there = draws
    keys = [k for k in here if k.startswith(f"{likelihood}/{sampler}/")]
    assert keys and set(keys) <= set(there)
    for k in keys:
        assert here[k].dtype == there[k].dtype == np.float64
        # bitwise: compare the raw bytes, not values within a tolerance
        assert here[k].tobytes() == there[k].tobytes(), (
            k, float(np.max(np.abs(here[k] - there[k]))))


def test_chains_are_not_copies_of_each_other(draws):
    here, _ = draws
    for likelihood, sampler in COMBOS:
        s = here[f"{likelihood}/{sampler}/sigma"]
        assert not np.array_equal(s[0], s[1])


def test_samplers_and_engines_give_different_streams(draws):
    """Same seed, different algorithm: no accidental sharing of one stream."""
    here, _ = draws
    sig = [here[f"{lk}/{s}/sigma"] for lk, s in COMBOS]
    for i in range(len(sig)):
        for j in range(i + 1, len(sig)):
            assert not np.array_equal(sig[i], sig[j])


@pytest.mark.parametrize("likelihood, sampler", [("marginal", "nutpie"),
                                                 ("conditional", "pymc")])
def test_different_seed_different_draws(draws, likelihood, sampler):
    import mixedformula as mf
    here, _ = draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("Yield ~ 1 + (1 | Batch)", mf.datasets.load("dyestuff"),
                     likelihood=likelihood, sampler=sampler, seed=2025, draws=100, tune=100,
                     chains=2, progressbar=False)
    for v in ("sigma", "b_Intercept", "r_Batch"):
        other = fit.idata.posterior[v].values
        assert not np.array_equal(other, here[f"{likelihood}/{sampler}/{v}"])
        assert np.all(np.isfinite(other))
    assert fit.info["seed"] == 2025
