"""A served forecast stays within its window's range widened by a few spans: a trend carried on for the
horizon never strays, an answer thousands of times beyond the window does and is served the
window's last value instead, and a flat window keeps the reach of the data the model trained on."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.data import SeriesFrame
from adaptcast.forecast.envelope import Bounds, envelope, floor, strays
from adaptcast.streams.backtest import run_config
from adaptcast.streams.cli import main
from adaptcast.streams.config import load_config


def _ramp(lookback: int, horizon: int, slope: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """A straight line's window and its continuation over the horizon: ``[1, L, 1]``, ``[1, H, 1]``."""
    t = np.arange(lookback + horizon, dtype=np.float32) * slope
    return t[None, :lookback, None], t[None, lookback:, None]


@pytest.mark.parametrize(("lookback", "horizon"), [(48, 12), (24, 24), (12, 48)])
def test_a_trend_carried_on_for_the_horizon_never_strays(lookback, horizon):
    window, ahead = _ramp(lookback, horizon)
    for line in (ahead, -ahead + 2 * window[0, -1, 0]):  # rising on, or turned back down
        out, strayed = Bounds.of(window, 1, horizon, None).keep(line)
        assert not strayed.any()
        np.testing.assert_array_equal(out, line)


def test_a_target_that_strays_at_any_lead_is_served_its_last_value_at_every_lead():
    """Only the target and window that strayed: the other target of the same window, and the other
    window, are served as forecast."""
    windows = np.ones((2, 24, 3), dtype=np.float32)
    windows[:, 12:, 0] = 1000.0  # target 0 jumped a thousandfold; channel 2 is a feature
    windows[:, -1, 0] = 1001.0
    forecasts = np.full((2, 6, 2), 1000.0, dtype=np.float32)
    forecasts[:, :, 1] = 1.5
    forecasts[1, 3, 0] = 3e6  # the second window's model answered with nonsense at one lead of target 0
    assert strays(forecasts, *envelope(windows, 2, 6))[:, 0].tolist() == [[False, False], [True, False]]
    out, strayed = Bounds.of(windows, 2, 6, None).keep(forecasts)
    assert strayed.tolist() == [False, True] and out.dtype == np.float32
    assert out[1, :, 0].tolist() == [1001.0] * 6
    np.testing.assert_array_equal(out[0], forecasts[0])
    np.testing.assert_array_equal(out[1, :, 1], forecasts[1, :, 1])


def test_a_flat_window_keeps_the_reach_of_the_training_data():
    window = np.zeros((1, 24, 1), dtype=np.float32)  # a run of zeros of an intermittent count
    burst = np.full((1, 6, 1), 7.0, dtype=np.float32)
    assert not strays(burst, *envelope(window, 1, 6, trained=np.array([[0.0], [9.0]]))).any()  # within 2 x 9
    assert strays(burst, *envelope(window, 1, 6, trained=np.array([[0.0], [1.0]]))).all()
    assert not strays(burst * 1e9, *envelope(window, 1, 6)).any()  # no known span: no bound


def _millionfold_jump(steps: int = 600, at: int = 300) -> SeriesFrame:
    """One series, noise about 1 that jumps a millionfold (a feed whose unit changed)."""
    rng = np.random.default_rng(0)
    y = np.where(np.arange(steps) < at, rng.normal(1.0, 0.1, steps), rng.normal(1e6, 1e5, steps))
    ts = [datetime(2024, 1, 1) + timedelta(hours=i) for i in range(steps)]
    return SeriesFrame("jump", pl.DataFrame({"ts": ts, "series": ["a"] * steps, "y": y}), ["y"], 1, [])


def test_the_loop_serves_no_forecast_far_beyond_its_window(monkeypatch):
    """A linear AR-Net trained on noise about 1 and read windows holding the jump answers with values
    thousands of times beyond them; served, those are replaced by the window's last value and counted."""
    # the memory off: its gate would serve the last value once the model kept erring more
    cfg = load_config(
        overrides={"model": {"lookback": 48, "horizon": 12}, "adaptation": {"memory": False}}, environ={}
    )
    run = run_config(_millionfold_jump(), cfg)[0]
    served = run.forecasts.lazy().select("y", "yhat").collect()
    assert run.summary["n_clipped"] > 0
    assert served["yhat"].abs().max() < 2 * served["y"].abs().max()
    monkeypatch.setattr("adaptcast.forecast.envelope.REACH", np.inf)  # what was served before
    unclipped = run_config(_millionfold_jump(), cfg)[0]
    assert unclipped.summary["n_clipped"] == 0
    assert unclipped.summary["mae"] > 100 * run.summary["mae"]


def _predicted(frame: pl.DataFrame, tmp_path: Path, monkeypatch, answer) -> pl.Series:
    """``adaptcast predict``'s forecasts from ``frame`` (a CSV) with a naive model trained on it by
    ``adaptcast train`` whose predict is replaced by ``answer`` (the fault)."""
    frame.write_csv(tmp_path / "feed.csv")
    shape = ["--target", "y", "--lookback", "48", "--horizon", "12", "--model", "naive"]
    res = CliRunner().invoke(
        main, ["train", "--data", str(tmp_path / "feed.csv"), *shape, "--out", str(tmp_path / "m")]
    )
    assert res.exit_code == 0, res.output
    monkeypatch.setattr(type(create_forecaster("naive", lookback=48, horizon=12)), "predict", answer)
    res = CliRunner().invoke(
        main, ["predict", "--model-dir", str(tmp_path / "m"), "--data", str(tmp_path / "feed.csv")]
    )
    assert res.exit_code == 0, res.output
    return pl.read_csv(io.StringIO(res.output))["yhat"]


def test_predict_from_a_file_keeps_its_forecasts_within_the_envelope(tmp_path, monkeypatch):
    """``adaptcast predict`` serves what the loop would. Fault injected: the saved model answers a
    thousand times its window's last value, as a linear model read a window unlike its training's."""
    frame = _millionfold_jump(steps=400, at=370).frame.drop("series")
    yhat = _predicted(
        frame, tmp_path, monkeypatch, lambda self, X: np.repeat(1000 * X[:, -1:, :1], self.horizon, axis=1)
    )
    assert yhat.to_list() == pytest.approx([frame["y"][-1]] * 12, rel=1e-6)  # the last value, every lead


def test_zero_is_a_floor_only_where_the_model_and_the_window_never_went_below_it():
    windows = np.zeros((3, 24, 2), dtype=np.float32)
    windows[1, 5, 0] = 3.0  # a count: zeros and positives
    windows[2, 5, 0] = -1.0  # a value below zero: no floor
    windows[:, :, 1] = -5.0  # a feature channel's sign says nothing
    least = floor(windows, 1, np.array([[0.0, -5.0], [9.0, 0.0]]))
    assert least.shape == (3, 1, 1) and least.dtype == np.float32
    assert least.ravel().tolist() == [0.0, 0.0, -np.inf]
    assert np.isneginf(floor(windows, 1, np.array([[-0.5, -5.0], [9.0, 0.0]]))).all()  # trained below zero
    assert np.isneginf(floor(windows, 1, np.array([[0.5, -5.0], [9.0, 0.0]]))).all()  # never reached zero
    assert np.isneginf(floor(windows, 1, None)).all()  # no training span known


def test_bounds_replace_what_strays_and_raise_to_the_floor_without_counting_it():
    """What the loop and ``adaptcast predict`` both serve: a forecast far beyond its window is served
    the window's last value and counted; one beneath a count's zero is raised to it and not counted."""
    windows = np.zeros((3, 24, 1), dtype=np.float32)
    windows[:, 5, 0] = 4.0  # a count: zeros and a four, trained on 0..4
    bounds = Bounds.of(windows, 1, 6, np.array([[0.0], [4.0]]))
    forecasts = np.stack([np.full((6, 1), v, np.float32) for v in (2.0, -1.0, 1e6)])
    out, strayed = bounds.keep(forecasts)
    assert out.dtype == np.float32
    assert out[:, 0, 0].tolist() == [2.0, 0.0, 0.0]  # the last value of the third window: 0
    assert strayed.tolist() == [False, False, True]


def _shop(days: int = 60, shift: float = 0.0) -> SeriesFrame:
    """Hourly orders of a shop closed from 22:00 to 10:00 (zero then), noisy by day; ``shift`` moves
    every value (below zero: no longer a count)."""
    rng = np.random.default_rng(3)
    hour = np.arange(days * 24) % 24
    open_ = (hour >= 10) & (hour < 22)
    y = np.where(open_, np.maximum(rng.normal(8 + 6 * np.sin(np.pi * (hour - 10) / 12), 3.0), 0.0), 0.0)
    ts = [datetime(2024, 1, 1) + timedelta(hours=i) for i in range(y.size)]
    return SeriesFrame(
        "shop", pl.DataFrame({"ts": ts, "series": ["a"] * y.size, "y": y + shift}), ["y"], 1, []
    )


def test_a_count_is_never_forecast_below_zero_nor_its_intervals(monkeypatch):
    """Forecasts and interval bounds of a series that rests at zero stay at or above it, which only
    takes error off; a series that goes below zero is served as before."""
    cfg = load_config(overrides={"model": {"lookback": 48, "horizon": 12}}, environ={})
    floored = run_config(_shop(), cfg)[0].forecasts.lazy().collect()
    shifted = run_config(_shop(shift=-1.0), cfg)[0].forecasts.lazy().collect()
    monkeypatch.setattr(
        "adaptcast.forecast.envelope.floor", lambda w, n, t: np.full((len(w), 1, n), -np.inf, np.float32)
    )
    before = run_config(_shop(), cfg)[0].forecasts.lazy().collect()
    assert before["yhat"].min() < 0 and before["lo_80"].min() < 0  # what was served before
    assert floored["yhat"].min() >= 0 and floored["lo_80"].min() >= 0 and floored["lo_95"].min() >= 0
    mae = [(f["yhat"] - f["y"]).abs().mean() for f in (floored, before)]
    assert mae[0] < mae[1]
    shifted_unfloored = run_config(_shop(shift=-1.0), cfg)[0].forecasts.lazy().collect()
    assert shifted["yhat"].to_list() == shifted_unfloored["yhat"].to_list()


def test_predict_from_a_file_serves_no_count_below_zero(tmp_path, monkeypatch):
    """``adaptcast predict`` floors a count as the loop does. Fault injected: the saved model answers
    below zero."""
    frame = _shop(days=10).frame.drop("series")
    below = _predicted(
        frame, tmp_path, monkeypatch, lambda self, X: np.full((len(X), 12, 1), -2.0, np.float32)
    )
    assert below.to_list() == [0.0] * 12
