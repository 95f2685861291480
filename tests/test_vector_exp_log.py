"""The branch-free exp/log family of backends/pymc/vector_exp_log.py against numpy/scipy, and the
numba graphs rewritten by backends/pymc/vector_loops.py against PyTensor's C backend.

Accuracy asserted (ulp distance to numpy's result, finite nonzero results of normal size):
exp, log ≤ 2 ulp; log1p, expm1 ≤ 3 ulp; softplus, sigmoid, log1mexp ≤ 4 ulp (compositions of the
two).  Measured on these grids: 1, 1, 2, 2, 3, 3, 3.
"""

import numba
import numpy as np
import pytest
from scipy import special

from mixedformula.backends.pymc import vector_exp_log as v

TINY = np.finfo(float).tiny


def _apply(kernel, x):
    """kernel(x_i) for each entry, in a plain numba loop (as the fused graphs call it)."""
    @numba.njit
    def run(x, out):
        for i in range(x.shape[0]):
            out[i] = kernel(x[i])
    out = np.empty_like(x)
    run(x, out)
    return out


def _ulps(a, b):
    ok = np.isfinite(b) & (np.abs(b) >= TINY)
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    ia, ib = a[ok].view(np.int64), b[ok].view(np.int64)
    return int(np.max(np.abs(ia - ib)))


def _log1mexp(x):
    return np.where(x < -np.log(2), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


GRIDS = {
    "exp": (v.exp_kernel, np.exp, np.linspace(-745.2, 709.9, 400_001), 2),
    "log": (v.log_kernel, np.log,
            np.concatenate([np.exp(np.linspace(-744.0, 709.7, 300_001)),
                            np.linspace(0.5, 2.0, 100_001),
                            [5e-324, 1e-310, TINY, np.finfo(float).max]]), 2),
    "log1p": (v.log1p_kernel, np.log1p,
              np.concatenate([-np.exp(np.linspace(-740.0, -1e-12, 200_001)),
                              np.exp(np.linspace(-740.0, 709.0, 200_001))]), 3),
    "expm1": (v.expm1_kernel, np.expm1,
              np.concatenate([np.linspace(-40.0, 709.7, 200_001),
                              -np.exp(np.linspace(-700.0, 3.0, 100_001)),
                              np.exp(np.linspace(-700.0, 0.0, 100_001))]), 3),
    "softplus": (v.softplus_kernel, lambda x: np.logaddexp(0.0, x),
                 np.linspace(-700.0, 800.0, 300_001), 4),
    "sigmoid": (v.sigmoid_kernel, special.expit, np.linspace(-700.0, 800.0, 300_001), 4),
    "log1mexp": (v.log1mexp_kernel, _log1mexp, -np.exp(np.linspace(-700.0, 6.6, 300_001)), 4),
}
SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 1e-300, -1e-300, 5e-324,
                    -5e-324, 709.78, 709.79, 710.0, -745.13, -745.14, -746.0, 37.0, -37.0,
                    -np.log(2.0), 2.0 ** -30, -(2.0 ** -30)])


@pytest.mark.parametrize("name", list(GRIDS))
def test_kernel_matches_numpy_over_the_double_range(name):
    kernel, ref, x, bound = GRIDS[name]
    out = _apply(kernel, x)
    with np.errstate(all="ignore"):
        assert _ulps(out, ref(x)) <= bound


@pytest.mark.parametrize("name", list(GRIDS))
def test_kernel_special_values_match_numpy(name):
    """0, −0, ±inf, NaN, the overflow/underflow boundaries, subnormals, the domain edges."""
    kernel, ref, _, bound = GRIDS[name]
    out = _apply(kernel, SPECIAL)
    with np.errstate(all="ignore"):
        expect = ref(SPECIAL)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expect))
    np.testing.assert_array_equal(np.isinf(out), np.isinf(expect))
    fin = np.isfinite(expect)
    np.testing.assert_array_equal(out[np.isinf(expect)], expect[np.isinf(expect)])
    np.testing.assert_allclose(out[fin], expect[fin], rtol=bound * 2.3e-16, atol=1e-322)


OPS = {"exp": (v.exp, np.linspace(-5, 5, 11)), "log": (v.log, np.linspace(0.1, 5, 11)),
       "log1p": (v.log1p, np.linspace(-0.9, 5, 11)), "expm1": (v.expm1, np.linspace(-5, 5, 11)),
       "softplus": (v.softplus, np.linspace(-8, 8, 11)),
       "sigmoid": (v.sigmoid, np.linspace(-8, 8, 11)),
       "log1mexp": (v.log1mexp, -np.linspace(0.05, 5, 11))}


@pytest.mark.parametrize("mode", ["NUMBA", "FAST_RUN"])
def test_ops_values_and_gradients(mode):
    """Each op in a compiled graph (numba kernel; C code of PyTensor's op) equals numpy, and its
    gradient (written with the same ops) equals central differences."""
    import pytensor
    import pytensor.tensor as pt
    x = pt.dvector("x")
    for name, (op, xv) in OPS.items():
        y = op(x)
        f = pytensor.function([x], [y, pytensor.grad(pt.sum(y), x)], mode=mode)
        val, grad = f(xv)
        np.testing.assert_allclose(val, GRIDS[name][1](xv), rtol=1e-15, err_msg=name)
        h = 1e-6
        fd = (f(xv + h)[0] - f(xv - h)[0]) / (2 * h)
        np.testing.assert_allclose(grad, fd, rtol=1e-7, atol=1e-9, err_msg=name)


def _compiled(inputs, outputs, backend):
    import pytensor

    from mixedformula.backends.pymc import sampling
    with sampling._linking_flags():
        return pytensor.function(inputs, outputs, mode=sampling._mode(backend),
                                 on_unused_input="ignore")


def _family_graphs():
    """(name, inputs, outputs, values): per-row log-densities of four families (poisson with an
    offset, zero_inflated_poisson, cumulative logit, gaussian with sigma = exp(η_σ)), their sum
    and the gradient of the sum per row, over η from −25 to 25."""
    import pymc as pm
    import pytensor.tensor as pt

    from mixedformula.families.registry import get_family
    rng = np.random.default_rng(3)
    n = 401
    eta_v = np.linspace(-25.0, 25.0, n)
    out = []
    e = pt.dvector("eta")
    counts = rng.poisson(2.0, n).astype(float)
    counts[::7] = 0.0
    for name, params in (("poisson", {}), ("zero_inflated_poisson", {"zi": 0.3})):
        fam = get_family(name)
        with pm.Model():
            rv = fam.pymc_likelihood("y", e + 0.25, {d: pt.as_tensor_variable(p)
                                                     for d, p in params.items()},
                                     counts, None, dims=None)
            lp = pm.logp(rv, counts)
        out.append((name, [e], [lp, pt.sum(lp), pt.grad(pt.sum(lp), e)], [eta_v]))
    fam = get_family("cumulative", "logit")
    th = pt.dvector("th")
    cats = rng.integers(1, 6, n).astype(float)
    with pm.Model():
        rv = fam.pymc_likelihood("y", e, {"thres": th}, cats, dims=None)
        lp = pm.logp(rv, cats)
    out.append(("cumulative", [e, th], [lp, pt.sum(lp), pt.grad(pt.sum(lp), e),
                                        pt.grad(pt.sum(lp), th)],
                [eta_v / 5, np.array([-2.0, 0.3, 1.1, 2.5])]))
    es = pt.dvector("eta_sigma")
    yv = rng.normal(size=n)
    lp = pm.logp(pm.Normal.dist(e, pt.exp(es)), yv)
    out.append(("gaussian_sigma", [e, es], [lp, pt.sum(lp), pt.grad(pt.sum(lp), e),
                                            pt.grad(pt.sum(lp), es)],
                [eta_v / 10, eta_v / 25]))
    return out


def _uses_vector_op(scalar_op):
    from pytensor.scalar import Composite
    if isinstance(scalar_op, Composite):
        return any(type(n.op) in v.KERNELS for n in scalar_op.fgraph.apply_nodes)
    return type(scalar_op) in v.KERNELS


def test_numba_graphs_with_vector_loops_equal_the_c_backend():
    """The numba mode of the sampler (vector ops, 8-accumulator sums, contiguous inputs) and
    the C mode give the same log-densities, sums and gradients to 1e-12 relative."""
    from pytensor.tensor.elemwise import Elemwise

    from mixedformula.backends.pymc import vector_loops
    swapped = 0
    for name, inputs, outputs, values in _family_graphs():
        f_numba = _compiled(inputs, outputs, "numba")
        f_c = _compiled(inputs, outputs, "c")
        nodes = f_numba.maker.fgraph.apply_nodes
        swapped += any(isinstance(n.op, Elemwise) and _uses_vector_op(n.op.scalar_op)
                       for n in nodes)
        assert any(isinstance(n.op, vector_loops.AccumulatorSum) for n in nodes), name
        for a, b in zip(f_numba(*values), f_c(*values)):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-300, err_msg=name)
    assert swapped >= 1, swapped       # poisson: its one exp per row


def test_accumulator_sum_is_exact_on_integers_and_handles_short_vectors():
    import pytensor
    import pytensor.tensor as pt

    from mixedformula.backends.pymc import vector_loops
    x = pt.dvector("x")
    f = _compiled([x], [pt.sum(x)], "numba")
    assert any(isinstance(n.op, vector_loops.AccumulatorSum) for n in f.maker.fgraph.apply_nodes)
    for n in (0, 1, 7, 8, 9, 23, 1000):
        xv = np.arange(n, dtype=float) - 3.0
        assert float(f(xv)[0]) == float(np.sum(xv))
    assert np.isnan(f(np.array([1.0, np.nan, 2.0]))[0])
    assert f(np.array([1.0, np.inf] * 9))[0] == np.inf
    del pytensor
