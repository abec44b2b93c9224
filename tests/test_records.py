"""Record decoding: every malformed input gets its reason code, valid ones parse exactly."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from malformed import decode_one

from adaptcast.streams import records as R
from adaptcast.streams.formats import flat as flat_shape


def test_valid_record_iso_and_epoch_ms_agree():
    a = decode_one(b'{"series": "s1", "ts": "2024-01-01T01:00:00Z", "values": {"y": 1.5, "x": 2}}')
    b = decode_one(json.dumps({"series": "s1", "ts": 1704070800000, "values": {"y": 1.5, "x": 2}}).encode())
    assert a == b
    assert a.values == {"y": 1.5, "x": 2.0}
    assert R.format_timestamp(a.ts_ms) == "2024-01-01T01:00:00Z"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, R.UNDECODABLE),  # a tombstone (null value)
        (b"\xff\xfe", R.UNDECODABLE),
        (b"{not json", R.UNDECODABLE),
        (b"[1]", R.NOT_OBJECT),
        (b'{"ts": 1, "values": {"y": 1}}', R.MISSING_FIELD),
        (b'{"series": "", "ts": 1, "values": {"y": 1}}', R.BAD_SERIES),
        (b'{"series": 5, "ts": 1, "values": {"y": 1}}', R.BAD_SERIES),
        (b'{"series": "a", "ts": "yesterday", "values": {"y": 1}}', R.BAD_TIMESTAMP),
        (b'{"series": "a", "ts": true, "values": {"y": 1}}', R.BAD_TIMESTAMP),
        (b'{"series": "a", "ts": 1, "values": {"y": "1 kW"}}', R.NON_NUMERIC),
        (b'{"series": "a", "ts": 1, "values": {"y": NaN}}', R.NON_FINITE),
        (b'{"series": "a", "ts": 1, "values": {"y": Infinity}}', R.NON_FINITE),
        (b'{"series": "a", "ts": 1, "values": {"y": 1e300}}', R.NON_FINITE),  # beyond float32's rows
        (b'{"series": "a", "ts": 1, "values": {"y": "-3.5e38"}}', R.NON_FINITE),
        (b'{"series": "a", "ts": 1, "values": {}}', R.MISSING_FIELD),
        (b'{"series": "a", "ts": 1, "values": {"x": 1}}', R.MISSING_VALUE),
    ],
)
def test_rejections_carry_reason(raw, reason):
    with pytest.raises(R.RecordError) as info:
        decode_one(raw, required=("y",))
    assert info.value.reason == reason
    assert str(info.value)


def test_float32s_largest_value_is_a_value_and_one_past_it_is_not():
    """3.4028235e38 (float32's largest, as it prints) is kept; a value that rounds past it is refused."""
    assert (
        decode_one(b'{"series": "a", "ts": 1, "values": {"y": -3.4028235e38}}').values["y"] == -3.4028235e38
    )
    with pytest.raises(R.RecordError, match=r"'y' is 3.4028236e\+38, infinite in the loop's float32 rows"):
        decode_one(b'{"series": "a", "ts": 1, "values": {"y": 3.4028236e38}}')


def test_far_future_timestamp_rejected():
    now = 1_700_000_000_000
    decode_one(b'{"series": "a", "ts": 1700000000000, "values": {"y": 1}}', now_ms=now)
    with pytest.raises(R.RecordError) as info:
        decode_one(
            json.dumps({"series": "a", "ts": now + 2 * 86_400_000, "values": {"y": 1}}).encode(), now_ms=now
        )
    assert info.value.reason == R.FUTURE_TIMESTAMP


@pytest.mark.parametrize(
    ("raw", "unit"),
    [
        (1_704_070_800, "s"),
        (1_704_070_800.0, "s"),
        (1_704_070_800_000, "ms"),
        (1_704_070_800_000_000, "us"),
        (1_704_070_800_000_000_000, "ns"),
    ],
)
def test_numeric_ts_in_any_configured_unit(raw, unit):
    rec = decode_one(json.dumps({"series": "a", "ts": raw, "values": {"y": 1}}).encode(), ts_unit=unit)
    assert R.format_timestamp(rec.ts_ms) == "2024-01-01T01:00:00Z"


def test_a_fraction_of_a_second_and_a_unit_in_the_error():
    assert R.parse_timestamp(1_704_070_800.25, "s") == 1_704_070_800_250
    with pytest.raises(R.RecordError, match=r"ts 1e\+20 s is outside years 1 to 9999"):
        R.parse_timestamp(1e20, "s")
    with pytest.raises(R.RecordError, match="nor epoch s"):
        R.parse_timestamp("yesterday", "s")


@pytest.mark.parametrize(
    ("raw", "unit", "hint"),
    [
        (1_704_070_800_000_000, "ms", "us"),  # Debezium's MicroTimestamp
        (1_704_070_800_000_000_000, "ms", "ns"),  # Go's UnixNano
        (1_704_070_800_000, "s", "ms"),
    ],
)
def test_a_ts_in_another_unit_names_the_unit_it_reads_well_in(raw, unit, hint):
    with pytest.raises(
        R.RecordError, match=rf"in {hint} it reads as 2024-01-01T01:00:00Z: set serving\.ts_unit: {hint}"
    ):
        R.parse_timestamp(raw, unit)
    with pytest.raises(R.RecordError) as err:
        R.parse_timestamp(10**30, "ms")  # no unit makes it a date: no hint
    assert "serving.ts_unit" not in str(err.value)


def test_a_record_without_series_takes_its_message_key():
    raw = json.dumps({"ts": 1_704_070_800_000, "values": {"y": 1}}).encode()
    assert decode_one(raw, key=b"device-7").series == "device-7"
    assert (
        decode_one(json.dumps({"series": "own", "ts": 1, "values": {"y": 1}}).encode(), key=b"k").series
        == "own"
    )
    with pytest.raises(R.RecordError, match=r"with serving\.series_from_key the message key") as err:
        decode_one(raw)
    assert err.value.reason == R.MISSING_FIELD
    for key in (b"\xff\xfe", b""):  # a key that is not text, or empty, names nothing
        with pytest.raises(R.RecordError) as err:
            decode_one(raw, key=key)
        assert err.value.reason == R.MISSING_FIELD


def test_json_in_schema_registry_framing_is_read_and_other_payloads_are_named():
    body = json.dumps({"series": "a", "ts": 1704067200000, "values": {"y": 1.5}}).encode()
    framed = b"\x00" + (42).to_bytes(4, "big") + body  # what Confluent's JSON Schema serializer writes
    assert decode_one(framed) == decode_one(body)
    avro = b"\x00" + (7).to_bytes(4, "big") + b"\x02a\x80\x80\x9a\xd2\xc6c"
    with pytest.raises(R.RecordError, match=r"schema id 7.*not JSON \(Avro or Protobuf\?\)") as info:
        decode_one(avro)
    assert info.value.reason == R.UNDECODABLE
    with pytest.raises(R.RecordError, match="not UTF-8 JSON"):  # a short zero-led value is no framing
        decode_one(b"\x00{}")


def test_json_in_aws_glue_schema_registry_framing_is_read_plain_or_compressed_and_its_avro_is_named():
    """AWS Glue's serializer (MSK producers): version byte 3, compression (0, or 5 for zlib), the
    schema version's UUID, the payload; its JSON reads as plain JSON, its Avro or Protobuf says why not."""
    import uuid
    import zlib

    body = json.dumps({"series": "a", "ts": 1704067200000, "values": {"y": 1.5}}).encode()
    version = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
    head = version.bytes
    assert decode_one(b"\x03\x00" + head + body) == decode_one(body)
    assert decode_one(b"\x03\x05" + head + zlib.compress(body)) == decode_one(body)
    cases = [
        (
            b"\x03\x00" + head + b"\x02a\x80\x80",
            f"(schema version {version}) around a payload that is not JSON",
        ),
        (b"\x03\x05" + head + b"not zlib", "zlib: Error -3"),
        (
            b"\x03\x05" + head + zlib.compress(b"[" + b" " * (R.MAX_INFLATED + 1) + b"]"),
            "inflates past 16 MB",
        ),
    ]
    for raw, needle in cases:
        with pytest.raises(R.RecordError) as info:
            decode_one(raw)
        assert info.value.reason == R.UNDECODABLE and needle in str(info.value)


@given(flag=st.sampled_from([0, 5]), payload=st.binary(max_size=60))
def test_any_bytes_in_glue_framing_are_a_record_or_a_reason(flag, payload):
    for item in R.decode_message(bytes([3, flag]) + bytes(16) + payload):
        assert isinstance(item, R.Record) or item.reason in R.REASONS


def test_an_array_of_records_is_each_record_and_a_bad_one_is_named_alone():
    batch = [
        {"series": "a", "ts": 1_704_070_800_000, "values": {"y": 1}},
        {"series": "b", "ts": 1_704_070_800_000, "values": {"y": "1 kW"}},
        {"series": "c", "ts": 1_704_070_800_000, "values": {"y": 3}},
    ]
    a, b, c = R.decode_message(json.dumps(batch).encode(), required=("y",))
    assert (a.series, a.values, c.series, c.values) == ("a", {"y": 1.0}, "c", {"y": 3.0})
    assert isinstance(b, R.RecordError) and b.reason == R.NON_NUMERIC
    assert str(b).startswith("record 2 of 3: value 'y' is not a number")
    [empty] = R.decode_message(b"[]")
    assert empty.reason == R.NOT_OBJECT and "empty JSON array" in str(empty)
    keyed = R.decode_message(b'[{"ts": 1, "values": {"y": 1}}, {"ts": 2, "values": {"y": 2}}]', key=b"dev-1")
    assert [r.series for r in keyed] == ["dev-1", "dev-1"]  # the key names every record of the message


@pytest.mark.parametrize(
    ("text", "expect_ms"),
    [
        ("2024-01-01 00:00:00.5 +0000 UTC", 1_704_067_200_500),  # Go's time.Time.String()
        ("2024-01-01 01:00:00.123456789 +0100 CET", 1_704_067_200_123),  # a local zone: its offset
        ("2024-01-01 00:00:00 UTC", 1_704_067_200_000),  # Ruby's Time#to_s, BigQuery's exports
        ("2024-01-01 00:00:00 gmt", 1_704_067_200_000),
        ("2024-01-01 01:00:00 CET", None),  # a zone's name without its offset: not guessed
    ],
)
def test_a_time_with_its_zones_name_as_go_ruby_and_bigquery_write_it_is_read(text, expect_ms):
    if expect_ms is None:
        with pytest.raises(R.RecordError, match="is not ISO-8601"):
            R.parse_timestamp(text)
    else:
        assert R.parse_timestamp(text) == expect_ms


@given(ts_ms=st.integers(R.SECONDS_AS_MS, R.MAX_TS_MS), unit=st.sampled_from(["ms", "s"]))
@example(ts_ms=1_704_070_800_000, unit="ms")
def test_an_epoch_number_written_as_text_is_that_number_whatever_its_digits(ts_ms, unit):
    """Python's ISO parser takes 11 and 13 digits for a basic date and an hour (``"1704070800000"``,
    2024-01-01T01:00Z in milliseconds, would be 1704-07-08): digits alone are an epoch number
    unless they are the 8 of a basic date."""
    ts = ts_ms if unit == "ms" else ts_ms // 1000
    assert R.parse_timestamp(str(ts), unit) == R.parse_timestamp(ts, unit)


@pytest.mark.parametrize(
    ("ts", "value", "expect_ts", "expect_y"),
    [
        ('"1704067200000"', '"1.5"', 1704067200000, 1.5),  # protobuf's JSON mapping: int64 as text
        ('"2024-01-01t00:00:00z"', '"-2e1"', 1704067200000, -20.0),  # RFC 3339 allows lower case
        ("1704067200000", '"12345678901234567890"', 1704067200000, 1.2345678901234567e19),
        ('"20240101"', "1", 1704067200000, 1.0),  # ISO's basic date, not 20 million ms after 1970
    ],
    ids=["epoch-text", "lower-case-iso", "uint64-text", "basic-iso-date"],
)
def test_numbers_written_as_text_are_numbers(ts, value, expect_ts, expect_y):
    rec = decode_one(f'{{"series": "a", "ts": {ts}, "values": {{"y": {value}}}}}'.encode())
    assert (rec.ts_ms, rec.values["y"]) == (expect_ts, expect_y)
    with pytest.raises(R.RecordError, match="not finite") as info:  # protobuf's text for a NaN double
        decode_one(b'{"series": "a", "ts": 1, "values": {"y": "NaN"}}')
    assert info.value.reason == R.NON_FINITE
    for text in ("1_000", " 1", "0x10", "1" * 41):  # what float() would take but a number is not written as
        with pytest.raises(R.RecordError) as info:
            decode_one(f'{{"series": "a", "ts": 1, "values": {{"y": "{text}"}}}}'.encode())
        assert info.value.reason == R.NON_NUMERIC


def test_a_kafka_connect_envelope_is_read_as_its_payload():
    record = {"series": "a", "ts": 1704067200000, "values": {"y": 1.5}}
    schema = {"type": "struct", "fields": [{"field": "series", "type": "string"}], "optional": False}
    wrapped = json.dumps({"schema": schema, "payload": record}).encode()  # JsonConverter, schemas.enable
    assert decode_one(wrapped) == decode_one(json.dumps(record).encode())
    flat = {"schema": schema, "payload": {"series": "a", "ts": 1704067200000, "y": 1.5}}
    assert decode_one(json.dumps(flat).encode(), shape=flat_shape).values == {"y": 1.5}
