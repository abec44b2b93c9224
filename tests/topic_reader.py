"""Reading a whole topic back in tests, by assigned partitions rather than a subscription."""

from __future__ import annotations

import time
from typing import Any

from kafka import KafkaConsumer
from kafka.structs import TopicPartition


def read_topic(
    bootstrap: str | list[str], topic: str, expect_at_least: int = 0, timeout: float = 60.0, **options: Any
) -> list:
    """Every record of ``topic``, each partition read to its end offset, once at least
    ``expect_at_least`` are there (or at ``timeout``); ``options`` go to the consumer (security).

    Partitions are assigned, not subscribed: a group-less subscription whose first metadata answer
    missed the topic assigned nothing and slept until kafka-python's next refresh, five minutes on
    (seen once on a loaded box).
    """
    cons = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)
    try:
        deadline = time.monotonic() + timeout
        while not (parts := cons.partitions_for_topic(topic)):
            assert time.monotonic() < deadline, f"topic {topic} has no partition metadata after {timeout} s"
            time.sleep(0.2)
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        cons.assign(tps)
        cons.seek_to_beginning(*tps)
        out: list = []
        while True:
            ends = cons.end_offsets(tps)
            while any(cons.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
                for msgs in cons.poll(timeout_ms=500).values():
                    out.extend(msgs)
            if len(out) >= expect_at_least or time.monotonic() >= deadline:
                return out
            time.sleep(0.2)
    finally:
        cons.close()
