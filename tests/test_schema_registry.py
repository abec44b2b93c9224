"""Avro records in Schema Registry framing (streams/schema_registry.py), read with the writer's
schema from a registry (a fake one, tests/fake_registry.py) and then by the record format."""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import re

import pytest
from fake_registry import FakeSchemaRegistry, avro_schema, framed
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from adaptcast.streams import records as R
from adaptcast.streams.config import load_config, to_yaml
from adaptcast.streams.formats import SHAPES
from adaptcast.streams.schema_registry import SchemaRegistry, registry_for

T0 = dt.datetime(2024, 1, 1, 1, tzinfo=dt.UTC)
CONTRACT = {
    "type": "record",
    "name": "Reading",
    "fields": [
        {"name": "series", "type": "string"},
        {"name": "ts", "type": "long"},
        {"name": "values", "type": {"type": "map", "values": "double"}},
    ],
}
ROW = {  # a table's row, as a JDBC or Debezium source connector writes it with the Avro converter
    "type": "record",
    "name": "Row",
    "fields": [
        {"name": "sensor_id", "type": "int"},
        {"name": "recorded_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "temp", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}},
        {"name": "unit", "type": ["null", "string"], "default": None},
    ],
}
DEBEZIUM = {
    "type": "record",
    "name": "Envelope",
    "fields": [
        {"name": "before", "type": ["null", ROW], "default": None},
        {"name": "after", "type": ["null", "Row"], "default": None},
        {"name": "op", "type": "string"},
    ],
}


@pytest.fixture
def registry():
    fake = FakeSchemaRegistry({1: avro_schema(CONTRACT), 2: avro_schema(ROW), 3: avro_schema(DEBEZIUM)})
    yield fake
    fake.close()


def test_an_avro_record_is_read_with_its_writers_schema_fetched_once(registry):
    reader = SchemaRegistry(registry.url)
    raw = framed(1, CONTRACT, {"series": "pump-7", "ts": int(T0.timestamp() * 1000), "values": {"y": 1.5}})
    for _ in range(3):
        [rec] = R.decode_message(raw, required=("y",), registry=reader)
        assert (rec.series, R.format_timestamp(rec.ts_ms), rec.values) == (
            "pump-7",
            "2024-01-01T01:00:00Z",
            {"y": 1.5},
        )
    assert registry.requests == ["/schemas/ids/1"]  # an id's schema never changes: asked once


def test_logical_types_read_as_json_would_carry_them_in_flat_and_debezium_rows(registry):
    reader = SchemaRegistry(registry.url)
    row = {"sensor_id": 7, "recorded_at": T0, "temp": decimal.Decimal("21.25"), "unit": "C"}
    flat = SHAPES["flat"]
    kw = {"required": ("temp",), "registry": reader}
    [rec] = R.decode_message(framed(2, ROW, row), shape=lambda o: flat(o, "sensor_id", "recorded_at"), **kw)
    assert (rec.series, R.format_timestamp(rec.ts_ms), rec.values) == (
        "7",
        "2024-01-01T01:00:00Z",
        {"temp": 21.25},
    )
    event = {"before": None, "after": row, "op": "c"}
    debezium = SHAPES["debezium"]
    [rec] = R.decode_message(
        framed(3, DEBEZIUM, event), shape=lambda o: debezium(o, "sensor_id", "recorded_at"), **kw
    )
    assert rec.values == {"temp": 21.25}  # a DECIMAL column is a number here, not base64 bytes


def test_what_cannot_be_read_is_undecodable_saying_why(registry):
    reader = SchemaRegistry(registry.url)
    registry.schemas[4] = {"schema": "struct R {}", "schemaType": "THRIFT"}  # a kind no serializer writes
    registry.schemas[6] = {"schema": '{"type": "nope"}'}  # no Avro schema, though the registry says so
    cases = [
        (
            framed(9, CONTRACT, {"series": "a", "ts": 1, "values": {}}),
            "schema id 9: the registry does not have it",
        ),
        (b"\x00\x00\x00\x00\x04\x01\x02", "schema id 4 is THRIFT, and its payload is not JSON"),
        (b"\x00\x00\x00\x00\x01\xff\xff\xff", "Avro payload does not match schema id 1"),
        (b"\x00\x00\x00\x00\x06\x01", "schema id 6 is not a valid Avro schema"),
    ]
    for raw, needle in cases:
        [err] = R.decode_message(raw, registry=reader)
        assert isinstance(err, R.RecordError) and err.reason == R.UNDECODABLE and needle in str(err), err
    [err] = R.decode_message(cases[0][0])  # no registry configured: says what to set
    assert "set it, or produce with the JSON Schema serializer" in str(
        err
    ) and "kafka.schema_registry_url" in str(err)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unreachable_registry_makes_records_wait_not_undecodable_asked_again_after_a_doubling_backoff():
    fake = FakeSchemaRegistry({})
    url = fake.url
    fake.close()  # nothing listens there now
    clock = Clock()
    reader = SchemaRegistry(url, timeout_s=1.0, retry_s=5.0, clock=clock)
    raw = framed(1, CONTRACT, {"series": "a", "ts": 1, "values": {"y": 2.0}})
    waits = []
    for _ in range(5):
        with pytest.raises(R.SchemaUnavailable, match="cannot be reached") as caught:
            R.decode_message(raw, registry=reader)
        waits.append(caught.value.retry_in_s)
        clock.now += caught.value.retry_in_s
    assert waits == [1.0, 2.0, 4.0, 5.0, 5.0]  # doubling from FIRST_RETRY_S, capped at retry_s
    fake = FakeSchemaRegistry({1: avro_schema(CONTRACT)})
    try:
        reader.url = fake.url  # the registry is back (here: on another port)
        clock.now -= 1.0
        with pytest.raises(R.SchemaUnavailable) as caught:
            R.decode_message(raw, registry=reader)
        assert (
            caught.value.retry_in_s == pytest.approx(1.0) and not fake.requests
        )  # not asked within the wait
        clock.now += 1.0
        [rec] = R.decode_message(raw, registry=reader)
        assert rec.values == {"y": 2.0} and fake.requests == ["/schemas/ids/1"]
        fake.failing = 503
        [again] = R.decode_message(raw, registry=reader)  # a schema once fetched needs no registry
        assert again == rec and fake.requests == ["/schemas/ids/1"]
        with pytest.raises(R.SchemaUnavailable) as caught:  # an id not fetched yet waits again …
            R.decode_message(
                framed(2, ROW, {"sensor_id": 1, "recorded_at": T0, "temp": decimal.Decimal("1.00")}),
                registry=reader,
            )
        assert caught.value.retry_in_s == 1.0  # … its backoff starting afresh after the registry answered
    finally:
        fake.close()


@pytest.mark.parametrize(
    ("status", "body", "kind", "needle"),
    [
        (404, b'{"error_code": 40403, "message": "Schema not found"}', R.RecordError, "does not have it"),
        (
            404,
            b"<html>Not Found</html>",
            R.SchemaUnavailable,
            "is kafka.schema_registry_url a Schema Registry",
        ),
        (401, b'{"error_code": 401}', R.SchemaUnavailable, "check kafka.schema_registry_auth"),
        (403, b"", R.SchemaUnavailable, "check kafka.schema_registry_auth"),
        (500, b"", R.SchemaUnavailable, "answered HTTP 500 (the registry is not serving)"),
        (503, b"", R.SchemaUnavailable, "answered HTTP 503"),
        (429, b"", R.SchemaUnavailable, "answered HTTP 429"),
        (200, b"<html>a login page</html>", R.SchemaUnavailable, "something that is not JSON"),
    ],
)
def test_only_the_registrys_own_not_found_rejects_a_record_any_other_trouble_makes_it_wait(
    registry, status, body, kind, needle
):
    """A record is bad for what it holds, not for the registry's trouble: an overloaded registry,
    wrong credentials or a URL that is not a registry's hold its records back (the worker reads
    them again later) rather than dead-letter every one of them."""
    registry.failing, registry.failing_body = status, body
    raw = framed(1, CONTRACT, {"series": "a", "ts": 1, "values": {"y": 2.0}})
    if kind is R.RecordError:
        [err] = R.decode_message(raw, registry=SchemaRegistry(registry.url))
        assert err.reason == R.UNDECODABLE and needle in str(err)
    else:
        with pytest.raises(R.SchemaUnavailable, match=re.escape(needle)):
            R.decode_message(raw, registry=SchemaRegistry(registry.url))


def test_the_registry_comes_from_the_kafka_section_and_its_secret_is_never_printed(registry):
    cfg = load_config(
        overrides={"kafka": {"schema_registry_url": registry.url + "/", "schema_registry_auth": "KEY:s3cret"}}
    )
    reader = registry_for(cfg.kafka)
    [rec] = R.decode_message(
        framed(1, CONTRACT, {"series": "a", "ts": 1, "values": {"y": 1.0}}), registry=reader
    )
    assert rec.series == "a" and registry.auth == ["Basic S0VZOnMzY3JldA=="]  # base64 of KEY:s3cret
    assert "s3cret" not in to_yaml(cfg) and "schema_registry_auth: '***'" in to_yaml(cfg)
    assert registry_for(load_config().kafka) is None


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.binary(max_size=40))
@example(payload=b"\x02\xd5\xe2\xfa\x88\xb1\xb1s")  # a timestamp-millis past year 9999: OverflowError
def test_any_payload_bytes_are_a_record_or_undecodable(registry, payload):
    """fastavro reads untrusted bytes: whatever it raises on them (EOF, bad UTF-8, an overflowing
    length) is the record's reason, never an error out of the decoder."""
    for item in R.decode_message(b"\x00\x00\x00\x00\x02" + payload, registry=_reader(registry.url)):
        assert isinstance(item, R.Record) or item.reason in R.REASONS


@functools.cache
def _reader(url: str) -> SchemaRegistry:
    """One reader per registry, so the schema is fetched once for all of hypothesis' examples."""
    return SchemaRegistry(url)
