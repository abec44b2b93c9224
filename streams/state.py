"""Per-series state: a fixed-size ring buffer of recent rows, the series' time grid and the forecasts
still awaiting truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adaptcast.forecast.windows import joined
from adaptcast.streams.grid import SeriesGrid
from adaptcast.streams.resample import Bucket


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

    def extend(self, rows: np.ndarray) -> None:
        """Add ``rows`` ``[k, channels]`` (observed, oldest first; ``k`` at most the capacity): the same as
        appending them one by one."""
        k = len(rows)
        if k > self.capacity:
            raise ValueError(f"cannot add {k} rows at once to a buffer of {self.capacity}")
        if self._end + k > self._data.shape[0]:
            keep = min(self._end, self.capacity)
            self._data[:keep] = self._data[self._end - keep : self._end]
            self._filled[:keep] = self._filled[self._end - keep : self._end]
            self._end = keep
        self._data[self._end : self._end + k] = rows
        self._filled[self._end : self._end + k] = False
        self._end += k
        self.count += k

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


# Each series' grid positions live in their own range of this size (2^27 series over a process's
# life, 2^36 points each), and a restart jumps this far: more than any horizon, so no forecast ever
# meets a truth of another series or of an earlier window.
POSITIONS_PER_SERIES = 1 << 36
RESTART_GAP = 1 << 16


class Pending:
    """Where a series is on its grid, as a position in the loop's forecast store (streams.pending).

    A forecast issued at the series' grid point ``pos`` meets the truth at ``pos + lead``; the
    forecasts themselves are kept in the loop's store, keyed by these positions.
    """

    def __init__(self, base: int):
        self.pos = base

    def advance(self, points: int) -> None:
        """The series moved ``points`` grid points on (1 for the next point, more across a filled gap)."""
        self.pos += points

    def clear(self) -> None:
        """No forecast issued so far will be scored (the window restarted)."""
        self.pos += RESTART_GAP


@dataclass
class SeriesState:
    """What the loop keeps per series: recent rows, its time grid and its position for the forecasts
    awaiting truth."""

    buffer: RingBuffer
    grid: SeriesGrid
    pending: Pending
    bucket: Bucket | None = None  # with grid.resample: the records of its latest period, not yet released
    # rows from before its restarts after long gaps, for training only (break rows between runs)
    earlier: np.ndarray | None = None

    def restart(self, keep_rows: bool) -> None:
        """A long gap or a new grid: the window starts afresh and no pending forecast is scored.
        ``keep_rows`` (after a gap) keeps its rows for retraining; rows of an earlier grid go."""
        if not keep_rows:
            self.earlier = None
        elif len(self.buffer):
            self.earlier = self.history().copy()
        self.buffer.clear()
        self.pending.clear()

    def history(self) -> np.ndarray:
        """The rows a retrain may use, oldest first, at most the buffer's capacity: the window's, after
        those from before each restart after a gap (a break row between runs, ``windows.joined``)."""
        rows = self.buffer.last(len(self.buffer))
        if self.earlier is None:
            return rows
        return joined([self.earlier, rows] if len(rows) else [self.earlier])[-self.buffer.capacity :]

    @property
    def held(self) -> int:
        """Rows of :meth:`history` (break rows included), without building it."""
        if self.earlier is None:
            return len(self.buffer)
        return min(
            len(self.earlier) + (len(self.buffer) + 1 if len(self.buffer) else 0), self.buffer.capacity
        )
