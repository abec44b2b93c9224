"""The loop on gappy, jittered and changing feeds: forecasts on the series' grid, only real records scored."""

from __future__ import annotations

import itertools
import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptcast.drift.serialize import load_state, save_state
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.data import SeriesFrame
from adaptcast.forecast.windows import segments, sliding_windows
from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config
from adaptcast.streams.events import GapFilled, Retrained, SeriesReset
from adaptcast.streams.grid import GridRules
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import DUPLICATE, OFF_GRID, Record, RecordError, parse_timestamp
from adaptcast.streams.retrain import make_policy, training_set
from adaptcast.streams.step import Forecast, ScoredError

HOUR, MIN = 3_600_000, 60_000


def _value(step: int) -> float:
    """Not linear in time, so a filled point never equals the record that would have been there."""
    return float((step * 7919) % 101)


def _loop(lookback: int = 6, horizon: int = 3, **grid) -> ForecastLoop:
    model = create_forecaster("naive", lookback=lookback, horizon=horizon)
    model.fit(*sliding_windows(np.arange(40.0), lookback, horizon))
    return ForecastLoop(model, ["y"], grid=GridRules(**grid))


class Fed:
    """What feeding records one per ``process`` call produced, and the windows the model was given."""

    def __init__(self, loop: ForecastLoop):
        self.loop = loop
        self.forecasts: list[Forecast] = []
        self.scored: list[ScoredError] = []
        self.rejected: list[tuple[Record, RecordError]] = []
        self.windows: list[np.ndarray] = []
        predict = loop.model.predict

        def spy(X: np.ndarray) -> np.ndarray:
            self.windows.extend(X.copy())
            return predict(X)

        loop.model.predict = spy

    def feed(self, records: list[Record]) -> Fed:
        for rec in records:
            res = self.loop.process([rec])
            self.forecasts += res.forecasts
            self.scored += res.scored
            self.rejected += res.rejected
        return self

    def metric(self, line: str) -> float:
        text = self.loop.metrics.render().decode()
        hit = [ln for ln in text.splitlines() if ln.startswith(line + " ")]
        return float(hit[0].split()[-1]) if hit else 0.0


def _hourly(steps, series: str = "a", at=lambda k: k * HOUR) -> list[Record]:
    return [Record(series, at(k), {"y": _value(k)}) for k in steps]


def _scorable(issued: list[int], kept: set[int], horizon: int, restarts: list[int] = ()) -> int:
    """(forecast, lead) pairs whose target is a kept step with no restart in between."""
    return sum(
        1
        for t in issued
        for k in range(1, horizon + 1)
        if t + k in kept and not any(t < r <= t + k for r in restarts)
    )


def test_six_hour_outage_is_filled_on_the_grid_and_never_scored():
    lookback, horizon = 8, 3
    kept = [k for k in range(60) if not 30 <= k <= 35]
    fed = Fed(_loop(lookback, horizon, max_fill=6)).feed(_hourly(kept))
    # forecasts only at real records, their targets on the hourly grid
    assert [f.issued_at_ms // HOUR for f in fed.forecasts] == [k for k in kept if k >= lookback - 1]
    for f in fed.forecasts:
        assert f.ts_ms == [f.issued_at_ms + k * HOUR for k in range(1, horizon + 1)]
    # every window is contiguous on the grid: real values, or the interpolation across the gap
    v29, v36 = _value(29), _value(36)
    grid_value = {k: _value(k) for k in kept} | {k: v29 + (k - 29) / 7 * (v36 - v29) for k in range(30, 36)}
    for f, window in zip(fed.forecasts, fed.windows, strict=True):
        t = f.issued_at_ms // HOUR
        assert window[:, 0] == pytest.approx(
            [grid_value[s] for s in range(t - lookback + 1, t + 1)], abs=1e-4
        )
    buf = fed.loop.states["a"].buffer
    first_row = 60 - len(buf)
    assert (np.flatnonzero(buf.filled(len(buf))) + first_row).tolist() == list(range(30, 36))
    # scored: only real records, and every pair whose target was observed
    assert {s.ts_ms // HOUR for s in fed.scored} <= set(kept)
    issued = [f.issued_at_ms // HOUR for f in fed.forecasts]
    assert fed.loop.summary()["scored_points"] == _scorable(issued, set(kept), horizon)
    assert fed.metric("adaptcast_grid_filled_steps_total") == 6
    fills = [e for e in fed.loop.events if isinstance(e, GapFilled)]
    assert [(e.series, e.ts_ms, e.steps) for e in fills] == [("a", 30 * HOUR, 6)]


def test_outage_beyond_max_fill_restarts_the_window_and_drops_forecasts_across_it():
    lookback, horizon = 6, 8
    kept = [k for k in range(60) if not 20 <= k <= 24]
    fed = Fed(_loop(lookback, horizon, max_fill=3)).feed(_hourly(kept))
    issued = [f.issued_at_ms // HOUR for f in fed.forecasts]
    assert issued == list(range(5, 20)) + list(range(25 + lookback - 1, 60))  # a full window again
    # forecasts issued up to 19 reach 25..27, observed after the restart: none of those is scored
    assert fed.loop.summary()["scored_points"] == _scorable(issued, set(kept), horizon, restarts=[25])
    assert fed.metric('adaptcast_series_resets_total{reason="gap"}') == 1
    assert fed.metric("adaptcast_grid_filled_steps_total") == 0
    (ev,) = [e for e in fed.loop.events if isinstance(e, SeriesReset)]
    assert (ev.ts_ms, ev.reason, ev.steps, ev.period_ms) == (25 * HOUR, "gap", 5, HOUR)


def test_a_feed_back_on_a_new_phase_after_an_outage_restarts_there_and_keeps_every_record(caplog):
    """A sensor back on its own clock (36:20 after 30:00 on a :00 grid) restarts as after any long gap,
    rather than dead-lettering its first records as off the grid until they moved the grid."""
    before = _hourly(range(31))
    after = _hourly(range(36, 60), at=lambda k: k * HOUR + 20 * MIN)
    with caplog.at_level(logging.WARNING, logger="adaptcast.loop"):
        fed = Fed(_loop(lookback=6, horizon=3, max_fill=3)).feed(before + after)
    assert not fed.rejected and not caplog.text
    (ev,) = [e for e in fed.loop.events if isinstance(e, SeriesReset)]
    assert (ev.ts_ms, ev.reason, ev.steps) == (36 * HOUR + 20 * MIN, "gap", 6)
    resumed = [f for f in fed.forecasts if f.issued_at_ms > 30 * HOUR]
    assert resumed[0].issued_at_ms == 41 * HOUR + 20 * MIN  # a full window on the new phase
    assert all(t % HOUR == 20 * MIN for f in resumed for t in f.ts_ms)


def test_rows_before_a_long_gap_stay_for_retraining_and_no_window_crosses_the_gap(tmp_path):
    """A restart empties the window, not what a retrain learns from; a new grid's restart does."""
    lookback, horizon = 6, 3
    model = create_forecaster("naive", lookback=lookback, horizon=horizon)
    model.fit(*sliding_windows(np.arange(40.0), lookback, horizon))
    policy = make_policy("periodic:10", "full", lookback, horizon)
    loop = ForecastLoop(model, ["y"], policy=policy, grid=GridRules(max_fill=3, period_ms=HOUR), history=200)
    kept = [k for k in range(90) if not 40 <= k <= 49]  # 40 rows, a 10-hour outage, 40 rows
    fed = Fed(loop).feed(_hourly(kept))
    state = loop.states["a"]
    runs = segments(state.history())
    assert [r[:, 0].tolist() for r in runs] == [
        [_value(k) for k in kept[:40]],
        [_value(k) for k in kept[40:]],
    ]
    data = training_set([state.history()], 10_000, lookback, horizon, 1)
    assert data is not None and data.full[0].shape[0] == 2 * (40 - lookback - horizon + 1)
    assert not np.isnan(data.full[0]).any()
    # the last retrain saw both runs: more windows than the rows since the gap hold
    last = [e for e in fed.loop.events if isinstance(e, Retrained)][-1]
    since_gap = last.step - 40 + 1  # the 41st record (step 40) was the first after the gap
    assert last.step > 60 and last.window >= since_gap + 40
    # snapshots carry the earlier rows; a move to a new grid drops them
    path = tmp_path / "s.npz"
    save_state(path, loop.export_series(["a"]))
    again = ForecastLoop(model, ["y"], grid=GridRules(max_fill=3, period_ms=HOUR), history=200)
    again.import_series(load_state(path))
    assert np.array_equal(again.states["a"].history(), state.history(), equal_nan=True)
    state.restart(keep_rows=False)
    assert state.history().shape[0] == 0 and state.held == 0


def _berlin(start_utc: datetime, hours: int, with_offset: bool) -> list[str]:
    """Hourly local-time stamps of Europe/Berlin, as ISO text with or without the UTC offset."""
    local = [(start_utc + timedelta(hours=h)).astimezone(ZoneInfo("Europe/Berlin")) for h in range(hours)]
    return [t.isoformat() if with_offset else t.replace(tzinfo=None).isoformat() for t in local]


@pytest.mark.parametrize(
    ("start", "naive_effect"),
    [
        (datetime(2024, 3, 30, 12, tzinfo=UTC), "filled"),  # 02:00 does not exist: a one-step gap
        (datetime(2024, 10, 26, 12, tzinfo=UTC), "duplicate"),  # 02:00 comes twice: the second is refused
    ],
)
def test_daylight_saving_in_local_time(start, naive_effect):
    naive = Fed(_loop()).feed(
        [Record("a", parse_timestamp(s), {"y": float(i)}) for i, s in enumerate(_berlin(start, 30, False))]
    )
    assert naive.metric("adaptcast_grid_filled_steps_total") == (1 if naive_effect == "filled" else 0)
    assert [e.reason for _, e in naive.rejected] == ([DUPLICATE] if naive_effect == "duplicate" else [])
    # with the offset the instants are regular hours: nothing to fill, nothing refused
    offset = Fed(_loop()).feed(
        [Record("a", parse_timestamp(s), {"y": float(i)}) for i, s in enumerate(_berlin(start, 30, True))]
    )
    assert offset.metric("adaptcast_grid_filled_steps_total") == 0 and not offset.rejected
    assert len(offset.forecasts) == 30 - 5


def test_local_midnight_across_daylight_saving_stays_on_one_daily_grid():
    """Local midnight is 23:00 UTC in winter and 22:00 UTC in summer: one hour is within the tolerance."""
    days = [datetime(2024, 3, 20) + timedelta(days=d) for d in range(25)]
    stamps = [d.replace(tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC) for d in days]
    fed = Fed(_loop(lookback=4, horizon=2)).feed(
        [Record("a", int(t.timestamp() * 1000), {"y": float(i)}) for i, t in enumerate(stamps)]
    )
    assert not fed.rejected and fed.metric("adaptcast_grid_filled_steps_total") == 0
    first = int(stamps[0].timestamp() * 1000)
    assert all((t - first) % (24 * HOUR) == 0 for f in fed.forecasts for t in f.ts_ms)
    assert len(fed.forecasts) == 25 - 3


def test_jittered_timestamps_snap_to_the_grid_and_forecast_like_a_regular_feed():
    rng = np.random.default_rng(0)
    jitter = rng.integers(-20_000, 20_001, size=50)  # ± 20 s on an hourly feed
    jittered = Fed(_loop()).feed(_hourly(range(50), at=lambda k: k * HOUR + int(jitter[k])))
    regular = Fed(_loop()).feed(_hourly(range(50)))
    origin = int(jitter[0])  # the grid's phase is the first record's
    assert not jittered.rejected
    assert [f.ts_ms for f in jittered.forecasts] == [[t + origin for t in f.ts_ms] for f in regular.forecasts]
    assert [f.yhat.tolist() for f in jittered.forecasts] == [f.yhat.tolist() for f in regular.forecasts]
    assert jittered.loop.summary()["scored_points"] == regular.loop.summary()["scored_points"]


def test_switch_from_hours_to_quarter_hours(caplog):
    records = _hourly(range(40)) + [
        Record("a", 39 * HOUR + q * 15 * MIN, {"y": _value(1000 + q)}) for q in range(1, 41)
    ]
    with caplog.at_level(logging.INFO, logger="adaptcast.loop"):
        fed = Fed(_loop(lookback=6, horizon=3)).feed(records)
    # 39:15, 39:30, 39:45 and 40:15 are off the hourly grid; 40:30 is the 6th record agreeing on 15 min
    assert [(r.ts_ms - 39 * HOUR) // MIN for r, e in fed.rejected if e.reason == OFF_GRID] == [15, 30, 45, 75]
    assert fed.metric('adaptcast_series_resets_total{reason="grid_change"}') == 1
    (ev,) = [e for e in fed.loop.events if isinstance(e, SeriesReset)]
    assert (ev.reason, ev.ts_ms, ev.period_ms) == ("grid_change", 40 * HOUR + 30 * MIN, 15 * MIN)
    assert "inferred" in caplog.text and "grid_change" in caplog.text
    after = [f for f in fed.forecasts if f.issued_at_ms > 40 * HOUR]
    assert after[0].issued_at_ms == 40 * HOUR + 30 * MIN + 5 * 15 * MIN  # a full window on the new grid
    assert all(f.ts_ms[1] - f.ts_ms[0] == 15 * MIN for f in after)


def test_a_restored_series_continues_on_the_same_grid(tmp_path):
    records = _hourly([k for k in range(50) if k not in (12, 13, 30)], at=lambda k: 5_000 + k * HOUR)
    whole = Fed(_loop(max_fill=3)).feed(records)
    first = Fed(_loop(max_fill=3)).feed(records[:28])
    save_state(tmp_path / "p.npz", {"series": first.loop.export_series(["a"])})
    restored = _loop(max_fill=3)
    restored.import_series(load_state(tmp_path / "p.npz")["series"])
    assert restored.states["a"].grid == first.loop.states["a"].grid
    second = Fed(restored).feed(records[28:])
    tail = [f for f in whole.forecasts if f.issued_at_ms > records[27].ts_ms]
    assert [(f.issued_at_ms, f.ts_ms) for f in second.forecasts] == [(f.issued_at_ms, f.ts_ms) for f in tail]
    assert [f.yhat.tolist() for f in second.forecasts] == [f.yhat.tolist() for f in tail]


def test_a_64_hz_feed_is_forecast_on_its_readings_stamps_and_a_restore_keeps_its_rate(tmp_path):
    """A declared rate (``64Hz``) starts on the feed's phase: every reading is appended, each forecast
    lead is stamped where a later reading falls and is scored there, and a worker restored from a
    snapshot (the grid's phase is in its period) forecasts exactly as one that never stopped."""
    from adaptcast.streams.grid import parse_period

    stamps = 1_700_000_000_123 + np.floor(np.arange(60) * 1000 / 64).astype(np.int64)
    records = [Record("a", int(t), {"y": _value(k)}) for k, t in enumerate(stamps)]
    whole = Fed(_loop(period_ms=parse_period("64Hz"))).feed(records)
    assert not whole.rejected and whole.metric("adaptcast_series_resets_total") == 0
    later = set(stamps.tolist())
    assert whole.forecasts and all(t in later or t > stamps[-1] for f in whole.forecasts for t in f.ts_ms)
    assert whole.loop.summary()["scored_points"] == _scorable(list(range(5, 60)), set(range(60)), 3)
    first = Fed(_loop(period_ms=parse_period("64Hz"))).feed(records[:30])
    save_state(tmp_path / "p.npz", {"series": first.loop.export_series(["a"])})
    restored = _loop(period_ms=parse_period("64Hz"))
    restored.import_series(load_state(tmp_path / "p.npz")["series"])
    second = Fed(restored).feed(records[30:])
    tail = [f for f in whole.forecasts if f.issued_at_ms > records[29].ts_ms]
    assert [(f.issued_at_ms, f.ts_ms) for f in second.forecasts] == [(f.issued_at_ms, f.ts_ms) for f in tail]


def _loop_reading(channels: list[str]) -> ForecastLoop:
    """A naive loop reading ``channels`` (the first is the target)."""
    model = create_forecaster("naive", lookback=6, horizon=3, n_features=len(channels))
    model.fit(*sliding_windows(np.tile(np.arange(40.0)[:, None], (1, len(channels))), 6, 3))
    return ForecastLoop(model, channels)


def test_a_snapshot_restores_by_channel_name_and_refuses_a_channel_it_lacks():
    """Columns follow the names (a dropped or reordered channel restores); a channel the snapshot
    lacks is refused before anything is replaced: before, its column silently took another's values,
    and a dropped channel failed on the first row."""
    first = _loop_reading(["y", "x", "z"])
    for k in range(12):
        first.process([Record("a", k * HOUR, {"y": float(k), "x": 100.0 + k, "z": -1.0})])
    snap = first.export_series(["a"])
    fewer = _loop_reading(["x", "y"])
    fewer.import_series(snap)
    np.testing.assert_array_equal(
        fewer.states["a"].buffer.last(12), np.c_[100.0 + np.arange(12), np.arange(12)]
    )
    more = _loop_reading(["y", "w"])
    held = more.states
    with pytest.raises(
        ValueError, match="series 'a': the snapshot holds y, x, z, not w, which the configuration reads"
    ):
        more.import_series(snap)
    assert more.states is held and "a" not in more.states
    legacy = {"a": {k: v for k, v in snap["a"].items() if k != "channels"}}  # from before channels were saved
    with pytest.raises(ValueError, match="the snapshot holds 3 channels, the configuration reads 2"):
        fewer.import_series(legacy)


def test_backtest_events_and_scores_follow_the_grid():
    """events.parquet gets a row per filled gap and per restart; restarted leads get no truth."""
    kept = [k for k in range(80) if not (20 <= k <= 22 or 40 <= k <= 49)]
    frame = pl.DataFrame(
        {
            "ts": [datetime(2024, 1, 1) + timedelta(hours=k) for k in kept],
            "series": "a",
            "y": [_value(k) for k in kept],
        }
    )
    cfg = load_config(
        overrides={
            "model": {"kind": "naive", "lookback": 6, "horizon": 12},
            "adaptation": {"policy": "never", "memory": False, "min_train_rows": 6},
            "grid": {"max_fill": 4},
        },
        environ={},
    )
    res = backtest(cfg, data=SeriesFrame("gappy", frame, ["y"], 1), report=False, progress=False)
    ev = res.events.filter(pl.col("event").is_in(["gap_filled", "series_reset"]))
    assert ev.select("event", "series", "steps").rows() == [("gap_filled", "a", 3), ("series_reset", "a", 10)]
    fc = res.forecasts
    assert fc.filter(pl.col("y").is_not_null())["ts"].dt.hour().is_in([k % 24 for k in kept]).all()
    across = fc.filter(
        (pl.col("issued_at") < datetime(2024, 1, 3, 2)) & (pl.col("ts") >= datetime(2024, 1, 3, 2))
    )
    assert across.height > 0 and across["y"].null_count() == across.height  # 50 h = 2024-01-03 02:00
    summary = next(iter(res.summary["configs"].values()))
    assert (summary["filled_steps"], summary["series_resets"]) == (3, 1)


@settings(max_examples=60, deadline=None)
@given(
    keep=st.lists(st.booleans(), min_size=50, max_size=50),
    max_fill=st.integers(0, 5),
    declared=st.booleans(),
)
def test_any_drop_pattern_keeps_forecasts_on_the_grid_and_scores_only_real_records(keep, max_fill, declared):
    lookback, horizon = 4, 3
    kept = [k for k, on in enumerate(keep) if on]
    fed = Fed(_loop(lookback, horizon, max_fill=max_fill, period_ms=HOUR if declared else None))
    fed.feed(_hourly(kept))
    # while inferring, a pattern may make twice the period look like it: records off that grid are refused
    assert {e.reason for _, e in fed.rejected} <= ({OFF_GRID} if not declared else set())
    for f in fed.forecasts:
        assert f.issued_at_ms // HOUR in kept and all(t % HOUR == 0 for t in f.ts_ms)
    assert {s.ts_ms // HOUR for s in fed.scored} <= set(kept)
    if not declared:
        return
    # on a declared grid the whole outcome is known: restarts after gaps longer than max_fill,
    # a forecast wherever the window since the last restart is full, every observed lead scored
    restarts = [b for a, b in itertools.pairwise(kept) if b - a - 1 > max_fill]
    starts = [kept[0], *restarts] if kept else []
    issued = [t for t in kept if t - max(s for s in starts if s <= t) + 1 >= lookback]
    assert [f.issued_at_ms // HOUR for f in fed.forecasts] == issued
    for f in fed.forecasts:
        assert f.ts_ms == [f.issued_at_ms + k * HOUR for k in range(1, horizon + 1)]
    for s in fed.scored:  # lead 1 of a last-value forecast: the step from the record before
        assert s.abs_error[0] == pytest.approx(abs(_value(s.ts_ms // HOUR) - _value(s.ts_ms // HOUR - 1)))
    assert fed.loop.summary()["scored_points"] == _scorable(issued, set(kept), horizon, restarts)


def test_series_that_go_silent_are_forgotten_and_the_state_stays_bounded():
    """Pods come and go: each id reports for a while, then never again. The loop keeps only the live
    ones and those silent for at most grid.forget_after of their periods."""
    loop = _loop(forget_after=20)
    fed = Fed(loop)
    live, life = 5, 30
    for k in range(600):
        fed.feed([Record(f"pod-{j}-{(k + 6 * j) // life}", k * HOUR, {"y": _value(k)}) for j in range(live)])
    assert len(loop.states) <= live * (1 + (20 + 64) // life + 1)  # silent ≤ 20 periods, looked at every 64
    assert fed.metric("adaptcast_series_forgotten_total") >= 90
    assert len(loop.level._n) <= len(loop.states)
    # a forgotten series that comes back starts afresh and forecasts again after a lookback
    assert "pod-0-0" not in loop.states
    fed.feed(_hourly(range(600, 610), series="pod-0-0"))
    again = [f.issued_at_ms for f in fed.forecasts if f.series == "pod-0-0" and f.issued_at_ms >= 600 * HOUR]
    assert again[:1] == [605 * HOUR]  # its first window of 6 steps


def test_a_series_is_silent_only_against_the_newest_time_of_its_own_stream():
    """The worker counts silence per partition: a partition read behind another keeps its series."""
    loop = _loop(forget_after=10)
    lagging = {"behind"}
    newest: dict[str, int] = {}
    loop.stream_time = lambda s: newest.get("b" if s in lagging else "a")
    for k in range(200):
        recs = [Record("ahead", k * HOUR, {"y": _value(k)})]
        if k % 50 == 0:  # its partition is read in bursts, far behind
            recs.append(Record("behind", (k // 50) * HOUR, {"y": _value(k)}))
            newest["b"] = (k // 50) * HOUR
        newest["a"] = k * HOUR
        loop.process(recs)
    assert "behind" in loop.states
    assert loop.forget_idle() == [] and "behind" in loop.states
    newest["b"] = 100 * HOUR  # now its own partition moved on and it said nothing
    assert loop.forget_idle() == ["behind"] and "behind" not in loop.states
