"""Producers' own record shapes (Telegraf, Prometheus adapter, flat rows, Debezium) read as the contract."""

from __future__ import annotations

import json

import pytest
from malformed import decode_one

from adaptcast.streams import records as R
from adaptcast.streams.formats import (
    SHAPES,
    cloudevents,
    debezium,
    flat,
    influx,
    otlp,
    prometheus,
    shape_for,
    telegraf,
)


def _decode(obj, shape, **kw):
    return decode_one(json.dumps(obj).encode(), shape=shape, **kw)


def test_a_telegraf_metric_is_a_series_per_tag_set_with_its_numeric_fields():
    metric = {
        "name": "cpu",
        "tags": {"host": "web-1", "cpu": "cpu0"},
        "fields": {"usage_idle": 91.5, "usage_user": 3, "state": "ok", "throttled": False},
        "timestamp": 1_704_070_800,
    }
    rec = _decode(metric, telegraf, required=("usage_idle",), ts_unit="s")
    assert rec.series == "cpu,cpu=cpu0,host=web-1"
    assert rec.values == {"usage_idle": 91.5, "usage_user": 3.0}
    assert R.format_timestamp(rec.ts_ms) == "2024-01-01T01:00:00Z"


def test_a_prometheus_adapter_sample_is_a_series_per_label_set_with_one_value():
    sample = {
        "timestamp": "2024-01-01T01:00:00Z",
        "value": "0.25",
        "name": "node_load1",
        "labels": {"__name__": "node_load1", "job": "node", "instance": "10.0.0.1:9100"},
    }
    rec = _decode(sample, prometheus, required=("value",))
    assert rec.series == 'node_load1{instance="10.0.0.1:9100",job="node"}'
    assert rec.values == {"value": 0.25} and R.format_timestamp(rec.ts_ms) == "2024-01-01T01:00:00Z"


def test_a_flat_reading_has_its_numeric_fields_as_values_and_may_leave_series_and_time_to_kafka():
    reading = {"series": "pump-7", "timestamp": "2024-01-01T01:00:00Z", "temp": 21.5, "rpm": "1200"}
    reading |= {"unit": "C", "ok": True, "meta": {"fw": 3}}
    rec = _decode(reading, flat, required=("temp",))
    assert (rec.series, R.format_timestamp(rec.ts_ms)) == ("pump-7", "2024-01-01T01:00:00Z")
    assert rec.values == {"temp": 21.5, "rpm": 1200.0}
    bare = {"temp": 20.0}  # a device that sends only its reading: key and message time name the rest
    rec = _decode(bare, flat, key=b"pump-8", message_ts_ms=1_704_070_800_000, ts_unit="s")
    assert (rec.series, rec.ts_ms, rec.values) == ("pump-8", 1_704_070_800_000, {"temp": 20.0})
    with pytest.raises(R.RecordError, match=r"serving\.ts_from_message") as err:
        _decode(bare, flat, key=b"pump-8")
    assert err.value.reason == R.MISSING_FIELD


def test_flat_fields_named_by_the_config_give_the_series_and_the_time():
    """Rows of a table rarely say ``series`` and ``ts``: serving.series_field and time_field name
    them, an integer id reads as its text, and neither becomes a value."""
    shape = shape_for("flat", series_field="sensor_id", time_field="recorded_at")
    row = {"sensor_id": 17, "recorded_at": "2024-01-01T01:00:00Z", "ts": 5, "temp": 20.5}
    rec = _decode(row, shape, required=("temp",))
    assert (rec.series, R.format_timestamp(rec.ts_ms)) == ("17", "2024-01-01T01:00:00Z")
    assert rec.values == {"ts": 5.0, "temp": 20.5}  # named fields replace the defaults, not add to them
    assert shape_for("flat") is flat and shape_for("telegraf", "x") is telegraf


def test_a_flat_series_may_be_several_fields_as_a_metric_is_its_labels():
    """{"host": "a", "metric": "cpu", ...}: with series_field host alone, cpu and mem readings of one
    host collided as one series' duplicates; naming both makes a series of each pair."""
    shape = shape_for("flat", series_field="host, metric")
    rec = _decode({"host": "a", "metric": "cpu", "port": 8080, "ts": 1_704_070_800_000, "value": 0.5}, shape)
    assert (rec.series, rec.values) == ("a/cpu", {"port": 8080.0, "value": 0.5})
    with pytest.raises(R.RecordError) as info:
        _decode({"host": "a", "ts": 1_704_070_800_000, "value": 0.5}, shape)  # no metric: no series
    assert info.value.reason == R.MISSING_FIELD and "series" in str(info.value)


def test_a_debezium_change_event_is_its_row_after_the_change():
    row = {"id": 3, "series": "pump-7", "ts": 1_704_070_800_000_000, "temp": 20.5, "note": "ok"}
    event = {"before": None, "after": row, "op": "c", "ts_ms": 1_704_070_900_000, "source": {}}
    rec = _decode({"schema": {"type": "struct"}, "payload": event}, debezium, ts_unit="us")
    assert (rec.series, rec.ts_ms, rec.values) == ("pump-7", 1_704_070_800_000, {"id": 3.0, "temp": 20.5})
    update = event | {"op": "u", "before": row, "after": row | {"temp": 21.0}}
    assert _decode(update, debezium, ts_unit="us").values["temp"] == 21.0


def test_a_cloudevent_is_its_data_with_the_series_and_time_the_event_gives():
    event = {"specversion": "1.0", "id": "e1", "type": "reading", "source": "/plant/a"}
    event |= {"subject": "pump-7", "time": "2024-01-01T01:00:00Z", "data": {"temp": 20.5, "unit": "C"}}
    rec = _decode(event, cloudevents, required=("temp",))
    assert (rec.series, R.format_timestamp(rec.ts_ms), rec.values) == (
        "pump-7",
        "2024-01-01T01:00:00Z",
        {"temp": 20.5},
    )
    own = {"series": "s1", "ts": 1_704_070_800_000, "values": {"y": 1.5}}  # adaptcast's record as data
    rec = _decode({k: v for k, v in event.items() if k != "subject"} | {"data": own}, cloudevents)
    assert (rec.series, rec.ts_ms, rec.values) == ("s1", 1_704_070_800_000, {"y": 1.5})
    no_subject = {k: v for k, v in event.items() if k != "subject"}
    assert _decode(no_subject, cloudevents).series == "/plant/a"  # the source names it then
    with pytest.raises(R.RecordError, match=r"data_base64 is not read") as err:
        _decode({**no_subject, "data": None, "data_base64": "AAEC"}, cloudevents)
    assert err.value.reason == R.MISSING_FIELD


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        ({"before": {"id": 3}, "after": None, "op": "d"}, r"is a delete.*skipped\.operations=d,t"),
        ({"op": "t"}, "is a truncate"),
        ({"after": {"series": "a", "ts": 1, "y": 1}}, "debezium record lacks field 'op'"),
        ({"op": "c", "after": [1]}, "'after' must be the row"),
        ({"op": "c", "after": {"series": "a", "ts": 1, "y": "AeI="}}, r"decimal\.handling\.mode=double"),
    ],
)
def test_a_debezium_event_without_a_reading_says_why(event, needle):
    with pytest.raises(R.RecordError, match=needle) as err:
        _decode(event, debezium)
    assert err.value.reason == R.MISSING_FIELD


@pytest.mark.parametrize(
    ("shape", "obj", "reason", "needle"),
    [
        (
            telegraf,
            {"name": "cpu", "fields": {"a": 1}},
            R.MISSING_FIELD,
            "telegraf record lacks field 'timestamp'",
        ),
        (telegraf, [1], R.NOT_OBJECT, "a telegraf record must be a JSON object"),
        (telegraf, {"name": "c", "fields": {"s": "x"}, "timestamp": 1}, R.MISSING_FIELD, "values must be"),
        (prometheus, {"name": "up", "value": "NaN", "timestamp": 1}, R.NON_FINITE, "not finite"),
        (prometheus, {"name": "up", "value": "high", "timestamp": 1}, R.NON_NUMERIC, "'high'"),
        (
            prometheus,
            {"name": "up", "labels": "job=x", "value": "1", "timestamp": 1},
            R.MISSING_FIELD,
            "labels",
        ),
    ],
)
def test_a_bad_record_of_a_shape_gets_a_reason_in_its_terms(shape, obj, reason, needle):
    with pytest.raises(R.RecordError, match=needle) as err:
        _decode(obj, shape)
    assert err.value.reason == reason


def test_every_configurable_format_has_a_shape():
    from typing import get_args

    from adaptcast.streams.config import ServingConfig

    assert set(get_args(ServingConfig.model_fields["record_format"].annotation)) == set(SHAPES)


def test_a_telegraf_batch_is_each_of_its_metrics():
    """Telegraf's Kafka output with use_batch_format: one message, ``{"metrics": [...]}``."""
    metric = {"name": "mem", "tags": {"host": "a"}, "fields": {"used": 1.5}, "timestamp": 1_704_070_800}
    batch = {"metrics": [metric, {**metric, "tags": {"host": "b"}}, {"name": "mem", "fields": {}}]}
    a, b, bad = R.decode_message(json.dumps(batch).encode(), shape=telegraf, ts_unit="s")
    assert (a.series, b.series, a.values) == ("mem,host=a", "mem,host=b", {"used": 1.5})
    assert bad.reason == R.MISSING_FIELD and str(bad).startswith("record 3 of 3: telegraf record lacks")
    nested = b'{"metrics":[' * 500 + b"1" + b"]}" * 500  # a batch of batches is no metric, at any depth
    [err] = R.decode_message(nested, shape=telegraf)
    assert err.reason == R.MISSING_FIELD and "telegraf record lacks field 'name'" in str(err)


def _attrs(**kv):
    return [{"key": k.replace("_", "."), "value": {"stringValue": v}} for k, v in kv.items()]


T0_NS = 1_704_070_800_000_000_000  # 2024-01-01T01:00:00Z


def _otlp_request():
    """An ExportMetricsServiceRequest as the OpenTelemetry Collector's Kafka exporter writes it
    (encoding otlp_json): 64-bit integers as text, a zero count left out, enums as numbers."""
    point = {"timeUnixNano": str(T0_NS), "startTimeUnixNano": str(T0_NS - 10**9)}
    return {
        "resourceMetrics": [
            {
                "resource": {
                    "attributes": [
                        *_attrs(service_name="checkout", host_name="web-1"),
                        {"key": "telemetry.sdk.version", "value": {"stringValue": "1.30.0"}},
                        {"key": "process.pid", "value": {"intValue": "4242"}},
                    ]
                },
                "scopeMetrics": [
                    {
                        "scope": {"name": "otelcol/hostmetricsreceiver"},
                        "metrics": [
                            {
                                "name": "system.cpu.utilization",
                                "unit": "1",
                                "gauge": {
                                    "dataPoints": [
                                        {**point, "attributes": _attrs(state="user"), "asDouble": 0.25},
                                        {**point, "attributes": _attrs(state="idle"), "asDouble": 0.7},
                                    ]
                                },
                            },
                            {
                                "name": "http.server.requests",
                                "sum": {
                                    "aggregationTemporality": 1,
                                    "isMonotonic": True,
                                    "dataPoints": [{**point, "asInt": "17"}],
                                },
                            },
                            {
                                "name": "http.server.duration",
                                "histogram": {
                                    "aggregationTemporality": 1,
                                    "dataPoints": [
                                        {**point, "count": "4", "sum": 0.9, "bucketCounts": ["1", "3"]},
                                        {**point, "attributes": _attrs(route="/idle")},  # count 0
                                    ],
                                },
                            },
                            {"name": "queue.size", "gauge": {"dataPoints": [{**point, "flags": 1}]}},
                            {"name": "odd", "unit": "1"},
                        ],
                    }
                ],
            }
        ]
    }


def test_an_otlp_request_is_a_reading_per_data_point_named_as_prometheus_names_series():
    items = R.decode_message(json.dumps(_otlp_request()).encode(), shape=otlp, required=("value",))
    source = 'host.name="web-1",service.name="checkout"'  # sdk versions and pids do not name series
    good = {r.series: r.values["value"] for r in items if isinstance(r, R.Record)}
    assert good == {
        f'system.cpu.utilization{{{source},state="user"}}': 0.25,
        f'system.cpu.utilization{{{source},state="idle"}}': 0.7,
        f"http.server.requests{{{source}}}": 17.0,
        f"http.server.duration_count{{{source}}}": 4.0,
        f"http.server.duration_sum{{{source}}}": 0.9,
        'http.server.duration_count{host.name="web-1",route="/idle",service.name="checkout"}': 0.0,
    }
    assert {r.ts_ms for r in items if isinstance(r, R.Record)} == {T0_NS // 10**6}
    bad = [r for r in items if isinstance(r, R.RecordError)]
    assert [r.reason for r in bad] == [R.MISSING_VALUE, R.MISSING_FIELD]
    assert f"record 7 of 8: otlp data point of queue.size{{{source}}} holds no recorded value" in str(bad[0])
    assert "record 8 of 8: otlp metric 'odd' holds none of gauge, sum, histogram" in str(bad[1])


def test_otlp_quantiles_asked_for_are_series_of_their_own_in_json_and_protobuf_alike():
    """serving.otlp_quantiles: a histogram's quantiles interpolated in its buckets (closed by its
    min and max where it has them), an exponential histogram's likewise, a summary's own; none where
    nothing was counted; buckets that do not add up are a dead letter beside the count and sum."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    point = {"timeUnixNano": str(T0_NS)}
    buckets = {"explicitBounds": [0.1, 0.5, 1.0], "count": "40", "sum": 10.0}
    metrics = [
        {
            "name": "a",
            "histogram": {"dataPoints": [{**point, **buckets, "bucketCounts": ["10", "20", "10", "0"]}]},
        },
        {
            "name": "b",
            "histogram": {
                "dataPoints": [
                    {**point, **buckets, "bucketCounts": ["10", "20", "9", "1"], "min": 0.05, "max": 3.0}
                ]
            },
        },
        {
            "name": "idle",
            "histogram": {"dataPoints": [{**point, "explicitBounds": [0.1], "bucketCounts": ["0", "0"]}]},
        },
        {
            "name": "odd",
            "histogram": {
                "dataPoints": [{**point, "count": "4", "explicitBounds": [0.1], "bucketCounts": ["4"]}]
            },
        },
        {
            "name": "exp",
            "exponentialHistogram": {
                "dataPoints": [
                    {**point, "count": "4", "scale": 0, "positive": {"offset": 0, "bucketCounts": ["2", "2"]}}
                ]
            },
        },
        {
            "name": "rpc",
            "summary": {
                "dataPoints": [
                    {
                        **point,
                        "count": "4",
                        "sum": 2.0,
                        "quantileValues": [{"quantile": 0.5, "value": 0.4}, {"quantile": 0.9, "value": 1.9}],
                    }
                ]
            },
        },
    ]
    request = {"resourceMetrics": [{"scopeMetrics": [{"metrics": metrics}]}]}
    shape = shape_for("otlp", otlp_quantiles=[0.5, 0.99])

    def read(raw):
        return [
            (r.series, r.values["value"]) if isinstance(r, R.Record) else (r.reason, str(r))
            for r in R.decode_message(raw, shape=shape)
        ]

    got = read(json.dumps(request).encode())
    assert got == read(ParseDict(request, ExportMetricsServiceRequest()).SerializeToString())
    quantiles = {s: v for s, v in got if "quantile=" in s}
    assert quantiles == pytest.approx(
        {
            'a{quantile="0.5"}': 0.3,  # rank 20 of 40: half-way through (0.1, 0.5]
            'a{quantile="0.99"}': 0.98,
            'b{quantile="0.5"}': 0.3,
            'b{quantile="0.99"}': 2.2,  # the last bucket closed by max 3.0: (1, 3], 0.6 of the way
            'exp{quantile="0.5"}': 2.0,  # base 2: (1, 2] and (2, 4], two each
            'exp{quantile="0.99"}': 3.96,
            'rpc{quantile="0.5"}': 0.4,  # a summary's own; it has no 0.99
        }
    )
    [fault] = [(reason, why) for reason, why in got if reason == R.MISSING_FIELD]
    assert (
        "otlp histogram point of 'odd': its buckets cannot be read (1 bucket counts for 1 bounds" in fault[1]
    )
    assert ("odd_count", 4.0) in got and ("idle_count", 0.0) in got
    assert [s for s, _ in got if s.startswith("idle")] == ["idle_count"]  # nothing counted: no quantile
    plain = [
        r.series
        for r in R.decode_message(json.dumps(request).encode(), shape=otlp)
        if isinstance(r, R.Record)
    ]
    assert plain and not any("quantile" in s for s in plain)  # not asked for: none


def test_otlp_times_are_nanoseconds_whatever_ts_unit_says():
    from adaptcast.streams.config import ServingConfig

    serving = ServingConfig(record_format="otlp", ts_unit="s")
    [rec, *_] = R.decode_message(
        json.dumps(_otlp_request()).encode(), shape=otlp, ts_unit=serving.record_ts_unit
    )
    assert R.format_timestamp(rec.ts_ms) == "2024-01-01T01:00:00Z"
    assert ServingConfig(record_format="telegraf", ts_unit="s").record_ts_unit == "s"


@pytest.mark.parametrize(
    ("request_", "reason", "needle"),
    [
        ({"resourceMetrics": {"a": 1}}, R.MISSING_FIELD, "resourceMetrics must be a list of objects"),
        ({"resourceLogs": []}, R.MISSING_FIELD, "otlp record lacks field 'resourceMetrics'"),
        (
            {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {
                                "metrics": [
                                    {
                                        "name": "g",
                                        "gauge": {"dataPoints": [{"timeUnixNano": "soon", "asDouble": 1}]},
                                    }
                                ]
                            }
                        ]
                    }
                ]
            },
            R.BAD_TIMESTAMP,
            "timeUnixNano 'soon'",
        ),
        (
            {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {
                                "metrics": [
                                    {
                                        "name": "g",
                                        "gauge": {"dataPoints": [{"timeUnixNano": "1", "asDouble": "NaN"}]},
                                    }
                                ]
                            }
                        ]
                    }
                ]
            },
            R.NON_FINITE,
            "not finite",
        ),
        (
            {
                "resourceMetrics": [
                    {
                        "scopeMetrics": [
                            {"metrics": [{"name": "g", "gauge": {"dataPoints": [{"asDouble": 1.0}]}}]}
                        ]
                    }
                ]
            },
            R.MISSING_FIELD,
            "lacks timeUnixNano",
        ),
    ],
)
def test_a_bad_otlp_request_or_point_gets_a_reason_in_its_terms(request_, reason, needle):
    [err] = R.decode_message(json.dumps(request_).encode(), shape=otlp)
    assert isinstance(err, R.RecordError) and err.reason == reason
    assert needle in str(err)


LINES = b"""# Telegraf's Kafka output, data_format = "influx", use_batch_format = true
cpu,host=web-1,cpu=cpu0 usage_idle=91.5,usage_user=3i,state="ok",throttled=false 1704070800000000000

cpu,host=web-1,cpu=cpu1 usage_idle=80,usage_user=18u 1704070800000000000
disk\\ io,host=web\\ 2,path=/var\\,log reads=7i 1704070800000000000
mem,host=web-1 used_percent=41.5
cpu,host=web-1 usage_idle="high" 1704070800000000000
cpu,host= usage_idle=1 1704070800000000000
"""


def test_line_protocol_is_a_reading_per_line_named_as_telegrafs_json_names_the_metric():
    items = R.decode_message(LINES, shape=influx, ts_unit="ns")
    good = [r for r in items if isinstance(r, R.Record)]
    assert [(r.series, r.values) for r in good] == [
        ("cpu,cpu=cpu0,host=web-1", {"usage_idle": 91.5, "usage_user": 3.0}),  # text and booleans left out
        ("cpu,cpu=cpu1,host=web-1", {"usage_idle": 80.0, "usage_user": 18.0}),
        ("disk io,host=web 2,path=/var,log", {"reads": 7.0}),  # escapes read
    ]
    assert {R.format_timestamp(r.ts_ms) for r in good} == {"2024-01-01T01:00:00Z"}
    json_metric = {
        "name": "cpu",
        "tags": {"host": "web-1", "cpu": "cpu0"},
        "fields": {"usage_idle": 1},
        "timestamp": 1,
    }
    assert _decode(json_metric, telegraf).series == good[0].series  # switching Telegraf's format keeps series
    bad = [r for r in items if isinstance(r, R.RecordError)]
    assert [r.reason for r in bad] == [R.MISSING_FIELD, R.MISSING_FIELD, R.UNDECODABLE]
    assert str(bad[0]).startswith(
        "record 4 of 6: record lacks field 'ts'"
    )  # comments and blanks are no records
    assert str(bad[1]).startswith(
        "record 5 of 6: values must be a non-empty object"
    )  # its only field is text
    assert str(bad[2]).startswith("record 6 of 6: not InfluxDB line protocol (")
    [stamped] = R.decode_message(b"mem used=1", shape=influx, message_ts_ms=1_704_070_800_000)
    assert R.format_timestamp(stamped.ts_ms) == "2024-01-01T01:00:00Z"  # serving.ts_from_message
    [binary] = R.decode_message(b"mem,host=\xff used=1 1", shape=influx)
    assert binary.reason == R.UNDECODABLE and "not UTF-8" in str(binary)


def test_line_protocol_times_are_nanoseconds_unless_ts_unit_is_set():
    from adaptcast.streams.config import ServingConfig

    assert ServingConfig(record_format="influx").ts_unit == "ns"
    assert ServingConfig(record_format="influx", ts_unit="s").ts_unit == "s"  # a writer with precision=s
    [rec] = R.decode_message(b"mem used=1 1704070800", shape=influx, ts_unit="s")
    assert R.format_timestamp(rec.ts_ms) == "2024-01-01T01:00:00Z"


def test_a_train_from_the_topic_reads_batches_as_the_worker_does():
    """``adaptcast train --from-topic`` reads the topic through the same decoder: every line of a
    line-protocol batch and every point of an OTLP request is a row of its series."""
    from adaptcast.streams.topic_history import series_histories

    hour_ns = 3_600 * 10**9
    batches = [
        "\n".join(
            f"mem,host={h} used={10 * k + t}.0 {T0_NS + t * hour_ns}" for k, h in enumerate("ab")
        ).encode()
        for t in range(6)
    ]
    got = series_histories(batches, ["used"], ts_unit="ns", shape=influx)
    assert sorted(got) == ["mem,host=a", "mem,host=b"] and got["mem,host=b"][:, 0].tolist() == [
        10.0 + t for t in range(6)
    ]
    requests = []
    for t in range(6):
        request = _otlp_request()
        for metric in request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]:
            for point in next(iter(v for v in metric.values() if isinstance(v, dict)), {}).get(
                "dataPoints", []
            ):
                point["timeUnixNano"] = str(T0_NS + t * hour_ns)
        requests.append(json.dumps(request).encode())
    got = series_histories(requests, ["value"], shape=otlp)
    assert len(got) == 6 and all(len(rows) == 6 for rows in got.values())  # the six readable series


def test_an_otlp_request_in_protobuf_reads_as_the_same_request_in_json():
    """The Collector's Kafka exporter writes protobuf unless told otherwise (encoding otlp_proto)."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = _otlp_request()
    proto = ParseDict(request, ExportMetricsServiceRequest()).SerializeToString()

    def read(raw):
        return [
            (r.series, r.ts_ms, r.values) if isinstance(r, R.Record) else (r.reason, str(r))
            for r in R.decode_message(raw, shape=otlp)
        ]

    assert read(proto) == read(json.dumps(request).encode()) and len(read(proto)) == 8
    point = {"timeUnixNano": str(T0_NS)}
    kinds = [  # each kind of metric and attribute value the protobuf walker reads on its own
        {"name": "rpc.latency", "summary": {"dataPoints": [{**point, "count": "2", "sum": 3.5}]}},
        {"name": "rpc.size", "exponentialHistogram": {"dataPoints": [{**point, "count": "5", "sum": 1.25}]}},
        {"name": "rpc.size2", "exponentialHistogram": {"dataPoints": [{**point, "count": "5"}]}},  # no sum
        {
            "name": "tagged",
            "gauge": {
                "dataPoints": [
                    {
                        **point,
                        "asInt": "9007199254740993",
                        "attributes": [
                            {"key": "ok", "value": {"boolValue": True}},
                            {"key": "n", "value": {"intValue": "-3"}},
                            {"key": "x", "value": {"doubleValue": 0.5}},
                            {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                            {"key": "empty", "value": {}},
                        ],
                    },
                    {**point, "asDouble": "NaN"},
                    {"asDouble": 1.0},  # no time
                    {**point},  # no value
                ]
            },
        },
        {"gauge": {"dataPoints": [{**point, "asDouble": 1.0}]}},  # no name
    ]
    request["resourceMetrics"][0]["scopeMetrics"][0]["metrics"] = kinds
    proto = ParseDict(request, ExportMetricsServiceRequest()).SerializeToString()
    assert read(proto) == read(json.dumps(request).encode()) and len(read(proto)) == 10
    for raw in (b"\x0a\x03abc", b"\xff\xfe\xfd", b"not json"):  # a truncated message, bytes, text
        [err] = R.decode_message(raw, shape=otlp)
        assert err.reason == R.UNDECODABLE and "neither an OTLP metrics request" in str(err)
