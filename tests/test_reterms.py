"""The one representation of group terms (mixedformula/design/reterms.py): covariance blocks
with their λ layout, segments, and the engines reading them."""

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.design.reterms import covariance_blocks, segments


def _data(n=90, seed=1):
    rng = np.random.default_rng(seed)
    g = rng.integers(0, 6, n)
    return pd.DataFrame({"x": rng.normal(size=n), "g": g, "k": g % 2,
                         "h": rng.integers(0, 4, n), "y": rng.normal(size=n),
                         "y2": rng.normal(size=n)})


def test_shared_id_is_one_block_over_two_terms():
    d = mf.design_matrices("y ~ x + (1 | p | g) + (0 + x | p | g) + (1 | h)", _data())
    blocks = covariance_blocks(d)
    assert [b.key for b in blocks] == ["g", "h"]
    b = blocks[0]
    assert b.terms == [0, 1] and b.labels == ["Intercept", "x"] and b.correlated
    assert [(p.term, p.offset, p.q) for p in b.parts] == [(0, 0, 1), (1, 1, 1)]
    # λ: the lower triangle of one 2 × 2 template, column by column (lme4's θ order)
    rows, cols = b.layout.entries
    assert (rows.tolist(), cols.tolist(), b.layout.n_theta) == ([0, 1, 1], [0, 0, 1], 3)
    codes, W = b.columns(d)
    np.testing.assert_array_equal(codes, d.terms[0].codes)
    np.testing.assert_array_equal(W, np.column_stack([d.terms[0].X, d.terms[1].X]))
    assert blocks[1].layout.n_theta == 1


def test_by_levels_and_uncorrelated_layout():
    d = mf.design_matrices("y ~ x + (x | gr(g, by = k, cor = FALSE))", _data())
    b, = covariance_blocks(d)
    assert (b.H, b.Q, b.J) == (2, 2, 6) and not b.correlated
    lay = b.layout
    assert (lay.n_blocks, lay.n_per_block, lay.n_theta) == (2, 2, 4)
    np.testing.assert_array_equal(lay.block_of_level, np.arange(6) % 2)


def test_multivariate_blocks_label_by_response():
    d = mf.design_matrices("mvbind(y, y2) ~ x + (1 | p | g)", _data())
    b, = covariance_blocks(d, 2, ["y", "y2"])
    assert b.labels == ["y_Intercept", "y2_Intercept"]
    assert [(p.term, p.response, p.offset) for p in b.parts] == [(0, 0, 0), (0, 1, 1)]


def test_segments_merge_terms_of_one_factor():
    d = mf.design_matrices("y ~ x + (1 | g) + (0 + x | g) + (1 | h)", _data())
    segs = segments(d)
    assert [(s.terms, s.offsets, s.Q, s.group) for s in segs] == \
        [((0, 1), (0, 1), 2, "g"), ((2,), (0,), 1, "h")]
    assert segs[0].offset_of(1) == 1
    codes, W = segs[0].columns(d)
    assert W.shape == (90, 2) and codes.max() == 5
    from mixedformula.design.crossprod import sufficient_statistics
    stats = sufficient_statistics(d)
    assert [s.terms for s in stats.segments] == [(0, 1), (2,)]   # the same objects' layout


def test_duplicate_coefficients_in_a_shared_block_are_refused():
    d = mf.design_matrices("y ~ x + (1 | p | g) + (1 | p | g)", _data())
    with pytest.raises(mf.FormulaError, match="appear twice"):
        covariance_blocks(d)


def test_lmer_layout_of_a_shared_id_block_is_the_correlated_term(sleepstudy):
    """(1 | p | Subject) + (0 + Days | p | Subject) is (Days | Subject): the REML term layout
    read from the covariance block has the same θ, coefficient names and profiled deviance."""
    from mixedformula.linalg import LambdaFactor, PenalizedLS
    from mixedformula.reml import _lmer_terms, _theta_names
    out = []
    for f in ("Reaction ~ Days + (1 | p | Subject) + (0 + Days | p | Subject)",
              "Reaction ~ Days + (Days | Subject)"):
        d = mf.design_matrices(f, sleepstudy)
        terms = _lmer_terms(d)
        lam = LambdaFactor([t.layout for t in terms])
        pls = PenalizedLS(d.X, d.y[:, 0], [(t.X, t.codes) for t in terms], lam)
        theta = np.array([0.9, 0.02, 0.25])
        out.append((_theta_names(terms), [t.coefs for t in terms], pls.deviance(theta, True)))
    assert out[0][0] == out[1][0] == ["Subject.(Intercept)", "Subject.Days.(Intercept)",
                                      "Subject.Days"]
    assert out[0][1] == out[1][1] == [["(Intercept)", "Days"]]
    assert out[0][2] == pytest.approx(out[1][2], rel=1e-12)
