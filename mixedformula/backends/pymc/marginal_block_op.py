r"""The one-grouping-factor Gaussian marginal log-likelihood and its gradient as one fused op.

Notation of :mod:`.marginal` (``stats.kind == "block"``): J levels, Q coefficients per level,
p fixed effects; per level the sufficient statistics A_j = Z_jᵀZ_j (Q×Q), B_j = Z_jᵀX (Q×p),
c_j = Z_jᵀe (e the OLS residuals), and globally XᵀX, β̂_ols, eᵀe, N.  With τ = σ², d = β − β̂,
T_j the level's factor (G_j = T_jT_jᵀ; one T for all levels, or one per level):

    s_j = c_j − B_j d,   w_j = T_jᵀ s_j,   K_j = T_jᵀ A_j T_j,   M_j = K_j/τ + I,
    a_j = M_j⁻¹ w_j,     q_j = w_jᵀ a_j,   rᵀr = eᵀe + dᵀXᵀX d,

    F = −2 log p(y | β, T, σ) = N log 2πτ + Σ_j log|M_j| + rᵀr/τ − Σ_j q_j/τ².

Gradient (M_j symmetric; derived by differentiating each term):

    ∂F/∂β   = 2 XᵀX d/τ + 2/τ² Σ_j B_jᵀ T_j a_j
    ∂F/∂T_j = 2 A_j T_j M_j⁻¹/τ − 1/τ² (2 s_j a_jᵀ − 2 A_j T_j a_j a_jᵀ/τ)
    ∂F/∂τ   = N/τ − Σ_j tr(M_j⁻¹K_j)/τ² − rᵀr/τ² + 2 Σ_j q_j/τ³ − Σ_j a_jᵀK_j a_j/τ⁴

and ∂/∂σ = 2σ ∂/∂τ.  One pass over the levels computes value and gradient, O(J(Q³ + Qp) + p²),
with no temporaries of size J.

Why an op (written by hand): PyTensor builds this from elementwise ops on length-J vectors
(:mod:`.marginal`), and its gradient graph is several times larger; compiled with numba,
sleepstudy's log density + gradient took 25 µs that way.  The fused kernel (numba, one loop over
the levels) computes both.  The numba linker inlines it into the compiled graph; ``perform``
calls the same compiled kernel from Python (C and Python linkers, ~10 µs per call); the JAX
linker uses ``jax.value_and_grad`` of the formula for F above.  tests/test_marginal_block_op.py
checks all three against an independent numpy implementation.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

LOG_2PI = math.log(2.0 * math.pi)
DATA = ("XtX", "beta_ols", "ete", "A", "B", "ce", "N")


class MarginalBlockLogp(Op):
    """(β (p,), T (1 or J, Q, Q), σ, XᵀX, β̂, eᵀe, A, B, c, N) ↦ (log p, ∂β, ∂T, ∂σ).

    The gradients are outputs of the same node, so a graph holding the log density and its
    gradient computes the kernel once.  Only the log density (output 0) is differentiable."""

    __props__ = ()

    def make_node(self, beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N):
        inputs = [pt.as_tensor_variable(v) for v in
                  (beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N)]
        inputs = [v if v.dtype == "float64" else pt.cast(v, "float64") for v in inputs]
        beta, T, sigma = inputs[:3]
        if beta.ndim != 1 or T.ndim != 3 or sigma.ndim != 0:
            raise ValueError("beta must be (p,), T (1 or J, Q, Q) and sigma a scalar")
        outputs = [pt.dscalar(), beta.type(), T.type(), sigma.type()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, output_storage):
        # the numba kernel from Python (C and Python linkers): ~10 µs per call for sleepstudy,
        # against ~300 µs for the same formulas in vectorised numpy
        beta, T, sigma, *data = (np.asarray(v, dtype=np.float64, order="C") for v in inputs)
        for out, value in zip(output_storage, kernel()(beta, T, float(sigma), *data)):
            out[0] = value

    def infer_shape(self, fgraph, node, shapes):
        return [(), shapes[0], shapes[1], ()]

    def connection_pattern(self, node):
        # every output depends on β, T, σ; the data never get a gradient
        return [[True] * 4] * 3 + [[False] * 4] * len(DATA)

    def grad(self, inputs, output_grads):
        from pytensor.gradient import DisconnectedType
        g = output_grads[0]
        if any(not isinstance(og.type, DisconnectedType) for og in output_grads[1:]):
            return [grad_not_implemented(self, i, v, "second derivatives of the marginal "
                                         "log-likelihood are not implemented")
                    for i, v in enumerate(inputs[:3])] + [DisconnectedType()() for _ in DATA]
        if isinstance(g.type, DisconnectedType):
            return [DisconnectedType()() for _ in inputs]
        _, d_beta, d_T, d_sigma = self(*inputs)
        return [g * d_beta, g * d_T, g * d_sigma] + [DisconnectedType()() for _ in DATA]


marginal_block_logp = MarginalBlockLogp()


def block_loglik(beta, T3, sigma, data: dict):
    """log p(y | β, T, σ) for one grouping factor: ``T3`` (1 or J, Q, Q), ``data`` the
    statistics as tensors (:func:`.marginal.stats_tensors`)."""
    # a JAX compile of this graph (PyMC's JAX samplers, get_jaxified_logp) needs the op
    # registered; JAX is imported by then in any session that will compile to it
    if "jax" in sys.modules:
        register("jax")
    return marginal_block_logp(beta, T3, sigma, *(data[k] for k in DATA))[0]


# --------------------------------------------------------------------------- numba

_KERNEL = None


def kernel():
    """The compiled kernel (numba, cached on disk by numba next to this module or in its
    user-wide cache): ``(β, T, σ as a float, XᵀX, β̂, eᵀe, A, B, c, N) → (log p, ∂β, ∂T, ∂σ)``."""
    global _KERNEL
    if _KERNEL is None:
        import numba
        # error_model="numpy": σ → 0 gives inf/nan like the elementwise graph, which NUTS
        # rejects; numba's default raises ZeroDivisionError (nutpie aborts the run on it)
        _KERNEL = numba.njit(nogil=True, fastmath=False, cache=True,
                             error_model="numpy")(_kernel)
    return _KERNEL


def _kernel(beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N):
    p = beta.shape[0]
    J, Q = A.shape[0], A.shape[1]
    shared_T = T.shape[0] == 1
    tau = sigma * sigma
    it = 1.0 / tau                     # divisions hoisted: they dominate a level's cost
    it2 = it * it
    d = beta - beta_ols
    XtXd = np.zeros(p)
    for i in range(p):
        acc = 0.0
        for k in range(p):
            acc += XtX[i, k] * d[k]
        XtXd[i] = acc
    rtr = ete[()]
    for i in range(p):
        rtr += d[i] * XtXd[i]
    g_beta = np.zeros(p)
    g_T = np.zeros(T.shape)
    logdet = 0.0
    q_sum = 0.0
    tr_sum = 0.0
    aKa_sum = 0.0
    s = np.empty(Q)
    w = np.empty(Q)
    a = np.empty(Q)
    Ta = np.empty(Q)
    ATa = np.empty(Q)
    AT = np.empty((Q, Q))
    K = np.empty((Q, Q))
    L = np.empty((Q, Q))
    Minv = np.empty((Q, Q))
    col = np.empty(Q)
    inv_diag = np.empty(Q)
    for j in range(J):
        t = T[0] if shared_T else T[j]
        for r in range(Q):
            acc = ce[j, r]
            for k in range(p):
                acc -= B[j, r, k] * d[k]
            s[r] = acc
        for r in range(Q):
            for c in range(Q):
                acc = 0.0
                for k in range(Q):
                    acc += A[j, r, k] * t[k, c]
                AT[r, c] = acc
        for r in range(Q):
            for c in range(Q):
                acc = 0.0
                for k in range(Q):
                    acc += t[k, r] * AT[k, c]
                K[r, c] = acc
        # Cholesky of M = K/τ + I (lower), written out: Q is small
        det = 1.0
        for c in range(Q):
            acc = K[c, c] * it + 1.0
            for k in range(c):
                acc -= L[c, k] * L[c, k]
            L[c, c] = math.sqrt(acc)
            det *= acc
            inv_diag[c] = 1.0 / L[c, c]
            for r in range(c + 1, Q):
                acc = K[r, c] * it
                for k in range(c):
                    acc -= L[r, k] * L[c, k]
                L[r, c] = acc * inv_diag[c]
        logdet += math.log(det)        # |M| = Π L_cc²
        # M⁻¹ column by column (L⁻¹ then L⁻ᵀ); w = Tᵀ s; a = M⁻¹ w
        for c in range(Q):
            for r in range(Q):
                acc = 1.0 if r == c else 0.0
                for k in range(r):
                    acc -= L[r, k] * col[k]
                col[r] = acc * inv_diag[r]
            for r in range(Q - 1, -1, -1):
                acc = col[r]
                for k in range(r + 1, Q):
                    acc -= L[k, r] * Minv[k, c]
                Minv[r, c] = acc * inv_diag[r]
        for r in range(Q):
            acc = 0.0
            for k in range(Q):
                acc += t[k, r] * s[k]
            w[r] = acc
        for r in range(Q):
            acc = 0.0
            for k in range(Q):
                acc += Minv[r, k] * w[k]
            a[r] = acc
        q = 0.0
        for r in range(Q):
            q += w[r] * a[r]
        q_sum += q
        for r in range(Q):
            acc = 0.0
            acc2 = 0.0
            for k in range(Q):
                acc += t[r, k] * a[k]
                acc2 += AT[r, k] * a[k]
            Ta[r] = acc
            ATa[r] = acc2
        for r in range(Q):
            for c in range(Q):
                tr_sum += Minv[r, c] * K[c, r]
                aKa_sum += a[r] * K[r, c] * a[c]
        for k in range(p):
            acc = 0.0
            for r in range(Q):
                acc += B[j, r, k] * Ta[r]
            g_beta[k] += acc
        jj = 0 if shared_T else j
        for r in range(Q):
            for c in range(Q):
                acc = 0.0
                for k in range(Q):
                    acc += AT[r, k] * Minv[k, c]
                g_T[jj, r, c] += 2.0 * (acc * it - (s[r] - ATa[r] * it) * a[c] * it2)
    n = N[()]
    F = (n * (math.log(2.0 * math.pi) + math.log(tau)) + logdet + rtr / tau
         - q_sum / (tau * tau))
    for k in range(p):
        g_beta[k] = -0.5 * (2.0 * XtXd[k] / tau + 2.0 / (tau * tau) * g_beta[k])
    g_T *= -0.5
    gF_tau = (n / tau - tr_sum / (tau * tau) - rtr / (tau * tau)
              + 2.0 * q_sum / (tau * tau * tau) - aKa_sum / (tau * tau * tau * tau))
    return np.asarray(-0.5 * F), g_beta, g_T, np.asarray(-gF_tau * sigma)



def _register_numba():
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    @register_funcify_default_op_cache_key(MarginalBlockLogp)
    def numba_funcify_marginal_block(op, node=None, **kwargs):
        compiled = kernel()

        def marginal_block(beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N):
            return compiled(beta, T, sigma[()], XtX, beta_ols, ete, A, B, ce, N)
        from pytensor.link.numba.dispatch.basic import numba_njit
        # PyTensor's numba cache keeps this op's code (and every graph linking it) under the
        # op's key: the kernel's source is part of it, so an edited kernel is never stale
        return numba_njit(marginal_block), _kernel_version()


def _kernel_version() -> int:
    import hashlib
    import inspect
    return int(hashlib.sha256(inspect.getsource(_kernel).encode()).hexdigest()[:15], 16)


def _register_jax():
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(MarginalBlockLogp)
    def jax_funcify_marginal_block(op, **kwargs):
        import jax
        import jax.numpy as jnp

        def logp(beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N):
            tau = sigma ** 2
            d = beta - beta_ols
            rtr = ete + d @ (XtX @ d)
            J, Q = A.shape[0], A.shape[1]
            Tj = jnp.broadcast_to(T, (J, Q, Q))
            s = ce - B @ d
            M = jnp.swapaxes(Tj, -1, -2) @ A @ Tj / tau + jnp.eye(Q)
            L = jnp.linalg.cholesky(M)
            w = jnp.einsum("jab,ja->jb", Tj, s)
            v = jax.scipy.linalg.solve_triangular(L, w[..., None], lower=True)[..., 0]
            logdet = 2.0 * jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)).sum()
            F = N * (LOG_2PI + jnp.log(tau)) + logdet + rtr / tau - (v ** 2).sum() / tau ** 2
            return -0.5 * F

        value_and_grad = jax.value_and_grad(logp, argnums=(0, 1, 2))

        def marginal_block(beta, T, sigma, XtX, beta_ols, ete, A, B, ce, N):
            value, (g_beta, g_T, g_sigma) = value_and_grad(beta, T, sigma, XtX, beta_ols,
                                                           ete, A, B, ce, N)
            return value, g_beta, g_T, g_sigma
        return marginal_block


_REGISTERED: set = set()


def register(backend: str) -> None:
    """Teach PyTensor's numba or JAX linker this op (once).  Called by the code that compiles
    with that linker (:mod:`.sampling`, :mod:`.jax_sampling`), not at import: importing
    PyTensor's JAX dispatch imports JAX (~1 s)."""
    if backend in _REGISTERED:
        return
    {"numba": _register_numba, "jax": _register_jax}[backend]()
    _REGISTERED.add(backend)
