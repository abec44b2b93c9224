"""Backtest scoring: fits and swaps, training work, post-event error by issue time, the Pareto chart."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl

from adaptcast.forecast.data import SeriesFrame
from adaptcast.streams.backtest import AFTER_EVENT_STEPS, backtest, run_config
from adaptcast.streams.config import load_config
from adaptcast.streams.report import pareto_front

START = datetime(2024, 1, 1)
STEP_AT = 200


def _step_feed(kind: str = "level_shift", steps: int = 400) -> SeriesFrame:
    """One series, 0 until ``STEP_AT`` then 10, labelled as a ``kind`` event."""
    ts = [START + timedelta(hours=i) for i in range(steps)]
    y = np.where(np.arange(steps) >= STEP_AT, 10.0, 0.0)
    frame = pl.DataFrame({"ts": ts, "series": ["a"] * steps, "y": y})
    event = {
        "kind": kind,
        "series": ["a"],
        "start_step": STEP_AT,
        "end_step": STEP_AT,
        "start": ts[STEP_AT].isoformat(),
        "end": ts[STEP_AT].isoformat(),
        "abrupt": True,
        "detail": "",
    }
    return SeriesFrame("step", frame, ["y"], 1, [event])


def _cfg(**adaptation):
    return load_config(
        overrides={
            "model": {"kind": "naive", "lookback": 24, "horizon": 6},
            "adaptation": {"policy": "never", "window": "full", "memory": False, **adaptation},
        },
        environ={},
    )


def test_post_event_error_counts_forecasts_issued_after_the_event():
    """The last-value forecast is exact once issued after the step; before it, it misses by 10."""
    s = run_config(_step_feed(), _cfg())[0].summary
    ev = s["events"][0]
    assert ev["mae_after_50"] > 0  # forecasts *for* the steps after the event include earlier issues
    assert ev["mae_after_issued"] == 0.0
    post = s["post_event"]
    assert post["mae"] == 0.0 and post["mae_by_lead"] == [0.0] * 6
    assert post["steps"] == AFTER_EVENT_STEPS and post["events"] == 1
    assert post["n_scored"] == AFTER_EVENT_STEPS * 6


def test_variance_events_are_left_out_of_the_post_event_error():
    s = run_config(_step_feed("variance"), _cfg())[0].summary
    assert s["post_event"] is None
    assert s["events"][0]["mae_after_issued"] == 0.0  # still scored per event


def test_fits_swaps_and_work_are_counted_for_every_fit():
    cfg = load_config(
        overrides={
            "scenario": {"name": "level_shifts", "series": 2, "steps": 600, "seed": 1},
            "model": {"kind": "arnet", "lookback": 24, "horizon": 6, "params": {"epochs": 2, "patience": 5}},
            "adaptation": {
                "policy": "periodic:48",
                "window": "full",
                "memory": True,
                "refit": False,
                "refit_mode": "cold",  # trained by epochs of SGD, not solved in closed form
            },
        },
        environ={},
    )
    run = backtest(cfg, report=False).summary["configs"]
    s = next(iter(run.values()))
    assert s["n_fits"] == sum(s["fit_outcomes"].values()) >= s["n_retrains"] == s["fit_outcomes"]["retrain"]
    assert s["n_fits"] > 5
    assert (
        s["samples_seen"] == 2 * s["train_samples"]
    )  # without refits every fit ran its two epochs over its windows
    assert s["memory_samples"] > 0


def test_report_draws_the_pareto_chart(tmp_path):
    cfg = _cfg()
    cfg.backtest.compare = ["policy=periodic:50"]
    backtest(cfg, data=_step_feed(), out=tmp_path)
    assert (tmp_path / "pareto.png").is_file()
    assert 'src="pareto.png"' in (tmp_path / "report.html").read_text()


def test_pareto_front_keeps_the_points_nothing_beats():
    costs = [1.0, 2.0, 3.0, 3.0, 0.5]
    errors = [2.0, 1.0, 1.5, 1.0, 3.0]
    assert pareto_front(costs, errors) == [True, True, False, False, True]
