"""brms' ``MV(poisson, gaussian)``: one :class:`~.base.Family` per response of a multivariate
``bf(y1 ~ ..., family = poisson()) + bf(y2 ~ ..., family = gaussian())`` model.

The joint log-density is the sum over responses (no residual correlation between different
families, brms' rule: ``set_rescor(TRUE)`` is refused), each response with its own likelihood,
link, distributional parameters (``sigma_y2``, ``shape_y1``) and default priors:

    log p(y | η) = Σ_k Σ_{i observed for k} log p_k(y_ik | η_ik, θ_k)

Callers ask :meth:`MultivariateFamily.response` for response k's family; the questions about
the model as a whole (``gaussian``, ``linear_gaussian``: every response; ``allows_rescor``:
never with different families) are answered here. Any other family-level question has no
single answer and is a :class:`MixedFamilyError` naming the families (also an AttributeError,
so ``getattr(fam, name, default)`` still gives the default).
"""

from __future__ import annotations

from ..errors import FamilyError
from .base import Family


class MixedFamilyError(FamilyError, AttributeError):
    """A question about one family asked of a model with one family per response."""


class MultivariateFamily:
    """The families of a multivariate model whose responses have different families."""

    #: never: brms allows rescor only when every response is gaussian or every one student
    allows_rescor = False
    thresholds = False
    recodes_response = False

    def __init__(self, families):
        families = tuple(families)
        if len(families) < 2 or not all(isinstance(f, Family) for f in families):
            raise FamilyError("a multivariate family needs one Family per response (two or "
                              "more)")
        for f in families:
            if f.recodes_response:
                raise FamilyError(f"family {f.name!r} in a model with one family per response "
                                  "is not supported yet (ordinal and categorical responses "
                                  "are fitted alone)")
        self.families = families

    # ---------------------------------------------------------------- per response
    def response(self, k: int) -> Family:
        """The family of response k (order of the bf() parts)."""
        return self.families[k]

    # ---------------------------------------------------------------- the whole model
    @property
    def name(self) -> str:
        """brms' ``MV(poisson, gaussian)``."""
        return f"MV({', '.join(f.name for f in self.families)})"

    @property
    def link(self) -> str:
        return ", ".join(f.link for f in self.families)

    @property
    def gaussian(self) -> bool:
        """Every response is Normal given η."""
        return all(f.gaussian for f in self.families)

    @property
    def linear_gaussian(self) -> bool:
        return all(f.linear_gaussian for f in self.families)

    @property
    def dpars(self) -> tuple[str, ...]:
        """The distributional parameters of any response (their union, in order)."""
        out: list[str] = []
        for f in self.families:
            out += [d for d in f.dpars if d not in out]
        return tuple(out)

    def mean_categories(self, n_thresholds: int = 0) -> None:
        """The mean is one value per response (ordinal and categorical responses are not
        part of such models)."""
        return None

    def for_response(self, labels) -> "MultivariateFamily":
        return self

    def formula_for(self, spec):
        return spec

    def state(self) -> dict:
        return {}

    def __eq__(self, other) -> bool:
        return isinstance(other, MultivariateFamily) and self.families == other.families

    def __hash__(self) -> int:
        return hash(self.families)

    def __repr__(self) -> str:
        return self.name

    def __getattr__(self, attr: str):
        if attr.startswith("__") or attr == "families":
            raise AttributeError(attr)
        raise MixedFamilyError(f"{attr!r} is asked of one family but this model has one "
                               f"family per response ({self.name}): not supported with "
                               "different families per response yet")
