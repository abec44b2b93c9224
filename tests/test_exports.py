"""Monitoring exports (forecast/exports.py): Prometheus' range-query answer and VictoriaMetrics' export
read as a long file, their series named as the live worker's ``prometheus`` records name them."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from adaptcast.forecast import InputError
from adaptcast.forecast.data import read_series
from adaptcast.streams.formats import prometheus

T0 = 1_704_067_200  # 2024-01-01T00:00:00Z
LABELS = [
    {"__name__": "node_load1", "instance": "10.0.0.1:9100", "job": "node"},
    {"__name__": "node_load1", "instance": "10.0.0.2:9100", "job": "node"},
]


def answer(result, kind="matrix") -> dict:
    return {"status": "success", "data": {"resultType": kind, "result": result}}


def matrix(n: int = 5, step: float = 15.0) -> dict:
    return answer(
        [
            {"metric": labels, "values": [[T0 + i * step, f"{10 * k + i}.5"] for i in range(n)]}
            for k, labels in enumerate(LABELS)
        ]
    )


def live_name(labels: dict) -> str:
    """The series a prometheus-kafka-adapter sample of these labels is served as."""
    return prometheus({"name": labels["__name__"], "labels": labels, "value": "1", "timestamp": 0})["series"]


def test_a_range_query_answer_is_a_series_per_label_set_named_as_the_live_worker_names_it(tmp_path):
    p = tmp_path / "q.json"
    p.write_text(json.dumps(matrix(), indent=2))  # pretty-printed, as jq writes it
    data = read_series(p, ["value"])  # no --series-col: the export holds its series
    assert data.frame["series"].unique(maintain_order=True).to_list() == [live_name(x) for x in LABELS]
    first = data.frame.filter(data.frame["series"] == live_name(LABELS[1]))
    assert first["value"].to_list() == [10.5, 11.5, 12.5, 13.5, 14.5]
    assert first["ts"][1] == datetime(2024, 1, 1, 0, 0, 15)


def test_an_answer_with_its_keys_sorted_reads_though_its_status_comes_last(tmp_path):
    """``jq -S`` and ``json.dump(sort_keys=True)`` put ``data`` first and ``status`` after the samples."""
    p = tmp_path / "q.json"
    p.write_text(json.dumps(matrix(n=400), sort_keys=True, indent=2))
    assert p.read_text().index('"status"') > 4096
    data = read_series(p, ["value"])
    assert data.frame.height == 800 and data.frame["series"].n_unique() == 2
    lines = tmp_path / "rows.json"  # JSON lines whose first row happens to hold such keys
    lines.write_text(
        '{"ts": 1, "data": 2, "result": 3, "status": 4}\n{"ts": 2, "data": 5, "result": 6, "status": 7}\n'
    )
    assert read_series(lines, ["result"]).frame["result"].to_list() == [3.0, 6.0]


def test_a_stale_marker_reads_as_missing_and_fractional_seconds_keep_their_milliseconds(tmp_path):
    doc = answer(
        [{"metric": LABELS[0], "values": [[T0 + 0.25, "1"], [T0 + 15.25, "NaN"], [T0 + 30.25, "3"]]}]
    )
    p = tmp_path / "q.json"
    p.write_text(json.dumps(doc))
    data = read_series(p, ["value"])
    assert data.frame["value"].to_list() == [1.0, 3.0]
    assert data.missing is not None and data.missing.rows == 1
    assert data.frame["ts"][0] == datetime(2024, 1, 1, 0, 0, 0, 250_000)


def test_series_without_labels_or_name_are_named_as_prometheus_writes_them(tmp_path):
    doc = answer(
        [
            {"metric": {"__name__": "up"}, "values": [[T0, "1"]]},
            {"metric": {"code": 'say "hi"\\'}, "values": [[T0, "2"]]},
        ]
    )
    p = tmp_path / "q.json"
    p.write_text(json.dumps(doc))
    assert sorted(read_series(p, ["value"]).frame["series"]) == ["up", '{code="say \\"hi\\"\\\\"}']


@pytest.mark.parametrize(
    "doc, message",
    [
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"},
            r"Prometheus answered with an error \(parse error at char 5\)",
        ),
        (answer([{"metric": LABELS[0], "value": [T0, "1"]}], "vector"), r"type 'vector'.*query_range"),
        (answer([]), "holds no samples"),
    ],
    ids=["error", "instant-query", "empty"],
)
def test_an_answer_without_series_says_what_to_export(tmp_path, doc, message):
    p = tmp_path / "q.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=message):
        read_series(p, ["value"])


def test_victoriametrics_export_lines_are_a_series_each(tmp_path):
    lines = [
        {
            "metric": labels,
            "values": [float(k), float(k) + 1, None],
            "timestamps": [T0 * 1000 + i * 60_000 for i in range(3)],
        }
        for k, labels in enumerate(LABELS)
    ]
    p = tmp_path / "export.jsonl"
    p.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    data = read_series(p, ["value"])
    assert data.frame.height == 4 and data.missing is not None and data.missing.rows == 2
    assert data.frame.filter(data.frame["series"] == live_name(LABELS[1]))["value"].to_list() == [1.0, 2.0]
    assert data.frame["ts"].max() == datetime(2024, 1, 1, 0, 1)


def test_victoriametrics_line_with_more_values_than_times_is_refused_by_name(tmp_path):
    p = tmp_path / "export.jsonl"
    p.write_text(json.dumps({"metric": LABELS[0], "values": [1, 2], "timestamps": [1]}) + "\n")
    with pytest.raises(
        InputError, match=r'node_load1\{instance="10.0.0.1:9100",job="node"\} has 2 values for 1'
    ):
        read_series(p, ["value"])


def test_a_text_column_named_series_is_the_series_column_unless_another_is_named(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text(
        "ts,series,host,y\n2024-01-01 00:00,a,h1,1\n2024-01-01 00:00,b,h2,2\n2024-01-01 01:00,a,h1,3\n"
    )
    assert read_series(p, ["y"]).frame["series"].to_list() == ["a", "b", "a"]
    assert read_series(p, ["y"], series_col="host").frame["series"].to_list() == ["h1", "h2", "h1"]


def test_a_series_named_as_a_counter_is_forecast_with_advice_to_forecast_its_rate(caplog):
    """Once per loop (the backtest's, the worker's): a counter's value only grows, its rate is what
    is worth forecasting; a rate of it (no ``_total``) is not warned of."""
    import numpy as np

    from adaptcast.forecast import create_forecaster
    from adaptcast.forecast.windows import sliding_windows
    from adaptcast.streams.loop import ForecastLoop
    from adaptcast.streams.records import Record

    model = create_forecaster("naive", lookback=4, horizon=2)
    model.fit(*sliding_windows(np.arange(40.0), 4, 2))
    loop = ForecastLoop(model, ["value"])
    names = ['{code="200"}', 'http_requests_total{code="200"}', 'http_requests_total{code="500"}']
    with caplog.at_level("WARNING", logger="adaptcast.loop"):
        for k in range(6):
            loop.process([Record(n, T0 * 1000 + k * 15_000, {"value": float(k)}) for n in names])
    said = [r.getMessage() for r in caplog.records if "named as Prometheus names a counter" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("series 'http_requests_total{code=\"200\"}'")
    assert "rate(<name>[5m])" in said[0]


def test_an_influxdb_export_in_line_protocol_is_a_series_per_tag_set_named_as_the_live_worker_names_it(
    tmp_path,
):
    """``influx_inspect export`` writes its DDL and DML headers, then a line per point; a field may be
    missing on some lines, text fields are not values, times are nanoseconds."""
    from adaptcast.streams import records as R
    from adaptcast.streams.formats import influx

    ns = [(T0 + h * 3600) * 10**9 for h in range(30)]
    lines = [
        f'cpu,host=web\\ 1,cpu=cpu0 usage_idle={90 + h}.5,usage_user={h}i,state="ok" {t}'
        for h, t in enumerate(ns)
    ]
    lines += [f"cpu,host=web-2,cpu=cpu0 usage_idle={50 + h}.0 {t}" for h, t in enumerate(ns)]
    p = tmp_path / "export.lp"
    p.write_text(
        "# DDL\nCREATE DATABASE telegraf WITH NAME autogen\n# DML\n# CONTEXT-DATABASE: telegraf\n\n"
        + "\n".join(lines)
        + "\n"
    )
    data = read_series(p, ["usage_idle"])
    live = {r.series for r in R.decode_message("\n".join(lines).encode(), shape=influx, ts_unit="ns")}
    assert (
        set(data.frame["series"].unique()) == live == {"cpu,cpu=cpu0,host=web 1", "cpu,cpu=cpu0,host=web-2"}
    )
    web2 = data.frame.filter(data.frame["series"] == "cpu,cpu=cpu0,host=web-2")
    assert web2["usage_idle"].to_list() == [50.0 + h for h in range(30)]
    assert web2["ts"][1] == datetime(2024, 1, 1, 1)
    both = read_series(p, ["usage_idle", "usage_user"])  # web-2 never has usage_user: its rows are missing
    assert both.missing is not None and both.missing.rows == 30


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("cpu usage=1 1\ncpu usage= 2\n", "line 2 is not line protocol"),
        ("cpu usage=1\n", "line 1 has no time"),
        ("# only comments\n", "no line protocol in the file"),
    ],
)
def test_a_bad_line_protocol_file_is_refused_naming_the_line(tmp_path, text, needle):
    p = tmp_path / "bad.lp"
    p.write_text(text)
    with pytest.raises(InputError, match=needle):
        read_series(p, ["usage"])
