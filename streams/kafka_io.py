"""Kafka edges of the live service: a consumer-group source with manual commits and an idempotent sink."""

from __future__ import annotations

import base64
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAuthorizationFailedError
from kafka.structs import OffsetAndMetadata, TopicPartition

from adaptcast.streams.config import KafkaConfig

log = logging.getLogger("adaptcast.kafka")
cluster_log = logging.getLogger("kafka.cluster")
# kafka-python backs off up to 30 s between reconnects, so a broker back from an outage waited that
# long for the worker; 1 s is the Java client's default
RECONNECT_BACKOFF_MAX_MS = 1000


def bootstrap_servers(cfg: KafkaConfig) -> str:
    """The configured servers, else ``KAFKA_BOOTSTRAP_SERVERS``; a clear error when neither is set."""
    servers = cfg.bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not servers:
        raise ValueError(
            "no Kafka bootstrap servers: set --bootstrap-servers, kafka.bootstrap_servers "
            "or KAFKA_BOOTSTRAP_SERVERS"
        )
    return servers


def endpoint(item: str) -> tuple[str, int]:
    """One bootstrap ``host:port`` (``[v6]:port`` allowed; port defaults to 9092) as a socket address."""
    host, _, port = item.strip().rpartition(":")
    return host.strip("[]") or "localhost", int(port or 9092)


def client_options(cfg: KafkaConfig) -> dict[str, Any]:
    """Connection and security settings shared by consumer, producer and admin clients."""
    opts: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(cfg).split(","),
        "security_protocol": cfg.security_protocol,
    }
    for ours, theirs in (
        ("sasl_mechanism", "sasl_mechanism"),
        ("sasl_username", "sasl_plain_username"),
        ("sasl_password", "sasl_plain_password"),
        ("ssl_cafile", "ssl_cafile"),
        ("ssl_certfile", "ssl_certfile"),
        ("ssl_keyfile", "ssl_keyfile"),
    ):
        value = getattr(cfg, ours)
        if value is not None:
            opts[theirs] = value
    return opts


class _Listener(ConsumerRebalanceListener):
    def __init__(
        self,
        on_assigned: Callable[[list[TopicPartition]], None],
        on_revoked: Callable[[list[TopicPartition]], None],
    ):
        self._assigned, self._revoked = on_assigned, on_revoked

    def on_partitions_revoked(self, revoked):
        self._revoked(sorted(revoked))

    def on_partitions_assigned(self, assigned):
        self._assigned(sorted(assigned))


def rejoin_if_stranded(consumer: Any) -> bool:
    """Rejoin the group when kafka-python finished a join that no poll will apply; True if it did.

    kafka-python 3.0 runs a join on its IO thread while ``poll`` waits at most its timeout. A join
    that the group leader began because its topic metadata changed ends by clearing that reason
    itself (the leader's assignment records the new metadata), so when it finishes between two
    polls no later poll looks at it: the member keeps its old partitions with heartbeats off, the
    broker drops it after the session timeout, and on an idle topic nothing brings it back. A
    rejoin request makes the next poll join afresh. A client without these internals is left alone.
    """
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_join_task", None)
    if task is None or not getattr(task, "is_done", False) or coordinator.need_rejoin():
        return False
    log.warning(
        "the consumer's group join finished while it was not polling and was never applied; rejoining"
    )
    coordinator.request_rejoin()
    return True


class KafkaSource:
    """The input topic read by a consumer group; offsets are committed only when told to."""

    def __init__(
        self,
        cfg: KafkaConfig,
        on_assigned: Callable[[list[TopicPartition]], None] = lambda tps: None,
        on_revoked: Callable[[list[TopicPartition]], None] = lambda tps: None,
        client_id: str = "adaptcast",
    ):
        self.cfg = cfg
        self.consumer = KafkaConsumer(
            group_id=cfg.group,
            client_id=client_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=cfg.poll_max_records,
            isolation_level=cfg.isolation_level,
            session_timeout_ms=int(cfg.session_timeout_s * 1000),
            heartbeat_interval_ms=int(min(3.0, cfg.session_timeout_s / 3) * 1000),
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            **client_options(cfg),
        )
        self._await_metadata(cfg.input_topic)
        self.consumer.subscribe([cfg.input_topic], listener=_Listener(on_assigned, on_revoked))

    def _await_metadata(self, topic: str, timeout_s: float = 10.0) -> None:
        """Know the topic's partitions before joining: a group leader without them assigns nothing."""
        deadline = time.monotonic() + timeout_s
        while not self.consumer.partitions_for_topic(topic):
            if time.monotonic() > deadline:
                log.warning("topic %s has no partition metadata yet (does it exist?); joining anyway", topic)
                return
            time.sleep(0.1)

    def poll(self, timeout_ms: int | None = None) -> list[Any]:
        """Records of one poll, in partition order (kafka-python ConsumerRecords)."""
        batches = self.consumer.poll(
            timeout_ms=timeout_ms or self.cfg.poll_timeout_ms, max_records=self.cfg.poll_max_records
        )
        rejoin_if_stranded(self.consumer)
        return [msg for tp in sorted(batches) for msg in batches[tp]]

    def commit(self, offsets: dict[TopicPartition, int], timeout_ms: int | None = None) -> None:
        """Commit next-offsets (last processed + 1) synchronously; KafkaTimeoutError after ``timeout_ms``."""
        if offsets:
            self.consumer.commit(
                {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}, timeout_ms=timeout_ms
            )

    def committed(self, tp: TopicPartition) -> int | None:
        return self.consumer.committed(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.consumer.seek(tp, offset)

    def pause(self, tp: TopicPartition) -> None:
        """Fetch nothing more from ``tp`` until :meth:`resume` (the group membership stays)."""
        self.consumer.pause(tp)

    def resume(self, tp: TopicPartition) -> None:
        """Fetch from ``tp`` again; a partition no longer assigned is left alone."""
        if tp in self.consumer.assignment():
            self.consumer.resume(tp)

    def beginning(self, tp: TopicPartition) -> int:
        return self.consumer.beginning_offsets([tp])[tp]

    def end(self, tp: TopicPartition) -> int:
        """The offset the next record written to ``tp`` will get (read_committed: the last stable one)."""
        return self.consumer.end_offsets([tp])[tp]

    def known_lags(self, timeout_ms: int = 1000) -> dict[TopicPartition, int | None]:
        """Each assigned partition's lag from the high watermark of its last parsed fetch response.

        No end-offsets round trip; None for a partition none of whose fetch responses has been
        parsed yet. A position being revalidated after a leader change may still ask the broker:
        KafkaError after ``timeout_ms``, as in :meth:`lags`.
        """
        lags: dict[TopicPartition, int | None] = {}
        for tp in self.consumer.assignment():
            end = self.consumer.highwater(tp)
            at = None if end is None else self.consumer.position(tp, timeout_ms=timeout_ms)
            lags[tp] = None if end is None or at is None else max(end - at, 0)
        return lags

    def lags(self, timeout_ms: int = 1000) -> dict[TopicPartition, int]:
        """Records between this consumer's position and the end of each assigned partition.

        Asks the partitions' leaders for their end offsets, so it doubles as a check that the broker
        answers: raises KafkaError (e.g. KafkaTimeoutError) when it does not within ``timeout_ms``.
        """
        tps = sorted(self.consumer.assignment())
        if not tps:
            return {}
        ends = self.consumer.end_offsets(tps, timeout_ms=timeout_ms)
        return {
            tp: max(end - self.consumer.position(tp, timeout_ms=timeout_ms), 0) for tp, end in ends.items()
        }

    def close(self) -> None:
        self.consumer.close(autocommit=False)


TOPIC_CHECK_S = 10.0  # how long a topic's first metadata may take before it counts as missing


def missing_topics(cfg: KafkaConfig, topics: Sequence[str], timeout_s: float = TOPIC_CHECK_S) -> list[str]:
    """The topics among ``topics`` that a producer finds no partitions for within ``timeout_s`` each.

    A broker with ``auto.create.topics.enable`` creates a missing topic on this request, as on a
    first write; one without it (the usual setting of managed and Strimzi clusters) makes a write to
    a missing topic wait ``max_block_ms`` (a minute) and then fail with a bare metadata timeout.
    Raises ValueError naming a topic this client may not write to (its ACLs).
    """
    probe = KafkaProducer(max_block_ms=int(timeout_s * 1000), **client_options(cfg))
    missing = []
    quiet = _NotFoundUntilCreated()
    cluster_log.addFilter(quiet)
    try:
        for topic in dict.fromkeys(topics):
            try:
                probe.partitions_for(topic)
            except KafkaTimeoutError:
                missing.append(topic)
            except TopicAuthorizationFailedError:
                raise ValueError(
                    f"topic {topic}: not authorized (the broker's ACLs must let this client describe "
                    "and write it)"
                ) from None
    finally:
        cluster_log.removeFilter(quiet)
        probe.close(timeout=1)
    return missing


class _NotFoundUntilCreated(logging.Filter):
    """Drops kafka-python's ERROR for a topic its first metadata answer lacks, while probing: a broker
    that creates topics on first use answers that before creating it, and a topic that stays
    missing is reported by :func:`require_topics` with what to do."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Topic %s not found in cluster metadata")


def require_topics(cfg: KafkaConfig, topics: dict[str, str]) -> None:
    """Raise ValueError, saying what to do, when a topic of ``topics`` (config key → name) is missing."""
    missing = missing_topics(cfg, list(topics.values()))
    if missing:
        keys = ", ".join(f"{k} ({v})" for k, v in topics.items() if v in missing)
        raise ValueError(
            f"{keys}: no such topic at {bootstrap_servers(cfg)}, and the broker does not create topics on "
            "first use (auto.create.topics.enable=false). Create it (kafka-topics.sh --create --topic "
            f"{missing[0]}, or a Strimzi KafkaTopic: as in k8s/kafka/topics.yaml), or name an existing one"
        )


# The worker flushes at the end of every poll, so lingering never delays a prediction; a batch of
# 256 KiB holds a poll's predictions (~1.9 KB each at horizon 12 with intervals) in a few requests.
PRODUCER_BATCHING = {"linger_ms": 100, "batch_size": 256 * 1024}


class KafkaSink:
    """Idempotent producer (acks=all) for predictions and dead letters; ``flush`` raises on a failed send.

    ``topics`` (what names each, e.g. its config key → topic) are the topics it will write: each
    must exist, or the broker create it on first use (:func:`require_topics`).
    """

    def __init__(self, cfg: KafkaConfig, client_id: str = "adaptcast", topics: dict[str, str] | None = None):
        self.cfg = cfg
        if topics:  # a write to a missing topic waits a minute for metadata, then fails
            require_topics(cfg, topics)
        delivery_ms = int(cfg.delivery_timeout_s * 1000)
        self.producer = KafkaProducer(
            client_id=client_id,
            acks="all",
            delivery_timeout_ms=delivery_ms,
            # kafka-python wants the delivery timeout above linger + request timeout (30 s by default)
            request_timeout_ms=min(30_000, (delivery_ms - PRODUCER_BATCHING["linger_ms"]) // 2),
            enable_idempotence=True,
            **PRODUCER_BATCHING,
            retries=2**31 - 1,
            max_in_flight_requests_per_connection=5,
            reconnect_backoff_max_ms=RECONNECT_BACKOFF_MAX_MS,
            key_serializer=lambda k: k.encode() if isinstance(k, str) else k,
            # orjson: ~1 µs per prediction record against ~27 µs for json.dumps; numpy values allowed
            value_serializer=lambda v: orjson.dumps(v, option=orjson.OPT_SERIALIZE_NUMPY),
            **client_options(cfg),
        )
        self._futures: list[Any] = []
        self.failed: KafkaError | None = None  # why the broker did not take some output, for good

    def send(self, topic: str, key: str, value: dict[str, Any]) -> None:
        self._futures.append(self.producer.send(topic, key=key, value=value))

    def dead_letter(
        self, raw: bytes | None, topic: str, partition: int, offset: int, code: str, message: str
    ) -> None:
        """The original bytes (base64), where they came from, and why they were rejected."""
        self.send(
            self.cfg.dead_letter_topic,
            key=f"{topic}-{partition}-{offset}",
            value={
                "original": base64.b64encode(raw or b"").decode(),
                "topic": topic,
                "partition": partition,
                "offset": offset,
                "error": {"code": code, "message": message},
                "rejected_at_ms": int(time.time() * 1000),
            },
        )

    def acked(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the broker to acknowledge everything sent: False while some sends
        are still in flight (the producer keeps retrying them); raises the KafkaError of a failed send,
        and keeps it as :attr:`failed` (what was sent with it must not be taken as acknowledged)."""
        try:
            self.producer.flush(timeout=timeout_s)
        except KafkaTimeoutError:
            return False  # still in flight
        except KafkaError as exc:
            self.failed = exc
            raise
        futures, self._futures = self._futures, []
        try:
            for f in futures:
                f.get(timeout=timeout_s)  # done by now: returns, or raises the send's KafkaError
        except KafkaError as exc:  # a refused send, or its own delivery timeout: failed for good
            self.failed = exc
            raise
        return True

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for broker acknowledgement of everything sent; raise KafkaError if any send failed or
        KafkaTimeoutError when the broker has not acknowledged them within ``timeout_s``."""
        if not self.acked(timeout_s):
            raise KafkaTimeoutError(f"the broker did not acknowledge all sends within {timeout_s:g} s")

    def close(self, timeout_s: float = 10.0) -> None:
        """Close the producer after at most ``timeout_s`` for the broker to acknowledge what it
        holds. What it has not acknowledged by then is dropped: the input it answers was not
        committed, so it is read again (kafka-python's close raises instead, and a worker stopped
        during a broker outage exited with a traceback)."""
        try:
            self.producer.close(timeout=timeout_s)
        except KafkaError as exc:
            log.warning("closed the producer with sends the broker has not acknowledged: %s", exc)
            # kafka-python's close flushes first, so it never finishes while output is unacknowledged,
            # and its finaliser tries again (and fails, printing a traceback) at exit: its sender is
            # stopped here and the producer marked closed, as its own close does after a flush
            sender = getattr(self.producer, "_sender", None)
            if sender is not None:
                sender.force_close()
            self.producer._closed = True


__all__ = [
    "PRODUCER_BATCHING",
    "KafkaError",
    "KafkaSink",
    "KafkaSource",
    "TopicPartition",
    "bootstrap_servers",
    "client_options",
]
