"""PosteriorDraws / linpred on hand-made draws (no sampling): references computed by hand."""

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from mixedformula.design import design_matrices
from mixedformula.families import get_family
from mixedformula.results.fit import Fit
from mixedformula.results.posterior import PosteriorDraws, linpred

S = 4000


def _by_fit():
    """y ~ 1 + (1 | gr(g, by = h)): sd 1 in level A of h, 10 in level B; u = 0 for seen levels."""
    df = pd.DataFrame({"g": list("aabbccdd"), "h": list("AAAABBBB"), "y": np.arange(8.0)})
    d = design_matrices("y ~ 1 + (1 | gr(g, by = h))", df)
    one = lambda v: xr.DataArray(np.full((1, S), float(v)), dims=("chain", "draw"))  # noqa: E731
    post = xr.Dataset({"b_Intercept": one(2.0), "sd_g__Intercept:hA": one(1.0),
                       "sd_g__Intercept:hB": one(10.0),
                       "r_g": xr.DataArray(np.zeros((1, S, 4, 1)),
                                           dims=("chain", "draw", "g", "g__coef"),
                                           coords={"g": d.terms[0].levels,
                                                   "g__coef": ["Intercept"]})})
    return Fit(az.InferenceData(posterior=post), d, get_family("gaussian"), None,
               "conditional", {}, data=df)


def test_block_cov_per_by_level():
    fit = _by_fit()
    draws = PosteriorDraws.of_fit(fit)
    (blk,) = draws.blocks
    G = draws.block_cov(blk)
    assert G.shape == (S, 2, 1, 1)
    np.testing.assert_array_equal(G[0, :, 0, 0], [1.0, 100.0])


def test_new_levels_draw_u_from_the_G_of_their_by_level():
    fit = _by_fit()
    new = pd.DataFrame({"g": ["new1", "new2", "a", None], "h": ["A", "B", "A", "A"]})
    d = fit.design.spec.transform(new)
    eta = linpred(PosteriorDraws.of_fit(fit), d, rng=1)[..., 0]       # (S, 4)
    # seen level: 2 + 0; missing group value: the population level 2
    np.testing.assert_array_equal(eta[:, 2], 2.0)
    np.testing.assert_array_equal(eta[:, 3], 2.0)
    # new levels: u ~ N(0, sd²) of their by-level. With S = 4000 draws the sample variance has
    # relative sd sqrt(2 / 3999) = 2.2 %; 15 % is 6.7 of those (false failure < 1e-10)
    np.testing.assert_allclose(eta[:, :2].var(axis=0, ddof=1), [1.0, 100.0], rtol=0.15)
    np.testing.assert_allclose(eta[:, :2].mean(axis=0), [2.0, 2.0], atol=6 * 10 / np.sqrt(S))
    zero = linpred(PosteriorDraws.of_fit(fit), d, new_groups="zero")[..., 0]
    np.testing.assert_array_equal(zero, 2.0)
