"""The SASL listener's settings and the launcher's checks of them (no Java, no broker)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from adaptcast.deploy.kafka import cli
from adaptcast.deploy.kafka.errors import KafkaLauncherError
from adaptcast.deploy.kafka.sasl import (
    BROKER_USER,
    SaslSetup,
    broker_password,
    listener_settings,
    parse_user,
    scram_format_args,
)
from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_auth import check_login


def test_plain_listener_lists_every_account_in_its_jaas_line() -> None:
    settings = listener_settings(SaslSetup("PLAIN", {"alice": "a-pw"}), "127.0.0.1", 19092, 19093, "b-pw")
    assert settings["listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert settings["advertised.listeners"] == "SASL_PLAINTEXT://127.0.0.1:19092"
    assert settings["sasl.enabled.mechanisms"] == settings["sasl.mechanism.inter.broker.protocol"] == "PLAIN"
    jaas = settings["listener.name.sasl_plaintext.plain.sasl.jaas.config"]
    assert f'username="{BROKER_USER}" password="b-pw"' in jaas
    assert 'user_alice="a-pw"' in jaas and f'user_{BROKER_USER}="b-pw"' in jaas and jaas.endswith(";")
    assert scram_format_args(SaslSetup("PLAIN", {"alice": "a-pw"}), "b-pw") == []


def test_scram_accounts_are_written_at_format_not_in_the_jaas_line() -> None:
    setup = SaslSetup("SCRAM-SHA-256", {"alice": "a-pw"})
    jaas = listener_settings(setup, "127.0.0.1", 1, 2, "b-pw")[
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config"
    ]
    assert "ScramLoginModule" in jaas and "a-pw" not in jaas
    assert scram_format_args(setup, "b-pw") == [
        "--add-scram",
        f"SCRAM-SHA-256=[name={BROKER_USER},password=b-pw]",
        "--add-scram",
        "SCRAM-SHA-256=[name=alice,password=a-pw]",
    ]


@pytest.mark.parametrize(
    ("mechanism", "users", "says"),
    [
        ("GSSAPI", {"alice": "pw"}, "not one the test broker sets up"),
        ("PLAIN", {}, "at least one user"),
        ("PLAIN", {"al ice": "pw"}, "user name"),
        ("PLAIN", {BROKER_USER: "pw"}, "the broker's own account"),
        ("SCRAM-SHA-512", {"alice": 'p"w'}, "password of SASL user 'alice'"),
    ],
)
def test_bad_sasl_setup_is_refused_with_the_reason(mechanism: str, users: dict, says: str) -> None:
    with pytest.raises(KafkaLauncherError, match=says):
        SaslSetup(mechanism, users)


def test_broker_password_is_made_once_and_kept_private(tmp_path: Path) -> None:
    first = broker_password(tmp_path)
    assert broker_password(tmp_path) == first and len(first) >= 20
    assert (tmp_path / "broker-sasl.secret").stat().st_mode & 0o077 == 0


def test_parse_user_needs_name_and_password() -> None:
    assert parse_user("alice:a:b") == ("alice", "a:b")
    with pytest.raises(KafkaLauncherError, match="NAME:PASSWORD"):
        parse_user("alice")


def test_up_refuses_users_without_a_mechanism(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli.main, ["up", "--state-dir", str(tmp_path), "--sasl-user", "alice:pw"])
    assert result.exit_code == 2 and "--sasl-user needs --sasl-mechanism" in result.output


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 400 Bad Request\r\n\r\n"], ids=["closes", "http"])
def test_login_check_stays_quiet_on_a_port_that_is_not_kafka(reply: bytes) -> None:
    """A closing or other-protocol service is not a question of credentials: the caller keeps waiting.

    An HTTP answer is not read as the length of a gigabyte-long Kafka response either.
    """
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn = server.accept()[0]
        if reply:
            conn.recv(1024)
            conn.sendall(reply)
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    bootstrap = f"127.0.0.1:{server.getsockname()[1]}"
    try:
        check_login(KafkaConfig(bootstrap_servers=bootstrap), {"bootstrap_servers": [bootstrap]}, 2.0)
    finally:
        server.close()


def test_a_sasl_ssl_listener_keeps_the_tls_keys_and_mutual_tls_needs_tls(tmp_path: Path) -> None:
    from adaptcast.deploy.kafka import KafkaBroker

    broker = KafkaBroker(
        port=19092, state_dir=tmp_path, sasl=SaslSetup("PLAIN", {"alice": "a-pw"}), tls=True, mutual_tls=True
    )
    broker.controller_port = 19093
    broker._write_properties()
    text = broker.properties_file.read_text()
    assert "listeners=SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in text
    assert "listener.name.sasl_ssl.plain.sasl.jaas.config=" in text and "ssl.keystore.location=" in text
    assert "ssl.client.auth=required" in text
    client = broker.client_config("alice")
    assert client["security_protocol"] == "SASL_SSL" and client["sasl_plain_password"] == "a-pw"
    assert Path(client["ssl_certfile"]).is_file() and Path(client["ssl_keyfile"]).is_file()
    with pytest.raises(KafkaLauncherError, match="mutual_tls needs tls"):
        KafkaBroker(state_dir=tmp_path / "b", mutual_tls=True)
    done = CliRunner().invoke(cli.main, ["up", "--mutual-tls", "--state-dir", str(tmp_path / "c")])
    assert done.exit_code == 2 and "--mutual-tls needs --tls" in done.output
