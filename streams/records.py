"""Input records: decoding and validation of the JSON contract, with a reason code for every rejection."""

from __future__ import annotations

import contextlib
import json
import math
import re
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

from adaptcast.forecast.base import VALUE_LIMIT
from adaptcast.forecast.exports import number_text

# rejection reasons (the ``reason`` label of adaptcast_records_rejected_total)
UNDECODABLE = "undecodable"
NOT_OBJECT = "not_object"
MISSING_FIELD = "missing_field"
BAD_SERIES = "bad_series"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
NON_NUMERIC = "non_numeric"
NON_FINITE = "non_finite"
MISSING_VALUE = "missing_value"
UNKNOWN_SERIES = "unknown_series"
LATE = "late"
DUPLICATE = "duplicate"
OFF_GRID = "off_grid"  # further from the series' time grid than the tolerance (streams/grid.py)
REASONS = (
    UNDECODABLE,
    NOT_OBJECT,
    MISSING_FIELD,
    BAD_SERIES,
    BAD_TIMESTAMP,
    FUTURE_TIMESTAMP,
    NON_NUMERIC,
    NON_FINITE,
    MISSING_VALUE,
    UNKNOWN_SERIES,
    LATE,
    DUPLICATE,
    OFF_GRID,
)


class RecordError(ValueError):
    """A record that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


# the instants every later step can format (datetime's range, less a day for time zones)
MIN_TS_MS = int(datetime(1, 1, 2, tzinfo=UTC).timestamp() * 1000)
MAX_TS_MS = int(datetime(9999, 12, 30, tzinfo=UTC).timestamp() * 1000)


CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")  # C0, DEL, C1


def _printable(text: str) -> bool:
    """No control characters: a series id ends up in logs, file names and metrics."""
    return CONTROL_CHARACTERS.search(text) is None


def _brief(value: Any) -> str:
    """A short, safe rendering of a rejected value for the dead-letter message (no deep repr)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = (
            repr(value)
            if not isinstance(value, int) or abs(value) < 10**60
            else f"an integer of {value.bit_length()} bits"
        )
        return text[:64]
    return f"a {type(value).__name__}"


@dataclass(frozen=True, slots=True)
class Record:
    """One observation of one series: ``ts_ms`` is epoch milliseconds (UTC)."""

    series: str
    ts_ms: int
    values: dict[str, float]


TS_UNITS = {"ms": 1.0, "s": 1000.0, "us": 1e-3, "ns": 1e-6}  # a numeric ts's unit → milliseconds per unit
SECONDS_AS_MS = 10**11  # an epoch-ms ts below this is before March 1973: likely epoch seconds read as ms


# a zone's name after the time: Go's "… 00:00:00.5 +0100 CET" (its offset read, the name dropped), or
# " UTC"/" GMT" alone (Ruby, BigQuery); another name without an offset is not guessed
ZONE_NAME = re.compile(r"^(.*?\d)(?:\s+([+-]\d\d:?\d\d)\s+[A-Z]{2,5}|\s+(?:UTC|GMT))$")


def parse_timestamp(raw: Any, unit: str = "ms") -> int:
    """ISO-8601 (naive = UTC) or an epoch number in ``unit`` (:data:`TS_UNITS`), also written as
    text → epoch milliseconds. Text is read as ISO first, so ``"20240101"`` stays a date; other
    digits alone are a number (Python reads 13 of them, epoch milliseconds now, as a date and hour
    whenever the first 8 make a valid date: ``"1704070800000"`` would be 1704-07-08). A zone's
    name after the time is read as Go's ``time.Time.String()`` (``… +0100 CET``: the offset),
    Ruby's ``Time#to_s`` and BigQuery's exports (``… UTC``) write it (:data:`ZONE_NAME`)."""
    if isinstance(raw, str):
        try:
            if raw.isascii() and raw.isdigit() and len(raw) != len("YYYYMMDD"):
                raise ValueError(raw)
            text = raw.upper()
            if len(text) <= 64:  # a time is short; the pattern's cost grows with the square of the length
                text = ZONE_NAME.sub(r"\1\2", text)
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))  # RFC 3339 allows t and z
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            ts_ms = int(dt.timestamp() * 1000)
        except (ValueError, OverflowError):
            number = number_text(raw)
            if number is None:
                raise RecordError(
                    BAD_TIMESTAMP,
                    f"ts {raw[:64]!r} is not ISO-8601 (e.g. 2024-01-01T00:00:00Z) nor epoch {unit}",
                ) from None
            return parse_timestamp(int(number) if number.is_integer() else number, unit)
        if not MIN_TS_MS <= ts_ms <= MAX_TS_MS:
            raise RecordError(BAD_TIMESTAMP, f"ts {raw[:64]!r} is outside years 1 to 9999")
        return ts_ms
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        what = repr(raw) if isinstance(raw, bool) else type(raw).__name__
        raise RecordError(BAD_TIMESTAMP, f"ts must be ISO-8601 text or epoch {unit}, got {what}")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise RecordError(BAD_TIMESTAMP, f"ts is not finite: {raw!r}")
    ts_ms = raw if unit == "ms" else raw * TS_UNITS[unit]
    if not MIN_TS_MS <= ts_ms <= MAX_TS_MS:
        raise RecordError(BAD_TIMESTAMP, f"ts {raw!r} {unit} is outside years 1 to 9999{_unit_hint(raw)}")
    return int(ts_ms)


def _unit_hint(raw: float) -> str:
    """For an epoch number out of range in the configured unit: the unit it reads well in, if one
    puts it after 1973 (Debezium writes microseconds, Go's ``UnixNano`` nanoseconds)."""
    for unit, per in TS_UNITS.items():
        if SECONDS_AS_MS <= raw * per <= MAX_TS_MS:
            when = format_timestamp(int(raw * per))
            return f"; in {unit} it reads as {when}: set serving.ts_unit: {unit}"
    return ""


@lru_cache(maxsize=8192)
def format_timestamp(ts_ms: int) -> str:
    """Epoch milliseconds → ISO-8601 UTC with a ``Z`` (cached: many series share timestamps)."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def validate(
    obj: Any,
    required: tuple[str, ...] = (),
    now_ms: int | None = None,
    max_future_ms: int = 86_400_000,
    ts_unit: str = "ms",
    message_ts_ms: int | None = None,
) -> Record:
    """Check a decoded record against the contract; ``required`` value names must be present, and a
    numeric ``ts`` counts ``ts_unit`` since the epoch. A record without ``ts`` takes
    ``message_ts_ms`` when given (the Kafka message's own time, in ms whatever ``ts_unit``)."""
    if not isinstance(obj, dict):
        raise RecordError(NOT_OBJECT, f"record must be a JSON object, got {type(obj).__name__}")
    for key in ("series", "ts", "values"):
        if key not in obj and not (key == "ts" and message_ts_ms is not None):
            raise RecordError(
                MISSING_FIELD,
                f"record lacks field {key!r} (needs series, ts, values; with serving.series_from_key "
                "the message key names the series, with serving.ts_from_message its timestamp the time)",
            )
    series = obj["series"]
    if not isinstance(series, str) or not series or len(series) > 256 or not _printable(series):
        raise RecordError(
            BAD_SERIES,
            "series must be a non-empty string of at most 256 characters without control characters, "
            f"got {series if not isinstance(series, str) else series[:64]!r}",
        )
    ts_ms = parse_timestamp(obj["ts"], ts_unit) if "ts" in obj else parse_timestamp(message_ts_ms)
    if now_ms is not None and ts_ms > now_ms + max_future_ms:
        raise RecordError(
            FUTURE_TIMESTAMP,
            f"ts {format_timestamp(ts_ms)} is more than {max_future_ms // 1000} s in the future",
        )
    raw_values = obj["values"]
    if not isinstance(raw_values, dict) or not raw_values:
        raise RecordError(MISSING_FIELD, "values must be a non-empty object of name → number")
    values: dict[str, float] = {}
    for name, v in raw_values.items():
        if isinstance(v, str) and (from_text := number_text(v)) is not None:
            v = from_text
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise RecordError(NON_NUMERIC, f"value {name[:64]!r} is not a number: {_brief(v)}")
        try:
            number = float(v)
        except OverflowError:  # an integer beyond the float range
            number = math.inf
        if not math.isfinite(number):
            raise RecordError(NON_FINITE, f"value {name[:64]!r} is not finite: {_brief(v)}")
        if abs(number) >= VALUE_LIMIT:
            raise RecordError(
                NON_FINITE,
                f"value {name[:64]!r} is {number:.8g}, infinite in the loop's float32 rows "
                f"(±{VALUE_LIMIT:.8g} and beyond); send it in larger units",
            )
        values[str(name)] = number
    for name in required:
        if name not in values:
            raise RecordError(MISSING_VALUE, f"values lacks {name!r} (required: {', '.join(required)})")
    return Record(series, ts_ms, values)


REGISTRY_MAGIC = 0  # Confluent Schema Registry framing: this byte, a 4-byte schema id, then the payload
# AWS Glue Schema Registry framing: this byte, a compression byte (none or zlib), the 16-byte UUID of
# the schema version, then the payload
GLUE_MAGIC, GLUE_PLAIN, GLUE_ZLIB, GLUE_HEADER = 3, 0, 5, 18
MAX_INFLATED = 16 << 20  # a zlib payload inflating past this is refused, not read into memory


class SchemaUnavailable(Exception):
    """The writer's schema of a framed record cannot be had now (its registry does not answer, or
    refuses this client). The record is not bad: it is to be read again ``retry_in_s`` from now."""

    def __init__(self, message: str, retry_in_s: float):
        super().__init__(message)
        self.retry_in_s = retry_in_s


class FramedDecoder(Protocol):
    """Reads a payload in Schema Registry framing that is not JSON (streams/schema_registry.py):
    raises :class:`RecordError` for a record that cannot be read, :class:`SchemaUnavailable` while
    its schema cannot be had."""

    def decode(self, schema_id: int, payload: bytes) -> Any: ...


def _unframed(raw: bytes, registry: FramedDecoder | None) -> Any:
    """What a value that orjson refused holds: JSON inside Confluent Schema Registry framing (its
    JSON Schema serializer), Avro or Protobuf inside it read with the writer's schema from
    ``registry``, or JSON the standard library parses. No JSON text starts with a zero byte, so the
    framing is never mistaken. Avro or Protobuf without a registry is ``undecodable``, saying so.
    JSON inside AWS Glue Schema Registry framing (plain or zlib-compressed) is read too."""
    if len(raw) >= GLUE_HEADER and raw[0] == GLUE_MAGIC and raw[1] in (GLUE_PLAIN, GLUE_ZLIB):
        return _glue(raw)
    if len(raw) < 5 or raw[0] != REGISTRY_MAGIC:
        return _parse_slowly(raw)
    payload = raw[5:]
    if payload.lstrip()[:1] in (b"{", b"["):
        return _parse_slowly(payload)
    schema = int.from_bytes(raw[1:5], "big")
    if registry is not None:
        return registry.decode(schema, payload)
    raise RecordError(
        UNDECODABLE,
        f"Schema Registry framing (schema id {schema}) around a payload that is not JSON (Avro or "
        "Protobuf?); adaptcast reads JSON, and Avro and Protobuf given kafka.schema_registry_url: set "
        "it, or produce with the JSON Schema serializer or plain JSON",
    )


def _glue(raw: bytes) -> Any:
    """The JSON inside AWS Glue Schema Registry framing (what its serializer writes with dataFormat
    JSON, as MSK users' producers do), inflated first where the producer compressed it. Glue's Avro
    and Protobuf need their schema from AWS and are ``undecodable``, saying so."""
    framing = f"AWS Glue Schema Registry framing (schema version {uuid.UUID(bytes=raw[2:GLUE_HEADER])})"
    payload = raw[GLUE_HEADER:]
    if raw[1] == GLUE_ZLIB:
        inflate = zlib.decompressobj()
        try:
            payload = inflate.decompress(payload, MAX_INFLATED)
        except zlib.error as exc:
            raise RecordError(UNDECODABLE, f"{framing}: zlib: {exc}") from None
        if inflate.unconsumed_tail:
            raise RecordError(UNDECODABLE, f"{framing}: inflates past {MAX_INFLATED >> 20} MB")
    if payload.lstrip()[:1] in (b"{", b"["):
        return _parse_slowly(payload)
    raise RecordError(
        UNDECODABLE,
        f"{framing} around a payload that is not JSON (Avro or Protobuf?): adaptcast reads JSON inside "
        "it; Glue's Avro and Protobuf need their schema from AWS: produce with dataFormat JSON, or "
        "through a Confluent-compatible registry",
    )


def _parse_slowly(raw: bytes) -> Any:
    """The standard library's parse of what orjson refused (NaN/Infinity, huge integers, deep
    nesting, framing removed), or an ``undecodable`` error."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSON syntax, or an int of > 4300 digits
        raise RecordError(UNDECODABLE, f"not UTF-8 JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise RecordError(UNDECODABLE, "JSON nested too deeply") from None


def parse_json(raw: bytes, registry: FramedDecoder | None = None) -> Any:
    """A Kafka value's JSON (or Avro or Protobuf, given the ``registry``): orjson for the common case, the
    standard library or the framing's reader for what it refuses, ``undecodable`` for the rest."""
    try:
        return orjson.loads(raw) if raw[:1] != b"\x00" else _unframed(raw, registry)
    except orjson.JSONDecodeError:  # NaN/Infinity literals, huge integers, deep nesting: the standard parser
        return _unframed(raw, registry)


@dataclass(frozen=True)
class BytesFormat:
    """A record format read from a message's bytes, not parsed as JSON first (line protocol, OTLP's
    protobuf or JSON): ``read`` turns the bytes into records, each a contract object or the
    :class:`RecordError` of one that cannot be read."""

    read: Callable[[bytes], list[Any]]


def decode_message(
    raw: bytes | None,
    required: tuple[str, ...] = (),
    now_ms: int | None = None,
    max_future_ms: int = 86_400_000,
    ts_unit: str = "ms",
    shape: Callable[[Any], Any] | BytesFormat | None = None,
    key: bytes | None = None,
    message_ts_ms: int | None = None,
    registry: FramedDecoder | None = None,
) -> list[Record | RecordError]:
    """Bytes of a Kafka value → each record it holds, a :class:`Record` or the :class:`RecordError`
    that rejects it with a reason.

    A value holds one record, a JSON array of them (producers that batch readings), or what
    ``shape`` unpacks into several (streams/formats.py: Telegraf's batch format, an OTLP request);
    ``shape`` maps a producer's own JSON onto the contract first, or, a :class:`BytesFormat`, reads a
    format that is not JSON (InfluxDB line protocol, a line per record). An error of one of several
    records names which it is, and the others are kept. Given a message ``key`` (with
    ``serving.series_from_key``), a record without ``series`` takes it: the contract keys messages
    by series, and devices often leave it out of the value. Given ``message_ts_ms`` (with
    ``serving.ts_from_message``), a record without ``ts`` takes it: Kafka stamps every message.

    orjson parses the common case (5× faster than ``json``); what it refuses, the standard library
    parses or explains, so ``NaN``/``Infinity`` stay ``non_finite`` and error messages stay the same.
    JSON in Schema Registry framing is read (``_unframed``), Avro and Protobuf in it too given the
    ``registry`` that holds its schema, and a record in Kafka Connect's ``{"schema", "payload"}``
    envelope is its payload. A null value (a tombstone, as compacted
    topics and some connectors write) is ``undecodable``. While the ``registry`` cannot give a
    record's schema, :class:`SchemaUnavailable` is raised: the message is to be read again later.
    """
    try:
        objs = _objects(raw, shape, registry)
    except RecordError as err:
        return [err]
    out: list[Record | RecordError] = []
    for k, obj in enumerate(objs, 1):
        try:
            if isinstance(obj, RecordError):
                raise obj
            if key and isinstance(obj, dict) and "series" not in obj:
                with contextlib.suppress(UnicodeDecodeError):
                    obj = {**obj, "series": key.decode()}
            out.append(validate(obj, required, now_ms, max_future_ms, ts_unit, message_ts_ms))
        except RecordError as err:
            out.append(
                err if len(objs) == 1 else RecordError(err.reason, f"record {k} of {len(objs)}: {err}")
            )
    return out


def _objects(
    raw: bytes | None, shape: Callable[[Any], Any] | BytesFormat | None, registry: FramedDecoder | None
) -> list[Any]:
    """The records a Kafka value holds, each a contract object or the error of one that is not."""
    if raw is None:
        raise RecordError(UNDECODABLE, "no value: a null Kafka value (a tombstone) carries no record")
    if isinstance(shape, BytesFormat):
        return shape.read(raw)
    obj = parse_json(raw, registry)
    if type(obj) is list and not obj:
        raise RecordError(NOT_OBJECT, "an empty JSON array holds no record")
    out: list[Any] = []
    for item in obj if type(obj) is list else [obj]:
        # Kafka Connect's JsonConverter with schemas.enable (its default) wraps records
        if type(item) is dict and len(item) == 2 and "payload" in item and "schema" in item:
            item = item["payload"]
        if shape is None:
            out.append(item)
            continue
        try:
            shaped = shape(item)
        except RecordError as err:
            shaped = err
        out.extend(shaped if isinstance(shaped, list) else [shaped])
    return out
