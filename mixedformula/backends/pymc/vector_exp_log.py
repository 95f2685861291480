r"""e^x and log x as PyTensor scalar ops whose numba code is branch-free, so that LLVM vectorises
the elementwise loops that contain them.

Why hand-written: numba compiles ``np.exp`` / ``np.log`` of a float64 to a call of libm's scalar
function per element (no SVML in the llvmlite wheel: ``numba -s`` says SVML is not
operational), and a loop with a call in it is not vectorised.  These kernels are straight-line
arithmetic, bit operations and selects, which LLVM turns into AVX code (4 rows per instruction).
The C backend and JAX are unchanged: the ops subclass PyTensor's ``Exp`` / ``Log`` and inherit
their ``c_code`` (libm) and JAX mapping (``jnp.exp`` / ``jnp.log``).

exp (Cody–Waite reduction, as fdlibm / Cephes):

    k = round(x log₂e),   r = (x − k ln2_hi) − k ln2_lo   (|r| ≤ ln2/2; k ln2_hi is exact),
    eʳ = Σ_{i≤13} rⁱ/i!   (Horner; truncation r¹⁴/14! < 5e-18 relative),
    eˣ = eʳ · 2^{k₁} · 2^{k₂},   k₁ = ⌊k/2⌋, k₂ = k − k₁   (each 2^{kᵢ} built in the exponent
    bits and a normal number, so results near the overflow and in the subnormal range are
    rounded once, by the last product).

x is clamped to [−750, 710] first (exp(−inf) = 0 and exp(710) = inf come out of the same
arithmetic), a NaN is returned as it is.  Max error 1 ulp on a dense grid over [−745, 709.78]
(tests/test_vector_exp_log.py asserts ≤ 2 ulp for normal results, and 1 ulp of the smallest
subnormal below).

log (fdlibm's ``__ieee754_log``):

    x = 2ᵉ m, m ∈ [√½, √2)   (subnormals scaled by 2⁵⁴ first),   f = m − 1,   s = f / (2 + f),
    log m = f − ½f² + s(½f² + R(s²)),   R the degree-7 minimax polynomial in s² of fdlibm,
    log x = e ln2_hi − ((½f² − (s(½f² + R) + e ln2_lo)) − f).

log(0) = −inf, log(x < 0) = NaN, log(inf) = inf, log(NaN) = NaN by selects at the end.  Error
< 1 ulp (fdlibm); the test asserts ≤ 2 ulp over the whole positive double range.

The gradients are written with the same ops (d eˣ = eˣ dx, d log x = dx / x), so the forward
and backward graphs share one evaluation after PyTensor's merge.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import types as nt
from numba.extending import intrinsic
from pytensor import scalar as ps
from pytensor.scalar import math as psm
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
from pytensor.link.numba.dispatch.scalar import scalar_op_cache_key
from pytensor.tensor.elemwise import Elemwise

# bump when a kernel changes: part of the numba cache key of every graph using the ops
KERNEL_VERSION = 2

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01        # 32 significant bits: k · LN2_HI exact for |k| < 2²⁰
LN2_LO = 1.90821492927058770002e-10
_C = tuple(1.0 / float(np.prod(np.arange(1, i + 1, dtype=float))) for i in range(14))
C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13 = _C[2:]
LG1 = 6.666666666666735130e-01             # fdlibm's log polynomial
LG2 = 3.999999999940941908e-01
LG3 = 2.857142874366239149e-01
LG4 = 2.222219843214978396e-01
LG5 = 1.818357216161805012e-01
LG6 = 1.531383769920937332e-01
LG7 = 1.479819860511658591e-01
SQRT2 = 1.4142135623730951
TWO54 = 18014398509481984.0
TINY = 2.2250738585072014e-308             # smallest normal double


@intrinsic
def _i2f(typingctx, i):
    """The float64 whose bits are the int64 ``i``."""
    def codegen(context, builder, signature, args):
        import llvmlite.ir as ir
        return builder.bitcast(args[0], ir.DoubleType())
    return nt.float64(nt.int64), codegen


@intrinsic
def _f2i(typingctx, x):
    """The int64 whose bits are the float64 ``x``."""
    def codegen(context, builder, signature, args):
        import llvmlite.ir as ir
        return builder.bitcast(args[0], ir.IntType(64))
    return nt.int64(nt.float64), codegen


@intrinsic
def _fdiv(typingctx, a, b):
    """a / b as one IEEE division (no ZeroDivisionError check of numba's default error model,
    whose branch would stop the loop from vectorising; b is never 0 where it is used)."""
    def codegen(context, builder, signature, args):
        return builder.fdiv(args[0], args[1])
    return nt.float64(nt.float64, nt.float64), codegen


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def exp_kernel(x):
    """e^x for a float64 (module docstring)."""
    xc = x if x == x else 0.0                       # NaN: computed on 0, returned as NaN
    xc = 710.0 if xc > 710.0 else xc
    xc = -750.0 if xc < -750.0 else xc
    k = np.floor(xc * LOG2E + 0.5)
    r = (xc - k * LN2_HI) - k * LN2_LO
    p = C13
    p = p * r + C12
    p = p * r + C11
    p = p * r + C10
    p = p * r + C9
    p = p * r + C8
    p = p * r + C7
    p = p * r + C6
    p = p * r + C5
    p = p * r + C4
    p = p * r + C3
    p = p * r + C2
    p = p * r + 1.0
    p = p * r + 1.0
    ki = np.int64(k)
    k1 = ki >> 1
    k2 = ki - k1
    out = p * _i2f((k1 + 1023) << 52) * _i2f((k2 + 1023) << 52)
    return out if x == x else x


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def log_kernel(x):
    """log x for a float64 (module docstring)."""
    sub = x < TINY
    xs = x * TWO54 if sub else x
    bits = _f2i(xs)
    e = ((bits >> 52) & 0x7FF) - 1023 - (54 if sub else 0)
    m = _i2f((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)     # [1, 2)
    big = m > SQRT2
    m = m * 0.5 if big else m
    dk = np.float64(e + (1 if big else 0))
    f = m - 1.0
    s = _fdiv(f, 2.0 + f)
    z = s * s
    w = z * z
    t1 = w * (LG2 + w * (LG4 + w * LG6))
    t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)))
    R = t2 + t1
    hfsq = 0.5 * f * f
    out = dk * LN2_HI - ((hfsq - (s * (hfsq + R) + dk * LN2_LO)) - f)
    out = -np.inf if x == 0.0 else out
    out = np.nan if x < 0.0 else out
    return out if x < np.inf else x                 # inf and NaN as they are


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def log1p_kernel(x):
    """log(1 + x), Kahan's formula: u = 1 + x, x when u = 1, else log u · x / (u − 1)."""
    u = 1.0 + x
    w = u - 1.0
    out = log_kernel(u) * _fdiv(x, w if w != 0.0 else 1.0)
    out = x if w == 0.0 else out
    return x if x == np.inf else out


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def expm1_kernel(x):
    """e^x − 1, Kahan's formula: u = e^x, x when u = 1, −1 when u − 1 = −1, else
    (u − 1) x / log u."""
    u = exp_kernel(x)
    w = u - 1.0
    lu = log_kernel(u)
    out = w * _fdiv(x, lu if lu != 0.0 else 1.0)
    out = x if u == 1.0 else out
    out = -1.0 if w == -1.0 else out
    return u if u == np.inf else out


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def softplus_kernel(x):
    """log(1 + e^x) = max(x, 0) + log1p(e^{−|x|})."""
    return (x if x > 0.0 else 0.0) + log1p_kernel(exp_kernel(-abs(x)))


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def sigmoid_kernel(x):
    """1 / (1 + e^{−x}) from e = e^{−|x|}: 1/(1 + e) for x ≥ 0, e/(1 + e) below (no
    cancellation in either tail)."""
    e = exp_kernel(-abs(x))
    s = _fdiv(1.0, 1.0 + e)
    return s if x >= 0.0 else e * s


@numba.njit(inline="always", error_model="numpy", fastmath=False)
def log1mexp_kernel(x):
    """log(1 − e^x) (x ≤ 0; PyTensor's ``log1mexp``): log(−expm1 x) for x ≥ −log 2,
    log1p(−e^x) below (Mächler 2012), from one u = e^x (expm1 by Kahan's formula as in
    :func:`expm1_kernel`) and one log of the selected argument (−expm1 x, or 1 − u with
    Kahan's log1p correction)."""
    u = exp_kernel(x)
    w = u - 1.0
    lu = log_kernel(u)
    em1 = w * _fdiv(x, lu if lu != 0.0 else 1.0)
    em1 = x if u == 1.0 else em1
    near = x >= -0.6931471805599453
    v = 1.0 - u
    lg = log_kernel(-em1 if near else v)            # one log for both branches
    d = v - 1.0                                     # log1p(−u) = log(1 − u) · (−u) / ((1 − u) − 1)
    far = lg * _fdiv(-u, d if d != 0.0 else 1.0)
    far = -u if d == 0.0 else far
    return lg if near else far


class _VectorGradient:
    """The shared ``L_op`` of the vector ops: PyTensor's for discrete outputs, else the op's
    :meth:`gradient` of (output gradient gz, input x, output y)."""

    def L_op(self, inputs, outputs, gout):
        if outputs[0].type in ps.discrete_types:
            return super().L_op(inputs, outputs, gout)
        return (self.gradient(gout[0], inputs[0], outputs[0]),)


class VectorExp(_VectorGradient, ps.Exp):
    """e^x (PyTensor's ``Exp``: C and JAX code) with the branch-free numba kernel."""

    def gradient(self, gz, x, y):
        return gz * vector_exp(x)


class VectorLog(_VectorGradient, ps.Log):
    """log x (PyTensor's ``Log``: C and JAX code) with the branch-free numba kernel."""

    def gradient(self, gz, x, y):
        return gz / x


class VectorLog1p(_VectorGradient, ps.Log1p):
    """log(1 + x) (PyTensor's ``Log1p``: C and JAX code) with the branch-free numba kernel."""

    def gradient(self, gz, x, y):
        return gz / (1.0 + x)


class VectorExpm1(_VectorGradient, ps.Expm1):
    """e^x − 1 (PyTensor's ``Expm1``: C and JAX code) with the branch-free numba kernel."""

    def gradient(self, gz, x, y):
        return gz * vector_exp(x)


class VectorSoftplus(_VectorGradient, psm.Softplus):
    """log(1 + e^x) (PyTensor's ``Softplus``: C and JAX code) with the branch-free numba
    kernel."""

    def gradient(self, gz, x, y):
        return gz * vector_sigmoid(x)


class VectorSigmoid(_VectorGradient, psm.Sigmoid):
    """1 / (1 + e^{−x}) (PyTensor's ``Sigmoid``: C and JAX code) with the branch-free numba
    kernel."""

    def gradient(self, gz, x, y):
        return gz * y * (1.0 - y)


class VectorLog1mexp(_VectorGradient, psm.Log1mexp):
    """log(1 − e^x) (PyTensor's ``Log1mexp``: C and JAX code) with the branch-free numba
    kernel."""

    def gradient(self, gz, x, y):
        return gz * -1.0 / vector_expm1(-x)       # d/dx = −e^x / (1 − e^x) = −1/(e^{−x} − 1)


vector_exp = VectorExp(ps.upgrade_to_float, name="vector_exp")
vector_log = VectorLog(ps.upgrade_to_float, name="vector_log")
vector_log1p = VectorLog1p(ps.upgrade_to_float, name="vector_log1p")
vector_expm1 = VectorExpm1(ps.upgrade_to_float, name="vector_expm1")
vector_softplus = VectorSoftplus(ps.upgrade_to_float, name="vector_softplus")
vector_sigmoid = VectorSigmoid(ps.upgrade_to_float, name="vector_sigmoid")
vector_log1mexp = VectorLog1mexp(ps.upgrade_to_float, name="vector_log1mexp")
exp = Elemwise(vector_exp, name="vector_exp")
log = Elemwise(vector_log, name="vector_log")
log1p = Elemwise(vector_log1p, name="vector_log1p")
expm1 = Elemwise(vector_expm1, name="vector_expm1")
softplus = Elemwise(vector_softplus, name="vector_softplus")
sigmoid = Elemwise(vector_sigmoid, name="vector_sigmoid")
log1mexp = Elemwise(vector_log1mexp, name="vector_log1mexp")

# the scalar op each replaces (vector_loops.py swaps them in numba graphs), and its kernel
REPLACEMENTS = {ps.Exp: vector_exp, ps.Log: vector_log, ps.Log1p: vector_log1p,
                ps.Expm1: vector_expm1, psm.Softplus: vector_softplus,
                psm.Sigmoid: vector_sigmoid, psm.Log1mexp: vector_log1mexp}
KERNELS = {VectorExp: exp_kernel, VectorLog: log_kernel, VectorLog1p: log1p_kernel,
           VectorExpm1: expm1_kernel, VectorSoftplus: softplus_kernel,
           VectorSigmoid: sigmoid_kernel, VectorLog1mexp: log1mexp_kernel}


def _float64_only(node, name):
    dtypes = {v.type.dtype for v in (*node.inputs, *node.outputs)}
    if dtypes != {"float64"}:
        raise NotImplementedError(f"{name} is float64 only (got {sorted(dtypes)})")


def _register(op_type, kernel):
    @register_funcify_and_cache_key(op_type)
    def _numba_vector_op(op, node, **kwargs):
        _float64_only(node, op.name)

        # never fastmath (PyTensor's NUMBA mode default): reassociation would undo the
        # reductions (Cody–Waite, Kahan's log1p/expm1); LLVM keeps these flags when it inlines
        @numba_basic.numba_njit(fastmath=False, error_model="numpy")
        def vector_op(x):
            return kernel(x)
        return vector_op, scalar_op_cache_key(op, kernel=KERNEL_VERSION)


for _op_type, _kernel in KERNELS.items():
    _register(_op_type, _kernel)
