"""SIGTERM/SIGINT as a stop event, kept free of heavy imports so a worker can honour them while it
waits for its broker, before torch is loaded."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

log = logging.getLogger("adaptcast.streams.service")


def stop_on_signals(event: threading.Event) -> None:
    """SIGTERM/SIGINT set ``event``: whoever waits on it (the broker wait, the serving loop) winds down."""

    def stop(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the current batch and shutting down", signum)
        event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
