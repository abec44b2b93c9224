"""Kafka client settings: bootstrap resolution and security options passed through to kafka-python."""

from __future__ import annotations

import pytest

from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_io import bootstrap_servers, client_options


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
