"""Weekly schedules: a daily feed that skips the same weekdays (markets, weekday-only services) and a
feed within business hours or a market's week are recognised, their closures are neither gaps nor
forecast, and the loop, backtest and predict stamp forecasts on open points only."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.data import SeriesFrame
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.backtest import backtest
from adaptcast.streams.calendar import DAY_MS, advance, describe, months, nearest_step, nominal_ms, shift
from adaptcast.streams.cli import main
from adaptcast.streams.config import load_config
from adaptcast.streams.embedded import run_embedded
from adaptcast.streams.events import SeriesReset
from adaptcast.streams.feed import declare_schedules
from adaptcast.streams.grid import Action, GridRules, SeriesGrid, infer_period, parse_period, place
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record
from adaptcast.streams.regular import file_period
from adaptcast.streams.schedule import MIN_WEEKS, MON_FRI, Schedule, business_days, infer_schedule


def business_period(stamps: np.ndarray, tolerance: float = 0.0) -> int | None:
    found = infer_schedule(stamps, DAY_MS, tolerance)
    return None if found is None else found.period


H = 3_600_000
SUN_THU = 0b1001111


def ms(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def day(t: int | np.integer) -> str:
    return str(np.datetime64(int(t), "ms"))[:10]


def weekdays(start: str, n: int, mask: int = MON_FRI, time_of_day: int = 0) -> np.ndarray:
    """``n`` open days of ``mask`` from ``start`` on, at ``time_of_day``, as UTC ms."""
    week = [bool(mask >> i & 1) for i in range(7)]
    days = np.busday_offset(np.datetime64(start, "D"), np.arange(n), roll="forward", weekmask=week)
    return days.astype("datetime64[ms]").astype(np.int64) + time_of_day


def test_open_days_are_counted_at_the_same_time_of_day():
    fri = ms("2024-03-01T16:00")  # a Friday
    assert str(np.datetime64(shift(fri, business_days(), 1), "ms")) == "2024-03-04T16:00:00.000"  # Monday
    assert [day(t) for t in advance(fri, business_days(), np.array([-5, -1, 2, 5]))] == [
        "2024-02-23",
        "2024-02-29",
        "2024-03-05",
        "2024-03-08",
    ]
    thu = ms("2024-03-07")
    assert day(shift(thu, business_days(SUN_THU), 1)) == "2024-03-10"  # Thursday → Sunday
    mixed = advance(np.array([fri] * 3), np.array([H, months(1), business_days()]), 1)
    assert [str(np.datetime64(int(t), "ms"))[:16] for t in mixed] == [
        "2024-03-01T17:00",
        "2024-04-01T16:00",
        "2024-03-04T16:00",
    ]


def test_business_periods_are_parsed_described_and_sized():
    assert parse_period("1bd") == business_days() == business_days(MON_FRI)
    assert describe(business_days()) == "1d Mon-Fri"
    assert describe(business_days(SUN_THU)) == "1d Sun-Thu"
    assert describe(business_days(0b0010101)) == "1d Mon,Wed,Fri"
    assert nominal_ms(business_days()) == 7 * DAY_MS // 5
    for mask in (0, 0b1111111):
        with pytest.raises(ValueError, match="closed some of the week"):
            business_days(mask)
    with pytest.raises(ValueError, match="open days, hours"):
        parse_period("2bd")


def test_nearest_step_counts_open_days_exactly():
    fri = ms("2024-03-01")
    assert nearest_step(fri, ms("2024-03-04"), business_days()) == 1  # Friday → Monday
    assert nearest_step(fri, ms("2024-03-03T23:59:58"), business_days()) == 1  # a jittered Monday
    assert nearest_step(fri, ms("2024-03-29"), business_days()) == 20  # four weeks on
    assert nearest_step(fri, ms("2024-02-29"), business_days()) == -1


def test_which_feeds_are_business_days():
    assert business_period(weekdays("2024-01-01", 16)) == business_days()  # three weeks and a day
    assert business_period(weekdays("2024-01-01", 15)) is None  # under three weeks: no evidence yet
    assert business_period(weekdays("2024-01-07", 30, SUN_THU)) == business_days(SUN_THU)
    assert business_period(weekdays("2024-01-01", 40, time_of_day=21 * H)) == business_days()
    rng = np.random.default_rng(0)
    daily = ms("2024-01-01") + DAY_MS * np.sort(rng.choice(60, 40, replace=False))  # a third missing
    assert business_period(daily) is None
    jumbled = weekdays("2024-01-01", 40) + rng.integers(0, 12, 40) * H  # no one time of day
    assert business_period(jumbled, 0.1) is None


def test_a_weekday_feed_is_inferred_and_its_holidays_are_gaps_of_one():
    stamps = weekdays("2019-01-01", 600, time_of_day=21 * H)
    holidays = stamps[[100, 350, 351]]  # a holiday, then two in a row
    stamps = np.setdiff1d(stamps, holidays).tolist()
    assert infer_period(tuple(np.diff(stamps[:25]).tolist()), 0.1, stamps[24]) == business_days()
    assert infer_period(tuple(np.diff(stamps[:25]).tolist()), 0.1) == DAY_MS  # no timestamps: daily
    rules, grid = GridRules(), GridRules().new_grid("s")
    actions = []
    for ts in stamps:
        placed, grid = place(grid, ts, rules)
        assert placed.ts_ms == ts
        actions.append((placed.action, placed.missing))
    assert grid.period_ms == business_days() and grid.fixed
    later = actions[40:]
    assert set(later) == {(Action.APPEND, 0), (Action.FILL, 1), (Action.FILL, 2)}
    assert later.count((Action.FILL, 1)) == 1 and later.count((Action.FILL, 2)) == 1
    assert sum(a.restarts for a, _ in actions) <= 1  # the provisional daily grid gives way once


def test_a_declared_business_grid_forecasts_open_days_from_the_start():
    model = create_forecaster("naive", lookback=5, horizon=3)
    model.fit(*sliding_windows(np.arange(40.0), 5, 3))
    loop = ForecastLoop(model, ["y"], grid=GridRules(period_ms=parse_period("1bd")))
    forecasts = []
    for k, ts in enumerate(weekdays("2024-01-01", 30).tolist()):
        res = loop.process([Record("s", ts, {"y": float(k)})])
        assert not res.rejected
        forecasts += res.forecasts
    assert forecasts and all(
        np.is_busday(np.array(f.ts_ms, dtype="datetime64[ms]").astype("datetime64[D]")).all()
        for f in forecasts
    )
    assert [day(t) for t in forecasts[-1].ts_ms] == ["2024-02-12", "2024-02-13", "2024-02-14"]  # Fri → Mon
    assert not loop.adaptation.events  # no gaps, no restarts


def test_backtest_train_and_predict_on_a_weekday_file(tmp_path):
    stamps = weekdays("2015-01-01", 700)
    t = np.arange(stamps.size)
    y = 100 + np.cumsum(np.random.default_rng(1).normal(0, 1, stamps.size)) + 3 * (t % 5 == 0)
    path = tmp_path / "close.csv"
    pl.DataFrame({"Date": stamps.astype("datetime64[ms]").astype("datetime64[D]"), "Close": y}).write_csv(
        path
    )
    runner = CliRunner()
    shape = ["--data", str(path), "--target", "Close", "--lookback", "20", "--horizon", "5"]
    out = tmp_path / "bt"
    res = runner.invoke(main, ["backtest", *shape, "--out", str(out)])
    assert res.exit_code == 0, res.output
    (cfg,) = json.loads((out / "summary.json").read_text())["configs"].values()
    # weekends are filled only while the first three weeks show the daily grid to be a business one
    assert cfg["filled_steps"] <= 2 * MIN_WEEKS and cfg["series_resets"] <= 1
    assert cfg["n_forecasts"] > 600
    fc = pl.read_parquet(out / "forecasts.parquet")
    assert fc["ts"].dt.weekday().max() <= 5  # Monday 1 … Friday 5: nothing forecast for a weekend
    inside = fc.filter(pl.col("ts") <= pl.lit(stamps[-1]).cast(pl.Datetime("ms")))
    assert inside.height > 0.99 * fc.height and inside["y"].null_count() == 0  # none lands on a closed day
    model_dir = tmp_path / "model"
    res = runner.invoke(main, ["train", *shape, "--param", "epochs=1", "--out", str(model_dir)])
    assert res.exit_code == 0, res.output
    assert json.loads((model_dir / "manifest.json").read_text())["schema"]["step_schedule"] == "1d Mon-Fri"
    res = runner.invoke(main, ["predict", "--model-dir", str(model_dir), "--data", str(path)])
    assert res.exit_code == 0, res.output
    last = day(int(stamps[-1]))
    predicted = [line.split(",")[1][:10] for line in res.output.strip().splitlines()[1:]]
    expected = [day(t) for t in advance(int(stamps[-1]), business_days(), np.arange(1, 6))]
    assert predicted == expected and all(d > last for d in predicted)


MIN = 60_000
BIZ = Schedule(H, MON_FRI, 9 * H, 9)  # 09:00 … 17:00, Monday to Friday
FX = Schedule(H, SUN_THU, 22 * H, 24)  # Sunday 22:00 to Friday 21:00, back to back


def points(schedule: Schedule, start: str, n: int) -> np.ndarray:
    first = schedule.first_point(ms(start), 0.0)
    assert first is not None
    return schedule.advance(np.full(n, first, dtype=np.int64), np.arange(n))


def clock(t: int | np.integer) -> str:
    return str(np.datetime64(int(t), "ms"))[:16]


def test_schedules_are_carried_as_periods_and_written_as_grid_frequency_takes_them():
    for sched in (BIZ, FX, Schedule(15 * MIN, 0b0111111, 8 * H + 30 * MIN, 14), Schedule(DAY_MS, SUN_THU)):
        assert Schedule.of(sched.period) == sched
        assert parse_period(sched.text()) == sched.period
    assert BIZ.text() == "1h Mon-Fri 09:00-18:00" and FX.text() == "1h Sun-Thu 22:00-22:00"
    assert parse_period("1h Mon-Fri") == Schedule(H, MON_FRI, 0, 24).period  # whole days from midnight
    assert parse_period("1 h mon-fri 09:00 - 18:00") == BIZ.period
    assert nominal_ms(BIZ.period) == round(7 * DAY_MS / 45)
    for text, why in (
        ("1h Mon-Fri 09:00-09:30", "whole number of 1h steps"),
        ("1d Mon-Fri 09:00-10:00", "give the days only"),
        ("1h Mon-Fry", "days are Mon"),
        ("1h Mon-Fri 25:00-26:00", "00:00 to 23:59"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_period(text)


def test_points_skip_the_closed_hours_and_days():
    fri_close = ms("2024-03-01T17:00")
    assert [clock(t) for t in BIZ.advance(np.full(3, fri_close), np.array([-9, 1, 10]))] == [
        "2024-02-29T17:00",
        "2024-03-04T09:00",
        "2024-03-05T09:00",
    ]
    assert clock(FX.advance(np.array([ms("2024-03-01T21:00")]), np.array([1]))[0]) == "2024-03-03T22:00"
    assert clock(FX.advance(np.array([ms("2024-03-03T22:00")]), np.array([-1]))[0]) == "2024-03-01T21:00"
    assert nearest_step(fri_close, ms("2024-03-04T08:59:50"), BIZ.period) == 1
    assert nearest_step(fri_close, ms("2024-03-05T13:00"), BIZ.period) == 14
    assert BIZ.first_point(ms("2024-03-02T12:00"), 0.1) is None  # Saturday: closed
    assert BIZ.first_point(ms("2024-03-04T20:00"), 0.1) is None  # after hours
    assert BIZ.first_point(ms("2024-03-04T09:04"), 0.1) == ms("2024-03-04T09:00")


def test_which_feeds_follow_a_schedule_within_the_day():
    assert infer_schedule(points(BIZ, "2024-01-01T09:00", 4 * 45), H, 0.1) == BIZ
    assert infer_schedule(points(FX, "2024-01-07T22:00", 4 * 120), H, 0.1) == FX
    every_day = Schedule(H, 0b1111111, 9 * H, 9)
    assert infer_schedule(points(every_day, "2024-01-01T09:00", 4 * 63), H, 0.1) == every_day
    assert infer_schedule(points(BIZ, "2024-01-01T09:00", 2 * 45), H, 0.1) is None  # two weeks: too few
    rng = np.random.default_rng(0)
    hourly = ms("2024-01-01") + H * np.arange(24 * 35)
    assert infer_schedule(hourly[rng.random(hourly.size) > 0.1], H, 0.1) is None  # missing at random
    outage = hourly[(hourly < ms("2024-01-10")) | (hourly >= ms("2024-01-13"))]
    assert infer_schedule(outage, H, 0.1) is None  # one long gap is not a week of sessions


def test_a_declared_schedule_places_records_on_its_sessions():
    rules = GridRules(period_ms=parse_period("1h Mon-Fri 09:00-18:00"))
    grid = rules.new_grid("s")
    first, grid = place(grid, ms("2024-03-02T10:00"), rules)  # a Saturday
    assert first.action is Action.OFF_GRID and grid.last_ms is None
    stamps = points(BIZ, "2024-03-04T09:00", 90).tolist()
    del stamps[20]  # a missing hour
    actions = []
    for ts in stamps:
        placed, grid = place(grid, ts, rules)
        actions.append((placed.action, placed.missing))
    assert actions[0] == (Action.START, 0) and actions.count((Action.FILL, 1)) == 1
    assert actions.count((Action.APPEND, 0)) == len(stamps) - 2
    late_night, _ = place(grid, ms("2024-03-15T20:00"), rules)
    assert late_night.action is Action.OFF_GRID


def test_backtest_finds_business_hours_in_a_file_and_says_what_a_worker_needs(tmp_path, caplog):
    stamps = points(BIZ, "2023-01-02T09:00", 45 * 30)
    hour = (stamps // H) % 24
    y = 50 + 10 * np.sin(np.pi * (hour - 9) / 8) + np.random.default_rng(2).normal(0, 1, stamps.size)
    path = tmp_path / "calls.csv"
    pl.DataFrame({"ts": stamps.astype("datetime64[ms]"), "calls": y}).write_csv(path)
    assert file_period(stamps, GridRules()) == BIZ.period
    runner = CliRunner()
    shape = ["--data", str(path), "--target", "calls", "--lookback", "18", "--horizon", "9"]
    out = tmp_path / "bt"
    with caplog.at_level("WARNING", logger="adaptcast.feed"):
        res = runner.invoke(main, ["backtest", *shape, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "grid.frequency: '1h Mon-Fri 09:00-18:00'" in caplog.text
    (cfg,) = json.loads((out / "summary.json").read_text())["configs"].values()
    assert cfg["series_resets"] == 0 and cfg["filled_steps"] == 0
    assert cfg["n_forecasts"] > 0.95 * stamps.size
    fc = pl.read_parquet(out / "forecasts.parquet")
    assert fc["ts"].dt.hour().is_between(9, 17).all() and fc["ts"].dt.weekday().max() <= 5
    model_dir = tmp_path / "model"
    res = runner.invoke(main, ["train", *shape, "--param", "epochs=1", "--out", str(model_dir)])
    assert res.exit_code == 0, res.output
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["schema"]["step_schedule"] == "1h Mon-Fri 09:00-18:00"
    res = runner.invoke(main, ["predict", "--model-dir", str(model_dir), "--data", str(path)])
    assert res.exit_code == 0, res.output
    predicted = [line.split(",")[1][:16] for line in res.output.strip().splitlines()[1:]]
    assert predicted == [clock(t) for t in BIZ.advance(np.full(9, stamps[-1]), np.arange(1, 10))]
    assert predicted[0].endswith("09:00") and predicted[-1].endswith("17:00")  # the next session


def test_only_the_undeclared_series_that_keep_no_one_interval_are_given_a_schedule():
    """A file of several series: business hours found for the one that follows them, none for the
    hourly one, and the one the configuration already declares is left as declared."""
    biz = points(BIZ, "2023-01-02T09:00", 45 * 6)
    hourly = biz[0] + H * np.arange(biz.size)
    rows = [("biz", biz), ("hourly", hourly), ("declared", biz), ("two", biz[:2])]
    frame = pl.DataFrame(
        {
            "ts": np.concatenate([t for _, t in rows]).astype("datetime64[ms]"),
            "series": [name for name, t in rows for _ in t],
            "y": np.zeros(sum(t.size for _, t in rows)),
        }
    ).sort("ts", "series", maintain_order=True)
    cfg = load_config(overrides={"grid": {"series_frequency": {"declared": "2h"}}}, environ={})
    out = declare_schedules(cfg, SeriesFrame("mixed", frame, ["y"], 1))
    assert out.grid.series_frequency == {"declared": "2h", "biz": "1h Mon-Fri 09:00-18:00"}


def test_a_worker_restarting_a_series_at_each_closure_says_to_declare_the_hours(caplog):
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(period_ms=H, max_fill=3))
    with caplog.at_level("INFO", logger="adaptcast.loop"):
        for k, ts in enumerate(points(BIZ, "2024-03-04T09:00", 20).tolist()):
            loop.process([Record("s", ts, {"y": float(k)})])
    assert "restarts at 2024-03-05T09:00:00Z" in caplog.text and "declare its hours" in caplog.text


def test_a_live_series_finds_its_hours_after_three_weeks_of_closures(caplog):
    """Undeclared business hours: the series restarts at each closure (a live series' first records
    span hours), gathers the slots of the week it holds from the first restart on, and three weeks
    later moves onto the schedule once; its snapshot carries what it gathered."""
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(max_fill=3))
    resets: list[SeriesReset] = []
    gathering = None
    with caplog.at_level("INFO", logger="adaptcast.loop"):
        for k, ts in enumerate(points(BIZ, "2024-03-04T09:00", 45 * 5).tolist()):
            out = loop.process([Record("s", ts, {"y": float(k)})])
            resets += [e for e in out.events if isinstance(e, SeriesReset)]
            if k == 45 * 2:
                gathering = loop.states["s"].grid
    assert [r.reason for r in resets[:-1]] == ["gap"] * (len(resets) - 1) and len(resets) > 10
    moved = resets[-1]
    assert moved.reason == "grid_change" and moved.period_ms == BIZ.period
    # the hourly period is inferred from 24 records (Wednesday 17:00), the first restart on it is
    # Thursday 2024-03-07 09:00, and the runs counted at the restarts after it span three weeks by
    # the one on Friday 2024-03-29 (Thursday's run ends at 17:00, three weeks and eight hours on)
    assert clock(moved.ts_ms) == "2024-03-29T09:00"
    assert loop.states["s"].grid.period_ms == BIZ.period
    assert "follow this schedule: declare it (grid.frequency: '1h Mon-Fri 09:00-18:00')" in caplog.text
    assert gathering is not None and gathering.week is not None and gathering.week.points >= 45
    assert SeriesGrid.from_dict(json.loads(json.dumps(gathering.to_dict()))) == gathering
    # a declared plain period is the configuration's word: its closures are not taken for a schedule
    declared = ForecastLoop(model, ["y"], grid=GridRules(period_ms=H, max_fill=3))
    for k, ts in enumerate(points(BIZ, "2024-03-04T09:00", 45 * 5).tolist()):
        declared.process([Record("s", ts, {"y": float(k)})])
    assert declared.states["s"].grid.period_ms == H and declared.states["s"].grid.week is None


def test_week_slots_count_runs_that_wrap_the_week_and_runs_longer_than_it():
    from adaptcast.streams.schedule import WeekSlots

    wed_22 = ms("2024-03-06T22:00")  # slot 166 of the week counted from Thursday 00:00
    week = WeekSlots.start(H, wed_22).close_run(wed_22 + 3 * H, ms("2024-03-07T09:00"))
    assert week.bits == (0b11 << 166) | 0b11 and week.points == 4  # 22:00, 23:00, then 00:00, 01:00
    assert week.run_ms == ms("2024-03-07T09:00") and week.schedule(0.1) is None  # hours, not weeks
    whole = WeekSlots.start(H, wed_22).close_run(wed_22 + 200 * H, wed_22 + 210 * H)
    assert whole.bits == (1 << 168) - 1 and whole.points == 201


def test_run_on_a_business_hours_file_forecasts_as_the_backtest_does(tmp_path):
    stamps = points(BIZ, "2023-01-02T09:00", 45 * 5)
    y = 20 + np.sin(np.arange(stamps.size) / 3)
    path = tmp_path / "calls.csv"
    pl.DataFrame({"ts": stamps.astype("datetime64[ms]"), "calls": y}).write_csv(path)
    overrides = {
        "model": {"kind": "naive", "target": ["calls"], "lookback": 9, "horizon": 3},
        "adaptation": {"policy": "never"},
        "backtest": {"data": str(path)},
        "metrics": {"enabled": False},
    }
    live: list = []
    cfg = load_config(overrides=overrides, environ={})
    line = run_embedded(cfg, sink=live.extend)
    offline = backtest(cfg, report=False, progress=False).forecasts
    assert line.forecasts == offline["issued_at"].n_unique() > 0.85 * stamps.size  # no nightly restarts
    assert all(np.isin(f.ts_ms, BIZ.advance(np.full(3, f.issued_at_ms), np.arange(1, 4))).all() for f in live)


def test_a_daily_feed_missing_days_at_random_is_not_taken_for_business_days():
    """Missing a third of its days, a daily feed can leave one weekday empty for three weeks by chance
    (2 of these 300 draws); its open days are then far from full, so it stays daily."""
    rng = np.random.default_rng(11)
    found = 0
    for _ in range(300):
        days = np.sort(rng.choice(36, 24, replace=False))
        if len({(d + 3) % 7 for d in days}) < 7:  # a weekday never seen: the chance case
            found += 1
            stamps = ms("2024-01-04") + DAY_MS * days  # 2024-01-04 is a Thursday, like the epoch
            assert infer_schedule(stamps, DAY_MS, 0.1) is None
    assert found > 0


def test_business_days_starting_over_the_holidays_are_still_found_from_the_first_records():
    stamps = weekdays("2023-12-11", 30)
    holidays = [ms("2023-12-25"), ms("2023-12-26"), ms("2024-01-01")]
    stamps = np.setdiff1d(stamps, holidays)[:24].tolist()  # what a live series infers from
    assert infer_period(tuple(np.diff(stamps).tolist()), 0.1, stamps[-1]) == business_days()
