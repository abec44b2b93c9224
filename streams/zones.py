"""Time zones for schedules kept in local time: a business's hours, an exchange's session.

Such a schedule's points stay at the same wall-clock time all year, so in UTC they move by an hour
at each daylight-saving change; a UTC schedule would dead-letter one hour and make up another for
half the year. Offsets come from the IANA database (``zoneinfo``, with the ``tzdata`` package where
the system has none), turned into a table of each year's changes once per zone and year, so that
converting an array of timestamps is one ``searchsorted``. A zone is carried inside a schedule's
period as a small number interned here per process (:func:`zone_id`); whatever leaves the process
(snapshots, manifests, logs) writes the zone's name.
"""

from __future__ import annotations

import datetime as dt
from difflib import get_close_matches
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import numpy as np

DAY_MS = 86_400_000
UTC = "UTC"
MAX_ZONES = 30  # zone numbers 1…30 fit the period's spare bits (streams/schedule.py); 0 is UTC
_AREAS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe", "Indian", "Pacific")
_names: list[str] = [UTC]


def check_zone(name: str) -> str:
    """``name`` if the IANA database knows it, else ValueError saying what a zone looks like."""
    if name == UTC:
        return name
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        known = sorted(available_timezones())
        near = [z for z in known if z.lower() == name.lower()] or get_close_matches(name, known, n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ValueError(
            f"unknown time zone {name!r}{hint}: give an IANA name such as Europe/Berlin, "
            "America/New_York or Asia/Tokyo (or UTC)"
        ) from None
    return name


def zone_id(name: str) -> int:
    """The small number that stands for ``name`` in this process (0 for UTC)."""
    if name not in _names:
        check_zone(name)
        if len(_names) > MAX_ZONES:
            raise ValueError(f"at most {MAX_ZONES} time zones can be used by one process")
        _names.append(name)
    return _names.index(name)


def zone_name(zid: int) -> str:
    """The zone :func:`zone_id` gave ``zid``."""
    return _names[zid]


def _offset_ms(tz: ZoneInfo, ms: int) -> int:
    at = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).astimezone(tz)
    return round(at.utcoffset().total_seconds() * 1000)  # type: ignore[union-attr]


@cache
def _year_changes(zone: str, year: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The instants (UTC ms) from which each offset of ``year`` holds, the first at the year's start.
    Changes are found day by day, then to the second by bisection (no zone changes twice a day)."""
    tz = ZoneInfo(zone)
    start = int(np.datetime64(f"{year}-01-01", "ms").astype(np.int64))
    end = int(np.datetime64(f"{year + 1}-01-01", "ms").astype(np.int64))
    starts, offsets = [start], [_offset_ms(tz, start)]
    day = start
    while day < end:
        nxt = min(day + DAY_MS, end - 1000)
        if _offset_ms(tz, nxt) != offsets[-1]:
            lo, hi = day, nxt  # offsets[-1] holds at lo, not at hi
            while hi - lo > 1000:
                mid = lo + (hi - lo) // 2000 * 1000
                lo, hi = (mid, hi) if _offset_ms(tz, mid) == offsets[-1] else (lo, mid)
            starts.append(hi)
            offsets.append(_offset_ms(tz, hi))
        day += DAY_MS
    return tuple(starts), tuple(offsets)


def utc_offsets(zone: str, ts_ms: np.ndarray) -> np.ndarray:
    """The zone's UTC offset (ms, east positive) at each UTC instant of ``ts_ms``."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    if zone == UTC or ts.size == 0:
        return np.zeros_like(ts)
    years = np.unique(ts.astype("datetime64[ms]").astype("datetime64[Y]").astype(np.int64) + 1970)
    tables = [_year_changes(zone, int(y)) for y in range(int(years.min()), int(years.max()) + 1)]
    starts = np.concatenate([t[0] for t in tables])
    offsets = np.concatenate([t[1] for t in tables]).astype(np.int64)
    return offsets[np.maximum(np.searchsorted(starts, ts, side="right") - 1, 0)]


def to_wall(zone: str, ts_ms: np.ndarray) -> np.ndarray:
    """UTC instants as the zone's wall-clock time, written as ms since 1970-01-01 00:00 of that clock."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    return ts if zone == UTC else ts + utc_offsets(zone, ts)


def from_wall(zone: str, wall_ms: np.ndarray) -> np.ndarray:
    """The UTC instant of each wall-clock time; a time the clocks skip reads with the offset before
    the change (as ``zoneinfo`` does), and one they repeat is its first instant."""
    wall = np.asarray(wall_ms, dtype=np.int64)
    if zone == UTC:
        return wall
    before = utc_offsets(zone, wall - DAY_MS)
    after = utc_offsets(zone, wall + DAY_MS)
    t_before, t_after = wall - before, wall - after
    ok_before = utc_offsets(zone, t_before) == before
    ok_after = utc_offsets(zone, t_after) == after
    both = np.minimum(t_before, t_after)
    return np.where(ok_before & ok_after, both, np.where(ok_after & ~ok_before, t_after, t_before))


def zones_that_change(first_ms: int, last_ms: int) -> list[str]:
    """One zone for each way clocks change between two instants (zones whose offsets and changes
    agree over that span are interchangeable there), for trying which one a feed keeps to. A
    familiar name stands for its group where there is one (:data:`FAMILIAR`); the rest go by name."""
    return list(_groups(_year(first_ms), _year(last_ms)))


FAMILIAR = (  # the names a group of interchangeable zones is given first
    "Europe/Berlin",
    "Europe/London",
    "Europe/Helsinki",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@cache
def _groups(first_year: int, last_year: int) -> tuple[str, ...]:
    """The first name of each group of zones whose clocks change alike over these years."""
    known = available_timezones()
    names = [z for z in FAMILIAR if z in known]
    names += sorted(z for z in known if z.split("/")[0] in _AREAS and z not in FAMILIAR)
    groups: dict[tuple[tuple[tuple[int, ...], tuple[int, ...]], ...], str] = {}
    for name in names:
        rules = tuple(_year_changes(name, y) for y in range(first_year, last_year + 1))
        if any(len(starts) > 1 for starts, _ in rules):  # a fixed offset is a UTC schedule moved
            groups.setdefault(rules, name)
    return tuple(groups.values())


def _year(ms: int) -> int:
    return int(np.datetime64(ms, "ms").astype("datetime64[Y]").astype(np.int64)) + 1970
