"""Grids whose period is not a whole number of milliseconds: a sensor at 64 Hz stamped to the ms."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

import numpy as np
import pytest

from adaptcast.drift.serialize import load_state, save_state
from adaptcast.streams.calendar import advance, describe, nearest_step, shift
from adaptcast.streams.config import ConfigError, load_config
from adaptcast.streams.grid import Action, GridRules, SeriesGrid, infer_period, parse_period, place
from adaptcast.streams.rate import Rate, exact_period, from_seconds, in_seconds, is_rate, same_step, through

T0 = 1_700_000_000_123  # a feed's first stamp: not on any whole multiple of its period


def _stamps(hz: int, n: int, how: str = "floor", start: int = T0) -> list[int]:
    """What a device sampling at ``hz`` writes as whole milliseconds, truncating or rounding."""
    exact = np.arange(n) * 1000 / hz
    return (start + (np.floor(exact) if how == "floor" else np.round(exact))).astype(np.int64).tolist()


def _walk(stamps: list[int], rules: GridRules) -> tuple[list, SeriesGrid]:
    grid, out = rules.new_grid("s"), []
    for ts in stamps:
        placed, grid = place(grid, ts, rules)
        out.append(placed)
    return out, grid


@pytest.mark.parametrize(("n", "d"), [(125, 8), (100, 3), (50, 3), (1000, 7), (125, 64), (3, 2)])
def test_a_rate_steps_by_its_exact_period_from_any_of_its_points_and_back(n, d):
    rng = np.random.default_rng(n * d)
    for phase in rng.integers(0, n, 3).tolist():
        period = Rate(n, d, phase).period
        assert is_rate(period) and Rate.of(period) == Rate(n, d, phase)
        points = advance(phase, period, np.arange(0, 5 * d))
        assert points.tolist() == [phase + (j * n) // d for j in range(5 * d)]  # ⌊j·n/d⌋ on from the phase
        for i, j in rng.integers(0, 5 * d, (20, 2)).tolist():
            assert shift(int(points[i]), period, j - i) == points[j]  # from any point, forward or back
            assert nearest_step(int(points[i]), int(points[j]), period) == j - i
            assert through(period, int(points[i])) == period  # its own points keep the phase


def test_rate_periods_are_parsed_named_and_compared_by_their_step():
    assert (
        parse_period("64Hz") == parse_period("15.625ms") == parse_period("0.015625s") == Rate(125, 8).period
    )
    assert parse_period("30 hz") == Rate(100, 3).period and parse_period("50Hz") == 20  # whole ms stay ms
    assert parse_period("1000Hz") == 1 and parse_period("1.5s") == 1500
    assert (
        describe(parse_period("64Hz")) == "15.625 ms (64 Hz)"
        and describe(exact_period(Fraction(7, 2))) == "3.5 ms"
    )
    moved = through(parse_period("64Hz"), T0)
    assert moved != parse_period("64Hz") and same_step(moved, parse_period("64Hz"))
    assert not same_step(moved, parse_period("30Hz")) and same_step(20, 20) and not same_step(20, moved)
    assert from_seconds(in_seconds(moved)) == parse_period("64Hz") and from_seconds(3600.0) == 3_600_000
    with pytest.raises(ValueError, match="a unit"):
        parse_period("2000Hz")  # half a millisecond: under what a millisecond stamp can say


def test_a_rate_cannot_be_resampled_and_the_config_says_so():
    with pytest.raises(ValueError, match="whole milliseconds"):
        GridRules(period_ms=parse_period("64Hz"), resample=GridRules().resample.__class__("mean"))
    with pytest.raises(ConfigError, match="whole milliseconds"):
        load_config(overrides={"grid": {"frequency": "64Hz", "resample": "mean"}}, environ={})


@pytest.mark.parametrize(
    ("hz", "how"),
    [(64, "floor"), (64, "round"), (30, "floor"), (60, "round"), (256, "floor"), (512, "floor")],
)
def test_a_feed_at_whole_hertz_stamped_to_the_millisecond_is_inferred_and_every_record_appended(hz, how):
    """15.625 ms is stamped 15 and 16 ms apart in turn: no whole-millisecond grid holds it (each drifts
    off within a few points and the series restarted over and over, forecasting nothing). The rate is
    inferred from the first records (``grid.infer_records``, while the window is still filling), with
    the phase that puts them on its points, and holds every later one."""
    stamps = _stamps(hz, 4000, how)
    placed, grid = _walk(stamps, GridRules())
    after = placed[GridRules().infer_records :]
    if how == "round":  # numpy rounds halves to even: now and then a stamp a millisecond off the rest
        assert Counter(p.action for p in after)[Action.APPEND] >= len(after) - 5
    else:
        assert Counter(p.action for p in after) == {Action.APPEND: len(after)}
        assert [p.ts_ms for p in after] == stamps[-len(after) :]  # forecasts' times meet their stamps
    assert same_step(grid.period_ms, parse_period(f"{hz}Hz"))
    assert not any(p.action.restarts for p in after)


def test_a_declared_rate_takes_the_feeds_phase_and_a_gap_is_counted_in_its_steps():
    stamps = _stamps(64, 200)
    kept = stamps[:100] + stamps[103:]  # three readings lost
    placed, grid = _walk(kept, GridRules(period_ms=parse_period("64Hz")))
    assert [p.action for p in placed].count(Action.APPEND) == len(kept) - 2
    (gap,) = [p for p in placed if p.action is Action.FILL]
    assert gap.missing == 3 and gap.ts_ms == stamps[103]
    assert grid.last_ms == stamps[-1] and same_step(grid.period_ms, parse_period("64Hz"))


def test_a_rate_grid_restarts_on_its_own_phase_after_a_long_gap_and_survives_a_snapshot(tmp_path):
    rules = GridRules(period_ms=parse_period("30Hz"))
    stamps = _stamps(30, 100) + _stamps(30, 100, start=T0 + 3_600_017)  # an hour later, another phase
    placed, grid = _walk(stamps, rules)
    assert [p.action for p in placed].count(Action.RESET) == 1
    assert [p.ts_ms for p in placed[100:]] == stamps[100:]
    save_state(tmp_path / "g.npz", {"grid": grid.to_dict()})
    assert SeriesGrid.from_dict(load_state(tmp_path / "g.npz")["grid"]) == grid


def test_intervals_of_one_whole_period_or_jittered_ones_stay_whole_milliseconds():
    """Only two neighbouring milliseconds averaging to a whole number of hertz make a rate: a 16 ms
    feed, and 100 ms and 7 ms ones whose stamps jitter, keep whole-millisecond periods."""
    rng = np.random.default_rng(3)
    assert infer_period((16,) * 23, 0.1) == 16
    for period, jitter in ((100, 2), (7, 1)):
        for _ in range(20):
            stamps = np.arange(24) * period + rng.integers(-jitter, jitter + 1, 24)
            assert not is_rate(infer_period(tuple(np.diff(stamps).tolist()), 0.1, int(stamps[-1])))


def test_an_inferred_rate_the_records_leave_is_inferred_again():
    """Twenty-four records of a 7 ms feed that shifted by a millisecond once read as 142 Hz (7.042 ms:
    one interval of 8 in 23), a rate that drifts off the feed a millisecond every 24 readings. Once
    the records leave it, the period is inferred again from the next ones: 7 ms, and every later
    record appended. A 64 Hz feed whose clock jumps goes back to its rate the same way."""
    stamps = [T0 + 7 * k + (k >= 12) for k in range(2000)]
    placed, grid = _walk(stamps, GridRules())
    assert grid.period_ms == 7
    assert Counter(p.action for p in placed)[Action.REGRID] == 1
    assert all(p.action is Action.APPEND for p in placed[100:])
    jump = (np.array(_stamps(64, 2000)) + np.where(np.arange(2000) >= 1000, 5, 0)).tolist()
    placed, grid = _walk(jump, GridRules())
    assert same_step(grid.period_ms, parse_period("64Hz")) and all(
        p.action is Action.APPEND for p in placed[1100:]
    )


def test_advancing_many_series_at_once_is_each_series_own_step():
    """A poll of many series on rates of their own phases (and whole-ms, monthly and scheduled ones
    beside them) advances as each would alone."""
    rng = np.random.default_rng(5)
    rates = [Rate(n, d, int(rng.integers(0, n))).period for n, d in [(125, 8), (100, 3), (125, 64)] * 20]
    periods = np.array([*rates, 20, 3_600_000, -1, parse_period("1d Mon-Fri")], dtype=np.int64)
    starts = np.array(
        [advance(T0, p, 0) if is_rate(int(p)) else T0 for p in periods.tolist()], dtype=np.int64
    )
    k = rng.integers(-50, 50, periods.size)
    expected = [shift(int(t), int(p), int(j)) for t, p, j in zip(starts, periods, k, strict=True)]
    assert advance(starts, periods, k).tolist() == expected
