"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from adaptcast.deploy.kafka import KafkaBroker, KafkaLauncherError, check_bootstrap

# ============================================================================ Kafka
# A real Apache Kafka broker for tests marked ``@pytest.mark.kafka``.
#
# * ``KAFKA_BOOTSTRAP_SERVERS`` set: tests use that cluster and nothing is
#   started; it must answer a metadata request within KAFKA_CHECK_TIMEOUT_S,
#   otherwise the whole session stops at once with the address in the message.
# * otherwise: adaptcast.deploy.kafka starts one single-node broker (free port, temp
#   state dir) for the session and stops it at the end, also on failure.
#
# Add further Kafka fixtures (topics, producers, consumers) inside this section.

KAFKA_ENV = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_CHECK_TIMEOUT_S = 5.0


def external_kafka_bootstrap() -> str | None:
    """The externally provided bootstrap address, or ``None`` when the suite should start its own broker."""
    value = os.environ.get(KAFKA_ENV, "").strip()
    return value or None


@pytest.fixture(scope="session")
def _external_kafka() -> str | None:
    """Check the external cluster once per session; stop the session fast if it is unreachable."""
    bootstrap = external_kafka_bootstrap()
    if bootstrap is None:
        return None
    try:
        check_bootstrap(bootstrap, timeout_s=KAFKA_CHECK_TIMEOUT_S)
    except KafkaLauncherError as exc:
        pytest.exit(
            f"{KAFKA_ENV}={bootstrap}: {exc}. Unset {KAFKA_ENV} to let the tests start their own broker.",
            returncode=pytest.ExitCode.USAGE_ERROR,
        )
    return bootstrap


@pytest.fixture(scope="session")
def kafka_broker(
    _external_kafka: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KafkaBroker]:
    """The session's own ``adaptcast.deploy.kafka.KafkaBroker`` (skipped when an external cluster is used)."""
    if _external_kafka is not None:
        pytest.skip(f"needs the suite's own broker; {KAFKA_ENV} points at an external cluster")
    broker = KafkaBroker(state_dir=tmp_path_factory.mktemp("kafka-broker"))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(_external_kafka: str | None, request: pytest.FixtureRequest) -> str:
    """Bootstrap address of the cluster under test (external, or the session's own broker)."""
    if _external_kafka is not None:
        return _external_kafka
    broker: KafkaBroker = request.getfixturevalue("kafka_broker")
    return broker.bootstrap


# ======================================================================== end Kafka


# ======================================================================= Prometheus
# The Debian ``prometheus`` package (prometheus, promtool) for tests marked ``@pytest.mark.prometheus``:
# installed on first use where apt-get runs as root (``make test`` installs it up front), else skipped.


@pytest.fixture(scope="session")
def prometheus_binary() -> str:
    """Path of the prometheus binary; promtool lies beside it."""
    from adaptcast.deploy.monitoring.prometheus import PrometheusUnavailable, ensure_installed

    try:
        return ensure_installed()
    except PrometheusUnavailable as exc:
        pytest.skip(f"no Prometheus: {exc}")


# =================================================================== end Prometheus
