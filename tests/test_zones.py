"""Schedules on a time zone's clock: hours that keep their wall-clock time through daylight saving."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams import zones
from adaptcast.streams.calendar import describe, nearest_step
from adaptcast.streams.grid import GridRules, SeriesGrid, parse_period
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record
from adaptcast.streams.regular import file_period, on_grid
from adaptcast.streams.schedule import MON_FRI, SCHEDULED, Schedule, is_scheduled
from adaptcast.streams.zones import MAX_ZONES, from_wall, to_wall, utc_offsets, zones_that_change

H = 3_600_000
BERLIN = Schedule(H, MON_FRI, 9 * H, 8, "Europe/Berlin")  # 09:00 … 16:00 on Berlin's clock
NYSE = Schedule(30 * 60_000, MON_FRI, 9 * H + 30 * 60_000, 13, "America/New_York")  # 09:30 … 15:30


def ms(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def utc(t: int | np.integer) -> str:
    return str(np.datetime64(int(t), "ms"))[:16]


def session_stamps(schedule: Schedule, start: str, end: str) -> np.ndarray:
    """Every point of ``schedule`` from ``start`` to ``end`` (UTC), as a feed on it would send them."""
    first = schedule.first_point(ms(start), 0.0)
    assert first is not None
    n = schedule.nearest(first, ms(end)) + 1
    return schedule.advance(np.full(n, first, dtype=np.int64), np.arange(n))


def test_offsets_and_wall_clock_follow_the_zone_through_its_changes():
    spring, autumn = ms("2024-03-31T01:00"), ms("2024-10-27T01:00")  # the EU's changes, in UTC
    t = np.array([spring - 1000, spring, autumn - 1000, autumn])
    assert (utc_offsets("Europe/Berlin", t) // H).tolist() == [1, 2, 2, 1]
    assert (utc_offsets("America/New_York", t) // H).tolist() == [-4, -4, -4, -4]  # it changes later
    back = from_wall("Europe/Berlin", to_wall("Europe/Berlin", t))
    assert (back[:3] == t[:3]).all() and back[3] == autumn - H  # 02:00 came twice: its first instant
    skipped, repeated = ms("2024-03-31T02:30"), ms("2024-10-27T02:30")  # on Berlin's clock
    assert utc(from_wall("Europe/Berlin", np.array([skipped]))[0]) == "2024-03-31T01:30"
    assert utc(from_wall("Europe/Berlin", np.array([repeated]))[0]) == "2024-10-27T00:30"  # the first
    assert zones_that_change(ms("2024-01-01"), ms("2024-12-31"))[:2] == ["Europe/Berlin", "Europe/London"]


def test_a_zoned_schedule_keeps_its_hours_on_the_local_clock():
    assert parse_period("1h Mon-Fri 09:00-17:00 Europe/Berlin") == BERLIN.period
    assert Schedule.of(BERLIN.period) == BERLIN and parse_period(BERLIN.text()) == BERLIN.period
    assert describe(BERLIN.period) == "1h Mon-Fri 09:00-17:00 Europe/Berlin"
    assert parse_period("30min Mon-Fri 09:30-16:00 America/New_York") == NYSE.period
    assert parse_period("1h Mon-Fri 09:00-17:00 UTC") == Schedule(H, MON_FRI, 9 * H, 8).period
    # Friday's last hour before the change (CET, UTC+1), then Monday's first after it (CEST, UTC+2)
    fri = ms("2024-03-29T15:00")
    assert [utc(t) for t in BERLIN.advance(np.full(2, fri), np.array([1, 9]))] == [
        "2024-04-01T07:00",
        "2024-04-02T07:00",
    ]
    assert nearest_step(fri, ms("2024-04-01T07:00"), BERLIN.period) == 1
    assert BERLIN.first_point(ms("2024-07-01T06:55"), 0.1) == ms("2024-07-01T07:00")  # 09:00 in summer
    assert BERLIN.first_point(ms("2024-07-01T15:00"), 0.1) is None  # 17:00 in Berlin: closed
    stamps = session_stamps(NYSE, "2024-03-01T14:30", "2024-03-15T21:00")
    opens = {utc(t)[:10]: utc(t)[11:] for t in stamps[::-1]}  # each day's first point
    assert opens["2024-03-08"] == "14:30" and opens["2024-03-11"] == "13:30"  # the US changed on the 10th
    assert len(stamps) == 11 * 13


def test_a_zoned_period_fits_an_int64_and_names_the_zone_to_other_processes(monkeypatch):
    widest = Schedule(1000, 0b0111111, 86_399_000, 1, "Pacific/Auckland")
    assert -(2**63) < widest.period <= -SCHEDULED
    grid = SeriesGrid(BERLIN.period, ms("2024-03-29T15:00"), ms("2024-03-29T15:00"), True)
    written = json.loads(json.dumps(grid.to_dict()))
    assert written["period_ms"] == "1h Mon-Fri 09:00-17:00 Europe/Berlin"
    assert SeriesGrid.from_dict(written) == grid
    plain = SeriesGrid(H, ms("2024-03-29T15:00"), ms("2024-03-29T15:00"), True)
    assert SeriesGrid.from_dict(json.loads(json.dumps(plain.to_dict()))) == plain
    with pytest.raises(
        ValueError, match=r"unknown time zone 'Europe/Berln' \(did you mean Europe/Berlin\?\).*IANA"
    ):
        parse_period("1h Mon-Fri 09:00-17:00 Europe/Berln")
    with pytest.raises(ValueError, match=r"did you mean America/New_York\?"):
        parse_period("1h Mon-Fri 09:00-17:00 america/new_york")
    monkeypatch.setattr(zones, "_names", ["UTC", *(f"Etc/GMT-{i % 14}" for i in range(MAX_ZONES))])
    with pytest.raises(ValueError, match="at most 30 time zones"):
        parse_period("1h Mon-Fri 09:00-17:00 Asia/Tokyo")


def test_a_file_stamped_in_utc_is_found_to_keep_local_hours_through_the_changes():
    stamps = session_stamps(BERLIN, "2024-01-01T08:00", "2024-12-31T16:00")
    assert file_period(stamps, GridRules()) == BERLIN.period
    rows = on_grid(stamps, np.ones((stamps.size, 1)), GridRules(max_fill=3))
    assert rows.left_out == {} and rows.filled == 0 and rows.segments == 1
    # the same feed held to UTC hours drops an hour and makes one up every summer day
    held = on_grid(
        stamps, np.ones((stamps.size, 1)), GridRules(period_ms=parse_period("1h Mon-Fri 08:00-16:00"))
    )
    assert held.left_out.get("off_grid", 0) > 100 and held.filled > 100
    assert (
        file_period(session_stamps(NYSE, "2024-01-02T14:30", "2024-12-31T21:00"), GridRules()) == NYSE.period
    )
    # first weeks that straddle the spring change show both hours in UTC; with two holidays in them
    # too few of those hours are full for a UTC schedule at all
    straddle = session_stamps(BERLIN, "2024-03-18T08:00", "2024-12-31T16:00")
    assert file_period(straddle, GridRules()) == BERLIN.period
    days = straddle // (24 * H)
    holidays = straddle[~np.isin(days, [ms("2024-03-21") // (24 * H), ms("2024-04-09") // (24 * H)])]
    assert file_period(holidays, GridRules()) == BERLIN.period
    # a feed that keeps UTC hours all year stays on UTC
    utc_hours = Schedule(H, MON_FRI, 8 * H, 8)
    assert file_period(session_stamps(utc_hours, "2024-01-01T08:00", "2024-12-31T16:00"), GridRules()) == (
        utc_hours.period
    )


def test_a_worker_with_declared_local_hours_forecasts_across_a_clock_change():
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(period_ms=BERLIN.period, max_fill=2))
    stamps = session_stamps(BERLIN, "2024-03-25T08:00", "2024-04-05T16:00")
    forecast_at: list[int] = []
    for k, ts in enumerate(stamps.tolist()):
        out = loop.process([Record("s", ts, {"y": float(k)})])
        forecast_at += [t for f in out.forecasts for t in f.ts_ms]
        assert not out.rejected, (utc(ts), out.rejected)
    summer = [utc(t)[11:] for t in forecast_at if t >= ms("2024-04-01")]
    assert summer and min(summer) == "07:00" and max(summer) == "14:00"  # 09:00 … 16:00 in Berlin


def test_backtest_train_and_predict_on_local_hours_stamped_in_utc(tmp_path, caplog):
    from click.testing import CliRunner

    from adaptcast.streams.cli import main

    stamps = session_stamps(BERLIN, "2024-01-01T08:00", "2024-06-28T14:00")
    wall_hour = (to_wall("Europe/Berlin", stamps) // H) % 24
    y = 50 + 10 * np.sin(np.pi * (wall_hour - 9) / 8) + np.random.default_rng(2).normal(0, 1, stamps.size)
    path = tmp_path / "calls.csv"
    pl.DataFrame({"ts": stamps.astype("datetime64[ms]"), "calls": y}).write_csv(path)
    runner = CliRunner()
    shape = ["--data", str(path), "--target", "calls", "--lookback", "16", "--horizon", "8"]
    with caplog.at_level("WARNING", logger="adaptcast.feed"):
        res = runner.invoke(main, ["backtest", *shape, "--out", str(tmp_path / "bt")])
    assert res.exit_code == 0, res.output
    assert "grid.frequency: '1h Mon-Fri 09:00-17:00 Europe/Berlin'" in caplog.text
    (cfg,) = json.loads((tmp_path / "bt" / "summary.json").read_text())["configs"].values()
    assert cfg["records_rejected"] == {} and cfg["filled_steps"] == 0 and cfg["series_resets"] == 0
    # the same hours declared in UTC leave the summer's first hour out, and the run says what to set
    with caplog.at_level("WARNING", logger="adaptcast.backtest"):
        res = runner.invoke(
            main,
            ["backtest", *shape, "--out", str(tmp_path / "utc")],
            env={"ADAPTCAST__GRID__FREQUENCY": "1h Mon-Fri 08:00-16:00"},
        )
    assert res.exit_code == 0, res.output
    assert "their time zone in grid.frequency" in caplog.text
    res = runner.invoke(main, ["train", *shape, "--param", "epochs=1", "--out", str(tmp_path / "model")])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["schema"]["step_schedule"] == "1h Mon-Fri 09:00-17:00 Europe/Berlin"
    res = runner.invoke(main, ["predict", "--model-dir", str(tmp_path / "model"), "--data", str(path)])
    assert res.exit_code == 0, res.output
    predicted = [line.split(",")[1][:16] for line in res.output.strip().splitlines()[1:]]
    assert predicted[0] == "2024-07-01T07:00"  # Monday 09:00 in Berlin
    assert len(predicted) == 8 and predicted[-1][11:] == "14:00"


def test_a_schedule_found_in_utc_is_read_on_the_local_clock_whose_change_moved_it():
    from adaptcast.streams.schedule import moved_by_clock

    winter = Schedule(H, MON_FRI, 8 * H, 8)  # Berlin's 09:00 … 16:00 in UTC before the spring change
    friday = ms("2024-03-29T15:00")  # its last point before the change (Sunday 31 March)
    assert moved_by_clock(winter, friday, ms("2024-04-01T07:00"), 0.1) == BERLIN  # Monday 09:00 there
    assert moved_by_clock(winter, friday, ms("2024-04-01T05:00"), 0.1) is None  # not its hours on any clock
    may = ms("2024-05-03T15:00")  # no clock changed in the week before: a stray record stays off
    assert moved_by_clock(winter, may, ms("2024-05-06T07:00"), 0.1) is None
    summer_ny = Schedule(NYSE.step_ms, MON_FRI, 13 * H + 30 * 60_000, 13)  # 09:30 New York in summer
    moved = moved_by_clock(summer_ny, ms("2024-11-01T19:30"), ms("2024-11-04T20:30"), 0.1)
    assert moved == NYSE  # its session's last half hour after the autumn change, 15:30 there


@pytest.mark.parametrize(
    "schedule, start, end",
    [(BERLIN, "2024-01-08T08:00", "2024-04-19T16:00"), (NYSE, "2024-08-05T13:30", "2024-11-15T21:00")],
    ids=["berlin-spring", "new-york-autumn"],
)
def test_a_live_series_keeps_its_found_hours_through_a_clock_change(schedule, start, end, caplog):
    """Undeclared hours on a local clock: the worker finds them in UTC after three weeks, and at the
    clock change reads them on the zone's clock instead of dead-lettering each day's first or last
    record and making up a point no record meets."""
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(max_fill=3))
    filled_after = 0
    with caplog.at_level("INFO", logger="adaptcast.loop"):
        for k, ts in enumerate(session_stamps(schedule, start, end).tolist()):
            before = loop.metrics.grid_filled._value.get()
            out = loop.process([Record("s", ts, {"y": float(k)})])
            assert not out.rejected, (utc(ts), out.rejected)
            if is_scheduled(loop.states["s"].grid.period_ms or 0):  # once its hours are found
                filled_after += loop.metrics.grid_filled._value.get() - before
    assert loop.states["s"].grid.period_ms == schedule.period
    assert filled_after <= 2  # in autumn, the points its summer hours held on the first day, made up
    assert f"keeps its hours on a local clock: {schedule.text()}" in caplog.text


@pytest.mark.parametrize(
    "stray, rejected",
    [("2024-04-01T08:00", []), ("2024-04-03T08:00", ["2024-04-03T08:00"])],
    ids=["first-session", "third-session"],
)
def test_a_stray_record_after_a_clock_change_does_not_take_a_utc_feed_off_its_hours(stray, rejected):
    """A feed whose hours are UTC's (09:00 … 16:00) sends one record an hour early after Europe's
    spring change. In the first session after it the record reads as Berlin's 10:00 and the series
    moves onto Berlin's clock, and the next record off those hours and on its own moves it back;
    later the record is off both (the series' last point is not Berlin's) and is dead-lettered."""
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(max_fill=3))
    utc_hours = Schedule(H, MON_FRI, 9 * H, 8)
    stamps = np.sort(np.append(session_stamps(utc_hours, "2024-01-08T09:00", "2024-04-12T16:00"), ms(stray)))
    dead: list[str] = []
    for k, ts in enumerate(stamps.tolist()):
        out = loop.process([Record("s", ts, {"y": float(k)})])
        dead += [utc(r.ts_ms) for r, _ in out.rejected]
    assert dead == rejected
    assert loop.states["s"].grid.period_ms == utc_hours.period
