"""Distributional formulas in the conditional model: a family parameter with its own linear
predictor (brms' ``bf(y ~ ..., sigma ~ x + (1 | g))``).

For parameter d of response k, η_d = Intercept_d + X_{d,c} b_d + Σ_t z_t u_t (built like the
mean's, :func:`.build._linear_part`, group effects from the covariance blocks) and the
parameter per row is θ_{d,i} = h_d⁻¹(η_{d,i}) with brms' link h_d (log for sigma, shape, phi;
logit for zi, hu; logm1 = log(ν − 1) for nu: ``Family.dpar_link``).

Residual covariance of a multivariate Gaussian with a predicted sigma (brms allows ``rescor``
there): R_i = diag(σ_i) Ω diag(σ_i), Ω ~ LKJ(η) sampled as a correlation matrix (``LKJCorr``),
so the row's Cholesky factor is diag(σ_i) chol(Ω). Responses without a sigma formula keep a
scalar σ_k with its prior.
"""

from __future__ import annotations

from ...families import Family
from ...priors import Prior, PriorSet, pymc_rv


def residual_scales(family: Family, priors: PriorSet, ys: list, resp: list[str],
                    multivariate: bool, rescor: bool, predicted: set) -> dict:
    """The residual-scale entries of the model's ``dpars`` when some response's sigma has a
    formula (``predicted``: (dpar, response) keys): per response a scalar σ (shape (1,)) or
    None (filled per row by :func:`predicted_dpars`), and with ``rescor`` the correlation
    factor ``chol_corr`` (r, r)."""
    import pymc as pm
    import pytensor.tensor as pt
    r = len(resp)
    sig = []
    for k in range(r):
        if ("sigma", k) in predicted:
            sig.append(None)
            continue
        p = priors.resolve("sigma", family.default_prior("sigma", *ys[k]),
                           resp=resp[k] if multivariate else "")
        name = "sigma" + (f"__{resp[k]}" if multivariate else "")
        sig.append(pt.stack([pymc_rv(name, [p.prior], lower=0.0)]))
    out: dict = {"sigma": sig}
    if multivariate and rescor:
        eta = priors.resolve("rescor", Prior("lkj", (1.0,), "rescor")).prior.args[0]
        corr = pm.LKJCorr("corr__rescor", n=r, eta=eta, return_matrix=True)
        pm.Deterministic("_corr__rescor", corr)
        out["chol_corr"] = pt.linalg.cholesky(corr)
    return out


def predicted_dpars(family: Family, detas: dict, dpars: dict, n: int, r: int,
                    rescor: bool) -> None:
    """θ_d = h_d⁻¹(η_d) per row into ``dpars`` (in place): ``dpars[d]`` (n,) for a univariate
    model's parameter, ``dpars["sigma"][k]`` (n,) for every response (scalars repeated), and
    ``dpars["per_row"] = True`` so the likelihood reads them row by row; with rescor also
    ``dpars["chol_R"]`` (n, r, r)."""
    import pytensor.tensor as pt
    from ...families.links import inverse_link_tensor
    for (d, k), eta in detas.items():
        value = inverse_link_tensor(family.dpar_link(d), eta)
        if d == "sigma":
            dpars["sigma"][k] = value
        else:
            dpars[d] = value
    if "sigma" in dpars:
        dpars["sigma"] = [pt.repeat(s, n) if s is not None and s.ndim == 1 and
                          not any(dd == "sigma" and kk == k for dd, kk in detas)
                          else s for k, s in enumerate(dpars["sigma"])]
        if "chol_corr" in dpars:
            sig = pt.stack(dpars["sigma"], axis=1)                 # (n, r)
            dpars["chol_R"] = sig[:, :, None] * dpars["chol_corr"][None, :, :]
    dpars["per_row"] = True
