"""The metrics server listens on ``metrics.host`` only: loopback by default, other addresses on request."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from adaptcast.streams.config import MetricsConfig
from adaptcast.streams.metrics import Metrics, MetricsServer


def outward_address() -> str | None:
    """This host's address on its default route (no packet is sent), or None without a non-loopback one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@contextmanager
def serving(host: str) -> Iterator[MetricsServer]:
    server = MetricsServer.from_config(Metrics(), MetricsConfig(host=host, port=0))
    assert server is not None
    try:
        yield server
    finally:
        server.close()


def answers(host: str, port: int) -> bool:
    """True when ``/healthz`` at host:port answers; False when the connection is refused."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_default_binds_loopback_only() -> None:
    with serving(MetricsConfig().host) as server:
        assert server.address[0] == "127.0.0.1"
        assert answers("127.0.0.1", server.port)
        outward = outward_address()
        if outward is not None:
            assert not answers(outward, server.port)


def test_all_addresses_when_told() -> None:
    with serving("0.0.0.0") as server:
        assert server.address[0] == "0.0.0.0"
        assert answers("127.0.0.1", server.port)
        outward = outward_address()
        if outward is not None:
            assert answers(outward, server.port)


def test_one_outward_address_when_told() -> None:
    outward = outward_address()
    if outward is None:
        pytest.skip("this host has no non-loopback IPv4 address")
    with serving(outward) as server:
        assert server.address[0] == outward
        assert answers(outward, server.port)
        assert not answers("127.0.0.1", server.port)
