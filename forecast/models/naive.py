"""Seasonal-naive baseline: repeat the value one season ago (last value when season=1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adaptcast.forecast.base import BaseForecaster, FitReport, register


@register
class SeasonalNaive(BaseForecaster):
    """``yhat[t+h] = y[t+h-season]``; the reference every learned model must beat."""

    kind = "naive"

    def __init__(
        self, lookback: int, horizon: int, n_features: int = 1, n_targets: int = 1, season: int = 1, **kw
    ):
        super().__init__(lookback, horizon, n_features, n_targets, season=season, **kw)
        if not 1 <= season <= lookback:
            raise ValueError(f"season must be in [1, lookback={lookback}], got {season}")
        self.season = season

    def _fit(self, X, Y, val):
        return FitReport(
            epochs=0, samples_seen=0, wall_seconds=0.0, cpu_seconds=0.0, device="cpu", train_loss=float("nan")
        )

    def _predict(self, X: np.ndarray) -> np.ndarray:
        last = X[:, -self.season :, : self.n_targets]
        reps = -(-self.horizon // self.season)
        return np.tile(last, (1, reps, 1))[:, : self.horizon]

    def _embed(self, X: np.ndarray) -> np.ndarray:
        return X[:, -min(self.lookback, 16) :, : self.n_targets].reshape(X.shape[0], -1)

    def _save_weights(self, directory: Path) -> None:
        pass

    def _load_weights(self, directory: Path) -> None:
        pass
