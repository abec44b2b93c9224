"""``bench/defaults_check.py``: feeds cut into slices, each backtested with the defaults and the baseline."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest
from bench_module import load

BENCH = load("defaults_check")


def _feed(path, n: int) -> None:
    t = np.arange(n)
    y = 10 + np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.2, n)
    start = datetime(2024, 1, 1)
    pl.DataFrame({"date": [start + timedelta(hours=int(i)) for i in t], "load": y}).write_csv(path)


def test_slices_are_consecutive_and_short_feeds_are_whole_or_left_out(tmp_path):
    path = tmp_path / "f.csv"
    _feed(path, 700)
    assert BENCH.slices(path, "load", 300, 200) == [(0, 300), (300, 300)]
    assert BENCH.slices(path, "load", 1000, 200) == [(0, 700)]
    assert BENCH.slices(path, "load", 1000, 800) == []


def test_feed_and_setting_spellings_are_checked(tmp_path):
    path = tmp_path / "f.csv"
    _feed(path, 10)
    assert BENCH.parse_feed(f"{path}:load") == (path, "load")
    with pytest.raises(SystemExit, match="PATH:COLUMN"):
        BENCH.parse_feed(str(path))
    with pytest.raises(SystemExit, match="no file"):
        BENCH.parse_feed(f"{tmp_path}/missing.csv:load")
    with pytest.raises(SystemExit, match=r"--set: .*dotted config key"):
        BENCH.main(["--feeds", f"{path}:load", "--set", "growth=1.5"])
    with pytest.raises(SystemExit, match=r"--set: .*dotted config key"):  # every --set counts, not the last
        BENCH.main(["--feeds", f"{path}:load", "--set", "growth=1.5", "--set", "model.kind=xgboost"])


def test_one_slice_compares_the_defaults_with_periodic_retraining(tmp_path, capsys):
    path = tmp_path / "f.csv"
    _feed(path, 400)
    out = tmp_path / "r.json"
    args = ["--feeds", f"{path}:load", "--rows", "400", "--min-rows", "100", "--jobs", "1", "--out", str(out)]
    BENCH.main([*args, "--set", "adaptation.growth=1.5"])
    result = json.loads(out.read_text())
    assert json.loads(capsys.readouterr().out) == result
    (run,) = result["runs"]
    assert run["feed"] == "f.csv:load" and run["rows"] == 400
    assert math.isclose(run["ratio"], run["mae"] / run["mae_baseline"])
    assert run["fits"] >= 1 and run["fits_baseline"] >= 10  # periodic:24 refits every 24 of ~280 steps
    assert 0 < run["work_ratio"] < 1  # the defaults' fits are on no more rows than periodic's
    assert run["mae_bare"] > 0 and 0 <= run["persisted"] <= 1
    s = result["summary"]
    assert s["slices"] == 1 and s["worst_ratio"] == run["ratio"]
    assert s["within_bound"] == int(run["ratio"] <= BENCH.BOUND)
    assert result["changes"] == ["adaptation.growth=1.5"]


def test_a_wide_feed_is_one_run_of_all_its_series_with_a_ratio_each(tmp_path):
    path = tmp_path / "fleet.csv"
    rng = np.random.default_rng(1)
    t = np.arange(400)
    start = datetime(2024, 1, 1)
    pl.DataFrame(
        {
            "date": [start + timedelta(hours=int(i)) for i in t],
            "pump": 10 + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.2, 400),
            "fan": 50 + 5 * np.cos(2 * np.pi * t / 24) + rng.normal(0, 1.0, 400),
            "label": ["x"] * 400,  # not numeric: not a series
        }
    ).write_csv(path)
    assert BENCH.slices(path, "*", 300, 100) == [(0, 300)]  # counted in steps, not rows
    runs = BENCH.run_slice(path, "*", 100, 300, "")
    assert sorted(r["feed"] for r in runs) == ["fleet.csv:fan", "fleet.csv:pump"]
    fan, pump = sorted(runs, key=lambda r: r["feed"])
    assert fan["series_in_run"] == pump["series_in_run"] == 2
    assert fan["fits"] == pump["fits"] and fan["work_ratio"] == pump["work_ratio"]  # one shared model
    assert fan["mae"] > 2 * pump["mae"]  # each series' own error, on its own scale
    for run in runs:
        assert math.isclose(run["ratio"], run["mae"] / run["mae_baseline"]) and run["rows"] == 300
    named = BENCH.run_slice(path, "pump,fan", 100, 300, "")  # the same series, named
    assert [r["feed"] for r in named] == [r["feed"] for r in runs]
    assert [r["mae"] for r in named] == pytest.approx([r["mae"] for r in runs], rel=1e-9)


def test_ours_changes_the_defaults_side_only(tmp_path):
    path = tmp_path / "f.csv"
    _feed(path, 400)
    cfg = BENCH.load_config(environ={})
    spec = BENCH.baseline_spec(cfg, "adaptation.refit_mode=auto,policy=periodic:48")
    assert spec == f'{BENCH.BASELINE},adaptation.refit_mode="closed_form"'  # its own policy stays
    with pytest.raises(SystemExit, match=r"--ours: model.params.nope has no value.*--set"):
        BENCH.main(["--feeds", f"{path}:load", "--ours", "model.params.nope=1"])
    same = ["policy=periodic:24", "window=full", "memory=off"]
    (run,) = BENCH.run_slice(path, "load", 0, 400, "", ",".join(same))  # ours made the baseline
    assert run["ratio"] == pytest.approx(1.0, abs=1e-12) and run["work_ratio"] == 1.0
    (cold,) = BENCH.run_slice(path, "load", 0, 400, "", ",".join([*same, "adaptation.refit_mode=cold"]))
    assert cold["mae_baseline"] == pytest.approx(run["mae_baseline"], rel=1e-9)  # the baseline as it was
    assert cold["mae"] != pytest.approx(run["mae"], rel=1e-3)  # ours: Adam, not the closed form
