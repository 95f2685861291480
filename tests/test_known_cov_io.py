"""mf.save / mf.load of a fit with data2 (gr(g, cov = A)): the file holds A with its level
names, so the loaded fit rebuilds the same design (L_A) and summarises and predicts as the
original (predictions compared draw by draw; new-group draws with the same seed)."""

import os

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf

HERE = os.path.dirname(__file__)


def test_save_load_keeps_known_covariance(tmp_path):
    A = pd.read_csv(os.path.join(HERE, "data", "known_cov_A.csv"), index_col=0)
    d = pd.read_csv(os.path.join(HERE, "data", "known_cov_data.csv"))
    d = d[d.phylo.isin(A.index[:12])].reset_index(drop=True)
    levels = sorted(d.phylo.unique())
    A = A.loc[levels[::-1], levels[::-1]]        # not in the levels' order: stored as given
    fit = mf.fit("y ~ x + (1 | gr(phylo, cov = A))", d, data2={"A": A}, draws=60, tune=60,
                 chains=1, seed=1, progressbar=False)
    path = tmp_path / "phylo.nc"
    mf.save(fit, path)
    back = mf.load(path)
    L0 = fit.design.terms[0].cov_factor
    L1 = back.design.terms[0].cov_factor
    assert np.array_equal(L0, L1)
    assert L1 @ L1.T == pytest.approx(A.loc[levels, levels].to_numpy(), abs=1e-12)
    assert str(back.summary()) == str(fit.summary())
    new = d.iloc[[0, 5, 9]].assign(x=[0.0, 1.0, -1.0])
    for kind in ("linpred", "epred"):
        assert np.array_equal(fit.predict(kind=kind), back.predict(kind=kind))
        assert np.array_equal(fit.predict(new, kind=kind), back.predict(new, kind=kind))
    assert np.array_equal(fit.predict(new, kind="response", seed=4),
                          back.predict(new, kind="response", seed=4))
