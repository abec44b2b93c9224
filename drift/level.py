"""Fast per-series level correction: the one-step error left after the error memory, applied to every lead.

ReLoop2's fast error-compensation loop, reduced to its simplest form. Right after a level shift
the keyed memory misses (its keys move with the level) and the model still predicts the old
level; an exponentially weighted mean of the newest one-step residuals of each series catches
that within a few steps. It is applied only while it stands out from the residual noise
(``|mean| > z`` standard errors), so on stationary data it stays switched off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["LevelTerm"]


class LevelTerm:
    """Per-series EWMA mean and variance of residuals ``[n_targets]``; ``offset`` is the gated mean."""

    def __init__(self, n_targets: int = 1, alpha: float = 0.2, z: float = 2.0, warmup: int = 5) -> None:
        if not 0 < alpha <= 1 or z < 0 or warmup < 1:
            raise ValueError(f"need 0 < alpha <= 1, z >= 0, warmup >= 1; got {alpha}, {z}, {warmup}")
        self.n_targets, self.alpha, self.z, self.warmup = int(n_targets), float(alpha), float(z), int(warmup)
        self._mean: dict[str, np.ndarray] = {}
        self._var: dict[str, np.ndarray] = {}
        self._n: dict[str, int] = {}

    def offset(self, series: Sequence[str]) -> np.ndarray:
        """The correction ``[B, n_targets]`` for each series: its residual mean where significant, else 0."""
        out = np.zeros((len(series), self.n_targets))
        se_factor = self.alpha / (2 - self.alpha)  # variance of an EWMA of white noise, per unit variance
        for i, s in enumerate(series):
            if self._n.get(s, 0) < self.warmup:
                continue
            m, v = self._mean[s], self._var[s]
            out[i] = np.where(np.abs(m) > self.z * np.sqrt(v * se_factor), m, 0.0)
        return out

    def update(self, series: Sequence[str], residuals: np.ndarray) -> None:
        """Fold each series' newest one-step residual ``[B, n_targets]`` into its mean and variance."""
        a = self.alpha
        for s, r in zip(series, np.asarray(residuals, dtype=np.float64), strict=True):
            if s not in self._mean:
                self._mean[s], self._var[s], self._n[s] = r.copy(), np.zeros_like(r), 1
                continue
            d = r - self._mean[s]
            self._mean[s] = self._mean[s] + a * d
            self._var[s] = (1 - a) * (self._var[s] + a * d * d)
            self._n[s] += 1

    def reset(self) -> None:
        """Forget every series (a new model predicts a new level)."""
        self._mean.clear()
        self._var.clear()
        self._n.clear()

    def state_dict(self) -> dict[str, Any]:
        names = sorted(self._mean)
        return {
            "series": names,
            "mean": np.array([self._mean[s] for s in names]).reshape(len(names), self.n_targets),
            "var": np.array([self._var[s] for s in names]).reshape(len(names), self.n_targets),
            "n": np.array([self._n[s] for s in names], dtype=np.int64),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reset()
        for i, s in enumerate(state["series"]):
            self._mean[str(s)] = np.asarray(state["mean"][i], dtype=np.float64)
            self._var[str(s)] = np.asarray(state["var"][i], dtype=np.float64)
            self._n[str(s)] = int(state["n"][i])
