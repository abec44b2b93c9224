"""A file's rows on its time grid: training, forecasting and topic history never splice a gap."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.forecast.base import InputError
from adaptcast.forecast.data import SeriesFrame, make_windows, read_frame, read_series
from adaptcast.forecast.windows import segments
from adaptcast.streams.backtest import backtest
from adaptcast.streams.calendar import months
from adaptcast.streams.cli import main
from adaptcast.streams.config import Config
from adaptcast.streams.grid import Fill, GridRules
from adaptcast.streams.regular import on_grid
from adaptcast.streams.topic_history import series_histories
from adaptcast.streams.train_cli import gridded, whole_windows

H = 3_600_000


def _hours(*hours: float) -> np.ndarray:
    return (np.asarray(hours) * H).astype(np.int64)


def test_short_gaps_are_filled_long_ones_start_a_segment_and_strays_are_left_out():
    t = _hours(0, 1, 2, 4, 5, 20, 21, 22, 22.5, 23.05, 24)
    v = np.arange(t.size, dtype=np.float32)[:, None]
    v[4] = np.nan  # a missing value is a missing point
    g = on_grid(t, v, GridRules(max_fill=3))
    assert (g.ts_ms // H).tolist() == [0, 1, 2, 3, 4, 20, 21, 22, 23, 24]  # 23.05 snapped onto 23
    assert g.values[:, 0].tolist() == [0, 1, 2, 2.5, 3, 5, 6, 7, 9, 10]  # 3 interpolated, 22.5 off the grid
    assert g.segment.tolist() == [0] * 5 + [1] * 5  # 5 → 20 is more than 3 missing points
    assert (g.filled, g.missing_values, g.left_out, g.segments) == (1, 1, {"off_grid": 1}, 2)
    last = on_grid(t[:4], v[:4], GridRules(max_fill=3, fill=Fill.LAST))
    assert last.values[:, 0].tolist() == [0, 1, 2, 2, 3]
    whole = g.whole(np.arange(g.ts_ms.size - 2), 2)
    assert whole.tolist() == [True, True, True, False, False, True, True, True]
    history = g.history()  # the runs joined by a break row, as a retrain reads them
    assert np.isnan(history[5, 0]) and [r[:, 0].tolist() for r in segments(history)] == [
        [0, 1, 2, 2.5, 3],
        [5, 6, 7, 9, 10],
    ]
    assert on_grid(t[:4], v[:4], GridRules(max_fill=3)).history().shape == (5, 1)


def test_a_clean_file_is_returned_as_it_is_and_a_declared_period_wins():
    t = _hours(*range(10))
    v = np.ones((10, 2))
    g = on_grid(t, v, GridRules())
    assert g.values is v and g.segments == 1 and g.filled == 0
    half = on_grid(t, v, GridRules(period_ms=H // 2, max_fill=1))  # every other point missing
    assert half.ts_ms.size == 19 and half.filled == 9


def test_monthly_gaps_are_filled_on_calendar_months():
    t = np.array(["2023-01-31", "2023-02-28", "2023-05-31", "2023-06-30"], dtype="datetime64[ms]").astype(
        np.int64
    )
    g = on_grid(t, np.arange(4.0)[:, None], GridRules(max_fill=2))
    assert g.period == months(1)
    days = g.ts_ms.astype("datetime64[ms]").astype("datetime64[D]").astype(str).tolist()
    assert days == ["2023-01-31", "2023-02-28", "2023-03-31", "2023-04-30", "2023-05-31", "2023-06-30"]


def _gappy_file(
    tmp_path: Path, n: int = 400, outage: tuple[int, int] = (150, 200)
) -> tuple[Path, np.ndarray]:
    """Hourly values that count the hours, with every 7th hour and an outage missing, one value NaN."""
    t0 = datetime(2024, 1, 1)
    y = np.arange(n, dtype=float)
    lines = ["time,y"]
    for i in range(n):
        if i % 7 == 3 or outage[0] <= i < outage[1]:
            continue
        lines.append(f"{(t0 + timedelta(hours=i)).isoformat()},{'NA' if i == 40 else y[i]}")
    path = tmp_path / "gappy.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, y


def test_training_windows_are_consecutive_steps_and_never_cross_an_outage(tmp_path):
    path, _ = _gappy_file(tmp_path)
    tf, g = gridded(read_frame(path), ["y"], GridRules(max_fill=3))
    assert g.segments == 2 and g.missing_values == 1
    span = 24 + 6 - 1
    w = whole_windows(make_windows(tf, 24, 6, [], ["y"]), g, 0, 1, span)
    seq = np.concatenate([w.X[:, :, 0], w.Y[:, :, 0]], axis=1)
    assert len(w.X) > 0 and np.allclose(np.diff(seq, axis=1), 1.0)  # filled linearly, never spliced
    assert not ((seq[:, 0] < 150) & (seq[:, -1] >= 200)).any()


def _cli(*args: str, stream: str = "output") -> tuple[int, str]:
    """Exit code and text: stdout and stderr (``output``), or ``stdout`` alone (a JSON summary)."""
    res = CliRunner().invoke(main, list(args), env={})
    return res.exit_code, res.output if res.exit_code else getattr(res, stream)


def test_train_and_predict_on_a_gappy_file(tmp_path):
    path, _ = _gappy_file(tmp_path)
    out = tmp_path / "m"
    args = ["--model", "arnet", "--target", "y", "--lookback", "24", "--horizon", "6", "--seed", "1"]
    code, text = _cli("train", "--data", str(path), *args, "--out", str(out), stream="stdout")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["grid"]["segments"] == 2 and summary["grid"]["missing_values"] == 1
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["schema"]["grid"] == {"fill": "linear", "max_fill": 6, "resample": "off"}
    code, text = _cli("predict", "--model-dir", str(out), "--data", str(path))
    assert code == 0, text
    rows = [line.split(",") for line in text.splitlines()[1:]]
    assert len(rows) == 6 and {r[0] for r in rows} == {"2024-01-17T15:00:00"}  # the newest row
    # the newest 24 steps cut by an outage: no forecast from a spliced window
    cut = tmp_path / "cut.csv"
    kept = [
        line for line in path.read_text().splitlines() if not line.startswith("2") or line < "2024-01-06T20"
    ]
    cut.write_text("\n".join([*kept, "2024-01-07T16:00:00,160"]) + "\n")
    code, text = _cli("predict", "--model-dir", str(out), "--data", str(cut))
    assert code == 2 and "the newest 24 steps are cut by a gap of more than grid.max_fill=6" in text
    assert "missing steps before 2024-01-07T16:00:00Z" in text
    daily = tmp_path / "daily.csv"
    daily.write_text("time,y\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 29)))
    code, text = _cli("predict", "--model-dir", str(out), "--data", str(daily))
    assert code == 2 and "its rows are 1 d apart, but the model forecasts steps of 1 h" in text


def test_train_on_series_holds_out_the_newest_windows_across_an_outage(tmp_path):
    """train --series-col splits a series' windows as the worker's retrain does: its runs between
    long gaps joined, the newest fifth of all their windows held out (here 15 of 71 + 6, the newer
    run's 6 among them; split run by run, the short newer run would have held out none)."""
    t0 = datetime(2024, 1, 1)
    hours = [*range(100), *range(150, 185)]
    lines = [
        "time,series,y",
        *(f"{(t0 + timedelta(hours=h)).isoformat()},s,{np.sin(h / 4):.5f}" for h in hours),
    ]
    path = tmp_path / "runs.csv"
    path.write_text("\n".join(lines) + "\n")
    args = [
        "--model",
        "arnet",
        "--target",
        "y",
        "--lookback",
        "24",
        "--horizon",
        "6",
        "--series-col",
        "series",
    ]
    code, text = _cli("train", "--data", str(path), *args, "--out", str(tmp_path / "m"), stream="stdout")
    assert code == 0, text
    summary = json.loads(text)
    assert summary["data"]["segments"] == 2 and summary["val"]["windows"] == 15


def test_backtest_treats_missing_values_as_the_gaps_they_are(tmp_path):
    """A row with a missing value is left out, so the run is the one on the file without those rows."""
    t0 = datetime(2024, 1, 1)
    rng = np.random.default_rng(3)
    y = 10 + np.sin(np.arange(300) / 4) + rng.normal(0, 0.1, 300)
    rows = ["time,y"] + [
        f"{(t0 + timedelta(hours=i)).isoformat()},{'' if i in (90, 91, 200) else y[i]}" for i in range(300)
    ]
    holes = tmp_path / "holes.csv"
    holes.write_text("\n".join(rows) + "\n")
    dropped = tmp_path / "dropped.csv"
    dropped.write_text("\n".join(r for r in rows if not r.endswith(",")) + "\n")
    data = read_series(holes, ["y"])
    assert data.missing is not None and data.missing.rows == 3 and data.frame.height == 297
    cfg = Config.model_validate({"model": {"kind": "naive", "lookback": 24, "horizon": 6, "target": "y"}})
    a = backtest(cfg, data=data, report=False, progress=False)
    b = backtest(cfg, data=read_series(dropped, ["y"]), report=False, progress=False)
    assert a.summary["missing_rows"] == 3 and b.summary["missing_rows"] == 0
    assert a.forecasts.drop("config", "series").equals(b.forecasts.drop("config", "series"))
    (sa,), (sb,) = a.summary["configs"].values(), b.summary["configs"].values()
    keys = ("mae", "mae_base", "n_forecasts", "n_scored", "filled_steps", "series_resets", "n_retrains")
    assert [sa[k] for k in keys] == [sb[k] for k in keys] and sa["filled_steps"] == 3


def test_topic_history_is_each_run_on_the_grid_with_a_break_across_an_outage():
    def rec(ts_h: float, y: float) -> bytes:
        return json.dumps({"series": "s", "ts": int(ts_h * H), "values": {"y": y}}).encode()

    values = [rec(h, h) for h in (0, 1, 2)] + [rec(h, h) for h in (30, 31, 33, 34)]  # outage, then one hole
    got = series_histories(values, ["y"], rules=GridRules(max_fill=2))
    assert [run[:, 0].tolist() for run in segments(got["s"])] == [[0, 1, 2], [30, 31, 32, 33, 34]]


@pytest.mark.parametrize(
    "token", ["", "NA", "N/A", "#N/A", "null", "None", "NaN", "nan", "nil", ".", "#DIV/0!"]
)
def test_missing_value_tokens_read_as_missing(tmp_path, token):
    p = tmp_path / "d.csv"
    p.write_text(f"time,y\n2024-01-01 00:00,1\n2024-01-01 01:00,{token}\n2024-01-01 02:00,3\n")
    data = read_series(p, ["y"])
    assert data.frame["y"].to_list() == [1.0, 3.0] and data.missing is not None
    assert data.missing.note().startswith("1 rows with a missing value left out (first at 2024-01-01 01:00")


@pytest.mark.parametrize(("token", "missing"), [("nil", True), ("n.a.", False)])
def test_a_token_past_the_rows_that_set_a_columns_type(tmp_path, token, missing):
    """Known tokens are missing wherever they are; another text names its column and what to write."""
    p = tmp_path / "d.csv"
    rows = [str(i % 7) for i in range(12_000)]
    rows[11_000] = token
    p.write_text("y\n" + "\n".join(rows) + "\n")
    if missing:
        assert read_series(p, ["y"], step_ms=1000).frame.height == 11_999
        return
    with pytest.raises(
        InputError, match=r"column 'y' holds numbers and the text 'n\.a\.'; .* empty field or one of"
    ):
        read_series(p, ["y"], step_ms=1000)


def test_a_frame_without_a_time_gap_is_unchanged_by_gridding(tmp_path):
    p = tmp_path / "d.csv"
    pl.DataFrame(
        {"time": [datetime(2024, 1, 1) + timedelta(hours=i) for i in range(50)], "y": range(50)}
    ).write_csv(p)
    tf = read_frame(p)
    grid_tf, g = gridded(tf, ["y"], GridRules())
    assert grid_tf.frame["time"].to_list() == tf.frame["time"].to_list() and g.segments == 1


def test_the_backtest_counts_what_a_worker_would_dead_letter():
    hours = [h for h in range(300)] + [150.5]  # one record between two grid points
    frame = pl.DataFrame(
        {"ts": [datetime(2024, 1, 1) + timedelta(hours=h) for h in hours], "series": "a", "y": np.sin(hours)}
    ).sort("ts")
    cfg = Config.model_validate({"model": {"kind": "naive", "lookback": 24, "horizon": 6}})
    res = backtest(cfg, data=SeriesFrame("one", frame, ["y"], 1), report=False, progress=False)
    (summary,) = res.summary["configs"].values()
    assert summary["records_rejected"] == {"off_grid": 1} and res.runs[0].rejected == 1


def test_a_file_out_of_order_with_a_repeated_hour_reads_as_the_worker_takes_records(tmp_path):
    """Rows are replayed in time order, and of two rows at one time the first is kept (the autumn
    hour of a local-time file), as the worker keeps the first record on a grid point."""
    t0 = datetime(2024, 1, 1)
    rows = [f"{(t0 + timedelta(hours=h)).isoformat()},{h}" for h in range(200)]
    shuffled = rows[100:] + rows[:100] + [f"{(t0 + timedelta(hours=50)).isoformat()},999"]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("time,y\n" + "\n".join(rows) + "\n")
    b.write_text("time,y\n" + "\n".join(shuffled) + "\n")
    clean, messy = read_series(a, ["y"]), read_series(b, ["y"])
    assert messy.frame.equals(clean.frame.with_columns(pl.lit("b").alias("series")))
    assert (messy.duplicates, messy.resorted) == (1, True) and len(messy.notes()) == 2
    long = tmp_path / "long.csv"
    long.write_text("time,s,y\n" + "".join(f"{r.split(',')[0]},x,{r.split(',')[1]}\n" for r in shuffled))
    assert read_series(long, ["y"], series_col="s").frame["y"].to_list() == clean.frame["y"].to_list()
