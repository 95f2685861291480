"""NUTS on JAX: ``sampler="numpyro"`` or ``"blackjax"`` through PyMC's JAX backend.

The emitted ``pm.Model`` (either engine) is compiled by pytensor's JAX linker into one
log-density function, and ``pm.sample(nuts_sampler=...)`` (:mod:`pymc.sampling.jax`) runs
numpyro's or blackjax's NUTS on it with the chains **vectorised** (``jax.vmap``: all chains
advance in lockstep as one batched computation, which is what a GPU wants; on a CPU they share
one core). JAX uses a GPU when one is installed (``pip install "jax[cuda12]"``); otherwise the
CPU. Both samplers adapt a diagonal mass matrix and the step size during ``tune``, as PyMC and
nutpie do.

Sample statistics are brought to PyMC's names so the summary and the report read them
unchanged: both libraries record ``diverging`` (post-warmup divergent transitions) and
``tree_depth`` (numpyro: ⌊log₂ n_steps⌋ + 1, blackjax: the number of trajectory doublings);
from the tree depth this module adds ``reached_max_treedepth = tree_depth ≥ MAX_TREE_DEPTH``,
the limit both samplers are given (10, as in Stan, PyMC and nutpie).

Same seed → same draws: the seed fixes the jittered initial points and the JAX PRNG key of
every chain (``jax.random.split``); JAX on a given device is deterministic.
"""

from __future__ import annotations

import warnings

from ...errors import MixedFormulaError

JAX_SAMPLERS = ("numpyro", "blackjax")
CHAIN_METHOD = "vectorized"
MAX_TREE_DEPTH = 10

_LIBRARY = {"numpyro": "numpyro", "blackjax": "blackjax"}
# name of the tree-depth limit in each library's NUTS kernel
_DEPTH_KWARG = {"numpyro": "max_tree_depth", "blackjax": "max_num_doublings"}


def check_available(sampler: str) -> None:
    """Raise a clear error when jax or the sampler library is not installed."""
    if sampler not in JAX_SAMPLERS:
        raise MixedFormulaError(f"{sampler!r} is not a JAX sampler ({', '.join(JAX_SAMPLERS)})")
    missing = []
    for lib in ("jax", _LIBRARY[sampler]):
        try:
            __import__(lib)
        except ImportError:
            missing.append(lib)
    if missing:
        raise MixedFormulaError(
            f"sampler={sampler!r} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            "pip install 'mixedformula[jax]' (or use sampler='nutpie' or 'pymc')")


def sample_jax(model, sampler: str, draws: int, tune: int, chains: int, seed: int,
               progressbar: bool = False, target_accept: float | None = None):
    """Sample ``model`` with numpyro's or blackjax's NUTS, chains vectorised.

    Returns PyMC's InferenceData (``posterior`` with the model's variable names,
    ``sample_stats`` with ``diverging``, ``tree_depth`` and ``reached_max_treedepth``).
    """
    check_available(sampler)
    import pymc as pm

    from .marginal_block_op import register
    register("jax")
    kwargs = {"chain_method": CHAIN_METHOD,
              "nuts_kwargs": {_DEPTH_KWARG[sampler]: MAX_TREE_DEPTH}}
    with model, warnings.catch_warnings():
        # PyMC compiles the initial-point and deterministics functions with PyTensor's C
        # backend, whose BLAS probe warns when no BLAS library links (pip installs); these
        # small graphs do not use BLAS (as in sampling._load_functions)
        warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
        idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                          nuts_sampler=sampler, nuts_sampler_kwargs=kwargs,
                          target_accept=target_accept or 0.8, progressbar=progressbar,
                          compute_convergence_checks=False)
    return with_treedepth_flag(idata, MAX_TREE_DEPTH)


def with_treedepth_flag(idata, max_depth: int):
    """Add PyMC's ``reached_max_treedepth`` (bool, chain × draw) from ``tree_depth``."""
    ss = idata.sample_stats if "sample_stats" in idata.groups() else None
    if ss is None or "tree_depth" not in ss or "reached_max_treedepth" in ss:
        return idata
    idata.sample_stats["reached_max_treedepth"] = ss["tree_depth"] >= max_depth
    return idata
