"""nutpie's C callbacks around PyTensor's numba functions (issue 7, ``c_callbacks.py``).

The numba backend hands nutpie two C function pointers, trampolines that call the jitted graph
by address.  They must return exactly what the compiled PyTensor functions return — the log
density, its gradient and every traced variable — for data arguments of any rank and dtype,
signal non-finite values with nutpie's return codes, and read new data after ``with_data``.
The reference is the C backend's PyTensor function (a different compiler on the same graph),
so agreement is to rounding, 1e-9 relative.
"""

from __future__ import annotations

import ctypes
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedformula as mf
from mixedformula.backends.pymc import sampling

DOUBLE_P = ctypes.POINTER(ctypes.c_double)


@pytest.fixture(autouse=True)
def no_disk_cache(monkeypatch):
    monkeypatch.setenv("MIXEDFORMULA_COMPILE_CACHE", "0")
    sampling.clear_cache()


def _logp(compiled, x):
    grad, value = np.zeros(compiled.n_dim), np.zeros(1)
    rc = compiled.compiled_logp_func.ctypes(
        compiled.n_dim, x.ctypes.data_as(DOUBLE_P), grad.ctypes.data_as(DOUBLE_P),
        value.ctypes.data_as(DOUBLE_P), ctypes.c_void_p(compiled.user_data.ctypes.data))
    return rc, value[0], grad


def _expand(compiled, x):
    out = np.zeros(compiled.n_expanded)
    rc = compiled.compiled_expand_func.ctypes(
        compiled.n_dim, compiled.n_expanded, x.ctypes.data_as(DOUBLE_P),
        out.ctypes.data_as(DOUBLE_P), ctypes.c_void_p(compiled.user_data.ctypes.data))
    return rc, out


def _reference(model):
    """The C backend's functions of the same model: logp/grad and the flat expanded vector."""
    n_dim, logp_fn, expand_fn, shape_info, _ = sampling._compile_functions(model, "c")

    def logp(x):
        value, grad = logp_fn(x)
        return float(value), np.asarray(grad)

    def expand(x):
        return np.concatenate([np.ravel(v) for v in expand_fn(x)])
    return n_dim, logp, expand


def _points(n_dim, k=5, seed=0):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, size=(k, n_dim))


def _check(model):
    compiled = sampling.compiled_model(model, "numba")
    n_dim, logp, expand = _reference(model)
    assert compiled.n_dim == n_dim
    for x in _points(n_dim):
        rc, value, grad = _logp(compiled, x)
        ref_value, ref_grad = logp(x)
        assert rc == 0
        np.testing.assert_allclose(value, ref_value, rtol=1e-9)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9)
        rc, out = _expand(compiled, x)
        assert rc == 0
        np.testing.assert_allclose(out, expand(x), rtol=1e-9, atol=1e-12)
    return compiled


def test_marginal_callbacks_equal_the_compiled_graph():
    """Float statistics of ranks 0–3 as shared variables (the marginal engine)."""
    _check(mf.Model("Yield ~ 1 + (1 | Batch)", mf.datasets.load("dyestuff")).pymc_model)


def test_conditional_callbacks_equal_the_compiled_graph():
    """A Bernoulli GLMM with a correlated slope: integer group codes and a 0/1 response in the
    graph, a Cholesky-factor deterministic of rank 2 in the expanded vector."""
    rng = np.random.default_rng(3)
    n, groups = 120, 8
    g = rng.integers(0, groups, n)
    x = rng.normal(size=n)
    eta = -0.3 + 0.8 * x + rng.normal(0, 0.7, groups)[g]
    df = pd.DataFrame({"y": (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(int),
                       "x": x, "g": [f"g{k}" for k in g]})
    _check(mf.Model("y ~ x + (1 + x | g)", df, family="bernoulli").pymc_model)


def test_non_finite_values_get_nutpie_return_codes():
    compiled = sampling.compiled_model(
        mf.Model("Yield ~ 1 + (1 | Batch)", mf.datasets.load("dyestuff")).pymc_model, "numba")
    rc, value, _ = _logp(compiled, np.full(compiled.n_dim, np.nan))
    assert rc in (3, 4) and not np.isfinite(value)
    rc, value, _ = _logp(compiled, np.full(compiled.n_dim, 0.1))
    assert rc == 0 and np.isfinite(value)


def test_with_data_reads_the_new_statistics():
    """A compiled model re-pointed at other data (same structure) evaluates that data's log
    density, and the original keeps its own."""
    dye = mf.datasets.load("dyestuff")
    other = dye.copy()
    other["Yield"] = np.random.default_rng(5).permutation(other["Yield"].to_numpy())
    m1 = mf.Model("Yield ~ 1 + (1 | Batch)", dye).pymc_model
    m2 = mf.Model("Yield ~ 1 + (1 | Batch)", other).pymc_model
    first = sampling.compiled_model(m1, "numba")
    second = sampling.compiled_model(m2, "numba")
    assert sampling.structure_key(m1)[0] == sampling.structure_key(m2)[0]
    n_dim, logp2, _ = _reference(m2)
    _, logp1, _ = _reference(m1)
    x = _points(n_dim, k=1, seed=4)[0]
    np.testing.assert_allclose(_logp(second, x)[1], logp2(x)[0], rtol=1e-9)
    np.testing.assert_allclose(_logp(first, x)[1], logp1(x)[0], rtol=1e-9)
    assert abs(logp1(x)[0] - logp2(x)[0]) > 1e-3


def test_sampling_through_callbacks_matches_the_c_backend():
    """Both backends sample the same posterior: dyestuff's posterior means agree within
    5 Monte-Carlo standard errors of their difference."""
    dye = mf.datasets.load("dyestuff")
    kw = dict(draws=400, tune=400, chains=2, seed=7, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = mf.fit("Yield ~ 1 + (1 | Batch)", dye, backend="numba", **kw)
        b = mf.fit("Yield ~ 1 + (1 | Batch)", dye, backend="c", **kw)
    import arviz as az
    for v in ("b_Intercept", "sigma"):
        pa, pb = a.idata.posterior[[v]], b.idata.posterior[[v]]
        se = np.hypot(float(az.mcse(pa)[v]), float(az.mcse(pb)[v]))
        assert abs(float(pa[v].mean()) - float(pb[v].mean())) < 5 * se


# numba's C wrapper prints the exception through Python's "unraisable" hook
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_an_exception_in_the_graph_is_a_failed_evaluation_not_a_crash():
    """numba's C wrapper reports an exception raised inside the graph (here an assertion) and
    returns empty arrays; the trampoline turns that into nutpie's error code 1."""
    import pytensor
    import pytensor.tensor as pt
    from pytensor.raise_op import Assert

    from mixedformula.backends.pymc.c_callbacks import JitFunction, callback_model
    x = pt.dvector("x")
    checked = Assert("x[0] must be below 10")(x, pt.lt(x[0], 10.0))
    logp = -0.5 * (checked ** 2).sum()
    fn = pytensor.function([x], [logp, pytensor.grad(logp, x)], mode="NUMBA")
    ex = pytensor.function([x], [x], mode="NUMBA")
    compiled = callback_model(JitFunction.from_function(fn), JitFunction.from_function(ex), 3,
                              (["x"], [slice(0, 3)], [(3,)]), {}, coords={}, dims={},
                              initial_point=lambda seed: np.zeros(3))
    rc, value, grad = _logp(compiled, np.array([1.0, 2.0, 3.0]))
    assert rc == 0 and value == pytest.approx(-7.0) and np.allclose(grad, [-1, -2, -3])
    rc, _, _ = _logp(compiled, np.array([20.0, 2.0, 3.0]))
    assert rc == 1
    rc, out = _expand(compiled, np.array([4.0, 5.0, 6.0]))
    assert rc == 0 and np.allclose(out, [4, 5, 6])
    # the same in the expand function: nutpie's expand error code -2, nothing written
    ex_checked = pytensor.function([x], [checked], mode="NUMBA")
    compiled = callback_model(JitFunction.from_function(fn), JitFunction.from_function(ex_checked),
                              3, (["x"], [slice(0, 3)], [(3,)]), {}, coords={}, dims={},
                              initial_point=lambda seed: np.zeros(3))
    rc, out = _expand(compiled, np.array([20.0, 5.0, 6.0]))
    assert rc == -2 and np.all(out == 0)
    rc, out = _expand(compiled, np.array([4.0, 5.0, 6.0]))
    assert rc == 0 and np.allclose(out, [4, 5, 6])
