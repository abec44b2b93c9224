"""bench/interval_scales.py's per-series scores, on a hand-made forecasts frame. Never asserts on seconds."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from bench_module import load


def test_per_series_scores_coverage_widths_and_winkler() -> None:
    bench = load("interval_scales")
    fc = pl.DataFrame(
        {
            "series": ["a", "a", "b", "b", "b"],
            "y": [1.0, 5.0, 0.0, 0.0, None],  # b's last forecast has no truth yet: not scored
            "yhat": [1.0, 1.0, 0.5, 0.0, 0.0],
            "lo_80": [0.0, 0.0, -1.0, -3.0, -1.0],
            "hi_80": [2.0, 2.0, 1.0, 3.0, 1.0],
            "lo_95": [np.nan, -1.0, -2.0, -4.0, -2.0],  # a's first had no bound yet: not scored
            "hi_95": [np.nan, 3.0, 2.0, 4.0, 2.0],
        }
    )
    got = bench.per_series(fc, ["80", "95"])
    assert got["a"]["mae"] == pytest.approx(4.0) and got["b"]["mae"] == pytest.approx(0.25)
    a80, b80 = got["a"]["levels"]["80"], got["b"]["levels"]["80"]
    assert a80["coverage"] == 0.0 and a80["winkler"] == pytest.approx(2.0 + 10.0 * 3.0)
    assert b80["coverage"] == 1.0 and b80["median_width"] == pytest.approx(4.0)
    assert b80["mean_width"] == pytest.approx(4.0) and b80["winkler"] == pytest.approx(4.0)
    assert got["a"]["levels"]["95"]["winkler"] == pytest.approx(4.0 + 40.0 * 2.0)


def test_a_scaled_scenario_multiplies_series_i_by_the_step_to_the_i(tmp_path) -> None:
    bench = load("interval_scales")
    path, events = bench.scaled_scenario("level_shift", 0, 200, 100.0, tmp_path)
    plain = bench.make_scenario("level_shift", seed=0, steps=200)
    wide = pl.read_csv(path, try_parse_dates=True)
    for i, name in enumerate(["s0", "s1", "s2", "s3"]):
        y = plain.frame.filter(pl.col("series") == name).sort("ts")["y"].to_numpy()
        assert np.allclose(wide[name].to_numpy(), y * 100.0**i)
    assert events == [ev.start for ev in plain.events] and events
