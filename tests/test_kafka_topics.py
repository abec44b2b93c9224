"""Topics that do not exist, on a broker that does not create them on first use (managed and Strimzi
clusters): the worker and ``replay`` stop at start naming the config key, the topic and what to do.
Before, the first write waited a minute for metadata and the worker died of a bare
``KafkaTimeoutError: Failed to update metadata after 60.0 secs``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from adaptcast.deploy.kafka import KafkaBroker
from adaptcast.streams.config import KafkaConfig, load_config
from adaptcast.streams.kafka_io import missing_topics
from adaptcast.streams.service import Worker

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def strict_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own with ``auto.create.topics.enable=false``; its bootstrap address."""
    broker = KafkaBroker(
        state_dir=tmp_path_factory.mktemp("kafka-strict"), overrides={"auto.create.topics.enable": "false"}
    )
    try:
        broker.start()
        yield broker.bootstrap
    finally:
        broker.stop()


def _names(bootstrap: str, *create: str) -> dict[str, str]:
    """Fresh topic names for input, output and dlq; those named in ``create`` are created."""
    tag = uuid.uuid4().hex[:8]
    names = {k: f"{k}-{tag}" for k in ("input", "output", "dlq")}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(names[k], 1, 1) for k in create])
    finally:
        admin.close()
    return names


def _config(bootstrap: str, names: dict[str, str], state: Path) -> object:
    kafka = {
        "bootstrap_servers": bootstrap,
        "input_topic": names["input"],
        "output_topic": names["output"],
        "dead_letter_topic": names["dlq"],
        "group": f"g-{names['input']}",
    }
    over = {
        "kafka": kafka,
        "model": {"kind": "naive", "lookback": 6, "horizon": 3},
        "state": {"dir": str(state)},
        "metrics": {"enabled": False},
    }
    return load_config(overrides=over, environ={})


@pytest.mark.parametrize(
    ("missing", "key"), [("output", "kafka.output_topic"), ("dlq", "kafka.dead_letter_topic")]
)
def test_a_worker_whose_output_topics_are_missing_stops_at_start_saying_which(
    strict_broker: str, tmp_path: Path, missing: str, key: str
) -> None:
    names = _names(strict_broker, *(k for k in ("input", "output", "dlq") if k != missing))
    with pytest.raises(ValueError) as caught:
        Worker(_config(strict_broker, names, tmp_path))
    text = str(caught.value)
    assert text.startswith(f"{key} ({names[missing]}): no such topic at {strict_broker}")
    assert "auto.create.topics.enable=false" in text and f"--create --topic {names[missing]}" in text


def test_a_worker_whose_topics_exist_starts(strict_broker: str, tmp_path: Path) -> None:
    worker = Worker(_config(strict_broker, _names(strict_broker, "input", "output", "dlq"), tmp_path))
    worker.close()


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``adaptcast ARGS`` in a process of its own, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "adaptcast.streams.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_replay_to_a_missing_topic_is_one_error_line(strict_broker: str) -> None:
    topic = f"nowhere-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": strict_broker}
    done = _cli(["replay", "--scenario", "level_shift", "--topic", topic], env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"Error: --topic ({topic}): no such topic at {strict_broker}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_broker_that_creates_topics_on_first_use_has_none_missing(
    kafka_bootstrap: str, caplog: pytest.LogCaptureFixture
) -> None:
    """...and the probe that makes it create them logs no ERROR for the first answer lacking them."""
    cfg = KafkaConfig(bootstrap_servers=kafka_bootstrap)
    with caplog.at_level(logging.INFO):
        assert missing_topics(cfg, [f"fresh-{uuid.uuid4().hex[:8]}", f"fresh-{uuid.uuid4().hex[:8]}"]) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_training_from_a_missing_topic_names_the_topics_there(strict_broker: str, tmp_path: Path) -> None:
    """`train --from-topic` with a misspelt topic: an error naming the nearest one, within seconds
    (before, "has no partitions (does it exist?)" after a minute)."""
    names = _names(strict_broker, "input")
    cfg = _config(strict_broker, {**names, "input": names["input"] + "x"}, tmp_path)
    from adaptcast.streams.topic_history import recent_values

    with pytest.raises(ValueError) as caught:
        recent_values(cfg.kafka, 100)
    text = str(caught.value)
    assert text.startswith(f"no topic {names['input']}x (kafka.input_topic) at {strict_broker}")
    assert f"did you mean {names['input']}?" in text and "topics there:" in text


def test_train_from_a_topic_takes_the_broker_and_the_topic_as_flags(
    strict_broker: str, tmp_path: Path
) -> None:
    """`train --from-topic --bootstrap-servers … --input-topic …` reads there (no config file, no
    environment): a misspelt topic is named with the nearest one."""
    names = _names(strict_broker, "input")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "ADAPTCAST"))}
    args = ["--from-topic", "--bootstrap-servers", strict_broker, "--input-topic", names["input"] + "x"]
    done = _cli(["train", *args, "--state-dir", str(tmp_path)], env)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"no topic {names['input']}x (kafka.input_topic) at {strict_broker}" in done.stderr
    assert f"did you mean {names['input']}?" in done.stderr
