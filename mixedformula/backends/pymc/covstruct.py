r"""PyMC parameters of glmmTMB-structured group terms ``ar1()``, ``cs()``, ``toep()``.

Σ as defined in :mod:`mixedformula.design.covstruct`; the block's Cholesky factor
T = chol(Σ) (shape (1, Q, Q)) is what both engines read, like an LKJ block's.

Priors: the sds as brms' sd class (half student-t(3, 0, scale) or the user's ``sd`` prior;
``ar1`` has one sd, the first coefficient's prior); ``ar1``: ρ flat on (−1, 1) (= Uniform, as
brms' bounded flat priors); ``cs``: ρ flat on (−1/(Q−1), 1) (the range where Σ is positive
definite); a user prior of class ``rho`` (``prior("normal(0, 0.5)", class_="rho",
group="g")``) replaces it, truncated to that range. ``toep``: the partial autocorrelations
π_k ~ Uniform(−1, 1), ρ_k from them by the Durbin–Levinson recursion (every draw is a positive
definite Toeplitz matrix); a ``rho`` prior is refused for it (it would need the Jacobian of
π → ρ).

Internal names: ``sd__<block>`` (1 or Q), ``rho__<block>`` (ar1, cs) or ``pacf__<block>``
(toep), deterministics ``_std__<block>`` (Q sds) and ``_rho__<block>`` (1 or Q − 1
correlations) that :mod:`.names` writes as ``sd_<group>__<coef>`` and ``rho_<group>`` /
``rho_<group>[k]``.
"""

from __future__ import annotations

import numpy as np

from ...errors import PriorError
from ...priors import Prior, PriorSet, pymc_rv


def _pacf_to_acf(pacf):
    """Durbin–Levinson in PyTensor, unrolled over the Q − 1 lags (Q is small)."""
    import pytensor.tensor as pt
    m = pacf.shape[0].eval() if hasattr(pacf.shape[0], "eval") else pacf.shape[0]
    rho, phi = [], []
    for k in range(int(m)):
        p = pacf[k]
        if k == 0:
            rho.append(p)
            phi = [p]
            continue
        s1 = sum(phi[j] * rho[k - 1 - j] for j in range(k))
        s2 = sum(phi[j] * rho[j] for j in range(k))
        rho.append(s1 + p * (1.0 - s2))
        phi = [phi[j] - p * phi[k - 1 - j] for j in range(k)] + [p]
    return pt.stack(rho)


def rho_prior(b, priors: PriorSet | None):
    """The prior of ρ of an ar1/cs block (a prior_summary row: class ``rho``, the group, its
    range as lb/ub), or None for toep (refusing a user prior there)."""
    priors = PriorSet() if priors is None else priors
    row = priors.resolve("rho", Prior("flat", (), "rho"), group=b.group)
    if b.structure == "toep":
        if row.source == "user":
            raise PriorError(f"a prior of class 'rho' is not supported for toep() (group "
                             f"{b.group!r}): its correlations are parametrised by partial "
                             "autocorrelations, each uniform(-1, 1)")
        priors.rows.remove(row)
        return None
    row.bounds = (-1.0, 1.0) if b.structure == "ar1" else (-1.0 / (b.Q - 1), 1.0)
    if row.prior.dist == "uniform" and (row.prior.args[0] < row.bounds[0]
                                        or row.prior.args[1] > row.bounds[1]):
        raise PriorError(f"prior {row.prior} of rho_{b.group} reaches outside its range "
                         f"({row.bounds[0]:g}, {row.bounds[1]:g})")
    return row


def _rho_rv(name: str, row):
    import pymc as pm
    lo, hi = row.bounds
    if row.prior.dist == "flat":
        return pm.Uniform(name, lo, hi, shape=1)
    return pymc_rv(name, [row.prior], lower=lo, upper=hi, shape=1)


def structured_factor(b, sd_priors: list, priors: PriorSet | None = None):
    """T (1, Q, Q) with T Tᵀ = Σ of block ``b`` (``b.structure`` in ar1/cs/toep)."""
    import pymc as pm
    import pytensor.tensor as pt
    Q, st = b.Q, b.structure
    rho_row = rho_prior(b, priors)
    lag = np.abs(np.subtract.outer(np.arange(Q), np.arange(Q)))
    if st == "ar1":
        sd = pymc_rv(f"sd__{b.key}", sd_priors[:1], lower=0.0, shape=1)
        s = pt.repeat(sd, Q)
        rho = _rho_rv(f"rho__{b.key}", rho_row)
        powers = [pt.ones(()), rho[0]]
        for _ in range(2, Q):
            powers.append(powers[-1] * rho[0])
        R = pt.stack(powers[:Q])[lag]
        rhos = rho
    else:
        s = pymc_rv(f"sd__{b.key}", sd_priors, lower=0.0, shape=Q)
        if st == "cs":
            rho = _rho_rv(f"rho__{b.key}", rho_row)
            R = rho[0] + (1.0 - rho[0]) * pt.eye(Q)
            rhos = rho
        elif st == "toep":
            pacf = pm.Uniform(f"pacf__{b.key}", -1.0, 1.0, shape=Q - 1)
            rhos = _pacf_to_acf(pacf)
            R = pt.concatenate([pt.ones(1), rhos])[lag]
        else:
            raise ValueError(st)
    pm.Deterministic(f"_std__{b.key}", s)
    pm.Deterministic(f"_rho__{b.key}", rhos)
    return _cholesky(s[:, None] * R * s[None, :], Q)[None]


def _cholesky(S, Q: int):
    """Cholesky factor of a small Q × Q tensor, unrolled into scalar operations (Q is the
    number of coefficients of one term: a few; every backend and its gradient handle it)."""
    import pytensor.tensor as pt
    L = [[None] * Q for _ in range(Q)]
    for j in range(Q):
        d = S[j, j] - sum(L[j][k] ** 2 for k in range(j)) if j else S[j, j]
        L[j][j] = pt.sqrt(d)
        for i in range(j + 1, Q):
            off = S[i, j] - sum(L[i][k] * L[j][k] for k in range(j)) if j else S[i, j]
            L[i][j] = off / L[j][j]
    zero = pt.zeros(())
    return pt.stack([pt.stack([L[i][j] if j <= i else zero for j in range(Q)])
                     for i in range(Q)])


__all__ = ["structured_factor"]
