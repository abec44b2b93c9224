"""The serving loop's batch paths give what their one-at-a-time forms give."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, Histogram

from adaptcast.drift.conformal import ConformalParams, OnlineConformal
from adaptcast.drift.level import LevelTerm
from adaptcast.drift.memory import ErrorMemory
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.grid import GridRules
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import observe_many
from adaptcast.streams.pending import ForecastStore
from adaptcast.streams.records import Record
from adaptcast.streams.state import RingBuffer
from adaptcast.streams.step import Forecast, RollingMean, StepResult, in_rounds, prediction_records

HOUR = 3_600_000


def test_store_matches_each_truth_with_the_forecasts_whose_horizon_covers_it_oldest_first() -> None:
    store = ForecastStore()
    store.add(np.array([10, 11, 12, 100]), tag=np.array([0, 1, 2, 3]))
    truth, idx, lead = store.match(np.array([13, 12, 101, 50]), horizon=3)
    assert truth.tolist() == [0, 0, 0, 1, 1, 2]
    assert store.cols["tag"][idx].tolist() == [0, 1, 2, 0, 1, 3]
    assert lead.tolist() == [3, 2, 1, 2, 1, 1]
    store.keep(store.pos >= 12)
    assert store.pos.tolist() == [12, 100] and store.cols["tag"].tolist() == [2, 3]


def test_store_replaces_a_column_whose_shape_changed_with_zeros_for_older_rows() -> None:
    store = ForecastStore()
    store.add(np.array([1]), key=np.ones((1, 4), dtype=np.float32))
    store.add(np.array([2]), key=np.full((1, 6), 2.0, dtype=np.float32))
    assert store.cols["key"].shape == (2, 6) and store.cols["key"][0].tolist() == [0.0] * 6


def _outcomes(rng: np.random.Generator, n: int, names: list[str], horizon: int):
    which = rng.integers(0, len(names), n)
    leads = rng.integers(1, horizon + 1, n)
    resid = rng.normal(size=(n, 2))
    half = np.abs(rng.normal(size=(n, 2, 2)))
    half[rng.random(n) < 0.2] = np.nan  # forecasts issued before any residual was known
    return which, leads, resid, half


@pytest.mark.parametrize(("gammas", "gamma"), [((0.01, 0.1), 0.05), ((), 0.05), ((), 0.0)])
def test_conformal_update_many_equals_updates_one_by_one(gammas: tuple[float, ...], gamma: float) -> None:
    """Rings always; miss levels once every (series, lead) reads its own (full) ring (a call's outcomes read
    the pooled ring as the call began, one by one each sees the ones before it)."""
    rng = np.random.default_rng(0)
    names = ["a", "b", "c"]
    params = ConformalParams((0.8, 0.95), gammas=gammas, gamma=gamma, window=20)
    one, many = (OnlineConformal(4, 2, params) for _ in "12")
    checked = False
    for batch in range(5):
        which, leads, resid, half = _outcomes(
            rng, (7, 150, 600, 150, 150)[batch], names, 4
        )  # > window per lead
        own_ready = all(n in many.series and (many.series[n].filled >= params.window).all() for n in names)
        for w, ld, r, h in zip(which, leads, resid, half, strict=True):
            one.update(names[w], int(ld), r, h)
        many.update_many(names, which, leads, resid, half)
        assert one.state_dict().keys() == many.state_dict().keys()
        for s in names:
            np.testing.assert_array_equal(one.series[s].values, many.series[s].values)
            np.testing.assert_array_equal(one.series[s].count, many.series[s].count)
        np.testing.assert_array_equal(one.pooled.values, many.pooled.values)
        if not own_ready:
            many.load_state_dict(one.state_dict())  # start the next call from the same miss levels
            continue
        for s in names if gammas or gamma else []:
            for part in ("alpha", "weight", "offset"):
                np.testing.assert_array_equal(getattr(one.experts[s], part), getattr(many.experts[s], part))
        np.testing.assert_array_equal(one.half_widths([*names, "new"]), many.half_widths([*names, "new"]))
        checked = True
    assert checked


def test_memory_rows_with_counts_equal_one_row_per_residual() -> None:
    rng = np.random.default_rng(1)
    keys = rng.normal(size=(5, 3))
    leads = [rng.choice(4, size=int(k), replace=False) for k in rng.integers(1, 5, 5)]
    values, mask = np.zeros((5, 4, 1)), np.zeros((5, 4, 1), dtype=bool)
    rows_k, rows_v, rows_m = [], [], []
    for i, ls in enumerate(leads):
        for lead in ls:
            values[i, lead] = mask[i, lead] = rng.normal()
            mask[i, lead] = True
            v, m = np.zeros((4, 1)), np.zeros((4, 1), dtype=bool)
            v[lead], m[lead] = values[i, lead], True
            rows_k.append(keys[i]), rows_v.append(v), rows_m.append(m)
    grouped, single = (ErrorMemory(dim=3, horizon=4, warmup=8, step_decay=0.99) for _ in "12")
    grouped.update(keys, values, mask, counts=[len(ls) for ls in leads])
    single.update(np.stack(rows_k), np.stack(rows_v), np.stack(rows_m))
    a, b = grouped.state_dict(), single.state_dict()
    for name in ("sums", "keysums", "counts", "vcounts", "mu", "m2"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12)
    assert a["std_n"] == b["std_n"] and grouped.n_updates == single.n_updates
    np.testing.assert_allclose(grouped.correction(keys), single.correction(keys), rtol=1e-10)


def test_memory_counts_need_no_per_record_decay() -> None:
    mem = ErrorMemory(dim=2, horizon=1, decay=0.9)
    with pytest.raises(ValueError, match="decay == 1"):
        mem.update(np.ones((1, 2)), np.ones((1, 1)), counts=[2])
    with pytest.raises(ValueError, match="counts must have shape"):
        ErrorMemory(dim=2, horizon=1).update(np.ones((2, 2)), np.ones((2, 1)), counts=[1])


def test_level_term_batch_update_equals_updates_one_by_one() -> None:
    rng = np.random.default_rng(2)
    names = [str(s) for s in rng.choice(["a", "b", "c", "d"], size=60)]
    resid = rng.normal(size=(60, 2))
    one, many = LevelTerm(n_targets=2), LevelTerm(n_targets=2)
    one.update(names[:5], resid[:5])
    many.update(names[:5], resid[:5])
    for s, r in zip(names[5:], resid[5:], strict=True):
        one.update([s], r[None])
    many.update(names[5:], resid[5:])
    for key in ("mean", "var", "n"):
        np.testing.assert_array_equal(one.state_dict()[key], many.state_dict()[key])
    np.testing.assert_array_equal(one.offset(["a", "b", "e"]), many.offset(["a", "b", "e"]))


def test_observe_many_fills_the_buckets_observe_would() -> None:
    values = np.array([0.0, 0.05, 0.1, 0.7, 3.0, 1e9, 0.1])
    one, many = (Histogram("h", "h", buckets=(0.1, 0.5, 1.0), registry=CollectorRegistry()) for _ in "12")
    for v in values:
        one.observe(float(v))
    observe_many(many, values)
    assert [s.value for s in one.collect()[0].samples] == pytest.approx(
        [s.value for s in many.collect()[0].samples]
    )


def test_rolling_mean_extend_equals_adds() -> None:
    one, many = RollingMean(5), RollingMean(5)
    values = np.arange(12, dtype=float)
    for v in values:
        one.add(float(v))
    many.extend(values[:3])
    many.extend(values[3:])
    assert one.n == many.n and one.mean == pytest.approx(many.mean)


def test_ring_buffer_extend_equals_appends() -> None:
    rng = np.random.default_rng(3)
    one, many = RingBuffer(capacity=7, channels=2), RingBuffer(capacity=7, channels=2)
    for k in [3, 1, 7, 5, 6, 2, 7, 4, 0, 6]:  # moves the newest rows to the front several times
        rows = rng.normal(size=(k, 2)).astype(np.float32)
        for row in rows:
            one.append(row)
        many.extend(rows)
        assert (len(one), one.count) == (len(many), many.count)
        np.testing.assert_array_equal(one.last(len(one)), many.last(len(many)))
        np.testing.assert_array_equal(one.filled(len(one)), many.filled(len(many)))
    with pytest.raises(ValueError, match="at once"):
        many.extend(np.ones((8, 2), dtype=np.float32))


def _steady_loop(starts: list[int], steps: int) -> ForecastLoop:
    model = create_forecaster("naive", lookback=5, horizon=3)
    model.fit(*sliding_windows(np.arange(30.0), 5, 3))
    loop = ForecastLoop(model, ["y"], history=8, grid=GridRules(period_ms=HOUR))
    for k in range(steps):
        loop.process([Record(f"s{i}", k * HOUR, {"y": float(k + i)}) for i, s in enumerate(starts) if k >= s])
    return loop


def test_a_call_of_next_grid_points_is_placed_at_once_as_one_by_one() -> None:
    """Buffers, grids, positions, steps, windows due and accepted records (several rows per series,
    a buffer that moves its rows to the front, windows not yet full)."""
    starts, runs = [0, 3, 8, 12], [4, 3, 2, 2]
    recs = in_rounds(
        [
            Record(f"s{i}", k * HOUR, {"y": float(k * i)})
            for i, n in enumerate(runs)
            for k in range(15, 15 + n)
        ]
    )
    one, many = _steady_loop(starts, 15), _steady_loop(starts, 15)
    a = one._take_one_by_one(recs, StepResult(), forecasting=True)
    b = many._take_next_points(recs, StepResult(), forecasting=True)
    assert b is not None
    assert a.recs == b.recs == recs and 0 < len(b.due) < len(recs)
    assert a.names == b.names
    for part in ("series", "pos", "rows", "due", "windows", "period"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    assert (one.step, one._newest_ts) == (many.step, many._newest_ts)
    for name, st in one.states.items():
        other = many.states[name]
        assert st.grid == other.grid and st.pending.pos == other.pending.pos
        np.testing.assert_array_equal(st.buffer.last(len(st.buffer)), other.buffer.last(len(other.buffer)))


@pytest.mark.parametrize(
    "odd",
    [
        Record("s1", 7 * HOUR, {"y": 0.0}),  # a gap
        Record("s1", 5 * HOUR, {"y": 0.0}),  # a duplicate
        Record("s1", 6 * HOUR + 60_000, {"y": 0.0}),  # off its point
        Record("new", 6 * HOUR, {"y": 0.0}),  # a new series
        Record("s1", 6 * HOUR, {"x": 0.0}),  # a missing value
    ],
)
def test_a_call_with_any_record_off_the_next_point_is_left_to_the_grid_rules(odd: Record) -> None:
    loop = _steady_loop([0, 0, 0], 6)
    before = {n: (st.grid, st.pending.pos, st.buffer.count) for n, st in loop.states.items()}
    recs = [Record("s0", 6 * HOUR, {"y": 1.0}), odd, Record("s2", 6 * HOUR, {"y": 1.0})]
    assert loop._take_next_points(recs, StepResult(), forecasting=True) is None
    assert {n: (st.grid, st.pending.pos, st.buffer.count) for n, st in loop.states.items()} == before
    assert loop.step == 6


def test_a_run_longer_than_the_buffer_keeps_beside_a_window_is_left_to_the_grid_rules() -> None:
    loop = _steady_loop([0], 6)
    run = [Record("s0", k * HOUR, {"y": 1.0}) for k in range(6, 11)]  # 5 rows + 4 before them > 8 held
    assert loop._take_next_points(run, StepResult(), forecasting=True) is None
    assert loop._take_next_points(run[:4], StepResult(), forecasting=True) is not None


def _forecast(rng: np.random.Generator, bounds: bool, nan: bool, targets: int = 2) -> Forecast:
    y = (rng.normal(size=(12, targets)) * 100).astype(np.float32)
    b = (y + rng.normal(size=y.shape)).astype(np.float32)
    lo = hi = None
    if bounds:
        lo = (y[None] - rng.uniform(0, 3, (2, *y.shape))).astype(np.float32)
        hi = (y[None] + rng.uniform(0, 3, (2, *y.shape))).astype(np.float32)
        if nan:  # the 80 % level not calibrated yet
            lo[0], hi[0] = np.nan, np.nan
    ts = [3_600_000 * k for k in range(1, 13)]
    return Forecast("s", 0, ts, y, b, "arnet", "3", ("80", "95") if bounds else (), lo, hi)


@pytest.mark.parametrize("bounds", [True, False])
def test_prediction_records_in_bulk_equal_one_record_at_a_time(bounds: bool) -> None:
    rng = np.random.default_rng(4)
    forecasts = [_forecast(rng, bounds, nan=i % 3 == 0) for i in range(30)]
    one_by_one = [f.to_json(["y", "z"]) for f in forecasts]
    assert prediction_records(forecasts, ["y", "z"]) == one_by_one
    assert one_by_one[0]["correction"] == (forecasts[0].yhat - forecasts[0].yhat_base).mean(axis=1).tolist()
    if bounds:
        assert one_by_one[0]["lo"]["80"]["y"] == [None] * 12  # NaN bounds are null, the rest numbers
        assert None not in one_by_one[0]["lo"]["95"]["y"] and None not in one_by_one[1]["lo"]["80"]["y"]


def test_prediction_records_of_forecasts_with_and_without_bounds_are_each_their_own() -> None:
    rng = np.random.default_rng(5)
    mixed = [_forecast(rng, True, False), _forecast(rng, False, False)]
    records = prediction_records(mixed, ["y", "z"])
    assert "lo" in records[0] and "lo" not in records[1]
    assert records == [f.to_json(["y", "z"]) for f in mixed]
