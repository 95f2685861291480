"""Forward draws from the priors (``pm.sample_prior_predictive``) of the conditional model.

For a Gaussian model the conditional and marginal forms define the same joint distribution of
(β, G, σ, y), and the marginal engine's ``pm.Potential`` is not a random variable that could be
forward-sampled, so the conditional form is the one sampled. Forward sampling is exact
(independent draws, no MCMC); it needs proper priors, so — like brms — models with flat priors
(brms' default for ``b``) are refused.
"""

from __future__ import annotations

import warnings

from ...errors import FamilyError, MixedFormulaError
from ...priors import PriorSet
from .build import build_model

#: PyMC's improper distributions (their random variables have no forward draws)
IMPROPER_OPS = ("FlatRV", "HalfFlatRV")


def conditional_built(model):
    """The conditional form of ``model`` (same priors and parameters, u sampled, y observed)."""
    if model.likelihood == "conditional" and model.engine.integrate is None:
        return model.built
    return build_model(model.design, model.family, PriorSet(model.prior_list),
                       likelihood="conditional", rescor=model.rescor,
                       residual_by=model.residual_by,
                       parametrization=model.parametrization)


def check_proper(pm_model) -> None:
    """Raise when a free variable of ``pm_model`` has a flat (improper) prior."""
    flat = [rv.name for rv in pm_model.free_RVs
            if type(rv.owner.op).__name__ in IMPROPER_OPS]
    if flat:
        raise MixedFormulaError(
            "sampling from the prior needs proper priors, but " + ", ".join(flat)
            + " has a flat prior (brms' default for b); set one, e.g. "
            "priors=[mf.prior('normal(0, 10)', class_='b')]")


def forward_draws(model, draws: int, seed):
    """(built, idata): ``draws`` forward draws of the conditional form of ``model``
    (``idata.prior`` raw PyMC names; ``idata.prior_predictive`` unless the row-wise MvNormal
    of ``rescor``, which has no random method, is in the model)."""
    import pymc as pm
    built = conditional_built(model)
    check_proper(built.model)
    m = built.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            idata = pm.sample_prior_predictive(draws=int(draws), model=m, random_seed=seed)
        except ValueError as e:
            fam = built.family
            if not fam.link_can_leave_domain:
                raise
            lo, hi = fam.mu_domain
            raise FamilyError(
                f"cannot draw from the prior of family {fam.name!r} with link {fam.link!r}: "
                f"the priors put the mean g⁻¹(η) outside [{lo:g}, {hi:g}] in some draws (the "
                f"{fam.link} link does not keep it inside), so no response can be drawn there "
                f"(PyMC: {(str(e).splitlines() or [''])[0]}). Use link={fam.default_link!r}, or "
                "priors on Intercept, b and sd that keep η where the mean is valid") from None
        except NotImplementedError:
            # the row-wise MvNormal (rescor) has no random method: draw the parameters here
            # and y from them afterwards
            names = [v.name for v in m.free_RVs] + [v.name for v in m.deterministics]
            idata = pm.sample_prior_predictive(draws=int(draws), model=m, random_seed=seed,
                                               var_names=names)
    return built, idata
