"""``adaptcast replay``: produce a live feed from a file or a scenario, paced by rate or speed-up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_io import KafkaSink


def paced(
    records: list[dict[str, Any]],
    rate: float | None,
    speedup: float | None,
    clock=time.monotonic,
    sleep=time.sleep,
) -> Iterator[dict[str, Any]]:
    """Yield records at most ``rate`` per second, or at their timestamps' spacing divided by ``speedup``."""
    start = clock()
    first_ts: float | None = None
    for i, rec in enumerate(records):
        if rate:
            due = start + i / rate
        elif speedup:
            ts = _seconds(rec["ts"])
            first_ts = ts if first_ts is None else first_ts
            due = start + (ts - first_ts) / speedup
        else:
            due = start
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        yield rec


def _seconds(ts: Any) -> float:
    from adaptcast.streams.records import parse_timestamp

    return parse_timestamp(ts) / 1000


def replay(
    records: list[dict[str, Any]],
    cfg: KafkaConfig,
    topic: str,
    rate: float | None = None,
    speedup: float | None = None,
    progress: bool = False,
) -> int:
    """Send every record (key = series) to ``topic``; returns how many the broker acknowledged."""
    from tqdm import tqdm

    sink = KafkaSink(cfg, client_id="adaptcast-replay", topics={"--topic": topic})
    sent = 0
    try:
        for rec in tqdm(paced(records, rate, speedup), total=len(records), unit="rec", disable=not progress):
            sink.send(topic, str(rec["series"]), rec)
            sent += 1
            if sent % 1000 == 0:
                sink.flush()
        sink.flush()
    finally:
        sink.close()
    return sent
