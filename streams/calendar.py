"""Grid periods that follow the calendar: monthly, quarterly, half-yearly and yearly feeds, and
feeds of business days.

A period is an ``int``: a positive one is that many milliseconds, a negative one ``-m`` is ``m``
calendar months, and one at or below ``-BUSINESS`` is one point per open day of a week
(``-(BUSINESS + weekmask)``, bit 0 Monday: Mon–Fri is ``business_days()``). Months are 28 to 31
days long, so no fixed period keeps such a feed on its grid: a monthly series inferred as "31 days"
drifts off it within months. A calendar grid's points keep the day of the month and the time of day
of the point they are counted from; a point on a month's last day stays on the last day (month-end
feeds), and a day the next month lacks becomes its last day (31 January + 1 month is 28 or 29
February). A business-day grid's points keep the time of day and skip the closed days, so a
weekday feed's weekends are neither gaps to fill nor forecast. Everything here is pure
arithmetic on UTC milliseconds, vectorised over numpy arrays.
"""

from __future__ import annotations

from functools import cache

import numpy as np

DAY_MS = 86_400_000
MONTH_MS = round(365.2425 / 12 * DAY_MS)  # a Gregorian month on average: the nominal size of a period
CALENDAR_MONTHS = (1, 2, 3, 4, 6, 12)  # the periods recognised when inferring (month … year)
BUSINESS = 1 << 20  # business-day periods are -(BUSINESS + weekmask); month counts stay below it
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MON_FRI = 0b0011111
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday
MIN_CLOSED_WEEKS = 3  # a weekday never seen over this many weeks of a daily feed is a closed day


def is_calendar(period: int) -> bool:
    """Whether ``period`` follows the calendar (months or business days) rather than a fixed length."""
    return period < 0


def is_business(period: int) -> bool:
    """Whether ``period`` is one point per open day of the week."""
    return period <= -BUSINESS


def months(m: int) -> int:
    """The period of ``m`` calendar months."""
    if not 1 <= m < BUSINESS:
        raise ValueError(f"a calendar period is at least one month and under {BUSINESS} months, got {m}")
    return -m


def business_days(weekmask: int = MON_FRI) -> int:
    """The period of one point per open day; ``weekmask`` has bit ``i`` set for open weekday ``i``
    (0 Monday … 6 Sunday), at least one day open and one closed."""
    if not 0 < weekmask < 0b1111111:
        raise ValueError(f"a business week opens on some days and closes on others, got mask {weekmask:#09b}")
    return -(BUSINESS + weekmask)


def weekmask(period: int) -> int:
    """The open days of a business-day period, bit 0 Monday."""
    return -period - BUSINESS


def _numpy_mask(mask: int) -> list[bool]:
    return [bool(mask >> i & 1) for i in range(7)]


def open_days(period: int) -> str:
    """``"Mon–Fri"``, or the open days listed (``"Sun, Mon, Tue, Wed, Thu"``)."""
    mask = weekmask(period)
    closed = next(i for i in range(7) if not mask >> i & 1)
    week = [(closed + 1 + j) % 7 for j in range(7)]  # from the day after a closed one, so a run is whole
    days = [i for i in week if mask >> i & 1]
    run = week.index(days[-1]) - week.index(days[0]) + 1 == len(days)
    if run and len(days) > 2:
        return f"{WEEKDAYS[days[0]]}–{WEEKDAYS[days[-1]]}"
    return ", ".join(WEEKDAYS[i] for i in sorted(days))


def nominal_ms(period: int) -> int:
    """The period's length in ms; for calendar months and business days their average length."""
    if is_business(period):
        return round(7 * DAY_MS / weekmask(period).bit_count())
    return -period * MONTH_MS if period < 0 else period


def describe(period: int) -> str:
    """``"1 month"``, ``"3 months"``, ``"1 business day (Mon–Fri)"``, ``"1 h"``, ``"90 min"``: for
    logs and error messages."""
    if is_business(period):
        return f"1 business day ({open_days(period)})"
    if period < 0:
        return "1 month" if period == -1 else f"{-period} months"
    if period == 0:
        return "unknown"
    unit, ms = next((u, ms) for u, ms in _UNITS if period % ms == 0)
    return f"{period // ms} {unit}"


_UNITS = (("d", DAY_MS), ("h", 3_600_000), ("min", 60_000), ("s", 1_000), ("ms", 1))  # largest first


def advance(ts_ms: np.ndarray | int, period: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """The grid point ``k`` periods after (before, for negative ``k``) ``ts_ms``; broadcasts, int64."""
    ts, per, steps = (np.asarray(a, dtype=np.int64) for a in (ts_ms, period, k))
    out = ts + per * steps
    cal = per < 0
    if not cal.any():  # the serving loop's case: plain arithmetic
        return out
    ts, per, steps, cal = np.broadcast_arrays(ts, per, steps, cal)
    monthly = cal & (per > -BUSINESS)
    out = np.where(monthly, _add_months(ts, -per * steps * monthly), out)
    for p in np.unique(per[per <= -BUSINESS]):
        on = per == p
        out[on] = _add_open_days(ts[on], steps[on], weekmask(int(p)))
    return out


def shift(ts_ms: int, period: int, k: int) -> int:
    """:func:`advance` for one timestamp, as a plain ``int`` (fixed periods need no numpy)."""
    return ts_ms + period * k if period > 0 else int(advance(ts_ms, period, k))


def _add_months(ts_ms: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``ts_ms`` moved by ``n`` calendar months: same day and time, month ends kept, days clipped."""
    t = ts_ms.astype("datetime64[ms]")
    month = t.astype("datetime64[M]")
    offset = (t - month.astype("datetime64[ms]")).astype(np.int64)
    day, time_of_day = offset // DAY_MS, offset % DAY_MS
    target = month + n
    length, target_length = _days_in(month), _days_in(target)
    new_day = np.where(day == length - 1, target_length - 1, np.minimum(day, target_length - 1))
    return target.astype("datetime64[ms]").astype(np.int64) + new_day * DAY_MS + time_of_day


def _add_open_days(ts_ms: np.ndarray, n: np.ndarray, mask: int) -> np.ndarray:
    """``ts_ms`` moved by ``n`` open days of ``mask``, at the same time of day (a closed day rolls
    forward to the next open one first)."""
    day, time_of_day = np.divmod(ts_ms, DAY_MS)
    moved = np.busday_offset(day.astype("datetime64[D]"), n, roll="forward", weekmask=_numpy_mask(mask))
    return moved.astype(np.int64) * DAY_MS + time_of_day


def _days_in(month: np.ndarray) -> np.ndarray:
    return ((month + 1).astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)


@cache
def month_span_days(m: int) -> tuple[int, int]:
    """The fewest and most days that ``m`` consecutive calendar months can span (over a 400-year cycle)."""
    starts = np.arange(np.datetime64("2000-01", "M"), np.datetime64("2400-01", "M"))
    spans = ((starts + m).astype("datetime64[D]") - starts.astype("datetime64[D]")).astype(np.int64)
    return int(spans.min()), int(spans.max())


def calendar_period(intervals: np.ndarray | list[int], tolerance: float = 0.0) -> int | None:
    """``months(m)`` if these intervals between records are whole days that vary as ``m`` calendar
    months do (not all equal, every one within that span widened by ``tolerance`` of a period:
    the month's last business day is within it), else None (a fixed period fits them)."""
    d = np.asarray(intervals, dtype=np.int64)
    if d.size < 2 or (d % DAY_MS).any() or (d == d[0]).all():
        return None
    days = d // DAY_MS
    for m in CALENDAR_MONTHS:
        lo, hi = month_span_days(m)
        slack = tolerance * nominal_ms(months(m)) / DAY_MS
        if lo - slack <= days.min() and days.max() <= hi + slack:
            return months(m)
    return None


def business_period(stamps_ms: np.ndarray | list[int], tolerance: float = 0.0) -> int | None:
    """``business_days(mask)`` if these timestamps, at one time of day (within ``tolerance`` of a
    day), fall only on some days of the week over at least ``MIN_CLOSED_WEEKS`` weeks, each of
    those days seen, else None. A daily feed that closes at weekends has no record on Saturday or
    Sunday in three weeks; a daily feed missing records at random has some on every weekday."""
    t = np.asarray(stamps_ms, dtype=np.int64)
    if t.size < 2:
        return None
    phase = int(t[0]) % DAY_MS
    day = np.round((t - phase) / DAY_MS).astype(np.int64)
    if (np.abs(t - phase - day * DAY_MS) > tolerance * DAY_MS).any():
        return None
    if day[-1] - day[0] < 7 * MIN_CLOSED_WEEKS:
        return None
    mask = int(np.bitwise_or.reduce(1 << ((day + EPOCH_WEEKDAY) % 7)))
    return business_days(mask) if mask != 0b1111111 else None


def nearest_step(start_ms: int, ts_ms: int, period: int) -> int:
    """The whole number of periods after ``start_ms`` whose grid point is nearest to ``ts_ms``."""
    if is_business(period):  # open days between the two days, counted exactly
        phase = start_ms % DAY_MS
        begin, end = start_ms // DAY_MS, (ts_ms - phase + DAY_MS // 2) // DAY_MS
        days = np.array([begin, end], dtype="datetime64[D]")
        k = int(np.busday_count(days[0], days[1], weekmask=_numpy_mask(weekmask(period))))
    else:
        k = round((ts_ms - start_ms) / nominal_ms(period))
    if period > 0:
        return k
    return min((k - 1, k, k + 1), key=lambda s: abs(shift(start_ms, period, s) - ts_ms))
