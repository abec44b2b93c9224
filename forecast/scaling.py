"""Per-channel standardisation fitted on training rows only and stored in the model manifest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scaler:
    """Z-score per channel: ``(x - mean) / std``; a constant channel keeps std 1 so it maps to 0."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray) -> Scaler:
        """Fit on ``rows`` of shape [n, channels] (or [..., channels]); NaNs are not allowed."""
        flat = np.asarray(rows, dtype=np.float64).reshape(-1, rows.shape[-1])
        if flat.shape[0] == 0:
            raise ValueError("cannot fit a scaler on zero rows")
        mean = flat.mean(axis=0)
        std = flat.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(mean=mean, std=std)

    @classmethod
    def identity(cls, channels: int) -> Scaler:
        return cls(mean=np.zeros(channels), std=np.ones(channels))

    def head(self, n: int) -> Scaler:
        """The scaler of the first ``n`` channels (targets are the leading input channels)."""
        return Scaler(mean=self.mean[:n], std=self.std[:n])

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)

    def inverse(self, x: np.ndarray) -> np.ndarray:
        return (x * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Scaler:
        mean = np.asarray(d["mean"], dtype=np.float64)
        std = np.asarray(d["std"], dtype=np.float64)
        if mean.shape != std.shape or mean.ndim != 1:
            raise ValueError(f"scaler mean/std must be equal-length lists, got {mean.shape} and {std.shape}")
        return cls(mean=mean, std=std)
