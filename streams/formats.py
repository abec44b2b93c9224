"""Record shapes that common producers write, mapped onto the input contract (docs/architecture.md).

Metrics often reach Kafka through an agent rather than code written for adaptcast. Each shape here
turns one decoded JSON object into ``{"series", "ts", "values"}``; :func:`~adaptcast.streams.records.validate`
then checks it like any record, so a bad one is dead-lettered with the same reasons; an object
without the shape's own fields is ``missing_field``, named in the shape's terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adaptcast.streams.records import MISSING_FIELD, NOT_OBJECT, RecordError, number_text

Shape = Callable[[Any], dict[str, Any]]


def _fields(obj: Any, shape: str, needed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise RecordError(NOT_OBJECT, f"a {shape} record must be a JSON object, got {type(obj).__name__}")
    for key in needed:
        if key not in obj:
            raise RecordError(
                MISSING_FIELD, f"{shape} record lacks field {key!r} (needs {', '.join(needed)})"
            )
    return obj


def _is_number(v: Any) -> bool:
    """A JSON number (a boolean is not one, though Python counts it as an int)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def telegraf(obj: Any) -> dict[str, Any]:
    """Telegraf's JSON serializer: ``{"name", "tags", "fields", "timestamp"}``.

    The series is the line-protocol series key, ``name,tag=value,...`` with tags sorted; the values
    are the numeric fields (Telegraf also writes text and boolean fields, which are not forecast);
    the time is ``timestamp``, in Telegraf's ``json_timestamp_units`` (seconds unless set; match it
    with ``serving.ts_unit``).
    """
    obj = _fields(obj, "telegraf", ("name", "fields", "timestamp"))
    tags, fields = obj.get("tags") or {}, obj["fields"]
    if not isinstance(tags, dict) or not isinstance(fields, dict):
        raise RecordError(MISSING_FIELD, "telegraf record's tags and fields must be objects")
    return {
        "series": ",".join([str(obj["name"]), *(f"{k}={tags[k]}" for k in sorted(tags))]),
        "ts": obj["timestamp"],
        "values": {k: v for k, v in fields.items() if _is_number(v)},
    }


def prometheus(obj: Any) -> dict[str, Any]:
    """prometheus-kafka-adapter's JSON (Prometheus remote write into Kafka):
    ``{"name", "labels", "value", "timestamp"}`` with the value as text.

    The series is ``name{label="value",...}`` (labels sorted, ``__name__`` left out), as Prometheus
    writes a series; the one value is ``value`` (so ``model.target: value``); ``NaN`` (a stale
    marker) and infinities are dead-lettered as ``non_finite``.
    """
    obj = _fields(obj, "prometheus", ("name", "value", "timestamp"))
    labels = obj.get("labels") or {}
    if not isinstance(labels, dict):
        raise RecordError(MISSING_FIELD, "prometheus record's labels must be an object")
    inner = ",".join(f'{k}="{labels[k]}"' for k in sorted(labels) if k != "__name__")
    # the value's text reads as any number written as text does (records.number_text)
    return {"series": f"{obj['name']}{{{inner}}}", "ts": obj["timestamp"], "values": {"value": obj["value"]}}


FLAT_TIME = ("ts", "timestamp", "time")  # a flat record's time: the first of these fields it has


def flat(obj: Any) -> dict[str, Any]:
    """One flat JSON object per reading, as most hand-written producers send: ``{"series": "pump-7",
    "ts": ..., "temp": 21.5, "rpm": 1200, "unit": "C"}``.

    The series is ``series`` (or the message key, with ``serving.series_from_key``), the time the
    first of ``ts``, ``timestamp``, ``time`` (or the message's timestamp, with
    ``serving.ts_from_message``), and the values every other field holding a number (also one
    written as text); text, booleans and nested fields are not forecast.
    """
    obj = _fields(obj, "flat", ())
    out: dict[str, Any] = {} if "series" not in obj else {"series": obj["series"]}
    stamp = next((k for k in FLAT_TIME if k in obj), None)
    if stamp is not None:
        out["ts"] = obj[stamp]
    out["values"] = {
        k: v
        for k, v in obj.items()
        if k != "series"
        and k not in FLAT_TIME
        and (_is_number(v) or (isinstance(v, str) and number_text(v) is not None))
    }
    return out


SHAPES: dict[str, Shape | None] = {
    "adaptcast": None,
    "telegraf": telegraf,
    "prometheus": prometheus,
    "flat": flat,
}
