"""OTLP metrics requests in files (forecast/otlp.py): what the OpenTelemetry Collector's file exporter
writes, or a dump of the topic its Kafka exporter fills, read as the live worker's ``otlp`` records
name the same series, so a model backtested or trained on the file serves the live feed."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from adaptcast.forecast import InputError
from adaptcast.forecast.data import read_series
from adaptcast.streams import records as R
from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import Config
from adaptcast.streams.formats import otlp

HOUR_NS = 3_600 * 10**9
T0_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
HOSTS = ("a", "b")


def request(t: int, value=None, stale: bool = True) -> dict:
    """One export of a gauge for two hosts at hour ``t`` (and a stale marker of a third)."""
    when = str(T0_NS + t * HOUR_NS)
    points = [
        {
            "timeUnixNano": when,
            "attributes": [{"key": "host", "value": {"stringValue": h}}],
            "asDouble": 10.0 * k + t if value is None else value,
        }
        for k, h in enumerate(HOSTS)
    ]
    if stale:
        points.append(
            {"timeUnixNano": when, "flags": 1, "attributes": [{"key": "host", "value": {"stringValue": "c"}}]}
        )
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]}
    metrics = [{"name": "load", "unit": "1", "gauge": {"dataPoints": points}}]
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": metrics}]}]}


def live_series(req: dict) -> list[str]:
    """The series the live worker serves a request's points as."""
    return [
        r.series for r in R.decode_message(json.dumps(req).encode(), shape=otlp) if isinstance(r, R.Record)
    ]


def test_a_file_exporters_lines_are_a_series_per_point_named_as_the_live_worker_names_them(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text("".join(json.dumps(request(t)) + "\n" for t in range(30)))
    data = read_series(p, ["value"])  # no --series-col: the requests name their series
    assert data.frame["series"].unique(maintain_order=True).to_list() == live_series(request(0))
    b = data.frame.filter(data.frame["series"] == 'load{host="b",service.name="api"}')
    assert b["value"].to_list() == [10.0 + t for t in range(30)]
    assert b["ts"][1] == datetime(2024, 1, 1, 1)
    assert data.missing is not None and data.missing.rows == 30  # host c's stale markers are gaps


def test_one_request_pretty_printed_in_a_json_file_reads(tmp_path):
    p = tmp_path / "one.json"
    p.write_text(json.dumps(request(0), indent=2))
    assert read_series(p, ["value"]).frame["value"].to_list() == [0.0, 10.0]


@pytest.mark.parametrize(
    ("lines", "needle"),
    [
        ([json.dumps(request(0)), "{not json"], "line 2 is not JSON"),
        (
            [json.dumps(request(0, value="high"))],
            'line 1: series load{host="a",service.name="api"} has value \'high\'',
        ),
        (  # Python's float reads "1_000"; the live worker does not, and a file reads as it does
            [json.dumps(request(0, value="1_000"))],
            'line 1: series load{host="a",service.name="api"} has value \'1_000\'',
        ),
        (
            [json.dumps({"resourceMetrics": {"x": 1}})],
            "line 1: otlp request's resourceMetrics must be a list",
        ),
        (
            [json.dumps(request(0)).replace('"timeUnixNano": "1704067200000000000", ', "", 1)],
            "line 1: otlp data point of 'load' lacks timeUnixNano",
        ),
        ([json.dumps({"resourceMetrics": []})], "hold no data points"),
    ],
)
def test_a_file_of_bad_requests_is_refused_naming_the_line(tmp_path, lines, needle):
    p = tmp_path / "bad.jsonl"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"bad\.jsonl: ") as err:
        read_series(p, ["value"])
    assert needle in str(err.value)


def test_a_backtest_of_an_otlp_file_forecasts_every_series(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text("".join(json.dumps(request(t)) + "\n" for t in range(40)))
    cfg = Config.model_validate(
        {
            "model": {"kind": "naive", "lookback": 6, "horizon": 3, "target": ["value"]},
            "backtest": {"data": str(p)},
        }
    )
    res = backtest(cfg, report=False, progress=False)
    assert sorted(res.forecasts["series"].unique()) == sorted(live_series(request(0)))
    b = res.forecasts.filter(res.forecasts["series"] == 'load{host="b",service.name="api"}')
    hours = (b["issued_at"] - datetime(2024, 1, 1)).dt.total_hours()
    assert b.height > 0 and (b["yhat_base"] == 10.0 + hours).all()  # naive: the value at issue time


def latency(t: int) -> dict:
    """One export of a request-latency histogram at hour ``t``: 40 requests, the slow tail growing with t."""
    point = {
        "timeUnixNano": str(T0_NS + t * HOUR_NS),
        "count": "40",
        "sum": 10.0,
        "explicitBounds": [0.1, 0.5, 1.0],
        "bucketCounts": ["10", "20", str(10 - t % 5), str(t % 5)],
        "max": 3.0,
    }
    metrics = [
        {"name": "http.server.duration", "histogram": {"aggregationTemporality": 1, "dataPoints": [point]}}
    ]
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": metrics}]}]}


def test_a_backtest_reads_the_quantiles_asked_for_as_the_live_worker_does(tmp_path):
    """serving.otlp_quantiles: the file's histograms give the same quantile series, and values,
    as the live worker reads from the same requests, and only where asked for."""
    from adaptcast.streams.feed import load_feed
    from adaptcast.streams.formats import shape_for

    p = tmp_path / "latency.jsonl"
    p.write_text("".join(json.dumps(latency(t)) + "\n" for t in range(30)))
    cfg = Config.model_validate(
        {
            "model": {"target": ["value"]},
            "backtest": {"data": str(p)},
            "serving": {"otlp_quantiles": [0.99, 0.5, 0.5]},
        }
    )
    assert cfg.serving.otlp_quantiles == [0.5, 0.99]  # each once: one listed twice would read twice
    data = load_feed(cfg)
    live = shape_for("otlp", otlp_quantiles=cfg.serving.otlp_quantiles)
    for t in (0, 3):
        read = {
            r.series: r.values["value"]
            for r in R.decode_message(json.dumps(latency(t)).encode(), shape=live)
            if isinstance(r, R.Record)
        }
        at = data.frame.filter(data.frame["ts"] == datetime(2024, 1, 1, t))
        assert dict(zip(at["series"], at["value"], strict=True)) == read
    assert read['http.server.duration{quantile="0.5"}'] == pytest.approx(0.3)
    # rank 39.6 of 40 at t = 3: 2.6 into the 3 past 1.0, a bucket the max closes at 3.0
    assert read['http.server.duration{quantile="0.99"}'] == pytest.approx(1 + 2 * 2.6 / 3)
    plain = read_series(p, ["value"])  # not asked for: _count and _sum only
    assert set(plain.frame["series"]) == {"http.server.duration_count", "http.server.duration_sum"}
