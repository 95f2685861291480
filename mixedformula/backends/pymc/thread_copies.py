"""Copies of a compiled PyTensor Function that threads can run concurrently.

nutpie's C backend (``from_pyfunc``) runs every chain in its own thread and calls the model's
log-density from each; two threads must never run one Function (its VM reuses input, output and
intermediate buffers between calls), so each chain gets a copy.  ``Function.copy()`` (PyTensor
2.38, ``compile/function/types.py``) clones the graph's Apply nodes and builds new thunks and
storage for them, but ``Apply.clone`` keeps the node's *Op instance*.  That is harmless for ops
whose state lives in the thunk (C ops: one C struct per thunk; Blockwise: the vectorised core
thunk and its storage are made per node in ``prepare_node``), but some ops keep a compiled inner
Function on ``self`` and run it at evaluation time:

* ``OpFromGraph`` (``compile/builders.py``; also its subclasses ``AllocDiag``, used by the
  gradients of ``cholesky`` / ``solve_triangular``, and ``OpWithCoreShape``): ``perform`` calls
  ``self.fn``, the inner Function cached in ``self._fn``;
* ``Scan`` (``scan/op.py``): ``make_thunk`` binds the cython loop to ``self.fn``'s VM and its
  input/output storage, ``perform`` uses ``self.fn`` too;
* ``Blockwise`` over such a core op: the core thunk calls the core op's ``perform``;
* any other op holding a compiled Function in ``_fn`` (``tensor/optimize``'s scipy wrappers).

With a plain copy every chain thread writes its inputs into, and reads its outputs from, the one
inner Function's storage.  Interleaved, a thread reads another's intermediate values: a crash at
best ("DimShuffle: Input has less dimensions than expected", missing inputs), a gradient of the
wrong chain's point at worst — wrong draws without an error.

:func:`thread_copy` gives each such op in the copy a private shallow copy whose inner Function is
itself a :func:`thread_copy` of the original's (recursively: an inner graph may hold such ops
too).  Nothing is re-rewritten or recompiled: ``Function.copy`` only re-links the already
rewritten graph (the C modules come from PyTensor's in-process cache).  To make the copy's
thunks use the private ops, the original graph's nodes point at them while ``Function.copy``
clones the graph, and back afterwards; the original's own thunks were built before and keep
their bound ops, and one process-wide lock serialises the copying.  The arithmetic is that of the
original Function: the copies give the same numbers bit for bit (tests/test_thread_copies.py).
"""

from __future__ import annotations

import copy
import threading

_LOCK = threading.RLock()     # re-entrant: thread_copy recurses into inner Functions


def thread_copy(fn):
    """A copy of the compiled PyTensor Function ``fn`` that shares no mutable state with ``fn``
    or with other copies (inner Functions of OpFromGraph / Scan / Blockwise ops included)."""
    with _LOCK:
        swaps = []
        for node in fn.maker.fgraph.apply_nodes:
            private = _private_op(node.op)
            if private is not None:
                swaps.append((node, node.op, private))
        try:
            for node, _, private in swaps:
                node.op = private
            f = fn.copy()
        finally:
            for node, op, _ in swaps:
                node.op = op
    return f


def _private_op(op):
    """A shallow copy of ``op`` with private inner Functions, or None if ``op`` keeps none."""
    from pytensor.compile.builders import OpFromGraph
    from pytensor.compile.function.types import Function
    from pytensor.scan.op import Scan
    from pytensor.tensor.blockwise import Blockwise

    if isinstance(op, Blockwise):
        core = _private_op(op.core_op)
        if core is None:
            return None
        private = copy.copy(op)
        private.core_op = core
        return private
    if isinstance(op, OpFromGraph | Scan):
        inner = op.fn                       # compiles the inner Function if not yet done
    elif isinstance(getattr(op, "_fn", None), Function):
        inner = op._fn
    else:
        return None
    private = copy.copy(op)
    private._fn = thread_copy(inner)
    if getattr(op, "_fn_wrapped", None) is not None:     # tensor/optimize: a cache around _fn
        private._fn_wrapped = type(op._fn_wrapped)(private._fn)
    return private
