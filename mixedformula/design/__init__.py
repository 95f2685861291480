"""Data → :class:`Design` (y, X, group blocks, sparse Z on demand) and :class:`DesignSpec`."""

from .spec import DesignSpec, as_pandas, design_matrices
from .types import Design, GroupBlock

__all__ = ["Design", "DesignSpec", "GroupBlock", "as_pandas", "design_matrices"]
