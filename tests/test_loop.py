"""The serving loop: a forecast per full window, exact scores, late/duplicate records, feature drift."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.drift import RetrainPolicy
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.events import DriftAlarm, Retrained
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import DUPLICATE, LATE, MISSING_VALUE, Record
from adaptcast.streams.retrain import make_policy
from adaptcast.streams.state import RingBuffer

HOUR = 3_600_000


def _naive(lookback=4, horizon=3):
    m = create_forecaster("naive", lookback=lookback, horizon=horizon)
    X, Y = sliding_windows(np.arange(20.0), lookback, horizon)
    m.fit(X, Y)
    return m


def _rec(series, step, y):
    return Record(series, step * HOUR, {"y": float(y)})


def test_ring_buffer_keeps_newest_rows_in_order():
    rb = RingBuffer(capacity=3, channels=1)
    for v in range(10):
        rb.append(np.array([v]))
    assert len(rb) == 3 and rb.count == 10
    assert rb.last(3)[:, 0].tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="only 3"):
        rb.last(4)


def test_sliding_windows_shapes_and_alignment():
    vals = np.stack([np.arange(10.0), 100 + np.arange(10.0)], axis=1)
    X, Y = sliding_windows(vals, lookback=3, horizon=2, n_targets=1, stride=2)
    assert X.shape == (3, 3, 2) and Y.shape == (3, 2, 1)
    assert X[1, :, 0].tolist() == [2, 3, 4] and Y[1, :, 0].tolist() == [5, 6]
    with pytest.raises(ValueError, match="at least"):
        sliding_windows(np.arange(3.0), 3, 2)


def test_one_forecast_per_record_and_exact_scores():
    loop = ForecastLoop(_naive(), ["y"])
    forecasts, scored = [], []
    for step in range(10):
        res = loop.process([_rec("a", step, step), _rec("b", step, 2 * step)])
        forecasts += res.forecasts
        scored += res.scored
    # windows of 4 exist from step 3 on: 7 steps x 2 series
    assert len(forecasts) == 14
    fa = [f for f in forecasts if f.series == "a"]
    assert fa[0].issued_at_ms == 3 * HOUR
    assert fa[0].ts_ms == [4 * HOUR, 5 * HOUR, 6 * HOUR]
    assert fa[0].yhat[:, 0].tolist() == pytest.approx([3.0, 3.0, 3.0], abs=1e-5)  # last value, original units
    # a last-value forecast of a ramp errs by the slope at lead 1, by slope x lead at lead k
    assert {s.lead for s in scored} == {1} and len(scored) == 12
    for s in scored:
        assert s.abs_error[0] == pytest.approx(1 if s.series == "a" else 2, abs=1e-4)
    summary = loop.summary()
    assert summary["records"] == 20 and summary["forecasts"] == 14
    # all leads count in the MAE: per series, forecasts issued at steps 3..9 meet truth up to step 9
    errs = [
        slope * lead
        for slope in (1, 2)
        for issued in range(3, 10)
        for lead in range(1, 4)
        if issued + lead <= 9
    ]
    assert summary["scored_points"] == len(errs)
    assert summary["mae"] == pytest.approx(np.mean(errs), abs=1e-4)


def test_errors_near_float32s_largest_value_sum_to_a_finite_mae():
    """Rows are float32, but the running error sums are float64: four series erring by 3e38 at once
    would make a float32 sum infinite."""
    loop = ForecastLoop(_naive(), ["y"])
    truth = {step: 3e38 * (step % 2) for step in range(12)}
    errors = []
    for step, y in truth.items():
        for f in loop.process([_rec(s, step, y) for s in "abcd"]).forecasts:
            issued = f.issued_at_ms // HOUR
            errors += [
                abs(truth[issued + k] - float(v))
                for k, v in enumerate(f.yhat[:, 0], 1)
                if issued + k in truth
            ]
    mae = loop.summary()["mae"]
    assert max(errors) > 1e38 and np.isfinite(mae) and mae == pytest.approx(np.mean(errors), rel=1e-5)


def test_same_series_twice_in_one_batch_gives_two_forecasts():
    loop = ForecastLoop(_naive(), ["y"])
    res = loop.process([_rec("a", s, s) for s in range(6)])
    assert [f.issued_at_ms // HOUR for f in res.forecasts] == [3, 4, 5]
    assert [f.yhat[0, 0] for f in res.forecasts] == pytest.approx([3.0, 4.0, 5.0], abs=1e-5)


def test_late_duplicate_and_missing_values_are_rejected_not_fatal():
    loop = ForecastLoop(_naive(), ["y"])
    res = loop.process(
        [
            _rec("a", 5, 1),
            _rec("a", 5, 2),
            _rec("a", 4, 3),
            Record("a", 6 * HOUR, {"x": 1.0}),
            _rec("a", 6, 4),
        ]
    )
    assert [e.reason for _, e in res.rejected] == [DUPLICATE, LATE, MISSING_VALUE]
    assert loop.states["a"].buffer.last(2)[:, 0].tolist() == [1.0, 4.0]
    text = loop.metrics.render().decode()
    assert 'adaptcast_records_rejected_total{reason="late"} 1.0' in text
    assert "adaptcast_records_consumed_total 5.0" in text


def test_forecast_json_matches_contract():
    loop = ForecastLoop(_naive(horizon=2), ["y"])
    res = loop.process([_rec("a", s, s) for s in range(4)])
    out = res.forecasts[-1].to_json(["y"])
    assert out["series"] == "a" and out["issued_at"] == "1970-01-01T03:00:00Z"
    assert out["ts"] == ["1970-01-01T04:00:00Z", "1970-01-01T05:00:00Z"]
    assert out["yhat"]["y"] == pytest.approx([3.0, 3.0], abs=1e-5) and out["model"] == "naive"


def test_feature_drift_policy_sees_input_rows_and_retrains():
    rng = np.random.default_rng(0)
    lookback, horizon, shift_at = 8, 3, 350
    policy = make_policy("drift:feature", "full", lookback, horizon, defer=0)  # refit at the alarm
    model = create_forecaster("naive", lookback=lookback, horizon=horizon)
    loop = ForecastLoop(model, ["y"], policy=policy, history=400, min_train_rows=200)
    for step in range(450):
        level = 3.0 if step >= shift_at else 0.0  # the inputs' distribution moves up by ~4 sd
        loop.process(
            [_rec(f"s{k}", step, np.sin(step / 5 + k) + 0.3 * rng.normal() + level) for k in range(4)]
        )
    alarms = [e for e in loop.events if isinstance(e, DriftAlarm)]
    assert alarms and alarms[0].decision.detector == "feature"
    assert shift_at < alarms[0].step < shift_at + 50
    assert alarms[0].decision.change_step == alarms[0].step
    retrained = [e for e in loop.events if isinstance(e, Retrained) and e.step == alarms[0].step]
    assert retrained and retrained[0].decision is alarms[0].decision
    assert loop.summary()["drift_alarms"] == len(alarms)


def test_the_policy_reads_the_served_forecasts_errors_beside_the_bare_models():
    """The early-refit watch judges what users were served (the error memory's correction included);
    the detector keeps reading the bare model's errors. Both in standardised units, lead 1."""
    policy = make_policy("drift", "full", 4, 3, early_refit_ratio=3.0)
    loop = ForecastLoop(_naive(), ["y"], policy=policy, memory={"warmup": 0}, memory_gate=False)
    seen = []
    decide = policy.should_retrain
    policy.should_retrain = lambda info: seen.append(info) or decide(info)
    differ = 0
    for step in range(40):
        res = loop.process([_rec("a", step, step % 5), _rec("b", step, 2 * (step % 7))])
        if not res.scored:
            continue
        std = loop.model.scaler.std[0]
        info = seen[-1]
        served = [s.abs_error[0] / std for s in res.scored]
        bare = [s.abs_error_base[0] / std for s in res.scored]
        assert info.served_errors.tolist() == pytest.approx(served, rel=1e-5)
        assert info.errors.tolist() == pytest.approx([np.mean(bare)], rel=1e-5)  # one step: their mean
        differ += served != pytest.approx(bare, rel=1e-3)
    assert differ  # the memory corrected something, so the two differ


def test_copies_of_one_series_raise_the_alarms_of_that_series_alone():
    """The detector reads one observation per step, the mean over the series scored at it, so a
    feed of eight identical series is judged as one of them; fed each series' error, ``min_samples``
    and the window counted series, and eight copies fired on a few steps' noise after each swap."""
    rng = np.random.default_rng(3)
    y = np.r_[rng.normal(0, 1, 150), rng.normal(6, 1, 150)]

    def alarms(series: int) -> list[int]:
        policy = RetrainPolicy.parse(
            "drift", window="full", detector_params={"min_samples": 12, "window": 30}
        )
        loop = ForecastLoop(_naive(), ["y"], policy=policy)
        fired = []
        for step, v in enumerate(y):
            res = loop.process([_rec(f"s{i}", step, v) for i in range(series)])
            fired += [step for e in res.events if isinstance(e, DriftAlarm)]
        return fired

    one = alarms(1)
    assert one and alarms(8) == one


def test_the_policy_reads_every_leads_model_error_against_persistences():
    """Beside lead 1, the early-refit watch gets this step's summed errors over every lead scored:
    the model's own forecasts' (not the memory-corrected ones it serves) and those of repeating the
    value at issue, in standardised units."""
    model = create_forecaster("arnet", lookback=4, horizon=3, epochs=2)
    X, Y = sliding_windows(np.sin(np.arange(60.0) / 3), 4, 3)
    model.fit(X, Y)
    policy = make_policy("drift", "full", 4, 3, early_refit_ratio=3.0)
    loop = ForecastLoop(model, ["y"], policy=policy, memory={"warmup": 0}, memory_gate=False)
    seen = []
    decide = policy.should_retrain
    policy.should_retrain = lambda info: seen.append(info) or decide(info)
    value = {}  # (series, time) → the value recorded then
    issued: dict[tuple[str, int], list[tuple[float, float]]] = {}  # (series, target time) → model's
    checked = corrected = 0
    for step in range(40):
        recs = [_rec("a", step, step % 5), _rec("b", step, 2 * (step % 7))]
        value.update({(r.series, r.ts_ms): r.values["y"] for r in recs})
        res = loop.process(recs)
        if seen and seen[-1].step == loop.step:
            std = loop.model.scaler.std[0]
            own = persistence = 0.0
            for rec in recs:
                for yhat, last in issued.pop((rec.series, rec.ts_ms), []):
                    own += abs(rec.values["y"] - yhat) / std
                    persistence += abs(rec.values["y"] - last) / std
            assert seen[-1].against_persistence == pytest.approx((own, persistence), rel=1e-5, abs=1e-9)
            checked += persistence > 0 and own != pytest.approx(persistence, rel=1e-3)
        corrected += sum(not np.allclose(f.yhat, f.yhat_base) for f in res.forecasts)
        for f in res.forecasts:
            for ts, y in zip(f.ts_ms, f.yhat_base[:, 0], strict=True):
                issued.setdefault((f.series, ts), []).append((float(y), value[(f.series, f.issued_at_ms)]))
    assert checked > 10 and corrected > 10  # the memory served other forecasts than the model's


def test_detector_and_error_memory_time_are_in_the_compute_ledger():
    """The policy's decision (detector) is the "detect" phase; the memory's keys and lookups are "correct"."""
    loop = ForecastLoop(_naive(), ["y"], policy=make_policy("drift", "full", 4, 3), memory={"warmup": 0})
    for step in range(30):
        loop.process([_rec("a", step, step % 5), _rec("b", step, 2 * (step % 7))])
    phases = loop.ledger.totals()
    forecasts = phases["predict"]["samples"]
    assert forecasts == loop.n_forecasts > 0
    assert phases["detect"]["calls"] >= 30 - 4 and phases["detect"]["samples"] > 0  # one per step, its errors
    # every prediction batch's keys are embedded and corrected under "correct", beside the memory updates
    assert phases["correct"]["calls"] >= phases["predict"]["calls"]
    assert phases["correct"]["samples"] > forecasts


def test_persistence_is_scored_on_the_same_points_as_the_model():
    """The summary and the live gauge give persistence's error (the value at issue repeated) beside
    the model's: for a naive model, which forecasts just that, the two are equal; for a model that
    forecasts a constant, persistence's is the mean step of the walk at each lead."""
    rng = np.random.default_rng(2)
    walk = np.cumsum(rng.normal(size=300))
    naive = ForecastLoop(_naive(), ["y"])
    for step, y in enumerate(walk):
        naive.process([_rec("a", step, y)])
    summary = naive.summary()
    assert summary["mae"] == pytest.approx(summary["mae_persistence"])
    gauges = naive.metrics
    assert gauges.live_error._value.get() == pytest.approx(gauges.live_persistence_error._value.get())
    flat = create_forecaster("naive", lookback=4, horizon=3)
    flat.fit(*sliding_windows(np.zeros(20), 4, 3))
    const = ForecastLoop(flat, ["y"], memory=None)
    for step, y in enumerate(walk):
        const.process([_rec("a", step, y)])
    # the same scored points: forecasts at t (from t = 3, a full window) of t + h, where t + h < 300
    y = walk.astype(np.float32)  # the loop's windows hold float32
    expected = np.mean([abs(y[t + h] - y[t]) for t in range(3, 300) for h in (1, 2, 3) if t + h < 300])
    assert const.summary()["mae_persistence"] == pytest.approx(expected, rel=1e-6)
