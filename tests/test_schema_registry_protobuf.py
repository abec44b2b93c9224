"""Protobuf records in Schema Registry framing (streams/protobuf_schema.py): the schema's ``.proto``
text and its references fetched from a registry (a fake one, tests/fake_registry.py), compiled by
protoc, and the message the indexes name read by the record format like any JSON record."""

from __future__ import annotations

import functools
import struct

import pytest
from fake_registry import FakeSchemaRegistry, framed_protobuf, protobuf_schema
from google.protobuf import message_factory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adaptcast.streams import records as R
from adaptcast.streams.formats import SHAPES
from adaptcast.streams.protobuf_schema import compile_schema, message_indexes
from adaptcast.streams.schema_registry import SchemaRegistry

READING = """syntax = "proto3";
package plant;
message Reading { string sensor = 1; int64 at = 2; double y = 3; double z = 4; }
message Other { string x = 1; }
"""
UNITS = 'syntax = "proto3";\npackage acme.units;\nenum Unit { UNIT_UNSET = 0; KW = 1; }\n'
COMMON = """syntax = "proto3";
package acme.common;
import "acme/units.proto";
message Site { string name = 1; acme.units.Unit unit = 2; }
"""
ENVELOPE = """syntax = "proto3";
package acme;
import "acme/common.proto";
import "google/protobuf/timestamp.proto";
message Header { string id = 1; }
message Envelope {
  message Reading { acme.common.Site site = 1; google.protobuf.Timestamp at = 2; double kw = 3; }
  Header header = 1;
  repeated Reading readings = 2;
}
"""
AT_MS = 1_704_070_800_000  # 2024-01-01T01:00:00Z


@pytest.fixture
def registry():
    fake = FakeSchemaRegistry(
        {
            1: protobuf_schema(READING),
            2: protobuf_schema(ENVELOPE, {"acme/common.proto": ("acme/common.proto", 1)}),
            3: protobuf_schema('syntax = "proto3";\nmessage Broken { strin x = 1; }\n'),
            4: protobuf_schema(READING, {"acme/missing.proto": ("acme/missing.proto", 3)}),
            5: protobuf_schema(READING, {"../escape.proto": ("escape", 1)}),
            6: {"schemaType": "JSON", "schema": '{"type": "object"}'},
        },
        subjects={
            ("acme/common.proto", 1): protobuf_schema(COMMON, {"acme/units.proto": ("acme/units.proto", 2)}),
            ("acme/units.proto", 2): protobuf_schema(UNITS),
            ("escape", 1): protobuf_schema(UNITS),
        },
    )
    yield fake
    fake.close()


def test_a_protobuf_record_is_read_by_its_proto_field_names_a_zero_included_its_schema_fetched_once(registry):
    """The message as protoc-generated code would write it, spelled out byte by byte: a string,
    an int64 time, a double; ``z`` is 0.0, which proto3 leaves off the wire, and is still a value."""
    message = b"\x0a\x02s1" + b"\x10" + _varint(AT_MS) + b"\x19" + struct.pack("<d", 21.5)
    raw = framed_protobuf(1, [0], message)
    assert raw[5:6] == b"\x00"  # the first message's indexes: one zero byte
    reader = SchemaRegistry(registry.url)
    flat = SHAPES["flat"]
    for _ in range(3):
        [rec] = R.decode_message(
            raw, shape=lambda o: flat(o, "sensor", "at"), required=("y",), registry=reader
        )
        assert (rec.series, R.format_timestamp(rec.ts_ms), rec.values) == (
            "s1",
            "2024-01-01T01:00:00Z",
            {"y": 21.5, "z": 0.0},
        )
    assert registry.requests == ["/schemas/ids/1"]  # an id's schema never changes: asked once


def test_the_indexes_name_a_nested_message_whose_imports_are_fetched_and_compiled(registry):
    """Indexes [1, 0] are the second top-level message's first nested one; the schema imports a
    registered schema, which imports another, and a well-known type protoc knows itself."""
    reader = SchemaRegistry(registry.url)
    messages = compile_schema(ENVELOPE, {"acme/common.proto": COMMON, "acme/units.proto": UNITS})
    nested = message_factory.GetMessageClass(
        messages[0].file.pool.FindMessageTypeByName("acme.Envelope.Reading")
    )
    reading = nested(kw=3.25)
    reading.site.name, reading.site.unit = "plant-3", 1
    reading.at.FromMilliseconds(AT_MS)
    got = reader.decode(2, framed_protobuf(2, [1, 0], reading.SerializeToString())[5:])
    assert got == {"site": {"name": "plant-3", "unit": "KW"}, "at": "2024-01-01T01:00:00Z", "kw": 3.25}
    assert registry.requests == [
        "/schemas/ids/2",
        "/subjects/acme%2Fcommon.proto/versions/1",  # the subject is one path segment
        "/subjects/acme%2Funits.proto/versions/2",
    ]
    header = message_factory.GetMessageClass(messages[0])(id="h-1")
    assert reader.decode(2, framed_protobuf(2, [0], header.SerializeToString())[5:]) == {"id": "h-1"}
    assert len(registry.requests) == 3  # one compile serves every message of the schema


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (
            framed_protobuf(3, [0], b""),
            "schema id 3 is not a Protobuf schema protoc compiles: "
            'registry_schema.proto:2:18: "strin" is not defined',
        ),
        (
            framed_protobuf(4, [0], b""),
            "reference 'acme/missing.proto' (subject 'acme/missing.proto', version 3): the registry does "
            "not have it",
        ),
        (framed_protobuf(5, [0], b""), "reference name '../escape.proto' is not a relative .proto path"),
        (framed_protobuf(1, [2], b""), "message index 2: the schema has 2 top-level messages"),
        (framed_protobuf(1, [0, 0], b""), "message index 0: plant.Reading has 0 nested messages"),
        (
            framed_protobuf(1, [0], b"\x19\x01"),
            "Protobuf payload does not match schema id 1: it does not parse as plant.Reading",
        ),
        (framed_protobuf(1, [0], b"")[:5] + b"\x04", "the payload ends inside its message indexes"),
        (framed_protobuf(6, [0], b"\x01"), "schema id 6 is JSON, and its payload is not JSON"),
    ],
)
def test_what_cannot_be_read_is_undecodable_saying_why(registry, raw, needle):
    [err] = R.decode_message(raw, registry=SchemaRegistry(registry.url))
    assert isinstance(err, R.RecordError) and err.reason == R.UNDECODABLE and needle in str(err), err


def test_message_indexes_read_the_short_form_and_full_paths():
    assert message_indexes(b"\x00rest") == ((0,), b"rest")
    assert message_indexes(b"\x02\x00rest") == ((0,), b"rest")  # [0] written in full, as some clients do
    assert message_indexes(b"\x06\x02\x00\x04rest") == ((1, 0, 2), b"rest")


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.binary(max_size=40))
def test_any_payload_bytes_are_a_record_or_undecodable(registry, payload):
    """protobuf's runtime reads untrusted bytes: whatever they are, the result is a record or a reason."""
    raw = b"\x00\x00\x00\x00\x01" + payload
    shape = functools.partial(SHAPES["flat"], series_field="sensor", time_field="at")
    for item in R.decode_message(raw, shape=shape, registry=_reader(registry.url)):
        assert isinstance(item, R.Record) or item.reason in R.REASONS


@functools.cache
def _reader(url: str) -> SchemaRegistry:
    """One reader per registry, so the schema is compiled once for all of hypothesis' examples."""
    return SchemaRegistry(url)


def _varint(value: int) -> bytes:
    """``value`` ≥ 0 as a protobuf varint."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))
