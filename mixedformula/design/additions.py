r"""The addition-term columns of a design (brms' ``weights()``, ``cens()``, ``trunc()``,
``se()``), read and checked on the rows the model uses.

* ``design.weights`` (n,) w ≥ 0, finite: row i's log-likelihood is w_i · log p(y_i) (brms;
  the pointwise log-likelihood of LOO is w_i · log p(y_i) as brms' ``log_lik``).
* ``design.cens`` (:class:`Censoring`): per row code −1 left (y_i is an upper bound: P(Y ≤ y)),
  0 none, 1 right (P(Y > y)), 2 interval (P(y < Y ≤ y2)), brms' coding; strings "left",
  "none", "right", "interval" and logical (TRUE = right censored) are accepted too.
* ``design.trunc`` (lb, ub) each (n,) with ±∞ where a side has no bound; every y must lie in
  [lb, ub].
* ``design.se`` (n,) > 0: known standard errors, residual sd sqrt(se² + σ²) (σ ≡ 0 without
  ``se(sigma = TRUE)``; ``design.se_sigma``).

Missing values: a row whose response or predictors are missing is dropped as before (with the
warning); a missing value in an addition column of a row that is used is an error naming the
column and the count (nothing is dropped silently). ``y2`` is only read on interval rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import DataError

#: brms' censoring codes
CENS_CODES = {"left": -1, "none": 0, "right": 1, "interval": 2}


@dataclass
class Censoring:
    """Per-row censoring codes and the upper ends of interval-censored rows."""

    codes: np.ndarray          # (n,) int64 in {-1, 0, 1, 2}
    y2: np.ndarray             # (n,) float; y2 on interval rows, y + 1 elsewhere (never read)

    @property
    def any(self) -> bool:
        return bool(np.any(self.codes != 0))


def _rows_message(what: str, bad: np.ndarray, where: str, why: str) -> str:
    idx = np.nonzero(bad)[0]
    return (f"{what} is {why} in {len(idx)} row(s) of {where} (first at row {int(idx[0])})")


def check_weights(w: np.ndarray, what: str, where: str = "the data") -> np.ndarray:
    w = np.asarray(w, dtype=float)
    for bad, why in ((np.isnan(w), "missing"), (np.isinf(w), "infinite"),
                     (w < 0, "negative")):
        if bad.any():
            raise DataError(_rows_message(what, bad, where, why)
                            + "; weights must be finite and >= 0")
    return w


def check_se(se: np.ndarray, what: str, where: str = "the data") -> np.ndarray:
    se = np.asarray(se, dtype=float)
    for bad, why in ((np.isnan(se), "missing"), (~np.isfinite(se) & ~np.isnan(se), "infinite"),
                     (se <= 0, "<= 0")):
        if bad.any():
            raise DataError(_rows_message(what, bad, where, why)
                            + "; standard errors must be finite and > 0")
    return se


def censoring_codes(col: pd.Series, name: str) -> np.ndarray:
    """brms' codes from a column of codes, names or logicals (module docstring)."""
    if col.isna().any():
        raise DataError(_rows_message(f"cens() column {name!r}", col.isna().to_numpy(),
                                      "the data", "missing")
                        + "; every row needs a code (none/0 for uncensored)")
    if pd.api.types.is_bool_dtype(col):
        return col.to_numpy().astype(np.int64)
    if pd.api.types.is_numeric_dtype(col):
        v = col.to_numpy(dtype=float)
        bad = ~np.isin(v, [-1.0, 0.0, 1.0, 2.0])
        if bad.any():
            raise DataError(_rows_message(f"cens() column {name!r}", bad, "the data",
                                          f"not a censoring code (e.g. {v[bad][0]!r})")
                            + "; the codes are -1 left, 0 none, 1 right, 2 interval")
        return v.astype(np.int64)
    v = col.astype(str).str.strip().str.lower().to_numpy()
    known = np.isin(v, list(CENS_CODES) + ["true", "false"])
    if not known.all():
        raise DataError(_rows_message(f"cens() column {name!r}", ~known, "the data",
                                      f"not a censoring code (e.g. {v[~known][0]!r})")
                        + "; the codes are 'left', 'none', 'right', 'interval' "
                        "(or -1, 0, 1, 2)")
    table = {**CENS_CODES, "true": 1, "false": 0}
    return np.array([table[s] for s in v], dtype=np.int64)


def censoring(df: pd.DataFrame, name: str, y2_name: str | None, y: np.ndarray) -> Censoring:
    """The :class:`Censoring` of the used rows ``df`` with response ``y`` (checked)."""
    codes = censoring_codes(df[name], name)
    interval = codes == 2
    y2 = y + 1.0
    if interval.any():
        if y2_name is None:
            raise DataError(f"cens() column {name!r} marks {int(interval.sum())} row(s) as "
                            "interval censored but no upper end is given: write "
                            f"cens({name}, y2)")
        upper = pd.to_numeric(df[y2_name], errors="coerce").to_numpy(dtype=float)
        miss = interval & ~np.isfinite(upper)
        if miss.any():
            raise DataError(_rows_message(f"cens() upper end {y2_name!r}", miss, "the data",
                                          "missing or not finite on interval-censored rows"))
        low = interval & ~(upper > y)
        if low.any():
            raise DataError(_rows_message(f"cens() upper end {y2_name!r}", low, "the data",
                                          "not above the response on interval-censored rows")
                            + "; an interval (y, y2] needs y2 > y")
        y2 = np.where(interval, upper, y2)
    return Censoring(codes=codes, y2=y2)


def _bound_label(bound, side: str) -> str:
    if bound is None or bound.text is None:
        return f"trunc() {side}"
    return f"trunc() {side} = {bound.text.replace('`', '')}"


def check_bounds(lb: np.ndarray, ub: np.ndarray, additions=None,
                 where: str = "the data") -> None:
    """Truncation bounds of every row: not missing and lb < ub (the columns named from
    ``additions``' lb/ub texts)."""
    a_lb = getattr(additions, "lb", None)
    a_ub = getattr(additions, "ub", None)
    for arr, bound, side in ((lb, a_lb, "lb"), (ub, a_ub, "ub")):
        if np.isnan(arr).any():
            raise DataError(_rows_message(f"the truncation bound {_bound_label(bound, side)}",
                                          np.isnan(arr), where, "missing"))
    bad = ~(lb < ub)
    if bad.any():
        raise DataError(_rows_message(f"{_bound_label(a_lb, 'lb')}", bad, where,
                                      f"not below {_bound_label(a_ub, 'ub')}"))


def check_truncation(y: np.ndarray, lb: np.ndarray, ub: np.ndarray, response: str,
                     additions=None) -> None:
    check_bounds(lb, ub, additions)
    out = (y < lb) | (y > ub)
    if out.any():
        raise DataError(f"{int(out.sum())} value(s) of the response "
                        f"{response.strip('`')!r} lie outside the truncation bounds (first at "
                        f"row {int(np.nonzero(out)[0][0])}: {float(y[out][0])!r} not in "
                        f"[{float(lb[out][0])!r}, {float(ub[out][0])!r}])")


def bounds(additions, numeric, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(lb, ub) per row: constants broadcast, columns from ``numeric(text)``, ±∞ if absent."""
    out = []
    for b, default in ((additions.lb, -np.inf), (additions.ub, np.inf)):
        if b is None:
            out.append(np.full(n, default))
        elif b.text is None:
            out.append(np.full(n, float(b.value)))
        else:
            out.append(np.asarray(numeric(b.text), dtype=float))
    return out[0], out[1]


def addition_data(spec, df: pd.DataFrame, numeric, y: np.ndarray | None) -> dict:
    """weights, cens, trunc, se of the used rows ``df`` (``numeric(text)``: a numeric
    addition expression evaluated on those rows; ``y`` the response, None for new data)."""
    a = spec.additions
    out: dict = {"weights": None, "cens": None, "trunc": None, "se": None}
    if not a.any:
        return out
    response = spec.responses[0]
    if a.weights:
        out["weights"] = check_weights(numeric(a.weights), f"weights({a.weights.strip('`')})")
    if a.se:
        out["se"] = check_se(numeric(a.se), f"se({a.se.strip('`')})")
    if a.trunc:
        lb, ub = bounds(a, numeric, len(df))
        if y is not None:
            check_truncation(y, lb, ub, response, a)
        out["trunc"] = (lb, ub)
    if a.cens and y is not None:
        out["cens"] = censoring(df, a.cens, a.cens_y2, y)
    return out


def has_additions(design) -> bool:
    """The design carries weights, censoring, truncation bounds or standard errors."""
    return any(getattr(design, k, None) is not None for k in ("weights", "cens", "trunc", "se"))


@dataclass
class RowScaling:
    r"""How ``weights()`` and ``se()`` (without ``sigma = TRUE``) enter the Gaussian marginal
    statistics (:mod:`.crossprod`): rows scaled by a_i = √w_i / k_i, where w_i is the weight
    (1 without weights()) and k_i the row's known sd factor (se_i with ``se()``, σ then ≡ 1;
    1 without). Per row, with s = σ k_i,

        w_i · log N(y_i | η_i, σ k_i)
          = log N(a_i y_i | a_i η_i, σ) − (w_i − 1)/2 · log 2πσ² − w_i log k_i,

    so brms' likelihood with u integrated out is the unweighted marginal log N(a∘y; a∘Xβ,
    (a∘Z) G (a∘Z)ᵀ + σ²I) of the scaled rows with N replaced by Σ w_i (the coefficient of
    log 2πσ²) plus the constant −Σ w_i log k_i. ``weight`` (n,) w_i; ``log_k`` (n,) log k_i;
    ``sigma_known``: se() without sigma = TRUE (σ ≡ 1 in the scaled model, reported as 0)."""

    scale: np.ndarray
    weight: np.ndarray
    log_k: np.ndarray
    sigma_known: bool

    @property
    def N(self) -> float:
        return float(self.weight.sum())

    @property
    def const(self) -> float:
        return float(-(self.weight * self.log_k).sum())


def marginal_scaling(design) -> RowScaling | None:
    """The :class:`RowScaling` of a design with ``weights()`` and/or ``se()`` without
    ``sigma = TRUE`` (None without them; cens()/trunc()/se(sigma = TRUE) are not Gaussian
    marginal, :func:`mixedformula.engine.addition_reason`)."""
    w, se = getattr(design, "weights", None), getattr(design, "se", None)
    if w is None and se is None:
        return None
    if se is not None and design.formula.additions.se_sigma:
        raise ValueError("se(sigma = TRUE): the residual variance se² + σ² is not a row "
                         "scaling of the statistics")
    n = design.nobs
    w = np.ones(n) if w is None else np.asarray(w, dtype=float)
    k = np.ones(n) if se is None else np.asarray(se, dtype=float)
    return RowScaling(scale=np.sqrt(w) / k, weight=w, log_k=np.log(k),
                      sigma_known=se is not None)


def residual_sd(sigma, se):
    """sqrt(se² + σ²) per row (``se()``; brms), σ itself without se (numpy or PyTensor)."""
    if se is None:
        return sigma
    return (se * se + sigma * sigma) ** 0.5


def loglik_rows(family, y, eta, params: dict, design, trials=None):
    """Pointwise log-likelihood with the addition terms (numpy; the model's expression):
    w_i · (censored / truncated log p(y_i)) — brms' ``log_lik`` with weights."""
    from ..families.censoring import addition_loglik, truncation_sides
    from ..families.logdensity import NUMPY
    params = dict(params)
    if design.se is not None:
        params["sigma"] = residual_sd(params["sigma"], design.se)
    kw: dict = {}
    if design.weights is not None:
        kw["weights"] = design.weights
    if design.cens is not None:
        kw["codes"], kw["y2"] = design.cens.codes, design.cens.y2
    sides = (False, False)
    if design.trunc is not None:
        sides = truncation_sides(family, design.formula.additions)
        kw["lb"], kw["ub"] = design.trunc
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(addition_loglik(NUMPY, family, y, eta, params, trials, sides=sides,
                                          **kw), dtype=float)


def addition_draws(draw, params: dict, design, max_rounds: int = 1000,
                   draw_truncated=None) -> np.ndarray:
    """Response draws (S, n) with the addition terms that enter brms' posterior_predict:
    ``se()`` (residual sd sqrt(se² + σ²), se from the design: new data must carry it) and
    ``trunc()`` (draws outside [lb, ub] drawn again until inside); weights and cens do not
    change draws. ``draw(params)`` draws once from the family; ``draw_truncated(params, lb,
    ub)``: draws inside the bounds at once (``Family.truncated_rvs``; None: not available)."""
    a = design.formula.additions
    params = dict(params)
    if a.se:
        if design.se is None:
            raise DataError(f"predicting the response of a se() model needs the column(s) of "
                            f"se({a.se.strip('`')}) in the new data")
        params["sigma"] = residual_sd(params["sigma"], design.se[None, :])
    y = np.asarray(draw(params), dtype=float)
    if a.trunc:
        if design.trunc is None:
            raise DataError("predicting the response of a trunc() model needs the bound "
                            "column(s) in the new data")
        lb, ub = design.trunc
        inside = None if draw_truncated is None else draw_truncated(params, lb[None, :],
                                                                    ub[None, :])
        if inside is not None:
            return np.asarray(inside, dtype=float)
        for _ in range(max_rounds):
            out = (y < lb[None, :]) | (y > ub[None, :])
            if not out.any():
                break
            y = np.where(out, np.asarray(draw(params), dtype=float), y)
        else:
            raise DataError(f"could not draw inside the truncation bounds in {max_rounds} "
                            "rounds (the bounds hold almost no probability)")
    return y


#: the addition terms brms 2.18 allows with correlated residuals (stan_predictor.mvbrmsterms:
#: "Only se, weights, mi are supported addition arguments when 'rescor' is estimated")
RESCOR_ADDITIONS = ("se", "weights")


def rescor_refusal(design) -> str:
    """Why a multivariate design's addition terms cannot go with correlated residuals
    (``rescor``), in brms 2.18's rules ("" when they can): only se() and weights() (and brms'
    mi()), and every response that has weights() the same weights ("All responses should
    use the same weights if 'rescor' is estimated"), which then weight each row's joint
    density."""
    parts = getattr(design, "response_parts", None)
    if not parts:
        return ""
    other = []
    for name, part in zip(design.response_names, parts):
        a = part.formula.additions
        used = [t for t, on in (("cens()", a.cens), ("trunc()", a.trunc)) if on]
        if used:
            other.append(f"{name} has {' and '.join(used)}")
    if other:
        return ("with correlated residuals (rescor) brms allows only se() and weights() as "
                f"addition terms (brms 2.18: 'Only se, weights, mi are supported addition "
                f"arguments when rescor is estimated'), but {'; '.join(other)}: fit with "
                "rescor=False (each response its own likelihood), as brms' set_rescor(FALSE)")
    texts = {part.formula.additions.weights for part in parts
             if part.formula.additions.weights}
    if len(texts) > 1:
        return ("with correlated residuals (rescor) every response must use the same "
                "weights() (brms 2.18: 'All responses should use the same weights if rescor "
                f"is estimated'), not {', '.join(sorted(t.replace('`', '') for t in texts))}: "
                "give all responses one weights() column, or fit with rescor=False")
    return ""


def response_sds(sig: np.ndarray, design) -> np.ndarray:
    """Residual sds (S, n, r) of a multivariate design with addition terms per response:
    √(σ_k² + se_ik²) for a response with se() (σ_k ≡ 0 without sigma = TRUE: se alone; brms'
    ``sigma{resp}`` = sqrt(square(sigma) + se2)), σ_k otherwise. Rows of response k only."""
    out = np.array(sig, dtype=float, copy=True)
    for k, part in enumerate(design.response_parts):
        a = part.formula.additions
        if not a.se:
            continue
        if part.se is None:
            raise DataError(f"response {design.response_names[k]}: its se({a.se.strip('`')}) "
                            "column is needed in the new data")
        rows = design.rows(k)
        out[:, rows, k] = residual_sd(out[:, rows, k], part.se)
    return out


def common_weights(design) -> np.ndarray | None:
    """With rescor: the one weights() of the responses (brms weights each row's joint
    density by it; :func:`rescor_refusal` checked they are the same), None without."""
    for part in design.response_parts or ():
        if part.weights is not None:
            return np.asarray(part.weights, dtype=float)
    return None
