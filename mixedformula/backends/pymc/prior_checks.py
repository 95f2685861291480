"""A graph rewrite removing PyMC's parameter checks on prior arguments held as shared data.

``CheckParameterValue(value, cond_1, ..., cond_k)`` (PyMC's ``check_parameters``: ``sigma > 0``
of a prior) is dropped — replaced by ``value`` — when every condition reads nothing but
constants and prior arguments (shared variables named ``priors.PRIOR_DATA_PREFIX*``).  With the
arguments as constants PyTensor folded these checks away; as shared data (so that other data's
brms default priors need no compile) they stayed in the graph (sleepstudy: 83 instead of 68
nodes, 5 more C modules).  ``priors.pymc_dist`` refuses non-positive scales when the model is
built, and a compiled model only gets prior arguments of a model built that way (``with_data``
from another built model), so the dropped checks could never fail.

Module level (not a closure) so that compiled PyTensor functions, whose mode holds the rewrite,
can be pickled into the disk cache.
"""

from __future__ import annotations

from pymc.logprob.utils import CheckParameterValue
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.rewriting.basic import in2out, node_rewriter
from pytensor.graph.traversal import graph_inputs

from ...priors import PRIOR_DATA_PREFIX


def _prior_data_only(var) -> bool:
    return all(isinstance(v, Constant) or isinstance(v, SharedVariable)
               and (v.name or "").startswith(PRIOR_DATA_PREFIX)
               for v in graph_inputs([var]))


def _drop_check(fgraph, node):
    """``value`` for a check whose conditions read only constants and prior arguments."""
    if all(_prior_data_only(c) for c in node.inputs[1:]):
        return [node.inputs[0]]
    return None


# not as a decorator: pickle finds the function under its own name
drop_prior_data_checks = node_rewriter([CheckParameterValue])(_drop_check)


def with_rewrite(mode_name: str):
    """PyTensor's mode ``mode_name`` (FAST_RUN or NUMBA) with :func:`drop_prior_data_checks`
    at position 0.5 (before canonicalisation's constant folding and fusion)."""
    from pytensor.compile import get_mode
    return get_mode(mode_name).register(
        (in2out(drop_prior_data_checks, name="drop_prior_data_checks"), 0.5))
