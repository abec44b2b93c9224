"""Integration tests against a real Apache Kafka broker (our own, or $KAFKA_BOOTSTRAP_SERVERS)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.serializer import DefaultSerializer

from adaptcast.deploy.kafka import KafkaBroker
from adaptcast.deploy.kafka.processes import pid_alive, terminate_group
from adaptcast.deploy.kafka.readiness import tcp_reachable

pytestmark = pytest.mark.kafka

TIMEOUT_S = 60.0
KEYS = [f"series-{i}" for i in range(8)]

TEXT = DefaultSerializer()  # UTF-8 str <-> bytes for keys and values
Record = tuple[str, int]  # (key, per-key sequence number)


def unique_name(prefix: str) -> str:
    """A topic or group name no other test (or earlier run on the same cluster) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def make_records(seqs: range) -> list[Record]:
    """Interleaved records: every key gets every sequence number in ``seqs``, in order."""
    return [(key, seq) for seq in seqs for key in KEYS]


@pytest.fixture
def admin(kafka_bootstrap: str) -> Iterator[KafkaAdminClient]:
    """An admin client for the cluster under test."""
    client = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=unique_name("test-admin"))
    try:
        yield client
    finally:
        client.close()


def create_topic(admin: KafkaAdminClient, partitions: int) -> str:
    """Create a fresh topic and wait until every partition has a leader."""
    name = unique_name("test-topic")
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    admin.wait_for_topics([name], timeout_ms=int(TIMEOUT_S * 1000))
    return name


def produce(bootstrap: str, topic: str, records: Sequence[Record]) -> dict[tuple[int, int], Record]:
    """Send keyed records with acks=all and return what the broker acknowledged, by (partition, offset)."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=5,
        key_serializer=TEXT,
        value_serializer=TEXT,
    )
    try:
        futures = [(rec, producer.send(topic, key=rec[0], value=f"{rec[0]}:{rec[1]}")) for rec in records]
        producer.flush(timeout=TIMEOUT_S)
        acked: dict[tuple[int, int], Record] = {}
        for record, future in futures:
            meta = future.get(timeout=TIMEOUT_S)
            acked[(meta.partition, meta.offset)] = record
        return acked
    finally:
        producer.close(timeout=10)


def new_consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    """A group consumer that starts at the earliest offset when the group has none and commits by hand."""
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id=unique_name("test-consumer"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        key_deserializer=TEXT,
        value_deserializer=TEXT,
    )


def consume(
    consumer: KafkaConsumer, count: int, timeout_s: float = TIMEOUT_S
) -> list[tuple[int, int, Record]]:
    """Poll until ``count`` records arrived (or fail on timeout); returns (partition, offset, record)."""
    got: list[tuple[int, int, Record]] = []
    deadline = time.monotonic() + timeout_s
    while len(got) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"only {len(got)} of {count} records arrived within {timeout_s:.0f}s")
        for batch in consumer.poll(timeout_ms=500).values():
            for msg in batch:
                key, seq = msg.value.rsplit(":", 1)
                assert key == msg.key
                got.append((msg.partition, msg.offset, (key, int(seq))))
    return got


def assert_per_key_order(received: Sequence[tuple[int, int, Record]]) -> None:
    """Each key lives in one partition and its sequence numbers arrive strictly increasing."""
    partition_of: dict[str, int] = {}
    last_seq: dict[str, int] = defaultdict(lambda: -1)
    for partition, _, (key, seq) in received:
        assert partition_of.setdefault(key, partition) == partition, f"{key} spread over partitions"
        assert seq > last_seq[key], f"{key}: seq {seq} after {last_seq[key]}"
        last_seq[key] = seq


def test_consumer_group_resumes_from_committed_offset(kafka_bootstrap: str, admin: KafkaAdminClient) -> None:
    """A new member of a group continues where the last commit left off, keeping per-key order."""
    topic, group = create_topic(admin, partitions=4), unique_name("test-group")
    first = make_records(range(10))
    produce(kafka_bootstrap, topic, first)

    consumer = new_consumer(kafka_bootstrap, topic, group)
    try:
        received = consume(consumer, len(first))
        assert sorted(r for _, _, r in received) == sorted(first)
        assert_per_key_order(received)
        consumer.commit()
        partitions = [TopicPartition(topic, p) for p in range(4)]
        ends = consumer.end_offsets(partitions)
        assert {tp: consumer.committed(tp) for tp in partitions} == ends
        assert len({p for p, _, _ in received}) > 1, "keys should spread over several partitions"
    finally:
        consumer.close()

    second = make_records(range(10, 15))
    produce(kafka_bootstrap, topic, second)

    resumed = new_consumer(kafka_bootstrap, topic, group)
    try:
        received_again = consume(resumed, len(second))
        assert sorted(r for _, _, r in received_again) == sorted(second), "must read only the new records"
        assert all(offset >= ends[TopicPartition(topic, p)] for p, offset, _ in received_again)
        assert_per_key_order(received + received_again)
    finally:
        resumed.close()


@pytest.mark.slow
def test_restart_keeps_every_acknowledged_record(kafka_broker: KafkaBroker, admin: KafkaAdminClient) -> None:
    """Records acknowledged with acks=all survive a real JVM restart on the same log dir and port."""
    bootstrap = kafka_broker.bootstrap
    topic = create_topic(admin, partitions=3)
    acked = produce(bootstrap, topic, make_records(range(40)))
    assert len(acked) == 40 * len(KEYS)

    old_pid, old_command, log_dir = kafka_broker.pid, kafka_broker.command, kafka_broker.log_dir
    cluster_id = (log_dir / "meta.properties").read_text()
    assert (log_dir / f"{topic}-0").is_dir()

    kafka_broker.restart()

    assert kafka_broker.pid is not None and kafka_broker.pid != old_pid
    assert old_pid is not None and not pid_alive(old_pid)
    assert kafka_broker.command == old_command
    assert kafka_broker.log_dir == log_dir and kafka_broker.bootstrap == bootstrap
    assert (log_dir / "meta.properties").read_text() == cluster_id, "storage must not be reformatted"

    after = produce(bootstrap, topic, make_records(range(40, 41)))
    consumer = new_consumer(bootstrap, topic, unique_name("test-group"))
    try:
        received = consume(consumer, len(acked) + len(after))
    finally:
        consumer.close()
    by_position = {(p, o): r for p, o, r in received}
    assert len(by_position) == len(received), "no duplicates"
    assert by_position == {**acked, **after}, "every acknowledged record is still there, at its offset"
    assert_per_key_order(received)


@pytest.mark.slow
def test_stop_then_start_serves_the_same_log_dir_and_port(
    kafka_broker: KafkaBroker, admin: KafkaAdminClient
) -> None:
    """An outage: stop() leaves the port refusing connections; start() later resumes on the same storage."""
    bootstrap = kafka_broker.bootstrap
    topic = create_topic(admin, partitions=2)
    acked = produce(bootstrap, topic, make_records(range(10)))
    log_dir, ports = kafka_broker.log_dir, (kafka_broker.port, kafka_broker.controller_port)
    cluster_id = (log_dir / "meta.properties").read_text()

    kafka_broker.stop()
    assert not kafka_broker.is_running() and kafka_broker.pid is None
    assert not (kafka_broker.state_dir / "broker.pid").exists()
    assert not tcp_reachable(bootstrap, 1.0), "a stopped broker must refuse connections"
    kafka_broker.start()

    assert kafka_broker.is_running()
    assert (kafka_broker.port, kafka_broker.controller_port) == ports and kafka_broker.bootstrap == bootstrap
    assert kafka_broker.log_dir == log_dir
    assert (log_dir / "meta.properties").read_text() == cluster_id, "storage must not be reformatted"
    consumer = new_consumer(bootstrap, topic, unique_name("test-group"))
    try:
        received = consume(consumer, len(acked))
    finally:
        consumer.close()
    assert {(p, o): r for p, o, r in received} == acked, "every acknowledged record is still there"


_ORPHAN_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from adaptcast.deploy.kafka import KafkaBroker
    broker = KafkaBroker(state_dir=sys.argv[1]).start()
    print(broker.pid, flush=True)
    sys.stdin.read()  # wait to be killed
    """
)


@pytest.mark.slow
def test_broker_dies_with_its_owner(kafka_broker: KafkaBroker, tmp_path: Path) -> None:
    """SIGKILL of the Python process that started a broker still stops its JVM (no stray JVM)."""
    del kafka_broker  # only for the skip when an external cluster is used
    owner = subprocess.Popen(
        [sys.executable, "-c", _ORPHAN_SCRIPT, str(tmp_path / "orphan")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    jvm_pid = None
    try:
        assert owner.stdout is not None
        jvm_pid = int(owner.stdout.readline())
        assert pid_alive(jvm_pid)
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 40
        while pid_alive(jvm_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(jvm_pid), "the broker JVM outlived the process that owned it"
    finally:
        owner.kill()
        owner.wait()
        if jvm_pid is not None and pid_alive(jvm_pid):
            terminate_group(jvm_pid, timeout_s=10)
