r"""categorical: y one of K unordered categories, multinomial logit (brms' ``categorical``,
link logit; ``refcat``: the reference category, the first one unless given, brms' ``refcat``).

Each predicted category c (every category but the reference; with ``refcat = NA`` every
category) has its own linear predictor μc (brms' ``mu<c>``). A category may get its own
formula, ``bf(y ~ x + (1 | g), muC ~ z)`` (brms): the model's formula applies to every μc
not given one (:meth:`Categorical.formula_for`, brms' ``combine_formulas``: a formula of its
own replaces the main one, it is not added to it). Every μc is a distributional parameter
(fixed part ``b_muB_x``, group terms ``sd_g__muB_Intercept``; group terms of different
categories are correlated only when they share a ``|p|`` ID, as in brms). With η_r = 0 for
the reference category r and η_c = μc for the others,

    log P(y = k) = η_k − log Σ_j exp(η_j)          (log softmax, computed with the max shifted
                                                    out: stable for any |η|)

The choice of r changes only the parametrisation: μc = log P(y = c) − log P(y = r), so two
reference categories r, r' give the same probabilities with μc' = μc − μ_{r'}. ``refcat = NA``
(brms 2.18: "all categories will be predicted, which requires strong priors or carefully
specified predictor terms in order to lead to an identified model") gives every category a
predictor; the probabilities are then invariant to adding one constant to every μc, so only the
priors (or formulas that differ between categories) identify the μc themselves.

E[y = k] (brms' posterior_epred) is the vector of these K probabilities (..., K); draws are
codes 1..K (the category labels are ``Categorical.categories``). The response may be strings,
a pandas Categorical (its category order; R's factor levels) or integers (sorted values); it is
recoded to 1..K before the design is built (:meth:`Categorical.response_data`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import FamilyError
from ..priors import Prior
from .base import Family
from .logdensity import observed_log_prob
from .registry import register


def log_softmax(eta: np.ndarray) -> np.ndarray:
    """log softmax over the last axis, the maximum shifted out (numpy)."""
    eta = np.asarray(eta, dtype=float)
    m = np.max(eta, axis=-1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    z = eta - m
    return z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))


def draw_categories(p: np.ndarray, rng) -> np.ndarray:
    """One code 1..K per row of the probabilities p (..., K): the first k with
    u · Σp < p_1 + ... + p_k, u ~ U(0, 1)."""
    c = np.cumsum(p, axis=-1)
    u = rng.random(c.shape[:-1] + (1,)) * c[..., -1:]
    return np.minimum((u > c).sum(-1), p.shape[-1] - 1).astype(float) + 1.0


def response_categories(values, name: str):
    """(codes 1..K as floats, NaN where missing; the K category labels) of a categorical
    response: a pandas Categorical by its categories (unused ones dropped), strings or
    booleans sorted as R's ``factor`` does, integers by their sorted values; anything else
    (non-integer numbers) a FamilyError."""
    import pandas as pd
    s = pd.Series(values).reset_index(drop=True)
    missing = s.isna().to_numpy()
    if isinstance(s.dtype, pd.CategoricalDtype):
        present = set(s.dropna().unique())
        labels = [c for c in s.cat.categories if c in present]
    elif pd.api.types.is_bool_dtype(s):
        labels = sorted(s.dropna().unique())
    elif pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=float)
        ok = ~missing
        bad = ok & ~(np.isfinite(v) & (v == np.round(v)))
        if bad.any():
            i = int(np.nonzero(bad)[0][0])
            raise FamilyError(
                f"family 'categorical' needs category labels (strings, a categorical, or "
                f"integer codes); response {name!r} has {int(bad.sum())} value(s) that are not "
                f"integers (first at row {i}: {v[i]!r})")
        labels = sorted(np.unique(v[ok]).astype(np.int64).tolist())
        s = pd.Series(np.where(ok, np.nan_to_num(v).astype(np.int64), -1)).astype(object)
        s[missing] = None
    else:
        labels = sorted(str(x) for x in s.dropna().unique())
        s = s.map(lambda x: None if x is None or (isinstance(x, float) and np.isnan(x))
                  else str(x))
    index = {lab: k + 1.0 for k, lab in enumerate(labels)}
    codes = np.array([np.nan if m else index[x] for x, m in zip(s.tolist(), missing)],
                     dtype=float)
    return codes, [str(lab) for lab in labels]


@register
class Categorical(Family):
    """brms' categorical family (module docstring); ``categories`` are the response's labels
    (first = reference), known once the response has been seen (:meth:`for_response`)."""

    name = "categorical"
    default_link = "logit"
    allowed_links = ("logit",)
    discrete = True

    #: arguments of the family call besides the link (``categorical(refcat = "C")``)
    family_arguments = ("refcat",)

    def __init__(self, link: str | None = None, categories=None, refcat=None):
        super().__init__(link)
        self.categories: tuple[str, ...] = tuple(str(c) for c in categories or ())
        if is_na(refcat):
            refcat = NA
        elif refcat is not None:
            if isinstance(refcat, (bool, np.bool_)) or not isinstance(
                    refcat, (str, int, np.integer)):
                raise FamilyError(f"family 'categorical': refcat must be a category label, "
                                  f"None (the first category) or NA (no reference), not "
                                  f"{refcat!r}")
            refcat = str(refcat)
        #: None: the first category; NA: none (every category predicted); else its label
        self.refcat = refcat
        if self.categories and isinstance(refcat, str) and refcat not in self.categories:
            raise FamilyError(f"family 'categorical': the reference category refcat = "
                              f"{refcat!r} is not a response category (categories: "
                              f"{', '.join(self.categories)})")

    # ------------------------------------------------------------------ identity, state
    @property
    def reference(self) -> int | None:
        """0-based index of the reference category in ``categories``; None with refcat NA."""
        if self.refcat is NA or not self.categories:
            return None
        return 0 if self.refcat is None else self.categories.index(self.refcat)

    @property
    def predicted(self) -> tuple[str, ...]:
        """The categories with a linear predictor, in category order (brms' predcats)."""
        r = self.reference
        return tuple(c for k, c in enumerate(self.categories) if k != r)

    @property
    def dpars(self) -> tuple[str, ...]:          # one linear predictor per predicted category
        return tuple(f"mu{c}" for c in self.predicted)

    @property
    def mean_dpars(self) -> tuple[str, ...]:
        return self.dpars

    @property
    def links(self) -> dict[str, str]:
        return {d: self.link for d in self.dpars} or {"mu": self.link}

    def summary_links(self, dpars) -> dict[str, str]:
        # brms: "muB = logit; muC = logit" (η is identity-linked here, the softmax is the link)
        return {d: self.link for d in dpars}

    def with_link(self, link):
        return self if link is None or link == self.link else \
            type(self)(link, self.categories, self.refcat)

    def __eq__(self, other) -> bool:
        return (isinstance(other, Categorical) and self.link == other.link
                and self.categories == other.categories
                and _refcat_key(self.refcat) == _refcat_key(other.refcat))

    def __hash__(self) -> int:
        return hash((self.name, self.link, self.categories, _refcat_key(self.refcat)))

    def __repr__(self) -> str:
        ref = "" if self.refcat is None else \
            ", refcat = NA" if self.refcat is NA else f", refcat = {self.refcat!r}"
        return f"categorical({self.link!r}{ref})"

    def state(self) -> dict:
        out = {"categories": list(self.categories)}
        if self.refcat is not None:
            out["refcat"] = None if self.refcat is NA else self.refcat
            out["refcat_na"] = self.refcat is NA
        return out

    def with_state(self, state: dict) -> "Categorical":
        cats = state.get("categories")
        refcat = NA if state.get("refcat_na") else state.get("refcat", self.refcat)
        if not cats and refcat is self.refcat:
            return self
        return type(self)(self.link, cats or self.categories, refcat)

    def for_response(self, labels) -> "Categorical":
        if labels is None:
            return self
        if len(labels) < 2:
            raise FamilyError(f"family 'categorical' needs at least two response categories; "
                              f"the response has {len(labels)}"
                              + (f" ({labels[0]!r})" if labels else ""))
        bad = [c for c in labels if not _name_safe(c)]
        if bad:
            raise FamilyError(f"family 'categorical': category label(s) {bad!r} cannot name a "
                              "linear predictor (brms' mu<category> needs letters, digits, "
                              "'.' or '_')")
        return type(self)(self.link, labels, self.refcat)

    def response_values(self, codes):
        import pandas as pd
        codes = np.asarray(codes, dtype=float)
        ints = np.where(np.isfinite(codes), codes - 1, -1).astype(np.int64)
        return pd.Categorical.from_codes(ints, categories=list(self.categories))

    def mean_categories(self, n_thresholds: int = 0):
        return list(self.categories)

    @property
    def recodes_response(self) -> bool:
        return True

    def response_data(self, values, name: str):
        return response_categories(values, name)

    def new_response_codes(self, values, name: str) -> np.ndarray:
        """Codes 1..K of response values in new data, on the fitted categories; a category
        the model was not fitted to is a FamilyError naming it and its count."""
        import pandas as pd
        s = pd.Series(values).reset_index(drop=True)
        keys = s.map(lambda x: None if pd.isna(x) else
                     str(int(x)) if isinstance(x, (int, np.integer, float, np.floating))
                     and float(x) == int(x) else str(x))
        index = {c: k + 1.0 for k, c in enumerate(self.categories)}
        unseen = sorted({k for k in keys.dropna() if k not in index})
        if unseen:
            n = int(keys.isin(unseen).sum())
            raise FamilyError(f"response {name!r} has {n} value(s) in categories the model "
                              f"was not fitted to: {', '.join(map(repr, unseen))} (fitted "
                              f"categories: {', '.join(self.categories)})")
        return np.array([np.nan if k is None else index[k] for k in keys], dtype=float)

    def formula_for(self, spec):
        """The formula of each predicted category's μc (brms' categorical): a category's own
        formula (``muC ~ z + (1 | g)`` in ``bf()``) where given, the model's formula (fixed
        part and group terms) copied to every other one; the mean itself has no predictor
        left. Terms with a ``|p|`` ID keep it, so they share one covariance block across
        categories. Idempotent (an expanded formula has every μc's own)."""
        from ..formula import FormulaSpec, parse
        from ..formula.spec import DparFormula
        if not isinstance(spec, FormulaSpec):
            spec = parse(spec)
        why = None
        if spec.parts or spec.multivariate:
            why = "a multivariate formula"
        elif spec.offset:
            why = "offset()"
        elif spec.autocor:
            why = "ar()/cosy() terms"
        elif spec.trials:
            why = "trials()"
        elif spec.additions.variables:
            why = "addition terms (weights(), cens(), trunc(), se())"
        if why:
            raise FamilyError(f"family 'categorical' with {why} is not supported")
        if not self.categories:
            raise FamilyError("family 'categorical': the response categories are not known "
                              "(give the response column in the data, or the family object "
                              "get_family('categorical').for_response(['A', 'B', 'C']))")
        own = {d.name: d for d in spec.dpars}
        bad = [n for n in own if n not in self.dpars]
        if bad:
            ref = self.reference
            refs = [n for n in bad if ref is not None and n == f"mu{self.categories[ref]}"]
            hint = (f"; mu{self.categories[ref]}: {self.categories[ref]!r} is the reference "
                    "category (brms' refcat), whose predictor is 0") if refs else ""
            raise FamilyError(f"family 'categorical': {', '.join(bad)} ~ ... names no "
                              f"predicted category (its linear predictors: "
                              f"{', '.join(self.dpars)}{hint})")
        dps, groups = [], []
        main_groups = [g for g in spec.groups if g.dpar is None]
        for d in self.dpars:
            if d in own:
                dps.append(own[d])
                groups += [g for g in spec.groups if g.dpar == d]
            else:
                dps.append(DparFormula(name=d, fixed=spec.fixed,
                                       fixed_variables=spec.fixed_variables,
                                       text=f"{d} ~ {spec.fixed}"))
                groups += [replace(g, dpar=d) for g in main_groups]
        return replace(spec, fixed="0", fixed_variables=(), groups=tuple(groups),
                       dpars=tuple(dps))

    # ------------------------------------------------------------------ numpy
    def eta_matrix(self, params) -> np.ndarray:
        """(..., K) in category order: 0 for the reference category, μc for the others."""
        mus = list(np.broadcast_arrays(*[np.asarray(params[d], dtype=float)
                                         for d in self.dpars]))
        r = self.reference
        if r is not None:
            mus.insert(r, np.zeros_like(mus[0]))
        return np.stack(mus, axis=-1)

    def log_probs(self, params) -> np.ndarray:
        """log P(y = k), (..., K)."""
        return log_softmax(self.eta_matrix(params))

    def inverse_link(self, eta):
        return np.asarray(eta, dtype=float)

    def inverse_link_tensor(self, eta):
        return eta

    def logpdf(self, y, eta, params=None, trials=None):
        return observed_log_prob(self.log_probs(params), y)

    def mean(self, mu, params=None, trials=None):
        """The K category probabilities P(y = k), (..., K) (brms' posterior_epred)."""
        p = np.exp(self.log_probs(params))
        shape = np.broadcast_shapes(np.shape(mu), p.shape[:-1])
        return np.broadcast_to(p, shape + p.shape[-1:])

    def variance(self, mu, params=None, trials=None):
        """Var of each category's indicator, p_k (1 − p_k), (..., K)."""
        p = self.mean(mu, params)
        return p * (1.0 - p)

    def rvs(self, mu, params, rng, trials=None):
        return draw_categories(self.mean(mu, params), rng)

    def _check_y(self, y, trials, fail):
        K = len(self.categories) if self.categories else np.inf
        bad = ~((y >= 1) & (y <= K) & (y == np.round(y)))
        if bad.any():
            fail("category codes 1..K (strings, a categorical or integers)", bad)

    # ------------------------------------------------------------------ priors
    def default_intercept(self, y, centre=None) -> Prior:
        return Prior("student_t", (3.0, 0.0, 2.5), "Intercept")

    def default_sd_scale(self, y, centre=None) -> float:
        return 2.5

    # ------------------------------------------------------------------ PyMC
    def pymc_likelihood(self, name, eta, params, observed, trials=None, dims="obs"):
        import pymc as pm
        import pytensor.tensor as pt
        mus = [pt.cast(pt.as_tensor_variable(params[d]), "float64") for d in self.dpars]
        r = self.reference
        if r is not None:
            mus.insert(r, pt.zeros_like(mus[0]))
        etas = pt.stack(mus, axis=-1)                                  # (n, K)

        def logp(value, eta_):
            lp = pt.special.log_softmax(eta_, axis=-1)
            onehot = pt.eq(pt.cast(value, "int64")[..., None] - 1, pt.arange(eta_.shape[-1]))
            return pt.sum(pt.switch(onehot, lp, 0.0), axis=-1)

        def random(eta_, rng=None, size=None):
            eta_ = np.asarray(eta_, dtype=float)
            if size is not None:
                eta_ = np.broadcast_to(eta_, tuple(size) + eta_.shape[-1:])
            return draw_categories(np.exp(log_softmax(eta_)), rng)

        return pm.CustomDist(name, etas, logp=logp, random=random, signature="(k)->()",
                             observed=observed, dims=dims)


class _NA:
    """R's ``NA`` as a refcat (brms: no reference category); one instance, :data:`NA`."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"


NA = _NA()


def is_na(x) -> bool:
    """R's NA as a refcat: :data:`NA`, ``pandas.NA``, a float NaN."""
    if x is NA:
        return True
    try:
        import pandas as pd
        if x is pd.NA:
            return True
    except ImportError:                      # pragma: no cover
        pass
    return isinstance(x, (float, np.floating)) and bool(np.isnan(x))


def _refcat_key(refcat):
    return "<NA>" if refcat is NA else refcat


def _name_safe(label: str) -> bool:
    import re
    return bool(re.fullmatch(r"[A-Za-z0-9._]+", label))
