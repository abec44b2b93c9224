"""Serve the error memory's correction to a series only while it has been beating the bare model there.

The memory and the level term earn their keep right after a change, when the model is off; on a
stream the model already forecasts well, their corrections are mostly noise and cost a few per
cent of error. The gate keeps, per series, exponentially weighted means of the absolute error of
the corrected forecast and of the model's own, both scored on every outcome whether or not the
correction was served, and serves the corrected forecast while its mean is the lower. After a
shift the bare model's error jumps, so the gate opens within a step or two of outcomes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CorrectionGate"]

# Weight of one outcome: a half-life of ~350 outcomes, about 30 steps at a 12-step horizon, so the
# stationary comparison is not decided by noise, while a shift's errors outweigh it within a few.
DEFAULT_ALPHA = 0.002


class CorrectionGate:
    """Per-series EWMAs of |corrected error| and |model error|; :meth:`open` says where to correct."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)
        self._slot: dict[str, int] = {}
        self._ewma = np.zeros((0, 2))  # per series: corrected, bare

    def open(self, series: Sequence[str]) -> np.ndarray:
        """Whether to serve the corrected forecast, per series (a series not scored yet: yes)."""
        at = np.array([self._slot.get(s, -1) for s in series], dtype=np.int64)
        out = np.ones(len(at), dtype=bool)
        known = at >= 0
        e = self._ewma[at[known]]
        out[known] = e[:, 0] <= e[:, 1]
        return out

    def update(
        self, names: Sequence[str], which: np.ndarray, err_corrected: np.ndarray, err_bare: np.ndarray
    ) -> None:
        """Fold in outcomes: outcome ``i`` is of series ``names[which[i]]``, with its absolute error
        with and without the correction.

        A series' ``n`` outcomes of one call count as ``n`` arrivals of their mean, so a poll holding
        many steps weighs as much as those steps polled one by one.
        """
        which = np.asarray(which, dtype=np.int64)
        if not len(which):
            return
        for s in names:
            if s not in self._slot:
                self._slot[s] = len(self._slot)
        if len(self._slot) > len(self._ewma):
            grown = np.full((len(self._slot), 2), np.nan)
            grown[: len(self._ewma)] = self._ewma
            self._ewma = grown
        n = np.bincount(which, minlength=len(names)).astype(np.float64)
        sums = np.stack(
            [
                np.bincount(which, weights=np.asarray(err_corrected, np.float64), minlength=len(names)),
                np.bincount(which, weights=np.asarray(err_bare, np.float64), minlength=len(names)),
            ],
            axis=1,
        )
        touched = np.flatnonzero(n)
        at = np.array([self._slot[names[i]] for i in touched.tolist()], dtype=np.int64)
        mean = sums[touched] / n[touched, None]
        keep = (1.0 - self.alpha) ** n[touched, None]
        old = self._ewma[at]
        self._ewma[at] = np.where(np.isnan(old), mean, keep * old + (1.0 - keep) * mean)

    def state_dict(self) -> dict[str, Any]:
        names = sorted(self._slot, key=self._slot.__getitem__)
        return {"alpha": self.alpha, "series": names, "ewma": self._ewma.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._slot = {str(s): i for i, s in enumerate(state["series"])}
        self._ewma = np.asarray(state["ewma"], dtype=np.float64).reshape(len(self._slot), 2)
