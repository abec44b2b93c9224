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

from adaptcast.drift.passes import occurrence

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
        """Fold each series' newest one-step residual ``[B, n_targets]`` into its mean and variance, in order.

        Vectorised over series: the k-th residual of every series in this batch is folded in pass k.
        """
        names = list(series)
        r = np.asarray(residuals, dtype=np.float64).reshape(len(names), self.n_targets)
        if not names:
            return
        first: dict[str, int] = {}
        which = np.array([first.setdefault(s, len(first)) for s in names], dtype=np.int64)
        uniq = list(first)
        known = np.array([s in self._mean for s in uniq])
        mean = np.zeros((len(uniq), self.n_targets))
        var = np.zeros((len(uniq), self.n_targets))
        count = np.zeros(len(uniq), dtype=np.int64)
        for j in np.flatnonzero(known).tolist():
            s = uniq[j]
            mean[j], var[j], count[j] = self._mean[s], self._var[s], self._n[s]
        a = self.alpha
        passes = occurrence(which)
        for k in range(int(passes.max()) + 1):
            at = np.flatnonzero(passes == k)
            u, x = which[at], r[at]
            new = count[u] == 0
            d = x - mean[u]
            mean[u] = np.where(new[:, None], x, mean[u] + a * d)
            var[u] = np.where(new[:, None], 0.0, (1 - a) * (var[u] + a * d * d))
            count[u] += 1
        for j, s in enumerate(uniq):
            self._mean[s], self._var[s], self._n[s] = mean[j].copy(), var[j].copy(), int(count[j])

    def forget(self, series: Sequence[str]) -> None:
        """Drop these series' residual statistics (they left this process, or went silent)."""
        for s in series:
            self._mean.pop(s, None)
            self._var.pop(s, None)
            self._n.pop(s, None)

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
