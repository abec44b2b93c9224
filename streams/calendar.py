"""Grid periods that follow the calendar: monthly, quarterly, half-yearly and yearly feeds, and
(through :mod:`~adaptcast.streams.schedule`) feeds on a weekly schedule.

A period is an ``int``: a positive one is that many milliseconds (at or above ``RATE``, a period
that is not a whole number of them: :mod:`~adaptcast.streams.rate`), a negative one ``-m`` is ``m``
calendar months, and one at or below ``-SCHEDULED`` is a weekly schedule (business days, business
hours). Months are 28 to 31 days long, so no fixed period keeps such a feed on its grid: a monthly
series inferred as "31 days" drifts off it within months. A calendar grid's points keep the day of
the month and the time of day of the point they are counted from; a point on a month's last day
stays on the last day (month-end feeds), and a day the next month lacks becomes its last day (31
January + 1 month is 28 or 29 February). The functions here take every kind of period. Everything
is pure arithmetic on UTC milliseconds, vectorised over numpy arrays.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from adaptcast.streams.rate import RATE, Rate, advance_rates, is_rate
from adaptcast.streams.schedule import DAY_MS, SCHEDULED, Schedule, in_units, is_scheduled

MONTH_MS = round(365.2425 / 12 * DAY_MS)  # a Gregorian month on average: the nominal size of a period
CALENDAR_MONTHS = (1, 2, 3, 4, 6, 12)  # the periods recognised when inferring (month … year)


def is_calendar(period: int) -> bool:
    """Whether ``period`` follows the calendar (months, or a weekly schedule) rather than a fixed length."""
    return period < 0


def months(m: int) -> int:
    """The period of ``m`` calendar months."""
    if not 1 <= m < SCHEDULED:
        raise ValueError(f"a calendar period is at least one month and under {SCHEDULED} months, got {m}")
    return -m


def nominal_ms(period: int) -> int:
    """The period's length in ms; for calendar months and schedules their average length."""
    if is_scheduled(period):
        return Schedule.of(period).nominal_ms
    if is_rate(period):
        return round(Rate.of(period).ms)
    return -period * MONTH_MS if period < 0 else period


def step_ms(period: int) -> int:
    """The distance a grid's tolerance is a share of: the period, a month on average, or a schedule's
    step (not its average over the week, which counts the closures)."""
    return Schedule.of(period).step_ms if is_scheduled(period) else nominal_ms(period)


def describe(period: int) -> str:
    """``"1 month"``, ``"3 months"``, ``"1h Mon-Fri 09:00-18:00"``, ``"1 h"``, ``"90 min"``: for logs
    and error messages (a schedule as ``grid.frequency`` takes it)."""
    if is_scheduled(period):
        return Schedule.of(period).text()
    if is_rate(period):
        return Rate.of(period).text()
    if period < 0:
        return "1 month" if period == -1 else f"{-period} months"
    if period == 0:
        return "unknown"
    n, unit = in_units(period)
    return f"{n} {unit}"


def advance(ts_ms: np.ndarray | int, period: np.ndarray | int, k: np.ndarray | int) -> np.ndarray:
    """The grid point ``k`` periods after (before, for negative ``k``) ``ts_ms``; broadcasts, int64."""
    ts, per, steps = (np.asarray(a, dtype=np.int64) for a in (ts_ms, period, k))
    special = (per < 0) | (per >= RATE)
    if not special.any():  # the serving loop's case: plain arithmetic
        return ts + per * steps
    ts, per, steps, special = np.broadcast_arrays(ts, per, steps, special)
    out = np.where(special, 0, ts + np.where(special, 0, per) * steps)
    monthly = (per < 0) & (per > -SCHEDULED)
    if monthly.any():
        out = np.where(monthly, _add_months(ts, -per * steps * monthly), out)
    rates = per >= RATE
    if rates.any():
        out[rates] = advance_rates(ts[rates], per[rates], steps[rates])
    for p in np.unique(per[per <= -SCHEDULED]):
        on = per == p
        out[on] = Schedule.of(int(p)).advance(ts[on], steps[on])
    return out


def shift(ts_ms: int, period: int, k: int) -> int:
    """:func:`advance` for one timestamp, as a plain ``int`` (fixed periods need no numpy)."""
    if 0 < period < RATE:
        return ts_ms + period * k
    return Rate.of(period).advance(ts_ms, k) if period >= RATE else int(advance(ts_ms, period, k))


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


def nearest_step(start_ms: int, ts_ms: int, period: int) -> int:
    """The whole number of periods after ``start_ms`` whose grid point is nearest to ``ts_ms``."""
    if is_scheduled(period):
        return Schedule.of(period).nearest(start_ms, ts_ms)
    if is_rate(period):
        return Rate.of(period).nearest(start_ms, ts_ms)
    k = round((ts_ms - start_ms) / nominal_ms(period))
    if period > 0:
        return k
    return min((k - 1, k, k + 1), key=lambda s: abs(shift(start_ms, period, s) - ts_ms))
