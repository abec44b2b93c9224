"""A producer thread offering the test records of ``test_service_kafka._records`` at a fixed rate."""

from __future__ import annotations

import json
import threading
import time

from kafka import KafkaProducer
from test_service_kafka import _records


class SteadyFeed(threading.Thread):
    """Offers one record per series per step, ``steps_per_s`` steps a second, until ``max_steps`` or
    :meth:`finish`; one idempotent acks=all producer, which buffers and retries while the broker is away."""

    def __init__(self, bootstrap: str, topic: str, n_series: int, steps_per_s: float, max_steps: int):
        super().__init__(daemon=True)
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, reconnect_backoff_max_ms=1000
        )
        self.topic, self.n_series, self.steps_per_s, self.max_steps = topic, n_series, steps_per_s, max_steps
        self.steps = self.offered = 0
        self.futures: list = []
        self._halt = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        for step in range(self.max_steps):
            if self._halt.wait(max(start + step / self.steps_per_s - time.monotonic(), 0.0)):
                return
            for rec in _records(self.n_series, 1, start_step=step):
                value = json.dumps(rec).encode()
                self.futures.append(self.producer.send(self.topic, key=rec["series"].encode(), value=value))
            self.steps, self.offered = step + 1, self.offered + self.n_series

    def finish(self, timeout_s: float = 120.0) -> list[dict]:
        """Stop offering; return every record offered, after checking the broker acknowledged each one."""
        self._halt.set()
        self.join(timeout=timeout_s)
        self.producer.flush(timeout=timeout_s)
        for f in self.futures:
            f.get(timeout=1)
        self.producer.close()
        return _records(self.n_series, self.steps)
