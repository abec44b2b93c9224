"""The stationary claim of issue 18 on bench/intervals.py's own functions: on a long exchangeable run the
adaptive interval covers within 2 points of nominal at each level and is no wider than 1.25x the static
split-conformal baseline fitted at the start.

Never asserts on seconds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # one naive backtest of 2 series x 3000 steps, tens of seconds of CPU

ROOT = Path(__file__).resolve().parents[1]
LEVELS = ["80", "95"]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_intervals", ROOT / "bench" / "intervals.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stationary_coverage_near_nominal_and_width_near_static() -> None:
    bench = _bench()
    fc, events = bench.forecasts("stationary", 0, "naive", steps=3000, series=2)
    assert events == []
    fc, _ = bench.static_bounds(fc, LEVELS, calibration=200)
    scored = bench.scores(bench.parts(fc, events)["stationary"], LEVELS)
    for lv in LEVELS:
        row = scored[lv]
        assert abs(row["adaptive_coverage"] - float(lv) / 100) <= 0.02, (lv, row)
        assert 0 < row["adaptive_width"] <= 1.25 * row["static_width"], (lv, row)
