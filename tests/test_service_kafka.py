"""The live service against a real broker: delivery, restarts, rebalancing, dead letters and hot swaps."""

from __future__ import annotations

import base64
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from topic_reader import read_topic

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.forecast.data import SeriesFrame
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config
from adaptcast.streams.formats import SHAPES
from adaptcast.streams.records import format_timestamp, parse_timestamp
from adaptcast.streams.schedule import MON_FRI, Schedule
from adaptcast.streams.service import Worker
from adaptcast.streams.zones import to_wall

pytestmark = pytest.mark.kafka

LOOKBACK, HORIZON = 6, 3
HOUR = 3_600_000


def _topics(bootstrap: str, partitions: int = 4) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    names = {"input": f"in-{tag}", "output": f"out-{tag}", "dlq": f"dlq-{tag}"}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics(
        [
            NewTopic(names["input"], partitions, 1),
            NewTopic(names["output"], 2, 1),
            NewTopic(names["dlq"], 1, 1),
        ]
    )
    admin.close()
    names["group"] = f"g-{tag}"
    return names


def _naive_checkpoint(path: Path, target: str | None = None) -> str:
    """A fitted naive model saved at ``path`` (forecasting ``target``, when named, instead of ``y``)."""
    m = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    X, Y = sliding_windows(np.arange(50.0), LOOKBACK, HORIZON)
    m.fit(X, Y)
    if target is not None:
        m.schema = {"targets": [target], "features": [], "channels": [target]}
    m.save(path)
    return str(path)


def _serve_all(cfg: object, n_records: int) -> Worker:
    """Run a worker on ``cfg`` until it has read ``n_records`` records, then close it."""
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: worker.counts["records"] >= n_records, timeout=30)
    finally:
        worker.close()
    return worker


def _config(
    bootstrap: str, names: dict[str, str], state_dir: Path, checkpoint: str | None = None, **sections
) -> object:
    over = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "input_topic": names["input"],
            "output_topic": names["output"],
            "dead_letter_topic": names["dlq"],
            "group": names["group"],
            "poll_timeout_ms": 100,
        },
        "model": {"kind": "naive", "lookback": LOOKBACK, "horizon": HORIZON, "checkpoint": checkpoint},
        "adaptation": {"policy": "never", "min_train_rows": LOOKBACK},
        "state": {"dir": str(state_dir), "snapshot_interval_s": 0.5},
        "metrics": {"enabled": False},
    }
    for key, value in sections.items():
        over.setdefault(key, {}).update(value)
    return load_config(overrides=over, environ={})


def _naive_config(
    bootstrap: str, names: dict[str, str], tmp_path: Path, target: str | None = None, **sections
) -> object:
    """:func:`_config` serving a naive checkpoint from ``tmp_path`` (forecasting ``target``, when
    named, instead of ``y``), with state there too."""
    if target is not None:
        sections["model"] = {"target": target, **sections.get("model", {})}
    return _config(
        bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m", target), **sections
    )


def _records(n_series: int, steps: int, start_step: int = 0) -> list[dict]:
    """Series i at step t has value 1000*i + t: a naive forecast's yhat is the value at issue time."""
    return [
        {"series": f"s{i}", "ts": format_timestamp(t * HOUR), "values": {"y": float(1000 * i + t)}}
        for t in range(start_step, start_step + steps)
        for i in range(n_series)
    ]


def _produce(
    bootstrap: str, topic: str, records: list, raw: bool = False, compression: str | None = None
) -> None:
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type=compression)
    for rec in records:
        if raw:
            key, value = rec
        else:
            key, value = rec["series"].encode(), json.dumps(rec).encode()
        prod.send(topic, key=key, value=value)
    prod.flush()
    prod.close()


def _group_progress(bootstrap: str, group: str, topic: str) -> dict[int, tuple[int, int]]:
    """Per partition of ``topic``: (committed offset of ``group`` or -1, end offset)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        committed = admin.list_group_offsets(group).get(group, {})
    finally:
        admin.close()
    cons = KafkaConsumer(bootstrap_servers=bootstrap)
    parts = [TopicPartition(topic, p) for p in cons.partitions_for_topic(topic)]
    ends = cons.end_offsets(parts)
    cons.close()
    return {tp.partition: (committed[tp].offset if tp in committed else -1, ends[tp]) for tp in parts}


def _group_done(bootstrap: str, group: str, topic: str) -> bool:
    """Whether ``group`` has committed every record of ``topic``; not yet while the broker answers
    with a retriable error (a restarted broker's group coordinator loads its offsets first)."""
    try:
        progress = _group_progress(bootstrap, group, topic)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        return False
    return all(end == 0 or done >= end for done, end in progress.values())


def _wait_group_done(bootstrap: str, group: str, topic: str, timeout: float, why=lambda: "") -> None:
    """Until ``group`` has committed every record of ``topic``; on timeout, say how far it got."""
    deadline = time.monotonic() + timeout
    while not _group_done(bootstrap, group, topic):
        assert time.monotonic() < deadline, (
            f"group {group} not done after {timeout} s: (committed, end) per partition "
            f"{_group_progress(bootstrap, group, topic)}\n{why()}"
        )
        time.sleep(0.3)


def _committed_total(bootstrap: str, group: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return sum(om.offset for om in admin.list_group_offsets(group).get(group, {}).values())
    finally:
        admin.close()


def _run_until(worker: Worker, done, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        worker.step()
        if done():
            return
    raise AssertionError("worker did not finish in time")


def _predictions(bootstrap: str, topic: str, expect: int) -> tuple[dict[tuple[str, str], dict], Counter]:
    msgs = read_topic(bootstrap, topic, expect)
    preds = [json.loads(m.value) for m in msgs]
    counts = Counter((p["series"], p["issued_at"]) for p in preds)
    return {(p["series"], p["issued_at"]): p for p in preds}, counts


def _expected_keys(n_series: int, steps: int) -> set[tuple[str, str]]:
    """Every record whose series already has LOOKBACK rows (counting itself) yields one forecast."""
    return {
        (f"s{i}", format_timestamp(t * HOUR)) for i in range(n_series) for t in range(LOOKBACK - 1, steps)
    }


def test_end_to_end_every_record_predicted_once_and_correct(kafka_bootstrap, tmp_path):
    names = _topics(kafka_bootstrap)
    n_series, steps = 5, 40
    _produce(kafka_bootstrap, names["input"], _records(n_series, steps))
    worker = Worker(_config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m")))
    assert gc.get_freeze_count() > 0  # the start-up heap is out of the collector's way while serving
    try:
        _run_until(worker, lambda: worker.counts["records"] >= n_series * steps)
    finally:
        worker.close()
    assert gc.get_freeze_count() == 0  # and back for the interpreter's shutdown
    expected = _expected_keys(n_series, steps)
    preds, counts = _predictions(kafka_bootstrap, names["output"], len(expected))
    assert set(preds) == expected
    assert max(counts.values()) == 1  # one worker, no restart: no duplicates at all
    for (series, _issued), p in preds.items():
        i, t = int(series[1:]), int(p["issued_at"][11:13]) + 24 * (int(p["issued_at"][8:10]) - 1)
        assert p["yhat"]["y"] == pytest.approx([1000 * i + t] * HORIZON, abs=1e-2)
        assert len(p["ts"]) == HORIZON and p["model"] == "naive"
    assert _group_done(kafka_bootstrap, names["group"], names["input"])


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_input_from_any_producer_is_served(kafka_bootstrap, tmp_path, codec):
    """Producers compress batches (Java's compression.type, librdkafka's compression.codec): the
    worker must read every codec Kafka has, not only the one kafka-python needs no library for."""
    names = _topics(kafka_bootstrap, partitions=1)
    n_series, steps = 3, 20
    _produce(kafka_bootstrap, names["input"], _records(n_series, steps), compression=codec)
    _serve_all(
        _config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m")),
        n_series * steps,
    )
    expected = _expected_keys(n_series, steps)
    preds, _ = _predictions(kafka_bootstrap, names["output"], len(expected))
    assert set(preds) == expected


@pytest.mark.parametrize("unit", ["s", "ms"])
def test_epoch_seconds_from_a_producer(kafka_bootstrap, tmp_path, caplog, unit):
    """A producer stamping epoch seconds: with serving.ts_unit s the forecasts are on the right hours;
    left at ms, the worker says once what is wrong and how to fix it."""
    names = _topics(kafka_bootstrap, partitions=1)
    start = (int(time.time()) // 3600 - 40) * 3600
    steps = 12
    records = [{"series": "s0", "ts": start + t * 3600, "values": {"y": float(t)}} for t in range(steps)]
    _produce(kafka_bootstrap, names["input"], records)
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, serving={"ts_unit": unit})
    worker = Worker(cfg)
    with caplog.at_level("WARNING", logger="adaptcast.service"):
        try:
            _run_until(worker, lambda: worker.counts["records"] >= steps, timeout=30)
        finally:
            worker.close()
    preds, _ = _predictions(kafka_bootstrap, names["output"], steps - LOOKBACK + 1)
    newest = max(issued for _, issued in preds)
    warned = [r for r in caplog.records if "set serving.ts_unit" in r.getMessage()]
    if unit == "s":
        assert newest == format_timestamp((start + (steps - 1) * 3600) * 1000) and not warned
    else:
        assert newest.startswith("1970-01-") and len(warned) == 1
        assert "ts read as epoch ms is 1970-01-" in warned[0].getMessage()


def test_silence_is_counted_per_partition(kafka_bootstrap, tmp_path):
    """A series that stopped is forgotten once its partition moves on; one whose partition is simply
    behind another (older timestamps) is kept."""
    names = _topics(kafka_bootstrap, partitions=2)
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    feed = [(0, "fast", t) for t in range(300)] + [(0, "gone", t) for t in range(20)]
    feed += [(1, "behind", t) for t in range(20)]
    for partition, series, t in feed:
        rec = {"series": series, "ts": format_timestamp(t * HOUR), "values": {"y": float(t)}}
        prod.send(names["input"], key=series.encode(), value=json.dumps(rec).encode(), partition=partition)
    prod.flush()
    prod.close()
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, grid={"forget_after": 10})
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: worker.counts["records"] >= len(feed), timeout=30)
        worker.loop.forget_idle()
        assert "gone" not in worker.loop.states and {"fast", "behind"} <= set(worker.loop.states)
        worker.snapshot()
        assert "gone" not in worker.series_tp
    finally:
        worker.close()


@pytest.mark.parametrize("isolation", ["read_committed", "read_uncommitted"])
def test_records_of_an_aborted_transaction_are_not_forecast(kafka_bootstrap, tmp_path, isolation):
    """Exactly-once pipelines (Flink, Kafka Streams) write in transactions and abort some: by default
    the worker reads only committed records, as their consumers must."""
    names = _topics(kafka_bootstrap, partitions=1)
    prod = KafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"tx-{uuid.uuid4().hex[:8]}", acks="all"
    )
    prod.init_transactions()
    steps = 12
    for t in range(steps):
        good = {"series": "s0", "ts": format_timestamp(t * HOUR), "values": {"y": float(t)}}
        prod.begin_transaction()
        prod.send(names["input"], key=b"s0", value=json.dumps(good).encode())
        prod.commit_transaction()
        if t % 3 == 1:  # a write the pipeline took back: never part of the data
            bad = {"series": "aborted", "ts": format_timestamp(t * HOUR), "values": {"y": 1e6}}
            prod.begin_transaction()
            prod.send(names["input"], key=b"aborted", value=json.dumps(bad).encode())
            prod.flush()  # written to the log, then aborted
            prod.abort_transaction()
    prod.close()
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, kafka={"isolation_level": isolation})
    aborted = len(range(1, steps, 3))
    worker = Worker(cfg)
    try:  # transaction markers hold offsets too: count records, not offsets
        expect = steps if isolation == "read_committed" else steps + aborted
        _run_until(worker, lambda: worker.counts["records"] >= expect, timeout=30)
        for _ in range(5):  # nothing further arrives
            worker.step()
    finally:
        worker.close()
    assert worker.counts["records"] == expect
    read = set(worker.loop.states)
    assert read == ({"s0"} if isolation == "read_committed" else {"s0", "aborted"})


def test_telegraf_metrics_are_served_per_tag_set(kafka_bootstrap, tmp_path):
    """Telegraf's Kafka output (data_format json, timestamps in seconds) straight into the worker."""
    names = _topics(kafka_bootstrap, partitions=1)
    start = (int(time.time()) // 3600 - 40) * 3600
    steps = 10
    metrics = [
        {
            "name": "mem",
            "tags": {"host": host},
            "fields": {"used_percent": float(t + k), "note": "ok"},
            "timestamp": start + t * 3600,
        }
        for t in range(steps)
        for k, host in enumerate(("a", "b"))
    ]
    _produce(
        kafka_bootstrap,
        names["input"],
        [(m["tags"]["host"].encode(), json.dumps(m).encode()) for m in metrics],
        raw=True,
    )
    serving = {"record_format": "telegraf", "ts_unit": "s"}
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, "used_percent", serving=serving)
    _serve_all(cfg, len(metrics))
    preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
    assert {s for s, _ in preds} == {"mem,host=a", "mem,host=b"}
    newest = format_timestamp((start + (steps - 1) * 3600) * 1000)
    assert preds[("mem,host=b", newest)]["yhat"]["used_percent"][0] == pytest.approx(steps)


def test_otlp_requests_of_the_opentelemetry_collector_are_served_per_data_point(kafka_bootstrap, tmp_path):
    """The OpenTelemetry Collector's Kafka exporter (encoding otlp_proto or otlp_json) writes one
    request per message, each holding many series' data points: with record_format otlp every point is a
    reading; the others are served when some are bad, and the message is dead-lettered once with
    each bad point's reason, not copied once per point (a request can hold thousands)."""
    names = _topics(kafka_bootstrap, partitions=1)
    start_ns = (int(time.time()) // 3600 - 40) * 3600 * 10**9
    steps = 10

    def request(t: int) -> dict:
        when = str(start_ns + t * 3600 * 10**9)
        points = [
            {
                "timeUnixNano": when,
                "attributes": [{"key": "host", "value": {"stringValue": h}}],
                "asDouble": 100.0 * k + t,
            }
            for k, h in enumerate(("a", "b"))
        ]
        stale = {"timeUnixNano": when, "flags": 1}  # series gone stale: no recorded value
        return {
            "resourceMetrics": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
                    "scopeMetrics": [
                        {"metrics": [{"name": "load", "gauge": {"dataPoints": [*points, stale, stale]}}]}
                    ],
                }
            ]
        }

    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    def encoded(t: int) -> bytes:  # otlp_json and otlp_proto (the exporter's default), alternately
        if t % 2:
            return ParseDict(request(t), ExportMetricsServiceRequest()).SerializeToString()
        return json.dumps(request(t)).encode()

    _produce(kafka_bootstrap, names["input"], [(b"api", encoded(t)) for t in range(steps)], raw=True)
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, "value", serving={"record_format": "otlp"})
    worker = _serve_all(cfg, 4 * steps)
    series = {f'load{{host="{h}",service.name="api"}}' for h in ("a", "b")}
    preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
    assert {s for s, _ in preds} == series
    newest = format_timestamp((start_ns // 10**6) + (steps - 1) * HOUR)
    assert preds[('load{host="b",service.name="api"}', newest)]["yhat"]["value"][0] == pytest.approx(
        100 + steps - 1
    )
    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], steps)]
    assert len(dead) == steps and {d["error"]["code"] for d in dead} == {"missing_value"}
    message = dead[0]["error"]["message"]
    stale = 'otlp data point of load{service.name="api"} holds no recorded value'
    assert message.startswith(f"2 of 4 records rejected: record 3 of 4: {stale}")
    assert "; record 4 of 4: otlp data point" in message
    assert worker.counts["records"] == 4 * steps and worker.counts["rejected_missing_value"] == 2 * steps
    assert 'adaptcast_records_rejected_total{reason="missing_value"} ' + f"{2.0 * steps}" in (
        worker.metrics.render().decode()
    )


def test_otlp_histogram_quantiles_asked_for_are_served_as_series(kafka_bootstrap, tmp_path):
    """serving.otlp_quantiles: a latency histogram's p50 is forecast beside its count and sum."""
    from test_otlp_files import latency

    names = _topics(kafka_bootstrap, partitions=1)
    steps = 10
    _produce(
        kafka_bootstrap,
        names["input"],
        [(b"api", json.dumps(latency(t)).encode()) for t in range(steps)],
        raw=True,
    )
    serving = {"record_format": "otlp", "otlp_quantiles": [0.5]}
    _serve_all(_naive_config(kafka_bootstrap, names, tmp_path, "value", serving=serving), 3 * steps)
    preds, _ = _predictions(kafka_bootstrap, names["output"], 3 * (steps - LOOKBACK + 1))
    p50 = 'http.server.duration{quantile="0.5"}'
    assert {s for s, _ in preds} == {"http.server.duration_count", "http.server.duration_sum", p50}
    newest = format_timestamp(1_704_067_200_000 + (steps - 1) * HOUR)
    assert preds[(p50, newest)]["yhat"]["value"][0] == pytest.approx(
        0.3, rel=1e-5
    )  # rank 20 of 40 in (0.1, 0.5]


def test_telegraf_line_protocol_batches_are_served_per_series(kafka_bootstrap, tmp_path):
    """Telegraf's Kafka output as configured by default (data_format influx: line protocol, times in
    nanoseconds), with use_batch_format: several lines per message, all read."""
    names = _topics(kafka_bootstrap, partitions=1)
    start_ns = (int(time.time()) // 3600 - 40) * 3600 * 10**9
    steps = 10
    batches = [
        "".join(
            f'mem,host={host} used_percent={float(t + k)},note="ok" {start_ns + t * 3600 * 10**9}\n'
            for k, host in enumerate(("a", "b"))
        ).encode()
        for t in range(steps)
    ]
    _produce(kafka_bootstrap, names["input"], [(b"mem", b) for b in batches], raw=True)
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, "used_percent", serving={"record_format": "influx"})
    worker = _serve_all(cfg, 2 * steps)
    preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
    assert {s for s, _ in preds} == {"mem,host=a", "mem,host=b"}
    newest = format_timestamp(start_ns // 10**6 + (steps - 1) * HOUR)
    assert preds[("mem,host=b", newest)]["yhat"]["used_percent"][0] == pytest.approx(steps)
    assert worker.counts["records"] == 2 * steps and not read_topic(
        kafka_bootstrap, names["dlq"], 0, timeout=3
    )


READING_PROTO = 'syntax = "proto3";\nmessage Reading { string sensor = 1; int64 at = 2; double y = 3; }\n'


def _registry_encoded(encoding: str) -> tuple[dict[str, Any], Callable[[dict[str, Any]], bytes]]:
    """A registry's answer for a reading's schema in ``encoding``, and how its serializer frames a reading."""
    from fake_registry import avro_schema, framed, framed_protobuf, protobuf_schema
    from google.protobuf import message_factory

    from adaptcast.streams.protobuf_schema import compile_schema

    if encoding == "protobuf":
        message = message_factory.GetMessageClass(compile_schema(READING_PROTO, {})[0])
        return protobuf_schema(READING_PROTO), lambda r: framed_protobuf(
            42, [0], message(**r).SerializeToString()
        )
    schema = {
        "type": "record",
        "name": "Reading",
        "fields": [
            {"name": "sensor", "type": "string"},
            {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "y", "type": "double"},
        ],
    }
    return avro_schema(schema), lambda r: framed(42, schema, r)


@pytest.mark.parametrize("encoding", ["avro", "protobuf"])
def test_records_of_a_schema_registry_are_served(kafka_bootstrap, tmp_path, encoding):
    """A producer using the registry's Avro or Protobuf serializer (a table's rows through a JDBC
    or Debezium connector with the Avro converter, a Java or Go service): with
    kafka.schema_registry_url each record is read with its writer's schema (from a fake registry:
    tests/fake_registry.py), then as flat."""
    from fake_registry import FakeSchemaRegistry

    answer, encode = _registry_encoded(encoding)
    registry = FakeSchemaRegistry({42: answer})
    try:
        names = _topics(kafka_bootstrap, partitions=1)
        steps = 10
        feed = [
            (f"s{i}".encode(), encode({"sensor": f"s{i}", "at": t * HOUR, "y": 1000.0 * i + t}))
            for t in range(steps)
            for i in range(2)
        ]
        _produce(kafka_bootstrap, names["input"], feed, raw=True)
        serving = {"record_format": "flat", "series_field": "sensor", "time_field": "at"}
        cfg = _naive_config(
            kafka_bootstrap, names, tmp_path, serving=serving, kafka={"schema_registry_url": registry.url}
        )
        _serve_all(cfg, len(feed))
        preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
        assert {s for s, _ in preds} == {"s0", "s1"}
        last = format_timestamp((steps - 1) * HOUR)
        assert preds[("s1", last)]["yhat"]["y"] == pytest.approx([1000.0 + steps - 1] * HORIZON)
        assert registry.requests == ["/schemas/ids/42"] and not read_topic(
            kafka_bootstrap, names["dlq"], 0, timeout=3
        )
    finally:
        registry.close()


def test_a_registry_outage_holds_avro_records_back_and_serves_them_once_it_answers(kafka_bootstrap, tmp_path):
    """While the schema registry does not answer, the worker stops at the first record whose schema
    it lacks: what came before is served and committed, nothing is dead-lettered, /readyz names
    the registry. Once it answers, the held records are read again and every one is served."""
    from fake_registry import FakeSchemaRegistry, avro_schema, framed

    from adaptcast.forecast.base import InputError
    from adaptcast.streams.metrics import SCHEMA_REGISTRY
    from adaptcast.streams.train_cli import fit_on_topic

    schema = {
        "type": "record",
        "name": "Reading",
        "fields": [
            {"name": "sensor", "type": "string"},
            {"name": "at", "type": "string"},
            {"name": "y", "type": "double"},
        ],
    }
    registry = FakeSchemaRegistry({7: avro_schema(schema)})
    registry.failing = 503
    try:
        names = _topics(kafka_bootstrap, partitions=1)
        steps, n_json = 10, 6  # the first records in plain JSON, readable without the registry
        rows = [
            {"sensor": f"s{i}", "at": format_timestamp(t * HOUR), "y": 1000.0 * i + t}
            for t in range(steps)
            for i in range(2)
        ]
        feed = [
            (r["sensor"].encode(), json.dumps(r).encode() if k < n_json else framed(7, schema, r))
            for k, r in enumerate(rows)
        ]
        _produce(kafka_bootstrap, names["input"], feed, raw=True)
        serving = {"record_format": "flat", "series_field": "sensor", "time_field": "at"}
        cfg = _naive_config(
            kafka_bootstrap, names, tmp_path, serving=serving, kafka={"schema_registry_url": registry.url}
        )
        worker = Worker(cfg)
        tp = TopicPartition(names["input"], 0)
        try:
            _run_until(worker, lambda: SCHEMA_REGISTRY in worker.metrics.unmet(), timeout=30)
            held_at = time.monotonic()
            while time.monotonic() - held_at < 3.0:  # past the registry's first backoffs
                worker.step()
            assert worker.counts["records"] == n_json and worker.committed[tp] == n_json
            assert SCHEMA_REGISTRY in worker.metrics.unmet() and len(registry.requests) >= 2
            with pytest.raises(InputError, match=r"answered HTTP 503 .*\. Nothing was trained"):
                fit_on_topic(cfg, 100)  # `train --from-topic` would train on part of the topic: it stops
            registry.failing = None
            _run_until(worker, lambda: worker.counts["records"] == len(feed), timeout=30)
            assert worker.metrics.ready and worker.committed[tp] == len(feed)
        finally:
            worker.close()
        preds, counts = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
        assert set(preds) == _expected_keys(2, steps) and max(counts.values()) == 1
        assert not read_topic(kafka_bootstrap, names["dlq"], 0, timeout=3)
    finally:
        registry.close()


def test_records_keyed_by_series_without_it_in_the_value_are_served(kafka_bootstrap, tmp_path):
    """Devices often put their id only in the message key, as the contract keys messages anyway:
    with serving.series_from_key the worker takes it (off, they are missing_field, as the fuzz test
    of tests/test_fuzz_input.py holds for any key)."""
    names = _topics(kafka_bootstrap, partitions=1)
    records = _records(2, 8)
    raw = [
        (r["series"].encode(), json.dumps({k: v for k, v in r.items() if k != "series"}).encode())
        for r in records
    ]
    _produce(kafka_bootstrap, names["input"], raw, raw=True)
    worker = _serve_all(
        _naive_config(kafka_bootstrap, names, tmp_path, serving={"series_from_key": True}), len(raw)
    )
    assert set(worker.loop.states) == {"s0", "s1"}
    preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (8 - LOOKBACK + 1))
    assert {s for s, _ in preds} == {"s0", "s1"}


def test_flat_readings_keyed_by_device_and_timed_by_kafka_are_served(kafka_bootstrap, tmp_path):
    """Devices that send only ``{"y": 1.5, "unit": "kW"}``, keyed by their id, leaving the time to
    the message: with record_format flat, series_from_key and ts_from_message the worker forecasts
    them at the message times (and a train from the topic reads them the same way)."""
    names = _topics(kafka_bootstrap, partitions=2)
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    # message times of the last two days: the broker's retention deletes records stamped older
    # than a week, and did so between the worker's read and the train's in some runs
    steps, start = 10, (int(time.time() * 1000) // HOUR - 48) * HOUR
    for t in range(steps):
        for i in range(2):
            value = json.dumps({"y": float(1000 * i + t), "unit": "kW"}).encode()
            prod.send(names["input"], key=f"s{i}".encode(), value=value, timestamp_ms=start + t * HOUR)
    prod.flush()
    prod.close()
    serving = {"record_format": "flat", "series_from_key": True, "ts_from_message": True}
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, serving=serving)
    _serve_all(cfg, 2 * steps)
    preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
    assert {s for s, _ in preds} == {"s0", "s1"}
    last = format_timestamp(start + (steps - 1) * HOUR)
    assert preds[("s1", last)]["yhat"]["y"] == pytest.approx([1000.0 + steps - 1] * HORIZON)
    from adaptcast.streams.topic_history import recent_values, series_histories

    got = series_histories(
        [(key, value, ts) for key, value, ts in recent_values(cfg.kafka, 100)],
        ["y"],
        shape=SHAPES["flat"],
    )
    assert sorted(got) == ["s0", "s1"] and got["s1"][:, 0].tolist() == [1000.0 + t for t in range(steps)]


def test_flat_readings_of_a_metric_told_apart_by_labels_are_a_series_each(kafka_bootstrap, tmp_path):
    """``{"host": "a", "metric": "cpu", "ts": …, "y": …}``, keyed by host: with serving.series_field
    ``host,metric`` each pair is a series (``a/cpu`` …); with ``host`` alone, a host's two metrics
    collided as one series and one of them was dead-lettered as the other's duplicate."""
    names = _topics(kafka_bootstrap)
    steps, pairs = 8, [("a", "cpu"), ("a", "mem"), ("b", "cpu"), ("b", "mem")]
    feed = [
        (
            h.encode(),
            json.dumps(
                {"host": h, "metric": m, "ts": format_timestamp(t * HOUR), "y": 100.0 * i + t}
            ).encode(),
        )
        for t in range(steps)
        for i, (h, m) in enumerate(pairs)
    ]
    serving = {"record_format": "flat", "series_field": "host,metric"}
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, serving=serving)
    _produce(kafka_bootstrap, names["input"], feed, raw=True)
    _serve_all(cfg, len(feed))
    preds, _ = _predictions(kafka_bootstrap, names["output"], 4 * (steps - LOOKBACK + 1))
    assert {s for s, _ in preds} == {"a/cpu", "a/mem", "b/cpu", "b/mem"}
    last = format_timestamp((steps - 1) * HOUR)
    assert preds[("b/mem", last)]["yhat"]["y"] == pytest.approx([300.0 + steps - 1] * HORIZON)
    assert not read_topic(kafka_bootstrap, names["dlq"], 0, timeout=3)


def test_debezium_change_events_of_a_readings_table_are_served(kafka_bootstrap, tmp_path):
    """A table of readings captured by Debezium (Connect's JSON with schemas, microsecond times,
    integer sensor ids, keys holding the primary key): with record_format debezium and the fields
    named, inserts and snapshot reads are forecast per sensor and a delete is dead-lettered."""
    names = _topics(kafka_bootstrap, partitions=2)
    steps, start_us = 10, 1_704_067_200_000_000
    events, row_id = [], 0
    for t in range(steps):
        for sensor in (7, 8):
            row_id += 1
            row = {"id": row_id, "sensor_id": sensor, "recorded_at": start_us + t * HOUR * 1000}
            row |= {"temp": float(100 * sensor + t), "note": "ok"}
            change = {"before": None, "after": row, "op": "r" if t < 3 else "c", "ts_ms": 1, "source": {}}
            events.append((row_id, change))
    events.append((1, {"before": {"id": 1}, "after": None, "op": "d", "ts_ms": 2, "source": {}}))
    raw = [
        (json.dumps({"id": i}).encode(), json.dumps({"schema": {"type": "struct"}, "payload": e}).encode())
        for i, e in events
    ]
    _produce(kafka_bootstrap, names["input"], raw, raw=True)
    serving = {"record_format": "debezium", "series_field": "sensor_id", "time_field": "recorded_at"}
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, "temp", serving=serving | {"ts_unit": "us"})
    _serve_all(cfg, len(raw))
    preds, _ = _predictions(kafka_bootstrap, names["output"], 2 * (steps - LOOKBACK + 1))
    assert {s for s, _ in preds} == {"7", "8"}
    last = format_timestamp(start_us // 1000 + (steps - 1) * HOUR)
    assert preds[("8", last)]["yhat"]["temp"] == pytest.approx([800.0 + steps - 1] * HORIZON)
    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], 1)]
    assert [d["error"]["code"] for d in dead] == ["missing_field"]
    assert "skipped.operations" in dead[0]["error"]["message"]


def test_a_series_spread_over_partitions_is_read_in_time_order_and_named(kafka_bootstrap, tmp_path, caplog):
    """A producer that sends no key spreads a series over partitions (here: even hours on one, odd
    on the other). Records polled together are taken in time order across partitions, so none is
    late, and the worker says that records must be keyed by series and counts each move. Within a
    partition the order stays as it came: a keyed series' record sent after a newer one is late
    whatever the poll holds."""
    names = _topics(kafka_bootstrap, partitions=2)
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    steps = 24
    for t in range(steps):
        rec = {"series": "s0", "ts": format_timestamp(t * HOUR), "values": {"y": float(t)}}
        prod.send(names["input"], value=json.dumps(rec).encode(), partition=t % 2)
    for t in [*range(12), 6]:  # hour 6 again after hour 11: late
        rec = {"series": "k", "ts": format_timestamp(t * HOUR), "values": {"y": float(t)}}
        prod.send(names["input"], key=b"k", value=json.dumps(rec).encode(), partition=0)
    steps += 13
    prod.flush()
    prod.close()
    worker = Worker(_naive_config(kafka_bootstrap, names, tmp_path, metrics={"enabled": True, "port": 0}))
    try:
        with caplog.at_level("WARNING", logger="adaptcast.service"):
            _run_until(worker, lambda: worker.counts["records"] >= steps, timeout=30)
        moves = worker.metrics.registry.get_sample_value("adaptcast_series_partition_moves_total")
    finally:
        worker.close()
    assert worker.counts.get("rejected_late", 0) == 1 and worker.counts.get("rejected_duplicate", 0) == 0
    assert worker.counts["predictions"] == (24 - LOOKBACK + 1) + (12 - LOOKBACK + 1)
    assert moves is not None and moves >= 1  # counted as records arrive, partition by partition
    said = [r.getMessage() for r in caplog.records if "key each message by its series" in r.getMessage()]
    assert 1 <= len(said) <= 5 and "'s0' came on partition" in said[0]


def _lag_gauges(worker: Worker) -> dict[int, float]:
    """Partition → the consumer-lag gauge's value, read from the worker's Prometheus exposition."""
    out = {}
    for line in worker.metrics.render().decode().splitlines():
        if line.startswith("adaptcast_consumer_lag_records{"):
            out[int(line.split('partition="')[1].split('"')[0])] = float(line.rsplit(" ", 1)[1])
    return out


def test_lag_gauges_come_from_fetch_responses_while_batches_commit(kafka_bootstrap, tmp_path, monkeypatch):
    """Serving, the lags need no end-offsets round trip (it can wait behind a held fetch); idle, they do."""
    names = _topics(kafka_bootstrap)
    n_series, steps = 5, 40
    _produce(kafka_bootstrap, names["input"], _records(n_series, steps))
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"))
    cfg.kafka.poll_max_records = 15
    worker = Worker(cfg)
    monkeypatch.setattr("adaptcast.streams.service.BROKER_CHECK_S", 0.0)  # check at every poll
    round_trips = []
    asked = worker.source.lags
    monkeypatch.setattr(worker.source, "lags", lambda **kw: round_trips.append(1) or asked(**kw))
    try:
        _run_until(worker, lambda: worker.counts["records"] > 0)  # a first batch served and committed
        worker.step()
        first = len(round_trips)  # until then, each check asked the broker
        assert first >= 1
        _run_until(worker, lambda: worker.counts["records"] >= 150)
        assert len(round_trips) == first  # batches committed at every poll since: no round trip
        lags = _lag_gauges(worker)
        assert set(lags) == {0, 1, 2, 3} and sum(lags.values()) > 0
        assert lags == {tp.partition: n for tp, n in asked().items()}  # the broker's own answer
        _run_until(worker, lambda: worker.counts["records"] >= n_series * steps)
        for _ in range(3):  # idle polls: nothing committed since the last check, so ask the broker
            worker.step()
        assert len(round_trips) > first
        assert set(_lag_gauges(worker).values()) == {0.0}
    finally:
        worker.close()


def test_bad_records_go_to_dead_letters_with_reasons(kafka_bootstrap, tmp_path):
    names = _topics(kafka_bootstrap)
    n_series, steps = 3, 30
    good = _records(n_series, steps)
    bad_kinds = {
        "undecodable": lambda k: None if k % 16 == 0 else b"\xff\xfe not json %d" % k,  # None: a tombstone
        "not_object": lambda k: b"42",
        "missing_field": lambda k: json.dumps({"series": "s0", "values": {"y": 1}}).encode(),
        "bad_timestamp": lambda k: json.dumps(
            {"series": "s0", "ts": "noon-ish", "values": {"y": 1}}
        ).encode(),
        "non_numeric": lambda k: json.dumps({"series": "s1", "ts": 5, "values": {"y": "high"}}).encode(),
        "missing_value": lambda k: json.dumps({"series": "s1", "ts": 5, "values": {"z": 1.0}}).encode(),
        "future_timestamp": lambda k: json.dumps(
            {"series": "s2", "ts": 10**13 * 9, "values": {"y": 1.0}}
        ).encode(),
        "non_finite": lambda k: b'{"series": "s2", "ts": 5, "values": {"y": NaN}}',
    }
    bad: list[tuple[bytes, bytes | None]] = []
    for k in range(1200):
        reason = list(bad_kinds)[k % len(bad_kinds)]
        bad.append((b"s%d" % (k % n_series), bad_kinds[reason](k)))
    # interleave: a bad record after each good one, the rest at the end
    mixed: list[tuple[bytes, bytes | None]] = []
    for j, rec in enumerate(good):
        mixed.append((rec["series"].encode(), json.dumps(rec).encode()))
        mixed.append(bad[j])
    mixed.extend(bad[len(good) :])
    _produce(kafka_bootstrap, names["input"], mixed, raw=True)
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"))
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: worker.counts["records"] >= len(mixed))
    finally:
        worker.close()
    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], len(bad))]
    assert len(dead) == len(bad)
    per_reason = Counter(d["error"]["code"] for d in dead)
    assert per_reason == Counter(list(bad_kinds)[k % len(bad_kinds)] for k in range(len(bad)))
    import base64

    originals = {base64.b64decode(d["original"]) for d in dead}
    assert originals == {v or b"" for _, v in bad}
    assert all(d["topic"] == names["input"] and d["offset"] >= 0 for d in dead)
    text = worker.metrics.render().decode()
    for reason, n in per_reason.items():
        assert f'adaptcast_records_rejected_total{{reason="{reason}"}} {float(n)}' in text
    preds, _ = _predictions(kafka_bootstrap, names["output"], len(_expected_keys(n_series, steps)))
    assert set(preds) == _expected_keys(n_series, steps)


def _worker_process(cfg_path: Path, log: Path, *flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "adaptcast.streams.cli", "run", "--config", str(cfg_path), *flags],
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop_worker(proc: subprocess.Popen, log: Path) -> None:
    """SIGTERM: the worker finishes its batch, commits and exits 0."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, log.read_text()


def _kill_worker(proc: subprocess.Popen) -> None:
    """kill -9 a worker still running (a crash, or cleanup after a failed test), its process group too."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_serving(proc: subprocess.Popen, log: Path, n: int, timeout: float = 90) -> None:
    """Until the n-th worker started in this log says it is serving (signal handlers installed)."""
    deadline = time.monotonic() + timeout
    while log.read_text().count("adaptcast: serving") < n:
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)


def test_kill_minus_nine_loses_nothing(kafka_bootstrap, tmp_path):
    import yaml

    names = _topics(kafka_bootstrap)
    n_series, steps = 4, 400
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"))
    cfg_path = tmp_path / "c.yaml"
    data = cfg.model_dump(mode="json")
    data["kafka"]["poll_max_records"] = 20
    cfg_path.write_text(yaml.safe_dump(data))
    records = _records(n_series, steps)
    feeder = threading.Thread(
        target=lambda: [
            (_produce(kafka_bootstrap, names["input"], records[i : i + 40]), time.sleep(0.3))
            for i in range(0, len(records), 40)
        ]
    )
    log = tmp_path / "worker.log"
    procs: list[subprocess.Popen] = []
    try:
        proc = _worker_process(cfg_path, log)
        procs.append(proc)
        _wait_serving(proc, log, 1)
        feeder.start()
        # wait until it is mid-stream: a few hundred records committed, input not finished
        deadline = time.monotonic() + 90
        while _committed_total(kafka_bootstrap, names["group"]) < 200:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert feeder.is_alive(), (
            f"the kill must happen mid-stream, but the feeder finished first\n{log.read_text()}"
        )
        _kill_worker(proc)
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        committed_at_kill = {
            tp.partition: om.offset
            for tp, om in admin.list_group_offsets(names["group"]).get(names["group"], {}).items()
        }
        admin.close()
        feeder.join()
        proc2 = _worker_process(cfg_path, log)
        procs.append(proc2)
        _wait_serving(proc2, log, 2)

        def worker_state() -> str:
            assert proc2.poll() is None, log.read_text()
            return log.read_text()

        _wait_group_done(kafka_bootstrap, names["group"], names["input"], 90, worker_state)
        _stop_worker(proc2, log)
    finally:
        for p in procs:
            _kill_worker(p)
        if feeder.is_alive():
            feeder.join()
    expected = _expected_keys(n_series, steps)
    preds, counts = _predictions(kafka_bootstrap, names["output"], len(expected))
    assert set(preds) == expected, f"missing: {sorted(expected - set(preds))[:5]}"
    # duplicates only for records at or after the last commit before the kill
    inputs = read_topic(kafka_bootstrap, names["input"], len(records))
    where = {
        (json.loads(m.value)["series"], json.loads(m.value)["ts"]): (m.partition, m.offset) for m in inputs
    }
    for key, n in counts.items():
        if n > 1:
            part, off = where[key]
            assert off >= committed_at_kill.get(part, 0), (
                f"{key} duplicated although committed before the kill"
            )


def _split(a: set, b: set, n: int) -> bool:
    """Whether two consumers hold ``n`` partitions between them, each some, none twice."""
    return bool(a) and bool(b) and len(a | b) == n and not a & b


def _group_members(bootstrap: str, group: str) -> str:
    """The broker's view of ``group``: its state and each member's client id, for failure messages."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        desc = admin.describe_groups([group]).get(group, {})
    finally:
        admin.close()
    members = sorted(m.get("client_id", "?") for m in desc.get("members", []))
    return f"broker: group {desc.get('group_state', '?')}, members {members}"


def test_two_workers_split_partitions_and_take_over(kafka_bootstrap, tmp_path):
    names = _topics(kafka_bootstrap)
    n_series, steps = 8, 120
    ckpt = _naive_checkpoint(tmp_path / "m")
    # a stopping worker's LeaveGroup is one best-effort request (kafka-python does not resend it);
    # when a loaded box loses it, the group moves the partitions after the session timeout instead
    # (45 s by default): a short one keeps the take-over within the deadline either way
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", ckpt, kafka={"session_timeout_s": 10})
    a, b = Worker(cfg, client_id="worker-a"), Worker(cfg, client_id="worker-b")
    threads = {w: threading.Thread(target=w.run, daemon=True) for w in (a, b)}
    for t in threads.values():
        t.start()
    records = _records(n_series, steps)
    half = len(records) // 2

    def assignments() -> str:
        return "; ".join(
            f"worker-{n}: {sorted(tp.partition for tp in w.source.consumer.assignment())}"
            f" alive={threads[w].is_alive()}"
            for n, w in (("a", a), ("b", b))
        )

    try:
        # each worker's view is read from this thread while its own thread may still be applying the
        # rebalance (one run saw a's old four partitions beside b's new two): wait for a settled split
        deadline = time.monotonic() + 60
        while not _split(a.source.consumer.assignment(), b.source.consumer.assignment(), 4):
            assert time.monotonic() < deadline, f"both workers should get partitions: {assignments()}"
            time.sleep(0.2)
        _produce(kafka_bootstrap, names["input"], records[:half])
        _wait_group_done(kafka_bootstrap, names["group"], names["input"], 60, assignments)
        # stop worker a: b must take over its partitions, restore their windows and continue without gaps
        a.stop_event.set()
        threads[a].join(timeout=60)
        assert not threads[a].is_alive()
        deadline = time.monotonic() + 60
        while len(b.source.consumer.assignment()) < 4:
            assert time.monotonic() < deadline, (
                f"b should own all partitions after a left: {assignments()}; "
                f"{_group_members(kafka_bootstrap, names['group'])}"
            )
            time.sleep(0.2)
        _produce(kafka_bootstrap, names["input"], records[half:])
        _wait_group_done(kafka_bootstrap, names["group"], names["input"], 60, assignments)
    finally:
        for w in (a, b):
            w.stop_event.set()
        for t in threads.values():
            t.join(timeout=60)
    expected = _expected_keys(n_series, steps)
    preds, _ = _predictions(kafka_bootstrap, names["output"], len(expected))
    assert set(preds) == expected, f"missing: {sorted(expected - set(preds))[:5]}"


def test_hot_swap_under_load_keeps_serving(kafka_bootstrap, tmp_path):
    names = _topics(kafka_bootstrap)
    n_series, steps = 4, 150
    cfg = _config(
        kafka_bootstrap,
        names,
        tmp_path / "state",
        None,
        model={"kind": "arnet", "params": {"epochs": 3}},
        adaptation={"policy": "periodic:30", "window": "full", "min_train_rows": 40},
    )
    worker = Worker(cfg)
    records = _records(n_series, steps)
    try:
        for i in range(0, len(records), 40):  # arrives in bursts while training runs in the background
            _produce(kafka_bootstrap, names["input"], records[i : i + 40])
            _run_until(worker, lambda i=i: worker.counts["records"] >= min(i + 40, len(records)))
        worker.loop.trainer.wait(60)
        _run_until(worker, lambda: True)
    finally:
        worker.close()
    preds, counts = _predictions(kafka_bootstrap, names["output"], 100)
    versions = {p["model_version"] for p in preds.values()}
    assert len(versions) >= 2, versions  # the initial model and at least one hot swap
    assert max(counts.values()) == 1
    # after the first model exists, every record of every series is forecast
    first = min(int(p["issued_at"][11:13]) + 24 * (int(p["issued_at"][8:10]) - 1) for p in preds.values())
    for i in range(n_series):
        got = sorted(k[1] for k in preds if k[0] == f"s{i}")
        assert got[-1] == format_timestamp((steps - 1) * HOUR)
        assert len(got) >= steps - first - 1
    text = worker.metrics.render().decode()
    assert 'adaptcast_retrains_total{reason="periodic"}' in text


def test_restart_with_changed_policy_ignores_the_old_loop_snapshot(kafka_bootstrap, tmp_path, caplog):
    names = _topics(kafka_bootstrap)
    ckpt = _naive_checkpoint(tmp_path / "m")
    first = Worker(_config(kafka_bootstrap, names, tmp_path / "state", ckpt, adaptation={"policy": "drift"}))
    first.close()  # writes the loop snapshot
    assert (tmp_path / "state" / "snapshots" / "loop.npz").is_file()
    with caplog.at_level("WARNING", logger="adaptcast.service"):
        second = Worker(
            _config(kafka_bootstrap, names, tmp_path / "state", ckpt, adaptation={"policy": "periodic:24"})
        )
    try:
        assert "does not fit the current configuration" in caplog.text
        assert second.loop.policy.spec == "periodic:24"
    finally:
        second.close()


def _naive(lookback: int = LOOKBACK, horizon: int = HORIZON):
    m = create_forecaster("naive", lookback=lookback, horizon=horizon)
    m.fit(*sliding_windows(np.arange(50.0), lookback, horizon))
    return m


def test_a_restart_with_another_lookback_and_horizon_trains_afresh(kafka_bootstrap, tmp_path, caplog):
    """The configuration wins over a stored model it no longer fits (which failed on its first
    window before): a model of the configured shape is trained and serves, and serves again after
    the next restart though the old one is still marked; the store keeps the old one."""
    names = _topics(kafka_bootstrap)
    store = CheckpointStore(tmp_path / "state" / "models")
    old = store.save(_naive())
    store.mark_serving(old, "published")
    lookback, horizon = LOOKBACK + 2, HORIZON + 1
    cfg = _config(
        kafka_bootstrap, names, tmp_path / "state", model={"lookback": lookback, "horizon": horizon}
    )
    with caplog.at_level("WARNING", logger="adaptcast.service"):
        worker = Worker(cfg)
    try:
        for start, steps in ((0, 20), (20, 10)):  # the first model is trained after the first poll
            _produce(kafka_bootstrap, names["input"], _records(2, steps, start))
            _run_until(worker, lambda n=start + steps: worker.counts["records"] >= 2 * n)
    finally:
        worker.close()
    assert (
        f"no model in the store fits the configuration (the serving one, {old}: model.lookback "
        f"{LOOKBACK} (configured: {lookback}); model.horizon {HORIZON} (configured: {horizon}))"
    ) in caplog.text
    preds, counts = _predictions(kafka_bootstrap, names["output"], 20)
    assert max(counts.values()) == 1 and len(preds) >= 20
    assert preds[("s1", format_timestamp(29 * HOUR))]["yhat"]["y"] == pytest.approx([1029.0] * horizon)
    trained = store.latest()
    assert trained != old and store.serving() == old and worker.loop.model.lookback == lookback
    again = Worker(cfg)  # the marked version is passed over for the newest one that fits
    try:
        assert again.loop.model_version == trained and [v for v, _ in again.store.refused] == [old]
    finally:
        again.close()


def test_a_checkpoint_of_another_shape_is_refused_saying_which_keys(kafka_bootstrap, tmp_path):
    names = _topics(kafka_bootstrap)
    path = tmp_path / "m"
    _naive(LOOKBACK, HORIZON).save(path)
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", str(path), model={"horizon": HORIZON + 2})
    with pytest.raises(
        ValueError,
        match=rf"model.checkpoint {path} does not fit the configuration: "
        rf"model.horizon {HORIZON} \(configured: {HORIZON + 2}\)\. Set those keys",
    ):
        Worker(cfg)


def test_a_published_model_of_another_shape_is_not_swapped_in(kafka_bootstrap, tmp_path, caplog):
    names = _topics(kafka_bootstrap)
    store = CheckpointStore(tmp_path / "state" / "models")
    serving = store.save(_naive())
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", state={"model_poll_s": 0.01})
    worker = Worker(cfg)
    try:
        other = store.save(_naive(LOOKBACK + 4))
        store.mark_serving(other, "published")
        _produce(kafka_bootstrap, names["input"], _records(1, 20))
        with caplog.at_level("WARNING", logger="adaptcast.service"):
            _run_until(worker, lambda: worker.counts["records"] >= 20)
    finally:
        worker.close()
    assert f"{other} does not fit the configuration: model.lookback {LOOKBACK + 4}" in caplog.text
    preds, _ = _predictions(kafka_bootstrap, names["output"], 20 - LOOKBACK + 1)
    assert {p["model_version"] for p in preds.values()} == {serving}


def test_a_restart_that_adds_a_feature_rereads_the_windows_instead_of_restoring_them(
    kafka_bootstrap, tmp_path, caplog
):
    """The snapshot lacks the new channel: the partition is warmed from the topic, so the window's
    feature column holds the feature (it held the target's values before)."""
    names = _topics(kafka_bootstrap, partitions=1)
    steps = 20
    rows = [
        {"series": "s0", "ts": format_timestamp(t * HOUR), "values": {"y": float(t), "x": 500.0 + t}}
        for t in range(steps)
    ]
    _produce(kafka_bootstrap, names["input"], rows)
    _serve_all(_naive_config(kafka_bootstrap, names, tmp_path), steps)  # reads y only; snapshots at close
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", model={"features": ["x"]})
    with caplog.at_level("WARNING", logger="adaptcast.service"):
        worker = Worker(cfg)
        try:
            _run_until(
                worker, lambda: "s0" in worker.loop.states and len(worker.loop.states["s0"].buffer) >= steps
            )
            window = worker.loop.states["s0"].buffer.last(steps)
        finally:
            worker.close()
    assert (
        "the window snapshot does not fit the configuration: series 's0': the snapshot holds y, not x"
        in caplog.text
    )
    np.testing.assert_array_equal(window, np.c_[np.arange(steps), 500.0 + np.arange(steps)])


@pytest.mark.parametrize("start_at", ["earliest", "latest"])
def test_a_new_group_starts_at_the_end_of_a_topic_with_history_when_told(kafka_bootstrap, tmp_path, start_at):
    """kafka.start_at latest: the history already on the topic only fills the windows, so the first
    live record is forecast at once (and correctly); earliest forecasts the history too."""
    names = _topics(kafka_bootstrap, partitions=2)
    history, live = 30, 5
    _produce(kafka_bootstrap, names["input"], _records(2, history))
    cfg = _naive_config(
        kafka_bootstrap, names, tmp_path, kafka={"start_at": start_at}, state={"warm_records": 20}
    )
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: len(worker.committed) == 2 and not worker.warm_until)
        _run_until(worker, lambda: start_at == "latest" or worker.counts["records"] >= 2 * history)
        _produce(kafka_bootstrap, names["input"], _records(2, live, start_step=history))
        expected = 2 * live if start_at == "latest" else 2 * (history + live - LOOKBACK + 1)
        _run_until(worker, lambda: worker.counts["predictions"] >= expected)
    finally:
        worker.close()
    preds, counts = _predictions(kafka_bootstrap, names["output"], expected)
    first = history if start_at == "latest" else LOOKBACK - 1
    assert max(counts.values()) == 1
    assert set(preds) == {
        (f"s{i}", format_timestamp(t * HOUR)) for i in range(2) for t in range(first, history + live)
    }
    if start_at == "latest":  # the first live forecast: naive on a window the history filled
        first_live = preds[("s1", format_timestamp(history * HOUR))]
        assert first_live["yhat"]["y"] == pytest.approx([1000.0 + history] * HORIZON)


def test_warming_windows_never_moves_the_groups_committed_offset_back(kafka_bootstrap, tmp_path):
    """A worker without a usable snapshot re-reads up to state.warm_records before the committed
    offset to fill its windows. Those records were served already: committing their offsets would
    move the group back, and a crash during the warm-up would forecast them all again."""
    names = _topics(kafka_bootstrap, partitions=1)
    steps = 20
    _produce(kafka_bootstrap, names["input"], _records(2, steps))
    _serve_all(_naive_config(kafka_bootstrap, names, tmp_path / "a"), 2 * steps)
    tp = TopicPartition(names["input"], 0)
    cfg = _naive_config(  # another state dir: no snapshot; warm-up spread over several polls
        kafka_bootstrap, names, tmp_path / "b", state={"warm_records": 30}, kafka={"poll_max_records": 4}
    )
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: bool(worker.warm_until), timeout=30)
        seen = []
        while worker.warm_until:
            worker.step()
            seen.append(worker.source.committed(tp))
        assert len(seen) > 3 and set(seen) == {2 * steps}
    finally:
        worker.close()
    assert worker.counts["predictions"] == 0  # the re-read records are not forecast again


def test_records_retention_deleted_before_the_group_read_them_are_logged_and_counted(
    kafka_bootstrap, tmp_path, caplog
):
    """A group further behind than the topic keeps records: the loss is said and counted, not silent."""
    names = _topics(kafka_bootstrap, partitions=1)
    cfg = _naive_config(kafka_bootstrap, names, tmp_path)
    _produce(kafka_bootstrap, names["input"], _records(1, 10))
    _serve_all(cfg, 10)  # the group has committed offset 10
    _produce(kafka_bootstrap, names["input"], _records(1, 20, start_step=10))  # offsets 10-29
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.delete_records({TopicPartition(names["input"], 0): 25})  # as retention would: 10-24 unread
    finally:
        admin.close()
    with caplog.at_level("WARNING", logger="adaptcast.service"):
        worker = _serve_all(cfg, 5)
    said = "offsets 10 to 24 were deleted by the topic's retention before this group read them (15 records"
    assert said in caplog.text
    assert "adaptcast_records_expired_total 15.0" in worker.metrics.render().decode()


def test_backtest_and_worker_forecast_alike_on_a_gappy_feed(kafka_bootstrap, tmp_path):
    """One gappy, jittered feed with a stray record: the backtest and the worker put every forecast on
    the same grid points with the same values, and both dead-letter the stray as off_grid."""
    names = _topics(kafka_bootstrap)
    steps, gone = 90, {"s0": range(50, 54), "s1": range(55, 65)}  # s0's gap is filled, s1's restarts it
    feed = [
        (f"s{i}", t * HOUR + (7_000 if t % 7 == 3 else 0), float(1000 * i + (t * 37) % 11))
        for t in range(steps)
        for i in range(2)
        if t not in gone[f"s{i}"]
    ]
    feed = sorted([*feed, ("s0", 69 * HOUR + 30 * 60_000, -1.0)], key=lambda r: r[1])  # a stray off the grid
    cfg = _config(
        kafka_bootstrap,
        names,
        tmp_path / "state",
        _naive_checkpoint(tmp_path / "m"),
        adaptation={"policy": "never", "memory": False},
        grid={"max_fill": 6},
    )
    frame = pl.DataFrame(
        {"ts": [t for _, t, _ in feed], "series": [s for s, _, _ in feed], "y": [v for *_, v in feed]}
    )
    frame = frame.with_columns(pl.col("ts").cast(pl.Datetime("ms")))
    offline = backtest(
        cfg, data=SeriesFrame("gappy", frame, ["y"], 1), report=False, progress=False
    ).forecasts
    _produce(
        kafka_bootstrap,
        names["input"],
        [{"series": s, "ts": format_timestamp(t), "values": {"y": v}} for s, t, v in feed],
    )
    worker = Worker(cfg)
    try:
        _run_until(worker, lambda: worker.counts["records"] >= len(feed))
    finally:
        worker.close()
    live, _ = _predictions(kafka_bootstrap, names["output"], len(offline) // HORIZON)
    first = offline.group_by("series").agg(pl.col("issued_at").min().dt.epoch("ms")).rows()
    for series, issued in first:
        ours = {k: p for k, p in live.items() if k[0] == series and k[1] >= format_timestamp(issued)}
        theirs = offline.filter(pl.col("series") == series).sort("issued_at", "step")
        issued_at = theirs["issued_at"].dt.epoch("ms").to_list()[::HORIZON]
        assert len(ours) > 50 and sorted(ours) == [(series, format_timestamp(t)) for t in issued_at]
        for key, group in zip(
            sorted(ours), theirs.partition_by("issued_at", maintain_order=True), strict=True
        ):
            assert ours[key]["ts"] == [format_timestamp(t) for t in group["ts"].dt.epoch("ms")]
            # a last-value forecast: equal up to the float32 rounding of each run's own scaler
            assert ours[key]["yhat"]["y"] == pytest.approx(group["yhat"].to_list(), abs=1e-3)
    assert any(
        k[1] >= format_timestamp(70 * HOUR) for k in live if k[0] == "s1"
    )  # s1 resumed after its restart
    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], 1)]
    assert [d["error"]["code"] for d in dead] == ["off_grid"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    """An ``adaptcast`` command in its own process, as a Kubernetes Job would run it."""
    return subprocess.run(
        [sys.executable, "-m", "adaptcast.streams.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_output_the_broker_refuses_stops_the_worker_in_one_line_and_commits_nothing(
    kafka_bootstrap, tmp_path
):
    """An output topic whose max.message.bytes is below a forecast's size: the broker never takes
    the batch's forecasts. The worker exits 1 with one line saying so (kafka-python alone says
    "UnknownError: Future not done", twice, in tracebacks) and commits nothing of the batch, so a
    restarted worker reads it again once the topic is fixed."""
    import yaml

    names = _topics(kafka_bootstrap, partitions=1)
    names["output"] += "-small"
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    admin.create_topics([NewTopic(names["output"], 1, 1, topic_configs={"max.message.bytes": "200"})])
    admin.close()
    _produce(kafka_bootstrap, names["input"], _records(2, 10))
    cfg = _naive_config(kafka_bootstrap, names, tmp_path)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    log = tmp_path / "worker.log"
    proc = _worker_process(cfg_path, log)
    try:
        code = proc.wait(timeout=120)
    finally:
        _kill_worker(proc)
    text = log.read_text()
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert code == 1 and len(errors) == 1 and "Traceback" not in text, text
    assert "did not take the forecasts" in errors[0] and "nothing of that batch was committed" in errors[0]
    assert f"max.message.bytes of {names['output']}" in errors[0]
    assert _committed_total(kafka_bootstrap, names["group"]) == 0


def test_worker_follows_the_store_that_a_separate_train_process_publishes_to(kafka_bootstrap, tmp_path):
    """Serve; `adaptcast train --from-topic` publishes twice, then `adaptcast model rollback`: the worker
    swaps each time without a restart, and every record is forecast once, by the model serving then."""
    import yaml

    names = _topics(kafka_bootstrap)
    n_series, per_phase = 3, 20
    cfg = _config(kafka_bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"))
    cfg.state.model_poll_s = 0.2
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    log = tmp_path / "worker.log"
    proc = _worker_process(cfg_path, log, "--verbose")

    def alive() -> str:
        assert proc.poll() is None, log.read_text()
        return log.read_text()

    def phase(k: int) -> None:
        _produce(kafka_bootstrap, names["input"], _records(n_series, per_phase, start_step=k * per_phase))
        _wait_group_done(kafka_bootstrap, names["group"], names["input"], 60, alive)

    def swapped(version: str, times: int) -> None:
        deadline = time.monotonic() + 30
        while alive().count(f"hot swap to {version}") < times:
            assert time.monotonic() < deadline, f"no swap to {version}:\n{log.read_text()}"
            time.sleep(0.1)

    def train() -> str:
        res = _cli("train", "--config", str(cfg_path), "--from-topic")
        assert res.returncode == 0, res.stderr
        published = json.loads(res.stdout)["store"]
        assert published["marked_serving"], published
        return published["version"]

    try:
        _wait_serving(proc, log, 1)
        phase(0)  # the configured checkpoint serves
        v1 = train()
        swapped(v1, 1)
        phase(1)
        v2 = train()
        assert v2 > v1
        swapped(v2, 1)
        phase(2)
        res = _cli("model", "rollback", "--config", str(cfg_path))
        assert res.returncode == 0 and f"{v1} marked serving" in res.stdout, res.stdout + res.stderr
        swapped(v1, 2)
        phase(3)
        _stop_worker(proc, log)
    finally:
        _kill_worker(proc)
    assert log.read_text().count("adaptcast: serving") == 1  # one process throughout: no restart
    expected = _expected_keys(n_series, 4 * per_phase)
    preds, counts = _predictions(kafka_bootstrap, names["output"], len(expected))
    assert set(preds) == expected, f"missing: {sorted(expected - set(preds))[:5]}"
    assert max(counts.values()) == 1
    serving = ["0", v1, v2, v1]  # per phase; the checkpoint was never stored, so it has no version
    for (_series, issued), p in preds.items():
        assert p["model_version"] == serving[parse_timestamp(issued) // HOUR // per_phase], (issued, p)


def test_a_business_hours_feed_is_served_on_its_declared_schedule(kafka_bootstrap, tmp_path):
    """Hours 09–17 on weekdays, declared: the worker forecasts across every night and weekend without
    restarting, stamps forecasts on the next session's hours, and dead-letters a record at 20:00."""
    names = _topics(kafka_bootstrap)
    sched = Schedule(HOUR, MON_FRI, 9 * HOUR, 9)
    first = sched.first_point(int(np.datetime64("2024-03-04T09:00", "ms").astype(np.int64)), 0.0)
    stamps = sched.advance(np.full(45, first, dtype=np.int64), np.arange(45)).tolist()  # one week
    stray = stamps[26] + 3 * HOUR  # Wednesday 20:00, after hours
    feed = [
        {"series": "s0", "ts": format_timestamp(t), "values": {"y": float(k)}} for k, t in enumerate(stamps)
    ]
    feed.insert(27, {"series": "s0", "ts": format_timestamp(stray), "values": {"y": -1.0}})
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, grid={"frequency": sched.text()})
    _produce(kafka_bootstrap, names["input"], feed)
    _serve_all(cfg, len(feed))
    live, _ = _predictions(kafka_bootstrap, names["output"], len(stamps) - LOOKBACK + 1)
    assert sorted(k[1] for k in live) == [format_timestamp(t) for t in stamps[LOOKBACK - 1 :]]
    friday_close = live[("s0", format_timestamp(stamps[-1]))]
    assert friday_close["ts"] == [
        format_timestamp(t) for t in sched.advance(np.full(3, stamps[-1]), np.arange(1, 4))
    ]
    assert friday_close["ts"][0].startswith("2024-03-11T09:00")  # Monday's first hour
    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], 1)]
    assert [d["error"]["code"] for d in dead] == ["off_grid"]
    assert "the schedule is closed then" in dead[0]["error"]["message"]


def test_a_worker_finds_undeclared_business_hours_after_three_weeks(kafka_bootstrap, tmp_path):
    """Hours 09–17 on weekdays, not declared: the worker restarts the series at each closure until
    three weeks of records show the schedule, then forecasts across nights and weekends."""
    names = _topics(kafka_bootstrap)
    sched = Schedule(HOUR, MON_FRI, 9 * HOUR, 9)
    first = sched.first_point(int(np.datetime64("2024-03-04T09:00", "ms").astype(np.int64)), 0.0)
    stamps = sched.advance(np.full(45 * 5, first, dtype=np.int64), np.arange(45 * 5)).tolist()  # 5 weeks
    feed = [
        {"series": "s0", "ts": format_timestamp(t), "values": {"y": float(k)}} for k, t in enumerate(stamps)
    ]
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, grid={"max_fill": 2})
    _produce(kafka_bootstrap, names["input"], feed)
    _serve_all(cfg, len(feed))
    live, _ = _predictions(kafka_bootstrap, names["output"], 45)
    last_week = [format_timestamp(t) for t in stamps[-45:]]
    assert all(("s0", t) in live for t in last_week)  # every hour, the first after each night included
    assert live[("s0", last_week[-1])]["ts"] == [
        format_timestamp(t) for t in sched.advance(np.full(HORIZON, stamps[-1]), np.arange(1, HORIZON + 1))
    ]
    assert not read_topic(kafka_bootstrap, names["dlq"], 0, timeout=3)


def test_local_business_hours_are_served_across_a_clock_change(kafka_bootstrap, tmp_path):
    """Hours 09–17 in Berlin, declared with the zone and stamped with local offsets, over the week the
    clocks go forward: nothing is dead-lettered or restarted, and Friday's forecast starts at
    Monday 09:00 in Berlin, 07:00 UTC (08:00 UTC the Monday before)."""
    names = _topics(kafka_bootstrap)
    sched = Schedule(HOUR, MON_FRI, 9 * HOUR, 8, "Europe/Berlin")
    first = sched.first_point(int(np.datetime64("2024-03-25T08:00", "ms").astype(np.int64)), 0.0)
    stamps = sched.advance(np.full(80, first, dtype=np.int64), np.arange(80)).tolist()  # two weeks
    local = [
        str(w) for w in to_wall("Europe/Berlin", stamps).astype("datetime64[ms]").astype("datetime64[s]")
    ]
    offsets = ["+01:00" if t < stamps[40] else "+02:00" for t in stamps]
    feed = [
        {"series": "s0", "ts": f"{w}{o}", "values": {"y": float(k)}}
        for k, (w, o) in enumerate(zip(local, offsets, strict=True))
    ]
    assert feed[39]["ts"] == "2024-03-29T16:00:00+01:00" and feed[40]["ts"] == "2024-04-01T09:00:00+02:00"
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, grid={"frequency": sched.text()})
    _produce(kafka_bootstrap, names["input"], feed)
    _serve_all(cfg, len(feed))
    live, _ = _predictions(kafka_bootstrap, names["output"], len(stamps) - LOOKBACK + 1)
    assert sorted(k[1] for k in live) == [format_timestamp(t) for t in stamps[LOOKBACK - 1 :]]
    assert live[("s0", format_timestamp(stamps[39]))]["ts"][0].startswith("2024-04-01T07:00")
    assert live[("s0", format_timestamp(stamps[15]))]["ts"][0].startswith("2024-03-27T08:00")  # in CET
    assert not read_topic(kafka_bootstrap, names["dlq"], 0, timeout=3)


def test_an_irregular_feed_is_resampled_by_the_worker(kafka_bootstrap, tmp_path):
    """Readings at irregular times, grid.resample: mean: one forecast per ten-minute period with a full
    window, issued at the period's start, and nothing dead-lettered but a reading that came late."""
    names = _topics(kafka_bootstrap)
    period = 10 * 60_000
    rng = np.random.default_rng(0)
    stamps = (
        np.cumsum(rng.integers(60_000, 2 * period // 3, 400)) + 1_700_000_000_000 // period * period
    ).tolist()
    feed = [
        {"series": "s0", "ts": format_timestamp(t), "values": {"y": float(k)}} for k, t in enumerate(stamps)
    ]
    feed.insert(200, {"series": "s0", "ts": format_timestamp(stamps[150]), "values": {"y": -1.0}})  # late
    cfg = _naive_config(kafka_bootstrap, names, tmp_path, grid={"frequency": "10min", "resample": "mean"})
    _produce(kafka_bootstrap, names["input"], feed)
    _serve_all(cfg, len(feed))
    starts = sorted({t - t % period for t in stamps})
    live, counts = _predictions(kafka_bootstrap, names["output"], 1)
    issued = sorted(parse_timestamp(k[1]) for k in live)
    assert set(issued) <= set(starts[:-1]) and len(issued) > 0.5 * len(starts) and max(counts.values()) == 1
    dead = [json.loads(m.value) for m in read_topic(kafka_bootstrap, names["dlq"], 1)]
    assert [d["error"]["code"] for d in dead] == ["late"]
    assert json.loads(base64.b64decode(dead[0]["original"])) == feed[200]  # the reading's own bytes
