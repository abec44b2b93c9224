"""Each series' time grid: where a record's timestamp falls on it, and what the loop does about it.

A grid is a period and a phase: the points ``last_ms + k·period``, or ``k`` calendar months (open
days) on from ``last_ms`` for a monthly (quarterly, yearly; business-day) feed
(:mod:`~adaptcast.streams.calendar`), or a rate's points for a period that is not a whole number of
milliseconds (a 64 Hz sensor, :mod:`~adaptcast.streams.rate`). The period is declared in the
configuration or inferred from a series' first records (the most common interval between them;
calendar months when the intervals vary as months do; business days when a daily feed skips the
same weekdays every week; a whole number of hertz when they are two neighbouring milliseconds),
never from the last two records; the phase is that of the record that started the grid. A record
within ``tolerance·period`` of a grid point is moved onto it. :func:`place` is pure: given a
series' grid and a new timestamp it returns a :class:`Placement` and the grid after that record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from fractions import Fraction
from statistics import median
from typing import Any

import numpy as np

from adaptcast.streams.calendar import (
    DAY_MS,
    calendar_period,
    describe,
    months,
    nearest_step,
    shift,
    step_ms,
)
from adaptcast.streams.rate import exact_period, fit, is_rate, through, whole_hz
from adaptcast.streams.records import DUPLICATE, LATE, OFF_GRID
from adaptcast.streams.resample import Resample, can_resample
from adaptcast.streams.schedule import (
    UNITS,
    Schedule,
    WeekSlots,
    business_days,
    infer_schedule,
    is_scheduled,
    moved_by_clock,
    parse_schedule,
)
from adaptcast.streams.zones import UTC

UNITS_MS = dict(UNITS)
ROUND_UNITS_MS = sorted(UNITS_MS.values(), reverse=True)
ROUND_SLACK = 0.01  # an inferred period within 1 % of a whole day, hour, minute or second is taken as that
# A rate is inferred from intervals of two neighbouring whole milliseconds at a whole number of hertz;
# a faster or jittered feed can still move from grid to grid below this period, and is then told to
# declare its rate or aggregate to a declared period. How the advice and the log say it:
FAST_MS = 1000
TOO_FAST = (
    "sampled faster than its millisecond stamps hold "
    "(hundreds of hertz, or a rate that is not a whole number of hertz)"
)


def own_period(period: int | None) -> str | None:
    """A series' period as ``grid.frequency`` takes it (``7d``), for advice to aggregate its records
    to it: a fixed period a millisecond stamp holds (no rate, no schedule), else None."""
    if period is None or period < FAST_MS or is_rate(period) or is_scheduled(period):
        return None
    return describe(period).replace(" ", "")


class Action(Enum):
    """What a record does to its series; the rejections' values are their dead-letter reasons."""

    START = "start"  # the first record of a series
    APPEND = "append"  # on the grid point after the latest record
    FILL = "fill"  # after ``missing`` empty grid points, which are filled for the model's input
    RESET = "reset"  # after more than ``max_fill`` empty grid points: the window starts afresh
    REGRID = "regrid"  # records stopped falling on the grid: the series moved onto a new one, afresh
    DUPLICATE = DUPLICATE  # on the latest record's grid point (the first record wins)
    LATE = LATE  # before the latest record
    OFF_GRID = OFF_GRID  # further than the tolerance from every grid point

    @property
    def rejected(self) -> bool:
        """The record goes to the dead letters, with this value as its reason."""
        return self in (Action.DUPLICATE, Action.LATE, Action.OFF_GRID)

    @property
    def restarts(self) -> bool:
        """The series' window and its forecasts awaiting truth are dropped before this record."""
        return self in (Action.RESET, Action.REGRID)


class Fill(Enum):
    """How the rows of missing grid points are made up for the model's input."""

    LINEAR = "linear"  # interpolated between the last row before the gap and the record after it
    LAST = "last"  # the last row before the gap, repeated


@dataclass(frozen=True)
class GridRules:
    """The grid settings of one configuration; ``period_ms`` (or a series' own) unset means inferred."""

    tolerance: float = 0.1
    max_fill: int = 12
    fill: Fill = Fill.LINEAR
    infer_records: int = 24
    change_records: int = 6
    period_ms: int | None = None
    series_period_ms: Mapping[str, int] = field(default_factory=dict)
    forget_after: int | None = None  # periods of silence before a series is forgotten (None: 4 model spans)
    resample: Resample = Resample.OFF  # irregular feeds: each period's records become one

    def __post_init__(self) -> None:
        if self.resample is not Resample.OFF and (
            self.period_ms is None
            or not all(can_resample(p) for p in (self.period_ms, *self.series_period_ms.values()))
        ):
            raise ValueError(
                f"grid.resample={self.resample.value} needs grid.frequency (and any grid.series_frequency) "
                "to be a declared period of whole milliseconds (100ms, 1min, 1h), calendar months (1mo) "
                "or a weekly schedule ('30min Mon-Sat 08:00-17:00'), not a rate in hertz: the periods "
                "whose records it aggregates"
            )

    def period_of(self, series: str) -> int | None:
        """The period declared for ``series`` (None: inferred)."""
        return self.series_period_ms.get(series, self.period_ms)

    def new_grid(self, series: str) -> SeriesGrid:
        """The grid of a series not seen yet: its declared period, if any, fixed from the start."""
        period = self.period_of(series)
        return SeriesGrid(period_ms=period, fixed=period is not None, declared=period is not None)


@dataclass(frozen=True, slots=True)
class SeriesGrid:
    """One series' grid and what is needed to infer it or notice that it changed."""

    period_ms: int | None = None  # unknown until a second record when inferred
    last_ms: int | None = None  # grid point of the latest accepted record
    seen_ms: int | None = None  # timestamp of the latest in-order record, on the grid or off it
    fixed: bool = False  # declared, or inferred from ``infer_records`` records
    intervals: tuple[int, ...] = ()  # while inferring: every interval seen so far
    candidate_ms: int | None = None  # the interval a run of records that do not fit the grid agree on
    agreeing: int = 0  # how many records in a row agree on it
    declared: bool = False  # the configuration's period: records never show it another schedule
    week: WeekSlots | None = None  # since its first restart at what may be a closure: the slots held

    def to_dict(self) -> dict[str, Any]:
        """Numbers, lists and text only (snapshots are pickle-free); a schedule on a time zone's clock
        as ``grid.frequency`` writes it, since its period holds a number only this process knows."""
        period: int | str | None = self.period_ms
        if period is not None and is_scheduled(period) and Schedule.of(period).zone != UTC:
            period = Schedule.of(period).text()
        return {**asdict(self), "period_ms": period, "intervals": list(self.intervals)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SeriesGrid:
        period = d.get("period_ms")
        return cls(
            **{
                **d,
                "period_ms": parse_period(period) if isinstance(period, str) else period,
                "intervals": tuple(int(v) for v in d.get("intervals", ())),
                "week": None if d.get("week") is None else WeekSlots(**d["week"]),
            }
        )


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one record goes: ``ts_ms`` is its grid point (its own timestamp when rejected)."""

    action: Action
    ts_ms: int
    missing: int = 0  # empty grid points between the latest record and this one (FILL, RESET)
    inferred: bool = False  # this record completed the inference of the period


def parse_period(text: str) -> int:
    """``"1h"``, ``"15min"``, ``"30s"``, ``"1d"``, ``"250ms"`` → milliseconds; ``"64Hz"``,
    ``"15.625ms"`` → a rate (:mod:`~adaptcast.streams.rate`); ``"1mo"``, ``"3mo"``,
    ``"1y"`` → calendar months; a step then open days and hours, ``"1h Mon-Fri 09:00-18:00"``,
    ``"1d Mon-Fri"`` (or ``"1bd"``), ``"1h Mon-Fri 09:00-17:00 Europe/Berlin"`` → a weekly
    schedule (negative periods, see
    :mod:`~adaptcast.streams.calendar` and :mod:`~adaptcast.streams.schedule`)."""
    if re.fullmatch(r"\s*1\s*bd\s*", text):
        return business_days()
    sched = re.fullmatch(r"\s*(\d+(?:\.\d+)?\s*(?:ms|s|min|h|d))\s+([A-Za-z].*)", text)
    if sched is not None:
        return parse_schedule(parse_period(sched.group(1)), sched.group(2))
    hz = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*Hz\s*", text, re.IGNORECASE)
    if hz is not None and 0 < Fraction(hz.group(1)) <= 1000:
        return exact_period(1000 / Fraction(hz.group(1)))
    cal = re.fullmatch(r"\s*(\d+)\s*(mo|y)\s*", text)
    if cal is not None and int(cal.group(1)) > 0:
        return months(int(cal.group(1)) * (12 if cal.group(2) == "y" else 1))
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)\s*", text)
    if m is None or float(m.group(1)) * UNITS_MS[m.group(2)] < 1:
        raise ValueError(
            f"period {text!r} is not a positive number with a unit (ms, s, min, h, d; or whole mo, y), "
            "optionally followed by open days, hours and a time zone, or a rate under 1000Hz, e.g. "
            "1h, 1mo, 64Hz, 1d Mon-Fri, 1h Mon-Fri 09:00-18:00 or 1h Mon-Fri 09:00-17:00 Europe/Berlin"
        )
    return exact_period(Fraction(m.group(1)) * UNITS_MS[m.group(2)])


def round_period(ms: float) -> int:
    """The whole day, hour, minute, second or millisecond within 1 % of ``ms``, coarsest first."""
    for unit in ROUND_UNITS_MS:
        whole = round(ms / unit) * unit
        if whole > 0 and abs(whole - ms) <= ROUND_SLACK * ms:
            return whole
    return max(1, round(ms))


def infer_period(intervals: tuple[int, ...], tolerance: float, end_ms: int | None = None) -> int:
    """The most common interval, or the shortest whole fraction of it that is at least half as common
    (records missing at random make twice the period common too). Intervals within the tolerance of
    each other count as one; between equally common ones the shorter wins. Whole days that vary as
    calendar months do give that many months; intervals of two neighbouring whole milliseconds that
    average to a whole number of hertz give that rate. With ``end_ms``, the latest record's
    timestamp, a period whose records leave the same slots of the week empty for three weeks gives
    that weekly schedule (business days, business hours), and a rate takes the phase that puts the
    records on its points."""

    def near(d: int) -> list[int]:  # a millisecond apart is as near as whole-millisecond stamps say
        return [e for e in intervals if abs(e - d) <= max(tolerance * d, 1)]

    mode = max(intervals, key=lambda d: (len(near(d)), -d))
    support = len(near(mode))
    best = min(
        d
        for d in intervals
        if 2 * len(near(d)) >= support and abs(mode - round(mode / d) * d) <= tolerance * d
    )
    cluster = near(best)
    period = calendar_period(cluster, tolerance) or whole_hz(cluster) or round_period(median(cluster))
    if end_ms is None or not (0 < period <= DAY_MS or is_rate(period)):
        return period
    stamps = end_ms - np.concatenate(([0], np.cumsum(intervals[::-1])))[::-1]
    if is_rate(period):
        return fit(period, stamps)
    found = infer_schedule(stamps, period, tolerance)
    return period if found is None else found.period


def steady(grid: SeriesGrid, rules: GridRules) -> bool:
    """Whether a record on ``grid``'s next point would just be appended: the common case, which
    :func:`place` decides without the general rules (they give the same answer)."""
    return (
        grid.fixed
        and grid.candidate_ms is None
        and grid.last_ms is not None
        and grid.seen_ms == grid.last_ms
        and grid.period_ms is not None
        and rules.tolerance < 1
    )


def place(grid: SeriesGrid, ts_ms: int, rules: GridRules) -> tuple[Placement, SeriesGrid]:
    """Where a record stamped ``ts_ms`` goes on ``grid``, and the grid after it (pure)."""
    if steady(grid, rules) and (
        ts_ms - grid.last_ms == grid.period_ms  # type: ignore[operator]
        or (is_rate(grid.period_ms) and ts_ms == shift(grid.last_ms, grid.period_ms, 1))  # type: ignore[arg-type]
    ):
        return Placement(Action.APPEND, ts_ms), SeriesGrid(
            grid.period_ms, ts_ms, ts_ms, True, (), None, 0, grid.declared, grid.week
        )
    if grid.last_ms is None or grid.seen_ms is None:
        start = _aligned(ts_ms, grid.period_ms, rules) if grid.fixed else ts_ms
        if start is None:
            return Placement(Action.OFF_GRID, ts_ms), grid
        period = None if grid.period_ms is None else through(grid.period_ms, start)
        return Placement(Action.START, start), replace(grid, period_ms=period, last_ms=start, seen_ms=ts_ms)
    # a provisional period may be far too long: its tolerance would swallow the next grid point
    slack = rules.tolerance * step_ms(grid.period_ms) if grid.fixed and grid.period_ms else 0
    if ts_ms <= grid.last_ms + slack:
        action = Action.DUPLICATE if ts_ms >= grid.last_ms - slack else Action.LATE
        return Placement(action, ts_ms), grid
    if ts_ms <= grid.seen_ms:
        return Placement(Action.LATE, ts_ms), grid
    interval = ts_ms - grid.seen_ms
    if not grid.fixed:
        return _infer(grid, ts_ms, interval, rules)
    return _follow(grid, ts_ms, interval, rules)


ALIGN_MAX_MS = 3_600_000  # declared periods up to an hour start on whole multiples of themselves


def _aligned(ts_ms: int, period_ms: int | None, rules: GridRules) -> int | None:
    """Where a declared grid starts: on a whole multiple of its period since the epoch (whole minutes,
    quarter hours, hours) when the first record is within the tolerance of one, so a jittered first
    record does not set the phase of every later point; periods over an hour keep their first
    record's phase (a daily feed at local midnight stays there). A schedule starts on its own point
    nearest the record; None when the schedule is closed there (the record is off the grid)."""
    if period_ms is not None and is_scheduled(period_ms):
        return Schedule.of(period_ms).first_point(ts_ms, rules.tolerance)
    if period_ms is None or not 0 < period_ms <= ALIGN_MAX_MS or DAY_MS % period_ms:
        return ts_ms
    point = round(ts_ms / period_ms) * period_ms
    return point if abs(ts_ms - point) <= rules.tolerance * period_ms else ts_ms


def _infer(grid: SeriesGrid, ts_ms: int, interval: int, rules: GridRules) -> tuple[Placement, SeriesGrid]:
    """While inferring, the period is the most common interval so far. When that changes, or a record
    is off the provisional grid, the series moves onto a grid of that period through the record."""
    assert grid.last_ms is not None
    intervals = (*grid.intervals, interval)
    period = infer_period(intervals, rules.tolerance, ts_ms)
    placed = _snap(grid.last_ms, period, ts_ms, rules)
    if placed.action is Action.DUPLICATE:
        return placed, grid
    done = len(intervals) + 1 >= rules.infer_records
    kept = () if done else intervals
    # a rate whose estimate moved is no new grid if the series' latest point is one of its points too
    kept_on = grid.period_ms is not None and is_rate(period) and through(period, grid.last_ms) == period
    if grid.period_ms is None or (
        (period == grid.period_ms or kept_on) and placed.action is not Action.OFF_GRID
    ):
        return replace(placed, inferred=done), SeriesGrid(period, placed.ts_ms, ts_ms, done, kept)
    return Placement(Action.REGRID, ts_ms, inferred=done), SeriesGrid(period, ts_ms, ts_ms, done, kept)


def _follow(grid: SeriesGrid, ts_ms: int, interval: int, rules: GridRules) -> tuple[Placement, SeriesGrid]:
    """A fixed grid changes only when records stop falling on it: a record off the grid starts a run,
    records whose intervals agree with it (on the grid or off) continue it, and at ``change_records``
    the series moves onto a grid of that interval through the last of them. A slower feed on the same
    grid (1 h → 2 h) is no change: the points between its records are gaps. A run at the grid's own
    period (a phase shift) counts only records off the grid."""
    assert grid.last_ms is not None and grid.period_ms is not None
    placed = _snap(grid.last_ms, grid.period_ms, ts_ms, rules)
    if placed.action is Action.OFF_GRID and not grid.declared and is_scheduled(grid.period_ms):
        local = moved_by_clock(Schedule.of(grid.period_ms), grid.last_ms, ts_ms, rules.tolerance)
        if local is not None:  # its hours are a local clock's: it goes on on them, window kept
            moved = _snap(grid.last_ms, local.period, ts_ms, rules)
            if not moved.action.rejected:
                return moved, SeriesGrid(local.period, moved.ts_ms, ts_ms, True)
    if placed.action is Action.OFF_GRID and (resumed := _resumed(grid, ts_ms, rules)) is not None:
        placed = resumed
    cand = grid.candidate_ms
    # a run at the grid's own period is a phase shift only while its records stay off the grid: a
    # jittered feed's intervals agree by chance, and on-grid records of it are no evidence of a shift
    own = cand is not None and abs(cand - step_ms(grid.period_ms)) <= rules.tolerance * cand
    if (
        cand is not None
        and abs(interval - cand) <= rules.tolerance * cand
        and (placed.action is Action.OFF_GRID or not own)
    ):
        cand, agreeing = cand, grid.agreeing + 1
    elif placed.action is Action.OFF_GRID:
        cand, agreeing = interval, 1
    else:
        cand, agreeing = None, 0
    if cand is not None and agreeing >= rules.change_records:
        if is_rate(grid.period_ms) and not grid.declared:
            # an inferred rate the records left was a guess from a few of them (a whole-millisecond
            # feed that shifted once while inferring looks like one): it is inferred again
            return Placement(Action.REGRID, ts_ms), SeriesGrid(round_period(cand), ts_ms, ts_ms)
        same = is_rate(grid.period_ms) and abs(cand - step_ms(grid.period_ms)) <= rules.tolerance * cand
        period = through(grid.period_ms, ts_ms) if same else round_period(cand)  # its phase moved
        moved = SeriesGrid(period, ts_ms, ts_ms, fixed=True, declared=grid.declared)
        return Placement(Action.REGRID, ts_ms), moved
    week = _gather(grid, placed)
    if placed.action is Action.RESET and week is not None and (found := week.schedule(rules.tolerance)):
        point = found.first_point(placed.ts_ms, rules.tolerance)
        if point is not None:  # the closures were a schedule's: the series moves onto it
            return Placement(Action.REGRID, point), SeriesGrid(found.period, point, ts_ms, True)
    last = grid.last_ms if placed.action is Action.OFF_GRID else placed.ts_ms
    period = through(grid.period_ms, last)  # a rate restarted on its record's phase takes it
    return placed, SeriesGrid(period, last, ts_ms, True, (), cand, agreeing, grid.declared, week)


def _resumed(grid: SeriesGrid, ts_ms: int, rules: GridRules) -> Placement | None:
    """A record off the grid after a gap too long to fill restarts the window anyway, so it restarts
    the grid on its own phase, as a series' first record does (a sensor or host back on its own
    clock), rather than waiting ``change_records`` records off the grid. None for calendar periods
    and schedules, whose points are fixed, and after a shorter gap."""
    period, last = grid.period_ms, grid.last_ms
    assert period is not None and last is not None
    if (
        period <= 0
        or is_scheduled(period)
        or (missing := (ts_ms - last) // step_ms(period)) <= rules.max_fill
    ):
        return None
    start = _aligned(ts_ms, period, rules) if grid.declared else ts_ms
    return Placement(Action.RESET, ts_ms if start is None else start, missing)


# a gap shorter than this on a grid within the day may be a closure: a night, a weekend, a holiday
CLOSURE_MAX_MS = 4 * DAY_MS


def _gather(grid: SeriesGrid, placed: Placement) -> WeekSlots | None:
    """The slots of the week an undeclared grid within the day has held since its first restart after
    a gap that may be a closure (what shows its hours once it spans three weeks); each restart
    counts the run of points before it."""
    period = grid.period_ms
    if placed.action is not Action.RESET or grid.declared or period is None or grid.last_ms is None:
        return grid.week
    if grid.week is not None:
        return grid.week.close_run(grid.last_ms, placed.ts_ms)
    closure = placed.missing * period < CLOSURE_MAX_MS
    if closure and 0 < period < DAY_MS and DAY_MS % period == 0 and period % 1000 == 0:
        return WeekSlots.start(period, placed.ts_ms)
    return None


def _snap(last_ms: int, period_ms: int, ts_ms: int, rules: GridRules) -> Placement:
    """The nearest grid point after the latest record, or off the grid."""
    steps = nearest_step(last_ms, ts_ms, period_ms)
    point = shift(last_ms, period_ms, steps)
    slack = rules.tolerance * step_ms(period_ms)
    if abs(ts_ms - point) > (max(slack, 1) if is_rate(period_ms) else slack):  # stamps are whole ms
        return Placement(Action.OFF_GRID, ts_ms)
    if steps == 0:  # on the latest record's point: only while the period is provisional
        return Placement(Action.DUPLICATE, ts_ms)
    missing = steps - 1
    action = Action.APPEND if missing == 0 else Action.FILL if missing <= rules.max_fill else Action.RESET
    return Placement(action, point, missing)


def fill_rows(before: np.ndarray, after: np.ndarray, missing: int, how: Fill) -> np.ndarray:
    """Rows for ``missing`` empty grid points between ``before`` and ``after`` (``[missing, channels]``)."""
    if how is Fill.LAST:
        return np.repeat(before[None, :], missing, axis=0)
    w = (np.arange(1, missing + 1, dtype=np.float64) / (missing + 1))[:, None]
    return ((1 - w) * before + w * after).astype(before.dtype)
