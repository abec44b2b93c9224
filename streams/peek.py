"""What a worker would make of the input topic's newest records, told before it is deployed.

``adaptcast peek`` reads the last records of each input partition (without a consumer group, so
the workers' offsets are untouched) and decodes them exactly as a worker with the same config
would: which series they hold and how far apart their readings are, which values they carry, what
would be dead-lettered and why. Where records do not read, it tries the settings that would read
them (another record format, the series from the message key, the time from Kafka, a time unit)
and says which flags to add, and which targets the records offer.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptcast.streams.calendar import describe
from adaptcast.streams.config import Config, ServingConfig
from adaptcast.streams.formats import NAMED_FIELDS, SHAPES, shape_for
from adaptcast.streams.records import (
    MISSING_VALUE,
    TS_UNITS,
    FramedDecoder,
    Record,
    decode_message,
    format_timestamp,
)
from adaptcast.streams.regular import file_period
from adaptcast.streams.topic_history import Message, worker_messages

SHOWN = 10  # series listed by name in the report; the rest are counted
PROBED = 300  # messages the other settings are tried on


@dataclass
class Reading:
    """What one way of reading the messages made of them."""

    records: int = 0
    rejected: Counter[str] = field(default_factory=Counter)  # reason → records
    examples: dict[str, str] = field(default_factory=dict)  # reason → the first such record's error
    stamps: dict[str, list[int]] = field(default_factory=dict)  # series → its readings' times
    values: Counter[str] = field(default_factory=Counter)  # value name → records carrying it
    newest: Record | None = None

    @property
    def total(self) -> int:
        return self.records + sum(self.rejected.values())


def read_as(
    messages: list[Message], serving: ServingConfig, required: tuple[str, ...], registry: FramedDecoder | None
) -> Reading:
    """The records of ``messages`` as a worker reading them with ``serving`` and ``required`` values would."""
    shape = shape_for(serving.record_format, serving.series_field, serving.time_field, serving.otlp_quantiles)
    now_ms, future_ms = int(time.time() * 1000), int(serving.max_future_s * 1000)
    out = Reading()
    for key, raw, stamp in worker_messages(serving, messages):
        for rec in decode_message(
            raw, required, now_ms, future_ms, serving.record_ts_unit, shape, key, stamp, registry
        ):
            if isinstance(rec, Record):
                out.records += 1
                out.stamps.setdefault(rec.series, []).append(rec.ts_ms)
                out.values.update(rec.values.keys())
                if out.newest is None or rec.ts_ms >= out.newest.ts_ms:
                    out.newest = rec
            else:
                out.rejected[rec.reason] += 1
                out.examples.setdefault(rec.reason, str(rec))
    return out


Change = tuple[str, str, dict[str, Any]]  # an option, its value, and the config it sets


def alternatives(serving: ServingConfig) -> list[tuple[Change, ...]]:
    """Settings other than ``serving`` that may read records it does not: every combination of
    another record format, the series from the key, the time from Kafka and another time unit,
    those with fewer changes first."""
    formats: list[Change | None] = [None]
    for fmt in SHAPES:
        if fmt != serving.record_format:
            fields = {} if fmt in NAMED_FIELDS else {"series_field": None, "time_field": None}
            formats.append(("--record-format", fmt, {"record_format": fmt, **fields}))
    keys = [
        None,
        *([] if serving.series_from_key else [("--series-from-key", "", {"series_from_key": True})]),
    ]
    stamps = [
        None,
        *([] if serving.ts_from_message else [("--ts-from-message", "", {"ts_from_message": True})]),
    ]
    units = [None, *(("--ts-unit", u, {"ts_unit": u}) for u in TS_UNITS if u != serving.ts_unit)]
    combos = [
        tuple(c for c in combo if c is not None) for combo in itertools.product(formats, keys, stamps, units)
    ]
    return sorted((c for c in combos if c), key=len)


def changed(serving: ServingConfig, changes: tuple[Change, ...]) -> ServingConfig:
    """``serving`` with ``changes``, validated as a config is (an influx format's unit follows it)."""
    update = {k: v for _, _, u in changes for k, v in u.items()}
    return ServingConfig.model_validate({**serving.model_dump(exclude_unset=True), **update})


def better_settings(
    messages: list[Message], serving: ServingConfig, registry: FramedDecoder | None, sample: int = PROBED
) -> tuple[dict[str, str], Reading] | None:
    """The options that read the most records of ``messages`` (any values; tried on up to
    ``sample`` of them, spread over all), the fewest changes winning a tie, and what they read;
    None where no change reads more than ``serving``."""
    probe = messages[:: max(1, len(messages) // sample)][:sample]
    best: tuple[Change, ...] = ()
    most = read_as(probe, serving, (), registry).records
    for changes in alternatives(serving):
        n = read_as(probe, changed(serving, changes), (), registry).records
        if n > most:
            best, most = changes, n
    if not best:
        return None
    return {o: v for o, v, _ in best}, read_as(messages, changed(serving, best), (), registry)


@dataclass
class Report:
    """A peek's findings: the configured reading, and better ones where there are."""

    topic: str
    messages: int
    per_partition: int  # the newest this many messages of each partition were read
    reading: Reading
    targets: tuple[str, ...]
    step_ms: dict[str, int]  # series → the step its grid would have
    better: tuple[dict[str, str], Reading] | None  # options that read more (any values), and what they read
    offered: Counter[str]  # value names the records offer, read with the best settings

    def as_dict(self) -> dict[str, Any]:
        r = self.reading
        return {
            "topic": self.topic,
            "messages": self.messages,
            "per_partition": self.per_partition,
            "targets": list(self.targets),
            "records": r.records,
            "rejected": dict(r.rejected),
            "examples": r.examples,
            "series": {
                s: {"records": len(ts), "step": describe(self.step_ms[s])} for s, ts in r.stamps.items()
            },
            "values": dict(r.values),
            "better": None
            if self.better is None
            else {"options": self.better[0], "records": self.better[1].records},
            "offered_values": dict(self.offered),
        }


def peek(cfg: Config, messages: list[Message], per_partition: int, registry: FramedDecoder | None) -> Report:
    """What a worker configured by ``cfg`` would make of ``messages``, the newest ``per_partition``
    of each input partition."""
    serving, targets = cfg.serving, tuple(cfg.model.channels)
    reading = read_as(messages, serving, targets, registry)
    better = better_settings(messages, serving, registry) if reading.rejected else None
    if better is not None:
        offered = better[1].values
    else:  # with nothing rejected, the targets' reading is the one of any values
        offered = read_as(messages, serving, (), registry).values if reading.rejected else reading.values
    rules = cfg.grid.rules(cfg.model.lookback)
    steps = {
        s: file_period(np.unique(np.asarray(ts, dtype=np.int64)), rules) for s, ts in reading.stamps.items()
    }
    return Report(
        cfg.kafka.input_topic, len(messages), per_partition, reading, targets, steps, better, offered
    )


def text(report: Report, servers: str, serving: ServingConfig) -> str:
    """The report as a person reads it."""
    r = report.reading
    how = f"record format {serving.record_format}, target {', '.join(report.targets)}"
    lines = [
        f"{report.messages} messages of {report.topic} at {servers} (the newest {report.per_partition} of "
        f"each partition), read as a worker would ({how}):",
        f"  {r.records} of {r.total} records read, {r.total - r.records} would be dead-lettered",
    ]
    if r.stamps:
        named = [
            f"{s} ({len(ts)} readings, every {describe(report.step_ms[s])})"
            for s, ts in list(r.stamps.items())[:SHOWN]
        ]
        more = f", and {len(r.stamps) - SHOWN} more" if len(r.stamps) > SHOWN else ""
        lines.append(f"  {len(r.stamps)} series: " + "; ".join(named) + more)
        lines.append("  values: " + ", ".join(f"{v} ({r.values[v]})" for v in _by_count(r.values)))
    if r.newest is not None:
        values = ", ".join(f"{k}={v:g}" for k, v in r.newest.values.items())
        lines.append(f"  newest: {r.newest.series} at {format_timestamp(r.newest.ts_ms)}: {values}")
    for reason, n in r.rejected.most_common():
        lines.append(f"  {reason}: {n}, e.g. {r.examples[reason]}")
    options: dict[str, str] = {}
    if report.better is not None:
        options, b = report.better
        lines.append(f"  with {_flags(options)}: {b.records} of {b.total} records read")
    offered = _by_count(report.offered)
    if offered and (options or r.rejected.get(MISSING_VALUE)):
        lines.append("  the records offer the values: " + ", ".join(offered))
        target = report.targets[0] if report.targets[0] in offered else offered[0]
        lines.append(f"  add: {_flags({**options, '--target': target})}")
    return "\n".join(lines)


def _flags(options: dict[str, str]) -> str:
    """Options as a command line writes them."""
    return " ".join(f"{o} {v}" if v else o for o, v in options.items())


def _by_count(counts: Counter[str]) -> list[str]:
    """The names counted, the most counted first, alphabetically among equals."""
    return sorted(counts, key=lambda name: (-counts[name], name))
