"""The fused one-factor marginal log-likelihood op (issue 7, ``marginal_block_op.py``).

The op (its ``perform``, i.e. the numba kernel called from Python) is checked against dense
Gaussian algebra and finite differences in test_marginal_kernels.py: every one-factor model
there goes through it.  Here: the kernel and the JAX implementation equal an independent,
vectorised numpy transcription of the module's formulas (to rounding, 1e-9 relative) for shared
and per-level factors, Q = 1…5 and p = 0…3; compiled through PyTensor's NUMBA and JAX linkers
the graph gives what the Python linker gives; a second derivative is refused with a clear
error rather than a wrong number.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from mixedformula.backends.pymc import marginal_block_op as mbo


def _inputs(Q, p, J=7, per_level=False, seed=0):
    rng = np.random.default_rng(seed + 10 * Q + p)
    Z = rng.normal(size=(J, 9, Q))
    X = rng.normal(size=(J, 9, p))
    A = np.einsum("jnq,jnr->jqr", Z, Z)
    B = np.einsum("jnq,jnp->jqp", Z, X)
    ce = rng.normal(size=(J, Q)) * 3
    Xall = X.reshape(J * 9, p)
    XtX = Xall.T @ Xall + np.eye(p)
    T = np.tril(rng.normal(size=(J if per_level else 1, Q, Q)) * 0.6)
    T[:, np.arange(Q), np.arange(Q)] = np.abs(T[:, np.arange(Q), np.arange(Q)]) + 0.4
    return (rng.normal(size=p), T, np.array(1.3), XtX, rng.normal(size=p) * 0.1,
            np.array(40.0), A, B, ce, np.array(float(J * 9)))


def _numpy_value_and_grad(beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N):
    """The module docstring's F and its gradient, vectorised over levels with numpy."""
    tau = float(sigma) ** 2
    d = beta - beta_ols
    XtXd = XtX @ d
    rtr = float(ete) + float(d @ XtXd)
    J, Q = A.shape[0], A.shape[1]
    Tj = np.broadcast_to(T, (J, Q, Q))
    s = ce - B @ d
    AT = A @ Tj
    K = np.swapaxes(Tj, -1, -2) @ AT
    M = K / tau + np.eye(Q)
    Minv = np.linalg.inv(M)
    w = np.einsum("jab,ja->jb", Tj, s)
    a = np.einsum("jab,jb->ja", Minv, w)
    q = np.einsum("ja,ja->j", w, a)
    F = (float(N) * (math.log(2 * math.pi) + math.log(tau)) + np.linalg.slogdet(M)[1].sum()
         + rtr / tau - q.sum() / tau ** 2)
    g_beta = 2.0 * XtXd / tau + 2.0 / tau ** 2 * np.einsum("jqp,jqb,jb->p", B, Tj, a)
    ATa = np.einsum("jab,jb->ja", AT, a)
    g_T = (2.0 * AT @ Minv / tau
           - (2.0 * s[:, :, None] * a[:, None, :] - 2.0 * ATa[:, :, None] * a[:, None, :] / tau)
           / tau ** 2)
    if T.shape[0] == 1:
        g_T = g_T.sum(axis=0, keepdims=True)
    g_tau = (float(N) / tau - np.einsum("jab,jba->", Minv, K) / tau ** 2 - rtr / tau ** 2
             + 2.0 * q.sum() / tau ** 3 - np.einsum("ja,jab,jb->", a, K, a) / tau ** 4)
    return -0.5 * F, -0.5 * g_beta, -0.5 * g_T, -g_tau * float(sigma)


CASES = [(1, 2, False), (2, 2, False), (2, 3, True), (3, 0, False), (5, 1, True), (4, 3, False)]


@pytest.mark.parametrize("Q,p,per_level", CASES)
def test_numba_kernel_equals_numpy(Q, p, per_level):
    args = _inputs(Q, p, per_level=per_level)
    ref = _numpy_value_and_grad(*args)
    got = mbo.kernel()(*args[:2], float(args[2]), *args[3:])
    for r, g in zip(ref, got):
        np.testing.assert_allclose(g, r, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("Q,p,per_level", CASES)
def test_jax_equals_numpy(Q, p, per_level):
    import jax
    jax.config.update("jax_enable_x64", True)
    from pytensor.link.jax.dispatch import jax_funcify
    mbo.register("jax")
    args = _inputs(Q, p, per_level=per_level)
    ref = _numpy_value_and_grad(*args)
    got = jax_funcify(mbo.marginal_block_logp)(*args)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-9, atol=1e-10)


def _graph(Q, p, per_level):
    args = _inputs(Q, p, per_level=per_level)
    beta, T, sigma = pt.dvector("beta"), pt.dtensor3("T"), pt.dscalar("sigma")
    data = dict(zip(mbo.DATA, (pt.constant(a) for a in args[3:])))
    lp = mbo.block_loglik(beta, T, sigma, data)
    return [beta, T, sigma], [lp, *pytensor.grad(lp, [beta, T, sigma])], args[:3]


@pytest.mark.parametrize("mode", ["NUMBA", "JAX"])
def test_compiled_graph_equals_python_linker(mode):
    mbo.register("numba" if mode == "NUMBA" else "jax")
    inputs, outputs, values = _graph(3, 2, True)
    ref = pytensor.function(inputs, outputs, mode="FAST_COMPILE")(*values)
    got = pytensor.function(inputs, outputs, mode=mode)(*values)
    for r, g in zip(ref, got):
        np.testing.assert_allclose(np.asarray(g), r, rtol=1e-9, atol=1e-10)


def test_value_and_gradient_are_one_node():
    """A graph with the log density and its gradient runs the kernel once."""
    inputs, outputs, _ = _graph(2, 2, False)
    f = pytensor.function(inputs, outputs, mode="FAST_RUN")
    ops = [n.op for n in f.maker.fgraph.apply_nodes if isinstance(n.op, mbo.MarginalBlockLogp)]
    assert len(ops) == 1


def test_second_derivative_is_refused():
    inputs, outputs, _ = _graph(2, 1, False)
    beta = inputs[0]
    with pytest.raises(Exception, match="second derivatives"):
        pytensor.grad(outputs[1].sum(), beta)


def test_degenerate_sigma_gives_non_finite_values_not_an_exception():
    """σ = 0 (an underflowed draw) must give a non-finite log density, which NUTS rejects,
    not a ZeroDivisionError: nutpie aborts the whole run on an exception."""
    args = list(_inputs(2, 2))
    value, g_beta, g_T, g_sigma = mbo.kernel()(*args[:2], 0.0, *args[3:])
    assert not np.isfinite(value)
