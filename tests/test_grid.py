"""The time grid on its own: periods, inference, snapping, gaps, rejections and grid changes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from adaptcast.drift.serialize import load_state, save_state
from adaptcast.streams.config import ConfigError, load_config
from adaptcast.streams.grid import (
    Action,
    Fill,
    GridRules,
    SeriesGrid,
    fill_rows,
    infer_period,
    parse_period,
    place,
    round_period,
)

H, MIN = 3_600_000, 60_000


def _walk(stamps: list[int], rules: GridRules, grid: SeriesGrid | None = None) -> tuple[list, SeriesGrid]:
    """Every placement of ``stamps`` in order, and the grid after the last."""
    grid = grid or rules.new_grid("s")
    out = []
    for ts in stamps:
        placed, grid = place(grid, ts, rules)
        out.append(placed)
    return out, grid


@pytest.mark.parametrize(
    ("text", "ms"),
    [("1h", H), ("15min", 15 * MIN), ("30s", 30_000), ("1d", 86_400_000), ("250ms", 250), ("1.5h", 90 * MIN)],
)
def test_parse_period(text, ms):
    assert parse_period(text) == ms


@pytest.mark.parametrize("text", ["hourly", "0s", "1 week", "-1h", ""])
def test_parse_period_refuses_what_it_cannot_read(text):
    with pytest.raises(ValueError, match="a unit"):
        parse_period(text)


def test_round_period_takes_the_nearest_whole_unit_only_when_it_is_very_close():
    assert round_period(H + 4) == H
    assert round_period(15 * MIN - 3_000) == 15 * MIN
    assert round_period(90 * MIN) == 90 * MIN  # not 2 h
    assert round_period(55 * MIN) == 55 * MIN  # not 1 h
    assert round_period(1234) == 1234


def test_infer_period_is_the_most_common_interval_and_the_shorter_on_a_tie():
    assert infer_period((H, H, 2 * H, H, 7 * H), 0.1) == H
    assert infer_period((2 * H, H), 0.1) == H
    assert infer_period((2 * H, H, 2 * H), 0.1) == H  # 1 h is half as common as 2 h, and divides it
    assert infer_period((2 * H, H, 2 * H, 2 * H, 2 * H), 0.1) == 2 * H
    assert infer_period((2 * H, 3 * H), 0.1) == 2 * H  # 2 h does not divide 3 h
    assert infer_period((H, H, H, H, 30 * MIN), 0.1) == H  # a stray's half interval is rare
    assert infer_period((H + 3_000, H - 2_000, H + 1_000), 0.1) == H  # jitter: one cluster, whole hour


def test_regular_hours_append_and_are_inferred_once():
    rules = GridRules(infer_records=5)
    placed, grid = _walk([k * H for k in range(8)], rules)
    assert [p.action for p in placed] == [Action.START] + [Action.APPEND] * 7
    assert [p.ts_ms for p in placed] == [k * H for k in range(8)]
    assert [k for k, p in enumerate(placed) if p.inferred] == [4]
    assert grid.fixed and grid.period_ms == H and grid.intervals == ()


def test_gaps_are_filled_up_to_max_fill_and_reset_beyond_it():
    rules = GridRules(max_fill=3, period_ms=H)
    placed, grid = _walk([0, H, 5 * H, 10 * H, 11 * H], rules)
    assert [(p.action, p.missing) for p in placed] == [
        (Action.START, 0),
        (Action.APPEND, 0),
        (Action.FILL, 3),
        (Action.RESET, 4),
        (Action.APPEND, 0),
    ]
    assert grid.last_ms == 11 * H and grid.period_ms == H  # a reset keeps the grid


def test_jitter_snaps_to_the_grid_of_the_first_record():
    rules = GridRules(tolerance=0.1)
    jitter = [0, 4_000, -3_000, 2_500, -5_000, 1_000]
    placed, _ = _walk([7_000 + k * H + j for k, j in enumerate(jitter)], rules)
    assert [p.action for p in placed] == [Action.START] + [Action.APPEND] * 5
    assert [p.ts_ms for p in placed] == [7_000 + k * H for k in range(6)]


def test_duplicate_late_and_off_grid_are_rejected_without_moving_the_grid():
    rules = GridRules(period_ms=H, tolerance=0.1)
    _, grid = _walk([0, H], rules)
    for ts, action in [(H, Action.DUPLICATE), (H + 2 * MIN, Action.DUPLICATE), (0, Action.LATE)]:
        p, after = place(grid, ts, rules)
        assert p.action is action and after == grid
    p, after = place(grid, H + 30 * MIN, rules)
    assert p.action is Action.OFF_GRID and after.last_ms == H and after.seen_ms == H + 30 * MIN
    p, _ = place(after, H + 20 * MIN, rules)  # older than a record already seen
    assert p.action is Action.LATE
    p, _ = place(after, 2 * H, rules)
    assert (p.action, p.ts_ms) == (Action.APPEND, 2 * H)


def test_declared_period_is_fixed_from_the_first_record():
    placed, grid = _walk([0, 2 * H], GridRules(period_ms=H, max_fill=2))
    assert [(p.action, p.missing) for p in placed] == [(Action.START, 0), (Action.FILL, 1)]
    assert grid.fixed and grid.period_ms == H


def test_per_series_period_overrides_the_common_one():
    rules = GridRules(period_ms=H, series_period_ms={"fast": 15 * MIN})
    assert rules.new_grid("fast").period_ms == 15 * MIN and rules.new_grid("slow").period_ms == H


def test_a_provisional_period_is_replaced_when_the_most_common_interval_changes():
    """Record 1 h is missing: the first interval says 2 h until 1 h intervals outnumber it."""
    rules = GridRules(infer_records=6)
    placed, grid = _walk([0, 2 * H, 3 * H, 4 * H, 5 * H, 6 * H], rules)
    assert [p.action for p in placed] == [
        Action.START,
        Action.APPEND,  # provisional period: 2 h
        Action.REGRID,  # 2 h and 1 h tie: the shorter wins, the series restarts on it
        Action.APPEND,
        Action.APPEND,
        Action.APPEND,
    ]
    assert placed[-1].inferred and grid.period_ms == H and grid.fixed


def test_a_record_off_the_provisional_grid_moves_the_grid_rather_than_being_refused():
    placed, grid = _walk([0, 2 * H, 5 * H], GridRules())  # 2 h and 3 h tie: 2 h, and 5 h is off it
    assert [p.action for p in placed] == [Action.START, Action.APPEND, Action.REGRID]
    assert (grid.period_ms, grid.last_ms) == (2 * H, 5 * H)
    p, _ = place(grid, 6 * H, GridRules())  # now 1 h is as common as 2 h, and shorter
    assert p.action is Action.REGRID


def test_a_long_provisional_period_does_not_swallow_the_next_hour():
    placed, grid = _walk([38 * H, 48 * H, 49 * H], GridRules())  # 10 h, then 1 h: the shorter wins
    assert [p.action for p in placed] == [Action.START, Action.APPEND, Action.REGRID]
    assert (grid.period_ms, grid.last_ms) == (H, 49 * H)


def test_a_jittered_repeat_while_inferring_is_a_duplicate_and_teaches_nothing():
    _, grid = _walk([0, H, 2 * H, 3 * H], GridRules())
    p, after = place(grid, 3 * H + 5_000, GridRules())
    assert p.action is Action.DUPLICATE and after == grid


def test_switch_to_quarter_hours_moves_the_series_onto_a_new_grid():
    rules = GridRules(period_ms=H, change_records=4)
    hourly = [k * H for k in range(5)]
    quarters = [4 * H + k * 15 * MIN for k in range(1, 9)]
    placed, grid = _walk(hourly + quarters, rules)
    tail = [p.action for p in placed[5:]]
    # :15, :30, :45 are off the hourly grid, 5:00 is on it; the 4th agreeing record regrids
    assert tail == [Action.OFF_GRID] * 3 + [Action.REGRID] + [Action.APPEND] * 4
    assert grid.period_ms == 15 * MIN and placed[8].ts_ms == 5 * H


def test_a_slower_feed_stays_on_its_grid_with_gaps_between_its_records():
    rules = GridRules(period_ms=H, change_records=3, max_fill=2)
    placed, grid = _walk([0, H, 3 * H, 5 * H, 7 * H, 9 * H], rules)
    assert [(p.action, p.missing) for p in placed[2:]] == [(Action.FILL, 1)] * 4
    assert grid.period_ms == H


def test_phase_shift_moves_the_grid_after_enough_agreeing_records():
    rules = GridRules(period_ms=H, change_records=3)
    stamps = [0, H, 2 * H, 3 * H + 30 * MIN, 4 * H + 30 * MIN, 5 * H + 30 * MIN, 6 * H + 30 * MIN]
    placed, grid = _walk(stamps, rules)
    # 3:30 is 1.5 h after 2:00; 4:30, 5:30 and 6:30 agree on 1 h off the old phase
    assert [p.action for p in placed[3:]] == [Action.OFF_GRID] * 3 + [Action.REGRID]
    assert grid.period_ms == H and grid.last_ms == 6 * H + 30 * MIN


@pytest.mark.parametrize("declared", [True, False])
def test_an_off_phase_record_after_a_gap_too_long_to_fill_restarts_the_grid_on_its_phase(declared):
    rules = GridRules(period_ms=H if declared else None, max_fill=3, infer_records=3)
    stamps = [0, H, 2 * H, 3 * H, 7 * H + 30 * MIN, 8 * H + 30 * MIN]
    placed, grid = _walk(stamps, rules)
    assert [(p.action, p.missing) for p in placed[4:]] == [(Action.RESET, 4), (Action.APPEND, 0)]
    assert placed[4].ts_ms == 7 * H + 30 * MIN and grid.period_ms == H
    # a gap short enough to fill keeps the grid: the same record 1.5 h after the last is off it
    placed, _ = _walk([0, H, 2 * H, 3 * H, 4 * H + 30 * MIN], rules)
    assert placed[-1].action is Action.OFF_GRID


def test_isolated_gaps_and_a_stray_record_do_not_change_the_grid():
    """A stray between two grid points makes two intervals agree (to it and from it): fewer than 3."""
    rules = GridRules(period_ms=H, change_records=3, max_fill=12)
    stamps = [0, H, 8 * H, 9 * H, 9 * H + 30 * MIN, 10 * H, 11 * H, 14 * H, 15 * H]
    placed, grid = _walk(stamps, rules)
    assert Action.REGRID not in [p.action for p in placed]
    assert grid.period_ms == H and grid.last_ms == 15 * H


def test_grid_state_survives_a_pickle_free_snapshot(tmp_path):
    _, grid = _walk([0, H, 2 * H + 30 * MIN], GridRules(infer_records=10))
    save_state(tmp_path / "g.npz", {"grid": grid.to_dict()})
    assert SeriesGrid.from_dict(load_state(tmp_path / "g.npz")["grid"]) == grid


def test_fill_rows_interpolate_or_repeat():
    before, after = np.array([0.0, 10.0], np.float32), np.array([4.0, 6.0], np.float32)
    lin = fill_rows(before, after, 3, Fill.LINEAR)
    assert lin.dtype == np.float32 and lin.tolist() == [[1.0, 9.0], [2.0, 8.0], [3.0, 7.0]]
    assert fill_rows(before, after, 2, Fill.LAST).tolist() == [[0.0, 10.0], [0.0, 10.0]]


def test_config_section_gives_the_rules_and_names_a_bad_period():
    cfg = load_config(
        overrides={"grid": {"series_frequency": {"fast": "15min"}, "fill": "last"}},
        environ={"ADAPTCAST__GRID__FREQUENCY": "1h"},
    )
    rules = cfg.grid.rules(lookback=48)
    assert (rules.period_ms, rules.series_period_ms, rules.fill) == (H, {"fast": 15 * MIN}, Fill.LAST)
    assert rules.max_fill == 12  # unset: a quarter of the lookback
    with pytest.raises(ConfigError, match=r"grid\.series_frequency.*hourly"):
        load_config(overrides={"grid": {"series_frequency": {"s": "hourly"}}}, environ={})


def test_a_jittered_feed_within_the_tolerance_never_moves_its_declared_grid():
    """Records ±25 % of a minute off its grid points: their intervals agree by chance (a run at the
    grid's own period), but they all fall on the grid, so nothing shifts."""
    rng = np.random.default_rng(0)
    stamps = [int(k * MIN + rng.uniform(-0.25, 0.25) * MIN) for k in range(3000)]
    placed, grid = _walk(stamps, GridRules(period_ms=MIN, tolerance=0.3))
    actions = Counter(p.action for p in placed)
    assert actions == {Action.START: 1, Action.APPEND: len(stamps) - 1}  # the first one too: on 0:00
    assert grid.period_ms == MIN and grid.last_ms == 2999 * MIN


@pytest.mark.parametrize(
    ("period", "first", "start"),
    [
        (H, 7_000, 0),  # a jittered first record: the grid is on whole hours
        (15 * MIN, 15 * MIN - 20_000, 15 * MIN),
        (H, 30 * MIN, 30 * MIN),  # a feed on its own phase keeps it
        (24 * H, 23 * H, 23 * H),  # a daily feed at local midnight is not moved to 0:00 UTC
        (7 * MIN, 1_000, 1_000),  # a period that does not divide a day has no whole multiples to keep
    ],
)
def test_a_declared_grid_starts_on_a_whole_multiple_of_its_period_when_the_first_record_is_near(
    period, first, start
):
    placed, grid = _walk([first], GridRules(period_ms=period, tolerance=0.1))
    assert placed[0].action is Action.START and placed[0].ts_ms == grid.last_ms == start
