r"""Richardson-extrapolated finite differences, as R's numDeriv (``jacobian``, ``hessian``).

lmerTest differentiates with numDeriv's defaults, so the same scheme is used here: step
h₀ᵢ = d·|xᵢ| + ε·[|xᵢ| < zero_tol] (ε = 10⁻⁴; d = 10⁻⁴ for the Jacobian, 0.1 for the
Hessian; zero_tol = √(machine ε / 7·10⁻⁷)), r = 4
central differences with steps h₀, h₀/2, h₀/4, h₀/8, combined by Richardson's extrapolation

    A_k ← (4^m A_{k+1} − A_k) / (4^m − 1),   m = 1 … r − 1,

which removes the h², h⁴, h⁶ error terms (error O(h⁸)). The Hessian is numDeriv's ``genD``:
diagonal from (f(x + heᵢ) − 2f(x) + f(x − heᵢ)) / h², off-diagonal from
(f(x + h(eᵢ + eⱼ)) − 2f(x) + f(x − h(eᵢ + eⱼ)) − Hᵢᵢh² − Hⱼⱼh²) / (2h²), each extrapolated.
"""

from __future__ import annotations

import numpy as np

_D = 1e-4          # numDeriv's jacobian/grad
_D_HESSIAN = 0.1   # numDeriv's genD/hessian
_EPS = 1e-4
_ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))
_R = 4
_V = 2.0


def _h0(x: np.ndarray, d: float = _D) -> np.ndarray:
    return np.abs(d * x) + _EPS * (np.abs(x) < _ZERO_TOL)


def _richardson(a: list) -> np.ndarray:
    a = list(a)
    for m in range(1, _R):
        a = [(a[k + 1] * 4 ** m - a[k]) / (4 ** m - 1) for k in range(len(a) - 1)]
    return a[0]


def jacobian(f, x) -> np.ndarray:
    """(len(f(x)), len(x)) Jacobian of a vector function (numDeriv ``method = "Richardson"``)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    h0 = _h0(x)
    cols = []
    for i in range(n):
        h = h0.copy()
        a = []
        for _ in range(_R):
            e = np.zeros(n)
            e[i] = h[i]
            a.append((np.asarray(f(x + e), dtype=float) - np.asarray(f(x - e), dtype=float))
                     / (2 * h[i]))
            h = h / _V
        cols.append(_richardson(a).ravel())
    return np.stack(cols, axis=1)


def hessian(f, x) -> np.ndarray:
    """(len(x), len(x)) Hessian of a scalar function (numDeriv's ``genD``)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    f0 = float(f(x))
    h0 = _h0(x, _D_HESSIAN)
    H = np.zeros((n, n))
    for i in range(n):
        h = h0.copy()
        a = []
        for _ in range(_R):
            e = np.zeros(n)
            e[i] = h[i]
            a.append((float(f(x + e)) - 2 * f0 + float(f(x - e))) / h[i] ** 2)
            h = h / _V
        H[i, i] = _richardson(a)
    for i in range(n):
        for j in range(i):
            h = h0.copy()
            a = []
            for _ in range(_R):
                e = np.zeros(n)
                e[i] += h[i]
                e[j] += h[j]
                a.append((float(f(x + e)) - 2 * f0 + float(f(x - e))
                          - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2) / (2 * h[i] * h[j]))
                h = h / _V
            H[i, j] = H[j, i] = _richardson(a)
    return H


def forward_value_gradient(fun, x, h: float = 1e-6):
    """(f(x), forward-difference gradient with steps h·max(1, |xᵢ|) upward, i.e. away from
    lower bounds); a zero gradient where f(x) is not finite (for L-BFGS-B with ``jac=True``)."""
    x = np.asarray(x, dtype=float)
    f0 = fun(x)
    g = np.zeros(len(x))
    if not np.isfinite(f0):
        return f0, g
    for i in range(len(x)):
        e = np.zeros(len(x))
        e[i] = h * max(1.0, abs(x[i]))
        g[i] = (fun(x + e) - f0) / e[i]
    return f0, g
