r"""``mf.recovery_check``: simulate from known parameters, refit, count covered truths.

For simulation m = 1…M: y⁽ᵐ⁾ ~ p(y | θ*) with :func:`mixedformula.simulate` (new group effects
each time), fit the model, and for every given parameter record whether its central ``prob``
posterior interval [q_{(1−prob)/2}, q_{(1+prob)/2}] contains the truth θ*. Coverage is the
fraction of the M intervals that do; under calibration (weak priors, enough data) it is ≈ prob,
and its binomial standard error at the nominal rate is SE = √(prob (1 − prob) / M). Coverage far
below prob − 2 SE points at a mis-specified model, a too-strong prior or sampling problems.

Family-wise (``familywise=True``): with k parameters each interval is the central
1 − (1 − prob)/k interval (Bonferroni), so that all k truths lie inside their intervals
together with probability ≥ prob (union bound: P(some miss) ≤ Σ (1 − prob)/k = 1 − prob).
The table's ``joint`` is the fraction of simulations in which all k are covered, nominal
≥ prob, SE √(prob (1 − prob) / M). Use it for a pass/fail check whose false-failure rate is
known: k per-parameter ``prob`` intervals all cover with probability only ≈ prob^k.
The nominal rates hold for a calibrated posterior; with fixed truths (not drawn from the
prior) calibration is approximate (Bernstein–von Mises), close for enough data per parameter.

Speed: for the marginal engine (Gaussian models) with nutpie, the model is compiled once and each
new data set only replaces its sufficient statistics (shared variables) in the compiled model;
the data-dependent default priors (brms' student_t scale from sd(y), intercept location from
median(y)) are then those of the first simulated data set, held fixed for all simulations —
pass ``priors=`` to set them yourself. The conditional engine fits each data set with
``Model.fit``: its rows and brms' default priors are shared data of the compiled model, so it
compiles once too (each data set with its own default priors); the PyMC and JAX samplers
compile every time.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from .design import design_matrices
from .errors import DataError
from .model import Model, has_nutpie
from .results.naming import name_kind, threshold_name
from .results.posterior import PosteriorDraws, parameter_names
from .simulation import simulate

MODEL_KEYS = ("priors", "likelihood", "link", "rescor", "rescor_by", "na_action")


class RecoveryTable(pd.DataFrame):
    """Per parameter: truth, coverage, binomial SE, mean estimate, bias, interval width."""

    _metadata = ["header", "footer", "covered", "estimates", "joint", "level"]

    @property
    def _constructor(self):
        return RecoveryTable

    def __repr__(self) -> str:
        body = pd.DataFrame(self).to_string(float_format=lambda x: f"{x:.3f}")
        return "\n".join([getattr(self, "header", ""), "", body, "",
                          getattr(self, "footer", "")]).strip()

    def _repr_html_(self) -> str:
        return (f"<p>{getattr(self, 'header', '')}</p>" + pd.DataFrame(self).to_html()
                + f"<p>{getattr(self, 'footer', '')}</p>")


def _scalar_draws(draws: PosteriorDraws, name: str) -> np.ndarray:
    if not draws.has(name):
        known = [v for v in draws.posterior.data_vars if name_kind(v) != "r"]
        raise DataError(f"recovery_check: parameter {name!r} is not in the model (its "
                        f"parameters: {', '.join(known)})")
    return np.asarray(draws.scalar(name), dtype=float)


def recovery_check(formula: str, data, params: dict, n_sims: int = 20, family="gaussian",
                   prob: float = 0.9, seed=None, draws: int = 300, tune: int = 300,
                   chains: int = 2, familywise: bool = False, **fit_kwargs) -> RecoveryTable:
    """Simulate ``n_sims`` data sets from ``params`` (brms names) on the rows/predictors of
    ``data``, fit each, and report per parameter the coverage of the central ``prob``
    intervals with its binomial standard error (see the module docstring).

    ``familywise=True``: each interval is the central 1 − (1 − prob)/k one (k = number of
    parameters, Bonferroni), so all k cover together with probability ≥ prob; ``.joint`` is
    the fraction of simulations where they do, ``.level`` the per-parameter level."""
    if not 0 < prob < 1:
        raise ValueError("prob must be between 0 and 1")
    if n_sims < 1:
        raise ValueError("n_sims must be at least 1")
    ss = np.random.SeedSequence(seed)
    seeds = [(int(s.generate_state(1)[0]), int(s.generate_state(2)[1]) % (2**31))
             for s in ss.spawn(n_sims)]
    model_kw = {k: fit_kwargs.pop(k) for k in MODEL_KEYS if k in fit_kwargs}
    link = model_kw.pop("link", None)
    fit_kwargs.setdefault("progressbar", False)
    sampler = fit_kwargs.pop("sampler", "auto")
    names = list(params)
    level = 1 - (1 - prob) / len(names) if familywise else prob
    a = (1 - level) / 2
    covered = np.zeros((n_sims, len(names)), dtype=bool)
    est = np.zeros((n_sims, len(names)))
    width = np.zeros((n_sims, len(names)))
    fast = None
    for m, (sim_seed, fit_seed) in enumerate(seeds):
        sim = simulate(formula, data, params, family=family, seed=sim_seed, link=link)
        if m == 0:
            model = Model(formula, sim, family=family, link=link, **model_kw)
            _check_names(model, names)
            use_nutpie = sampler == "nutpie" or (sampler == "auto" and has_nutpie())
            if model.likelihood == "marginal" and model.engine.integrate is None and use_nutpie:
                fast = _FastMarginal(model, fit_kwargs)
        if fast is not None:
            design = model.design if m == 0 else design_matrices(model.formula, sim)
            post = fast.sample(design, draws, tune, chains, fit_seed)
        else:
            if m > 0:
                model = Model(formula, sim, family=family, link=link, **model_kw)
            post = model.fit(draws=draws, tune=tune, chains=chains, seed=fit_seed,
                             sampler=sampler, **fit_kwargs).idata.posterior
        sampled = PosteriorDraws(post, design if fast is not None else model.design)
        for i, name in enumerate(names):
            x = _scalar_draws(sampled, name)
            lo, hi = np.quantile(x, [a, 1 - a])
            covered[m, i] = lo <= float(params[name]) <= hi
            est[m, i] = x.mean()
            width[m, i] = hi - lo
    truth = np.array([float(params[n]) for n in names])
    cov = covered.mean(axis=0)
    se = np.sqrt(level * (1 - level) / n_sims)
    joint = float(covered.all(axis=1).mean())
    table = RecoveryTable({"truth": truth, "coverage": cov, "SE": se,
                           "mean_estimate": est.mean(axis=0),
                           "bias": est.mean(axis=0) - truth,
                           "interval_width": width.mean(axis=0)},
                          index=pd.Index(names, name="parameter"))
    low = [n for n, c in zip(names, cov) if c < level - 2 * se]
    kind = (f"family-wise {_pct(prob)} intervals (Bonferroni: central {_pct(level)} interval "
            f"per parameter)" if familywise else f"{_pct(prob)} central intervals")
    table.header = (f"Recovery check: {n_sims} data sets simulated from {formula} "
                    f"({family}); {kind} ({chains} chains x {draws} draws each)")
    table.footer = (f"coverage = fraction of intervals containing the truth; nominal {level:.3g},"
                    f" binomial SE = sqrt(p(1-p)/{n_sims}) = {se:.3f}. "
                    + (f"Below nominal - 2 SE: {', '.join(low)}." if low
                       else "All parameters within 2 SE of nominal or above."))
    if familywise:
        table.footer += (f" All {len(names)} covered together in {joint:.2f} of the data sets "
                         f"(nominal >= {prob:.2f}, binomial SE "
                         f"{np.sqrt(prob * (1 - prob) / n_sims):.3f}).")
    table.covered = pd.DataFrame(covered, columns=names)
    table.estimates = pd.DataFrame(est, columns=names)
    table.joint = joint
    table.level = level
    return table


def _pct(p: float) -> str:
    """0.9 → '90%', 0.975 → '97.5%'."""
    return f"{p * 100:.4g}%"


def _check_names(model, names) -> None:
    """Unknown b_/sd_/cor_ names are reported before any fitting."""
    known = {n for kind in ("b", "sd", "cor") for n in parameter_names(model.design)[kind]}
    if model.family.thresholds:        # ordinal: b_Intercept[1..K-1] instead of b_Intercept
        K = model.family.n_categories(model.design.y[:, 0])
        known = (known - {"b_Intercept"}) | {threshold_name(k) for k in range(1, K)}
    bad = [n for n in names if name_kind(n) in ("b", "sd", "cor") and n not in known]
    if bad:
        raise DataError(f"recovery_check: parameter(s) {', '.join(bad)} are not in the model "
                        f"(its b/sd/cor parameters: {', '.join(sorted(known))})")


class _FastMarginal:
    """Compile the marginal model once; swap in each data set's sufficient statistics."""

    def __init__(self, model, fit_kwargs):
        from .backends.pymc.sampling import compiled_model
        self.model = model
        self.built = model.built
        # numba: many data sets share one compile, so the fastest evaluations win; the same
        # compile path (and cache, and fastmath setting) as Model.fit
        self.compiled = compiled_model(self.built.model, "numba")
        self.kw = {k: v for k, v in fit_kwargs.items() if k in ("target_accept", "cores")}
        self.progress = bool(fit_kwargs.get("progressbar", False))

    def sample(self, design, draws, tune, chains, seed):
        import nutpie

        from .backends.pymc.marginal import shared_values
        from .backends.pymc.nutpie_shim import shared_data
        from .backends.pymc.marginal_model import recover_group_effects
        from .backends.pymc.names import brms_posterior
        from .design.crossprod import sufficient_statistics
        stats = sufficient_statistics(design)
        updates = {k: v for k, v in shared_values(stats).items()
                   if k in shared_data(self.compiled)}
        compiled = self.compiled.with_data(**updates)
        kw = dict(self.kw)
        kw.setdefault("cores", chains)
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                              progress_bar=self.progress, save_warmup=False, **kw)
        built = dataclasses.replace(self.built, design=design, stats=stats)
        ge = recover_group_effects(built, idata.posterior, seed)
        return brms_posterior(idata.posterior, built, ge)
