"""The input topic's recent records as per-series history, for training off the serving path.

Records are read the way the live loop reads them: in offset order per partition, records the
loop would reject (undecodable, missing a channel, late, duplicate or off the grid for their
series) are skipped, and each series is put on its time grid (streams/regular.py), so a model
trained here sees the same rows a worker's own retrain would.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from difflib import get_close_matches
from typing import Any

import numpy as np
from kafka import KafkaConsumer
from kafka.structs import TopicPartition

from adaptcast.forecast.windows import segments
from adaptcast.streams.config import KafkaConfig, ServingConfig
from adaptcast.streams.formats import Shape
from adaptcast.streams.grid import GridRules
from adaptcast.streams.kafka_io import TOPIC_CHECK_S, bootstrap_servers, client_options
from adaptcast.streams.records import BytesFormat, FramedDecoder, Record, decode_message
from adaptcast.streams.regular import on_grid

Message = tuple[bytes | None, bytes | None, int | None]  # key, value, timestamp (ms; None: not to be used)


def recent_values(cfg: KafkaConfig, per_partition: int, timeout_s: float = 60.0) -> list[Message]:
    """``(key, value, timestamp)`` of the last ``per_partition`` records of each input partition,
    partition by partition.

    Reads without a consumer group, so the workers' committed offsets are untouched.
    """
    consumer = KafkaConsumer(
        enable_auto_commit=False, group_id=None, isolation_level=cfg.isolation_level, **client_options(cfg)
    )
    try:
        deadline = time.monotonic() + timeout_s
        missing_by = time.monotonic() + min(TOPIC_CHECK_S, timeout_s)
        while not (partitions := consumer.partitions_for_topic(cfg.input_topic)):
            if time.monotonic() > missing_by:
                raise ValueError(_no_such_topic(cfg, sorted(consumer.topics())))
            time.sleep(0.2)
        tps = [TopicPartition(cfg.input_topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        begins, ends = consumer.beginning_offsets(tps), consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(begins[tp], ends[tp] - per_partition))
        by_tp: dict[TopicPartition, list[Message]] = {tp: [] for tp in tps}
        pending = {tp for tp in tps if consumer.position(tp) < ends[tp]}
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {cfg.input_topic} took longer than {timeout_s} s")
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                by_tp[tp].extend(
                    (m.key, m.value, m.timestamp if m.timestamp >= 0 else None)
                    for m in msgs
                    if m.offset < ends[tp]
                )
            pending = {tp for tp in pending if consumer.position(tp) < ends[tp]}
        return [item for tp in tps for item in by_tp[tp]]
    finally:
        consumer.close()


def worker_messages(serving: ServingConfig, messages: Iterable[Message]) -> list[Message]:
    """``messages`` with what a worker takes from them: the key only with
    ``serving.series_from_key``, Kafka's timestamp only with ``serving.ts_from_message``."""
    return [
        (key if serving.series_from_key else None, value, ts if serving.ts_from_message else None)
        for key, value, ts in messages
    ]


def _no_such_topic(cfg: KafkaConfig, topics: list[str]) -> str:
    """That the input topic is not there, and which topics are (the nearest name first)."""
    close = get_close_matches(cfg.input_topic, topics, n=1, cutoff=0.6)
    shown = ", ".join(t for t in topics if not t.startswith("__")) or "none but internal ones"
    parts = [f"no topic {cfg.input_topic} (kafka.input_topic) at {bootstrap_servers(cfg)}"]
    parts += [f"did you mean {close[0]}?"] if close else []
    return "; ".join([*parts, f"topics there: {shown}"])


def series_histories(
    values: Iterable[bytes | Message | None],
    channels: list[str],
    max_future_ms: int = 86_400_000,
    rules: GridRules | None = None,
    ts_unit: str = "ms",
    shape: Shape | BytesFormat | None = None,
    registry: FramedDecoder | None = None,
) -> dict[str, np.ndarray]:
    """Series id → ``[rows, channels]`` float32 rows, from raw record values in offset order: each
    series' rows on its time grid, short gaps filled, the runs between longer gaps joined with a
    break row (``windows.joined``), as a worker's retrain has them.
    A ``(key, value, timestamp)`` message carries the series and the time of a record without them
    (None: not used)."""
    stamps: dict[str, list[int]] = {}
    rows: dict[str, list[list[float]]] = {}
    now_ms = int(time.time() * 1000)
    for item in values:
        key, raw, stamp = item if isinstance(item, tuple) else (None, item, None)
        records = decode_message(
            raw, tuple(channels), now_ms, max_future_ms, ts_unit, shape, key, stamp, registry
        )
        for rec in records:
            if isinstance(rec, Record):
                stamps.setdefault(rec.series, []).append(rec.ts_ms)
                rows.setdefault(rec.series, []).append([rec.values[c] for c in channels])
    out = {}
    for series, ts in stamps.items():
        values_ = np.asarray(rows[series], dtype=np.float32)
        if len(set(ts)) < 2:  # one point in time: no grid to place it on
            out[series] = values_[:1]
            continue
        g = on_grid(np.asarray(ts, dtype=np.int64), values_, rules or GridRules())
        out[series] = g.history()
    return out


def describe(histories: dict[str, Any]) -> dict[str, int]:
    """What was read, for the train command's report."""
    lengths = [sum(len(run) for run in segments(h)) for h in histories.values()]
    return {"series": len(lengths), "rows": int(sum(lengths)), "longest": max(lengths, default=0)}
