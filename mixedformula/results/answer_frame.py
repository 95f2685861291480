"""The tidy table the answers (predictions, comparisons, slopes, emmeans, ...) return.

A :class:`pandas.DataFrame` with two extras: ``.draws()`` (the posterior draws behind each row,
rows × draws, Bayesian fits only) and ``.plot()`` (estimate with its interval per row;
matplotlib is imported only when plotting).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MixedFormulaError

LOWS = ("conf.low", "lower.CL", "asymp.LCL", "CI.Lower", "Q2.5")
HIGHS = ("conf.high", "upper.CL", "asymp.UCL", "CI.Upper", "Q97.5")
ESTIMATES = ("estimate", "emmean", "Estimate", "response", "prob", "rate")


class AnswerFrame(pd.DataFrame):
    """DataFrame + ``draws()`` + ``plot()`` (see the module docstring)."""

    _metadata = ["_mf_draws", "_mf_what", "eps", "_mf_emm"]

    @property
    def _constructor(self):
        return AnswerFrame

    @classmethod
    def of(cls, df: pd.DataFrame, draws: np.ndarray | None, what: str) -> "AnswerFrame":
        out = cls(df)
        out._mf_draws = draws
        out._mf_what = what
        out.eps = None
        return out

    def draws(self) -> np.ndarray:
        """Posterior draws behind the rows: array (rows, draws)."""
        d = getattr(self, "_mf_draws", None)
        if d is None:
            raise MixedFormulaError("this table has no draws (a frequentist fit)")
        return d

    def pairs(self, adjust: str = "tukey"):
        """emmeans' ``pairs()`` of these marginal means or trends (``adjust``: tukey, holm,
        none)."""
        emm = getattr(self, "_mf_emm", None)
        if emm is None:
            raise MixedFormulaError("pairs() is for tables from emmeans() / emtrends()")
        return emm.pairs(adjust)

    def plot(self, ax=None, label: str | None = None):
        """Point estimate and interval per row (horizontal); returns the matplotlib axes."""
        import matplotlib.pyplot as plt

        est = next((c for c in ESTIMATES if c in self.columns), None)
        lo = next((c for c in LOWS if c in self.columns), None)
        hi = next((c for c in HIGHS if c in self.columns), None)
        if est is None:
            raise MixedFormulaError("nothing to plot: no estimate column")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 0.4 * len(self) + 1.2))
        stats = set(ESTIMATES) | set(LOWS) | set(HIGHS) | {
            "std.error", "SE", "df", "t.ratio", "p.value", "Est.Error", "Evid.Ratio",
            "Post.Prob", "Star", "rowid"}
        keys = [c for c in self.columns if c not in stats]
        labels = [" ".join(str(v) for v in row) for row in self[keys].itertuples(index=False)] \
            if keys else [str(i) for i in range(len(self))]
        y = np.arange(len(self))[::-1]
        e = pd.to_numeric(self[est], errors="coerce").to_numpy(dtype=float)
        if lo is not None and hi is not None:
            low = pd.to_numeric(self[lo], errors="coerce").to_numpy(dtype=float)
            high = pd.to_numeric(self[hi], errors="coerce").to_numpy(dtype=float)
            ax.hlines(y, low, high, color="C0")
        ax.plot(e, y, "o", color="C0")
        ax.set_yticks(y)
        ax.set_yticklabels(labels)
        ax.set_xlabel(label or est)
        return ax
