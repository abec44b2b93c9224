"""Grids that follow a weekly schedule: business days, business hours, a market's trading week.

A feed that closes every night or every weekend is not a regular grid with a long gap at each
closure: filling those gaps makes up rows, and a gap too long to fill restarts the series, so a
business-hours feed never held a full window and forecast nothing. A schedule is a step and the
sessions of a week: on each open weekday a session starts at one time of day and holds ``points``
points a step apart (``points·step`` at most a day, so sessions never overlap; a 24-hour session
from 22:00, Sunday to Thursday, is the currency market's week). A daily schedule (step one day,
one point) is business days; its points keep their own time of day. A schedule's hours are UTC
unless it names a time zone (``1h Mon-Fri 09:00-17:00 Europe/Berlin``): its points then keep their
wall-clock time through daylight-saving changes (:mod:`~adaptcast.streams.zones`), and its
arithmetic runs on that clock.

A schedule is carried as a grid period, an ``int`` at or below ``-SCHEDULED`` (calendar months
are the negative periods above it, :mod:`~adaptcast.streams.calendar`), so grids, snapshots and
events hold it as they hold any period. Everything here is pure arithmetic, vectorised over
numpy arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import cache, lru_cache

import numpy as np

from adaptcast.streams.zones import (
    UTC,
    from_wall,
    to_wall,
    utc_offsets,
    zone_id,
    zone_name,
    zones_that_change,
)

DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
CLOSED = np.iinfo(np.int64).min  # no point of the schedule: an instant outside its sessions
SCHEDULED = 1 << 20  # scheduled periods are -(SCHEDULED + fields); calendar months stay above it
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MON_FRI = 0b0011111
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday
MIN_WEEKS = 3  # a slot of the week never seen in this many weeks of a feed is closed
MIN_COVERAGE = 0.85  # and the open slots of those weeks must hold records, but for holidays and gaps
_FIELD = 17  # bits per field after the 7 of the weekmask: points, start and step (seconds), each < 2**17
_ZONE = 7 + 3 * _FIELD  # then the time zone's number (streams/zones.py), under 2**5
ZONE_MARGIN = 0.02  # a time zone must fill this much more of its schedule than UTC does to be inferred
UNITS = (("d", DAY_MS), ("h", 3_600_000), ("min", 60_000), ("s", 1_000), ("ms", 1))  # largest first


def in_units(ms: int) -> tuple[int, str]:
    """``ms`` as a whole number of the largest unit that divides it: ``(90, "min")`` for 5,400,000."""
    unit, size = next((u, size) for u, size in UNITS if ms % size == 0)
    return ms // size, unit


def is_scheduled(period: int) -> bool:
    """Whether ``period`` is a weekly schedule."""
    return period <= -SCHEDULED


@dataclass(frozen=True)
class Schedule:
    """A step and a week of sessions; :attr:`period` is the grid period that carries it."""

    step_ms: int  # whole seconds, at most a day
    weekmask: int  # bit i set: a session starts on weekday i (0 Monday … 6 Sunday)
    start_ms: int = 0  # time of day the sessions start, whole seconds (a daily step ignores it)
    points: int = 1  # points per session
    zone: str = UTC  # the clock the sessions' hours are read on

    def __post_init__(self) -> None:
        zone_id(self.zone)  # an unknown zone fails here, with what a zone looks like
        if not (0 < self.step_ms <= DAY_MS and self.step_ms % 1000 == 0):
            raise ValueError(f"a schedule's step is whole seconds up to a day, got {self.step_ms} ms")
        if not (0 <= self.start_ms < DAY_MS and self.start_ms % 1000 == 0):
            raise ValueError(f"a session starts at a whole second of the day, got {self.start_ms} ms")
        if not 1 <= self.points * self.step_ms <= DAY_MS:
            raise ValueError(f"a session holds 1 to a day's worth of points, got {self.points}")
        whole_days = self.points * self.step_ms == DAY_MS
        if not 0 < self.weekmask <= 0b1111111 or (whole_days and self.weekmask == 0b1111111):
            raise ValueError("a schedule opens on some days and is closed some of the week")

    @property
    def daily(self) -> bool:
        """One point a day: business days, each point at its own time of day."""
        return self.step_ms == DAY_MS

    @property
    def period(self) -> int:
        fields = (self.points, self.start_ms // 1000 if not self.daily else 0, self.step_ms // 1000)
        packed = self.weekmask
        for i, value in enumerate(fields):
            packed |= value << (7 + _FIELD * i)
        return -(SCHEDULED + packed + (zone_id(self.zone) << _ZONE))

    @classmethod
    def of(cls, period: int) -> Schedule:
        """The schedule a period carries."""
        return _decode(period)

    @property
    def nominal_ms(self) -> int:
        """The average distance between points over a week."""
        return round(WEEK_MS / (self.weekmask.bit_count() * self.points))

    def text(self) -> str:
        """What ``grid.frequency`` takes for it: ``1d Mon-Fri``, ``1h Mon-Fri 09:00-18:00``."""
        step, zone = _step_text(self.step_ms), "" if self.zone == UTC else f" {self.zone}"
        if self.daily or (self.start_ms == 0 and self.points * self.step_ms == DAY_MS):
            return f"{step} {_days_text(self.weekmask)}{zone}"
        end = (self.start_ms + self.points * self.step_ms) % DAY_MS
        return f"{step} {_days_text(self.weekmask)} {_clock(self.start_ms)}-{_clock(end)}{zone}"

    def _start(self, ts_ms: np.ndarray) -> np.ndarray:
        return ts_ms % DAY_MS if self.daily else np.full_like(ts_ms, self.start_ms)

    def _mask(self) -> list[bool]:
        return [bool(self.weekmask >> i & 1) for i in range(7)]

    def advance(self, ts_ms: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Grid points ``ts_ms`` moved by ``k`` points of the schedule (int64 arrays of one shape)."""
        return from_wall(self.zone, self._advance(to_wall(self.zone, ts_ms), k))

    def first_point(self, ts_ms: int, tolerance: float) -> int | None:
        """The point of the schedule within ``tolerance`` of a step from ``ts_ms``, else None (a time
        the schedule is closed): where a declared schedule starts a series."""
        point = self._first_point(int(to_wall(self.zone, np.int64(ts_ms))), tolerance)
        return None if point is None else int(from_wall(self.zone, np.int64(point)))

    def nearest(self, start_ms: int, ts_ms: int) -> int:
        """The whole number of points after the grid point ``start_ms`` whose point is nearest ``ts_ms``."""
        wall = to_wall(self.zone, np.array([start_ms, ts_ms], dtype=np.int64))
        return self._nearest(int(wall[0]), int(wall[1]))

    def floor(self, ts_ms: np.ndarray) -> np.ndarray:
        """The point whose step holds each instant (``grid.resample``'s period: on a daily schedule
        the day from midnight), or :data:`CLOSED` for an instant outside every session."""
        wall = to_wall(self.zone, ts_ms)
        start = 0 if self.daily else self.start_ms
        day, offset = np.divmod(wall - start, DAY_MS)
        index = offset // self.step_ms
        open_ = (index < self.points) & np.is_busday(day.astype("datetime64[D]"), weekmask=self._mask())
        points = from_wall(self.zone, day * DAY_MS + start + index * self.step_ms)
        return np.where(open_, points, CLOSED)

    # the same on the schedule's own clock (ms since 1970 on it): UTC, or the zone's wall-clock time

    def _advance(self, ts_ms: np.ndarray, k: np.ndarray) -> np.ndarray:
        start = self._start(ts_ms)
        day, offset = np.divmod(ts_ms - start, DAY_MS)
        sessions, point = np.divmod(np.rint(offset / self.step_ms).astype(np.int64) + k, self.points)
        moved = np.busday_offset(day.astype("datetime64[D]"), sessions, roll="forward", weekmask=self._mask())
        return moved.astype(np.int64) * DAY_MS + start + point * self.step_ms

    def _first_point(self, ts_ms: int, tolerance: float) -> int | None:
        start = int(self._start(np.int64(ts_ms)))
        week_before = np.datetime64((ts_ms - start) // DAY_MS - 7, "D")
        anchor = np.busday_offset(week_before, 0, roll="forward", weekmask=self._mask())
        anchor_ms = int(anchor.astype(np.int64)) * DAY_MS + start
        point = int(self._advance(np.array([anchor_ms]), np.array([self._nearest(anchor_ms, ts_ms)]))[0])
        return point if abs(point - ts_ms) <= tolerance * self.step_ms else None

    def _nearest(self, start_ms: int, ts_ms: int) -> int:
        start = int(self._start(np.int64(start_ms)))
        day0, offset0 = divmod(start_ms - start, DAY_MS)
        half = DAY_MS // 2 if self.daily else 0  # a daily point is nearest to its own day
        day, offset = divmod(ts_ms - start + half, DAY_MS)
        dates = np.array([day0, day], dtype="datetime64[D]")
        sessions = int(np.busday_count(dates[0], dates[1], weekmask=self._mask()))
        if np.is_busday(dates[1], weekmask=self._mask()):
            index = sessions * self.points + min(
                max(round((offset - half) / self.step_ms), 0), self.points - 1
            )
        else:  # a closed day: the last point before it (the next one is tried too)
            index = sessions * self.points - 1
        k = index - round(offset0 / self.step_ms)
        tries = np.array([k - 1, k, k + 1], dtype=np.int64)
        at = self._advance(np.full(3, start_ms, dtype=np.int64), tries)
        return int(tries[np.argmin(np.abs(at - ts_ms))])


@cache
def _decode(period: int) -> Schedule:
    packed = -period - SCHEDULED
    points, start_s, step_s = ((packed >> (7 + _FIELD * i)) & ((1 << _FIELD) - 1) for i in range(3))
    return Schedule(step_s * 1000, packed & 0b1111111, start_s * 1000, points, zone_name(packed >> _ZONE))


def business_days(weekmask: int = MON_FRI) -> int:
    """The period of one point per open day (``weekmask`` bit 0 Monday)."""
    return Schedule(DAY_MS, weekmask).period


def infer_schedule(stamps_ms: np.ndarray, step_ms: int, tolerance: float) -> Schedule | None:
    """The schedule of a feed whose records, ``step_ms`` apart within its sessions, have left the
    same slots of the week empty for ``MIN_WEEKS`` weeks, else None.

    The open slots must form one session per open day, every session starting at one time of day
    and of one length, or whole days (then sessions of a day run back to back, as a market open
    from Sunday 22:00 to Friday 22:00). A feed missing records at random leaves no slot empty for
    three weeks, and one gap that does is not the shape of a week of sessions; nor is a feed whose
    open slots are under ``MIN_COVERAGE`` filled (one missing a third of its days at random can
    leave a weekday empty for three weeks by chance, but not with 85 % of the rest full).
    """
    fit = _fit(np.asarray(stamps_ms, dtype=np.int64), step_ms, tolerance)
    return None if fit is None else fit[0]


def in_local_time(stamps_ms: np.ndarray, found: Schedule, tolerance: float) -> Schedule:
    """``found``, the schedule a feed's first weeks follow in UTC, or the same hours on the clock of
    a time zone if the feed's first year (sorted UTC stamps) keeps to them there and not in UTC: a
    business's hours or an exchange's session, which move by an hour in UTC at each daylight-saving
    change. Any zone whose clocks change at the same instants fits as well; the familiar one is named."""
    if found.daily:
        return found
    t = np.asarray(stamps_ms, dtype=np.int64)
    return _local_fit(t[: int(np.searchsorted(t, t[0] + 53 * WEEK_MS))].tobytes(), found, tolerance)


def infer_local_schedule(stamps_ms: np.ndarray, step_ms: int, tolerance: float) -> Schedule | None:
    """:func:`infer_schedule` on a time zone's clock, for a feed whose first weeks show no schedule
    in UTC because a clock change in them moved its hours (and a holiday or two left the blur under
    ``MIN_COVERAGE``); only if those weeks leave a slot of the week empty, as a schedule does."""
    t = np.asarray(stamps_ms, dtype=np.int64)
    if t.size < 2 or not 0 < step_ms < DAY_MS or DAY_MS % step_ms or step_ms % 1000:
        return None  # a daily schedule's points keep their own time of day: no clock moves them
    if np.unique(_slots(t, step_ms)[1] % (WEEK_MS // step_ms)).size == WEEK_MS // step_ms:
        return None
    best = _zoned(t, step_ms, tolerance, -1.0)
    return None if best is None else best[0]


def moved_by_clock(found: Schedule, last_ms: int, ts_ms: int, tolerance: float) -> Schedule | None:
    """The hours a live series followed through its point ``last_ms`` (``found``, found from its
    records), read on another clock, when a clock changed in the week before ``ts_ms`` and
    ``last_ms`` and the record at ``ts_ms`` are points of them there (``ts_ms`` is not of
    ``found``). Hours found in UTC are tried on the clock of each zone that changed (a feed's hours
    kept on a local clock move by an hour in UTC at each change); hours so moved onto a zone go
    back to UTC when the next record says the feed kept UTC (what moved them was a stray record).
    None when no clock does."""
    if found.daily:
        return None
    before = ts_ms - WEEK_MS - DAY_MS  # the change came after this: its points are the old hours'
    n = found.points * found.weekmask.bit_count() * (MIN_WEEKS + 2)  # its points over that many weeks
    back = found.advance(np.full(n, last_ms), -np.arange(n))
    old = np.sort(back[back < before])
    if old.size < 2:
        return None
    for zone in zones_that_change(before, ts_ms) if found.zone == UTC else [found.zone]:
        offsets = utc_offsets(zone, np.array([before, ts_ms], dtype=np.int64))
        if offsets[0] == offsets[1]:
            continue  # no change in that week: the record is off this zone's hours too
        clock = zone if found.zone == UTC else UTC
        fit = _fit(to_wall(clock, old), found.step_ms, tolerance)
        if fit is None or fit[1] < 1.0:
            continue  # the old hours are not a schedule on this clock
        moved = replace(fit[0], zone=clock)
        if moved.first_point(last_ms, 0.0) == last_ms and moved.first_point(ts_ms, tolerance) is not None:
            return moved  # the series' last point is one of the moved hours', and the record's is next
    return None


@lru_cache(maxsize=4)  # the series of a wide file share their stamps (a key is up to a year of them)
def _local_fit(year_bytes: bytes, found: Schedule, tolerance: float) -> Schedule:
    year = np.frombuffer(year_bytes, dtype=np.int64)
    utc = _fit(year, found.step_ms, tolerance)
    coverage = -1.0 if utc is None else utc[1]
    if utc is not None and utc[0] == found and coverage >= 1 - ZONE_MARGIN:
        return found  # full all year in UTC: no clock change moved it
    # a feed whose first weeks straddle a clock change shows both hours in UTC, nearly full
    zoned = _zoned(year, found.step_ms, tolerance, coverage)
    return found if zoned is None else zoned[0]


def _zoned(t: np.ndarray, step_ms: int, tolerance: float, beat: float) -> tuple[Schedule, float] | None:
    """The schedule ``t`` (UTC) follows best on the clock of a zone whose clocks change, if it fills
    more than ``beat`` + ``ZONE_MARGIN`` of its points, and that share."""
    best = None
    for zone in zones_that_change(int(t[0]), int(t[-1])):
        fit = _fit(to_wall(zone, t), step_ms, tolerance)
        if fit is not None and fit[1] > beat + ZONE_MARGIN:
            best, beat = (fit[0], zone), fit[1]
    # only the zone taken is named in a schedule: a process holds at most MAX_ZONES of them
    return None if best is None else (replace(best[0], zone=best[1]), beat)


def _fit(t: np.ndarray, step_ms: int, tolerance: float) -> tuple[Schedule, float] | None:
    """:func:`infer_schedule`'s schedule, and the share of its points in the span that hold a record."""
    if t.size < 2 or step_ms <= 0 or DAY_MS % step_ms or step_ms % 1000 or t[-1] - t[0] < MIN_WEEKS * WEEK_MS:
        return None
    phase, slot = _slots(t, step_ms)
    if (np.abs(t - phase - slot * step_ms) > tolerance * step_ms).any():
        return None
    open_ = np.zeros(WEEK_MS // step_ms, dtype=bool)
    open_[slot % open_.size] = True
    return _fit_week(open_, phase, step_ms, (int(t[0]), int(t[-1])), np.unique(slot).size, tolerance)


def _slots(t: np.ndarray, step_ms: int) -> tuple[int, np.ndarray]:
    """The phase of a grid of ``step_ms`` through ``t[0]``, and each stamp's nearest step on it since
    the epoch (its slot of the week is that modulo a week's steps)."""
    phase = int(t[0]) % step_ms
    return phase, np.rint((t - phase) / step_ms).astype(np.int64)


def _fit_week(
    open_: np.ndarray, phase: int, step_ms: int, span: tuple[int, int], n_points: int, tolerance: float
) -> tuple[Schedule, float] | None:
    """The schedule whose open slots of the week are ``open_`` (slot i is i steps after the epoch's
    Thursday 00:00 plus ``phase``), and the share of its points from ``span[0]`` to ``span[1]`` that
    ``n_points`` records fill, if that is at least ``MIN_COVERAGE``."""
    per_day = DAY_MS // step_ms
    if open_.all():
        return None
    runs = _runs(open_)
    week_ms = [(phase + first * step_ms) % WEEK_MS for first, _ in runs]
    if len({w % DAY_MS for w in week_ms}) != 1:
        return None
    lengths = {n for _, n in runs}
    if len(lengths) == 1 and (points := lengths.pop()) < per_day:
        days = [w // DAY_MS for w in week_ms]
    elif all(n % per_day == 0 for _, n in runs):
        points = int(per_day)
        days = [w // DAY_MS + i for w, (_, n) in zip(week_ms, runs, strict=True) for i in range(n // per_day)]
    else:
        return None
    mask = 0
    for d in days:
        mask |= 1 << ((d + EPOCH_WEEKDAY) % 7)
    start = 0 if step_ms == DAY_MS else week_ms[0] % DAY_MS
    if start % 1000:
        return None
    found = Schedule(step_ms, mask, start, points)
    first = found.first_point(span[0], tolerance)
    if first is None:
        return None
    # a feed missing records at random may leave a slot empty by chance; it leaves open ones empty too
    coverage = n_points / (found.nearest(first, span[1]) + 1)
    return (found, coverage) if coverage >= MIN_COVERAGE else None


@dataclass(frozen=True, slots=True)
class WeekSlots:
    """The slots of the week a live series' records have held since ``since_ms`` on a grid of
    ``step_ms`` (a divisor of a day): what shows a schedule within the day once it spans
    ``MIN_WEEKS`` weeks. A live series' first records span hours, so a worker gathers this from the
    series' first restart at a closure on (:mod:`~adaptcast.streams.grid`), one run of points
    between two restarts at a time, so that the records in between cost nothing."""

    step_ms: int
    since_ms: int  # the first point gathered
    run_ms: int  # the first point of the run not yet counted
    last_ms: int  # the last point counted
    bits: int = 0  # bit i: the slot i steps after the epoch's Thursday 00:00 plus the phase, mod a week
    points: int = 0  # grid points counted (a short gap's filled ones included)

    @classmethod
    def start(cls, step_ms: int, ts_ms: int) -> WeekSlots:
        return cls(step_ms, ts_ms, ts_ms, ts_ms)

    def close_run(self, last_ms: int, next_ms: int) -> WeekSlots:
        """With the run of points from ``run_ms`` to ``last_ms`` counted; the next starts at ``next_ms``."""
        per_week = WEEK_MS // self.step_ms
        n = (last_ms - self.run_ms) // self.step_ms + 1
        first = (self.run_ms - self.since_ms % self.step_ms) // self.step_ms % per_week
        run = (1 << min(n, per_week)) - 1
        held = (run << first | run >> (per_week - first)) & ((1 << per_week) - 1)
        return replace(self, run_ms=next_ms, last_ms=last_ms, bits=self.bits | held, points=self.points + n)

    def schedule(self, tolerance: float) -> Schedule | None:
        """The schedule these slots show, once they span ``MIN_WEEKS`` weeks, else None."""
        if self.last_ms - self.since_ms < MIN_WEEKS * WEEK_MS:
            return None
        per_week = WEEK_MS // self.step_ms
        raw = np.frombuffer(self.bits.to_bytes((per_week + 7) // 8, "little"), dtype=np.uint8)
        open_ = np.unpackbits(raw, bitorder="little")[:per_week].astype(bool)
        phase = self.since_ms % self.step_ms
        fit = _fit_week(open_, phase, self.step_ms, (self.since_ms, self.last_ms), self.points, tolerance)
        return None if fit is None else fit[0]


def _runs(open_: np.ndarray) -> list[tuple[int, int]]:
    """(first slot, length) of each run of open slots, the week read as a circle."""
    first_closed = int(np.argmin(open_))
    order = np.roll(np.arange(open_.size), -first_closed)
    runs: list[tuple[int, int]] = []
    for i in order:
        if open_[i]:
            if runs and runs[-1][0] + runs[-1][1] == i + (open_.size if i < runs[-1][0] else 0):
                runs[-1] = (runs[-1][0], runs[-1][1] + 1)
            else:
                runs.append((int(i), 1))
    return runs


_DAYS = r"[A-Za-z]{3}(?:\s*[-,]\s*[A-Za-z]{3})*"
_CLOCK = r"(\d{1,2}):(\d{2})"
_ZONE_NAME = r"[A-Za-z][\w+-]*(?:/[\w+-]+)*"


def parse_schedule(step_ms: int, text: str) -> int:
    """The period of ``"Mon-Fri"``, ``"Mon-Fri 09:00-18:00"``, ``"Sun-Thu 22:00-22:00"`` or
    ``"Mon-Fri 09:30-16:00 America/New_York"`` on a grid of ``step_ms``: the open days (ranges wrap
    around the week), then the sessions' hours, the end excluded (equal to the start: a whole day),
    then the time zone they are read in (UTC if none). No hours: whole days from midnight."""
    m = re.fullmatch(rf"\s*({_DAYS})(?:\s+{_CLOCK}\s*-\s*{_CLOCK})?(?:\s+({_ZONE_NAME}))?\s*", text)
    if m is None:
        raise ValueError(
            f"{text!r} is not open days, hours and a time zone, e.g. Mon-Fri, Mon-Fri 09:00-18:00 or "
            "Mon-Fri 09:00-17:00 Europe/Berlin"
        )
    mask, zone = _days(m.group(1)), m.group(6) or UTC
    if m.group(2) is None:
        return Schedule(step_ms, mask, 0, max(DAY_MS // step_ms, 1), zone).period
    if step_ms == DAY_MS:
        raise ValueError("a daily schedule has one point a day at the feed's own time: give the days only")
    begin, end = (60_000 * (60 * int(m.group(i)) + int(m.group(i + 1))) for i in (2, 4))
    if max(begin, end) >= DAY_MS or int(m.group(3)) >= 60 or int(m.group(5)) >= 60:
        raise ValueError(f"{text!r}: hours are 00:00 to 23:59")
    length = (end - begin) % DAY_MS or DAY_MS
    if length % step_ms:
        raise ValueError(f"{text!r}: the session is not a whole number of {_step_text(step_ms)} steps")
    return Schedule(step_ms, mask, begin, length // step_ms, zone).period


def _days(text: str) -> int:
    """Bits of ``Mon-Fri``, ``Sun-Thu`` (wrapping), ``Mon,Wed,Fri`` or a mix of both."""
    names = [w.lower() for w in WEEKDAYS]
    mask = 0
    for part in re.split(r"\s*,\s*", text.strip()):
        ends = [p.strip().lower() for p in part.split("-")]
        if any(e not in names for e in ends) or len(ends) > 2:
            raise ValueError(
                f"{part!r}: days are Mon, Tue, Wed, Thu, Fri, Sat, Sun, or a range of them (Mon-Fri)"
            )
        a, b = names.index(ends[0]), names.index(ends[-1])
        for i in range((b - a) % 7 + 1):
            mask |= 1 << ((a + i) % 7)
    return mask


def _days_text(mask: int) -> str:
    """``Mon-Fri``, ``Sun-Thu``, or the days listed (``Mon,Wed,Fri``)."""
    if mask == 0b1111111:
        return "Mon-Sun"
    closed = next(i for i in range(7) if not mask >> i & 1)
    week = [(closed + 1 + j) % 7 for j in range(7)]  # from the day after a closed one, so a run is whole
    days = [i for i in week if mask >> i & 1]
    if week.index(days[-1]) - week.index(days[0]) + 1 == len(days) and len(days) > 2:
        return f"{WEEKDAYS[days[0]]}-{WEEKDAYS[days[-1]]}"
    return ",".join(WEEKDAYS[i] for i in sorted(days))


def _clock(ms: int) -> str:
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}"


def _step_text(step_ms: int) -> str:
    n, unit = in_units(step_ms)
    return f"{n}{unit}"
