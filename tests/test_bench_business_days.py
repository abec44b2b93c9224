"""``bench/business_days.py``: a weekday feed on the daily grid (weekends filled) against business days."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
from bench_module import load

BENCH = load("business_days")


def test_a_weekday_feed_is_compared_on_matched_forecasts(tmp_path, capsys):
    days = np.busday_offset(np.datetime64("2020-01-01", "D"), np.arange(260), roll="forward")
    y = 10 + np.cumsum(np.random.default_rng(0).normal(0, 0.3, days.size))
    path = tmp_path / "close.csv"
    pl.DataFrame({"date": days, "close": y}).write_csv(path)
    out = tmp_path / "r.json"
    BENCH.main(["--feeds", f"{path}:close", "--min-rows", "100", "--lookback", "14", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result == json.loads(capsys.readouterr().out)
    (run,) = result["runs"]
    assert run["same_span_lookback"] == 10 and run["rows"] == 260
    # the daily grid forecasts weekends: two of every seven lead points, give or take the ends
    assert 0.2 < run["daily_points_on_weekends"] / run["daily_points"] < 0.35
    assert 0.5 < run["ratio_same_lookback"] < 2 and 0.5 < run["ratio_same_span"] < 2
    assert result["summary"]["slices"] == 1
