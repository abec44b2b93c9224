"""A file's rows on its time grid, by the rules the live loop follows for a feed.

Training and forecasting from a file slide windows over its rows. A row that is missing (absent,
or with a missing value) would otherwise splice the rows either side of it into one window, as if
they were a step apart. Here each row goes through :func:`~adaptcast.streams.grid.place` on a grid
of the file's period: a short gap is filled (``grid.fill``, ``grid.max_fill``), a longer one starts
a new segment, and a row on the previous row's grid point or off the grid is left out, exactly as
a live worker would treat those records. Windows then never cross a segment's border.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from adaptcast.forecast.base import InputError
from adaptcast.forecast.windows import joined
from adaptcast.streams.calendar import advance, describe
from adaptcast.streams.grid import Action, GridRules, fill_rows, infer_period, place
from adaptcast.streams.rate import fit, is_rate
from adaptcast.streams.resample import Resample, can_resample, period_start
from adaptcast.streams.schedule import (
    CLOSED,
    DAY_MS,
    MIN_WEEKS,
    WEEK_MS,
    in_local_time,
    infer_local_schedule,
    infer_schedule,
)

INFER_ROWS = 241  # rows whose intervals decide a file's period when the configuration declares none
SCHEDULE_WEEKS = MIN_WEEKS + 1  # weeks of rows that decide whether it follows a weekly schedule


@dataclass(frozen=True)
class OnGrid:
    """Rows on consecutive grid points, numbered by segment (a segment follows a gap too long to fill)."""

    ts_ms: np.ndarray  # int64 [n]
    values: np.ndarray  # [n, C]
    segment: np.ndarray  # int64 [n], non-decreasing
    period: int  # ms, or negative calendar months (streams/calendar.py)
    filled: int  # grid points made up inside short gaps
    missing_values: int  # rows left out for a missing (NaN) value
    left_out: dict[str, int]  # rows the grid rejected, by reason (duplicate, late, off_grid)

    @property
    def segments(self) -> int:
        return int(self.segment[-1]) + 1 if self.segment.size else 0

    def history(self) -> np.ndarray:
        """The rows as a retrain reads them: the segments joined with a break row between each two
        (``windows.joined``), so the rows before a long gap still train and no window crosses it."""
        if self.segments < 2:
            return self.values
        return joined([self.values[self.segment == k] for k in range(self.segments)])

    def whole(self, starts: np.ndarray, span: int) -> np.ndarray:
        """Which windows of rows ``[s, s + span]`` lie inside one segment."""
        return self.segment[starts] == self.segment[starts + span]

    def summary(self) -> dict[str, object]:
        """What the regridding did, for a command's JSON summary."""
        return {
            "period": describe(self.period),
            "rows": int(self.ts_ms.size),
            "filled": self.filled,
            "segments": self.segments,
            "missing_values": self.missing_values,
            **{f"left_out_{k}": v for k, v in sorted(self.left_out.items())},
        }


def file_period(ts_ms: np.ndarray, rules: GridRules) -> int:
    """The declared period, else the live grid's inference over the file's first intervals, or the
    weekly schedule (business days or hours) its first weeks follow."""
    if rules.period_ms is not None:  # a declared rate still takes the phase the file's first rows have
        return fit(rules.period_ms, np.unique(ts_ms[:INFER_ROWS]), inferred=False)
    intervals = np.diff(ts_ms[:INFER_ROWS])
    intervals = intervals[intervals > 0]
    if intervals.size == 0:
        raise InputError("need at least two distinct timestamps to know the sampling interval")
    period = infer_period(tuple(int(d) for d in intervals), rules.tolerance)
    if is_rate(period):  # its phase: the one that puts the first records on its points
        return fit(period, np.unique(ts_ms[:INFER_ROWS]))
    found = schedule_of(ts_ms, period, rules.tolerance)
    return period if found is None else found


def schedule_of(ts_ms: np.ndarray, period: int, tolerance: float) -> int | None:
    """The weekly schedule (as a period) that the first weeks of these sorted timestamps follow on a
    grid of ``period``, else None; on a time zone's clock if the first year keeps to it there and
    not in UTC (hours that follow daylight saving). A live series infers business days from its
    first records; a schedule within the day (business hours) shows only over weeks of records,
    which a file has."""
    if not 0 < period <= DAY_MS:
        return None
    first = np.unique(
        ts_ms[: max(INFER_ROWS, int(np.searchsorted(ts_ms, ts_ms[0] + SCHEDULE_WEEKS * WEEK_MS)))]
    )
    found = infer_schedule(first, period, tolerance) or infer_local_schedule(first, period, tolerance)
    return None if found is None else in_local_time(np.unique(ts_ms), found, tolerance).period


def resampled(
    ts_ms: np.ndarray, values: np.ndarray, period: int, how: Resample
) -> tuple[np.ndarray, np.ndarray, int]:
    """Each period's rows (sorted, none missing) as one row at the period's start, as the live loop
    aggregates them (``grid.resample``), and how many rows fell outside a schedule's sessions (left
    out, as the loop dead-letters such records)."""
    starts = period_start(ts_ms, period)
    open_ = starts != CLOSED
    closed = int(starts.size - open_.sum())
    starts, values = starts[open_], values[open_]
    if not starts.size:
        return starts, values, closed
    first = np.flatnonzero(np.r_[True, starts[1:] != starts[:-1]])
    if how is Resample.LAST:
        return starts[first], values[np.r_[first[1:] - 1, starts.size - 1]], closed
    sums = np.add.reduceat(values.astype(np.float64), first, axis=0)
    counts = np.diff(np.r_[first, starts.size])[:, None]
    return starts[first], (sums / counts).astype(values.dtype), closed


def on_grid(ts_ms: np.ndarray, values: np.ndarray, rules: GridRules) -> OnGrid:
    """Place each row (sorted by time; NaN where a value is missing) on the grid of :func:`file_period`."""
    period = file_period(ts_ms, rules)
    missing = np.isnan(values).any(axis=1)
    n_missing = int(missing.sum())
    closed = 0
    if rules.resample is not Resample.OFF and can_resample(period) and (~missing).any():
        ts_ms, values, closed = resampled(ts_ms[~missing], values[~missing], period, rules.resample)
        missing = np.zeros(ts_ms.size, dtype=bool)
    left_out: Counter[str] = Counter({Action.OFF_GRID.value: closed} if closed else {})
    if period > 0 and not missing.any() and (np.diff(ts_ms) == period).all():  # already on its grid
        return OnGrid(
            ts_ms, values, np.zeros(ts_ms.size, dtype=np.int64), period, 0, n_missing, dict(left_out)
        )
    rules = replace(rules, period_ms=period)
    grid = rules.new_grid("")
    keep: list[int] = []  # per output row: the input row, or -1 for a filled point
    fills: dict[int, np.ndarray] = {}  # output row of a gap's first filled point → the filled rows
    stamps: list[int] = []
    segment: list[int] = []
    seg = 0
    for i in range(ts_ms.size):
        if missing[i]:
            continue
        placed, grid = place(grid, int(ts_ms[i]), rules)
        action = placed.action
        if action.rejected:
            left_out[action.value] += 1
            continue
        if action.restarts and keep:
            seg += 1
        elif action is Action.FILL:
            # the row before a gap is always a file row: filled points are followed by one
            fills[len(keep)] = fill_rows(values[keep[-1]], values[i], placed.missing, rules.fill)
            steps = np.arange(1, placed.missing + 1)
            stamps.extend(advance(stamps[-1], grid.period_ms, steps).tolist())
            keep.extend([-1] * placed.missing)
            segment.extend([seg] * placed.missing)
        keep.append(i)
        stamps.append(placed.ts_ms)
        segment.append(seg)
    index = np.asarray(keep, dtype=np.int64)
    out = values[np.maximum(index, 0)].copy() if index.size else values[:0].copy()
    for at, rows in fills.items():
        out[at : at + rows.shape[0]] = rows
    return OnGrid(
        ts_ms=np.asarray(stamps, dtype=np.int64),
        values=out,
        segment=np.asarray(segment, dtype=np.int64),
        period=period,
        filled=int((index < 0).sum()),
        missing_values=n_missing,
        left_out=dict(left_out),
    )
