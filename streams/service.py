"""``adaptcast run`` on Kafka: poll → decode → loop → produce → flush → commit, with snapshots and hot swaps.

Delivery is at-least-once: input offsets are committed only after the broker acknowledged the
predictions (and dead letters) for them. Every prediction carries ``(series, issued_at)`` so a
consumer can drop the duplicates a crash between produce and commit may cause.

Models: a worker serves the version its store (``state.dir/models``) marks serving, else the
newest, and hot-swaps whenever the mark moves (``adaptcast train`` publishing, ``adaptcast model
rollback``); its own retrains are saved there too but move no mark. Those retrains run in a child
process at lower priority (``serving.train_in``, :mod:`adaptcast.streams.train_process`), so a fit
holds neither the serving thread's GIL nor its core.

Restart and rebalance: after each commit the worker may snapshot, per partition, the windows of
the series it saw there together with the committed offset. When a partition is assigned, its
snapshot is restored and the records between the snapshot's offset and the committed offset
are re-read silently to warm the windows (no forecasts); without a snapshot the worker re-reads up
to ``state.warm_records`` records before the committed offset instead.

Broker outages: the worker keeps running and reconnects by itself. Every second it asks the broker
for its partitions' end offsets (the lag); when that, the acknowledgement of a batch's output or a
commit does not come in time, ``/readyz`` reports ``kafka_connected`` unmet until the broker answers
again. A batch whose output is not acknowledged is held (the producer retries it) and committed
later; offsets whose commit timed out ride along with the next commit.
"""

from __future__ import annotations

import gc
import heapq
import logging
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from functools import partial
from operator import attrgetter
from pathlib import Path
from typing import Any

from kafka.errors import CommitFailedError, KafkaError

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.serialize import load_state, save_state
from adaptcast.forecast.base import load_forecaster, read_manifest
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.forecast.threads import set_torch_threads
from adaptcast.streams.broker_wait import quiet_kafka_logs
from adaptcast.streams.build import build_loop, misfit
from adaptcast.streams.config import Config
from adaptcast.streams.formats import shape_for
from adaptcast.streams.kafka_io import KafkaSink, KafkaSource, TopicPartition
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import KAFKA_CONNECTED, PARTITIONS_ASSIGNED, SCHEMA_REGISTRY, Metrics
from adaptcast.streams.records import (
    MIN_TS_MS,
    SECONDS_AS_MS,
    UNKNOWN_SERIES,
    Record,
    RecordError,
    SchemaUnavailable,
    decode_message,
    format_timestamp,
)
from adaptcast.streams.retrain import BackgroundTrainer, Trainer
from adaptcast.streams.schema_registry import registry_for
from adaptcast.streams.signals import stop_on_signals
from adaptcast.streams.step import prediction_records
from adaptcast.streams.summary import RunSummary
from adaptcast.streams.train_process import ProcessTrainer

log = logging.getLogger("adaptcast.service")
# base64 makes the original a third larger: this keeps a dead letter under the producer's 1 MiB request limit
DEAD_LETTER_MAX_ORIGINAL = 512 * 1024
BROKER_CHECK_S = 1.0  # how often the worker asks the broker for end offsets (lag; does it answer?)
BROKER_TIMEOUT_MS = 1000  # how long that question, an acknowledgement wait or a commit may take
SAY_EVERY_S = 10.0  # while the broker is away, one line this often
MOVED_WARNINGS = 5  # series met on a second partition: a log line for the first few, then only the metric


def freeze_startup_heap() -> None:
    """Collect once, then exempt every object alive after start-up from later garbage collections.

    torch, Lightning, the Kafka clients and the model leave ~500,000 long-lived objects; a full
    collection walks all of them, 0.2-0.3 s on the serving thread each time one runs. Frozen, they
    are never walked again (``gc.freeze``); objects made while serving are collected as before.
    ``Worker.close`` unfreezes them.
    """
    gc.collect()
    gc.freeze()


def saved_at(path: Path) -> float | None:
    """When the model saved at ``path`` was written (unix time, from its manifest), or None if unrecorded."""
    created = read_manifest(path).get("created_at")
    return None if created is None else datetime.fromisoformat(created).timestamp()


def _by_time(per_partition: dict[TopicPartition, list[Any]], ts: Callable[[Any], int]) -> list[Any]:
    """One poll's records, partitions merged by time, each partition's own order kept. A series spread
    over partitions (a producer that sends no key) then meets its records in time order, not as late,
    while a keyed series, whose records share one partition, meets them exactly in arrival order, so
    where a poll ends never changes what is late."""
    if len(per_partition) == 1:
        return next(iter(per_partition.values()))
    return list(heapq.merge(*per_partition.values(), key=ts))


REJECTIONS_SHOWN = 5  # a dead letter of a batch spells out this many of its records' errors


def _rejections(errors: list[RecordError], n_records: int) -> str:
    """Why a message's records were rejected: the one error of a single record; for a batch, how
    many of its records, and the first few errors, each naming its record."""
    if n_records == 1:
        return str(errors[0])
    shown = "; ".join(str(err) for err in errors[:REJECTIONS_SHOWN])
    more = f"; and {len(errors) - REJECTIONS_SHOWN} more" if len(errors) > REJECTIONS_SHOWN else ""
    return f"{len(errors)} of {n_records} records rejected: {shown}{more}"


class SnapshotStore:
    """Per-partition window snapshots and one process-wide adaptation snapshot, as pickle-free .npz files."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def _part(self, tp: TopicPartition) -> Path:
        return self.root / f"partition-{tp.topic}-{tp.partition}.npz"

    def save_partition(self, tp: TopicPartition, offset: int, series: dict[str, Any]) -> None:
        save_state(self._part(tp), {"offset": offset, "series": series})

    def load_partition(self, tp: TopicPartition) -> tuple[int, dict[str, Any]] | None:
        path = self._part(tp)
        if not path.exists():
            return None
        try:
            state = load_state(path)
            return int(state["offset"]), dict(state["series"])
        except (ValueError, KeyError, OSError) as exc:
            log.warning("snapshot %s is unreadable, re-reading records instead: %s", path, exc)
            return None

    def save_global(self, state: dict[str, Any]) -> None:
        save_state(self.root / "loop.npz", {"loop": state})

    def load_global(self) -> dict[str, Any] | None:
        path = self.root / "loop.npz"
        if not path.exists():
            return None
        try:
            return load_state(path)["loop"]
        except (ValueError, KeyError, OSError) as exc:
            log.warning("loop snapshot %s is unreadable, starting adaptation state afresh: %s", path, exc)
            return None


class Worker:
    """One consumer-group member serving forecasts for the partitions it is assigned."""

    def __init__(
        self,
        cfg: Config,
        metrics: Metrics | None = None,
        client_id: str = "adaptcast",
        stop_event: threading.Event | None = None,
    ):
        self.cfg = cfg
        self.metrics = metrics or Metrics(max_model_age_s=cfg.metrics.max_model_age_s)
        self.metrics.set_condition(PARTITIONS_ASSIGNED, False)
        set_torch_threads(cfg.serving.threads)
        self._max_future_ms = int(cfg.serving.max_future_s * 1000)
        self._ts_unit = cfg.serving.record_ts_unit
        s = cfg.serving
        self._shape = shape_for(s.record_format, s.series_field, s.time_field, s.otlp_quantiles)
        self._registry = registry_for(cfg.kafka)
        if self._registry is not None:
            self.metrics.set_condition(SCHEMA_REGISTRY, True)
        # partitions stopped at a record whose schema the registry cannot give now: when to read on,
        # and, once resumed, the offset whose read clears them
        self._waiting: dict[TopicPartition, tuple[float, int]] = {}
        self._retrying: dict[TopicPartition, int] = {}
        self._held_said_at = -SAY_EVERY_S
        self._series_from_key = cfg.serving.series_from_key
        self._ts_from_message = cfg.serving.ts_from_message
        self._warned_unit = False
        self._n_moved = 0  # series met on another partition than their last (see _moved)
        state_dir = Path(cfg.state.dir)
        self.store = CheckpointStore(state_dir / "models", keep=cfg.state.keep_versions)
        self.snapshots = SnapshotStore(state_dir / "snapshots")
        self.channels = cfg.model.channels
        self.loop = self._make_loop()
        self._followed = self.store.serving()  # the mark already served (or passed over) at start
        self.series_tp: dict[str, TopicPartition] = {}
        self.stream_ms: dict[TopicPartition, int] = {}  # each partition's newest record time
        self.loop.stream_time = self._stream_time  # silence is counted per partition (streams/loop.py)
        self.committed: dict[TopicPartition, int] = {}
        self.uncommitted: dict[TopicPartition, int] = {}  # served, not yet committed: windows ahead of offset
        self.warm_until: dict[TopicPartition, int] = {}
        self.stop_event = stop_event or threading.Event()
        self._rebalances: queue.Queue[tuple[str, list[TopicPartition]]] = queue.Queue()
        self.counts: dict[str, int] = defaultdict(int)
        k = cfg.kafka
        writes = {"kafka.output_topic": k.output_topic, "kafka.dead_letter_topic": k.dead_letter_topic}
        self.sink = KafkaSink(k, client_id=client_id, topics=writes)
        self.source = KafkaSource(cfg.kafka, self._on_assigned, self._on_revoked, client_id=client_id)
        self._last_snapshot = self._started = self._last_follow = time.monotonic()
        self._last_check = -BROKER_CHECK_S
        self._committed_at = -BROKER_CHECK_S  # when a commit last got an answer
        self._lags: dict[TopicPartition, int] = {}  # as last published
        self._lost_at: float | None = None  # since when the broker has not answered
        self._said_at = 0.0
        self._kafka_level = logging.NOTSET
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adaptcast-snapshot")
        self._writing: Future[None] | None = None
        freeze_startup_heap()

    # ---- set-up -------------------------------------------------------------------------------------
    def _stream_time(self, series: str) -> int | None:
        """The newest record time of ``series``' partition: a partition read behind another (catching
        up after a restart) makes none of its series look silent."""
        tp = self.series_tp.get(series)
        return None if tp is None else self.stream_ms.get(tp)

    def _make_loop(self) -> ForecastLoop:
        trainer: Callable[[ComputeLedger], Trainer] = BackgroundTrainer
        if self.cfg.serving.train_in == "process":
            trainer = partial(ProcessTrainer, threads=self.cfg.serving.threads)
        loop = build_loop(self.cfg, metrics=self.metrics, on_swap=self._checkpoint, trainer_factory=trainer)
        model, path = None, None
        if self.store.latest() is not None:
            try:  # the marked version, else the newest one that loads and fits the configuration
                model = self.store.load(refuse=partial(misfit, cfg=self.cfg))
                path = self.store.path(model.version or "")
            except ValueError:
                if not self.store.refused:
                    raise
                version, why = self.store.refused[0]
                log.warning(
                    "no model in the store fits the configuration (the serving one, %s: %s), so none "
                    "is served: a new model is trained once %d rows of a series are buffered. Set the "
                    "configuration back to serve %s again.",
                    version,
                    why,
                    loop.min_train_rows,
                    version,
                )
            if self.store.refused:  # the configuration changed since those versions were trained
                self.metrics.retrain_failures.labels("store").inc()
        if model is None and self.cfg.model.checkpoint:
            path = Path(self.cfg.model.checkpoint)
            model = load_forecaster(path)
            why = misfit(model, self.cfg)
            if why is not None:
                raise ValueError(
                    f"model.checkpoint {path} does not fit the configuration: {why}. Set those keys "
                    "to the checkpoint's, or train a model for this configuration (adaptcast train)"
                )
        if model is not None and path is not None:
            self.metrics.set_model_trained(saved_at(path))
            loop.serve(model)
            saved = self.snapshots.load_global()
            if saved is not None:
                try:
                    loop.load_state_dict(saved)
                    log.info("adaptation state restored from its snapshot: step %d", loop.step)
                except (ValueError, KeyError) as exc:  # e.g. the policy or memory settings changed since
                    log.warning(
                        "loop snapshot does not fit the current configuration, starting afresh: %s",
                        exc,
                    )
        return loop

    def _follow_store(self) -> None:
        """Every ``state.model_poll_s``: when the store marks another version serving, hot-swap to it.

        A retraining job or a rollback moves the mark; the worker keeps its windows, offsets and
        partitions, and only the model (with its error memory) changes.
        """
        if time.monotonic() - self._last_follow < self.cfg.state.model_poll_s:
            return
        self._last_follow = time.monotonic()
        try:
            marked = self.store.serving()
            if marked is None or marked == self._followed:
                return
            self._followed = marked
            model = self.store.load(marked)
            why = misfit(model, self.cfg)
            if why is not None:
                raise ValueError(f"{marked} does not fit the configuration: {why}")
        except (ValueError, FileNotFoundError) as exc:
            self.metrics.retrain_failures.labels("store").inc()
            log.warning(
                "the store's serving model cannot serve here, keeping %s: %s", self.loop.model_version, exc
            )
            return
        self.loop.serve(model)
        log.info("hot swap to %s, marked serving in the store", marked)

    def _checkpoint(self, model: Any) -> str:
        """Save a model the loop is about to swap in; its parent is the one serving now."""
        parent = self.loop.model.version if self.loop.model is not None else None
        return self.store.save(model, parent=parent)

    # ---- rebalance ---------------------------------------------------------------------------------------
    # kafka-python runs rebalance callbacks on its IO thread, where consumer calls must not block:
    # the callbacks only queue the change, and the serving thread applies it right after poll().
    def _on_assigned(self, tps: list[TopicPartition]) -> None:
        self._rebalances.put(("assigned", tps))

    def _on_revoked(self, tps: list[TopicPartition]) -> None:
        self._rebalances.put(("revoked", tps))

    def _apply_rebalances(self) -> set[TopicPartition]:
        """Apply queued assignments/revocations; returns partitions whose polled records must be dropped."""
        skip: set[TopicPartition] = set()
        while not self._rebalances.empty():
            kind, tps = self._rebalances.get_nowait()
            if kind == "revoked":
                self._revoke(tps)
            else:
                self._assign(tps)
            skip.update(tps)
        return skip

    def _assign(self, tps: list[TopicPartition]) -> None:
        """Restore each partition's snapshot and seek back so its windows are warm before serving."""
        for tp in tps:
            begin = self.source.beginning(tp)
            committed = self.source.committed(tp)
            if committed is None:  # a new group here: every record, or from the end (kafka.start_at)
                committed = begin if self.cfg.kafka.start_at == "earliest" else self.source.end(tp)
            elif committed < begin:  # the group fell further behind than the topic keeps records
                log.warning(
                    "%s: offsets %d to %d were deleted by the topic's retention before this group read "
                    "them (%d records at most, never forecast); serving resumes at %d. Give the topic a "
                    "longer retention.ms than the longest outage of the workers",
                    tp,
                    committed,
                    begin - 1,
                    begin - committed,
                    begin,
                )
                self.metrics.records_expired.inc(begin - committed)
                committed = begin
            snap = self.snapshots.load_partition(tp)
            if snap is not None and begin <= snap[0] <= committed:
                try:
                    self.loop.import_series(snap[1])
                except ValueError as exc:  # the configuration's channels changed since: re-read instead
                    log.warning("%s: the window snapshot does not fit the configuration: %s", tp, exc)
                    snap = None
            else:
                snap = None
            if snap is not None:
                start, series = snap
                self.series_tp.update({s: tp for s in series})
                how = f"windows of {len(series)} series from the snapshot at {start}"
            else:
                start = max(begin, committed - self.cfg.state.warm_records)
                how = "no usable snapshot"
            self.committed[tp] = committed
            self.uncommitted.pop(tp, None)
            if start < committed:
                self.warm_until[tp] = committed
            self.source.seek(tp, start)
            log.info("assigned %s: committed %d, %s, warming windows from %d", tp, committed, how, start)

    def _revoke(self, tps: list[TopicPartition]) -> None:
        """Snapshot and forget the series of partitions that moved to another worker."""
        self.snapshot(tps)
        gone = [s for s, tp in self.series_tp.items() if tp in tps]
        self.loop.drop_series(gone)
        for s in gone:
            del self.series_tp[s]
        for tp in tps:
            self.stream_ms.pop(tp, None)
            self.committed.pop(tp, None)
            self.uncommitted.pop(tp, None)
            self.warm_until.pop(tp, None)
            self._retrying.pop(tp, None)
            if self._waiting.pop(tp, None) is not None:
                self.source.resume(tp)  # kept through a rebalance, it would stay paused; _assign seeks it
        self._registry_condition()

    def snapshot(self, tps: list[TopicPartition] | None = None) -> None:
        """Write the windows of ``tps`` (default: all assigned) at their committed offsets, and loop state.

        A partition whose windows are ahead of its committed offset (warming, or served but not yet
        committed) keeps its previous snapshot: restoring that one and re-reading stays consistent.
        Synchronous (a revocation or shutdown must leave the files behind), after any periodic write
        still in flight, so an older snapshot never lands over this one.
        """
        self._await_write()
        for write in self._capture(tps):
            write()

    def _snapshot_in_background(self) -> None:
        """The periodic snapshot: state copied on the serving thread, files written on another.

        Skipped while the previous one is still being written; the next poll tries again.
        """
        if self._writing is not None and not self._writing.done():
            return
        self._await_write()  # raises what the last write raised
        writes = self._capture(None)
        self._writing = self._writer.submit(_run_all, writes)

    def _await_write(self) -> None:
        writing, self._writing = self._writing, None
        if writing is not None:
            writing.result()

    def _capture(self, tps: list[TopicPartition] | None) -> list[Callable[[], None]]:
        """Copies of what a snapshot writes, as file writes to run now or later.

        Loop state first: a crash before the windows leaves them the older ones, whose re-read
        records count no step twice.
        """
        writes: list[Callable[[], None]] = []
        if self.loop.model is not None:
            writes.append(partial(self.snapshots.save_global, self.loop.state_dict()))
        # the loop forgets series that went silent (grid.forget_after): so does the partition map
        self.series_tp = {s: tp for s, tp in self.series_tp.items() if s in self.loop.states}
        by_tp: dict[TopicPartition, list[str]] = defaultdict(list)
        for s, tp in self.series_tp.items():
            by_tp[tp].append(s)
        for tp in self.committed if tps is None else tps:
            if tp in self.committed and tp not in self.warm_until and tp not in self.uncommitted:
                series = self.loop.export_series(by_tp.get(tp, []))
                writes.append(partial(self.snapshots.save_partition, tp, self.committed[tp], series))
        self._last_snapshot = time.monotonic()
        return writes

    # ---- serving ----------------------------------------------------------------------------------
    def step(self) -> int:
        """One poll → produce → flush → commit cycle; returns the number of input records handled."""
        self._resume_held()
        msgs = self.source.poll()
        received = time.monotonic()
        skip = self._apply_rebalances()
        if skip:
            msgs = [m for m in msgs if TopicPartition(m.topic, m.partition) not in skip]
        for ev in self.loop.collect():
            log.info("training finished: %s", ev.to_dict())
        self._check_broker()
        self._follow_store()
        if not msgs:
            self.metrics.beat()
            return 0
        now_ms = int(time.time() * 1000)
        warm: dict[TopicPartition, list[Record]] = defaultdict(list)
        live: dict[TopicPartition, list[tuple[Record, Any]]] = defaultdict(list)
        offsets: dict[TopicPartition, int] = {}
        held: dict[int, tuple[Any, int]] = {}  # id(message) → the message, how many records it holds
        bad: dict[int, list[RecordError]] = defaultdict(list)  # id(message) → its rejected records' errors
        for msg in msgs:
            tp = TopicPartition(msg.topic, msg.partition)
            if tp in self._waiting:  # held back at an earlier message of this poll
                continue
            warming = msg.offset < self.warm_until.get(tp, -1)
            try:
                items = decode_message(
                    msg.value,
                    required=tuple(self.channels),
                    now_ms=now_ms,
                    max_future_ms=self._max_future_ms,
                    ts_unit=self._ts_unit,
                    shape=self._shape,
                    key=msg.key if self._series_from_key else None,
                    message_ts_ms=msg.timestamp if self._ts_from_message and msg.timestamp >= 0 else None,
                    registry=self._registry,
                )
            except SchemaUnavailable as exc:
                self._hold_back(tp, msg.offset, exc)
                continue
            offsets[tp] = msg.offset + 1
            if self._retrying.get(tp, offsets[tp]) < offsets[tp]:
                del self._retrying[tp]
            held[id(msg)] = (msg, len(items))
            for rec in items:
                if not isinstance(rec, RecordError):
                    rec = self._admitted(rec, now_ms)
                if isinstance(rec, RecordError):
                    if not warming:
                        self.metrics.records_consumed.inc()  # the loop counts what it rejects itself
                        self.metrics.records_rejected.labels(rec.reason).inc()
                        bad[id(msg)].append(rec)
                    continue
                if self.series_tp.setdefault(rec.series, tp) != tp:
                    self._moved(rec.series, self.series_tp[rec.series], tp)
                if rec.ts_ms > self.stream_ms.get(tp, MIN_TS_MS):
                    self.stream_ms[tp] = rec.ts_ms
                if warming:
                    warm[tp].append(rec)
                else:
                    live[tp].append((rec, msg))
        if warm:
            self.loop.process(_by_time(warm, attrgetter("ts_ms")), emit=False)
        for tp, end in offsets.items():
            if end >= self.warm_until.get(tp, -1):
                self.warm_until.pop(tp, None)
        if live:
            taken = _by_time(live, lambda pair: pair[0].ts_ms)
            origin = {id(rec): msg for rec, msg in taken}
            result = self.loop.process([rec for rec, _ in taken], received_at=received)
            records = prediction_records(result.forecasts, self.loop.targets)
            for f, record in zip(result.forecasts, records, strict=True):
                self.sink.send(self.cfg.kafka.output_topic, f.series, record)
            for rec, err in result.rejected:
                bad[id(origin[id(rec)])].append(err)
            self.counts["predictions"] += len(result.forecasts)
        for key, errors in bad.items():
            self._dead_letter(*held[key], errors)
        n_records = sum(n for _, n in held.values())
        self.counts["records"] += n_records
        self._registry_condition()
        # warming re-reads records below the committed offset: committing those would move it back
        self.uncommitted.update(
            {tp: end for tp, end in offsets.items() if end >= self.committed.get(tp, end)}
        )
        if not self._await_acks():
            return n_records  # stopped while the broker was away: the batch stays uncommitted
        self._commit()
        if time.monotonic() - self._last_snapshot > self.cfg.state.snapshot_interval_s:
            self._snapshot_in_background()
        return n_records

    # ---- the schema registry's presence ----------------------------------------------------------------
    def _hold_back(self, tp: TopicPartition, offset: int, exc: SchemaUnavailable) -> None:
        """Stop reading ``tp`` at ``offset``, whose record's schema the registry cannot give now, and
        read it again once the registry's backoff has passed: an outage of the registry delays that
        partition's records (not ready meanwhile) instead of dead-lettering them. What was read
        before it is served and committed."""
        self.source.seek(tp, offset)
        self.source.pause(tp)
        self._waiting[tp] = (time.monotonic() + exc.retry_in_s, offset)
        self._retrying.pop(tp, None)
        self.metrics.set_condition(SCHEMA_REGISTRY, False)
        now = time.monotonic()
        if now - self._held_said_at >= SAY_EVERY_S:
            self._held_said_at = now
            log.warning(
                "%s held at offset %d: %s; its records wait, none dead-lettered, read again in %.0f s",
                tp,
                offset,
                exc,
                exc.retry_in_s,
            )

    def _resume_held(self) -> None:
        """Read on the held partitions whose wait has passed, from the record they stopped at."""
        now = time.monotonic()
        for tp, (at, offset) in list(self._waiting.items()):
            if now >= at:
                del self._waiting[tp]
                self._retrying[tp] = offset
                self.source.resume(tp)

    def _registry_condition(self) -> None:
        """Ready again once no partition is held or waits to re-read the record it was held at."""
        if self._registry is not None and not self._waiting and not self._retrying:
            if SCHEMA_REGISTRY in self.metrics.unmet():
                log.warning("the schema registry answers again; every partition is read")
            self.metrics.set_condition(SCHEMA_REGISTRY, True)

    def _admitted(self, rec: Record, now_ms: int) -> Record | RecordError:
        """``rec``, or why it is not served: a series outside ``serving.strict_series``. The first
        record stamped in 1970-73 while the clock is not says which unit the producer may send."""
        if rec.ts_ms < SECONDS_AS_MS <= now_ms and not self._warned_unit:
            self._warn_unit(rec)
        strict = self.cfg.serving.strict_series
        if strict is not None and rec.series not in strict:
            return RecordError(UNKNOWN_SERIES, f"series {rec.series!r} is not in serving.strict_series")
        return rec

    def _moved(self, series: str, before: TopicPartition, now: TopicPartition) -> None:
        """A series met on another partition than before: count it, and say why it matters (the
        first few times). The contract keys records by series; a producer sending no key spreads a
        series over partitions, so its records come out of time order (rejected as ``late``) and,
        with several workers, its windows are split between them."""
        self.series_tp[series] = now
        self.metrics.series_moved.inc()
        self._n_moved += 1
        if self._n_moved <= MOVED_WARNINGS:
            log.warning(
                "series %r came on partition %d after partition %d of %s: records of a series must share "
                "a partition (key each message by its series); unkeyed records arrive out of order and "
                "are split between workers (a change of the topic's partition count moves series once)%s",
                series,
                now.partition,
                before.partition,
                now.topic,
                ""
                if self._n_moved < MOVED_WARNINGS
                else " (further moves are only counted: adaptcast_series_partition_moves_total)",
            )

    def _warn_unit(self, rec: Record) -> None:
        """Say once that a record is stamped 1970-73 while the clock is not: a producer sending epoch
        seconds (or a unit the configuration does not expect) makes every forecast's time wrong."""
        self._warned_unit = True
        log.warning(
            "series %r: ts read as epoch %s is %s, decades before now; if the producer sends epoch seconds "
            "(or another unit), set serving.ts_unit (s, ms, us, ns; `--ts-unit s` on run) to match it",
            rec.series,
            self._ts_unit,
            format_timestamp(rec.ts_ms),
        )

    # ---- the broker's presence ------------------------------------------------------------------------
    def _check_broker(self) -> None:
        """Every ``BROKER_CHECK_S``: refresh the lag gauges, and check that the broker answers.

        While batches are committed, each commit shows that it answers, and the lags come from the
        last fetch responses (a partition none of whose responses has been parsed yet keeps the lag
        last published for it; without one, the worker asks). Otherwise the worker asks for end
        offsets: a round trip that can wait behind a fetch the broker holds open for up to
        ``fetch_max_wait_ms``. Asked once a second on the serving thread, it cost a busy worker up
        to 15 % of its rate.
        """
        now = time.monotonic()
        if now - self._last_check < BROKER_CHECK_S:
            return
        answered = self._committed_at > self._last_check
        self._last_check = now
        try:
            lags = None
            if answered:
                known = self.source.known_lags(timeout_ms=BROKER_TIMEOUT_MS)
                lags = {tp: self._lags.get(tp) if n is None else n for tp, n in known.items()}
            if lags is None or None in lags.values():
                lags = self.source.lags(timeout_ms=BROKER_TIMEOUT_MS)
                self._broker_back()
        except KafkaError as exc:
            self._broker_lost(f"end offsets: {type(exc).__name__}: {exc}")
            return
        self._lags = lags
        self.metrics.set_partitions({(tp.topic, tp.partition): n for tp, n in lags.items()})

    def _await_acks(self) -> bool:
        """Wait for the broker to acknowledge the batch's output, beating; False if stopped first."""
        while not self.sink.acked(BROKER_TIMEOUT_MS / 1000):
            self._broker_lost("output not acknowledged yet")
            self.metrics.beat()
            if self.stop_event.is_set():
                return False
        return True

    def _commit(self) -> None:
        """Commit every served offset not committed yet; on a timeout they go with the next batch's commit."""
        try:
            self.source.commit(self.uncommitted, timeout_ms=BROKER_TIMEOUT_MS)
        except CommitFailedError as exc:  # partitions moved during this batch: their new owner re-reads them
            log.warning(
                "commit failed (rebalance in progress), records will be re-read by their new owner: %s", exc
            )
        except KafkaError as exc:
            self._broker_lost(f"commit: {type(exc).__name__}: {exc}")
        else:
            self.committed.update(self.uncommitted)
            self.uncommitted.clear()
            self._committed_at = time.monotonic()
            self._broker_back()

    def _broker_lost(self, why: str) -> None:
        """Not ready; say so once per ``SAY_EVERY_S`` instead of kafka-python's line per reconnect attempt."""
        now = time.monotonic()
        if self._lost_at is None:
            self._lost_at = now
            self.metrics.set_condition(KAFKA_CONNECTED, False)
            kafka_log = logging.getLogger("kafka")
            self._kafka_level = kafka_log.level
            kafka_log.setLevel(logging.CRITICAL)
        if now - self._said_at >= SAY_EVERY_S:
            self._said_at = now
            log.warning(
                "Kafka at %s does not answer (%s) for %.0f s; not ready, retrying",
                self.cfg.kafka.bootstrap_servers,
                why,
                now - self._lost_at,
            )

    def _broker_back(self) -> None:
        self.metrics.set_condition(KAFKA_CONNECTED, True)
        if self._lost_at is None:
            return
        logging.getLogger("kafka").setLevel(self._kafka_level)
        log.warning(
            "Kafka at %s answers again after %.1f s; ready",
            self.cfg.kafka.bootstrap_servers,
            time.monotonic() - self._lost_at,
        )
        self._lost_at = None
        self._said_at = 0.0

    def _dead_letter(self, msg: Any, n_records: int, errors: list[RecordError]) -> None:
        """Send a message's original bytes on once, with why its records were rejected: the first's
        reason, and each one's message, so a batch of many bad records is not copied once per record.
        An original too big to fit is cut short."""
        for err in errors:
            self.counts[f"rejected_{err.reason}"] += 1
        raw, message = msg.value or b"", _rejections(errors, n_records)
        if len(raw) > DEAD_LETTER_MAX_ORIGINAL:
            message += f" (original cut to its first {DEAD_LETTER_MAX_ORIGINAL} of {len(raw)} bytes)"
            raw = raw[:DEAD_LETTER_MAX_ORIGINAL]
        self.sink.dead_letter(raw, msg.topic, msg.partition, msg.offset, errors[0].reason, message)

    def run(self, max_seconds: float | None = None) -> RunSummary:
        """Serve until a signal, ``stop_event`` or ``max_seconds``; then flush, commit, snapshot and close."""
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        try:
            while not self.stop_event.is_set() and (deadline is None or time.monotonic() < deadline):
                self.step()
        finally:
            self.close()
        return self.summary()

    def summary(self) -> RunSummary:
        """Records polled, forecasts made and records dead-lettered, in the summary every front end prints."""
        rejected = sum(n for key, n in self.counts.items() if key.startswith("rejected_"))
        loop = {**self.loop.summary(), "records": self.counts["records"]}
        return RunSummary.from_loop(
            loop,
            f"topic {self.cfg.kafka.input_topic}",
            rejected=rejected,
            seconds=time.monotonic() - self._started,
        )

    def close(self) -> None:
        """Give the broker ``state.shutdown_timeout_s`` to acknowledge the output, commit what it
        answers, snapshot, and close; output still unacknowledged then is dropped, uncommitted."""
        acked = False
        try:
            acked = self.sink.failed is None and self.sink.acked(self.cfg.state.shutdown_timeout_s)
            if not acked:
                log.warning(
                    "shutting down with output the broker has not acknowledged: its records are re-read"
                )
            elif self.uncommitted:
                self._commit()
            self.snapshot()
        finally:
            self._writer.shutdown(wait=True)
            # kafka-python logs its IO thread's race with a socket being closed as an error with a
            # traceback (`Error receiving network data closing socket`); nothing is wrong. Only the
            # consumer's socket layer is hushed, so a failed LeaveGroup still says why the partitions
            # wait kafka.session_timeout_s to move; the producer's own errors are reported above
            with quiet_kafka_logs("kafka.net"):
                self.source.close()
            with quiet_kafka_logs():
                self.sink.close(
                    timeout_s=self.cfg.state.shutdown_timeout_s if acked else 0.0
                )  # waited already
            self.loop.trainer.close()
            gc.unfreeze()  # interpreter shutdown frees what was frozen (native extensions check for leaks)

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop polling; the in-flight batch is finished, produced and committed."""
        stop_on_signals(self.stop_event)


def _run_all(writes: list[Callable[[], None]]) -> None:
    for write in writes:
        write()
