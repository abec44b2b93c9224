"""Business-day grids: a daily feed that skips the same weekdays (markets, weekday-only services) is
recognised, its closed days are neither gaps nor forecast, and the loop, backtest and predict
stamp forecasts on open days only."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.calendar import (
    DAY_MS,
    MIN_CLOSED_WEEKS,
    MON_FRI,
    advance,
    business_days,
    business_period,
    describe,
    months,
    nearest_step,
    nominal_ms,
    shift,
)
from adaptcast.streams.cli import main
from adaptcast.streams.grid import Action, GridRules, infer_period, parse_period, place
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record

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
    assert describe(business_days()) == "1 business day (Mon–Fri)"
    assert describe(business_days(SUN_THU)) == "1 business day (Sun–Thu)"
    assert describe(business_days(0b0010101)) == "1 business day (Mon, Wed, Fri)"
    assert nominal_ms(business_days()) == 7 * DAY_MS // 5
    for mask in (0, 0b1111111):
        with pytest.raises(ValueError, match="business week"):
            business_days(mask)
    with pytest.raises(ValueError, match="1bd"):
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
    assert cfg["filled_steps"] <= 2 * MIN_CLOSED_WEEKS and cfg["series_resets"] <= 1
    assert cfg["n_forecasts"] > 600
    fc = pl.read_parquet(out / "forecasts.parquet")
    assert fc["ts"].dt.weekday().max() <= 5  # Monday 1 … Friday 5: nothing forecast for a weekend
    inside = fc.filter(pl.col("ts") <= pl.lit(stamps[-1]).cast(pl.Datetime("ms")))
    assert inside.height > 0.99 * fc.height and inside["y"].null_count() == 0  # none lands on a closed day
    model_dir = tmp_path / "model"
    res = runner.invoke(main, ["train", *shape, "--param", "epochs=1", "--out", str(model_dir)])
    assert res.exit_code == 0, res.output
    assert json.loads((model_dir / "manifest.json").read_text())["schema"]["step_weekmask"] == MON_FRI
    res = runner.invoke(main, ["predict", "--model-dir", str(model_dir), "--data", str(path)])
    assert res.exit_code == 0, res.output
    last = day(int(stamps[-1]))
    predicted = [line.split(",")[1][:10] for line in res.output.strip().splitlines()[1:]]
    expected = [day(t) for t in advance(int(stamps[-1]), business_days(), np.arange(1, 6))]
    assert predicted == expected and all(d > last for d in predicted)
