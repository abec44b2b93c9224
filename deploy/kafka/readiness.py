"""Is a Kafka cluster there? TCP first, then a metadata request, so a wrong address fails fast and clearly."""

from __future__ import annotations

import re
import socket
import time
from typing import Any

from adaptcast.deploy.kafka.errors import KafkaLauncherError
from adaptcast.deploy.kafka.ports import DEFAULT_PORT

_ENDPOINT = re.compile(r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<host>[^:]+)(?::(?P<port>\d+))?")


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """Split ``host:port[,host:port...]`` (``[v6]:port`` allowed, port defaults to 9092)."""
    endpoints: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        if "://" in item:
            item = item.split("://", 1)[1]
        match = _ENDPOINT.fullmatch(item)
        if match is None:
            raise ValueError(f"not a host:port address: {item!r}")
        host = match.group("v6") or match.group("host")
        port = match.group("p6") or match.group("port") or DEFAULT_PORT
        endpoints.append((host, int(port)))
    if not endpoints:
        raise ValueError(f"no address in bootstrap string {bootstrap!r}")
    return endpoints


def tcp_reachable(bootstrap: str, timeout_s: float) -> bool:
    """True when at least one bootstrap endpoint accepts a TCP connection within ``timeout_s``."""
    for host, port in parse_bootstrap(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def describe_brokers(bootstrap: str, timeout_s: float, **client: Any) -> list[int]:
    """Ids of the cluster's unfenced brokers, read with kafka-python; raises when unreadable in time.

    ``client`` adds kafka-python settings, e.g. the SASL login of a secured listener.
    """
    from kafka import KafkaAdminClient  # lazy: fetch/down must work without kafka-python

    timeout_ms = max(int(timeout_s * 1000), 200)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="adaptcast-kafka-probe",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
        **client,
    )
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    brokers = cluster.get("brokers") or []
    return sorted(
        int(broker.get("broker_id", broker.get("node_id", -1)))
        for broker in brokers
        if not broker.get("is_fenced")
    )


def check_bootstrap(bootstrap: str, timeout_s: float = 5.0) -> list[int]:
    """Fail fast, naming the address, unless ``bootstrap`` serves metadata within ``timeout_s``."""
    start = time.monotonic()
    try:
        endpoints = parse_bootstrap(bootstrap)
    except ValueError as exc:
        raise KafkaLauncherError(f"Kafka bootstrap address {bootstrap!r} is malformed: {exc}") from exc
    if not tcp_reachable(bootstrap, timeout_s):
        raise KafkaLauncherError(
            f"Kafka at {bootstrap} is not reachable: no TCP connection to "
            f"{', '.join(f'{h}:{p}' for h, p in endpoints)} within {timeout_s:.0f}s"
        )
    remaining = max(timeout_s - (time.monotonic() - start), 1.0)
    try:
        brokers = describe_brokers(bootstrap, remaining)
    except Exception as exc:  # kafka-python raises several unrelated types here
        raise KafkaLauncherError(
            f"Kafka at {bootstrap} accepts connections but served no metadata within {timeout_s:.0f}s: {exc}"
        ) from exc
    if not brokers:
        raise KafkaLauncherError(f"Kafka at {bootstrap} reports no live brokers")
    return brokers
