"""How much of a row likelihood's cost is numba's scalar ``exp`` (a prototype, not package code).

    python benchmarks/vector_exp.py [--rows 20000] [--calls 5000]

numba compiles ``np.exp`` of a float64 to a call of libm's scalar ``exp`` per element (no SVML
here: ``numba -s`` says SVML is not operational), so LLVM cannot vectorise the elementwise loops
of PyTensor's numba graphs that contain it; numpy's own ``np.exp`` runs AVX2/AVX-512 code.
This times, on ``--rows`` values drawn from N(0, 3²):

* ``numba exp``: a numba loop of ``np.exp`` (what PyTensor's fused Composite does per row);
* ``vector exp``: a branch-free numba exp (Cody–Waite reduction k = round(x / log 2),
  r = x − k log 2 in two parts, degree-13 Taylor polynomial on |r| ≤ log(2)/2, 2^k built in the
  exponent bits) that LLVM vectorises; max relative error against numpy printed;
* ``numpy exp``: ``np.exp`` of the array;
* the Poisson log-link row likelihood with an offset and its gradient (benchmarks case
  ``offset``: Σ y η − e^η and ∂/∂η = y − e^η, gathered by group codes) fused into one loop,
  with the scalar exp and with the vector exp.

Process CPU µs per call.  The point: a fused likelihood op is worth building only with an exp
that vectorises; with numba's scalar exp a fused loop is no faster than PyTensor's graph.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numba
import numpy as np

LOG2E = 1.4426950408889634
LN2HI = 6.93147180369123816490e-01
LN2LO = 1.90821492927058770002e-10
C = tuple(1.0 / math.factorial(i) for i in range(14))


@numba.njit(fastmath=False, error_model="numpy")
def vector_exp(x, out, kbits):
    """out = e^x for x clipped to [−708, 709] (a prototype: no inf/0 outside that range)."""
    n = x.shape[0]
    for i in range(n):
        xi = min(max(x[i], -708.0), 709.0)
        k = np.floor(xi * LOG2E + 0.5)
        r = (xi - k * LN2HI) - k * LN2LO
        p = C[13]
        p = p * r + C[12]
        p = p * r + C[11]
        p = p * r + C[10]
        p = p * r + C[9]
        p = p * r + C[8]
        p = p * r + C[7]
        p = p * r + C[6]
        p = p * r + C[5]
        p = p * r + C[4]
        p = p * r + C[3]
        p = p * r + C[2]
        p = p * r + C[1]
        out[i] = p * r + 1.0
        kbits[i] = (np.int64(k) + 1023) << 52
    scale = kbits.view(np.float64)
    for i in range(n):
        out[i] *= scale[i]


@numba.njit
def scalar_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = np.exp(x[i])


@numba.njit
def fused_scalar(a, b, x, o, g, y, ga):
    lp = 0.0
    gb = 0.0
    ga[:] = 0.0
    for i in range(x.shape[0]):
        e = a[g[i]] + b * x[i] + o[i]
        m = np.exp(e)
        lp += y[i] * e - m
        r = y[i] - m
        ga[g[i]] += r
        gb += r * x[i]
    return lp, gb


@numba.njit
def fused_vector(a, b, x, o, g, y, ga, eta, mu, kbits):
    for i in range(x.shape[0]):
        eta[i] = a[g[i]] + b * x[i] + o[i]
    vector_exp(eta, mu, kbits)
    lp = 0.0
    gb = 0.0
    ga[:] = 0.0
    for i in range(x.shape[0]):
        lp += y[i] * eta[i] - mu[i]
        r = y[i] - mu[i]
        ga[g[i]] += r
        gb += r * x[i]
    return lp, gb


def _per_call(f, args, calls):
    f(*args)
    t = time.process_time()
    for _ in range(calls):
        f(*args)
    return (time.process_time() - t) / calls * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--calls", type=int, default=5000)
    a = ap.parse_args()
    n, J = a.rows, 200
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 3.0, n)
    out, kbits = np.empty(n), np.empty(n, np.int64)
    vector_exp(x, out, kbits)
    err = float(np.max(np.abs(out / np.exp(x) - 1.0)))
    xs, off = rng.normal(size=n), np.log(rng.uniform(0.5, 5.0, n))
    g = rng.integers(0, J, n).astype(np.int32)
    y = rng.poisson(2.0, n).astype(float)
    u, ga = rng.normal(0.0, 0.3, J), np.zeros(J)
    eta, mu = np.empty(n), np.empty(n)
    ref = fused_scalar(u, 0.5, xs, off, g, y, ga)
    got = fused_vector(u, 0.5, xs, off, g, y, ga, eta, mu, kbits)
    rows = {
        "numba exp": _per_call(scalar_exp, (x, out), a.calls),
        "vector exp": _per_call(vector_exp, (x, out, kbits), a.calls),
        "numpy exp": _per_call(np.exp, (x,), a.calls),
        "fused poisson, numba exp": _per_call(fused_scalar, (u, 0.5, xs, off, g, y, ga),
                                              a.calls),
        "fused poisson, vector exp": _per_call(
            fused_vector, (u, 0.5, xs, off, g, y, ga, eta, mu, kbits), a.calls),
    }
    for k, v in rows.items():
        print(f"{k:28s} {v:8.1f} µs/call")
    print(f"{n} rows; vector exp max relative error {err:.2e}; fused logp agree to "
          f"{abs(ref[0] - got[0]) / abs(ref[0]):.1e}; load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
