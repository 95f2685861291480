"""The convergence warning at the end of ``fit()`` (issue 17 item 11): R-hat > 1.01,
divergences, bulk / tail ESS below 100 per chain, naming the parameters.

Deterministic: the checking function gets hand-made draws whose problems are there by
construction; the end-to-end fit is too short to reach the ESS threshold for any seed."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pytest
import xarray as xr

import mixedformula as mf
from mixedformula.results.convergence import convergence_problems, warn_if_not_converged

C, D = 4, 1000


def _idata(n_div=0, **over):
    """iid N(0, 1) draws for b_x and sigma (Rhat − 1 has sd ≈ 3e-4 at 4 × 1000 iid draws and
    ESS ≈ 4000, so no threshold is near for any seed), r_site a vector variable, then overrides."""
    rng = np.random.default_rng(0)
    post = {"b_x": rng.normal(size=(C, D)), "sigma": np.abs(rng.normal(size=(C, D))) + 1}
    post.update(over)
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()})
    ds["r_site"] = (("chain", "draw", "site"), rng.normal(size=(C, D, 3)))
    div = np.zeros((C, D), dtype=bool)
    div.ravel()[:n_div] = True
    return az.InferenceData(posterior=ds, sample_stats=xr.Dataset(
        {"diverging": (("chain", "draw"), div)}))


def test_clean_draws_have_no_problems():
    assert convergence_problems(_idata()) == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_if_not_converged(_idata()) == []


def test_each_problem_is_named():
    rng = np.random.default_rng(1)
    stuck = rng.normal(size=(C, D))
    stuck[0] += 5.0                                   # one chain elsewhere: Rhat ≫ 1.01
    walk = np.cumsum(rng.normal(size=(C, D)), axis=1)  # random walk: ESS ≪ 400
    probs = convergence_problems(_idata(n_div=7, sd_g__Intercept=stuck, cor_g__a__b=walk))
    text = "; ".join(probs)
    rhat = next(p for p in probs if p.startswith("R-hat above 1.01 for "))
    assert "sd_g__Intercept" in rhat and "b_x" not in rhat and "sigma" not in rhat
    bulk = next(p for p in probs if p.startswith("bulk ESS below 400 (100 per chain) for "))
    assert "cor_g__a__b" in bulk and "b_x" not in bulk
    assert any(p.startswith("tail ESS below 400") for p in probs)
    assert "7 divergent transitions after warmup" in text
    assert "r_site" not in text                          # vector variables are not listed
    with pytest.warns(mf.ConvergenceWarning, match="sd_g__Intercept"):
        warn_if_not_converged(_idata(n_div=7, sd_g__Intercept=stuck))


def test_divergences_alone_warn():
    assert convergence_problems(_idata(n_div=1)) == ["1 divergent transitions after warmup"]


def test_many_parameters_are_shortened():
    rng = np.random.default_rng(2)
    many = {f"b_x{k}": np.cumsum(rng.normal(size=(C, D)), axis=1) for k in range(7)}
    bulk = next(p for p in convergence_problems(_idata(**many)) if p.startswith("bulk"))
    assert bulk.endswith("and 3 more")


def test_short_fit_warns_at_the_end_of_fit():
    """End to end: 2 chains × 30 draws cannot reach a bulk ESS of 200 (arviz's ESS is at most
    S·log10(S) ≈ 107 for S = 60), so fit() warns for any seed; a Fit is still returned."""
    dy = mf.datasets.load("dyestuff")
    with pytest.warns(mf.ConvergenceWarning, match=r"bulk ESS below 200 \(100 per chain\)"):
        fit = mf.fit("Yield ~ 1 + (1 | Batch)", dy, chains=2, draws=30, tune=30, seed=4,
                     progressbar=False)
    assert fit.idata.posterior.sizes["draw"] == 30
