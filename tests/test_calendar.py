"""Calendar-month grids: month arithmetic, recognising monthly/quarterly/yearly feeds, and the loop,
backtest and predict on them (no restarts, forecasts stamped on the feed's own days)."""

from __future__ import annotations

import json
import logging

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.calendar import (
    DAY_MS,
    advance,
    calendar_period,
    describe,
    month_span_days,
    months,
    nearest_step,
    shift,
)
from adaptcast.streams.cli import main
from adaptcast.streams.grid import Action, GridRules, infer_period, parse_period, place
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record

H = 3_600_000


def ms(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def day(t: int | np.integer) -> str:
    return str(np.datetime64(int(t), "ms"))[:10]


def test_advance_keeps_the_day_the_time_and_month_ends():
    starts = advance(ms("2024-01-01T06:30"), months(1), np.arange(4))
    assert [str(np.datetime64(int(t), "ms")) for t in starts] == [
        "2024-01-01T06:30:00.000",
        "2024-02-01T06:30:00.000",
        "2024-03-01T06:30:00.000",
        "2024-04-01T06:30:00.000",
    ]
    ends = advance(ms("2024-01-31"), months(1), np.arange(1, 5))
    assert [day(t) for t in ends] == ["2024-02-29", "2024-03-31", "2024-04-30", "2024-05-31"]
    assert day(shift(ms("2023-02-28"), months(1), 1)) == "2023-03-31"  # a month's last day stays last
    assert day(shift(ms("2023-01-30"), months(1), 1)) == "2023-02-28"  # a day February lacks: its last
    assert [day(t) for t in advance(ms("2024-01-15"), months(3), np.array([-2, -1, 1]))] == [
        "2023-07-15",
        "2023-10-15",
        "2024-04-15",
    ]
    assert day(shift(ms("1749-01-01"), months(12), 2)) == "1751-01-01"  # before 1970 too
    mixed = advance(np.array([ms("2024-01-01")] * 2), np.array([H, months(1)]), 2)
    assert mixed.tolist() == [ms("2024-01-01") + 2 * H, ms("2024-03-01")]
    assert shift(5, 10, 3) == 35 and isinstance(shift(ms("2024-01-01"), months(1), 1), int)


def test_month_spans_and_what_counts_as_calendar_months():
    assert [month_span_days(m) for m in (1, 3, 12)] == [(28, 31), (89, 92), (365, 366)]

    def intervals(start: str, period: int, n: int = 24) -> np.ndarray:
        return np.diff(advance(ms(start), period, np.arange(n + 1)))

    assert calendar_period(intervals("1749-01-01", months(1))) == months(1)
    assert calendar_period(intervals("2001-03-31", months(1))) == months(1)  # month ends
    assert calendar_period(intervals("2001-01-01", months(3))) == months(3)
    assert calendar_period(intervals("1990-07-01", months(12))) == months(12)
    assert calendar_period([30 * DAY_MS] * 10) is None  # a fixed 30 days is not months
    assert calendar_period([DAY_MS, 3 * DAY_MS, DAY_MS, DAY_MS]) is None  # business days
    assert calendar_period([31 * DAY_MS, 30 * DAY_MS + H]) is None  # not whole days
    assert calendar_period([31 * DAY_MS]) is None  # one interval says nothing about variation


def test_calendar_periods_are_parsed_and_described():
    assert parse_period("1mo") == months(1) == -1
    assert parse_period("3mo") == months(3) and parse_period("1y") == months(12)
    assert (
        describe(months(1)) == "1 month"
        and describe(months(3)) == "3 months"
        and describe(H) == "1 h"
        and describe(90 * 60_000) == "90 min"
        and describe(1500) == "1500 ms"
    )
    for text in ("0mo", "1.5mo", "-1mo"):
        with pytest.raises(ValueError, match="whole mo, y"):
            parse_period(text)
    with pytest.raises(ValueError, match="at least one month"):
        months(0)


def test_nearest_step_on_a_calendar_grid():
    start = ms("2024-01-31")
    assert nearest_step(start, ms("2024-03-30"), months(1)) == 2  # 31 March is one day away
    assert nearest_step(start, ms("2024-02-27"), months(1)) == 1
    assert nearest_step(ms("2024-01-01"), ms("2024-07-02"), months(3)) == 2
    assert nearest_step(0, 7 * H + 1, H) == 7


@pytest.mark.parametrize(
    "start, period",
    [
        ("1900-01-01", months(1)),
        ("2003-03-31", months(1)),
        ("2000-01-01", months(3)),
        ("1950-06-30", months(12)),
    ],
)
def test_a_calendar_feed_is_inferred_and_never_leaves_its_grid(start, period):
    stamps = advance(ms(start), period, np.arange(400)).tolist()
    assert infer_period(tuple(np.diff(stamps[:25]).tolist()), 0.1) == period
    rules, grid = GridRules(), GridRules().new_grid("s")
    actions = []
    for ts in stamps:
        placed, grid = place(grid, ts, rules)
        actions.append(placed.action)
        assert placed.action.rejected or placed.ts_ms == ts  # every record on its own day
    assert grid.period_ms == period and grid.fixed
    # the provisional period of the first interval (a whole number of days) gives way once
    assert actions[60:] == [Action.APPEND] * 340
    assert sum(a.restarts for a in actions) <= 1


def test_last_business_days_of_the_months_are_a_monthly_grid():
    days = np.arange(np.datetime64("1999-01-01"), np.datetime64("2011-01-01"))
    weekdays = days[np.is_busday(days)]
    month = weekdays.astype("datetime64[M]")
    last = weekdays[np.r_[month[1:] != month[:-1], True]]  # the last weekday of each month
    stamps = last.astype("datetime64[ms]").astype(np.int64).tolist()
    assert calendar_period(np.diff(stamps[:25])) is None  # 28–33 days: outside a month's span ...
    assert infer_period(tuple(np.diff(stamps[:25]).tolist()), 0.1) == months(1)  # ... not its tolerance
    rules, grid = GridRules(), GridRules().new_grid("s")
    actions = []
    for ts in stamps:
        placed, grid = place(grid, ts, rules)
        actions.append(placed.action)
    assert grid.period_ms == months(1) and sum(a.restarts for a in actions) <= 2
    assert actions[30:] == [Action.APPEND] * (len(stamps) - 30)


def test_a_missing_month_is_a_gap_of_one_and_a_declared_monthly_grid_fills_it():
    rules = GridRules(period_ms=parse_period("1mo"))
    grid = rules.new_grid("s")
    placed = []
    for text in ("2024-01-31", "2024-02-29", "2024-04-30", "2024-05-31"):
        p, grid = place(grid, ms(text), rules)
        placed.append((p.action, p.missing))
    assert placed == [(Action.START, 0), (Action.APPEND, 0), (Action.FILL, 1), (Action.APPEND, 0)]
    off, _ = place(grid, ms("2024-06-15"), rules)  # half a month off the grid
    assert off.action is Action.OFF_GRID


def test_the_loop_forecasts_a_monthly_feed_on_its_own_days(caplog):
    model = create_forecaster("naive", lookback=6, horizon=3)
    model.fit(*sliding_windows(np.arange(40.0), 6, 3))
    loop = ForecastLoop(model, ["y"], grid=GridRules())
    stamps = advance(ms("2020-01-31"), months(1), np.arange(48)).tolist()
    forecasts = []
    with caplog.at_level(logging.INFO, logger="adaptcast.loop"):
        for k, ts in enumerate(stamps):
            res = loop.process([Record("s", ts, {"y": float(k % 7)})])
            forecasts += res.forecasts
            assert not res.rejected
    assert "period of 1 month inferred" in caplog.text
    assert not [
        r for r in caplog.records if r.levelno >= logging.WARNING
    ]  # the provisional restart is routine
    assert len(forecasts) >= 48 - 6 - 3
    last = forecasts[-1]
    assert [day(t) for t in last.ts_ms] == ["2024-01-31", "2024-02-29", "2024-03-31"]
    assert len(loop.adaptation.events) <= 1  # at most the provisional grid's one restart, at the start


def test_backtest_and_predict_on_a_monthly_file(tmp_path):
    n = 300
    dates = advance(ms("1950-01-01"), months(1), np.arange(n)).astype("datetime64[ms]")
    t = np.arange(n)
    y = 50 + 20 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 2, n)
    path = tmp_path / "monthly.csv"
    pl.DataFrame({"date": dates, "y": y}).write_csv(path)
    runner = CliRunner()
    shape = ["--data", str(path), "--target", "y", "--lookback", "24", "--horizon", "6"]
    out = tmp_path / "bt"
    res = runner.invoke(main, ["backtest", *shape, "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads((out / "summary.json").read_text())
    (cfg,) = summary["configs"].values()
    assert cfg["n_forecasts"] > 200 and cfg["series_resets"] <= 1
    fc = pl.read_parquet(out / "forecasts.parquet")
    assert (fc["ts"].dt.day() == 1).all() and (fc["issued_at"].dt.day() == 1).all()
    assert fc["y"].null_count() < fc.height  # the forecasts met their truths
    model_dir = tmp_path / "model"
    res = runner.invoke(main, ["train", *shape, "--param", "epochs=1", "--out", str(model_dir)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["predict", "--model-dir", str(model_dir), "--data", str(path)])
    assert res.exit_code == 0, res.output
    stamps = [line.split(",")[1][:10] for line in res.output.strip().splitlines()[1:]]
    assert stamps == ["1975-01-01", "1975-02-01", "1975-03-01", "1975-04-01", "1975-05-01", "1975-06-01"]
