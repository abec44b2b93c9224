"""Fixed periods that are not a whole number of milliseconds: a 64 Hz sensor's 15.625 ms.

Timestamps are whole milliseconds, so such a feed's records are 15 and 16 ms apart in turn, and a
grid of either drifts off them within a few points. A *rate* period is the exact period ``n/d`` ms
(a fraction in lowest terms) and a phase: its points are ``phase + ⌊j·n/d⌋`` ms for every whole
``j``, which repeats every ``n`` ms, so every whole-millisecond phase below ``n`` is one such grid.
A feed stamped by truncation sits on its points exactly; one stamped by rounding sits within a
millisecond of them, and the grid's tolerance moves it on.

A rate is carried as a grid period, an ``int`` at or above ``RATE`` (positive periods below it are
milliseconds, negative ones calendar months and schedules: :mod:`~adaptcast.streams.calendar`), so
grids, snapshots and events hold it as they hold any period. Since the phase is part of the period,
a series' grid takes its own when it starts (:func:`through`). Pure integer arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import cache
from typing import TypeVar

import numpy as np

T = TypeVar("T", int, np.ndarray)

RATE = 1 << 62  # rate periods are RATE + fields; whole-millisecond periods stay far below it
_D_BITS, _N_BITS = 12, 24  # denominators under 4096; numerators (and so phases) under 2**24 ms (4.6 h)
MAX_DENOMINATOR = (1 << _D_BITS) - 1


def is_rate(period: int) -> bool:
    """Whether ``period`` is a rate: a fixed period that is not a whole number of milliseconds."""
    return period >= RATE


@dataclass(frozen=True)
class Rate:
    """An exact period of ``n/d`` ms (lowest terms, ``d > 1``) through points ``phase + ⌊j·n/d⌋``."""

    n: int
    d: int
    phase: int = 0

    def __post_init__(self) -> None:
        if not (
            1 < self.d <= MAX_DENOMINATOR and self.d < self.n < 1 << _N_BITS and 0 <= self.phase < self.n
        ):
            raise ValueError(
                f"a period of {self.n}/{self.d} ms is not one a grid holds: it must be over 1 ms and under "
                f"{(1 << _N_BITS) // 3_600_000} hours, with a denominator under {MAX_DENOMINATOR + 1}"
            )

    @property
    def period(self) -> int:
        """The grid period that carries it."""
        return RATE + (self.phase << (_D_BITS + _N_BITS) | self.n << _D_BITS | self.d)

    @classmethod
    def of(cls, period: int) -> Rate:
        """The rate a period carries."""
        return _decode(period)

    @property
    def ms(self) -> float:
        """The period in milliseconds, as near as a float holds it."""
        return self.n / self.d

    def advance(self, ts_ms: T, k: T) -> T:
        """The points ``k`` steps after the points ``ts_ms``: int64 arrays of one shape, or plain
        integers (the record-by-record path, which numpy would slow tenfold)."""
        return _steps(ts_ms, k, self.n, self.d, self.phase)

    def nearest(self, start_ms: int, ts_ms: int) -> int:
        """The whole number of steps after the point ``start_ms`` whose point is nearest ``ts_ms``."""
        k = round((ts_ms - start_ms) * self.d / self.n)
        return min((k - 1, k, k + 1), key=lambda s: abs(self.advance(start_ms, s) - ts_ms))

    def text(self) -> str:
        """``"15.625 ms (64 Hz)"``: for logs and error messages."""
        hz = Fraction(1000 * self.d, self.n)
        rate = f" ({hz.numerator} Hz)" if hz.denominator == 1 else ""
        return f"{self.n / self.d:.6g} ms{rate}"


def _steps(ts_ms: T, k: T, n: T, d: T, phase: T) -> T:
    """The points ``k`` steps of ``n/d`` ms after the points ``ts_ms`` of grids through ``phase``."""
    # ts = phase + ⌊j·n/d⌋ puts j·n/d at ts + r/d, r = (−(ts − phase)·d) mod n: kept below 2**63
    r = (-(((ts_ms - phase) % n) * d)) % n
    return ts_ms + (r + k * n) // d


def advance_rates(ts_ms: np.ndarray, periods: np.ndarray, k: np.ndarray) -> np.ndarray:
    """:meth:`Rate.advance` over int64 arrays of one shape whose periods are all rates, each series
    with its own phase (a poll of many 64 Hz series), decoded as arrays rather than one by one."""
    return _steps(ts_ms, k, *_fields(periods))


def _fields(period: T) -> tuple[T, T, T]:
    """``(n, d, phase)`` of rate periods, one or an int64 array of them (inverse of :attr:`Rate.period`)."""
    packed = period - RATE
    return (packed >> _D_BITS) & ((1 << _N_BITS) - 1), packed & MAX_DENOMINATOR, packed >> (_D_BITS + _N_BITS)


@cache
def _decode(period: int) -> Rate:
    return Rate(*_fields(period))


def exact_period(ms: Fraction) -> int:
    """The period of exactly ``ms`` milliseconds: a whole number of them, else a rate (phase 0)."""
    ms = ms.limit_denominator(MAX_DENOMINATOR)
    if ms.denominator == 1:
        return int(ms)
    return Rate(ms.numerator, ms.denominator).period


def through(period: int, ts_ms: int) -> int:
    """``period`` with ``ts_ms`` among its points: a rate not through it takes the phase that puts it
    there; other periods are kept (their points are counted from a series' own latest point)."""
    if not is_rate(period):
        return period
    rate = Rate.of(period)
    if rate.advance(ts_ms, 0) == ts_ms:
        return period
    return Rate(rate.n, rate.d, ts_ms % rate.n).period


def same_step(a: int | None, b: int | None) -> bool:
    """Whether two periods step alike (rates whatever their phase)."""
    if a is not None and b is not None and is_rate(a) and is_rate(b):
        return _fields(a)[:2] == _fields(b)[:2]
    return a == b


def whole_hz(intervals: list[int]) -> int | None:
    """The rate (phase 0) of the whole number of hertz that intervals of two neighbouring whole
    milliseconds average to, when its period is not a whole number of them; else None. Sensors
    sample at whole hertz, and a timestamp in milliseconds cuts 15.625 ms into 15 and 16: over ``L``
    intervals the mean is within ``2/L`` ms of the period, closer than to any whole millisecond."""
    if len(set(intervals)) != 2 or max(intervals) - min(intervals) != 1:
        return None
    mean = sum(intervals) / len(intervals)
    hz = round(1000 / mean)
    if not 1 <= hz < 1000 or 1000 % hz == 0:
        return None
    exact = 1000 / hz
    if abs(mean - exact) >= min(abs(mean - round(mean)), 2 / len(intervals)):
        return None
    return exact_period(Fraction(1000, hz))


def fit(period: int, stamps: np.ndarray, inferred: bool = True) -> int:
    """The rate, of ``period``'s step or (``inferred``) of a whole number of hertz as near the stamps'
    mean interval, and the phase among the grids through the latest of ``stamps`` (sorted, whole ms),
    that puts most of them on its points. Other periods as they are."""
    if not is_rate(period) or len(stamps) == 0:
        return period
    given = Rate.of(period)
    candidates = {(given.n, given.d)}
    if inferred and len(stamps) > 2:
        mean, slack = (stamps[-1] - stamps[0]) / (len(stamps) - 1), 2 / (len(stamps) - 1)
        for hz in range(max(1, int(1000 / (mean + slack))), min(999, int(1000 / max(mean - slack, 1))) + 1):
            f = Fraction(1000, hz)
            if f.denominator > 1 and abs(f - Fraction(mean)) <= slack:
                candidates.add((f.numerator, f.denominator))
    last = int(stamps[-1])
    back = np.asarray(stamps, dtype=np.int64) - last
    best: tuple[int, int, int] | None = None  # (hits, −deviation, period)
    for n, d in sorted(candidates, key=lambda c: abs(c[0] / c[1] - given.ms)):
        k = np.rint(back * d / n).astype(np.int64)
        r = np.arange(d, dtype=np.int64)[:, None]
        points = (r + k[None, :] * n) // d  # the grid whose exact point at ``last`` is r/d ms past it
        hits, dev = (points == back).sum(axis=1), np.abs(points - back).sum(axis=1)
        i = int(np.lexsort((dev, -hits))[0])
        j0 = i * pow(n, -1, d) % d  # the step whose exact point is i/d ms past a whole one
        found = (int(hits[i]), -int(dev[i]), Rate(n, d, (last - (j0 * n - i) // d) % n).period)
        best = found if best is None or found[:2] > best[:2] else best
    assert best is not None
    return best[2]


def from_seconds(seconds: float) -> int:
    """The period of ``seconds`` as a manifest records it (a rate's period as a float)."""
    return exact_period(Fraction(seconds * 1000))


def in_seconds(period: int) -> float:
    """A fixed period (whole milliseconds or a rate) in seconds, exactly as a float holds it."""
    return (Rate.of(period).ms if is_rate(period) else period) / 1000
