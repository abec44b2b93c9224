"""Prediction intervals in the loop: record fields, calibration from truths only, re-seeding on a swap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adaptcast.drift.conformal import ConformalParams
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.build import build_loop
from adaptcast.streams.config import load_config
from adaptcast.streams.events import Retrained
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record

HOUR = 3_600_000
OLD_FIELDS = ("series", "issued_at", "ts", "yhat", "yhat_base", "model", "model_version", "correction")


DEFAULT = ConformalParams()


def _loop(intervals: ConformalParams | None = DEFAULT) -> ForecastLoop:
    m = create_forecaster("naive", lookback=4, horizon=3)
    m.fit(*sliding_windows(np.arange(20.0), 4, 3))
    return ForecastLoop(m, ["y"], intervals=intervals)


def _noise(loop: ForecastLoop, steps: int, skip: set[int] = frozenset()) -> list:
    rng = np.random.default_rng(0)
    out = []
    for step in range(steps):
        if step not in skip:
            out += loop.process([Record("a", step * HOUR, {"y": float(rng.normal())})]).forecasts
    return out


def old_consumer(value: bytes) -> dict:
    """A consumer written before intervals: reads the fields it knows and ignores the rest."""
    rec = json.loads(value)
    return {k: rec[k] for k in OLD_FIELDS}


def test_records_carry_bounds_per_level_and_target_around_the_corrected_forecast() -> None:
    loop = _loop()
    forecasts = _noise(loop, 300)
    last = forecasts[-1]
    assert last.levels == ("80", "95") and last.lo.shape == (2, 3, 1)
    assert (last.lo[0] <= last.yhat).all() and (last.hi[0] >= last.yhat).all()
    assert (last.hi[1] - last.lo[1] >= last.hi[0] - last.lo[0]).all()  # 95 % is wider than 80 %
    rec = json.loads(json.dumps(last.to_json(["y"]), allow_nan=False))
    assert set(rec["lo"]) == set(rec["hi"]) == {"80", "95"}
    assert rec["lo"]["80"]["y"] == pytest.approx(last.lo[0, :, 0].tolist())
    first = forecasts[0].to_json(["y"])  # nothing calibrated yet: null bounds, still valid JSON
    assert first["lo"]["95"]["y"] == [None, None, None]
    json.dumps(first, allow_nan=False)


def test_an_old_consumer_reads_the_same_fields_with_intervals_on_or_off() -> None:
    on, off = _noise(_loop(), 60)[-1], _noise(_loop(None), 60)[-1]
    assert "lo" not in off.to_json(["y"])
    got = [old_consumer(json.dumps(f.to_json(["y"])).encode()) for f in (on, off)]
    assert got[0] == got[1]


def test_calibrator_learns_from_truths_only_never_from_filled_points() -> None:
    loop = _loop()
    _noise(loop, 200, skip={50, 120, 160})  # three grid points filled
    assert loop.metrics.grid_filled._value.get() == 3
    assert loop.intervals is not None
    assert int(loop.intervals.series["a"].count.sum()) == loop.summary()["scored_points"]


def test_live_coverage_gauge_per_level() -> None:
    loop = _loop()
    _noise(loop, 400)
    text = loop.metrics.render().decode()
    values = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("adaptcast_interval_coverage{")
    }
    assert set(values) == {"80", "95"} and 0.6 < values["80"] < values["95"] <= 1.0


def _configured() -> ForecastLoop:
    """The loop as the front ends build it, around a naive model fitted once (no memory)."""
    cfg = load_config(
        overrides={
            "model": {"kind": "naive", "lookback": 8, "horizon": 4},
            "adaptation": {"policy": "never", "memory": False},
        },
        environ={},
    )
    return build_loop(cfg)


def test_a_swap_reseeds_from_validation_residuals_so_the_first_forecasts_have_bounds() -> None:
    loop = _configured()
    rng = np.random.default_rng(1)
    first = None
    for step in range(200):
        res = loop.process([Record("a", step * HOUR, {"y": float(rng.normal())})])
        if res.forecasts and first is None:
            first = res.forecasts[0]
    assert any(isinstance(e, Retrained) for e in loop.events)
    assert first is not None and np.isfinite(first.lo).all() and np.isfinite(first.hi).all()


def test_intervals_off_in_config_builds_no_calibrator() -> None:
    cfg = load_config(overrides={"intervals": {"method": "off"}}, environ={})
    assert cfg.intervals.params() is None
    assert build_loop(cfg).intervals is None

    def steps(method: str) -> tuple[tuple[float, ...], float]:
        p = load_config(overrides={"intervals": {"method": method}}, environ={}).intervals.params()
        return p.gammas, p.gamma

    assert steps("rolling") == ((), 0.0) and steps("aci") == ((), 0.005)
    assert len(steps("dtaci")[0]) == 8 and steps("dtaci")[1] == 0.005


def _idle_then_busy(rng: np.random.Generator, steps: int, scale: float) -> np.ndarray:
    """Still for 12 steps in every 36 (a plant at night), noise of sd ``scale`` the rest of the time."""
    busy = (np.arange(steps) % 36) >= 12
    return np.where(busy, rng.normal(size=steps) * scale, 5.0 * scale + 1e-4 * scale * rng.normal(size=steps))


def test_bounds_under_window_norm_standard_are_in_each_series_units_not_a_still_windows() -> None:
    """Under window_norm standard, a window that barely moves has a spread near 0: a residual in its
    units is huge, and intervals drawn from such residuals were tens of times too wide. The bounds
    are drawn in the forecasts' units, each series at its own scale."""
    cfg = load_config(
        overrides={
            "model": {"kind": "naive", "lookback": 8, "horizon": 1, "params": {"window_norm": "standard"}},
            "adaptation": {"policy": "periodic:120", "memory": False},
        },
        environ={},
    )
    loop = build_loop(cfg)
    rng = np.random.default_rng(2)
    steps, scales = 900, {"small": 1.0, "large": 1000.0}
    values = {name: _idle_then_busy(rng, steps, scale) for name, scale in scales.items()}
    widths: dict[str, list[float]] = {name: [] for name in scales}
    for step in range(steps):
        recs = [Record(name, step * HOUR, {"y": float(v[step])}) for name, v in values.items()]
        for f in loop.process(recs).forecasts:
            if step >= 300 and (step % 36) >= 14:  # forecasts issued while the series is busy
                widths[f.series].append(float(f.hi[1, 0, 0] - f.lo[1, 0, 0]) / scales[f.series])
    assert sum(isinstance(e, Retrained) for e in loop.events) > 3
    # a busy step's naive error has sd sqrt(2): the 95 % band is about 2 x 1.96 x 1.41 = 5.5 sd wide
    for name, got in widths.items():
        assert 2.0 < np.median(got) < 12.0 and np.mean(got) < 20.0, (name, np.median(got), np.mean(got))


def test_a_model_served_as_given_keeps_the_pool_so_its_first_forecasts_have_bounds() -> None:
    """A hot swap (or a checkpoint) has no validation residuals: the calibrator keeps the pool the
    last swap left, so the new model's first forecasts are bounded, not null until its own errors come."""
    loop = _configured()
    rng = np.random.default_rng(3)
    for step in range(100):
        loop.process([Record("a", step * HOUR, {"y": float(rng.normal())})])
    assert loop.intervals is not None and loop.intervals.series
    served = loop.model.clone()
    served.fit(*sliding_windows(rng.normal(size=200), 8, 4))
    loop.serve(served)
    assert loop.intervals.series == {}  # the old model's own residuals are forgotten
    first = loop.process([Record("a", 100 * HOUR, {"y": float(rng.normal())})]).forecasts[0]
    assert np.isfinite(first.lo).all() and np.isfinite(first.hi).all()
