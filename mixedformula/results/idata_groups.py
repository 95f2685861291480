"""Replace or add one group of an arviz InferenceData (public arviz API only)."""

from __future__ import annotations


def set_group(idata, name: str, ds) -> None:
    """``idata.<name> = ds``: an existing group of that name is deleted first (arviz'
    ``InferenceData.__delattr__`` also drops it from the group list)."""
    if name in idata.groups():
        delattr(idata, name)
    idata.add_groups({name: ds})
