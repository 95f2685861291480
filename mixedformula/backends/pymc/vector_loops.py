r"""Graph rewrites of the numba backend that let LLVM vectorise the per-row loops of a model.

Two things keep PyTensor's numba loops over the rows scalar (measured on the Poisson likelihood
Σ y η − e^η of benchmarks case ``offset``, 20000 rows):

* ``exp`` / ``log`` compile to one libm call per element (no SVML in numba here), so the fused
  elementwise loop around them is not vectorised: :func:`vector_exp_log_ops` swaps PyTensor's
  ``Exp`` / ``Log`` for the branch-free ops of :mod:`.vector_exp_log` (float64 nodes only),
  before elementwise fusion, so the forward and gradient uses of one ``exp`` merge and land in
  the same fused loop;
* a full sum of a vector is one serial chain of additions (numba's ``array.sum()``, and a sum
  fused with its elementwise input by PyTensor's ``local_careduce_fusion``: strict IEEE order,
  one add per 4 cycles of latency).  :class:`AccumulatorSum` sums with 8 independent
  accumulators s_j = Σ_{i ≡ j (mod 8)} x_i, then ((s₀ + s₁) + (s₂ + s₃)) + ((s₄ + s₅) + (s₆ + s₇))
  plus the tail, in a fixed order: the same inputs give the same bits on every call, process and
  thread (deterministic draws), but the rounding differs from the serial sum's (by about
  n·ε·Σ|x_i| at worst, and typically less: each chain is 8 times shorter).
  :func:`accumulator_sums` puts it in place of full ``Sum`` of float64 vectors, after fusion;
  the numba mode built here leaves ``local_careduce_fusion`` out, so the elementwise loop
  (vectorised) and the sum (8 chains) stay two loops;
* numba types a view (``Squeeze`` of a one-column design matrix, a ``Subtensor`` slice) as an
  array of any layout, and a loop reading one is not vectorised (it cannot assume unit stride;
  the exp loop of the ``offset`` case: 226 µs per 20000 rows against 38 µs on a C-typed array):
  :func:`contiguous_inputs` passes such inputs of an elementwise loop through
  :class:`ContiguousView`, numba's ``np.ascontiguousarray`` (the same memory, C-typed, when it
  is contiguous, else a copy).

The C backend is not touched (its modes do not get these rewrites).
"""

from __future__ import annotations

from hashlib import sha256

import numpy as np
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import dfs_rewriter, node_rewriter
from pytensor.link.numba.dispatch import basic as numba_basic
from pytensor.scalar import Composite
from pytensor.link.numba.dispatch.basic import register_funcify_and_cache_key
from pytensor.tensor.elemwise import DimShuffle, Elemwise
from pytensor.tensor.subtensor import Subtensor
from pytensor.tensor.math import Sum

from . import vector_exp_log

SUM_VERSION = 1


def _all_float64(node) -> bool:
    return all(v.type.dtype == "float64" for v in (*node.inputs, *node.outputs))


def _replaceable(scalar_node) -> bool:
    """A scalar node of a replaceable op (:data:`.vector_exp_log.REPLACEMENTS`) on float64."""
    return (type(scalar_node.op) in vector_exp_log.REPLACEMENTS
            and all(v.type.dtype == "float64"
                    for v in (*scalar_node.inputs, *scalar_node.outputs)))


def _vector_count(node) -> int:
    """How many replaceable scalar applications the elementwise ``node`` makes (a Composite:
    its inner nodes)."""
    scalar_op = node.op.scalar_op
    if isinstance(scalar_op, Composite):
        return sum(_replaceable(n) for n in scalar_op.fgraph.apply_nodes)
    return int(type(scalar_op) in vector_exp_log.REPLACEMENTS and _all_float64(node))


def _with_vector_ops(comp: Composite) -> Composite:
    """``comp`` with each replaceable scalar node swapped for its vector op."""
    memo = {i: i.type() for i in comp.fgraph.inputs}
    for n in comp.fgraph.toposort():
        op = vector_exp_log.REPLACEMENTS[type(n.op)] if _replaceable(n) else n.op
        outs = op.make_node(*[memo.get(i, i) for i in n.inputs]).outputs
        memo.update(zip(n.outputs, outs))
    return Composite([memo[i] for i in comp.fgraph.inputs], [memo[o] for o in comp.fgraph.outputs])


def _swap_exp_log(fgraph, node):
    """A fused elementwise loop (or a lone Elemwise) with exactly one exp/log/... of float64:
    that op → its :mod:`.vector_exp_log` op.  With two or more, PyTensor's numba loop is not
    vectorised (measured: the fused scalar function then stays a call in the loop, and LLVM
    does not vectorise a loop with a call), and a scalar polynomial exp costs more than libm's
    (exp(x) + exp(z) per row: 183 µs per 20000 rows with libm, 403 µs with the kernel): those
    loops keep libm."""
    if _vector_count(node) != 1:
        return None
    scalar_op = node.op.scalar_op
    if isinstance(scalar_op, Composite):
        new = _with_vector_ops(scalar_op)
    else:
        new = vector_exp_log.REPLACEMENTS[type(scalar_op)]
    return Elemwise(new, inplace_pattern=node.op.inplace_pattern)(*node.inputs, return_list=True)


vector_exp_log_ops = node_rewriter([Elemwise])(_swap_exp_log)


class AccumulatorSum(Sum):
    """Sum of all entries of a float64 vector with 8 accumulators (module docstring); C code,
    gradient and everything else are PyTensor's ``Sum``."""


def _to_accumulator_sum(fgraph, node):
    op = node.op
    if type(op) is not Sum or node.inputs[0].ndim != 1 or not _all_float64(node):
        return None
    if op.acc_dtype not in (None, "float64"):
        return None
    return [AccumulatorSum(axis=None, dtype="float64", acc_dtype="float64")(node.inputs[0])]


accumulator_sums = node_rewriter([Sum])(_to_accumulator_sum)


@register_funcify_and_cache_key(AccumulatorSum)
def _numba_accumulator_sum(op, node, **kwargs):
    @numba_basic.numba_njit
    def accumulator_sum(x):
        n = x.shape[0]
        m = n - n % 8
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
        for i in range(0, m, 8):
            s0 += x[i]
            s1 += x[i + 1]
            s2 += x[i + 2]
            s3 += x[i + 3]
            s4 += x[i + 4]
            s5 += x[i + 5]
            s6 += x[i + 6]
            s7 += x[i + 7]
        t = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
        for i in range(m, n):
            t += x[i]
        return np.asarray(t)

    return accumulator_sum, sha256(str(("AccumulatorSum", SUM_VERSION)).encode()).hexdigest()


class ContiguousView(Op):
    """x as a C-contiguous array: x itself when it is one (numba: the same memory, typed C),
    else a copy."""

    __props__ = ()
    view_map = {0: [0]}

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):
        outputs[0][0] = np.ascontiguousarray(inputs[0])

    def infer_shape(self, fgraph, node, shapes):
        return shapes


contiguous_view = ContiguousView()


@register_funcify_and_cache_key(ContiguousView)
def _numba_contiguous_view(op, node, **kwargs):
    @numba_basic.numba_njit
    def contiguous(x):
        return np.ascontiguousarray(x)
    return contiguous, sha256(b"ContiguousView 1").hexdigest()


def _is_view(var) -> bool:
    return (var.owner is not None and isinstance(var.owner.op, (DimShuffle, Subtensor))
            and not all(var.type.broadcastable))


def _contiguous_inputs(fgraph, node):
    """An elementwise loop's inputs that are views (DimShuffle, Subtensor) → ContiguousView."""
    if not any(_is_view(v) for v in node.inputs):
        return None
    inputs = [contiguous_view(v) if _is_view(v) else v for v in node.inputs]
    return node.op.make_node(*inputs).outputs


contiguous_inputs = node_rewriter([Elemwise])(_contiguous_inputs)


def with_vector_loops(mode):
    """``mode`` (PyTensor's NUMBA mode, possibly with other rewrites) with the rewrites of
    this module and without ``local_careduce_fusion``."""
    return (mode.excluding("local_careduce_fusion")
            .register((dfs_rewriter(vector_exp_log_ops, name="vector_exp_log_ops"), 49.3))
            .register((dfs_rewriter(accumulator_sums, name="accumulator_sums"), 49.4))
            .register((dfs_rewriter(contiguous_inputs, name="contiguous_inputs"), 49.41)))
