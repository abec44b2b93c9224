"""Record shapes that common producers write, mapped onto the input contract (docs/architecture.md).

Metrics often reach Kafka through an agent rather than code written for adaptcast. Each shape here
turns one decoded JSON object into ``{"series", "ts", "values"}``, or into a list of them where one
message carries many readings (Telegraf's batch format, an OTLP request), a reading that cannot be
read standing in the list as its :class:`~adaptcast.streams.records.RecordError`;
:func:`~adaptcast.streams.records.validate` then checks each like any record, so a bad one is
dead-lettered with the same reasons; an object without the shape's own fields is
``missing_field``, named in the shape's terms.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any

from line_protocol_parser import LineFormatError, parse_line
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from adaptcast.forecast import otlp as otlp_request
from adaptcast.forecast.exports import is_number, line_series, number_text, series_name
from adaptcast.streams.records import (
    MISSING_FIELD,
    MISSING_VALUE,
    NOT_OBJECT,
    UNDECODABLE,
    BytesFormat,
    RecordError,
    parse_json,
)

Shape = Callable[[Any], "dict[str, Any] | list[dict[str, Any] | RecordError]"]


def _fields(obj: Any, shape: str, needed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        article = "an" if shape[0] in "aeiou" else "a"
        raise RecordError(
            NOT_OBJECT, f"{article} {shape} record must be a JSON object, got {type(obj).__name__}"
        )
    for key in needed:
        if key not in obj:
            raise RecordError(
                MISSING_FIELD, f"{shape} record lacks field {key!r} (needs {', '.join(needed)})"
            )
    return obj


def telegraf(obj: Any) -> dict[str, Any] | list[dict[str, Any] | RecordError]:
    """Telegraf's JSON serializer: ``{"name", "tags", "fields", "timestamp"}``, or a batch of them,
    ``{"metrics": [...]}`` (its Kafka output with ``use_batch_format``).

    The series is the line-protocol series key, ``name,tag=value,...`` with tags sorted; the values
    are the numeric fields (Telegraf also writes text and boolean fields, which are not forecast);
    the time is ``timestamp``, in Telegraf's ``json_timestamp_units`` (seconds unless set; match it
    with ``serving.ts_unit``).
    """
    if isinstance(obj, dict) and isinstance(obj.get("metrics"), list) and "name" not in obj:
        return [
            _or_error(_telegraf_metric, metric) for metric in obj["metrics"]
        ]  # a batch holds metrics only
    return _telegraf_metric(obj)


def _telegraf_metric(obj: Any) -> dict[str, Any]:
    obj = _fields(obj, "telegraf", ("name", "fields", "timestamp"))
    tags, fields = obj.get("tags") or {}, obj["fields"]
    if not isinstance(tags, dict) or not isinstance(fields, dict):
        raise RecordError(MISSING_FIELD, "telegraf record's tags and fields must be objects")
    return {**_line_record(str(obj["name"]), tags, fields), "ts": obj["timestamp"]}


def _line_record(name: str, tags: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A metric of InfluxDB's model as a record: the series is the line-protocol series key
    (:func:`~adaptcast.forecast.exports.line_series`), the values its numeric fields (text and
    boolean fields are not forecast)."""
    return {"series": line_series(name, tags), "values": {k: v for k, v in fields.items() if is_number(v)}}


def _influx_lines(raw: bytes) -> list[dict[str, Any] | RecordError]:
    """InfluxDB line protocol, a reading per line: ``cpu,host=web-1 usage_idle=91.5,usage_user=3i
    1704070800000000000``, what Telegraf's Kafka output writes by default (``data_format =
    "influx"``; several lines per message with ``use_batch_format``) and InfluxDB's own tools
    write. Named as :func:`telegraf` names a metric, so switching Telegraf between its JSON and
    line protocol keeps the series. The time is in nanoseconds unless ``serving.ts_unit`` says
    otherwise; a line without one takes the message's with ``serving.ts_from_message``. Blank and
    ``#`` comment lines are skipped; a line that is not line protocol is ``undecodable``."""
    try:
        text = raw.decode()
    except UnicodeDecodeError as exc:
        return [RecordError(UNDECODABLE, f"line protocol that is not UTF-8: {exc}")]
    out: list[dict[str, Any] | RecordError] = []
    for line in text.splitlines():
        try:
            point = parse_line(line) if line.strip() else None
        except LineFormatError as exc:
            out.append(RecordError(UNDECODABLE, f"not InfluxDB line protocol ({exc}): {line[:80]!r}"))
            continue
        if point is not None:  # None: a comment
            record = _line_record(point["measurement"], point["tags"], point["fields"])
            out.append(record if point["time"] is None else {**record, "ts": point["time"]})
    return out


influx = BytesFormat(_influx_lines)


def prometheus(obj: Any) -> dict[str, Any]:
    """prometheus-kafka-adapter's JSON (Prometheus remote write into Kafka):
    ``{"name", "labels", "value", "timestamp"}`` with the value as text.

    The series is ``name{label="value",...}`` as Prometheus writes a series, and as an export of it
    reads (:func:`~adaptcast.forecast.exports.series_name`); the one value is ``value`` (so
    ``model.target: value``); ``NaN`` (a stale marker) and infinities are dead-lettered as
    ``non_finite``.
    """
    obj = _fields(obj, "prometheus", ("name", "value", "timestamp"))
    labels = obj.get("labels") or {}
    if not isinstance(labels, dict):
        raise RecordError(MISSING_FIELD, "prometheus record's labels must be an object")
    series = series_name(str(obj["name"]), labels)
    # the value's text reads as any number written as text does (exports.number_text)
    return {"series": series, "ts": obj["timestamp"], "values": {"value": obj["value"]}}


FLAT_TIME = ("ts", "timestamp", "time")  # a flat record's time: the first of these fields it has


def flat(obj: Any, series_field: str = "series", time_field: str | None = None) -> dict[str, Any]:
    """One flat JSON object per reading, as most hand-written producers send: ``{"series": "pump-7",
    "ts": ..., "temp": 21.5, "rpm": 1200, "unit": "C"}``.

    The series is ``series_field`` (an integer id reads as its text; or the message key, with
    ``serving.series_from_key``; several fields comma-separated, ``host,metric``, make a series of
    each combination, named ``a/cpu``), the time ``time_field`` or else the first of ``ts``,
    ``timestamp``, ``time`` (or the message's timestamp, with ``serving.ts_from_message``), and the
    values every other field holding a number (also one written as text); text, booleans and
    nested fields are not forecast.
    """
    obj = _fields(obj, "flat", ())
    out: dict[str, Any] = {}
    ids = _series_fields(series_field)
    if len(ids) == 1 and series_field in obj:
        series = obj[series_field]
        out["series"] = str(series) if type(series) is int else series
    elif len(ids) > 1 and all(f in obj for f in ids):
        out["series"] = "/".join(str(obj[f]) for f in ids)
    stamps = FLAT_TIME if time_field is None else (time_field,)
    stamp = next((k for k in stamps if k in obj), None)
    if stamp is not None:
        out["ts"] = obj[stamp]
    out["values"] = {
        k: v
        for k, v in obj.items()
        if k not in ids
        and k not in stamps
        and (is_number(v) or (isinstance(v, str) and number_text(v) is not None))
    }
    return out


@cache
def _series_fields(series_field: str) -> tuple[str, ...]:
    """The field(s) ``serving.series_field`` names: one, or several separated by commas."""
    return tuple(f.strip() for f in series_field.split(",") if f.strip()) or (series_field,)


DEBEZIUM_READINGS = ("c", "r", "u")  # create, snapshot read, update: the row after holds a reading


def debezium(obj: Any, series_field: str = "series", time_field: str | None = None) -> dict[str, Any]:
    """A Debezium change event of a table of readings (``{"before", "after", "op", "ts_ms",
    "source"}``, also inside Kafka Connect's schema envelope): the row after an insert, snapshot
    read or update, read as a :func:`flat` row. A delete or truncate carries no reading and is
    dead-lettered, saying how to leave it out at the connector.
    """
    obj = _fields(obj, "debezium", ("op",))
    op = obj["op"]
    if op not in DEBEZIUM_READINGS:
        what = {"d": "a delete", "t": "a truncate"}.get(op, f"op {str(op)[:16]!r}")
        raise RecordError(
            MISSING_FIELD,
            f"debezium event is {what}, which carries no reading (readings are ops c, r, u); the "
            "connector's skipped.operations=d,t leaves deletes and truncates out",
        )
    row = obj.get("after")
    if not isinstance(row, dict):
        raise RecordError(MISSING_FIELD, "debezium event's 'after' must be the row as an object")
    out = flat(row, series_field, time_field)
    if not out["values"]:
        raise RecordError(
            MISSING_FIELD,
            "debezium row has no numeric column; DECIMAL and NUMERIC columns arrive as base64 bytes "
            "unless the connector sets decimal.handling.mode=double (or string)",
        )
    return out


def cloudevents(obj: Any, series_field: str = "series", time_field: str | None = None) -> dict[str, Any]:
    """A CloudEvent in structured JSON mode (``{"specversion", "id", "source", "type", "subject",
    "time", "data"}``), as Knative, Azure Event Grid and many IoT platforms publish: ``data`` read as
    a :func:`flat` row, or as adaptcast's own record when it holds ``values``. What the data does not
    say, the event does: the series is its ``subject``, else its ``source``; the time its ``time``.
    """
    obj = _fields(obj, "cloudevents", ("specversion",))
    data = obj.get("data")
    if not isinstance(data, dict):
        binary = " (data_base64 is not read: publish the data as JSON)" if "data_base64" in obj else ""
        raise RecordError(MISSING_FIELD, f"cloudevents event's data must be a JSON object{binary}")
    out = {**data} if "values" in data else flat(data, series_field, time_field)
    named = obj.get("subject") or obj.get("source")
    if "series" not in out and isinstance(named, str):
        out["series"] = named
    if "ts" not in out and "time" in obj:
        out["ts"] = obj["time"]
    return out


def _or_error(shape: Callable[[Any], Any], obj: Any) -> Any:
    """``shape(obj)``, or the error that rejects it (one reading of a batch does not sink the rest)."""
    try:
        return shape(obj)
    except RecordError as err:
        return err


def _otlp_message(raw: bytes, quantiles: tuple[float, ...] = ()) -> list[dict[str, Any] | RecordError]:
    """An OTLP metrics request, what the OpenTelemetry Collector's Kafka exporter writes: protobuf
    (``encoding: otlp_proto``, its default) or JSON (``otlp_json``), told apart by the first byte
    (a JSON request opens with ``{``, a protobuf one with its field tag); with the ``quantiles`` of
    its histograms and summaries."""
    if raw.lstrip()[:1] in (b"{", b"["):
        obj = parse_json(raw)
        items = obj if isinstance(obj, list) else [obj]
        return [r for item in items for r in _otlp_records(item, quantiles)]
    try:
        request = ExportMetricsServiceRequest.FromString(raw)
    except Exception:  # protobuf's DecodeError and kin, on bytes that are not such a message
        request = None
    if request is None or not request.resource_metrics:  # an empty request is zero bytes long
        raise RecordError(
            UNDECODABLE,
            "neither an OTLP metrics request in protobuf (ExportMetricsServiceRequest) nor in JSON",
        )
    return _reading_records(otlp_request.proto_readings(request, quantiles))


otlp = BytesFormat(_otlp_message)


def _otlp_records(obj: Any, quantiles: tuple[float, ...] = ()) -> list[dict[str, Any] | RecordError]:
    """An OTLP metrics request in JSON (``{"resourceMetrics": [...]}``, as protobuf's JSON mapping
    writes it): a reading of ``value`` per data point (:mod:`~adaptcast.forecast.otlp`)."""
    _fields(obj, "otlp", ("resourceMetrics",))
    try:
        return _reading_records(otlp_request.readings(obj, quantiles))
    except otlp_request.Fault as fault:
        raise RecordError(fault.reason, str(fault)) from None


def _reading_records(
    found: list[otlp_request.Reading | otlp_request.Fault],
) -> list[dict[str, Any] | RecordError]:
    """OTLP readings as contract records of ``value``, stamped in ms whatever ``serving.ts_unit``
    says; a point that holds no reading, its error."""
    return [
        RecordError(r.reason, str(r))
        if isinstance(r, otlp_request.Fault)
        else RecordError(MISSING_VALUE, f"otlp data point of {r.series} holds no recorded value")
        if r.value is None
        else {"series": r.series, "ts": r.ts_ms, "values": {"value": r.value}}
        for r in found
    ]


SHAPES: dict[str, Shape | BytesFormat | None] = {
    "adaptcast": None,
    "telegraf": telegraf,
    "prometheus": prometheus,
    "flat": flat,
    "debezium": debezium,
    "cloudevents": cloudevents,
    "otlp": otlp,
    "influx": influx,
}
OWN_TIME_UNIT = {"otlp": "ms"}  # shapes that convert the time themselves: serving.ts_unit does not apply
NAMED_FIELDS = ("flat", "debezium", "cloudevents")  # the shapes whose series and time fields can be named


def shape_for(
    record_format: str,
    series_field: str | None = None,
    time_field: str | None = None,
    otlp_quantiles: Sequence[float] = (),
) -> Shape | BytesFormat | None:
    """The shape of ``serving.record_format``, reading the series and time from the named fields
    (``serving.series_field``, ``serving.time_field``) where the shape has such fields, and OTLP's
    histograms' and summaries' ``serving.otlp_quantiles``."""
    shape = SHAPES[record_format]
    if record_format == "otlp" and otlp_quantiles:
        return BytesFormat(partial(_otlp_message, quantiles=tuple(otlp_quantiles)))
    if record_format not in NAMED_FIELDS or (series_field is None and time_field is None):
        return shape
    return partial(shape, series_field=series_field or "series", time_field=time_field)  # type: ignore[arg-type]
