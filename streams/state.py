"""Per-series state: a fixed-size ring buffer of recent rows and the forecasts still awaiting truth."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


class RingBuffer:
    """The last ``capacity`` rows of ``channels`` values; O(1) append, contiguous reads."""

    def __init__(self, capacity: int, channels: int):
        if capacity < 1 or channels < 1:
            raise ValueError(f"capacity and channels must be positive, got {capacity}, {channels}")
        # twice the capacity so the newest `capacity` rows are always one contiguous slice
        self._data = np.zeros((2 * capacity, channels), dtype=np.float32)
        self.capacity = capacity
        self._end = 0
        self.count = 0

    def append(self, row: np.ndarray) -> None:
        if self._end == self._data.shape[0]:
            self._data[: self.capacity] = self._data[self._end - self.capacity : self._end]
            self._end = self.capacity
        self._data[self._end] = row
        self._end += 1
        self.count += 1

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def last(self, n: int) -> np.ndarray:
        """The newest ``n`` rows, oldest first (a view; copy before keeping it)."""
        if n > len(self):
            raise ValueError(f"asked for {n} rows but only {len(self)} are buffered")
        return self._data[self._end - n : self._end]


@dataclass
class PendingForecast:
    """A forecast issued at ``issued_at_ms`` waiting for its horizon to be observed."""

    issued_at_ms: int
    yhat: np.ndarray  # [H, T] corrected
    yhat_base: np.ndarray  # [H, T]
    key: np.ndarray | None  # error-memory key, when a memory is on
    model_version: str


@dataclass
class SeriesState:
    """What the loop keeps per series: recent rows, last timestamp, sampling step and pending forecasts."""

    buffer: RingBuffer
    last_ts_ms: int | None = None
    period_ms: int | None = None
    pending: deque[PendingForecast] = field(default_factory=deque)
