"""OpenTelemetry metrics in OTLP's JSON encoding, as readings of series.

An ``ExportMetricsServiceRequest`` (``{"resourceMetrics": [...]}``) is what the OpenTelemetry
Collector's Kafka exporter writes per message (``encoding: otlp_json``) and its file exporter per
line. Each data point of a gauge or a sum is a reading of its series; a histogram's, exponential
histogram's or summary's point gives two, of ``<name>_count`` and ``<name>_sum``, and one per
quantile asked for (``serving.otlp_quantiles``), of ``<name>{…,quantile="0.99"}``: a summary's
own, a histogram's interpolated in its buckets (:mod:`~adaptcast.forecast.histogram`). A series
is named as Prometheus writes one, ``name{attr="value",…}``, from the point's attributes and the
resource's :data:`SOURCE` attributes.
The live worker (streams/formats.py) and the file reader (forecast/data.py) share the reading of
a request; :func:`read_requests` reads a file of them, :func:`proto_readings` a request in protobuf
(``encoding: otlp_proto``, the exporter's default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import polars as pl
from google.protobuf.json_format import MessageToDict

from adaptcast.forecast import histogram
from adaptcast.forecast.base import InputError
from adaptcast.forecast.exports import is_number, long_frame, number_text, series_name

# The resource attributes that tell a source apart and name its series; the others (SDK and runtime
# versions, process ids) describe the source, and a series would split when they changed.
SOURCE = ("service.namespace", "service.name", "service.instance.id", "host.name")
NUMBERS = ("gauge", "sum")  # a data point's value is the reading
COUNTS = ("histogram", "exponentialHistogram", "summary")  # read as name_count and name_sum
NO_RECORDED_VALUE = 1  # DataPointFlags: the point marks a series gone stale; it holds no value

# why a request or a data point cannot be read, named as the live worker's dead-letter reasons
MISSING_FIELD, BAD_TIMESTAMP, NOT_OBJECT = "missing_field", "bad_timestamp", "not_object"


@dataclass(frozen=True)
class Reading:
    """One value of one series at one time; ``value`` as the request wrote it (a number, or a
    number as text: protobuf's JSON mapping writes 64-bit integers and ``NaN`` so), None where the
    point holds no recorded value (flagged so: the series went stale; or neither value field)."""

    series: str
    ts_ms: int
    value: Any


class Fault(ValueError):
    """Why a request, or one of its data points, holds no reading; ``reason`` as above."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def is_request(obj: Any) -> bool:
    """Whether a parsed JSON value is an OTLP metrics request."""
    return isinstance(obj, dict) and "resourceMetrics" in obj


def readings(request: Any, quantiles: tuple[float, ...] = ()) -> list[Reading | Fault]:
    """Every reading of a request, in order, with the ``quantiles`` of its histograms and
    summaries; a data point that holds none stands as its :class:`Fault`. A request whose
    structure is not OTLP's raises :class:`Fault`."""
    if not is_request(request):
        raise Fault(MISSING_FIELD, "otlp record lacks field 'resourceMetrics'")
    out: list[Reading | Fault] = []
    for resource_metrics in _list(request, "resourceMetrics"):
        resource = _attributes(_object(resource_metrics, "resource").get("attributes"))
        source = {k: resource[k] for k in SOURCE if k in resource}
        for scope in _list(resource_metrics, "scopeMetrics"):
            for metric in _list(scope, "metrics"):
                out.extend(_metric(metric, source, quantiles))
    return out


def _object(obj: dict[str, Any], field: str) -> dict[str, Any]:
    """``obj[field]`` where it is an object; an empty one where it is absent."""
    value = obj.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Fault(MISSING_FIELD, f"otlp {field} must be an object")
    return value


def _list(obj: dict[str, Any], field: str) -> list[dict[str, Any]]:
    items = obj.get(field) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise Fault(MISSING_FIELD, f"otlp request's {field} must be a list of objects")
    return items


def _attributes(items: Any) -> dict[str, str]:
    """OTLP's ``[{"key", "value": {"stringValue": …}}]`` as label → text."""
    if not items:
        return {}
    if not isinstance(items, list):
        raise Fault(MISSING_FIELD, "otlp attributes must be a list of key-value objects")
    out = {}
    for item in items:
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, dict) or "key" not in item:
            raise Fault(MISSING_FIELD, "otlp attributes must be a list of key-value objects")
        scalar = next(iter(value.values()), "") if len(value) == 1 else ""
        out[str(item["key"])] = str(scalar).lower() if isinstance(scalar, bool) else str(scalar)
    return out


def _metric(
    metric: dict[str, Any], source: dict[str, str], quantiles: tuple[float, ...]
) -> list[Reading | Fault]:
    name = metric.get("name")
    if not isinstance(name, str) or not name:
        return [Fault(MISSING_FIELD, "otlp metric lacks its name")]
    kind = next((k for k in (*NUMBERS, *COUNTS) if isinstance(metric.get(k), dict)), None)
    if kind is None:
        return [Fault(MISSING_FIELD, f"otlp metric {name!r} holds none of {', '.join((*NUMBERS, *COUNTS))}")]
    points = metric[kind].get("dataPoints") or []
    if not isinstance(points, list):
        return [Fault(MISSING_FIELD, f"otlp metric {name!r} has dataPoints that are not a list")]
    out: list[Reading | Fault] = []
    for point in points:
        try:
            out.extend(_point(name, kind, point, source, quantiles))
        except Fault as fault:
            out.append(fault)
    return out


def _point(
    name: str, kind: str, point: Any, source: dict[str, str], quantiles: tuple[float, ...]
) -> list[Reading | Fault]:
    if not isinstance(point, dict):
        raise Fault(NOT_OBJECT, f"otlp metric {name!r} has a data point that is not an object")
    labels = {**source, **_attributes(point.get("attributes"))}
    if "timeUnixNano" not in point:
        raise Fault(MISSING_FIELD, f"otlp data point of {name!r} lacks timeUnixNano")
    ts_ms = _nanos_as_ms(point["timeUnixNano"], name)
    flags = point.get("flags")
    stale = type(flags) is int and flags & NO_RECORDED_VALUE
    if kind in NUMBERS:
        return _of_point(name, kind, labels, ts_ms, stale, point.get("asDouble", point.get("asInt")))
    shares = _json_quantiles(name, kind, point, quantiles) if quantiles and not stale else {}
    # proto3's JSON leaves a zero count out
    return _of_point(name, kind, labels, ts_ms, stale, point.get("count", 0), point.get("sum"), shares)


def _of_point(
    name: str,
    kind: str,
    labels: dict[str, str],
    ts_ms: int,
    stale: Any,
    value: Any,
    total: Any = None,
    shares: dict[float, float | None] | Fault | None = None,
) -> list[Reading | Fault]:
    """A data point's readings: its value (a gauge's or sum's), or its count, its sum where it has
    one, and each quantile asked for that it has (``shares``: quantile → value, None where it counted
    nothing; or why its buckets cannot be read); one reading of no value where the point marks its
    series stale."""
    if stale:
        return [Reading(series_name(name, labels), ts_ms, None)]
    if kind in NUMBERS:
        return [Reading(series_name(name, labels), ts_ms, value)]
    values = [(f"{name}_count", value)] + ([] if total is None else [(f"{name}_sum", total)])
    out: list[Reading | Fault] = [Reading(series_name(n, labels), ts_ms, v) for n, v in values]
    if isinstance(shares, Fault):
        return [*out, shares]
    for q, v in (shares or {}).items():
        if v is not None:
            out.append(Reading(series_name(name, {**labels, "quantile": quantile_label(q)}), ts_ms, v))
    return out


def quantile_label(q: float) -> str:
    """A quantile as its series' ``quantile`` label writes it, as Prometheus does: 0.5, 0.99."""
    text = repr(float(q))
    return text.removesuffix(".0")


def _json_quantiles(
    name: str, kind: str, point: dict[str, Any], quantiles: tuple[float, ...]
) -> dict[float, float | None] | Fault:
    """The ``quantiles`` of a histogram's or summary's point in JSON, or why its buckets cannot be read."""
    try:
        if kind == "summary":
            own = {
                _json_float(v.get("quantile", 0)): _json_float(v.get("value", 0))
                for v in _list(point, "quantileValues")
            }
            return {q: own.get(q) for q in quantiles}
        low, high = (None if point.get(k) is None else _json_float(point[k]) for k in ("min", "max"))
        if kind == "histogram":
            bounds = [_json_float(b) for b in point.get("explicitBounds") or []]
            counts = [_json_float(c) for c in point.get("bucketCounts") or []]
            buckets = histogram.explicit_buckets(bounds, counts, low, high) if counts else []
        else:
            buckets = histogram.exponential_buckets(
                int(point.get("scale", 0)),
                _json_float(point.get("zeroCount", 0)),
                *(_json_side(point.get(side)) for side in ("positive", "negative")),
                zero_threshold=_json_float(point.get("zeroThreshold", 0)),
            )
    except (Fault, ValueError, TypeError) as exc:
        return Fault(MISSING_FIELD, f"otlp {kind} point of {name!r}: its buckets cannot be read ({exc})")
    return {q: histogram.quantile(q, buckets, low, high) for q in quantiles}


def _json_side(side: Any) -> tuple[int, list[float]]:
    """An exponential histogram's positive or negative buckets in JSON: (offset, counts)."""
    if side is None:
        return 0, []
    if not isinstance(side, dict):
        raise ValueError("buckets must be an object of offset and bucketCounts")
    return int(side.get("offset", 0)), [_json_float(c) for c in side.get("bucketCounts") or []]


def _json_float(value: Any) -> float:
    """A number of a point's buckets in JSON: a number, or text (64-bit counts are written so)."""
    kind = type(value)
    if kind is float or kind is int or (kind is str and value.isascii() and value.isdigit()):
        return float(value)  # the common cases first: a bucket has tens of them
    number = number_text(value) if isinstance(value, str) else None
    if number is None:
        raise ValueError(f"{str(value)[:32]!r} is not a number")
    return number


# protobuf's field names of a metric's data kinds, as the JSON mapping names them
PROTO_KINDS = {
    "gauge": "gauge",
    "sum": "sum",
    "histogram": "histogram",
    "exponential_histogram": "exponentialHistogram",
    "summary": "summary",
}


def proto_readings(request: Any, quantiles: tuple[float, ...] = ()) -> list[Reading | Fault]:
    """:func:`readings` of a request decoded by protobuf (opentelemetry-proto's
    ``ExportMetricsServiceRequest``), read from its objects rather than through protobuf's JSON
    mapping, which cost three quarters of the read. The same readings as of the request's JSON."""
    out: list[Reading | Fault] = []
    for resource_metrics in request.resource_metrics:
        resource = _proto_attributes(resource_metrics.resource.attributes)
        source = {k: resource[k] for k in SOURCE if k in resource}
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                out.extend(_proto_metric(metric, source, quantiles))
    return out


def _proto_metric(metric: Any, source: dict[str, str], quantiles: tuple[float, ...]) -> list[Reading | Fault]:
    name = metric.name
    if not name:
        return [Fault(MISSING_FIELD, "otlp metric lacks its name")]
    field = metric.WhichOneof("data")
    if field is None:
        return [Fault(MISSING_FIELD, f"otlp metric {name!r} holds none of {', '.join((*NUMBERS, *COUNTS))}")]
    kind = PROTO_KINDS[field]
    out: list[Reading | Fault] = []
    for point in getattr(metric, field).data_points:
        if not point.time_unix_nano:  # proto3 cannot tell zero from absent; the JSON mapping leaves it out
            out.append(Fault(MISSING_FIELD, f"otlp data point of {name!r} lacks timeUnixNano"))
            continue
        labels = {**source, **_proto_attributes(point.attributes)}
        stale = point.flags & NO_RECORDED_VALUE
        ts_ms = point.time_unix_nano // 1_000_000
        if kind in NUMBERS:
            which = point.WhichOneof("value")
            out.extend(
                _of_point(name, kind, labels, ts_ms, stale, None if which is None else getattr(point, which))
            )
        else:  # a summary's sum is always there; a histogram's is optional
            total = point.sum if kind == "summary" or point.HasField("sum") else None
            shares = _proto_quantiles(name, kind, point, quantiles) if quantiles and not stale else {}
            out.extend(_of_point(name, kind, labels, ts_ms, stale, point.count, total, shares))
    return out


def _proto_quantiles(
    name: str, kind: str, point: Any, quantiles: tuple[float, ...]
) -> dict[float, float | None] | Fault:
    """:func:`_json_quantiles` of a point decoded by protobuf."""
    if kind == "summary":
        own = {v.quantile: v.value for v in point.quantile_values}
        return {q: own.get(q) for q in quantiles}
    low, high = (getattr(point, k) if point.HasField(k) else None for k in ("min", "max"))
    if kind == "histogram":
        bounds, counts = list(point.explicit_bounds), list(point.bucket_counts)
        try:
            buckets = histogram.explicit_buckets(bounds, counts, low, high) if counts else []
        except ValueError as exc:
            return Fault(MISSING_FIELD, f"otlp {kind} point of {name!r}: its buckets cannot be read ({exc})")
    else:
        buckets = histogram.exponential_buckets(
            point.scale,
            point.zero_count,
            (point.positive.offset, list(point.positive.bucket_counts)),
            (point.negative.offset, list(point.negative.bucket_counts)),
            zero_threshold=point.zero_threshold,
        )
    return {q: histogram.quantile(q, buckets, low, high) for q in quantiles}


def _proto_attributes(items: Any) -> dict[str, str]:
    """Protobuf ``KeyValue`` attributes as label → text, as :func:`_attributes` reads their JSON."""
    out = {}
    for item in items:
        which = item.value.WhichOneof("value")
        if which == "string_value":
            out[item.key] = item.value.string_value
        elif which == "bool_value":
            out[item.key] = "true" if item.value.bool_value else "false"
        elif which in ("int_value", "double_value"):
            out[item.key] = str(getattr(item.value, which))
        elif which is None:
            out[item.key] = ""
        else:  # arrays, key-value lists and bytes: as their JSON mapping reads
            out.update(_attributes([MessageToDict(item)]))
    return out


def _nanos_as_ms(raw: Any, name: str) -> int:
    """``timeUnixNano`` (a number, or text as protobuf's JSON mapping writes 64-bit integers) → ms."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 20:
        return int(raw) // 1_000_000
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw >= 0:
        return int(raw) // 1_000_000
    raise Fault(BAD_TIMESTAMP, f"otlp data point of {name!r} has timeUnixNano {str(raw)[:32]!r}")


def may_be_requests(head: bytes) -> bool:
    """Whether a JSON file opening with ``head`` may hold OTLP metrics requests."""
    return b'"resourceMetrics"' in head


def read_requests(path: Path, quantiles: tuple[float, ...] = ()) -> pl.DataFrame:
    """A file of OTLP metrics requests in JSON (one per line, as the Collector's file exporter and
    a dump of its Kafka exporter's topic write them, or one in the whole file) as a long frame of
    ``series``, ``ts`` and ``value``. A point holding no recorded value (a stale marker) reads as
    missing; a point that cannot be read stops the read, naming its line."""
    data = path.read_bytes()
    try:
        whole = orjson.loads(data)
        requests = [(1, whole)]
    except orjson.JSONDecodeError:
        requests = []
        for number, line in enumerate(data.splitlines(), 1):
            if line.strip():
                try:
                    requests.append((number, orjson.loads(line)))
                except orjson.JSONDecodeError:
                    raise InputError(f"{path}: line {number} is not JSON ({line[:80]!r})") from None
    series: list[str] = []
    stamps: list[int] = []
    values: list[float] = []
    for number, request in requests:
        try:
            found = readings(request, quantiles)
        except Fault as fault:
            raise InputError(f"{path}: line {number}: {fault}") from None
        for r in found:
            if isinstance(r, Fault):
                raise InputError(f"{path}: line {number}: {r}")
            value = math.nan if r.value is None else _number(r.value)
            if value is None:
                raise InputError(f"{path}: line {number}: series {r.series} has value {str(r.value)[:32]!r}")
            series.append(r.series)
            stamps.append(r.ts_ms)
            values.append(value)
    if not series:
        raise InputError(f"{path}: the OTLP requests hold no data points")
    names = np.array(series, dtype=object)
    return long_frame([names], [np.array(stamps, dtype=np.int64)], [np.array(values)], path)


def _number(value: Any) -> float | None:
    """A reading's value as a float (NaN where the request wrote ``NaN``), or None if it is none;
    text read as the live worker reads it (:func:`~adaptcast.forecast.exports.number_text`)."""
    if is_number(value):
        return float(value)
    return number_text(value) if isinstance(value, str) else None
