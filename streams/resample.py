"""Irregular feeds on a grid: each period's records of a series become one record, as a resample.

A sensor that reports on change, or a feed of events, keeps no interval: placed record by record,
most of its records fell off any grid or on a point already taken and went to the dead letters,
and the series restarted whenever the inferred period moved. With ``grid.resample`` (``last`` or
``mean``) and a declared fixed ``grid.frequency``, a series' records in one period
``[k·period, (k+1)·period)`` (whole multiples since the epoch, as pandas' resample labels them)
become one record at ``k·period``: the last value of each channel, or their mean. A period's record
is released when the series' first record of a later period arrives, so a forecast waits up to a
period for its period to close; a period with no record is a gap, filled or restarting as any.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T", int, np.ndarray)


class Resample(Enum):
    """What a period's records of a series become."""

    OFF = "off"  # every record is placed on the grid as it is
    LAST = "last"  # the last record's values
    MEAN = "mean"  # the mean of the records' values


def period_start(ts_ms: T, period_ms: int) -> T:
    """The start of the period holding ``ts_ms`` (an int or an int64 array): a whole multiple of
    ``period_ms`` since the epoch."""
    return ts_ms - ts_ms % period_ms


@dataclass
class Bucket:
    """One period's records of a series, not yet released: their sum, count and last row."""

    start_ms: int
    total: np.ndarray  # float64 [channels]
    count: int
    last: np.ndarray  # float32 [channels]

    @classmethod
    def of(cls, start_ms: int, row: np.ndarray) -> Bucket:
        return cls(start_ms, row.astype(np.float64), 1, row)

    def add(self, row: np.ndarray) -> None:
        self.total += row
        self.count += 1
        self.last = row

    def value(self, how: Resample) -> np.ndarray:
        """The period's row: its last, or its mean (float32, as rows are held)."""
        return self.last if how is Resample.LAST else (self.total / self.count).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Numbers and lists only (snapshots are pickle-free)."""
        return {
            "start_ms": self.start_ms,
            "total": self.total.tolist(),
            "count": self.count,
            "last": self.last.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], columns: list[int]) -> Bucket:
        """A bucket from :meth:`to_dict`, its channels taken in ``columns`` order (a snapshot's own
        order may differ from the loop's)."""
        total = np.asarray(d["total"], dtype=np.float64)[columns]
        return cls(
            int(d["start_ms"]), total, int(d["count"]), np.asarray(d["last"], dtype=np.float32)[columns]
        )
