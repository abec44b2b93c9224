"""Per-series state: a fixed-size ring buffer of recent rows, the series' time grid and the forecasts
still awaiting truth."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from adaptcast.streams.grid import SeriesGrid


class RingBuffer:
    """The last ``capacity`` rows of ``channels`` values, each marked real or filled; O(1) append."""

    def __init__(self, capacity: int, channels: int):
        if capacity < 1 or channels < 1:
            raise ValueError(f"capacity and channels must be positive, got {capacity}, {channels}")
        # twice the capacity so the newest `capacity` rows are always one contiguous slice
        self._data = np.zeros((2 * capacity, channels), dtype=np.float32)
        self._filled = np.zeros(2 * capacity, dtype=bool)
        self.capacity = capacity
        self._end = 0
        self.count = 0

    def append(self, row: np.ndarray, filled: bool = False) -> None:
        """Add the newest row; ``filled`` marks one made up for a missing grid point, not observed."""
        if self._end == self._data.shape[0]:
            self._data[: self.capacity] = self._data[self._end - self.capacity : self._end]
            self._filled[: self.capacity] = self._filled[self._end - self.capacity : self._end]
            self._end = self.capacity
        self._data[self._end] = row
        self._filled[self._end] = filled
        self._end += 1
        self.count += 1

    def clear(self) -> None:
        """Forget every row (the series' window starts afresh)."""
        self._end = self.count = 0

    def __len__(self) -> int:
        return min(self.count, self.capacity)

    def last(self, n: int) -> np.ndarray:
        """The newest ``n`` rows, oldest first (a view; copy before keeping it)."""
        return self._data[self._newest(n)]

    def filled(self, n: int) -> np.ndarray:
        """Which of the newest ``n`` rows were filled rather than observed, oldest first (a view)."""
        return self._filled[self._newest(n)]

    def _newest(self, n: int) -> slice:
        if n > len(self):
            raise ValueError(f"asked for {n} rows but only {len(self)} are buffered")
        return slice(self._end - n, self._end)


@dataclass
class PendingForecast:
    """A forecast issued at ``issued_at_ms`` waiting for its horizon to be observed."""

    issued_at_ms: int
    yhat: np.ndarray  # [H, T] corrected
    yhat_base: np.ndarray  # [H, T]
    key: np.ndarray | None  # error-memory key, when a memory is on
    model_version: str
    level: np.ndarray | None = None  # [T] level offset added on top of the memory's correction
    half: np.ndarray | None = None  # [levels, H, T] interval half-widths, when intervals are on


@dataclass
class SeriesState:
    """What the loop keeps per series: recent rows, its time grid and the forecasts awaiting truth."""

    buffer: RingBuffer
    grid: SeriesGrid
    pending: deque[PendingForecast] = field(default_factory=deque)

    def restart(self) -> None:
        """A long gap or a new grid: the window starts afresh and no pending forecast is scored."""
        self.buffer.clear()
        self.pending.clear()
