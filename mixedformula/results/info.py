"""``FitInfo``: how a fit was made (sampler, engine, sizes, timing), typed.

:meth:`FitInfo.record` is the one constructor :meth:`mixedformula.model.Model.fit` uses (typed
keyword arguments, every field given); the fields read as attributes (``fit.info.sampler``,
None when a record does not have them). FitInfo is a ``dict`` as well, so the reads that came
before it keep working unchanged — ``fit.info["seed"]``, ``fit.info.get("tune", 0)``,
``"tune" in fit.info`` — as do stored records of older versions (partial or with other keys,
e.g. ``data_name``, ``extra_columns``), and ``json.dumps(info)`` is the record stored in
``idata.attrs["mixedformula"]``.
"""

from __future__ import annotations

from typing import Any

#: field → what it holds
FIELDS = {
    "sampler": "nutpie, pymc, numpyro or blackjax",
    "draws": "draws per chain",
    "backend": "nutpie's compile backend, c or numba (None for the other samplers)",
    "tune": "warm-up draws per chain",
    "chains": "number of chains",
    "seed": "the seed of the run",
    "seconds": "wall time of sampling",
    "engine_note": "why the marginal engine was not used; centred blocks",
    "parametrization": "grouping factor -> centred/noncentred (conditional engine)",
    "likelihood": "marginal or conditional",
    "formula": "the formula text",
    "family": "response family",
    "link": "link of mu",
    "nobs": "number of rows used",
    "target_accept": "NUTS target acceptance",
    "rescor_by": "the rescor_by column (None without)",
}


def _field(name: str):
    def get(self) -> Any:
        return self.get(name)

    def put(self, value) -> None:
        self[name] = value
    return property(get, put, doc=FIELDS[name])


class FitInfo(dict):
    """The record of one fit (see the module docstring)."""

    sampler = _field("sampler")
    draws = _field("draws")
    backend = _field("backend")
    tune = _field("tune")
    chains = _field("chains")
    seed = _field("seed")
    seconds = _field("seconds")
    engine_note = _field("engine_note")
    parametrization = _field("parametrization")
    likelihood = _field("likelihood")
    formula = _field("formula")
    family = _field("family")
    link = _field("link")
    nobs = _field("nobs")
    target_accept = _field("target_accept")
    rescor_by = _field("rescor_by")

    @classmethod
    def record(cls, *, sampler: str, draws: int, backend: str | None, tune: int, chains: int,
               seed: int, seconds: float, engine_note: str, parametrization: dict[str, str],
               likelihood: str, formula: str, family: str, link: str, nobs: int,
               target_accept: float, rescor_by: str | None) -> "FitInfo":
        """Every field, in the order the record has always been stored."""
        return cls(sampler=sampler, draws=draws, backend=backend, tune=tune, chains=chains,
                   seed=seed, seconds=seconds, engine_note=engine_note,
                   parametrization=parametrization, likelihood=likelihood, formula=formula,
                   family=family, link=link, nobs=nobs, target_accept=target_accept,
                   rescor_by=rescor_by)

    @classmethod
    def of(cls, info) -> "FitInfo":
        """A FitInfo from a mapping (a dict, a stored record) or None (a copy: the caller's
        dict is not shared)."""
        return cls(info or {})

    def __repr__(self) -> str:
        return f"FitInfo({dict.__repr__(self)})"


__all__ = ["FIELDS", "FitInfo"]
