"""``grid.resample``: an irregular feed's records of each period become one record, so the feed is
forecast instead of dead-lettered, and a held period survives a snapshot."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.drift.serialize import load_state, save_state
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.calendar import months
from adaptcast.streams.cli import main
from adaptcast.streams.config import ConfigError, load_config
from adaptcast.streams.grid import GridRules, parse_period
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record
from adaptcast.streams.regular import on_grid
from adaptcast.streams.resample import Resample, period_start
from adaptcast.streams.schedule import CLOSED

MIN = 60_000
DAY = 86_400_000
P = 10 * MIN


def _loop(how: Resample, lookback: int = 4, horizon: int = 2) -> ForecastLoop:
    model = create_forecaster("naive", lookback=lookback, horizon=horizon)
    model.fit(*sliding_windows(np.arange(40.0), lookback, horizon))
    return ForecastLoop(model, ["y"], grid=GridRules(period_ms=P, resample=how))


def _irregular(n: int, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.integers(1, 2 * P // 3, n)) + 1_700_000_000_000 // P * P
    return [Record("s", int(ts), {"y": float(k)}) for k, ts in enumerate(t)]


@pytest.mark.parametrize("how", [Resample.MEAN, Resample.LAST])
def test_each_period_becomes_one_record_of_its_mean_or_last(how):
    loop = _loop(how)
    recs = _irregular(300)
    forecasts, rejected = [], []
    for rec in recs:
        res = loop.process([rec])
        forecasts += res.forecasts
        rejected += res.rejected
    assert not rejected and not loop.adaptation.events  # no restarts: every period was held
    periods: dict[int, list[float]] = {}
    for rec in recs:
        periods.setdefault(rec.ts_ms - rec.ts_ms % P, []).append(rec.values["y"])
    starts = sorted(periods)
    expect = {t: float(np.mean(v)) if how is Resample.MEAN else v[-1] for t, v in periods.items()}
    # a naive forecast is the window's last row: each released period's value, issued at its start
    got = {f.issued_at_ms: float(f.yhat[0, 0]) for f in forecasts}
    assert set(got) == set(starts[3:-1])  # from the first full window to the last released period
    assert all(got[t] == pytest.approx(expect[t]) for t in got)
    assert all(list(f.ts_ms) == [f.issued_at_ms + P, f.issued_at_ms + 2 * P] for f in forecasts)


def test_a_record_of_a_period_already_released_is_late_and_a_missing_channel_is_its_own_dead_letter():
    loop = _loop(Resample.MEAN)
    base = 1_700_000_000_000 // P * P
    loop.process([Record("s", base + MIN, {"y": 1.0}), Record("s", base + P + MIN, {"y": 2.0})])
    res = loop.process([Record("s", base + 2 * MIN, {"y": 9.0}), Record("s", base + P + 2 * MIN, {"x": 3.0})])
    assert [(r.ts_ms, e.reason) for r, e in res.rejected] == [
        (base + 2 * MIN, "late"),
        (base + P + 2 * MIN, "missing_value"),
    ]
    assert "is past the period from" in str(res.rejected[0][1])


def test_a_held_period_survives_a_snapshot_and_restore(tmp_path):
    first = _loop(Resample.MEAN)
    recs = _irregular(60)
    for rec in recs[:-3]:
        first.process([rec])
    held = first.states["s"].bucket
    assert held is not None and held.count >= 1
    again = _loop(Resample.MEAN)
    save_state(tmp_path / "snap.npz", {"series": first.export_series(["s"])})  # pickle-free, as a worker's
    again.import_series(load_state(tmp_path / "snap.npz")["series"])
    for rec in recs[-3:]:
        r1, r2 = first.process([rec]), again.process([rec])
        assert [f.yhat.tolist() for f in r1.forecasts] == [f.yhat.tolist() for f in r2.forecasts]
    assert again.states["s"].bucket.to_dict() == first.states["s"].bucket.to_dict()


def test_resample_needs_a_declared_frequency_of_whole_milliseconds():
    with pytest.raises(ConfigError, match=r"needs grid\.frequency"):
        load_config(overrides={"grid": {"resample": "mean"}}, environ={})
    with pytest.raises(ConfigError, match="not a rate in hertz"):
        load_config(overrides={"grid": {"resample": "last", "frequency": "64Hz"}}, environ={})
    for frequency in ("10min", "1mo", "1h Mon-Fri 09:00-18:00", "1d Mon-Fri"):
        cfg = load_config(overrides={"grid": {"resample": "mean", "frequency": frequency}}, environ={})
        assert cfg.grid.rules(48).resample is Resample.MEAN


def _at(text: str) -> int:
    return int(np.datetime64(text, "ms").astype(np.int64))


def test_a_period_starts_on_its_schedule_s_step_or_month_and_a_closed_hour_has_none():
    hours = parse_period("30min Mon-Fri 08:00-17:00")
    got = period_start(np.array([_at(t) for t in TIMES]), hours)
    assert got.tolist() == [_at("2024-03-04T08:00"), _at("2024-03-04T16:30"), CLOSED, CLOSED, CLOSED]
    berlin = parse_period("1h Mon-Fri 09:00-17:00 Europe/Berlin")  # 09:00 there is 08:00 UTC in March
    assert period_start(np.array([_at("2024-03-04T08:59:59")]), berlin).tolist() == [_at("2024-03-04T08:00")]
    days = parse_period("1d Mon-Fri")
    assert period_start(np.array([_at("2024-03-05T13:00"), _at("2024-03-09T13:00")]), days).tolist() == [
        _at("2024-03-05"),
        CLOSED,  # a Saturday
    ]
    quarters = period_start(np.array([_at("2024-05-17T09:00"), _at("2023-12-31T23:59")]), months(3))
    assert quarters.tolist() == [_at("2024-04-01"), _at("2023-10-01")]


TIMES = (
    "2024-03-04T08:29:59",  # a Monday, in the first step
    "2024-03-04T16:59:00",  # in the last step of the session
    "2024-03-04T17:00:00",  # the session has closed
    "2024-03-04T07:59:00",  # before it opens
    "2024-03-09T10:00:00",  # a Saturday
)


def test_a_feed_in_opening_hours_is_resampled_on_its_schedule_and_a_record_when_closed_is_told():
    """A car park's occupancy, read about every half hour at jittered times while it is open: each
    step's readings become one, forecasts skip the night, and a reading after closing is a dead
    letter that says which hours to widen."""
    period = parse_period("30min Mon-Sun 08:00-17:00")
    model = create_forecaster("naive", lookback=4, horizon=3)
    model.fit(*sliding_windows(np.arange(40.0), 4, 3))
    loop = ForecastLoop(model, ["y"], grid=GridRules(period_ms=period, resample=Resample.MEAN))
    day, rng = _at("2024-03-04"), np.random.default_rng(0)
    stamps = [
        day + d * DAY + 8 * 3_600_000 + k * 30 * MIN + int(rng.integers(0, 29 * MIN))
        for d in range(3)
        for k in range(18)
    ]
    forecasts, rejected = [], []
    for k, ts in enumerate(stamps):
        res = loop.process([Record("s", ts, {"y": float(k)})])
        forecasts += res.forecasts
        rejected += res.rejected
    assert rejected == [] and not loop.adaptation.events  # no gap at night: the schedule is closed
    evening = next(f for f in forecasts if f.issued_at_ms == day + 16 * 3_600_000 + 30 * MIN)
    next_morning = day + DAY + 8 * 3_600_000
    assert list(evening.ts_ms) == [next_morning + k * 30 * MIN for k in range(3)]
    late = loop.process([Record("s", stamps[-1] + 3 * 3_600_000, {"y": 0.0})]).rejected
    assert [e.reason for _, e in late] == ["off_grid"]
    assert "outside the sessions of 30min Mon-Sun 08:00-17:00" in str(late[0][1])


@pytest.mark.parametrize(
    ("frequency", "most_apart"), [("30min Mon-Fri 08:00-17:00", 11 * MIN), ("1mo", 3 * DAY)]
)
def test_a_file_is_resampled_on_a_schedule_or_by_month_as_the_loop_resamples_a_feed(frequency, most_apart):
    period, rng = parse_period(frequency), np.random.default_rng(2)
    ts = _at("2024-01-01") + np.cumsum(rng.integers(1, most_apart, 4000))
    values = rng.normal(size=(ts.size, 1))
    rules = GridRules(period_ms=period, resample=Resample.MEAN)
    g = on_grid(ts, values, rules)
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    live = ForecastLoop(model, ["y"], grid=rules)
    dead = sum(
        len(live.process([Record("s", int(t), {"y": float(v)})]).rejected)
        for t, v in zip(ts, values[:, 0], strict=True)
    )
    assert g.left_out.get("off_grid", 0) == dead  # readings outside the sessions, both ways
    held = live.states["s"].buffer.last(len(live.states["s"].buffer))[:, 0]
    assert g.values[-held.size - 1 : -1, 0] == pytest.approx(held, rel=1e-5)
    assert (period_start(g.ts_ms, period) == g.ts_ms).all()  # each row at its period's start


def test_backtest_of_an_irregular_file_forecasts_instead_of_dead_lettering(tmp_path, caplog):
    recs = _irregular(3000, seed=3)
    y = 20 + np.sin(np.arange(len(recs)) / 30) + np.random.default_rng(1).normal(0, 0.05, len(recs))
    path = tmp_path / "sensor.csv"
    pl.DataFrame({"ts": np.array([r.ts_ms for r in recs]).astype("datetime64[ms]"), "temp": y}).write_csv(
        path
    )
    runner = CliRunner()
    args = ["backtest", "--data", str(path), "--target", "temp", "--model", "naive", "--policy", "never"]
    res_first = runner.invoke(
        main, [*args, "--out", str(tmp_path / "a")], env={"ADAPTCAST__GRID__FREQUENCY": "10min"}
    )
    assert res_first.exit_code == 0, res_first.output
    placed = json.loads((tmp_path / "a" / "summary.json").read_text())
    flags = ["--frequency", "10min", "--resample", "mean"]  # what the advice on the first run names
    res = runner.invoke(main, [*args, *flags, "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    resampled = json.loads((tmp_path / "b" / "summary.json").read_text())
    (before,), (after,) = placed["configs"].values(), resampled["configs"].values()
    assert sum(before["records_rejected"].values()) > 500  # off the grid or a point already taken
    assert "--frequency 10min --resample mean" in caplog.text
    assert after["records_rejected"] == {} and after["n_forecasts"] > before["n_forecasts"]


def test_an_irregular_feed_without_resample_is_told_about_it():
    """Records off the grid say so in their dead letters, and a fixed grid that moves in its log."""
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules())
    rejected = [e for rec in _irregular(400, seed=4) for _, e in loop.process([rec]).rejected]
    assert len(rejected) > 100 and all("grid.resample" in str(e) for e in rejected if e.reason == "off_grid")


def test_a_series_whose_grid_keeps_moving_is_told_about_resample(caplog):
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(period_ms=P))
    base = 1_700_000_000_000 // P * P
    with caplog.at_level("WARNING", logger="adaptcast.loop"):
        for k in range(30):  # ten-minute points, then seven-minute ones: a fixed grid that moves
            loop.process([Record("s", base + (k * P if k < 10 else 9 * P + (k - 9) * 7 * MIN), {"y": 1.0})])
    assert "grid.resample: mean" in caplog.text


def test_a_snapshot_on_another_period_than_the_one_now_declared_is_not_restored():
    """A restart after grid.frequency changed (10 → 15 min): the old grid would refuse the new periods'
    records as off the grid, and with resample those are aggregates with no bytes to dead-letter."""
    first = _loop(Resample.MEAN)
    for rec in _irregular(60):
        first.process([rec])
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    again = ForecastLoop(model, ["y"], grid=GridRules(period_ms=15 * MIN, resample=Resample.MEAN))
    again.import_series(first.export_series(["s"]))
    assert "s" not in again.states
    rejected = [e for rec in _irregular(200, seed=9) for _, e in again.process([rec]).rejected]
    assert rejected == []


@pytest.mark.parametrize("how", [Resample.MEAN, Resample.LAST])
def test_a_file_is_resampled_as_the_loop_resamples_a_feed(how):
    """`train` and `predict` (and `train --from-topic`) put a file's rows on the grid as the worker
    puts records: the same periods, the same values."""
    recs = _irregular(300, seed=5)
    ts = np.array([r.ts_ms for r in recs], dtype=np.int64)
    values = np.array([[r.values["y"]] for r in recs])
    values[7] = np.nan  # a missing value is left out, as a record lacking it is
    g = on_grid(ts, values, GridRules(period_ms=P, resample=how))
    live = _loop(how)
    for k, rec in enumerate(recs):
        if k != 7:
            live.process([rec])
    held = live.states["s"].buffer.last(len(live.states["s"].buffer))[:, 0]  # the newest periods it keeps
    assert g.missing_values == 1 and not g.left_out and (g.ts_ms % P == 0).all()
    # the file's rows end with the period the loop still holds (no later record released it)
    assert g.values[-held.size - 1 : -1, 0] == pytest.approx(held, rel=1e-6)
    assert g.values[-1, 0] == pytest.approx(live.states["s"].bucket.value(how)[0], rel=1e-6)


def test_train_and_predict_resample_an_irregular_file(tmp_path):
    recs = _irregular(1500, seed=6)
    y = 20 + np.sin(np.arange(len(recs)) / 30)
    path = tmp_path / "sensor.csv"
    pl.DataFrame({"ts": np.array([r.ts_ms for r in recs]).astype("datetime64[ms]"), "temp": y}).write_csv(
        path
    )
    runner = CliRunner()
    shape = ["--data", str(path), "--target", "temp", "--lookback", "12", "--horizon", "3"]
    grid = ["--frequency", "10min", "--resample", "mean"]
    res = runner.invoke(main, ["train", *shape, *grid, "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["schema"]["grid"]["resample"] == "mean"
    res = runner.invoke(main, ["predict", "--model-dir", str(tmp_path / "m"), "--data", str(path)])  # no env
    assert res.exit_code == 0, res.output
    issued = {line.split(",")[0] for line in res.output.strip().splitlines()[1:]}
    last = recs[-1].ts_ms
    assert issued == {str(np.datetime64(last - last % P, "ms"))[:19]}  # the newest period's start


def test_a_resampled_series_that_sent_one_record_and_went_silent_is_forgotten():
    """Its record is held, not yet placed on the grid: silence is measured from the held period."""
    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["y"], grid=GridRules(period_ms=P, resample=Resample.MEAN, forget_after=5))
    base = 1_700_000_000_000 // P * P
    loop.process([Record("once", base + MIN, {"y": 1.0})])
    for k in range(1, 200):
        loop.process([Record("steady", base + k * P + MIN, {"y": 1.0})])
    loop.forget_idle()
    assert "once" not in loop.states and "steady" in loop.states
    with pytest.raises(ValueError, match="declared period"):
        GridRules(resample=Resample.LAST)
