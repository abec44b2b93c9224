"""Secured listeners. SASL_PLAINTEXT (SCRAM-SHA-512): clients, ``replay`` and the worker log in with the
right credentials, and stop at once with one ``Error:`` line naming the address without them or with
wrong ones; no password reaches a log, an error or ``/metrics``. SSL: the same front ends work when
they trust the broker's CA, and ``replay`` stops in one line when they do not.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer
from topic_reader import read_topic

from adaptcast.deploy.kafka import KafkaBroker
from adaptcast.deploy.kafka.sasl import SaslSetup
from adaptcast.deploy.kafka.tls import client_certificate, make_certificates
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.broker_wait import probe_broker
from adaptcast.streams.config import KafkaConfig
from adaptcast.streams.kafka_auth import KafkaAuthError
from adaptcast.streams.kafka_io import KafkaSink, KafkaSource, client_options

pytestmark = pytest.mark.kafka

MECHANISM, USER, PASSWORD = "SCRAM-SHA-512", "alice", "alice-pw-8c1f3e"
WRONG = "mallory-guess-5d02"
LOGINS = {  # what the client sends: none, or the user with a wrong password
    "none": {},
    "wrong": {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": MECHANISM, "sasl_username": USER},
}
RUN_TIMEOUT_S = 180  # a run that hangs fails the test here instead of blocking the suite


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of its own whose only client listener is SASL_PLAINTEXT with SCRAM-SHA-512."""
    with KafkaBroker(
        state_dir=tmp_path_factory.mktemp("kafka-sasl"), sasl=SaslSetup(MECHANISM, {USER: PASSWORD})
    ) as broker:
        yield broker


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of its own whose only client listener is SSL, with a throwaway CA."""
    with KafkaBroker(state_dir=tmp_path_factory.mktemp("kafka-tls"), tls=True) as broker:
        yield broker


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of its own whose SSL listener asks every client for a certificate of its CA
    (mutual TLS, as Strimzi's ``tls`` client authentication)."""
    with KafkaBroker(state_dir=tmp_path_factory.mktemp("kafka-mtls"), tls=True, mutual_tls=True) as broker:
        yield broker


@pytest.fixture(scope="module")
def sasl_ssl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """A broker of its own whose only client listener is SASL_SSL (SCRAM-SHA-512 over TLS)."""
    with KafkaBroker(
        state_dir=tmp_path_factory.mktemp("kafka-sasl-ssl"),
        sasl=SaslSetup(MECHANISM, {USER: PASSWORD}),
        tls=True,
    ) as broker:
        yield broker


@pytest.fixture(params=["sasl", "tls", "mtls", "sasl_ssl"])
def secured(request: pytest.FixtureRequest) -> KafkaConfig:
    """The right settings for one of the secured brokers."""
    if request.param == "sasl":
        return _kafka_config(request.getfixturevalue("sasl_broker").bootstrap, "right")
    if request.param == "sasl_ssl":
        return _sasl_ssl(request.getfixturevalue("sasl_ssl_broker"), "right")
    if request.param == "mtls":
        return KafkaConfig(security_protocol="SSL", **_mtls(request.getfixturevalue("mtls_broker")))
    broker: KafkaBroker = request.getfixturevalue("tls_broker")
    return KafkaConfig(security_protocol="SSL", **_tls(broker))


def _sasl_ssl(broker: KafkaBroker, login: str) -> KafkaConfig:
    """:func:`_kafka_config`'s login over TLS, trusting the broker's CA."""
    tls = {"security_protocol": "SASL_SSL", "ssl_cafile": _tls(broker)["ssl_cafile"]}
    return _kafka_config(broker.bootstrap, login).model_copy(update=tls)


def _mtls(broker: KafkaBroker) -> dict[str, str]:
    """The CA to trust, and a client certificate and key of the broker's CA."""
    cert, key = client_certificate(make_certificates(broker.state_dir, "127.0.0.1"), "adaptcast-worker")
    return {**_tls(broker), "ssl_certfile": str(cert), "ssl_keyfile": str(key)}


def _tls(broker: KafkaBroker) -> dict[str, str]:
    return {"bootstrap_servers": broker.bootstrap, "ssl_cafile": broker.client_config()["ssl_cafile"]}


def _kafka_config(bootstrap: str, login: str) -> KafkaConfig:
    """``right``: the user and password; ``wrong``: the user with a wrong password; ``none``: PLAINTEXT."""
    if login == "right":
        return KafkaConfig(bootstrap_servers=bootstrap, **LOGINS["wrong"], sasl_password=PASSWORD)
    password = WRONG if login == "wrong" else None
    return KafkaConfig(bootstrap_servers=bootstrap, **LOGINS[login], sasl_password=password)


def _env(cfg: KafkaConfig) -> dict[str, str]:
    """The login as ``ADAPTCAST__KAFKA__*`` variables, as a deployment would pass its secret."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTCAST__")}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    keys = ("sasl_mechanism", "sasl_username", "sasl_password", "ssl_cafile", "ssl_certfile", "ssl_keyfile")
    for key in ("security_protocol", *keys):
        value = getattr(cfg, key)
        if value is not None:
            env[f"ADAPTCAST__KAFKA__{key.upper()}"] = value
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adaptcast.streams.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=RUN_TIMEOUT_S,
    )


def _assert_auth_failure(done: subprocess.CompletedProcess[str], bootstrap: str) -> None:
    """Exit 2, one ``Error:`` line naming the address and the failed login, no traceback, no secret."""
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert done.returncode == 2, output
    assert len(errors) == 1 and bootstrap in errors[0] and "authentication failed" in errors[0], output
    assert "Traceback" not in output
    assert PASSWORD not in output and WRONG not in output


def test_clients_produce_and_consume_with_credentials(sasl_broker: KafkaBroker) -> None:
    """kafka-python, built from the config the way the worker builds it, writes and reads a topic."""
    options = client_options(_kafka_config(sasl_broker.bootstrap, "right"))
    topic = f"sasl-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(acks="all", **options)
    for i in range(20):
        producer.send(topic, key=b"k", value=str(i).encode())
    producer.flush()
    producer.close()
    security = {k: v for k, v in options.items() if k != "bootstrap_servers"}
    values = [int(m.value) for m in read_topic(options["bootstrap_servers"], topic, 20, **security)]
    assert values == list(range(20))


@pytest.mark.parametrize("login", ["none", "wrong"])
def test_probe_says_authentication_failed(sasl_broker: KafkaBroker, login: str) -> None:
    """The check every front end runs first raises at once, naming the address (no waiting, no secret)."""
    with pytest.raises(KafkaAuthError) as caught:
        probe_broker(_kafka_config(sasl_broker.bootstrap, login))
    message = str(caught.value)
    assert "authentication failed" in message and sasl_broker.bootstrap in message
    assert "\n" not in message and WRONG not in message and PASSWORD not in message


def test_probe_passes_with_credentials(sasl_broker: KafkaBroker) -> None:
    assert probe_broker(_kafka_config(sasl_broker.bootstrap, "right")) is None


def _replay(env: dict[str, str], bootstrap: str, topic: str) -> subprocess.CompletedProcess[str]:
    scenario = ["--scenario", "level_shift", "--series", "2", "--steps", "60"]
    return _cli(env, "replay", *scenario, "--topic", topic, "--bootstrap-servers", bootstrap)


@pytest.mark.parametrize("login", ["none", "wrong"])
def test_replay_fails_in_one_line_without_the_right_login(sasl_broker: KafkaBroker, login: str) -> None:
    bootstrap = sasl_broker.bootstrap
    done = _replay(_env(_kafka_config(bootstrap, login)), bootstrap, f"in-{uuid.uuid4().hex[:8]}")
    _assert_auth_failure(done, bootstrap)


@pytest.mark.slow
@pytest.mark.parametrize("login", ["none", "wrong"])
def test_worker_fails_in_one_line_without_the_right_login(
    sasl_broker: KafkaBroker, login: str, tmp_path: Path
) -> None:
    """No --startup-timeout: a refused login ends the worker anyway, since waiting cannot fix it."""
    bootstrap = sasl_broker.bootstrap
    flags = ["-v", "--bootstrap-servers", bootstrap, "--metrics-port", "0", "--state-dir", str(tmp_path)]
    _assert_auth_failure(_cli(_env(_kafka_config(bootstrap, login)), "run", *flags), bootstrap)


@pytest.mark.slow
def test_replay_then_worker_with_credentials_and_no_secret_anywhere(
    secured: KafkaConfig, tmp_path: Path
) -> None:
    """replay fills a topic; a verbose worker forecasts it; its log and /metrics never show the password."""
    bootstrap = secured.bootstrap_servers
    env = _env(secured)
    tag = uuid.uuid4().hex[:8]
    topics = {"input_topic": f"in-{tag}", "output_topic": f"out-{tag}", "dead_letter_topic": f"dlq-{tag}"}
    done = _replay(env, bootstrap, topics["input_topic"])
    assert done.returncode == 0 and "replayed 120 records" in done.stdout, done.stdout + done.stderr

    naive = create_forecaster("naive", lookback=6, horizon=3)
    naive.fit(*sliding_windows(np.arange(50.0), 6, 3))
    naive.save(tmp_path / "naive")  # serves from the first record: every record past the window is forecast
    config = {  # everything but the password, which stays in the environment
        "kafka": {"bootstrap_servers": bootstrap, "group": f"g-{tag}", "poll_timeout_ms": 100, **topics},
        "model": {"kind": "naive", "lookback": 6, "horizon": 3, "checkpoint": str(tmp_path / "naive")},
        "adaptation": {"policy": "never", "min_train_rows": 6},
        "state": {"dir": str(tmp_path / "state")},
        "metrics": {"port": 0},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adaptcast.streams.cli",
                "run",
                "-v",
                "--config",
                str(tmp_path / "c.yaml"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = _wait_for(lambda: re.search(r"metrics at (\S+/metrics)", log.read_text()), worker, log)
        options = client_options(secured)
        predictions = _wait_for(lambda: _count(topics["output_topic"], options) == 2 * (60 - 5), worker, log)
        with urllib.request.urlopen(url.group(1), timeout=10) as response:
            metrics = response.read().decode()
        assert "adaptcast_predictions_total" in metrics and PASSWORD not in metrics
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    text = log.read_text()
    assert predictions and worker.returncode == 0, text
    assert "Traceback" not in text and PASSWORD not in text


def _count(topic: str, options: dict) -> int:
    consumer = KafkaConsumer(
        topic, auto_offset_reset="earliest", group_id=None, consumer_timeout_ms=1500, **options
    )
    try:
        return sum(1 for _ in consumer)
    finally:
        consumer.close()


def _wait_for(found, proc: subprocess.Popen, log: Path, timeout: float = RUN_TIMEOUT_S):
    """Poll ``found()`` until truthy while the worker lives; fail with its log otherwise."""
    deadline = time.monotonic() + timeout
    while not (result := found()):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.3)
    return result


def test_tls_settings_reach_the_clients(sasl_broker: KafkaBroker, tmp_path: Path) -> None:
    """The worker's producer and consumer carry every ssl_* setting (ignored by a SASL_PLAINTEXT listener)."""
    tls = {"ssl_cafile": str(tmp_path / "ca.pem"), "ssl_certfile": str(tmp_path / "c.pem")}
    tls["ssl_keyfile"] = str(tmp_path / "k.pem")
    cfg = _kafka_config(sasl_broker.bootstrap, "right").model_copy(update={**tls, "input_topic": "tls-probe"})
    sink, source = KafkaSink(cfg), KafkaSource(cfg)
    try:
        for client in (sink.producer, source.consumer):
            assert {k: client.config[k] for k in tls} == tls
            assert client.config["sasl_plain_username"] == USER
    finally:
        source.close()
        sink.close()


def test_replay_fails_in_one_line_without_a_client_certificate_where_the_broker_asks_one(
    mtls_broker: KafkaBroker, tmp_path: Path
) -> None:
    """Mutual TLS with no certificate, or one of another CA: the broker refuses the handshake; one
    line naming the address and what to set, exit 2."""
    other = client_certificate(make_certificates(tmp_path, "127.0.0.1"), "stranger")
    for cert in (None, other):
        settings = _tls(mtls_broker) | (
            {} if cert is None else {"ssl_certfile": str(cert[0]), "ssl_keyfile": str(cert[1])}
        )
        done = _replay(
            _env(KafkaConfig(security_protocol="SSL", **settings)),
            mtls_broker.bootstrap,
            f"in-{uuid.uuid4().hex[:8]}",
        )
        output = done.stdout + done.stderr
        errors = [line for line in output.splitlines() if line.startswith("Error:")]
        assert done.returncode == 2 and len(errors) == 1 and mtls_broker.bootstrap in errors[0], output
        needle = "requires a client certificate" if cert is None else "refuses the client certificate"
        assert needle in errors[0] and "kafka.ssl_certfile" in errors[0] and "Traceback" not in output, output


def test_replay_fails_in_one_line_without_the_brokers_ca(tls_broker: KafkaBroker, tmp_path: Path) -> None:
    """Trusting another CA, the TLS handshake fails: one line naming the address, exit 2."""
    other = make_certificates(tmp_path, "127.0.0.1").ca  # a CA of its own
    cfg = KafkaConfig(security_protocol="SSL", **{**_tls(tls_broker), "ssl_cafile": str(other)})
    done = _replay(_env(cfg), tls_broker.bootstrap, f"in-{uuid.uuid4().hex[:8]}")
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert done.returncode == 2 and len(errors) == 1 and tls_broker.bootstrap in errors[0], output
    assert "its certificate is not trusted" in errors[0] and "set kafka.ssl_cafile" in errors[0], output
    assert "Traceback" not in output


def test_the_probe_says_what_to_set_when_tls_and_the_listener_disagree(
    kafka_bootstrap: str, tls_broker: KafkaBroker, sasl_ssl_broker: KafkaBroker
) -> None:
    """Each mismatch of a TLS listener and the client's settings stops at once with what to set
    (kafka-python only times out its bootstrap: "Unable to bootstrap from …")."""
    cases = [
        (KafkaConfig(bootstrap_servers=tls_broker.bootstrap), "speaks TLS on this listener"),
        (KafkaConfig(security_protocol="SSL", **_tls(sasl_ssl_broker)), "requires SASL"),
        (  # its certificate names 127.0.0.1 only
            KafkaConfig(
                security_protocol="SSL",
                **{
                    **_tls(tls_broker),
                    "bootstrap_servers": tls_broker.bootstrap.replace("127.0.0.1", "localhost"),
                },
            ),
            "does not name the address dialled",
        ),
        (
            _sasl_ssl(sasl_ssl_broker, "wrong"),
            "authentication failed",
        ),
        (
            KafkaConfig(security_protocol="SSL", bootstrap_servers=kafka_bootstrap),
            "does not speak TLS on this listener but kafka.security_protocol is SSL; set PLAINTEXT",
        ),
    ]
    for cfg, needle in cases:
        with pytest.raises(KafkaAuthError) as caught:
            probe_broker(cfg)
        assert needle in str(caught.value) and cfg.bootstrap_servers in str(caught.value), str(caught.value)
        assert WRONG not in str(caught.value)
