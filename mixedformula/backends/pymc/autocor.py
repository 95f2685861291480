"""The PyMC likelihood of a model with brms' ``ar()`` or ``cosy()`` term (math:
:mod:`mixedformula.design.autocor`).

``ar``: ``ar`` (p,) with brms' default flat prior (unbounded, as brms 2.18's ``cov = FALSE``);
μ = η + Σ_k ar[k] e_{lag_k}, e = y − η gathered through the lag rows (a zero appended for
missing lags), then the family's own likelihood at μ.

``arma`` (arma()/ma()): ``ar`` (p,) and ``ma`` (q,), both flat and unbounded (brms 2.18's
``get_prior`` for cov = FALSE); the errors err_n = (y − η)_n − Σ_k ma[k] err_{n−k}, i.e.
M err = r per group with M = I + Σ_k ma[k] S^k the same T × T unit lower-triangular banded
matrix for every group (T the longest series): one triangular solve of the (positions ×
groups) residuals in group order, zeros after a group's end (they do not reach its earlier
positions). One triangular solve instead of a scan over positions (one op instead of a loop
of inner-function calls; nutpie's chain threads get private copies of either,
:mod:`.thread_copies`). Then
μ = η + Σ_k ma[k] err_{lag_k} + Σ_k ar[k] err_{lag_k} and the family's likelihood at μ.

``cov_arma`` (``ar()``/``ma()``/``arma()`` with ``cov = TRUE``): ``ar`` (1,), ``ma`` (1,) in
(−1, 1) (brms' bounds; flat = uniform), the per-group MVN N(η_j, σ²Γ[1:n_j, 1:n_j]) as its
exact sequential conditionals (one normal per row: the stationary AR(1) through its lag rows,
with an MA part through the banded factor of Γ in O(T)). Student: brms 2.18's
``student_t_time_hom_lpdf``, the multivariate t multi_student_t(ν, η_j, σ²Γ[1:n_j, 1:n_j])
per group, as its exact sequential conditionals (one t per row with ν + k degrees of freedom,
:func:`.mvnormal.mvt_sequential`).

``unstr``: :mod:`.unstr` (per time pattern one factor of the correlation sub-matrix).

``cosy``: ``cosy`` ∈ (0, 1) (brms' bounds; default flat = uniform(0, 1)); the compound-
symmetric MVN of each group as one normal per row at its sequential conditional mean and sd,
from the residual sums of the earlier rows of the group (a cumulative sum in group order).
"""

from __future__ import annotations

import numpy as np

from ...errors import FamilyError
from ...priors import Prior, pymc_rv


def check_autocor_family(structure, family) -> None:
    """Refuse families and links whose autocorrelation we do not fit (brms fits ar() on the
    link scale for some, e.g. poisson: we do not)."""
    if structure.kind not in family.autocor_terms or family.link != "identity":
        two = structure.kind in ("ar", "arma", "cov_arma", "unstr")
        ok = "gaussian and student" if two else "gaussian"
        raise FamilyError(f"{structure.text} is supported for the {ok} famil"
                          f"{'ies' if two else 'y'} with the identity link, "
                          f"not {family.name}({family.link})")


def coefficients(name: str, k: int, priors):
    """brms' ``ar`` / ``ma`` coefficients (k,) of the regression form: the user's prior of
    that class for each, or brms' flat default (unbounded)."""
    return pymc_rv(name, [priors.resolve(name, Prior("flat", (), name)).prior] * k, shape=k)


def cosy_parameter(priors):
    """brms' ``cosy`` on (0, 1): uniform by default, else the user's prior truncated there."""
    import pymc as pm
    p_cs = priors.resolve("cosy", Prior("flat", (), "cosy")).prior
    if p_cs.dist == "flat":
        return pm.Uniform("cosy", 0.0, 1.0)
    return pymc_rv("cosy", [p_cs], lower=0.0, upper=1.0)


def add_autocor_likelihood(structure, family, eta, params: dict, y_obs, priors, data):
    """Add ``y`` for a model with an ar()/cosy() term; ``data(name, value)`` makes the
    shared data variables, ``params`` the family's parameters (sigma, nu)."""
    import pymc as pm
    import pytensor.tensor as pt
    check_autocor_family(structure, family)
    n = len(structure.codes)
    if structure.kind == "unstr":
        from .unstr import add_unstr_likelihood
        return add_unstr_likelihood(structure, family, eta, params, y_obs, priors, data)
    if structure.kind == "ar":
        ar = coefficients("ar", structure.p, priors)
        lags = np.where(structure.lags < 0, n, structure.lags)
        e = pt.concatenate([y_obs - eta, pt.zeros((1,))])
        mu = eta + pt.dot(e[data("ar_lags", lags.astype(np.int64))], ar)
        return family.pymc_likelihood("y", mu, params, y_obs, None, dims="obs")
    if structure.kind == "arma":
        mu = eta + _arma_part(structure, y_obs - eta, priors, data)
        return family.pymc_likelihood("y", mu, params, y_obs, None, dims="obs")
    if structure.kind == "cov_arma":
        # Cov_j = diag(σ_j) Γ diag(σ_j) (brms' *_time_het with a sigma formula; σ scalar:
        # σ²Γ): the conditionals of e = (y − η)/σ, each row's then scaled by its σ
        sigma = params["sigma"]
        e = (y_obs - eta) / sigma
        mean, sd = _cov_arma_conditionals(structure, e, 1.0, priors, data)
        if "nu" in params:             # student: brms' multi_student_t(ν, η_j, Cov_j)
            from .mvnormal import mvt_sequential
            nu, scale = mvt_sequential(structure, (e - mean) / sd, params["nu"], data,
                                       "arcov")
            return family.pymc_likelihood("y", eta + sigma * mean,
                                          {"sigma": sigma * sd * scale, "nu": nu},
                                          y_obs, None, dims="obs")
        return pm.Normal("y", mu=eta + sigma * mean, sigma=sigma * sd, observed=y_obs,
                         dims="obs")
    rho = cosy_parameter(priors)
    order = data("cosy_order", structure.order.astype(np.int64))
    starts = data("cosy_starts", structure.starts.astype(np.int64))
    k = data("cosy_pos", structure.pos.astype(float))
    # Cov_j = diag(σ_j) C diag(σ_j), C = (1 − ρ) I + ρ 11ᵀ (brms' normal_time_het with a sigma
    # formula; σ scalar: σ² C): the conditionals of e = (y − η)/σ, each row's scaled by its σ
    sigma = params["sigma"]
    e = (y_obs - eta) / sigma
    csum = pt.concatenate([pt.zeros((1,)), pt.cumsum(e[order])])      # prefix sums, group order
    inv = np.empty(n, dtype=np.int64)
    inv[structure.order] = np.arange(n)
    before = csum[data("cosy_rank", inv)] - csum[starts]              # Σ e of earlier rows
    mean = eta + sigma * (rho / (1.0 + (k - 1.0) * rho) * before)
    sd = sigma * pt.sqrt((1.0 - rho) * (1.0 + k * rho) / (1.0 + (k - 1.0) * rho))
    return pm.Normal("y", mu=mean, sigma=sd, observed=y_obs, dims="obs")


def _arma_part(structure, resid, priors, data):
    """Σ_k ma[k] err_{n−k} + Σ_k ar[k] err_{n−k} with brms' sequential errors (module doc)."""
    import pytensor.tensor as pt
    n, p, q = len(structure.codes), structure.p, structure.q
    T, G = _longest(structure, dense=q > 1)
    ar = None
    if p:
        ar = coefficients("ar", p, priors)
    ma = coefficients("ma", q, priors)
    at = np.full((T, G), n, dtype=np.int64)                  # row at (position, group), or n
    at[structure.pos, structure.codes] = np.arange(n)
    r = pt.concatenate([resid, pt.zeros((1,))])[data("arma_at", at)]          # (T, G)
    if q == 1:
        # (I + θ S₁) E = r is the recursion E_t = r_t − θ E_{t−1}: the doubling scan, O(T log T)
        # work and no T × T matrix, whatever the series' length
        E = geometric_scan_graph(r, -ma[0], MAX_COV_SERIES)
    else:
        shifts = np.stack([np.eye(T, k=-k) for k in range(1, q + 1)])         # (q, T, T)
        M = pt.eye(r.shape[0]) + pt.tensordot(ma, data("arma_shifts", shifts), axes=1)
        E = pt.linalg.solve_triangular(M, r, lower=True, unit_diagonal=True)
    err = E[data("arma_pos", structure.pos.astype(np.int64)),
            data("arma_codes", structure.codes.astype(np.int64))]
    e = pt.concatenate([err, pt.zeros((1,))])
    lags = data("ar_lags", np.where(structure.lags < 0, n, structure.lags).astype(np.int64))
    out = pt.dot(e[lags[:, :q]], ma)
    if p:
        out = out + pt.dot(e[lags[:, :p]], ar)
    return out


#: the longest series of an arma()/ma() term of the regression form with q > 1 (cov = FALSE: a
#: dense T × T triangular matrix of that size is solved per gradient); q = 1 and cov = TRUE:
#: MAX_COV_SERIES
MAX_DENSE_SERIES = 2000


#: the longest series of a ma()/arma(cov = TRUE) term: 2^20 rows (the prefix sum's fixed
#: number of doubling steps, :func:`_cov_arma_banded`); ar(cov = TRUE) has no limit
MAX_COV_SERIES = 2 ** 20


def _longest(structure, dense: bool = True) -> tuple[int, int]:
    """(T, G): the longest series' length (refused beyond MAX_DENSE_SERIES for the ``dense``
    solve, beyond MAX_COV_SERIES otherwise) and the groups."""
    from ...errors import MixedFormulaError
    T = int(structure.pos.max()) + 1
    if not dense:
        if T > MAX_COV_SERIES:
            raise MixedFormulaError(f"{structure.text}: the longest series has {T} rows; "
                                    f"the limit is {MAX_COV_SERIES}")
        return T, len(structure.levels)
    if T > MAX_DENSE_SERIES:
        raise MixedFormulaError(f"{structure.text}: the longest series has {T} rows; this "
                                f"structure solves a dense {T} x {T} matrix per gradient and "
                                f"is limited to series of {MAX_DENSE_SERIES} rows (split the "
                                "series with gr, or use ar() or q = 1)")
    return T, len(structure.levels)


def _bounded(name, priors):
    import pymc as pm
    row = priors.resolve(name, Prior("flat", (), name))
    row.bounds = (-1.0, 1.0)                     # brms' bounds of cov = TRUE (prior_summary)
    p = row.prior
    if p.dist == "flat":
        return pm.Uniform(name, -1.0, 1.0, shape=1)
    return pymc_rv(name, [p], lower=-1.0, upper=1.0, shape=1)


def _cov_arma_conditionals(structure, resid, sigma, priors, data):
    """(conditional mean of r_t given the group's earlier rows, conditional sd) per row of
    ar(cov = TRUE): the stationary AR(1) N(0, σ²ρ^|s−t|/(1 − ρ²)) factors exactly into
    r_1 ~ N(0, σ²/(1 − ρ²)) and r_t | earlier ~ N(ρ r_{t−1}, σ²) (O(n), the lag rows of ar()).
    With an MA part: :func:`_cov_arma_banded`."""
    import pytensor.tensor as pt
    if structure.q:
        return _cov_arma_banded(structure, resid, sigma, priors, data)
    n = len(structure.codes)
    ar = _bounded("ar", priors)[0]
    lag = np.where(structure.lags[:, 0] < 0, n, structure.lags[:, 0]).astype(np.int64)
    r = pt.concatenate([resid, pt.zeros((1,))])
    first = data("arcov_first", (structure.pos == 0).astype(float))
    mean = ar * r[data("ar_lags", lag)]
    sd = sigma * (1.0 + first * (1.0 / pt.sqrt(1.0 - ar * ar) - 1.0))
    return mean, sd


def _cov_arma_banded(structure, resid, sigma, priors, data):
    """ma()/arma(cov = TRUE) (brms' ``cholesky_cor_ma1`` / ``_arma1``): Γ the Toeplitz ARMA(1, 1)
    autocovariance, factored in O(T) through u = r − ρ r_{lag} and the tridiagonal Cov(u)
    (:func:`~mixedformula.design.autocor.arma_band`, :func:`geometric_scan_graph`; module doc of
    :mod:`mixedformula.design.autocor`). With U (T × G) the u at (position, group), zeros after
    a group's end (they come after its rows, so do not reach them), Z = L̃⁻¹U; row t of group j
    given its earlier rows is N(r_t − L̃_tt Z_tj, σ² L̃_tt²): per row the mean r − L̃_tt z and the
    sd σ L̃_tt (their product is the MVN N(0, σ²Γ[1:n_j, 1:n_j])). No T × T matrix; the
    prefix sum always takes the log₂ MAX_COV_SERIES = 20 steps (a step beyond a series' length
    adds zeros), so the graph does not depend on T and re-fits on other series lengths
    compile once."""
    import pytensor.tensor as pt

    from ...design.autocor import arma_band
    from ...errors import MixedFormulaError
    n = len(structure.codes)
    T, G = int(structure.pos.max()) + 1, len(structure.levels)
    if T > MAX_COV_SERIES:
        raise MixedFormulaError(f"{structure.text}: the longest series has {T} rows; the "
                                f"covariance form is limited to {MAX_COV_SERIES} rows per "
                                "series (split the series with gr)")
    ar = _bounded("ar", priors)[0] if structure.p else pt.as_tensor_variable(0.0)
    ma = _bounded("ma", priors)[0]
    D = arma_band(ar, ma, data("arcov_m", np.arange(1.0, T + 1)), xp=pt)        # D_0..D_T
    at = np.full((T, G), n, dtype=np.int64)                  # row at (position, group), or n
    at[structure.pos, structure.codes] = np.arange(n)
    R = pt.concatenate([resid, pt.zeros((1,))])[data("arcov_at", at)]           # (T, G)
    U = R - ar * pt.concatenate([pt.zeros_like(R[:1]), R[:-1]]) if structure.p else R
    omega = geometric_scan_graph(D[:-1][:, None] * U, -ma, MAX_COV_SERIES)
    pos = data("arcov_pos", structure.pos.astype(np.int64))
    lo, hi = D[:-1][pos], D[1:][pos]
    z = omega[pos, data("arcov_codes", structure.codes.astype(np.int64))] / pt.sqrt(lo * hi)
    ld = pt.sqrt(hi / lo)
    return resid - ld * z, sigma * ld


def geometric_scan_graph(b, c, T: int):
    """:func:`mixedformula.design.autocor.geometric_scan` in the graph: one Scan over the
    ⌈log₂ T⌉ doubling steps (a chain of unrolled steps let PyTensor's slice-lifting rewrites
    copy the graph 2^steps times); ``T`` is the number of rows it must cover."""
    import pytensor
    import pytensor.tensor as pt

    from ...design.autocor import scan_steps
    shifts = pt.as_tensor_variable(2 ** np.arange(scan_steps(T), dtype=np.int64))

    def step(k, x, ck):
        n = x.shape[0]
        keep = pt.maximum(n - k, 0)
        shifted = pt.concatenate([pt.zeros_like(x[:n - keep]), x[:keep]])
        # steps past the rows change nothing (and c^(2^k) may overflow when |c| > 1: inf · 0)
        return pt.switch(keep > 0, x + ck * shifted, x), ck * ck

    xs, _ = pytensor.scan(step, sequences=[shifts],
                          outputs_info=[b, pt.as_tensor_variable(c)], return_updates=False)
    return xs[-1]
