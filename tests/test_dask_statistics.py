"""Marginal statistics from a Dask DataFrame (design/distributed.py) against the in-memory path.

The data are split into 8 partitions and sorted by group, so most levels are absent from most
partitions; the reduction runs on a ``distributed.LocalCluster`` of 2 worker processes with one
thread each (module fixture).
"""

import re
import warnings

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

import mixedformula as mf
from mixedformula.cli import main
from mixedformula.design.crossprod import sufficient_statistics
from mixedformula.design.distributed import reduce_statistics

FIELDS = ("XtX", "Xty", "yty", "beta_ols", "ete", "A", "B", "c", "C22", "C21", "B2", "c2",
          "ZtX", "Zty")
NPART = 8


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def _simulated(n=1200, J=30, seed=4):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, J, n)
    x1 = rng.normal(size=n)
    u = rng.normal(size=(J, 2))
    df = pd.DataFrame({
        "x1": x1, "x2": rng.uniform(1, 3, n), "f": rng.choice(["lo", "mid", "hi"], n),
        "g": [f"s{k:02d}" for k in g], "h": rng.integers(0, 4, n),
        "site": np.where(g % 2 == 0, "east", "west"),
        "y": 250 + 3 * x1 + 20 * u[g, 0] + 2 * u[g, 1] * x1 + 5 * rng.normal(size=n)})
    df.loc[[5, 77, 400, 401], "x1"] = np.nan     # NA rows, in two partitions
    df.loc[[900], "g"] = None
    return df.sort_values("g", na_position="first").reset_index(drop=True)


def _dask(df):
    ddf = dd.from_pandas(df, npartitions=NPART, sort=False)
    assert ddf.npartitions == NPART
    return ddf


def _in_memory(formula, df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        design = mf.design_matrices(formula, df, drop_aliased=True)
    return design, sufficient_statistics(design)


@pytest.mark.parametrize("formula", [
    "y ~ x1 + f + log(x2) + (1 + x1 | g)",            # one factor: block statistics
    "y ~ x1 + (1 | g) + (1 | h)",                     # crossed: general statistics
    "y ~ x1 + (1 | g/h)",                             # nested
    "y ~ x1 + (x1 || g) + (1 | gr(g, by = site))",   # same factor merged, by-groups
])
def test_statistics_equal_in_memory(client, formula):
    df = _simulated()
    dm, sm = _in_memory(formula, df)
    with pytest.warns(UserWarning, match="5 of 1200 rows have missing values"):
        dr, sr = reduce_statistics(formula, _dask(df))
    assert sr.kind == sm.kind and sr.N == sm.N == dr.nobs == dm.nobs == 1195
    assert dr.n_dropped == dm.n_dropped == 5
    assert dr.X_names == dm.X_names
    for a, b in zip(dr.terms, dm.terms):
        assert a.levels == b.levels and a.coef_names == b.coef_names
        assert a.by_levels == b.by_levels
        assert (a.by_codes is None) == (b.by_codes is None)
        if a.by_codes is not None:
            np.testing.assert_array_equal(a.by_codes, b.by_codes)
    assert [(s.terms, s.qs, s.J, s.start) for s in sr.segments] == \
        [(s.terms, s.qs, s.J, s.start) for s in sm.segments]
    for k in FIELDS:
        a, b = getattr(sr, k), getattr(sm, k)
        assert (a is None) == (b is None), k
        if b is not None:
            b = np.asarray(b, dtype=float)
            scale = np.max(np.abs(b))
            np.testing.assert_allclose(np.asarray(a, dtype=float), b, rtol=0,
                                       atol=1e-12 * scale, err_msg=k)
    np.testing.assert_allclose((sr.ZtZ - sm.ZtZ).toarray() if sm.ZtZ is not None else 0, 0,
                               atol=1e-12 * (abs(sm.ZtZ).max() if sm.ZtZ is not None else 1))
    # Zᵀe = Zᵀy − ZᵀXβ̂: rounding of the order ε·|Zᵀy|
    np.testing.assert_allclose(sr.ce, sm.ce, rtol=0, atol=1e-12 * np.max(np.abs(sm.c)))
    if sm.c2e is not None:
        np.testing.assert_allclose(sr.c2e, sm.c2e, rtol=0, atol=1e-12 * np.max(np.abs(sm.c2)))
    cols = list(range(len(dm.X_names)))
    np.testing.assert_allclose(dr.column_means(cols), dm.column_means(cols), rtol=1e-13,
                               atol=1e-15)
    y = dm.y[:, 0]
    med = float(np.median(y))
    assert dr.response_centre(0) == (med, float(1.4826 * np.median(np.abs(y - med))))


def test_median_is_exact_with_ties_and_odd_count(client):
    """Order statistics by histogram refinement: integer responses (ties), odd row count."""
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"y": rng.integers(0, 7, 333).astype(float),
                       "g": rng.integers(0, 5, 333)})
    dr, _ = reduce_statistics("y ~ 1 + (1 | g)", _dask(df))
    med = float(np.median(df.y))
    assert dr.response_centre(0) == (med, float(1.4826 * np.median(np.abs(df.y - med))))


def test_missing_values_raise_when_asked(client):
    with pytest.raises(mf.DataError, match="5 of 1200 rows have missing values in x1 \\(4\\), "
                                           "g \\(1\\)"):
        reduce_statistics("y ~ x1 + (1 | g)", _dask(_simulated()), na_action="raise")


@pytest.mark.parametrize("kwargs, formula, match", [
    ({"family": "poisson"}, "y ~ x1 + (1 | g)", "poisson .*not Gaussian.*compute"),
    ({"likelihood": "conditional"}, "y ~ x1 + (1 | g)", "conditional.*compute"),
    ({}, "y ~ x1", "no group terms"),
    ({}, "y ~ scale(x1) + (1 | g)", "scale\\(\\) learns from the whole column"),
    ({}, "y ~ x1 + I(2 * x1) + (1 | g)", "collinear"),
])
def test_unsupported_models_are_refused(client, kwargs, formula, match):
    with pytest.raises(mf.MixedFormulaError, match=match):
        mf.Model(formula, _dask(_simulated().dropna()), **kwargs)


def test_row_level_entry_points_refuse_a_dask_frame(client):
    ddf = _dask(_simulated().dropna())
    for call in (lambda: mf.design_matrices("y ~ x1 + (1 | g)", ddf),):
        with pytest.raises(mf.DataError, match="Dask DataFrame is only taken by mf.fit"):
            call()
    # mf.lmer fits a Dask frame from cross-products since issue 20 (tests/test_lmer_dask.py);
    # what needs the rows says so
    fit = mf.lmer("y ~ x1 + (1 | g)", ddf)
    with pytest.raises(mf.DataError, match="needs the rows"):
        fit.residuals()


def test_prior_draws_of_y_say_rows_are_needed(client):
    model = mf.Model("y ~ x1 + (1 | g)", _dask(_simulated().dropna()))
    assert model.likelihood == "marginal" and model.design.nobs == 1195
    for call in (lambda: model.prior_predictive(draws=10),
                 lambda: model.fit(sample_prior="only", draws=10, chains=1)):
        with pytest.raises(mf.MixedFormulaError, match="stayed in the Dask DataFrame"):
            call()


def test_cli_refuses_a_report_for_parquet_files(tmp_path, sleepstudy, capsys):
    sleepstudy.to_parquet(tmp_path / "part0.parquet")
    rc = main(["fit", str(tmp_path / "*.parquet"), "Reaction ~ Days + (Days | Subject)",
               "--report", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "--report plots fitted values" in err
    assert not (tmp_path / "r.html").exists()


@pytest.fixture(scope="module")
def sleep_dask(client, sleepstudy):
    ddf = _dask(sleepstudy.sort_values("Subject").reset_index(drop=True))
    return mf.fit("Reaction ~ Days + (Days | Subject)", ddf, draws=1000, tune=1000, chains=4,
                  seed=1)


def _mc_close(post_a, post_b, name, k=5.0):
    """|mean_a − mean_b| within k Monte-Carlo standard errors of the difference."""
    import arviz as az
    a, b = post_a[name], post_b[name]
    se = np.hypot(float(az.mcse(a).to_array().max()), float(az.mcse(b).to_array().max()))
    return abs(float(a.mean()) - float(b.mean())) < k * se


def test_posterior_from_dask_matches_in_memory(sleep_dask, sleep_marginal, sleepstudy):
    fd, fm = sleep_dask, sleep_marginal
    assert fd.nobs == 180 and fd.likelihood == "marginal"
    assert fd.prior_summary().equals(fm.prior_summary())       # exact median / MAD of y
    for name in ("b_Intercept", "b_Days", "sd_Subject__Intercept", "sd_Subject__Days",
                 "cor_Subject__Intercept__Days", "sigma"):
        assert _mc_close(fd.posterior, fm.posterior, name), name
    rd, rm = fd.ranef()["Subject"], fm.ranef()["Subject"]
    assert list(rd.index) == list(rm.index)
    sd = fm.posterior["sd_Subject__Intercept"].mean().item()
    assert np.max(np.abs(rd[("Intercept", "Estimate")] - rm[("Intercept", "Estimate")])) < 0.2 * sd
    assert "Multilevel Hyperparameters:" in str(fd.summary())
    assert list(fd.coef()["Subject"].index) == list(rm.index)
    new = sleepstudy.iloc[[0, 15, 40]]
    np.testing.assert_allclose(fd.predict(new).mean(axis=0), fm.predict(new).mean(axis=0),
                               atol=3.0)   # posterior sd of these predictions is ~8


@pytest.mark.parametrize("call", ["predict", "loo", "pp_check", "marginal_cov"])
def test_row_level_methods_say_rows_are_needed(sleep_dask, call):
    with pytest.raises(mf.MixedFormulaError, match="stayed in the Dask DataFrame"):
        getattr(sleep_dask, call)()


def _estimates(text: str) -> dict[str, float]:
    block = text.split("Regression Coefficients:")[1].split("\n\n")[0]
    out = {}
    for line in block.splitlines()[2:]:
        parts = line.split()
        out[parts[0]] = float(parts[1])
    return out


def test_cli_fits_a_directory_of_parquet_files(client, tmp_path, sleepstudy, sleep_marginal,
                                               capsys):
    df = sleepstudy.sort_values("Subject").reset_index(drop=True)
    bounds = np.linspace(0, len(df), NPART + 1).astype(int)
    for k in range(NPART):
        df.iloc[bounds[k]:bounds[k + 1]].to_parquet(tmp_path / f"part{k}.parquet")
    rc = main(["fit", str(tmp_path), "Reaction ~ Days + (Days | Subject)", "--draws", "1000",
               "--tune", "1000", "--chains", "4", "--seed", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"Number of observations: 180\b", out)
    est = _estimates(out)
    fe = sleep_marginal.fixef()
    for name in ("Intercept", "Days"):
        # printed to 2 decimals; MC error of the means ~0.2 (Intercept) and ~0.05 (Days)
        assert abs(est[name] - fe.loc[name, "Estimate"]) < 5 * fe.loc[name, "Est.Error"] / 20


def test_save_and_load_keep_the_summary(sleep_dask, tmp_path):
    path = mf.save(sleep_dask, tmp_path / "fit.nc")
    back = mf.load(path)
    assert back.nobs == 180 and back.ngrps == {"Subject": 18}
    assert str(back.summary()) == str(sleep_dask.summary())
