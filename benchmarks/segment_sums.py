"""Per-level sums b_j = Σ_{i in level j} r_i at InstEval's size (73 361 rows, 2972 levels, codes in
design order), value + gradient of Σ_j w_j b_j², three ways, on PyTensor's C and numba backends:

* ``inc_subtensor 1D``: ``zeros(J)[codes] += r`` (a bincount; gradient the gather ∂b[codes]);
* ``sorted cumsum``: rows sorted by level once, b = differences of cumsum(r[perm]) at the
  segment ends (gradient: reversed cumsum and the permutation's scatter);
* ``CSR dot``: a constant J × N indicator matrix times r (``pytensor.sparse.structured_dot``).

    python benchmarks/segment_sums.py        # CPU µs per value + gradient (benchmarks/README.md)

Used by :mod:`mixedformula.backends.pymc.partial_marginal` (``level_sums``) to pick the first.
"""
import os
import time
import warnings

warnings.filterwarnings("ignore")
import numpy as np, pytensor, pytensor.tensor as pt, scipy.sparse as sp
import pytensor.sparse as ps
rng = np.random.default_rng(0)
N, J = 73361, 2972
codes = rng.integers(0, J, N)                     # design order: not sorted by level
w0 = rng.normal(size=J)
rv = pt.vector("r")
perm = np.argsort(codes, kind="stable")
cs = codes[perm]
ends = np.searchsorted(cs, np.arange(J), side="right")
def loss(b): return pt.sum(w0 * b ** 2)
variants = {}
variants["inc_subtensor 1D"] = pt.inc_subtensor(pt.zeros(J)[codes], rv)
c = pt.concatenate([pt.zeros(1), pt.cumsum(rv[perm])])
variants["sorted cumsum"] = c[ends] - c[np.concatenate([[0], ends[:-1]])]
S = sp.csr_matrix((np.ones(N), (codes, np.arange(N))), shape=(J, N))
variants["CSR dot"] = ps.structured_dot(ps.as_sparse_variable(S), rv[:, None])[:, 0]
x = rng.normal(size=N)
for mode in ["C", "NUMBA"]:
    for name, b in variants.items():
        l = loss(b)
        try:
            f = pytensor.function([rv], [l, pt.grad(l, rv)], mode=mode if mode == "NUMBA" else "FAST_RUN")
            f(x)
            n = 300; t = time.process_time()
            for _ in range(n): f(x)
            print(mode, name, f"{(time.process_time()-t)/n*1e6:.0f} us CPU per value+grad", flush=True)
        except Exception as e:
            print(mode, name, "failed", type(e).__name__, str(e)[:100])
print("load", os.getloadavg())
