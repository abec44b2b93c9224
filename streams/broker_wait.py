"""Waiting for Kafka at start: one clear line naming the address, at a bounded rate, until a broker answers.

A worker started before its broker (or pointed at a wrong address) neither hangs silently nor floods
the log with kafka-python's own reconnect messages: it probes, says why it cannot connect at most
once per ``say_every_s``, stops on a signal or at its deadline, and gives up with
:class:`BrokerUnreachable` after ``kafka.startup_timeout_s``.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_auth import check_login
from adaptcast.streams.kafka_io import bootstrap_servers, client_options, endpoint

log = logging.getLogger("adaptcast.kafka")
PROBE_TIMEOUT_S = 2.0


class BrokerUnreachable(RuntimeError):
    """No broker answered within ``kafka.startup_timeout_s``; the message names the address."""


@contextmanager
def quiet_kafka_logs(name: str = "kafka") -> Iterator[None]:
    """Silence kafka-python's logger ``name`` (all of it by default): its per-attempt connection
    errors while we report them ourselves, or its socket layer's noise while a client closes."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def probe_broker(cfg: KafkaConfig, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when a broker at the bootstrap address answers; otherwise why not, in a few words.

    Raises :class:`~adaptcast.streams.kafka_auth.KafkaAuthError` when it answers but requires or
    refuses our login: that does not pass by waiting.
    """
    reason = "no address"
    for item in bootstrap_servers(cfg).split(","):
        try:
            with socket.create_connection(endpoint(item), timeout=timeout_s):
                break
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    else:
        return reason.lower()
    from kafka import KafkaAdminClient

    timeout_ms = max(int(timeout_s * 1000), 200)
    options = client_options(cfg)
    try:
        with quiet_kafka_logs():
            admin = KafkaAdminClient(
                client_id="adaptcast-probe",
                bootstrap_timeout_ms=timeout_ms,
                request_timeout_ms=timeout_ms,
                **options,
            )
            admin.close()
    except Exception as exc:  # kafka-python raises many unrelated types while bootstrapping
        with quiet_kafka_logs():
            check_login(cfg, options, timeout_s)
        return f"the port accepts connections but no Kafka broker answered ({type(exc).__name__}: {exc})"
    return None


def wait_for_broker(
    cfg: KafkaConfig,
    stop: threading.Event,
    *,
    deadline: float | None = None,
    say_every_s: float = 10.0,
    retry_s: float = 1.0,
    probe: Callable[[KafkaConfig, float], str | None] = probe_broker,
    clock: Callable[[], float] = time.monotonic,
    beat: Callable[[], None] = lambda: None,
) -> bool:
    """Probe until a broker answers (True), or ``stop`` is set or ``deadline`` passes (False).

    ``deadline`` is a ``clock()`` time (``--max-seconds``). Raises :class:`BrokerUnreachable` once
    ``cfg.startup_timeout_s`` has passed. ``beat`` is called on every try: waiting is alive.
    """
    servers = bootstrap_servers(cfg)
    start, said = clock(), None
    while True:
        why = probe(cfg, PROBE_TIMEOUT_S)
        if why is None:
            if said is not None:
                log.warning("Kafka at %s answers after %.0f s; starting", servers, clock() - start)
            return True
        beat()
        now = clock()
        waited = now - start
        limit = cfg.startup_timeout_s
        if limit is not None and waited >= limit:
            raise BrokerUnreachable(
                f"no Kafka broker answered at {servers} within kafka.startup_timeout_s={limit:g} s "
                f"(last try: {why})"
            )
        if said is None or now - said >= say_every_s:
            patience = "until stopped" if limit is None else f"for up to {limit:g} s"
            log.warning(
                "cannot reach Kafka at %s: %s; retrying %s (waited %.0f s)", servers, why, patience, waited
            )
            said = now
        if (deadline is not None and now >= deadline) or stop.wait(retry_s):
            return False
