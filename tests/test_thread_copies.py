"""Per-thread copies of compiled PyTensor Functions (mixedformula.backends.pymc.thread_copies).

nutpie's C backend runs each chain in a thread with its own copy of the log-density Function.
``Function.copy()`` shares the Op instances, and OpFromGraph (e.g. ``AllocDiag`` in the
gradients of ``cholesky`` / ``solve_triangular``) and Scan ops run an inner Function cached on
the op: with plain copies the threads share that inner Function's storage.  Evidence (this
machine, PyTensor 2.38.3, the graphs below, 4 threads × 150 calls each): plain copies raised
"DimShuffle: Input has less dimensions than expected" in 3 of 4 threads (cholesky_solve), and
for the Blockwise graph 3 threads raised and 8 results differed from the single-threaded ones;
the scan graph gave no error (its cython loop holds the GIL through an evaluation, but it binds
the one shared inner Function); thread_copy: no error, every result bit for bit.  The
plain-copy outcome is nondeterministic, so only thread_copy's is asserted.

Reference: the original Function evaluated single-threaded at the same inputs (bit for bit:
the copies run the same compiled code on the same numbers).
"""

import threading

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from mixedformula.backends.pymc.sampling import _mode
from mixedformula.backends.pymc.thread_copies import thread_copy

N_THREADS, N_CALLS = 4, 150


def _compile(inputs, outputs):
    with pytensor.config.change_flags(allow_gc=False):
        return pytensor.function(inputs, outputs, mode=_mode("c"))


def _chol_solve():
    """log det + quadratic form of a 6 × 6 SPD matrix via cholesky / solve_triangular, and its
    gradient (the gradients hold AllocDiag, an OpFromGraph)."""
    x = pt.dvector("x")
    A = pt.outer(x, x) + pt.eye(6) * (1.0 + pt.sum(x ** 2))
    L = pt.linalg.cholesky(A)
    w = pt.linalg.solve_triangular(L, x[::-1], lower=True)
    f = pt.sum(pt.log(pt.diagonal(L))) + pt.sum(w * w)
    return _compile([x], [f, pt.grad(f, x)]), 6


def _scan():
    """An AR-type recursion e_t = x_t − ρ e_{t−1} by scan, with its gradient."""
    x = pt.dvector("x")
    rho = pt.tanh(x[0])
    e = pytensor.scan(lambda xt, prev: xt - rho * prev, sequences=[x[1:]],
                     outputs_info=[pt.zeros(())], return_updates=False)
    f = pt.sum(e ** 2)
    return _compile([x], [f, pt.grad(f, x)]), 9


def _blockwise():
    """Batched (3 × 4 × 4) cholesky / solve_triangular (Blockwise) and their gradient (a
    Blockwise over AllocDiag among them)."""
    x = pt.dvector("x")
    X = x.reshape((3, 4))
    A = X[:, :, None] * X[:, None, :] + pt.eye(4)[None] * 2.0
    L = pt.linalg.cholesky(A)
    w = pt.linalg.solve_triangular(L, X[:, :, None], lower=True)
    f = pt.sum(pt.log(pt.diagonal(L, axis1=1, axis2=2))) + pt.sum(w ** 2)
    return _compile([x], [f, pt.grad(f, x)]), 12


GRAPHS = {"cholesky_solve": _chol_solve, "scan": _scan, "blockwise": _blockwise}


def _ops(fn):
    return {type(n.op).__name__ for n in fn.maker.fgraph.apply_nodes} | {
        type(getattr(n.op, "core_op", None)).__name__ for n in fn.maker.fgraph.apply_nodes}


def _run_concurrently(copies, points):
    """Each thread evaluates its copy at every point (in its own order); returns per thread the
    results by point index, and the errors raised."""
    results, errors = [dict() for _ in copies], []
    start = threading.Barrier(len(copies))

    def work(k):
        order = np.random.default_rng(k).permutation(len(points))
        start.wait()
        try:
            for i in order:
                f, g = copies[k](points[i])
                results[k][i] = (float(f), np.array(g))
        except Exception as e:          # noqa: BLE001 — reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(copies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, errors


@pytest.mark.parametrize("graph", sorted(GRAPHS))
def test_thread_copies_match_single_thread(graph):
    fn, n = GRAPHS[graph]()
    kinds = _ops(fn)
    assert {"cholesky_solve": "AllocDiag", "scan": "Scan", "blockwise": "Blockwise"}[graph] \
        in kinds, kinds
    rng = np.random.default_rng(0)
    points = [rng.normal(size=n) for _ in range(N_CALLS)]
    ref = [(float(f), np.array(g)) for f, g in (fn(p) for p in points)]
    copies = [thread_copy(fn) for _ in range(N_THREADS)]
    results, errors = _run_concurrently(copies, points)
    assert not errors, errors[:3]
    for res in results:
        for i, (f, g) in enumerate(ref):
            assert res[i][0] == f and np.array_equal(res[i][1], g), (graph, i)
    # the original still evaluates as before (its nodes got their own ops back)
    assert all(np.array_equal(fn(p)[1], r[1]) for p, r in zip(points[:5], ref[:5]))


def test_thread_copy_gives_private_inner_functions():
    """The copy's OpFromGraph / Scan nodes hold other op instances, with other inner Functions,
    than the original's and than another copy's (the plain Function.copy shares them)."""
    for make in (_chol_solve, _scan):
        fn, _ = make()
        a, b, plain = thread_copy(fn), thread_copy(fn), fn.copy()

        def inner(f):
            return [n.op._fn for n in f.maker.fgraph.toposort() if hasattr(n.op, "_fn")]
        fa, fb, fo, fp = inner(a), inner(b), inner(fn), inner(plain)
        assert fa and len(fa) == len(fb) == len(fo)
        assert all(x is y for x, y in zip(fp, fo))                  # what went wrong before
        assert not {id(x) for x in fa} & {id(x) for x in fb + fo}


def test_structured_dense_fit_two_threads_equals_one():
    """A structured-marginal dense-layout fit (ar() with (1 | h) crossing the series:
    tests/test_marginal_structured.py's model; its log-density gradient holds AllocDiag) with
    nutpie's C backend: two chain threads give bit for bit the draws of one thread (each chain
    has its own random stream from the seed, so the thread count must not change a draw)."""
    from test_marginal_structured import _data

    import mixedformula as mf
    d = _data(2)
    m = mf.Model("y ~ x + (1 | h) + ar(time, g, p = 2)", d, likelihood="marginal")
    assert m.engine.stats.layout == "dense"
    kw = dict(chains=2, draws=150, tune=150, seed=5, progressbar=False, sampler="nutpie",
              backend="c")
    one, two = m.fit(cores=1, **kw), m.fit(cores=2, **kw)
    p1, p2 = one.idata.posterior, two.idata.posterior
    assert set(p1.data_vars) == set(p2.data_vars) and "ar" in "".join(p1.data_vars)
    for name in p1.data_vars:
        assert np.array_equal(p1[name].values, p2[name].values), name
