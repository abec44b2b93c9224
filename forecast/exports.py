"""Files as monitoring systems export them: Prometheus' HTTP API answer to a range query (also what
Thanos, Mimir and VictoriaMetrics answer there), VictoriaMetrics' JSON-lines export, and InfluxDB
line protocol.

Each reads as a long frame of ``series``, ``ts`` and its values, its series named as the live
worker's record format for that source names it (``prometheus``, ``influx``), so a model trained
or backtested on an export serves the same series from a live feed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from line_protocol_parser import LineFormatError, parse_line

from adaptcast.forecast.base import InputError

SERIES, TIME, VALUE = "series", "ts", "value"  # the long frame's columns, as the input contract names them


def series_name(name: str, labels: Mapping[str, Any]) -> str:
    """``name{label="value",...}`` as Prometheus writes a series: labels sorted, ``__name__`` left
    out, a value's backslashes, quotes and newlines escaped, no braces where no label is left."""
    inner = ",".join(f'{k}="{_escaped(str(labels[k]))}"' for k in sorted(labels) if k != "__name__")
    return f"{name}{{{inner}}}" if inner or not name else name


def is_number(value: Any) -> bool:
    """A JSON (or line-protocol) number: a boolean is not one, though Python counts it as an int."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# a number written as text, as protobuf's JSON mapping writes 64-bit integers and JavaScript BigInts
# print; at most 40 characters (any double's digits fit), so a megabyte of digits stays text
NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
# non-finite doubles as protobuf's JSON mapping (NaN, Infinity) and Go's strconv (+Inf) write them
NON_FINITE_TEXT = ("NaN", "Infinity", "-Infinity", "+Inf", "-Inf", "Inf")


def number_text(raw: str) -> float | None:
    """``raw`` as a float when it is a number written as text (``"1.5"``, ``"1704067200000"``)."""
    if raw in NON_FINITE_TEXT:
        return float(raw)
    return float(raw) if len(raw) <= 40 and NUMBER_TEXT.fullmatch(raw) else None


def line_series(measurement: str, tags: Mapping[str, Any]) -> str:
    """``measurement,tag=value,...`` with tags sorted: a series as InfluxDB line protocol keys it,
    and as the live worker's ``influx`` and ``telegraf`` record formats name it."""
    return ",".join([measurement, *(f"{k}={tags[k]}" for k in sorted(tags))])


def line_protocol(path: Path) -> pl.DataFrame:
    """A file of InfluxDB line protocol (``influx_inspect export``, ``influxd inspect export-lp``,
    Telegraf's file output) as a long frame: ``series`` (:func:`line_series`), ``ts`` (the
    lines' epoch times, whose unit their size tells) and a column per numeric field, missing where
    a line lacks it (text and boolean fields are not forecast). Blank lines, ``#`` comments and
    the export's ``CREATE DATABASE`` lines are skipped; a line that is not line protocol, or has no
    time, stops the read naming its number."""
    series: list[str] = []
    stamps: list[int] = []
    fields: dict[str, list[float | None]] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text or text.startswith("#") or text.startswith("CREATE "):
                continue
            try:
                point = parse_line(text)
            except LineFormatError as exc:
                raise InputError(
                    f"{path}: line {number} is not line protocol ({exc}): {text[:80]!r}"
                ) from None
            if point["time"] is None:
                raise InputError(f"{path}: line {number} has no time; export with timestamps")
            row = len(series)
            series.append(line_series(point["measurement"], point["tags"]))
            stamps.append(point["time"])
            for name, value in point["fields"].items():
                if is_number(value):
                    fields.setdefault(name, [None] * row).append(float(value))
            for column in fields.values():
                column.extend([None] * (row + 1 - len(column)))
    if not series:
        raise InputError(f"{path}: no line protocol in the file")
    taken = {k: v for k, v in fields.items() if k not in (SERIES, TIME)}
    return pl.DataFrame(
        {SERIES: pl.Series(series, dtype=pl.String), TIME: pl.Series(stamps, dtype=pl.Int64)}
        | {name: pl.Series(values, dtype=pl.Float64) for name, values in taken.items()}
    )


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def may_be_prometheus_answer(head: bytes) -> bool:
    """Whether a JSON file opening with ``head`` may be an answer of Prometheus' HTTP API: one
    object whose first keys are its own (``status`` first as Prometheus writes it, or ``data`` and
    ``result`` first as ``jq -S`` sorts them)."""
    keys = (b'"resultType"', b'"errorType"', b'"result"')
    return (
        head.lstrip()[:1] == b"{"
        and (b'"status"' in head or b'"data"' in head)
        and any(k in head for k in keys)
    )


def is_prometheus_answer(obj: Any) -> bool:
    """Whether a parsed JSON value is an answer of Prometheus' HTTP API (``status``, and ``data``
    or an error)."""
    return isinstance(obj, dict) and "status" in obj and ("data" in obj or "errorType" in obj)


def prometheus_answer(obj: dict[str, Any], path: Path) -> pl.DataFrame:
    """The series of a range query's answer (``curl …/api/v1/query_range``), a row per sample; a
    sample of ``NaN`` (Prometheus' stale marker) reads as missing."""
    if obj.get("status") != "success":
        error = obj.get("error", "no error given")
        raise InputError(
            f"{path}: Prometheus answered with an error ({error}); fix the query and export it again"
        )
    data = obj.get("data") or {}
    kind = data.get("resultType")
    if kind != "matrix":
        raise InputError(
            f"{path}: a Prometheus answer of type {kind!r} holds no time series (one sample per series at "
            "most); export a range with /api/v1/query_range (start, end and step) instead"
        )
    result = [r for r in data.get("result") or [] if isinstance(r, dict) and r.get("values")]
    if not result:
        raise InputError(
            f"{path}: the Prometheus answer holds no samples (an empty result, or native histograms "
            "only); widen the range or query a gauge or a rate"
        )
    names, stamps, values = [], [], []
    for r in result:
        pairs = r["values"]
        names.append(np.full(len(pairs), _named(r.get("metric")), dtype=object))
        stamps.append(np.rint(np.array([p[0] for p in pairs], dtype=np.float64) * 1000).astype(np.int64))
        values.append(np.array([p[1] for p in pairs], dtype=np.float64))  # numbers as text, NaN and ±Inf
    return long_frame(names, stamps, values, path)


VICTORIA_FIELDS = {"metric", "values", "timestamps"}  # a line of VictoriaMetrics' /api/v1/export


def is_victoria_export(df: pl.DataFrame) -> bool:
    """Whether JSON lines are VictoriaMetrics' export: a series per line, its values and times as lists."""
    return set(df.columns) >= VICTORIA_FIELDS and isinstance(df.schema["values"], pl.List)


def victoria_export(df: pl.DataFrame, path: Path) -> pl.DataFrame:
    """The series of VictoriaMetrics' JSON-lines export (times in epoch milliseconds)."""
    names, stamps, values = [], [], []
    for labels, vals, times in df.select("metric", "values", "timestamps").iter_rows():
        name, vals, times = _named(labels), vals or [], times or []
        if len(vals) != len(times):
            raise InputError(
                f"{path}: series {name} has {len(vals)} values for {len(times)} timestamps; export it again"
            )
        names.append(np.full(len(vals), name, dtype=object))
        stamps.append(np.asarray(times, dtype=np.int64))
        values.append(np.array([np.nan if v is None else v for v in vals], dtype=np.float64))
    return long_frame(names, stamps, values, path)


def _named(labels: Mapping[str, Any] | None) -> str:
    """The series an exported label set (``__name__`` among them) names."""
    return series_name(str((labels or {}).get("__name__") or ""), labels or {})


def long_frame(
    names: list[np.ndarray], stamps: list[np.ndarray], values: list[np.ndarray], path: Path
) -> pl.DataFrame:
    if not names or not sum(len(n) for n in names):
        raise InputError(f"{path}: the export holds no samples; widen its time range")
    return pl.DataFrame(
        {
            SERIES: pl.Series(np.concatenate(names), dtype=pl.String),
            TIME: pl.Series(np.concatenate(stamps)).cast(pl.Datetime("ms")),
            VALUE: np.concatenate(values),
        }
    )


COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")  # Prometheus' names for values that only grow


def counter_note(series: str) -> str | None:
    """Advice for a series named as Prometheus names a counter: a counter's value only grows (and
    falls to zero when its process restarts), so what is worth forecasting is its rate."""
    if not series.split("{", 1)[0].endswith(COUNTER_SUFFIXES):
        return None
    return (
        f"series {series!r} is named as Prometheus names a counter, whose value only grows and restarts "
        "from zero; forecast its rate instead: export rate(<name>[5m]), or, for a live feed, record "
        "it with a Prometheus recording rule (said once, for the first such series)"
    )
