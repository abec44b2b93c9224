"""Backtest CLI: outputs, determinism, comparison specs and clear errors on bad input."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast.base import InputError
from adaptcast.streams.backtest import EVENTS_FILE, FORECASTS_FILE, SUMMARY_FILE, variant
from adaptcast.streams.cli import main
from adaptcast.streams.config import load_config
from adaptcast.streams.embedded import run_embedded
from adaptcast.streams.report import (
    COMPARISON_PLOTS,
    COVERAGE_PLOT,
    FORECAST_PLOT,
    GAP_STEPS,
    REPORT_FILE,
    SUMMARY_COLUMNS,
    WORST_PLOT,
    ZOOM_MIN_FACTOR,
    ZOOM_POINTS,
    ConfigRun,
    break_gaps,
    interval_levels,
    series_errors,
    write_report,
    zoom_rows,
)

ETT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ett" / "ETTh1.csv"
FAST = ["--model", "naive", "--lookback", "24", "--horizon", "6", "--steps", "400", "--series", "2"]


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["backtest", *args])
    return res.exit_code, res.output


def _png_height(path: Path) -> int:
    """A PNG's height in pixels, from its header (IHDR: width then height, big-endian)."""
    return int.from_bytes(path.read_bytes()[20:24], "big")


def test_the_forecast_plot_breaks_its_lines_at_a_gap_and_not_at_a_weekend():
    """A stretch with no forecasts is drawn as a break, not a straight line joining its two sides; a
    business-day feed's weekend (three usual steps) is not a gap."""
    gap = 3 + GAP_STEPS + 1  # more than GAP_STEPS steps after minute 3: a gap
    minutes = [0, 1, 2, 3, gap, gap + 1, gap + 1 + GAP_STEPS, gap + 2 + GAP_STEPS]  # then exactly GAP_STEPS
    ts = [datetime(2024, 1, 1, 0, m) for m in minutes]
    df = pl.DataFrame({"ts": ts, "y": [float(i) for i in range(len(ts))], "lo_80": [0.0] * len(ts)})
    out = break_gaps(df)
    assert out["ts"].is_sorted() and out.height == df.height + 1  # only the gap of more than GAP_STEPS
    empty = out.filter(pl.col("y").is_null())
    assert empty["ts"].to_list() == [datetime(2024, 1, 1, 0, 4)]  # one usual step after the last before it
    assert empty["lo_80"].is_null().all()  # the bands break there too
    assert out.drop_nulls().equals(df)
    days = [datetime(2024, 1, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 15)]  # Mon-Fri, twice
    weekdays = pl.DataFrame({"ts": days, "y": [1.0] * len(days)})
    assert break_gaps(weekdays).equals(weekdays)


def test_long_runs_get_an_enlarged_last_stretch(tmp_path):
    """A run with many forecasts is a smear drawn whole: its forecast plot gains a second panel."""
    assert zoom_rows(ZOOM_MIN_FACTOR * ZOOM_POINTS) == 0
    assert zoom_rows(ZOOM_MIN_FACTOR * ZOOM_POINTS + 1) == ZOOM_POINTS
    heights = []
    for steps in (400, ZOOM_MIN_FACTOR * ZOOM_POINTS + 200):
        out = tmp_path / str(steps)
        args = ["--scenario", "level_shift", "--model", "naive", "--lookback", "24", "--horizon", "6"]
        code, text = _run(*args, "--steps", str(steps), "--series", "1", "--out", str(out))
        assert code == 0, text
        heights.append(_png_height(out / FORECAST_PLOT.format(0)))
    assert heights[1] > 1.5 * heights[0]


def test_scenario_backtest_writes_all_outputs(tmp_path):
    code, out = _run(
        "--scenario",
        "level_shift",
        *FAST,
        "--policy",
        "periodic:24",
        "--window",
        "full",
        "--memory",
        "off",
        "--compare",
        "policy=drift,window=vh,memory=on",
        "--out",
        str(tmp_path),
    )
    assert code == 0, out
    plots = [FORECAST_PLOT.format(0), *(name for name, _, _ in COMPARISON_PLOTS)]
    for name in (FORECASTS_FILE, EVENTS_FILE, SUMMARY_FILE, REPORT_FILE, *plots):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["configs"]) == 2
    for cfg in summary["configs"].values():
        assert set(SUMMARY_COLUMNS) <= set(cfg)
        assert cfg["events"] and cfg["events"][0]["kind"] == "level_shift"
        assert cfg["events"][0]["mae_after_50"] > 0
        for lv in ("80", "95"):  # intervals at the default levels
            scores = cfg["intervals"][lv]
            assert 0.5 < scores["coverage"] <= 1 and scores["mean_width"] > 0 and scores["winkler"] > 0
            assert cfg["events"][0]["intervals_after_100"][lv]["n"] > 0
    fc = pl.read_parquet(tmp_path / "forecasts.parquet")
    assert {"series", "issued_at", "step", "ts", "y", "yhat_base", "yhat", "model_version", "config"} <= set(
        fc.columns
    )
    assert {"lo_80", "hi_80", "lo_95", "hi_95"} <= set(fc.columns)
    bounded = fc.drop_nans("lo_95")
    assert ((bounded["lo_95"] <= bounded["lo_80"]) & (bounded["hi_80"] <= bounded["hi_95"])).all()
    periodic = fc.filter(pl.col("config").str.contains("periodic"))
    assert periodic["model_version"].n_unique() > 5  # retrained every 24 steps
    # a naive model's base forecast is the value observed at issue time
    one = periodic.filter(pl.col("step") == 1).select("series", "issued_at", "yhat_base")
    truth = fc.select("series", pl.col("ts").alias("issued_at"), "y").unique()
    joined = one.join(truth, on=["series", "issued_at"])
    assert joined.height > 0 and (joined["yhat_base"] - joined["y"]).abs().max() < 1e-4
    ev = pl.read_parquet(tmp_path / "events.parquet")
    name = next(n for n in summary["configs"] if "periodic" in n)
    assert (ev.filter(pl.col("config") == name)["event"] == "retrain").sum() == summary["configs"][name][
        "n_retrains"
    ]
    html = (tmp_path / "report.html").read_text()
    assert 'src="error.png"' in html and "policy" in html.lower()


def test_report_shows_interval_bands_and_coverage(tmp_path):
    code, out = _run("--scenario", "variance", *FAST, "--out", str(tmp_path))
    assert code == 0, out
    html = (tmp_path / REPORT_FILE).read_text()
    for name in (FORECAST_PLOT.format(0), COVERAGE_PLOT):
        assert (tmp_path / name).stat().st_size > 0, name
        assert f'src="{name}"' in html, name
    assert interval_levels(pl.read_parquet(tmp_path / FORECASTS_FILE)) == ["80", "95"]


def test_report_without_interval_columns_has_no_coverage_plot(tmp_path):
    """Forecasts from before the interval columns (or with intervals off) still make a report."""
    fc = pl.DataFrame(
        {
            "series": ["a"] * 4,
            "issued_at": [0, 1, 2, 3],
            "step": [1] * 4,
            "ts": [3600, 7200, 10800, 14400],
            "y": [1.0, 2.0, 3.0, 4.0],
            "yhat_base": [1.0, 1.0, 2.0, 3.0],
            "yhat": [1.0, 1.0, 2.0, 3.0],
            "model_version": [1] * 4,
        }
    ).with_columns(pl.from_epoch("ts", "s"))
    events = fc.head(1).select("ts", event=pl.lit("retrain"), train_seconds=pl.lit(0.1))
    run = ConfigRun("naive", fc, events, {"mae": 0.75, "samples_seen": 4})
    html = write_report(tmp_path, [run], [], "t", {}).read_text()
    assert interval_levels(fc) == [] and not (tmp_path / COVERAGE_PLOT).exists()
    assert f'src="{FORECAST_PLOT.format(0)}"' in html and COVERAGE_PLOT not in html


def test_report_compares_configurations_series_by_series(tmp_path):
    """With several series, the report lists each one's MAE per configuration with the first's ÷ the
    second's, highest first, and plots the series where the first loses most."""
    ts = pl.datetime_range(datetime(2024, 1, 1), datetime(2024, 1, 1, 5), "1h", eager=True)

    def forecasts(off_a: float, off_b: float) -> pl.DataFrame:
        frames = [
            pl.DataFrame(
                {"series": name, "issued_at": ts, "step": 1, "ts": ts, "y": 1.0, "model_version": 1}
            ).with_columns(yhat_base=pl.lit(1.0 + off), yhat=pl.lit(1.0 + off))
            for name, off in (("a", off_a), ("b", off_b))
        ]
        return pl.concat(frames)

    events = pl.DataFrame({"ts": ts[:1], "event": ["retrain"], "train_seconds": [0.1]})
    runs = [
        ConfigRun("new", forecasts(0.5, 3.0), events, {"mae": 1.75, "samples_seen": 4}),
        ConfigRun("old", forecasts(1.0, 1.0), events, {"mae": 1.0, "samples_seen": 8}),
    ]
    table = series_errors(runs)
    assert table["series"].to_list() == ["b", "a"]  # b: 3 ÷ 1, a: 0.5 ÷ 1
    assert table["ratio"].to_list() == pytest.approx([3.0, 0.5])
    assert table["new"].to_list() == pytest.approx([3.0, 0.5]) and table["old"].to_list() == pytest.approx(
        [1.0, 1.0]
    )
    html = write_report(tmp_path, runs, [], "t", {}).read_text()
    assert "1 of 2 series above 1.02×" in html and "<th>b</th><td>3</td><td>1</td><td>3</td>" in html
    for i in range(2):
        assert (
            f'src="{WORST_PLOT.format(i)}"' in html and (tmp_path / WORST_PLOT.format(i)).stat().st_size > 0
        )
    single = write_report(tmp_path / "one", runs[:1], [], "t", {}).read_text()  # nothing to compare
    assert "Per series" not in single and WORST_PLOT.format(0) not in single


def test_same_seed_gives_byte_identical_summary(tmp_path):
    args = [
        "--scenario",
        "variance",
        *FAST,
        "--policy",
        "drift:page_hinkley",
        "--window",
        "vh",
        "--memory",
        "on",
        "--timings",
        "off",
        "--seed",
        "7",
    ]
    assert _run(*args, "--out", str(tmp_path / "a"))[0] == 0
    assert _run(*args, "--out", str(tmp_path / "b"))[0] == 0
    a, b = (tmp_path / "a" / "summary.json").read_bytes(), (tmp_path / "b" / "summary.json").read_bytes()
    assert a == b
    assert _run(*args[:-1], "8", "--out", str(tmp_path / "c"))[0] == 0
    assert (tmp_path / "c" / "summary.json").read_bytes() != a
    # with measured timings on, only the measured seconds differ between two runs
    timed = [a if a != "off" else "on" for a in args]
    assert _run(*timed, "--out", str(tmp_path / "d"))[0] == 0
    assert _run(*timed, "--out", str(tmp_path / "e"))[0] == 0
    d, e = (json.loads((tmp_path / x / "summary.json").read_text()) for x in "de")
    measured = ("train_seconds", "predict_seconds", "error_x_compute")
    for cfg in (d, e):
        for c in cfg["configs"].values():
            assert all(c[k] is not None and c[k] >= 0 for k in measured)
            for k in measured:
                c.pop(k)
    assert d == e


def _write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "d.csv"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    ("content", "extra", "needle"),
    [
        (
            "date,y\n2024-01-01 00:00:00,1\n",
            ["--target", "z"],
            "column 'z' not found; columns are ['y']; name one with --target",
        ),
        (
            "date,a,b\n2024-01-01 00:00:00,1,2\n",
            [],
            "name one with --target, or --series-cols '*' to forecast every numeric column",
        ),
        (  # a named target is looked for, never swapped for the file's one column of values
            "date,value\n2024-01-01 00:00:00,1\n",
            ["--target", "y"],
            "column 'y' not found; columns are ['value']; name one with --target",
        ),
        (
            "date,y\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,inf\n",
            ["--target", "y"],
            "'y' has 1 infinite values (first at 2024-01-01 01:00:00)",
        ),
        (
            "date,y\n2024-01-01 00:00:00,1\n2024-01-01 01:00:00,n.a.\n2024-01-01 02:00:00,3\n",
            ["--target", "y"],
            "'y' is String, not numeric: 'n.a.' at 2024-01-01 01:00:00 is not a number (1 such values)",
        ),
        ("", ["--target", "y"], "empty"),
        (
            "date,y\n" + "".join(f"2024-01-01 {h:02d}:00:00,{h}\n" for h in range(20)),
            ["--target", "y"],
            "the longest series has 20 rows, but the first model is trained after 120",
        ),
        (
            "date,y\n2024-01-01 00:00:00,1\n",
            ["--target", "y", "--model", "prophet"],
            "model.kind: Value error, unknown model kind 'prophet'",
        ),
        (
            "date,y\n2024-01-01 00:00:00,1\n",
            ["--target", "y", "--policy", "sometimes"],
            "invalid policy spec",
        ),
        ("date,y\n2024-01-01 00:00:00,1\n", ["--target", "y", "--window", "half"], "invalid window spec"),
        ("date,y\n2024-01-01 00:00:00,1\n", ["--target", "y", "--compare", "colour=red"], "KEY=VALUE"),
    ],
)
def test_bad_input_exit_2_with_message(tmp_path, content, extra, needle):
    code, out = _run("--data", _write(tmp_path, content), *extra, "--out", str(tmp_path / "o"))
    assert code == 2, out
    assert needle in out and "Traceback" not in out


def test_a_file_of_one_column_of_values_needs_no_target(tmp_path, caplog):
    """``time,value``, the commonest export, is backtested without ``--target``: its one column of
    values is the target, and the run says so."""
    rows = "".join(f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00:00,{10 + h % 24}\n" for h in range(200))
    out_dir = tmp_path / "o"
    code, out = _run(
        "--data",
        _write(tmp_path, "time,value\n" + rows),
        "--model",
        "naive",
        "--out",
        str(out_dir),
    )
    assert code == 0, out
    assert "forecasting its one column of values, 'value'" in caplog.text
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["targets"] == ["value"] and summary["configs"]


def test_data_and_scenario_together_is_usage_error(tmp_path):
    code, out = _run("--data", "x.csv", "--scenario", "trend", "--out", str(tmp_path))
    assert code == 2 and "at most one of --data" in out


def test_compare_spec_overrides():
    base = load_config(
        overrides={"model": {"kind": "naive"}, "adaptation": {"policy": "never", "memory": False}}, environ={}
    )
    other = variant(base, "policy=periodic:24, memory=on, model.lookback=24")
    assert (other.adaptation.policy, other.adaptation.window, other.adaptation.memory) == (
        "periodic:24",
        "full",
        True,
    )
    assert other.model.lookback == 24 and base.model.lookback == 48
    with pytest.raises(InputError, match=r"adaptation\.memory"):
        variant(base, "memory=maybe")
    with pytest.raises(InputError, match="KEY=VALUE"):
        variant(base, "colour=red")


@pytest.mark.skipif(not ETT.is_file(), reason=f"ETTh1 not found at {ETT}")
def test_ett_file_backtest(tmp_path):
    code, out = _run(
        "--data",
        str(ETT),
        "--target",
        "OT",
        "--features",
        "HUFL,MUFL",
        "--model",
        "naive",
        "--lookback",
        "24",
        "--horizon",
        "6",
        "--limit",
        "600",
        "--policy",
        "periodic:168",
        "--window",
        "fixed:336",
        "--out",
        str(tmp_path),
    )
    assert code == 0, out
    summary = json.loads((tmp_path / "summary.json").read_text())
    cfg = next(iter(summary["configs"].values()))
    assert summary["channels"] == ["OT", "HUFL", "MUFL"] and summary["steps"] == 600
    assert cfg["n_retrains"] >= 2 and cfg["mae"] > 0


def test_long_layout_file_with_series_column(tmp_path):
    from adaptcast.streams.scenarios import make_scenario

    path = tmp_path / "long.csv"
    make_scenario("level_shift", series=2, steps=200, seed=1).frame.write_csv(path)
    args = ["--data", str(path), "--series-col", "series", "--target", "y", *FAST[:6], "--policy", "never"]
    code, out = _run(*args, "--out", str(tmp_path / "o"))
    assert code == 0, out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["series"] == 2 and summary["steps"] == 200 and summary["duplicate_rows"] == 0
    fc = pl.read_parquet(tmp_path / "o" / "forecasts.parquet")
    assert sorted(fc["series"].unique().to_list()) == ["s0", "s1"]
    # a row repeating a series' timestamp is left out (the first kept) and counted
    text = path.read_text().splitlines()
    path.write_text("\n".join([*text, text[1]]) + "\n")
    code, out = _run(*args, "--out", str(tmp_path / "p"))
    assert code == 0, out
    assert json.loads((tmp_path / "p" / "summary.json").read_text())["duplicate_rows"] == 1


def test_backtest_makes_the_forecasts_of_run_on_the_same_config(tmp_path):
    """`adaptcast backtest --config F` and `adaptcast run --config F` (embedded) forecast identically."""
    cfg_file = tmp_path / "deploy.yaml"
    cfg_file.write_text(
        "model: {kind: arnet, lookback: 24, horizon: 6, params: {epochs: 2}}\n"
        "adaptation: {policy: 'periodic:48', window: vh, memory: true}\n"
        "scenario: {name: level_shift, series: 2, steps: 300, seed: 3}\n"
        "metrics: {enabled: false}\n"
    )
    live: list = []
    run_embedded(load_config(cfg_file, environ={}), sink=live.extend)
    code, out = _run("--config", str(cfg_file), "--out", str(tmp_path / "bt"))
    assert code == 0, out
    fc = pl.read_parquet(tmp_path / "bt" / "forecasts.parquet").sort("series", "issued_at", "step")
    assert len(live) > 100 and fc.height == len(live) * 6
    expected = pl.DataFrame(
        {
            "series": [f.series for f in live for _ in range(6)],
            "issued_at": [f.issued_at_ms for f in live for _ in range(6)],
            "step": [k for _ in live for k in range(1, 7)],
            "yhat": [float(v) for f in live for v in f.yhat[:, 0]],
        }
    ).sort("series", "issued_at", "step")
    got = fc.select("series", pl.col("issued_at").dt.epoch("ms"), "step", "yhat")
    assert got["series"].to_list() == expected["series"].to_list()
    assert got["issued_at"].to_list() == expected["issued_at"].to_list()
    assert got["yhat"].to_list() == pytest.approx(expected["yhat"].to_list(), abs=1e-6)
    retrains = json.loads((tmp_path / "bt" / "summary.json").read_text())["configs"]
    assert next(iter(retrains.values()))["n_retrains"] >= 2


def test_streamed_forecasts_equal_one_chunk_and_in_memory(tmp_path):
    """Writing forecasts in chunks of one forecast, of everything at once, or keeping them in memory
    gives the same table and the same summary (restarts included: link_failure drops a series' window)."""
    from adaptcast.streams.backtest import backtest

    cfg = load_config(
        overrides={
            "model": {"kind": "naive", "lookback": 24, "horizon": 6},
            "scenario": {"name": "link_failure", "series": 3, "steps": 400},
            "adaptation": {"policy": "periodic:24", "memory": True},
            "backtest": {"timings": False, "compare": ["memory=off"]},
        },
        environ={},
    )
    small = backtest(cfg, out=tmp_path / "small", report=False, progress=False, flush_forecasts=1)
    whole = backtest(cfg, out=tmp_path / "whole", report=False, progress=False, flush_forecasts=10**9)
    memory = backtest(cfg, report=False, progress=False)
    fc = pl.read_parquet(tmp_path / "small" / FORECASTS_FILE)
    assert fc["y"].null_count() > 0 and fc["config"].n_unique() == 2  # restarted leads have no truth
    assert fc.equals(pl.read_parquet(tmp_path / "whole" / FORECASTS_FILE))
    assert fc.equals(memory.forecasts) and fc.equals(small.forecasts)
    for other in (whole, memory):  # sums over chunks of other sizes: equal to the last bits of a float
        a, b = _flat(small.summary), _flat(other.summary)
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert value == (pytest.approx(b[key], rel=1e-12) if isinstance(value, float) else b[key]), key
    assert not (tmp_path / "small" / ".forecast-parts").exists()


def _flat(tree: object, path: str = "") -> dict[str, object]:
    """A nested summary as ``{"a.b[0].c": leaf}``, so numbers compare with a tolerance."""
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in _flat(sub, f"{path}.{key}").items()}
    if isinstance(tree, list):
        return {k: v for i, sub in enumerate(tree) for k, v in _flat(sub, f"{path}[{i}]").items()}
    return {path: tree}


def test_a_compressed_wide_file_backtests_one_series_per_column(tmp_path):
    import gzip

    start = datetime(2024, 1, 1)
    rows = [
        f"{(start + timedelta(hours=h)).isoformat()},{10 + h % 24},{50 + h % 12},{h % 7}" for h in range(200)
    ]
    path = tmp_path / "clients.csv.gz"
    path.write_bytes(gzip.compress(("date,MT_001,MT_002,MT_003\n" + "\n".join(rows) + "\n").encode()))
    code, out = _run(
        "--data", str(path), "--series-cols", "MT_001,MT_003", *FAST[:6], "--out", str(tmp_path / "o")
    )
    assert code == 0, out
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["data"] == "clients" and summary["series"] == 2 and summary["targets"] == ["y"]


def test_replay_sends_one_series_per_column_under_the_one_value_name(tmp_path):
    from adaptcast.streams.cli import _replay_records

    path = tmp_path / "w.csv"
    path.write_text("date,a,b\n2024-01-01 00:00,1,2\n2024-01-01 01:00,3,\n")
    recs = _replay_records(str(path), None, ("load",), None, ["*"], False, None, None, None, None)
    assert [(r["series"], r["values"]) for r in recs] == [
        ("a", {"load": 1.0}),
        ("b", {"load": 2.0}),
        ("a", {"load": 3.0}),
    ]
    values_only = tmp_path / "v.txt"  # no header, no time column: numbered by the declared step
    values_only.write_text("1,2\n3,4\n")
    recs = _replay_records(str(values_only), None, ("load",), None, ["*"], False, None, None, None, 3_600_000)
    assert [(r["series"], r["ts"]) for r in recs] == [
        ("0", "1970-01-01T00:00:00"),
        ("1", "1970-01-01T00:00:00"),
        ("0", "1970-01-01T01:00:00"),
        ("1", "1970-01-01T01:00:00"),
    ]


def test_replay_sends_a_file_of_a_series_per_row_a_declared_step_apart(tmp_path):
    """M4's layout (an id, then the values, a shorter series' row ending in empty cells) replays as
    backtest reads it; replay had no --series-rows, so such a file could be backtested but not fed live."""
    from adaptcast.streams.cli import _replay_records

    path = tmp_path / "m4.csv"
    path.write_text("V1,V2,V3,V4\nD1,1,2,3\nD2,4,5,\n")
    recs = _replay_records(str(path), None, ("y",), None, (), True, None, None, None, 86_400_000)
    assert [(r["series"], r["ts"], r["values"]) for r in recs] == [
        ("D1", "1970-01-01T00:00:00", {"y": 1.0}),
        ("D2", "1970-01-01T00:00:00", {"y": 4.0}),
        ("D1", "1970-01-02T00:00:00", {"y": 2.0}),
        ("D2", "1970-01-02T00:00:00", {"y": 5.0}),
        ("D1", "1970-01-03T00:00:00", {"y": 3.0}),
    ]


def test_replay_of_a_long_file_sends_every_value_column_when_no_target_is_named(tmp_path):
    """Without --target a long file's values are its numeric columns besides the time and the ids
    (it was read as one series to find them, and refused as a long file though --series-col named it)."""
    from adaptcast.streams.cli import _replay_records

    path = tmp_path / "long.csv"
    path.write_text("ts,sensor,temp,rpm\n2024-01-01 00:00,a,1,10\n2024-01-01 00:00,b,2,20\n")
    recs = _replay_records(str(path), None, (), "sensor", (), False, None, None, None, None)
    assert [(r["series"], r["values"]) for r in recs] == [
        ("a", {"temp": 1.0, "rpm": 10.0}),
        ("b", {"temp": 2.0, "rpm": 20.0}),
    ]
    path.write_text(path.read_text().replace("sensor", "series"))  # the series column it implies
    assert [
        r["series"] for r in _replay_records(str(path), None, (), None, (), False, None, None, None, None)
    ] == [
        "a",
        "b",
    ]


def test_the_run_line_counts_every_series_of_the_feed_even_one_the_loop_forgot(tmp_path):
    from adaptcast.streams.scenarios import make_scenario

    frame = make_scenario("level_shift", series=2, steps=400, seed=1).frame
    frame = frame.filter((pl.col("series") == "s0") | (pl.col("ts") < frame["ts"].sort()[60]))  # s1 stops
    path = tmp_path / "long.csv"
    frame.write_csv(path)
    args = ["--data", str(path), "--series-col", "series", "--target", "y", "--policy", "never"]
    code, out = _run(*args, "--lookback", "6", "--horizon", "2", "--out", str(tmp_path / "o"))
    assert code == 0, out
    assert "(2 series)" in out  # s1, silent for 340 steps, was forgotten by then


def test_a_run_that_forecasts_nothing_says_why_and_its_report_draws_without_warnings(tmp_path, caplog):
    """Business hours on a declared hourly grid: each night restarts the series before it holds a
    window. The run says so and what to set; the report's empty charts say "nothing to show"."""
    import warnings

    import numpy as np

    days = np.busday_offset(np.datetime64("2024-01-01", "D"), np.arange(40), roll="forward")
    ts = (days.astype("datetime64[h]")[:, None] + np.arange(9, 18).astype("timedelta64[h]")).ravel()
    path = tmp_path / "calls.csv"
    pl.DataFrame({"ts": ts.astype("datetime64[ms]"), "calls": np.arange(ts.size, dtype=float)}).write_csv(
        path
    )
    args = [
        "--data",
        str(path),
        "--target",
        "calls",
        "--model",
        "naive",
        "--lookback",
        "12",
        "--horizon",
        "3",
    ]
    with caplog.at_level("WARNING", logger="adaptcast.backtest"), warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned of an empty legend on every empty chart
        res = CliRunner().invoke(
            main, ["backtest", *args, "--out", str(tmp_path / "o")], env={"ADAPTCAST__GRID__FREQUENCY": "1h"}
        )
    assert res.exit_code == 0, res.output
    assert (
        "no forecasts: the series restarted 39 times" in caplog.text
        and "'1h Mon-Fri 09:00-18:00'" in caplog.text
    )


def test_a_run_whose_fits_all_fail_says_so_and_not_that_the_feed_has_gaps(tmp_path, caplog, monkeypatch):
    """A model that raises on every fit (fault injected) leaves no forecasts; the advice names the
    fits and their error, where it used to blame gaps the feed does not have."""
    from adaptcast.forecast.models.arnet import ARNet

    def broken(self, X, Y, parent):
        raise FloatingPointError("singular lags")

    monkeypatch.setattr(ARNet, "_fit_closed_form", broken)
    frame = pl.DataFrame({"ts": np.arange(300) * 3_600_000, "y": np.sin(np.arange(300) / 4.0)})
    frame.with_columns(pl.from_epoch("ts", time_unit="ms")).write_csv(tmp_path / "f.csv")
    with caplog.at_level("WARNING", logger="adaptcast.backtest"):
        code, out = _run("--data", str(tmp_path / "f.csv"), "--target", "y", "--out", str(tmp_path / "o"))
    assert code == 0, out
    assert (
        "fits failed (no model was ever trained); the first: FloatingPointError: singular lags" in caplog.text
    )
    assert "restarted" not in caplog.text and "no series held" not in caplog.text


def test_most_records_off_the_grid_is_explained():
    from collections import Counter

    from adaptcast.streams.backtest import what_went_wrong
    from adaptcast.streams.summary import RunSummary

    line = RunSummary("f", 1, 1000, 40, 400, 0.1, 0, 1, 300, "arnet", "1")
    (advice,) = what_went_wrong(line, Counter(off_grid=280, duplicate=20), restarts=Counter(), lookback=48)
    assert advice.startswith("300 of 1000 records were off the grid") and "grid.resample: mean" in advice
    assert what_went_wrong(line, Counter(off_grid=30), restarts=Counter(), lookback=48) == []


def test_a_feed_whose_stamps_drift_off_its_period_is_told_to_aggregate_to_that_period(tmp_path, caplog):
    """A weekly series stamped at 52ths of a year (R's ts, frequency 52, exported with dates) drifts
    28 minutes a week off a 7-day grid, moves onto a new one every few months and was never forecast;
    the advice named 10min. It names 7d, which then forecasts."""
    stamps = pl.datetime_range(
        datetime(1970, 1, 1), datetime(1979, 12, 31), timedelta(days=365.25 / 52), eager=True
    )
    y = 100 + 10 * np.sin(2 * np.pi * np.arange(len(stamps)) / 52)
    pl.DataFrame({"ts": stamps, "y": y}).write_csv(tmp_path / "weekly.csv")
    with caplog.at_level("WARNING", logger="adaptcast.backtest"):
        code, out = _run(
            "--data", str(tmp_path / "weekly.csv"), "--target", "y", "--out", str(tmp_path / "a")
        )
    assert code == 0, out
    assert "moved onto a new grid" in caplog.text and "(--frequency 7d --resample mean)" in caplog.text
    assert "64Hz" not in caplog.text.split("no forecasts")[1]  # a rate is no answer for a weekly feed
    code, out = _run(
        *("--data", str(tmp_path / "weekly.csv"), "--target", "y", "--out", str(tmp_path / "b")),
        *("--frequency", "7d", "--resample", "mean"),
    )
    assert code == 0, out
    (run,) = json.loads((tmp_path / "b" / SUMMARY_FILE).read_text())["configs"].values()
    assert run["n_forecasts"] > 300


def _sensor_csv(path, stamps):
    n = len(stamps)
    y = np.sin(2 * np.pi * np.arange(n) / 64) + np.random.default_rng(1).normal(0, 0.1, n)
    pl.DataFrame({"ts": stamps, "y": y}).with_columns(pl.from_epoch("ts", time_unit="ms")).write_csv(path)


def test_a_feed_at_64_hz_stamped_to_the_millisecond_is_forecast_and_its_forecasts_meet_their_truth(tmp_path):
    """An accelerometer at 64 Hz: its stamps are 15 and 16 ms apart in turn, which no whole-millisecond
    grid holds (60 % of the records fell off it and nothing was forecast). Its rate is inferred, and
    every forecast's timestamp is a later record's, so forecasts.parquet finds their truth."""
    stamps = np.round(np.arange(3000) * 1000 / 64).astype(np.int64)  # 0, 16, 31, 47, ... ms
    _sensor_csv(tmp_path / "gait.csv", stamps)
    code, out = _run("--data", str(tmp_path / "gait.csv"), "--target", "y", "--out", str(tmp_path / "a"))
    assert code == 0, out
    (run,) = json.loads((tmp_path / "a" / SUMMARY_FILE).read_text())["configs"].values()
    assert run["series_resets"] <= 3 and run["n_forecasts"] > 2800  # restarts only while inferring
    forecasts = pl.read_parquet(tmp_path / "a" / "forecasts.parquet")
    due = forecasts.filter(pl.col("ts") <= pl.from_epoch(pl.lit(int(stamps[-1])), time_unit="ms"))
    assert due["y"].null_count() <= 0.01 * due.height


def test_a_jittered_fast_feed_is_told_to_declare_its_rate_and_then_forecasts(tmp_path, caplog):
    """The same sensor with its stamps a millisecond either way: no rate is inferred from a few
    records, the series moves from grid to grid and nothing is forecast. The advice names the case
    (restarts at grid changes, not after gaps) and says to declare the rate, which then forecasts."""
    jitter = np.random.default_rng(2).uniform(-1, 1, 3000)
    _sensor_csv(tmp_path / "gait.csv", np.round(np.arange(3000) * 1000 / 64 + jitter).astype(np.int64))
    with caplog.at_level("WARNING", logger="adaptcast.backtest"):
        code, out = _run("--data", str(tmp_path / "gait.csv"), "--target", "y", "--out", str(tmp_path / "a"))
    assert code == 0, out
    assert "hundreds of hertz" in caplog.text and "--frequency 64Hz" in caplog.text
    assert "moved onto a new grid" in caplog.text and "after gaps" not in caplog.text  # it has none
    assert "declare its rate" in caplog.text  # the worker's log says it too
    code, out = _run(
        *("--data", str(tmp_path / "gait.csv"), "--target", "y", "--out", str(tmp_path / "b")),
        *("--frequency", "64Hz"),
    )
    assert code == 0, out
    (run,) = json.loads((tmp_path / "b" / SUMMARY_FILE).read_text())["configs"].values()
    assert run["series_resets"] == 0 and run["n_forecasts"] > 2500


def test_the_run_line_shows_an_error_in_tiny_or_huge_units():
    """A feed measured in 1e-9 showed MAE 0.0000; one in 1e12, a figure with four useless decimals."""
    from dataclasses import replace

    from adaptcast.streams.summary import RunSummary

    line = RunSummary("f", 1, 1000, 40, 400, 0.6849, 0, 1, 0, "arnet", "1")
    assert "MAE 0.6849," in line.line()
    assert "MAE 1.437e-10," in replace(line, mae=1.4372e-10).line()
    assert "MAE 2.092e+08," in replace(line, mae=209_200_000.0).line()


@pytest.mark.parametrize("kind", ["arnet", "xgboost"])
def test_glitches_in_a_feed_leave_the_forecasts_and_their_bands_as_they_were(tmp_path, kind):
    """A sensor's 1e9 used to set the scaler and the loss of every later fit: forecasts were off by
    ~1e9 for the rest of the feed. Now fits clean it, windows repair it (even as their newest value:
    no new level is that far beyond what training saw), and neither the error memory, its level
    term nor the interval calibrator learns from its outcome (the memory carried it into the next
    forecasts as a 1e7 correction): forecasts issued from the first glitch on score as on the same
    feed without them, and no 95 % band widens."""
    start, at = datetime(2025, 1, 1), [483, 505, 836, 898]
    t = np.arange(1200)
    y = 50 + 10 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(2).normal(0, 1.5, 1200)
    glitched = y.copy()
    glitched[at] = 1e9
    maes, widths = [], []
    for name, values in (("clean", y), ("glitch", glitched)):
        path = tmp_path / f"{name}.csv"
        rows = [f"{(start + timedelta(hours=int(h))).isoformat()},{values[h]}" for h in t]
        path.write_text("ts,y\n" + "\n".join(rows) + "\n")
        code, out = _run("--data", str(path), "--target", "y", "--model", kind, "--out", str(tmp_path / name))
        assert code == 0, out
        after = pl.read_parquet(tmp_path / name / "forecasts.parquet").filter(
            pl.col("issued_at") >= start + timedelta(hours=at[0])
        )
        glitch_times = [start + timedelta(hours=h) for h in at]
        scored = after.filter(~pl.col("ts").is_in(glitch_times) & pl.col("y").is_not_null())
        maes.append((scored["y"] - scored["yhat"]).abs().mean())
        widths.append((after["hi_95"] - after["lo_95"]).max())
    assert maes[1] < 1.1 * maes[0], maes
    assert widths[1] < 3 * widths[0], widths


def test_a_spike_that_recurs_every_night_is_still_forecast(tmp_path):
    """A nightly job's spike is the feed's pattern, not a glitch: neither training nor the input
    windows may smooth it away (a first version repaired any value a hundred times further out
    than its window's fifth-furthest, and the forecasts missed every spike: MAE 85 against 0.3)."""
    start = datetime(2025, 1, 1)
    rng = np.random.default_rng(4)
    t = np.arange(600)
    y = 10 + np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.3, 600) + np.where(t % 24 == 2, 1000.0, 0.0)
    path = tmp_path / "nightly.csv"
    rows = [f"{(start + timedelta(hours=int(h))).isoformat()},{y[h]}" for h in t]
    path.write_text("ts,y\n" + "\n".join(rows) + "\n")
    flags = ["--lookback", "48", "--horizon", "6", "--min-train-rows", "120"]
    code, out = _run("--data", str(path), "--target", "y", *flags, "--out", str(tmp_path / "o"))
    assert code == 0, out
    f = pl.read_parquet(tmp_path / "o" / "forecasts.parquet").filter(pl.col("y").is_not_null())
    spikes = f.filter(pl.col("ts").dt.hour() == 2)
    assert (spikes["y"] - spikes["yhat"]).abs().mean() < 20


def test_forecasts_worse_than_the_last_value_are_reported_with_what_to_try(tmp_path, caplog):
    """A random walk: the summary gives persistence's MAE on the same points (the value at issue
    repeated), a model that errs more (a seasonal naive at 24 steps) is told so and what to try,
    and persistence itself (a naive at one step, no memory) matches that MAE and is not."""
    rng = np.random.default_rng(4)
    n = 600
    start = datetime(2024, 1, 1)
    frame = pl.DataFrame(
        {"ts": [start + timedelta(hours=i) for i in range(n)], "y": 100 + np.cumsum(rng.normal(size=n))}
    )
    path = tmp_path / "walk.csv"
    frame.write_csv(path)
    runs = {}
    for name, season in (("seasonal", 24), ("last", 1)):
        out = tmp_path / name
        args = ["--data", str(path), "--model", "naive", "--param", f"season={season}", "--memory", "off"]
        with caplog.at_level("WARNING", logger="adaptcast.backtest"):
            caplog.clear()
            code, output = _run(*args, "--out", str(out))
        assert code == 0, output
        summary = next(iter(json.loads((out / SUMMARY_FILE).read_text())["configs"].values()))
        runs[name] = (summary, "erred more than repeating each series' last value" in caplog.text)
        fc = pl.read_parquet(out / FORECASTS_FILE).drop_nulls("y")
        at_issue = fc.filter(pl.col("step") == 1).select("series", pl.col("ts").alias("issued_at"), last="y")
        joined = fc.join(at_issue, on=["series", "issued_at"])
        assert len(joined) > 0.95 * len(fc)  # every forecast but those of the first step
        expected = (joined["y"] - joined["last"]).abs().mean()
        assert summary["mae_persistence"] == pytest.approx(expected, rel=0.02)
    seasonal, last = runs["seasonal"], runs["last"]
    assert seasonal[0]["mae"] > 1.5 * seasonal[0]["mae_persistence"] and seasonal[1]
    assert last[0]["mae"] == pytest.approx(last[0]["mae_persistence"], rel=1e-6) and not last[1]
