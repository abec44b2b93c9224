"""Fuzzed input: malformed records never crash the decoder or the worker; each gets its reason."""

from __future__ import annotations

import base64
import json
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from malformed import bad_records, megabyte_records, message_keys

from adaptcast.streams import records as R
from adaptcast.streams.formats import SHAPES, influx, shape_for

SERIES = [f"s{i}" for i in range(4)]
LOOKBACK, HORIZON, HOUR = 6, 3, 3_600_000
DECODE_AT_LATER = {R.LATE}  # found by the loop (the series' order), not by the decoder


@settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(bad_records(SERIES))
def test_decoder_rejects_each_malformed_record_with_its_reason(case):
    raw, reason = case
    items = R.decode_message(raw, required=("y",), now_ms=int(time.time() * 1000))
    if reason in DECODE_AT_LATER:
        assert all(isinstance(item, R.Record) for item in items)
        return
    assert items, raw[:200]
    for item in items:  # an array of bad records: each has the reason
        assert isinstance(item, R.RecordError), (raw[:200], item)
        assert item.reason == reason, (raw[:200], str(item))


LINE = b'cpu,host=web\\ 1,cpu=cpu0 usage_idle=91.5,usage_user=3i,state="ok",up=true 1704070800000000000'


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(
        st.binary(max_size=200),
        st.lists(st.sampled_from([LINE, *(LINE[:k] for k in range(0, len(LINE), 7))]), max_size=4).map(
            b"\n".join
        ),
        st.tuples(st.integers(0, len(LINE)), st.binary(max_size=6)).map(
            lambda p: LINE[: p[0]] + p[1] + LINE[p[0] :]
        ),
    )
)
def test_line_protocol_never_crashes_the_decoder(raw):
    """InfluxDB line protocol is parsed in C (line-protocol-parser): whatever the bytes, each line
    is a record or a reason, and nothing raises out of the decoder."""
    for item in R.decode_message(raw, required=("usage_idle",), now_ms=int(time.time() * 1000), shape=influx):
        assert isinstance(item, R.Record) or item.reason in R.REASONS


JSON_VALUES = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        st.text(max_size=6),
        st.sampled_from(["1704067200000000000", "²", "NaN", "-1", "1e400", "Infinity"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
OTLP_REQUEST = {
    "resourceMetrics": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
            "scopeMetrics": [
                {
                    "metrics": [
                        {
                            "name": "g",
                            "gauge": {
                                "dataPoints": [
                                    {
                                        "timeUnixNano": "1704067200000000000",
                                        "asDouble": 1.5,
                                        "attributes": [{"key": "h", "value": {"stringValue": "a"}}],
                                    }
                                ]
                            },
                        },
                        {
                            "name": "h",
                            "histogram": {
                                "dataPoints": [
                                    {
                                        "timeUnixNano": "1704067200000000000",
                                        "count": "3",
                                        "sum": 2.5,
                                        "flags": 0,
                                        "explicitBounds": [0.1, 1.0],
                                        "bucketCounts": ["1", "1", "1"],
                                        "min": 0.05,
                                        "max": 2.0,
                                    }
                                ]
                            },
                        },
                        {
                            "name": "e",
                            "exponentialHistogram": {
                                "dataPoints": [
                                    {
                                        "timeUnixNano": "1704067200000000000",
                                        "count": "3",
                                        "scale": 1,
                                        "zeroCount": "1",
                                        "positive": {"offset": -1, "bucketCounts": ["1", "1"]},
                                    }
                                ]
                            },
                        },
                        {
                            "name": "s",
                            "summary": {
                                "dataPoints": [
                                    {
                                        "timeUnixNano": "1704067200000000000",
                                        "count": "3",
                                        "sum": 2.5,
                                        "quantileValues": [{"quantile": 0.5, "value": 0.7}],
                                    }
                                ]
                            },
                        },
                    ]
                }
            ],
        }
    ]
}
OTLP = shape_for("otlp", otlp_quantiles=(0.5, 0.99))
TELEGRAF_BATCH = {
    "metrics": [{"name": "cpu", "tags": {"host": "a"}, "fields": {"value": 1.5}, "timestamp": 1704067200}]
}


def _nodes(obj, path=()):
    """Every path into a JSON value, the root included."""
    yield path
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, child in items:
        yield from _nodes(child, (*path, key))


def _replaced(obj, path, value):
    if not path:
        return value
    copy = dict(obj) if isinstance(obj, dict) else list(obj)
    copy[path[0]] = _replaced(obj[path[0]], path[1:], value)
    return copy


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from([(OTLP, OTLP_REQUEST), (SHAPES["telegraf"], TELEGRAF_BATCH)]), st.data())
def test_a_batch_with_any_node_of_the_wrong_kind_never_crashes_the_decoder(case, data):
    """An OTLP request (its histograms' and summaries' quantiles asked for) or a Telegraf batch with
    one to three of its nodes replaced by any JSON value: each record is read or rejected with a
    reason; nothing raises out of the decoder (an OTLP resource that was a list once did, and would
    have stopped the worker at every restart)."""
    shape, obj = case
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(list(_nodes(obj))))
        obj = _replaced(obj, path, data.draw(JSON_VALUES))
    raw = json.dumps(obj).encode()
    for item in R.decode_message(raw, required=("value",), now_ms=int(time.time() * 1000), shape=shape):
        assert isinstance(item, R.Record) or item.reason in R.REASONS


@settings(max_examples=1_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.integers(0, 400), st.binary(max_size=8), st.binary(max_size=60))
def test_any_bytes_as_an_otlp_protobuf_request_never_crash_the_decoder(at, splice, noise):
    """OTLP in protobuf (the Collector's default encoding): a valid request with bytes spliced in,
    or noise alone, is read or rejected with a reason; and where the bytes are a request, it reads
    as its JSON encoding does (the protobuf is walked as objects, not through the JSON mapping)."""
    from google.protobuf.json_format import MessageToJson, ParseDict
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    def read(raw):
        items = R.decode_message(raw, required=("value",), now_ms=now_ms, shape=OTLP)
        return [
            (r.series, r.ts_ms, r.values) if isinstance(r, R.Record) else (r.reason, str(r)) for r in items
        ]

    now_ms = int(time.time() * 1000)
    valid = ParseDict(OTLP_REQUEST, ExportMetricsServiceRequest()).SerializeToString()
    for raw in (valid[:at] + splice + valid[at:], noise):
        got = read(raw)
        assert all(len(item) == 3 or item[0] in R.REASONS for item in got)
        try:
            request = ExportMetricsServiceRequest.FromString(raw)
        except Exception:
            continue
        if request.resource_metrics:
            assert got == read(MessageToJson(request).encode())


def collect_bad(n: int) -> list[tuple[bytes | None, bytes, str]]:
    """``n`` generated malformed records as ``(message key, value, reason)``, plus the 1 MB ones."""
    out: list[tuple[bytes | None, bytes, str]] = []

    @settings(
        max_examples=n,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(message_keys, bad_records(SERIES))
    def draw(key, case):
        out.append((key, *case))

    draw()
    return out + [(b"", raw, reason) for raw, reason in megabyte_records(SERIES[0])]


def good_records(steps: int) -> list[dict]:
    """Series i at step t is 1000*i + t (a naive forecast repeats it), some with extra keys (ignored)."""
    return [
        {
            "series": s,
            "ts": t * HOUR if t % 2 else R.format_timestamp(t * HOUR),
            "values": {"y": float(1000 * i + t), **({"extra": 1.0} if t % 3 == 0 else {})},
            **({"source": "fuzz"} if t % 5 == 0 else {}),
        }
        for t in range(steps)
        for i, s in enumerate(SERIES)
    ]


@pytest.mark.kafka
@pytest.mark.slow
def test_ten_thousand_malformed_records_through_the_broker(kafka_bootstrap, tmp_path):
    from test_service_kafka import (
        _config,
        _naive_checkpoint,
        _predictions,
        _produce,
        _run_until,
        _topics,
    )
    from topic_reader import read_topic

    from adaptcast.streams.service import DEAD_LETTER_MAX_ORIGINAL, Worker

    started = time.monotonic()
    bad = collect_bad(10_000)
    generated_s = time.monotonic() - started
    steps = 60
    good = good_records(steps)
    # the first round of every series goes first, so a record from the far past is late, never first
    stream: list[tuple[bytes | None, bytes, str | None]] = [
        (r["series"].encode(), json.dumps(r).encode(), None) for r in good[: len(SERIES)]
    ]
    rest = good[len(SERIES) :]
    per_good = -(-len(bad) // len(rest))
    for j, r in enumerate(rest):
        stream.append((None if j % 7 == 0 else b"", json.dumps(r).encode(), None))
        stream.extend(bad[j * per_good : (j + 1) * per_good])
    names = _topics(kafka_bootstrap, partitions=1)  # one partition: offset = position in the stream
    _produce(kafka_bootstrap, names["input"], [(k, v) for k, v, _ in stream], raw=True)
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"))
    served = time.monotonic()
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: worker.counts["records"] >= len(stream), timeout=240)
    finally:
        worker.close()
    serve_s = time.monotonic() - served

    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], len(bad), timeout=120)]
    got = {d["offset"]: d for d in dead}
    expected = {off: reason for off, (_, _, reason) in enumerate(stream) if reason is not None}
    assert len(dead) == len(got) == len(expected) == len(bad)
    wrong = {
        off: (got[off]["error"]["code"], why)
        for off, why in expected.items()
        if got[off]["error"]["code"] != why
    }
    assert not wrong, list(wrong.items())[:5]
    for off, d in got.items():
        original = base64.b64decode(d["original"])
        assert original == stream[off][1][:DEAD_LETTER_MAX_ORIGINAL]

    n_series = len(SERIES)
    keys = {(s, R.format_timestamp(t * HOUR)) for s in SERIES for t in range(LOOKBACK - 1, steps)}
    preds, counts = _predictions(kafka_bootstrap, names["output"], len(keys))
    assert set(preds) == keys and max(counts.values()) == 1
    for (series, issued), p in preds.items():
        t = R.parse_timestamp(issued) // HOUR
        assert p["yhat_base"]["y"] == pytest.approx([1000 * SERIES.index(series) + t] * HORIZON, abs=1e-2)

    text = worker.metrics.render().decode()
    metric = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("adaptcast_")
    }
    rejected = sum(v for k, v in metric.items() if k.startswith("adaptcast_records_rejected_total{"))
    assert metric["adaptcast_records_consumed_total"] == len(stream)
    assert rejected == len(dead)
    assert metric["adaptcast_predictions_total"] == len(preds) == n_series * (steps - LOOKBACK + 1)
    per_reason = Counter(expected.values())
    for reason, n in per_reason.items():
        assert metric[f'adaptcast_records_rejected_total{{reason="{reason}"}}'] == n
    print(
        f"\nfuzz: {len(bad)} malformed + {len(good)} good records, {len(per_reason)} reasons; "
        f"generated in {generated_s:.1f} s, served in {serve_s:.1f} s; per reason {dict(per_reason)}"
    )
