"""``adaptcast train`` / ``adaptcast predict`` on ETTh1 and on a generated scenario CSV."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from adaptcast.streams.train_cli import predict_command, train_command

ETTH1 = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ett" / "ETTh1.csv"
FAST = ["--param", "epochs=2", "--param", 'accelerator="cpu"']


def invoke(cmd, args):
    return CliRunner().invoke(cmd, [str(a) for a in args])


@pytest.mark.skipif(not ETTH1.is_file(), reason=f"ETTh1 not found at {ETTH1} (shared data folder absent)")
def test_train_and_predict_on_etth1(tmp_path):
    out = tmp_path / "ot"
    res = invoke(
        train_command,
        [
            "--model",
            "arnet",
            "--data",
            ETTH1,
            "--target",
            "OT",
            "--features",
            "HUFL,HULL",
            "--lookback",
            48,
            "--horizon",
            12,
            "--out",
            out,
            "--stride",
            4,
            *FAST,
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["fit"]["epochs"] == 2 and summary["val"]["mse"] > 0 and (out / "manifest.json").is_file()
    res = invoke(predict_command, ["--model-dir", out, "--data", ETTH1])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == "issued_at,ts,step,target,yhat" and len(lines) == 1 + 12
    assert lines[1].startswith("2018-06-26T19:00:00") and ",2018-06-26T20:00:00" in lines[1]


def test_train_and_predict_on_scenario_csv(tmp_path):
    from adaptcast.streams.scenarios import make_scenario

    wide = make_scenario("level_shift", series=2, steps=400, seed=0).wide()
    data = tmp_path / "scenario.csv"
    wide.write_csv(data)
    target, feature = wide.columns[1], wide.columns[2]
    out = tmp_path / "m"
    res = invoke(
        train_command,
        [
            "--model",
            "lstm",
            "--data",
            data,
            "--target",
            target,
            "--features",
            feature,
            "--time-features",
            "--lookback",
            24,
            "--horizon",
            6,
            "--out",
            out,
            *FAST,
            "--param",
            "hidden=8",
        ],
    )
    assert res.exit_code == 0, res.output
    res = invoke(
        predict_command, ["--model-dir", out, "--data", data, "--all", "--out", tmp_path / "f.parquet"]
    )
    assert res.exit_code == 0, res.output
    f = pl.read_parquet(tmp_path / "f.parquet")
    assert f.height == (400 - 24 + 1) * 6 and f["target"].unique().to_list() == [target]
    assert f.filter(pl.col("step") == 1)["ts"].to_list()[0] == f["issued_at"][0] + (
        wide["date"][1] - wide["date"][0]
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "{missing}", "--target", "y"], "file not found"),
        (["--data", "{csv}", "--target", "nope"], "'nope' not found"),
        (["--data", "{csv}", "--target", "y", "--param", "bogus=1"], "unknown hyper-parameter"),
        (["--data", "{csv}", "--target", "y", "--param", "epochs"], "KEY=VALUE"),
        (
            ["--data", "{csv}", "--target", "y", "--param", "epochs=ten"],
            "'epochs' must be a number, got 'ten'",
        ),
        (["--data", "{csv}", "--target", "y", "--lookback", "500"], "too few"),
        (["--data", "{long}", "--target", "y"], "pass --series-col sensor"),
    ],
    ids=[
        "missing-file",
        "missing-column",
        "bad-param",
        "param-syntax",
        "param-type",
        "too-short",
        "long-layout",
    ],
)
def test_train_bad_input_exit_2_without_traceback(tmp_path, args, message):
    csv = tmp_path / "d.csv"
    pl.DataFrame(
        {"ts": [f"2024-01-01 {h:02d}:00" for h in range(24)], "y": [float(h) for h in range(24)]}
    ).write_csv(csv)
    long = tmp_path / "long.csv"
    long.write_text("ts,sensor,y\n2024-01-01 00:00,a,1\n2024-01-01 00:00,b,2\n")
    args = [a.format(missing=tmp_path / "none.csv", csv=csv, long=long) for a in args]
    base = ["--model", "arnet", "--lookback", "4", "--horizon", "2", "--out", str(tmp_path / "o")]
    res = invoke(train_command, base + args)  # a later --lookback overrides the base one
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output


def test_predict_bad_model_dir_exit_2(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("ts,y\n2024-01-01 00:00,1\n")
    res = invoke(predict_command, ["--model-dir", tmp_path / "nomodel", "--data", csv])
    assert res.exit_code == 2 and "no manifest" in res.output


def test_predict_refuses_an_out_suffix_before_loading_the_model(tmp_path):
    res = invoke(predict_command, ["--model-dir", tmp_path / "nomodel", "--data", "d.csv", "--out", "f.txt"])
    assert res.exit_code == 2 and "use a .csv or .parquet file name" in res.output
    assert "no manifest" not in res.output


def test_every_commands_help_has_examples():
    import click

    from adaptcast.streams.cli import main

    ctx = click.Context(main)
    leaves = []
    for name in main.list_commands(ctx):
        cmd = main.get_command(ctx, name)
        subs = [[name, sub] for sub in cmd.list_commands(ctx)] if isinstance(cmd, click.Group) else [[name]]
        leaves += subs
    assert ["peek"] in leaves and ["config", "show"] in leaves
    for words in leaves:
        res = CliRunner().invoke(main, [*words, "--help"])
        assert res.exit_code == 0 and "Examples:" in res.output, words


def test_one_model_for_every_series_of_a_long_file(tmp_path):
    """train --series-col fits one model on every series (each on its grid), predict --series-col
    forecasts after each series' last row, and leaves out a series whose newest window a gap cuts."""
    from datetime import datetime, timedelta

    import numpy as np

    start = datetime(2024, 1, 1)
    rows = ["time,sensor,temp"]
    for k in range(3):
        for h in range(300):
            if k == 2 and 280 <= h < 296:  # an outage right before its end: no window to forecast from
                continue
            value = 20 + 5 * k + 3 * np.sin(2 * np.pi * h / 24 + k)
            rows.append(f"{(start + timedelta(hours=h)).isoformat()},s{k},{value:.4f}")
    data = tmp_path / "sensors.csv"
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "m"
    shape = ["--target", "temp", "--lookback", 24, "--horizon", 6, "--model", "arnet"]
    res = invoke(train_command, ["--data", data, "--series-col", "sensor", *shape, "--out", out])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["data"]["series"] == 3 and summary["data"]["segments"] == 4  # s2's outage splits it
    assert summary["val"]["mae"] < 0.5
    res = invoke(predict_command, ["--model-dir", out, "--data", data, "--series-col", "sensor"])
    assert res.exit_code == 0, res.output
    assert "skipped series s2: the newest 24 steps are cut by a gap" in res.output
    lines = [line.split(",") for line in res.output.splitlines() if line[:3] in ("s0,", "s1,", "s2,")]
    assert {r[0] for r in lines} == {"s0", "s1"} and len(lines) == 12
    assert {r[1] for r in lines} == {"2024-01-13T11:00:00"}  # hour 299, each series' last row


def test_a_prometheus_export_trains_and_forecasts_each_series_without_naming_a_series_column(tmp_path):
    """What `curl …/api/v1/query_range` saves is a long file: train and predict take its series."""
    import numpy as np

    result = [
        {
            "metric": {"__name__": "node_load1", "instance": f"h{k}:9100"},
            "values": [[1_704_067_200 + 60 * i, f"{5 + k + np.sin(i / 5):.4f}"] for i in range(200)],
        }
        for k in range(2)
    ]
    data = tmp_path / "load.json"
    data.write_text(json.dumps({"status": "success", "data": {"resultType": "matrix", "result": result}}))
    out = tmp_path / "m"
    shape = ["--target", "value", "--lookback", 12, "--horizon", 3, "--model", "arnet"]
    res = invoke(train_command, ["--data", data, *shape, "--out", out])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["series"] == 2
    res = invoke(predict_command, ["--model-dir", out, "--data", data])
    assert res.exit_code == 0, res.output
    rows = pl.read_csv(res.output.encode())
    assert sorted(rows["series"].unique()) == [
        'node_load1{instance="h0:9100"}',
        'node_load1{instance="h1:9100"}',
    ]
    assert rows.height == 6 and set(rows["issued_at"]) == {"2024-01-01T03:19:00"}


def test_quantiles_of_otlp_histograms_trained_on_are_read_again_by_predict(tmp_path):
    """serving.otlp_quantiles at training is kept with the model: predict reads the same file's
    histograms into the same quantile series without being told again."""
    from test_otlp_files import latency

    data = tmp_path / "latency.jsonl"
    data.write_text("".join(json.dumps(latency(t)) + "\n" for t in range(60)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("serving:\n  otlp_quantiles: [0.99]\n")
    out = tmp_path / "m"
    shape = ["--target", "value", "--lookback", 6, "--horizon", 2, "--model", "arnet"]
    res = invoke(train_command, ["--config", cfg, "--data", data, *shape, "--out", out])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["series"] == 3
    res = invoke(predict_command, ["--model-dir", out, "--data", data])
    assert res.exit_code == 0, res.output
    assert set(pl.read_csv(res.output.encode())["series"]) == {
        "http.server.duration_count",
        "http.server.duration_sum",
        'http.server.duration{quantile="0.99"}',
    }


def test_predict_with_a_model_trained_on_a_topic_takes_the_files_step(tmp_path):
    """`train --from-topic` records no step (the topic's series may have any): predict uses the file's."""
    from datetime import datetime, timedelta

    import numpy as np

    from adaptcast.forecast import create_forecaster
    from adaptcast.forecast.windows import sliding_windows

    model = create_forecaster("naive", lookback=6, horizon=3)
    model.fit(*sliding_windows(np.arange(40.0), 6, 3))
    model.schema = {"targets": ["y"], "features": [], "channels": ["y"]}  # what fit_on_topic writes
    model.save(tmp_path / "m")
    data = tmp_path / "d.csv"
    start = datetime(2024, 1, 1)
    data.write_text(
        "ts,y\n" + "".join(f"{(start + timedelta(minutes=15 * k)).isoformat()},{k}\n" for k in range(10))
    )
    res = invoke(predict_command, ["--model-dir", tmp_path / "m", "--data", data])
    assert res.exit_code == 0, res.output
    rows = [line.split(",") for line in res.output.splitlines()[1:]]
    assert [r[1][:16] for r in rows] == ["2024-01-01T02:30", "2024-01-01T02:45", "2024-01-01T03:00"]


def test_a_model_trained_at_64_hz_forecasts_on_the_stamps_its_feed_will_have(tmp_path):
    """The manifest keeps the rate exactly (0.015625 s, not a rounded 16 ms), and predict stamps each
    lead where the sensor's next readings fall: 15 and 16 ms apart in turn, as truncated to the ms."""
    import numpy as np

    stamps = 1_700_000_000_123 + np.floor(np.arange(700) * 1000 / 64).astype(np.int64)
    y = np.sin(np.arange(700) / 5.0)
    frame = pl.DataFrame({"ts": stamps, "y": y}).with_columns(pl.from_epoch("ts", time_unit="ms"))
    frame.write_csv(tmp_path / "train.csv")
    frame.head(600).write_csv(tmp_path / "recent.csv")
    res = invoke(
        train_command, ["--data", tmp_path / "train.csv", "--target", "y", "--out", tmp_path / "m", *FAST]
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["schema"]["step_seconds"] == 0.015625
    res = invoke(predict_command, ["--model-dir", tmp_path / "m", "--data", tmp_path / "recent.csv"])
    assert res.exit_code == 0, res.output
    out = pl.read_csv(res.stdout.encode(), try_parse_dates=True)
    assert (
        out["ts"].cast(pl.Datetime("ms")).dt.epoch("ms").to_list() == stamps[600 : 600 + out.height].tolist()
    )


def test_csv_times_are_iso_without_fractions_unless_some_time_has_them(tmp_path):
    import io
    from datetime import datetime, timedelta

    from adaptcast.streams.cli_common import write_frame

    hours = pl.DataFrame({"ts": [datetime(2024, 1, 1, h) for h in range(2)], "y": [1.0, 2.0]})
    out = io.StringIO()
    write_frame(hours, out)
    assert out.getvalue().splitlines()[1:] == ["2024-01-01T00:00:00,1.0", "2024-01-01T01:00:00,2.0"]
    fast = hours.with_columns(pl.col("ts") + pl.Series([timedelta(0), timedelta(milliseconds=250)]))
    write_frame(fast, tmp_path / "f.csv")  # 100 ms feeds keep their fractions, every row alike
    assert (tmp_path / "f.csv").read_text().splitlines()[1:3] == [
        "2024-01-01T00:00:00.000,1.0",
        "2024-01-01T01:00:00.250,2.0",
    ]
    zoned = io.StringIO()
    write_frame(hours.with_columns(pl.col("ts").dt.replace_time_zone("Europe/Berlin")), zoned)
    assert zoned.getvalue().splitlines()[1] == "2024-01-01T00:00:00+01:00,1.0"


def test_train_takes_a_file_of_one_column_of_values_without_target(tmp_path):
    """``time,value`` trains as it backtests: its one column of values is the target, as the saved
    model's schema says; a file of two columns of values still asks which."""
    from adaptcast.streams.cli import main

    stamps = [f"2024-01-{1 + h // 24:02d} {h % 24:02d}:00" for h in range(200)]
    one, two = tmp_path / "flow.csv", tmp_path / "flows.csv"
    one.write_text("time,value\n" + "".join(f"{t},{100 + i % 24}\n" for i, t in enumerate(stamps)))
    two.write_text("time,a,b\n" + "".join(f"{t},{i % 24},{i % 7}\n" for i, t in enumerate(stamps)))
    shape = ["--model", "naive", "--lookback", "24", "--horizon", "6"]
    res = CliRunner().invoke(main, ["train", "--data", str(one), *shape, "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["schema"]["targets"] == ["value"]
    res = CliRunner().invoke(main, ["train", "--data", str(two), *shape, "--out", str(tmp_path / "m2")])
    assert res.exit_code == 2 and "column 'y' not found" in res.output


def test_backtest_train_and_predict_a_file_of_values_only_at_a_declared_step(tmp_path):
    """A benchmark file with no header and no time column (LSTNet's layout), each column a series:
    with grid.frequency declared its rows are numbered that far apart, and every command reads it."""
    import numpy as np

    from adaptcast.streams.cli import main

    rng = np.random.default_rng(0)
    values = np.cumsum(rng.normal(0, 0.01, (300, 3)), axis=0) + 1
    path = tmp_path / "exchange_rate.txt"
    path.write_text("\n".join(",".join(f"{v:.5f}" for v in row) for row in values) + "\n")
    runner, env = CliRunner(), {"ADAPTCAST__GRID__FREQUENCY": "1d"}  # or --frequency 1d, as train takes it
    shape = ["--data", str(path), "--series-cols", "*", "--lookback", "14", "--horizon", "7"]
    res = runner.invoke(
        main, ["backtest", *shape, "--model", "naive", "--out", str(tmp_path / "bt")], env=env
    )
    assert res.exit_code == 0, res.output
    (cfg,) = json.loads((tmp_path / "bt" / "summary.json").read_text())["configs"].values()
    assert cfg["n_forecasts"] > 3 * 250 and cfg["records_rejected"] == {} and cfg["series_resets"] == 0
    rows = tmp_path / "rows.csv"  # the same series one per row, M4's layout
    rows.write_text("id," + ",".join(f"v{i}" for i in range(300)) + "\n")
    with rows.open("a") as f:
        for k in range(3):
            f.write(f"s{k}," + ",".join(f"{v:.5f}" for v in values[:, k]) + "\n")
    by_row = ["--data", str(rows), "--series-rows", "--frequency", "1d", "--lookback", "14", "--horizon", "7"]
    res = runner.invoke(main, ["backtest", *by_row, "--model", "naive", "--out", str(tmp_path / "rows")])
    assert res.exit_code == 0, res.output
    (by_rows,) = json.loads((tmp_path / "rows" / "summary.json").read_text())["configs"].values()
    assert by_rows["n_forecasts"] == cfg["n_forecasts"] and by_rows["mae"] == pytest.approx(cfg["mae"])
    res = runner.invoke(main, ["backtest", *shape, "--out", str(tmp_path / "no")])
    assert res.exit_code != 0 and "declare the step (--frequency 1h, or grid.frequency)" in res.output
    res = runner.invoke(
        main,
        [
            "train",
            *shape,
            "--frequency",
            "1d",
            "--target",
            "y",
            "--param",
            "epochs=1",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main, ["predict", "--model-dir", str(tmp_path / "m"), "--data", str(path), "--series-cols", "*"]
    )
    assert res.exit_code == 0, res.output
    rows = res.output.strip().splitlines()[1:]
    assert len(rows) == 3 * 7 and rows[0].split(",")[2].startswith("1970-10-28")  # the day after row 300
    model_rows = str(tmp_path / "m_rows")  # train and predict take the file of a series per row alike
    train_rows = ["train", *by_row, "--target", "y", "--param", "epochs=1", "--out", model_rows]
    res = runner.invoke(main, train_rows)
    assert res.exit_code == 0, res.output
    res = runner.invoke(
        main, ["predict", "--model-dir", model_rows, "--data", str(tmp_path / "rows.csv"), "--series-rows"]
    )
    assert res.exit_code == 0, res.output
    by_series = [r.split(",") for r in res.output.strip().splitlines()[1:]]
    assert [r[0] for r in by_series[::7]] == ["s0", "s1", "s2"]
    assert [r[1:] for r in by_series] == [r.split(",")[1:] for r in rows]  # the same forecasts


def test_a_model_trained_on_a_file_with_a_glitch_has_not_learnt_it(tmp_path):
    """`adaptcast train` cleans a file's isolated outliers before windowing, as a worker's retrain
    does: a sensor's 1e12 among 600 hourly values used to set the scaler, and every forecast of
    the model was of the order of 1e9."""
    import numpy as np

    rng = np.random.default_rng(5)
    y = 10 + 3 * np.sin(2 * np.pi * np.arange(600) / 24) + rng.normal(0, 0.5, 600)
    y[300] = 1e12
    data = tmp_path / "glitch.csv"
    times = pl.datetime_range(
        pl.datetime(2025, 1, 1), pl.datetime(2025, 1, 1) + pl.duration(hours=599), "1h", eager=True
    )
    pl.DataFrame({"ts": times, "y": y}).write_csv(data)
    out = tmp_path / "m"
    flags = ["--lookback", 24, "--horizon", 6, "--model", "arnet"]
    res = invoke(train_command, ["--data", data, "--target", "y", *flags, "--out", out])
    assert res.exit_code == 0, res.output
    res = invoke(predict_command, ["--model-dir", out, "--data", data])
    assert res.exit_code == 0, res.output
    yhat = pl.read_csv(res.output.encode())["yhat"]
    assert yhat.is_between(4, 16).all(), yhat.to_list()


@pytest.mark.parametrize("layout", ["one", "wide"])
def test_train_compares_with_the_last_value_and_says_when_the_model_loses(tmp_path, layout):
    """Random walks: the summary gives persistence's held-out errors beside the model's, one series
    or several (it gave them for one only), and a model that errs more (a seasonal naive at 24
    steps) is told so on stderr with what to try."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 500
    frame = pl.DataFrame(
        {
            "ts": pl.datetime_range(
                pl.datetime(2024, 1, 1), pl.datetime(2024, 1, 1) + pl.duration(hours=n - 1), "1h", eager=True
            ),
            "a": 50 + np.cumsum(rng.normal(size=n)),
            "b": 80 + np.cumsum(rng.normal(size=n)),
        }
    )
    path = tmp_path / "walks.csv"
    frame.write_csv(path)
    layout_args = ["--target", "a"] if layout == "one" else ["--series-cols", "a,b"]
    args = ["--data", path, *layout_args, "--model", "naive", "--lookback", 48, "--horizon", 6]
    for season, loses in ((24, True), (1, False)):
        res = invoke(train_command, [*args, "--param", f"season={season}", "--out", tmp_path / str(season)])
        assert res.exit_code == 0, res.output
        val = json.loads(res.stdout)["val"]
        assert (val["mae"] > val["naive"]["mae"]) is loses
        assert ("erred more than repeating the last value" in res.stderr) is loses
