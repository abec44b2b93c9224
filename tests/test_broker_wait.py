"""No broker at start: one clear line naming the address, bounded in rate; not ready, stoppable, a timeout."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from adaptcast.streams.broker_wait import BrokerUnreachable, probe_broker, wait_for_broker
from adaptcast.streams.config import KafkaConfig

DEAD = "127.0.0.1:1"  # nothing listens on port 1: connections are refused at once


class FakeClock:
    """Each probe costs one simulated second, so rates are checked without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def probe(self, _cfg: KafkaConfig, _timeout: float) -> str:
        self.now += 1.0
        return "connection refused"


def _wait(cfg: KafkaConfig, clock: FakeClock, **kw) -> bool:
    return wait_for_broker(cfg, threading.Event(), probe=clock.probe, clock=clock, retry_s=0, **kw)


def test_waiting_says_so_at_a_bounded_rate_naming_the_address(caplog):
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger="adaptcast.kafka"):
        assert _wait(KafkaConfig(bootstrap_servers=DEAD), clock, deadline=120.0, say_every_s=10.0) is False
    lines = [r.getMessage() for r in caplog.records]
    assert 2 <= len(lines) <= 120 / 10 + 1  # a 120 s wait, at most one line per 10 s
    assert all(DEAD in line and "connection refused" in line for line in lines)


def test_startup_timeout_raises_with_the_address():
    clock = FakeClock()
    with pytest.raises(BrokerUnreachable, match=r"127\.0\.0\.1:1 within kafka\.startup_timeout_s=5 s"):
        _wait(KafkaConfig(bootstrap_servers=DEAD, startup_timeout_s=5), clock)


def test_a_set_stop_event_ends_the_wait():
    stop = threading.Event()
    stop.set()
    cfg = KafkaConfig(bootstrap_servers=DEAD)
    assert wait_for_broker(cfg, stop, probe=lambda c, t: "connection refused") is False


def test_returns_once_a_broker_answers(caplog):
    answers = iter(["connection refused", "connection refused", None])
    with caplog.at_level(logging.WARNING, logger="adaptcast.kafka"):
        ok = wait_for_broker(
            KafkaConfig(bootstrap_servers=DEAD),
            threading.Event(),
            probe=lambda c, t: next(answers),
            retry_s=0,
        )
    assert ok and "answers after" in caplog.records[-1].getMessage()


def test_probe_names_the_refusal():
    assert probe_broker(KafkaConfig(bootstrap_servers=DEAD), 1.0) == "connection refused"


def _run(*flags: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "adaptcast.streams.cli", "run", "--bootstrap-servers", DEAD, *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": ""},
    )


KAFKA_PYTHON_LOG = re.compile(r"\skafka(\.\w+)+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) |backoff")


def _kafka_python_lines(stderr: str) -> list[str]:
    """Lines logged by kafka-python itself (logger ``kafka.*``) or its reconnect backoff messages."""
    return [line for line in stderr.splitlines() if KAFKA_PYTHON_LOG.search(line)]


@pytest.mark.slow
def test_cli_max_seconds_ends_the_wait():
    proc = _run("--max-seconds", "3", "--metrics-port", "0")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "nothing served" in out
    waiting = [line for line in err.splitlines() if "cannot reach Kafka" in line]
    assert waiting and all(DEAD in line for line in waiting)
    assert _kafka_python_lines(err) == []


@pytest.mark.slow
def test_cli_startup_timeout_exits_2_naming_the_address():
    proc = _run("--startup-timeout", "1", "--metrics-port", "0")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2, err
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and DEAD in errors[0] and "startup_timeout_s" in errors[0]
    assert "Traceback" not in err and _kafka_python_lines(err) == []


@pytest.mark.slow
def test_cli_not_ready_while_waiting_and_sigterm_stops_it():
    proc = _run("--metrics-port", "0")
    try:
        first = proc.stderr.readline()  # "adaptcast: metrics at URL; connecting to Kafka at …"
        assert "connecting to Kafka at 127.0.0.1:1" in first, first
        url = first.split("metrics at ")[1].split(";")[0].replace("/metrics", "/readyz")
        assert "cannot reach Kafka at 127.0.0.1:1" in proc.stderr.readline()
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(url, timeout=10)
        assert info.value.code == 503 and "kafka_connected" in info.value.read().decode()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "nothing served" in out
