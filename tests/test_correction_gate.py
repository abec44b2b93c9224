"""The error memory's gate: all of a correction, half or none, whichever has erred least."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.drift.gate import CorrectionGate, midpoint
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record

HOUR = 3_600_000


def test_a_series_not_scored_yet_is_corrected() -> None:
    assert CorrectionGate().share(["a", "b"]).tolist() == [1.0, 1.0]


def test_closes_where_the_correction_hurts_and_opens_soon_after_the_model_falls_behind() -> None:
    gate, rng = CorrectionGate(), np.random.default_rng(0)
    for _ in range(300):  # stationary: the correction adds a little noise to a good model
        bare = np.abs(rng.normal(0, 1, 12))
        gate.update(["a", "b"], np.repeat([0, 1], 12), np.r_[bare * 1.05, bare * 0.9], np.r_[bare, bare])
    assert gate.share(["a", "b"]).tolist() == [0.0, 1.0]
    steps = 0
    while gate.share(["a"])[0] < 1:  # a level shift of 3: the bare model is off by 3, the memory by ~1
        steps += 1
        bare = np.abs(3 + rng.normal(0, 1, 12))
        gate.update(["a"], np.zeros(12, int), np.abs(1 + rng.normal(0, 1, 12)), bare)
    assert steps <= 3


def test_outcomes_weigh_by_their_count_not_by_how_calls_split_them() -> None:
    one, many = CorrectionGate(alpha=0.05), CorrectionGate(alpha=0.05)
    for gate in (one, many):
        gate.update(["s"], np.array([0]), np.array([3.0]), np.array([1.0]))
    one.update(["s"], np.zeros(40, int), np.full(40, 1.0), np.full(40, 2.0))  # a poll holding 40 outcomes ...
    for _ in range(4):  # ... or four polls of 10
        many.update(["s"], np.zeros(10, int), np.full(10, 1.0), np.full(10, 2.0))
    np.testing.assert_allclose(one.state_dict()["ewma"], many.state_dict()["ewma"])
    expected = 0.95**40 * np.array([3.0, 1.0]) + (1 - 0.95**40) * np.array([1.0, 2.0])
    np.testing.assert_allclose(one.state_dict()["ewma"][0, :2], expected)
    assert np.isnan(one.state_dict()["ewma"][0, 2:]).all()  # persistence and half never scored


def test_serves_half_the_correction_only_while_half_errs_less_than_either_end() -> None:
    """A correction right in direction but twice too large: half of it is exact. The gate serves half
    once its mean is the lowest, and the whole correction again once that errs least."""
    gate, rng = CorrectionGate(alpha=0.05), np.random.default_rng(1)
    for _ in range(50):
        err = np.abs(rng.normal(0, 1, 12))
        gate.update(["a"], np.zeros(12, int), err, err * 1.2, None, err * 0.6)
    assert gate.share(["a"]).tolist() == [0.5]
    for _ in range(50):
        err = np.abs(rng.normal(0, 1, 12))
        gate.update(["a"], np.zeros(12, int), err * 0.5, err * 1.2, None, err * 0.7)
    assert gate.share(["a"]).tolist() == [1.0]
    np.testing.assert_array_equal(midpoint(np.array([1.0, -2.0]), np.array([3.0, 0.0])), [2.0, -1.0])


def test_state_round_trip() -> None:
    gate = CorrectionGate()
    gate.update(["a", "b"], np.array([0, 1, 0]), np.array([1.0, 0.1, 1.0]), np.array([0.5, 0.5, 0.5]))
    back = CorrectionGate()
    back.load_state_dict(gate.state_dict())
    assert back.share(["a", "b", "c"]).tolist() == gate.share(["a", "b", "c"]).tolist() == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="alpha"):
        CorrectionGate(alpha=0)


def _loop(gate: bool) -> ForecastLoop:
    m = create_forecaster("naive", lookback=4, horizon=3)
    m.fit(*sliding_windows(np.arange(20.0), 4, 3))
    return ForecastLoop(m, ["y"], memory={"warmup": 0}, memory_gate=gate)


def test_the_loop_serves_the_bare_forecast_where_the_gate_is_closed() -> None:
    """A constant series: the naive model is exact there, so any correction can only hurt and the gate
    shuts; without the gate the same loop keeps serving the corrections."""
    gated, always = _loop(True), _loop(False)
    for step in range(200):
        recs = [Record("flat", step * HOUR, {"y": 5.0}), Record("alt", step * HOUR, {"y": 5.0 + step % 2})]
        out, ref = gated.process(recs), always.process(recs)
    assert gated.gate is not None and always.gate is None
    assert len(out.forecasts) == len(ref.forecasts) == 2
    last = {f.series: f for f in out.forecasts}
    ungated = {f.series: f for f in ref.forecasts}
    assert not np.array_equal(ungated["flat"].yhat, ungated["flat"].yhat_base)  # the memory does correct it
    np.testing.assert_array_equal(last["flat"].yhat, last["flat"].yhat_base)
    assert gated.summary()["mae"] <= always.summary()["mae"]


def test_the_loop_serves_half_the_correction_where_half_has_erred_least() -> None:
    """The gated loop, told that half the correction has erred least on a series, serves the bare
    forecast moved half as far as the ungated loop moves it (both memories learn alike)."""
    gated, always = _loop(True), _loop(False)
    for step in range(60):
        recs = [Record("alt", step * HOUR, {"y": 5.0 + step % 3})]
        gated.process(recs), always.process(recs)
    assert gated.gate is not None
    state = gated.gate.state_dict()
    state["ewma"] = np.array([[10.0, 10.0, 100.0, 1.0]])  # corrected, bare, persistence, half
    gated.gate.load_state_dict(state)
    recs = [Record("alt", 60 * HOUR, {"y": 5.0})]
    half, whole = gated.process(recs).forecasts[0], always.process(recs).forecasts[0]
    np.testing.assert_array_equal(half.yhat_base, whole.yhat_base)
    assert not np.allclose(whole.yhat, whole.yhat_base)  # there is a correction to halve
    np.testing.assert_allclose(half.yhat - half.yhat_base, 0.5 * (whole.yhat - whole.yhat_base), rtol=1e-5)


def test_serves_persistence_only_on_evidence_and_while_it_errs_clearly_less() -> None:
    """Persistence is served once a half-life of outcomes shows it erring at least 5 % less than both
    model arms, not on the first few, not while the arms are close, and no longer once the model
    errs less again."""
    gate = CorrectionGate()
    ones = np.ones(12)

    def step() -> None:  # persistence errs half the model's on "walk", 3 % less on "close"
        both = np.r_[ones, ones]
        gate.update(["walk", "close"], np.repeat([0, 1], 12), both, both, np.r_[ones * 0.5, ones * 0.97])

    for _ in range(int(gate.evidence) // 12):  # just short of the evidence needed
        step()
    assert gate.persist(["walk", "close", "new"]).tolist() == [False, False, False]
    step()
    assert gate.persist(["walk", "close", "new"]).tolist() == [True, False, False]
    back = CorrectionGate()
    back.load_state_dict(gate.state_dict())
    assert back.persist(["walk", "close"]).tolist() == [True, False]
    steps = 0
    while gate.persist(["walk"])[0]:  # the model now errs a quarter as much as persistence
        steps += 1
        gate.update(["walk"], np.zeros(12, int), ones * 0.25, ones * 0.25, ones)
    assert steps < 50


def test_a_month_of_the_last_value_leading_does_not_outweigh_the_series_long_run() -> None:
    """A series the model has forecast better than its last value for a long while, then a spell in
    which the last value leads (an outage's plateau, a calm market): the gate's means turn to
    persistence, its longer-run means do not, and the model keeps being served."""
    gate, ones = CorrectionGate(), np.ones(12)
    for _ in range(250):
        gate.update(["flow"], np.zeros(12, int), ones, ones, ones * 1.5)
    for _ in range(30):
        gate.update(["flow"], np.zeros(12, int), ones * 2.0, ones * 2.0, ones * 0.5)
        assert not gate.persist(["flow"])[0]
    corrected, bare, persistence, _ = gate.state_dict()["ewma"][0]
    assert persistence < 0.95 * min(corrected, bare)  # lately, the last value has led
    back = CorrectionGate()
    back.load_state_dict(gate.state_dict())
    assert back.persist(["flow"]).tolist() == [False]


def test_persistence_is_not_served_where_half_the_correction_errs_less_than_it() -> None:
    """Half the correction is served as readily as either end, so the last value must beat it too:
    a series whose corrected and bare forecasts both err more than persistence, and whose
    half-corrected one errs less, is served half, never the last value."""
    gate, ones = CorrectionGate(), np.ones(12)
    for _ in range(2 * int(gate.evidence) // 12):
        gate.update(["overshoot"], np.zeros(12, int), ones * 2.0, ones * 2.0, ones, ones * 0.8)
    assert gate.share(["overshoot"]).tolist() == [0.5]
    assert gate.persist(["overshoot"]).tolist() == [False]
    for _ in range(2 * int(gate.evidence) // 12):  # now half errs more than persistence as well
        gate.update(["overshoot"], np.zeros(12, int), ones * 2.0, ones * 2.0, ones, ones * 1.5)
    assert gate.persist(["overshoot"]).tolist() == [True]


def test_persistence_is_not_served_on_the_say_so_of_its_first_outcome() -> None:
    """The first outcome of a series can be a model's bad start and a lucky last value (a shared model
    whose first forecast of a city is 42 off where repeating its last value is 7 off). Persistence's
    mean starts from the model's, so that outcome weighs as one of many, and a last value that then
    errs more than the model at every step is never served."""
    gate, ones = CorrectionGate(), np.ones(12)
    gate.update(["city"], np.zeros(1, int), np.array([42.0]), np.array([42.0]), np.array([7.0]))
    for _ in range(3 * int(gate.evidence) // 12):
        gate.update(["city"], np.zeros(12, int), ones * 20.0, ones * 20.0, ones * 24.0)
        assert not gate.persist(["city"])[0]
    corrected, bare, persistence, _ = gate.state_dict()["ewma"][0]
    assert corrected == bare and persistence > bare


def test_a_state_saved_before_persistence_or_half_was_scored_loads_with_them_unscored() -> None:
    state = {"alpha": 0.002, "series": ["a"], "ewma": np.array([[1.0, 2.0]])}
    gate = CorrectionGate()
    gate.load_state_dict(state)
    assert gate.share(["a"]).tolist() == [1.0] and gate.persist(["a"]).tolist() == [False]
    gate.load_state_dict({**state, "ewma": np.array([[2.0, 1.0, np.nan]])})  # before half was scored
    assert gate.share(["a"]).tolist() == [0.0]


def test_a_state_saved_before_the_longer_run_means_loads_with_them_empty() -> None:
    """A state without the longer-run means loads with none: nothing vetoes persistence until
    outcomes fill them, so the gate serves what it served when the state was saved."""
    gate, ones = CorrectionGate(), np.ones(12)
    for _ in range(250):  # the model led for long ...
        gate.update(["flow"], np.zeros(12, int), ones, ones, ones * 1.5)
    for _ in range(30):  # ... then the last value, lately
        gate.update(["flow"], np.zeros(12, int), ones * 2.0, ones * 2.0, ones * 0.5)
    back = CorrectionGate()
    back.load_state_dict({k: v for k, v in gate.state_dict().items() if k != "slow"})
    assert gate.persist(["flow"]).tolist() == [False] and back.persist(["flow"]).tolist() == [True]


def test_the_loop_serves_the_last_value_where_the_model_keeps_erring_more() -> None:
    """A random walk forecast by a seasonal naive (the value a day back): no correction makes that
    as good as the last value, so the gate serves the last value, and the run errs less than the
    same loop without the gate."""

    def loop(gate: bool) -> ForecastLoop:
        m = create_forecaster("naive", lookback=24, horizon=3, season=24)
        m.fit(*sliding_windows(np.arange(60.0), 24, 3))
        return ForecastLoop(m, ["y"], memory={"warmup": 0}, memory_gate=gate)

    walk = np.cumsum(np.random.default_rng(3).normal(0, 1, 500)) + 100
    gated, always = loop(True), loop(False)
    for step, y in enumerate(walk):
        recs = [Record("walk", step * HOUR, {"y": float(y)})]
        out, _ = gated.process(recs), always.process(recs)
    (f,) = out.forecasts
    np.testing.assert_allclose(f.yhat, np.full_like(f.yhat, walk[-1]), rtol=1e-6)
    assert not np.allclose(f.yhat_base, walk[-1])
    assert gated.summary()["mae"] < 0.9 * always.summary()["mae"]
