"""Irregular feeds on a grid: each period's records of a series become one record, as a resample.

A sensor that reports on change, or a feed of events, keeps no interval: placed record by record,
most of its records fell off any grid or on a point already taken and went to the dead letters,
and the series restarted whenever the inferred period moved. With ``grid.resample`` (``last`` or
``mean``) and a declared ``grid.frequency``, a series' records in one period become one record at
the period's start: the last value of each channel, or their mean. A fixed period's are
``[k·period, (k+1)·period)`` (whole multiples since the epoch, as pandas' resample labels them); a
calendar period's start on the first of a month (months counted from January 1970: quarters start
in January, April, July, October); a weekly schedule's are its points' steps (``30min Mon-Sat
08:00-17:00``: 08:00, 08:30, …), and a record outside its sessions belongs to none. A period's record
is released when the series' first record of a later period arrives, so a forecast waits up to a
period for its period to close; a period with no record is a gap, filled or restarting as any.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, TypeVar

import numpy as np

from adaptcast.streams.rate import is_rate
from adaptcast.streams.schedule import Schedule, is_scheduled

T = TypeVar("T", int, np.ndarray)


class Resample(Enum):
    """What a period's records of a series become."""

    OFF = "off"  # every record is placed on the grid as it is
    LAST = "last"  # the last record's values
    MEAN = "mean"  # the mean of the records' values


def period_start(ts_ms: T, period: int) -> T | np.ndarray:
    """The start of the period of ``period`` (fixed, calendar months or a weekly schedule) holding
    ``ts_ms`` (an int or an int64 array); :data:`~adaptcast.streams.schedule.CLOSED` where a
    schedule holds none."""
    if period > 0:
        return ts_ms - ts_ms % period
    ts = np.asarray(ts_ms, dtype=np.int64)
    if is_scheduled(period):
        return Schedule.of(period).floor(ts)
    if period < 0:  # -m: m calendar months
        month = ts.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64)
        return (month - month % -period).astype("datetime64[M]").astype("datetime64[ms]").astype(np.int64)
    raise ValueError(f"no period to resample to: {period}")


def can_resample(period: int) -> bool:
    """Whether records can be aggregated per ``period``: any declared period but a rate (whose
    points are not whole milliseconds)."""
    return period != 0 and not is_rate(period)


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
