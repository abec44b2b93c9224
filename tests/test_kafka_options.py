"""Kafka client settings (bootstrap resolution, security options) and a kafka-python group-join workaround."""

from __future__ import annotations

import pytest
from kafka import KafkaConsumer
from kafka.future import Future

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_io import bootstrap_servers, client_options, rejoin_if_stranded


def test_bootstrap_from_config_then_environment(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "env-host:9092")
    assert bootstrap_servers(KafkaConfig(bootstrap_servers="cfg:1")) == "cfg:1"
    assert bootstrap_servers(KafkaConfig()) == "env-host:9092"
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS")
    with pytest.raises(ValueError, match="KAFKA_BOOTSTRAP_SERVERS"):
        bootstrap_servers(KafkaConfig())


def test_security_settings_reach_the_client():
    cfg = KafkaConfig(
        bootstrap_servers="a:1,b:2",
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="svc",
        sasl_password="pw",
        ssl_cafile="/etc/ca.pem",
    )
    opts = client_options(cfg)
    assert opts == {
        "bootstrap_servers": ["a:1", "b:2"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "svc",
        "sasl_plain_password": "pw",
        "ssl_cafile": "/etc/ca.pem",
    }
    plain = client_options(KafkaConfig(bootstrap_servers="a:1"))
    assert plain == {"bootstrap_servers": ["a:1"], "security_protocol": "PLAINTEXT"}


def test_a_join_that_finished_between_polls_is_rejoined_not_left_stranded():
    """kafka-python 3.0's coordinator, stranded as a loaded CI run left it: the leader's join done on
    the IO thread after poll() gave up waiting, with nothing left asking for a rejoin (no broker)."""
    consumer = KafkaConsumer(group_id="g", bootstrap_servers=["127.0.0.1:1"], api_version=(4, 0))
    try:
        consumer.subscribe(["t"])
        coordinator = consumer._coordinator
        coordinator._joined_subscription = {"t"}  # joined once: a changed subscription is no reason
        coordinator.rejoin_needed = False
        coordinator._join_task = Future()
        assert not rejoin_if_stranded(consumer)  # still running: the next poll waits for it
        coordinator._join_task.success(b"")
        assert not coordinator.need_rejoin()  # the stranded state: no poll would look at the result
        assert rejoin_if_stranded(consumer)
        assert coordinator.need_rejoin()
        assert not rejoin_if_stranded(consumer)  # asked once; the next poll's join collects it
    finally:
        consumer.close()
