"""mf.save / mf.load: exact round trip, atomic writes, clear errors on bad files."""

from __future__ import annotations

import os
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from _results_helpers import CHAINS, DRAWS, sample_stats, scalar, sleepstudy_fit

import mixedformula as mf
from mixedformula.families import get_family
from mixedformula.priors import PriorSet
from mixedformula.results import Fit


@pytest.fixture(scope="module")
def fit():
    return sleepstudy_fit(n_divergent=2)


def _assert_same_groups(a, b):
    assert set(a.groups()) == set(b.groups())
    for g in a.groups():
        da, db = a[g], b[g]
        assert list(da.data_vars) == list(db.data_vars)
        for v in da.data_vars:
            np.testing.assert_array_equal(da[v].values, db[v].values)
            assert da[v].dims == db[v].dims
            for c in da[v].coords:
                assert list(da[v].coords[c].values) == list(db[v].coords[c].values)


def test_round_trip_is_exact(fit, tmp_path):
    path = tmp_path / "fit.nc"
    assert mf.save(fit, path) == str(path)
    back = mf.load(path)
    _assert_same_groups(fit.idata, back.idata)
    assert back.idata.posterior["b_Days"].dtype == np.float64
    assert str(back.summary()) == str(fit.summary())
    pd.testing.assert_frame_equal(back.fixef(), fit.fixef())
    pd.testing.assert_frame_equal(back.ranef()["Subject"], fit.ranef()["Subject"])
    pd.testing.assert_frame_equal(back.varcorr()["Subject"]["cov"],
                                  fit.varcorr()["Subject"]["cov"])
    pd.testing.assert_frame_equal(back.prior_summary(), fit.prior_summary(),
                                  check_dtype=False)
    assert back.family.name == "gaussian" and back.family.links == {"mu": "identity"}
    assert back.likelihood == "marginal"
    assert back.info == fit.info
    assert [str(p) for p in back.priors.user] == [str(p) for p in fit.priors.user]
    # the design is rebuilt from the stored data: same matrices, levels and new-data coding
    np.testing.assert_array_equal(back.design.X, fit.design.X)
    np.testing.assert_array_equal(back.design.y, fit.design.y)
    assert back.design.terms[0].levels == fit.design.terms[0].levels
    assert (back.design.terms[0].Z() != fit.design.terms[0].Z()).nnz == 0
    new = pd.DataFrame({"Days": [1, 2], "Subject": ["308", "999"]})
    t = back.design.spec.transform(new)
    assert list(t.terms[0].codes) == [0, 18] and t.terms[0].new_levels == ["999"]
    pd.testing.assert_frame_equal(back.data, fit.data[["Reaction", "Days", "Subject"]])


def test_saved_file_is_plain_arviz_netcdf(fit, tmp_path):
    path = tmp_path / "fit.nc"
    mf.save(fit, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        idata = az.from_netcdf(path)
    assert {"posterior", "sample_stats", "mixedformula"} <= set(idata.groups())
    np.testing.assert_array_equal(idata.posterior["sigma"].values,
                                  fit.idata.posterior["sigma"].values)


def test_overwrite_is_atomic_when_the_write_fails(fit, tmp_path, monkeypatch):
    path = tmp_path / "fit.nc"
    mf.save(fit, path)
    before = path.read_bytes()

    def crash(self, filename, *args, **kwargs):
        with open(filename, "wb") as fh:      # half a file, then the crash
            fh.write(before[: len(before) // 3])
        raise RuntimeError("disk full")

    other = sleepstudy_fit(seed=99)
    monkeypatch.setattr(az.InferenceData, "to_netcdf", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        mf.save(other, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["fit.nc"]          # no temporary file left behind
    assert str(mf.load(path).summary()) == str(fit.summary())


def test_truncated_file_gives_clear_error(fit, tmp_path):
    good = tmp_path / "fit.nc"
    mf.save(fit, good)
    data = good.read_bytes()
    for frac in (0.5, 0.05):
        bad = tmp_path / f"cut{frac}.nc"
        bad.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(mf.MixedFormulaError, match="truncated"):
            mf.load(bad)


def test_foreign_files_give_clear_errors(tmp_path):
    text = tmp_path / "notes.nc"
    text.write_text("Reaction,Days\n1,2\n")
    with pytest.raises(mf.MixedFormulaError, match="not a complete netCDF"):
        mf.load(text)
    plain = tmp_path / "plain.nc"
    az.InferenceData(posterior=xr.Dataset({"mu": scalar(np.zeros(CHAINS * DRAWS))})
                     ).to_netcdf(str(plain))
    with pytest.raises(mf.MixedFormulaError, match="not a mixedformula fit"):
        mf.load(plain)
    with pytest.raises(FileNotFoundError):
        mf.load(tmp_path / "missing.nc")


def test_save_into_missing_directory(fit, tmp_path):
    with pytest.raises(mf.MixedFormulaError, match="does not exist"):
        mf.save(fit, tmp_path / "nope" / "fit.nc")


def test_save_without_data_keeps_the_summary(tmp_path):
    fit = sleepstudy_fit()
    fit.data = None
    mf.save(fit, tmp_path / "fit.nc")
    back = mf.load(tmp_path / "fit.nc")
    assert back.design is None and back.data is None
    assert str(back.summary()) == str(fit.summary())
    _assert_same_groups(fit.idata, back.idata)


def test_column_types_and_dropped_rows_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    n = 60
    df = pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.integers(0, 5, n),
        "f": pd.Categorical(rng.choice(["lo", "mid", "hi"], n),
                            categories=["mid", "lo", "hi"]),
        "flag": rng.random(n) > 0.5,
        "g": pd.Series(rng.choice(["a b", "c", "d/e"], n), dtype="str"),
        "unused": np.arange(n),
    })
    df.loc[3, "y"] = np.nan                                   # dropped by the design
    df.index = df.index + 100
    with pytest.warns(UserWarning, match="1 of 60 rows"):
        design = mf.design_matrices("y ~ x + f + flag + (1 | g)", df)
    S = CHAINS * DRAWS
    post = {f"b_{c}": scalar(rng.normal(size=S)) for c in design.X_names}
    post["sd_g__Intercept"] = scalar(np.abs(rng.normal(size=S)))
    post["sigma"] = scalar(np.abs(rng.normal(size=S)))
    post["r_g"] = xr.DataArray(rng.normal(size=(CHAINS, DRAWS, 3, 1)),
                               dims=("chain", "draw", "g", "g__coef"),
                               coords={"chain": np.arange(CHAINS), "draw": np.arange(DRAWS),
                                       "g": design.terms[0].levels, "g__coef": ["Intercept"]})
    fit = Fit(az.InferenceData(posterior=xr.Dataset(post), sample_stats=sample_stats()),
              design, get_family("gaussian"), PriorSet(), "conditional", {"tune": 10},
              data=df)
    mf.save(fit, tmp_path / "typed.nc")
    back = mf.load(tmp_path / "typed.nc")
    expected = df[["y", "x", "f", "flag", "g"]].dropna()
    pd.testing.assert_frame_equal(back.data, expected)
    assert list(back.data["f"].cat.categories) == ["mid", "lo", "hi"]
    np.testing.assert_array_equal(back.design.X, design.X)
    assert back.design.X_names == design.X_names
    assert back.design.terms[0].levels == design.terms[0].levels == ["a b", "c", "d/e"]
    assert back.meta.n_dropped == 1
    assert str(back.summary()) == str(fit.summary())
