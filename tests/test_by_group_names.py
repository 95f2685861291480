"""By-group correlation names follow brms: ``cor_g__Intercept:hA__x:hA`` for
``(1 + x | gr(g, by = h))``, the level tag after each coefficient (issue 17, item 14); fits
saved with the older ``cor_g__Intercept__x:hA`` are renamed when loaded."""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from _results_helpers import by_fit


def test_builder_writes_brms_names():
    """The posterior names written from PyMC's draws (prior draws: nothing to sample)."""
    import pymc as pm
    from mixedformula.backends.pymc.names import brms_posterior
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"g": np.repeat([f"s{j}" for j in range(8)], 5), "x": rng.normal(size=40),
                       "y": rng.normal(size=40)})
    df["h"] = np.where(df["g"] < "s4", "A", "B")
    priors = [mf.prior("normal(0, 1)", class_="b")]          # proper, so it can be drawn
    model = mf.Model("y ~ x + (1 + x | gr(g, by = h))", df, likelihood="conditional",
                     priors=priors)
    with model.built.model:
        prior = pm.sample_prior_predictive(draws=4, random_seed=1)
    names = set(brms_posterior(prior.prior, model.built).data_vars)
    assert {"cor_g__Intercept:hA__x:hA", "cor_g__Intercept:hB__x:hB",
            "sd_g__Intercept:hA", "sd_g__x:hB"} <= names
    assert not any(n.startswith("cor_") and n.endswith("__x:hA") and ":hA__" not in n
                   for n in names)


def test_summary_reads_brms_names():
    s = by_fit().summary()
    assert list(s.random["g"].index)[-2:] == ["cor(Intercept,x:hA)", "cor(Intercept,x:hB)"]


def test_saved_fit_with_old_names_loads_with_brms_names(tmp_path):
    new, old = by_fit(), by_fit(legacy_names=True)
    assert "cor_g__Intercept__x:hA" in old.idata.posterior
    path = mf.save(old, tmp_path / "old.nc")
    loaded = mf.load(path)
    post = loaded.idata.posterior
    assert "cor_g__Intercept:hA__x:hA" in post and "cor_g__Intercept__x:hA" not in post
    np.testing.assert_array_equal(post["cor_g__Intercept:hB__x:hB"].values,
                                  new.idata.posterior["cor_g__Intercept:hB__x:hB"].values)
    pd.testing.assert_frame_equal(loaded.summary().random["g"], new.summary().random["g"])
