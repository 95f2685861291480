"""Faults (issue 9): sampling problems are surfaced with advice; interrupted saves never leave a
corrupt file; damaged fit files and interrupted CLI runs give one clear error.

Complements tests/test_results.py (Rhat > 1.05 / ESS < 100 wording on hand-made draws),
tests/test_report.py (divergences highlighted in the report) and tests/test_io.py (truncated,
foreign, RuntimeError during the write).
"""

from __future__ import annotations

import json
import os
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _results_helpers import CHAINS, DRAWS, sleepstudy_fit

import mixedformula as mf
from mixedformula.report.diagnostics import checks


def _diagnostics(fit) -> dict:
    s = fit.summary()
    return {c.name: c for c in checks(fit.idata, [*s.random.values(), s.fixed, s.spec_pars,
                                                  s.rescor])}


# -- sampling problems --------------------------------------------------------------------------

def test_real_divergences_are_in_summary_and_report_with_advice():
    """Funnel-prone tiny data (near-constant within groups, so sigma -> 0), conditional engine,
    low target_accept: divergences happen and are reported, not hidden."""
    d = pd.DataFrame({"y": [1.0, 1.02, 0.98, 1.01, 3.0, 2.99, 5.0, 5.01], "g": list("aabbccdd")})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = mf.fit("y ~ 1 + (1 | g)", d, likelihood="conditional", target_accept=0.6,
                     draws=100, tune=100, chains=2, seed=2, progressbar=False)
    s = fit.summary()
    n = int(np.asarray(fit.idata.sample_stats["diverging"]).sum())
    assert n > 0 and s.n_divergent == n
    text = str(s)
    assert f"Warning: There were {n} divergent transitions after warmup." in text
    assert "Increasing target_accept above 0.6 may help" in text
    check = _diagnostics(fit)["Divergent transitions"]
    assert check.status == "bad" and check.value == f"{n} of 200 draws"
    assert "target_accept" in check.advice and "class_='sd'" in check.advice
    assert "likelihood='marginal'" in check.advice


def _shift_one_chain(fit, var: str, by: float):
    post = fit.idata.posterior
    vals = post[var].values.copy()
    vals[0] += by * vals.std()
    post[var].values[:] = vals


def test_rhat_between_1_01_and_1_05_is_flagged_in_the_report():
    """Rhat > 1.01 (Vehtari et al.) is flagged in the report and in the summary; brms' own
    "have not converged" wording stays reserved for Rhat > 1.05."""
    fit = sleepstudy_fit()
    _shift_one_chain(fit, "b_Days", 0.6)
    rhat = fit.summary().fixed.loc["Days", "Rhat"]
    assert 1.01 < rhat <= 1.05
    c = _diagnostics(fit)["Largest Rhat"]
    assert c.status == "warn" and c.value.startswith(f"{rhat:.3f} (")
    warns = fit.summary().warnings
    assert any(w.startswith("Some Rhats are above 1.01") for w in warns)
    assert not any(w.startswith("Parts of the model have not converged") for w in warns)
    assert "more iterations" in c.advice


def test_rhat_above_1_05_and_low_ess_in_summary_and_report():
    fit = sleepstudy_fit()
    _shift_one_chain(fit, "sigma", 8.0)
    s = fit.summary()
    assert any("some Rhats are > 1.05" in w for w in s.warnings)
    assert any("Bulk Effective Samples Size (ESS) is too low" in w for w in s.warnings)
    diag = _diagnostics(fit)
    assert diag["Largest Rhat"].status == "bad"
    assert diag["Smallest Bulk_ESS"].status == "bad"
    assert "run more draws" in diag["Smallest Bulk_ESS"].advice


def test_low_but_not_tiny_ess_is_a_report_warning():
    """ESS between 100 and 400: no brms warning in the summary, a 'warn' in the report."""
    fit = sleepstudy_fit()
    post = fit.idata.posterior
    x = post["b_Intercept"].values
    z = x - x.mean()
    ar = z.copy()
    for t in range(1, DRAWS):                     # AR(1) chains: autocorrelated draws
        ar[:, t] = 0.7 * ar[:, t - 1] + np.sqrt(1 - 0.49) * z[:, t]
    post["b_Intercept"].values[:] = ar + x.mean()
    ess = fit.summary().fixed.loc["Intercept", "Bulk_ESS"]
    assert 100 <= ess < 400
    assert not any("ESS" in w for w in fit.summary().warnings)       # rstan: only below 100
    assert _diagnostics(fit)["Smallest Bulk_ESS"].status == "warn"


@pytest.mark.parametrize("name", ["reached_max_treedepth", "maxdepth_reached"])
def test_max_treedepth_is_flagged_in_the_report(name):
    """pymc calls it reached_max_treedepth, nutpie maxdepth_reached."""
    fit = sleepstudy_fit()
    hit = np.zeros((CHAINS, DRAWS), dtype=bool)
    hit[1, :7] = True
    fit.idata.sample_stats[name] = xr.DataArray(hit, dims=("chain", "draw"))
    c = _diagnostics(fit)["Maximum tree depth reached"]
    assert c.status == "warn" and c.value.startswith("7 of")
    assert "priors" in c.advice


def test_missing_sample_stats_is_said_not_assumed_fine():
    fit = sleepstudy_fit()
    fit.idata = az.InferenceData(posterior=fit.idata.posterior)
    c = _diagnostics(fit)["Divergent transitions"]
    assert c.status == "warn" and c.value == "not recorded"


# -- interrupted and failed saves ---------------------------------------------------------------

@pytest.fixture(scope="module")
def fit():
    return sleepstudy_fit()


def _interrupt_after_half(monkeypatch, good: bytes):
    def write_half_then_ctrl_c(self, filename, *args, **kwargs):
        with open(filename, "wb") as fh:
            fh.write(good[: len(good) // 2])
        raise KeyboardInterrupt
    monkeypatch.setattr(az.InferenceData, "to_netcdf", write_half_then_ctrl_c)


def test_ctrl_c_during_save_keeps_the_previous_file(fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.nc"
    mf.save(fit, path)
    good = path.read_bytes()
    _interrupt_after_half(monkeypatch, good)
    with pytest.raises(KeyboardInterrupt):
        mf.save(sleepstudy_fit(seed=5), path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["fit.nc"]
    assert str(mf.load(path).summary()) == str(fit.summary())


def test_ctrl_c_during_first_save_leaves_nothing(fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.nc"
    mf.save(fit, tmp_path / "other.nc")
    _interrupt_after_half(monkeypatch, (tmp_path / "other.nc").read_bytes())
    with pytest.raises(KeyboardInterrupt):
        mf.save(fit, path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["other.nc"]


def test_ctrl_c_at_the_rename_keeps_the_previous_file(fit, tmp_path, monkeypatch):
    """Interrupted after the temporary file is complete but before it replaces the target."""
    path = tmp_path / "fit.nc"
    mf.save(fit, path)
    good = path.read_bytes()

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        mf.save(sleepstudy_fit(seed=6), path)
    monkeypatch.undo()
    assert path.read_bytes() == good and os.listdir(tmp_path) == ["fit.nc"]


# -- damaged files --------------------------------------------------------------------------------

def _rewrite_meta(src, dst, edit):
    """Copy a saved fit, changing its mixedformula JSON metadata with ``edit(meta)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(src)
        idata.load() if hasattr(idata, "load") else None
        extra = idata["mixedformula"].load()
        text = edit(extra.attrs["mixedformula"])
        extra.attrs["mixedformula"] = text
        groups = {g: idata[g].load() for g in idata.groups() if g != "mixedformula"}
        az.InferenceData(**groups, mixedformula=extra).to_netcdf(str(dst))


@pytest.mark.parametrize("case, match", [
    ("empty", "not a complete netCDF"),
    ("html", "not a complete netCDF"),
    ("bad_json", "metadata are missing or damaged"),
    ("other_format", "is not a mixedformula fit file"),
    ("newer_version", "newer mixedformula"),
    ("directory", "cannot read"),
])
def test_damaged_or_foreign_fit_files(fit, tmp_path, case, match):
    good = tmp_path / "good.nc"
    mf.save(fit, good)
    bad = tmp_path / f"{case}.nc"
    if case == "empty":
        bad.write_bytes(b"")
    elif case == "html":
        bad.write_text("<html><body>404 Not Found</body></html>")
    elif case == "bad_json":
        _rewrite_meta(good, bad, lambda t: t[: len(t) // 2])
    elif case == "other_format":
        _rewrite_meta(good, bad, lambda t: json.dumps({**json.loads(t), "format": "other"}))
    elif case == "newer_version":
        _rewrite_meta(good, bad, lambda t: json.dumps({**json.loads(t), "version": 99}))
    else:
        bad.mkdir()
    with pytest.raises(mf.MixedFormulaError, match=match):
        mf.load(bad)


def test_ctrl_c_during_cli_fit_exits_130_with_one_line(tmp_path, monkeypatch, capsys):
    from mixedformula import cli
    from mixedformula.model import Model
    mf.datasets.load("dyestuff").to_csv(tmp_path / "d.csv", index=False)

    def ctrl_c(self, *args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(Model, "fit", ctrl_c)
    rc = cli.main(["fit", str(tmp_path / "d.csv"), "Yield ~ 1 + (1 | Batch)", "--save",
                   str(tmp_path / "fit.nc")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 130 and err == ["error: interrupted"]
    assert not (tmp_path / "fit.nc").exists()
