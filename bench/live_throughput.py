"""Live-service throughput, latency and scale-out against a real local broker.

(a) raw kafka-python consume → produce → flush → commit rate for the same records and batch size,
    once producing each input unchanged (small records) and once producing the worker's own
    predictions (records of the prediction's size: the baseline of the ratio);
(b) adaptcast's end-to-end rate (AR-Net or ``--model``; error memory, drift detector and intervals
    on), timed after the first ``lookback + horizon`` steps (window warm-up: no forecasts yet); the
    ratio (b)/(a);
(c) p50/p99/p99.9 end-to-end latency at each offered rate (``--rates``): the prediction's broker
    timestamp minus the input record's (both producer CreateTime on this machine, ms resolution).
    The load comes from a separate process, so its producer does not share the worker's GIL;
(d) with ``--workers 1,2``: aggregate rate of N worker processes in one consumer group on the
    4-partition topic, over the span in which all N were consuming.

    python bench/live_throughput.py                     # starts its own broker
    python bench/live_throughput.py --series 5000 --steps 70 --skip-latency   # rate vs series
    python bench/live_throughput.py --skip-raw --skip-latency --workers 1,2   # scale-out
    python bench/live_throughput.py --model lstm --rates 1000   # a neural net, on the GPU if present
    KAFKA_BOOTSTRAP_SERVERS=host:9092 python bench/live_throughput.py --records 50000
"""

from __future__ import annotations

import argparse
import faulthandler
import gc
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

# One BLAS thread, as `adaptcast` sets for itself (streams/cli.py), before numpy loads: a threaded BLAS
# on a shared box makes the error memory's small products many times slower.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from output import emit  # noqa: E402
from poll_trace import PollTrace  # noqa: E402

from adaptcast.forecast import create_forecaster  # noqa: E402
from adaptcast.forecast.windows import sliding_windows  # noqa: E402
from adaptcast.streams.config import KafkaConfig, load_config  # noqa: E402
from adaptcast.streams.kafka_io import PRODUCER_BATCHING  # noqa: E402
from adaptcast.streams.records import format_timestamp  # noqa: E402
from adaptcast.streams.service import Worker  # noqa: E402
from adaptcast.streams.topic_history import recent_values  # noqa: E402

HOUR = 3_600_000
STALL_S = 120.0  # no new record for this long and a consuming loop gives up, saying where it stood


class Progress:
    """Raises when a consuming loop has made no progress for ``stall_s``: a lost partition or a dead
    broker ends the run with where it stood, not a silent hang."""

    def __init__(self, what: str, total: int, stall_s: float = STALL_S):
        self.what, self.total, self.stall_s = what, total, stall_s
        self.done, self.since = 0, time.monotonic()

    def update(self, done: int) -> None:
        now = time.monotonic()
        if done > self.done:
            self.done, self.since = done, now
        elif now - self.since >= self.stall_s:
            raise RuntimeError(
                f"{self.what}: no new record for {self.stall_s:.0f} s at {self.done} of {self.total}; "
                "check the broker (KAFKA_BOOTSTRAP_SERVERS) and that nothing else consumes the topic"
            )


def records(n_series: int, steps: int, seed: int = 0) -> list[tuple[bytes, bytes]]:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    vals = 20 + 5 * np.sin(2 * np.pi * t / 24)[None, :] + rng.normal(0, 0.5, (n_series, steps))
    return [
        (
            f"s{i}".encode(),
            json.dumps(
                {"series": f"s{i}", "ts": format_timestamp(k * HOUR), "values": {"y": float(vals[i, k])}}
            ).encode(),
        )
        for k in range(steps)
        for i in range(n_series)
    ]


def topics(bootstrap: str, *names: str, partitions: int = 4) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    admin.close()


def produce(bootstrap: str, topic: str, recs: list[tuple[bytes, bytes]], rate: float | None = None) -> None:
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    start = time.monotonic()
    for i, (k, v) in enumerate(recs):
        if rate:
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        prod.send(topic, key=k, value=v)
    prod.flush()
    prod.close()


def raw_rate(
    bootstrap: str, topic: str, out: str, n: int, batch: int, payloads: list[bytes] | None = None
) -> float:
    """Consume → produce → flush → commit, as the worker does, without the model.

    Each consumed record is produced unchanged, or, with ``payloads``, as the next of those values
    (the worker's own predictions, so the raw client writes records of the prediction's size).
    """
    cons = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
    )
    # the worker's own producer batching, so the baseline is as strong as the worker's client
    prod = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **PRODUCER_BATCHING
    )
    seen, t0 = 0, None
    progress = Progress(f"raw client on {topic}", n)
    while seen < n:
        progress.update(seen)
        polled = cons.poll(timeout_ms=200, max_records=batch)
        msgs = [m for ms in polled.values() for m in ms]
        if not msgs:
            continue
        t0 = t0 or time.perf_counter()
        for i, m in enumerate(msgs):
            value = m.value if payloads is None else payloads[(seen + i) % len(payloads)]
            prod.send(out, key=m.key, value=value)
        prod.flush()
        cons.commit()
        seen += len(msgs)
    rate = seen / (time.perf_counter() - t0)
    cons.close()
    prod.close()
    return rate


def topic_messages(bootstrap: str, topic: str, per_partition: int) -> list[tuple]:
    """``(key, value, timestamp)`` of the last ``per_partition`` records of each partition of ``topic``,
    read by assigned partitions to their end offsets: a group-less subscription can miss the topic in
    its first metadata answer and read nothing."""
    return recent_values(KafkaConfig(bootstrap_servers=bootstrap, input_topic=topic), per_partition)


def predictions(bootstrap: str, topic: str, limit: int = 5000) -> list[bytes]:
    """Up to ``limit`` prediction values from ``topic`` (the worker's output)."""
    values = [value for _, value, _ in topic_messages(bootstrap, topic, limit)][:limit]
    if not values:
        raise SystemExit(
            f"no predictions on {topic}: the worker wrote nothing to size the raw client's records by"
        )
    return values


def trained(kind: str, path: Path, lookback: int, horizon: int) -> str:
    """A ``kind`` model fitted on a noisy daily sine (on a GPU where one is present), saved at ``path``."""
    rng = np.random.default_rng(1)
    t = np.arange(3000)
    y = 20 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, t.size)
    X, Y = sliding_windows(y, lookback, horizon)
    m = create_forecaster(kind, lookback=lookback, horizon=horizon)
    m.fit(X, Y)
    m.save(path)
    return str(path)


def worker_config(bootstrap: str, tag: str, state: Path, checkpoint: str, args: argparse.Namespace):
    """The worker's config for topics ``*-tag``: batch, shape, model, policy and training from ``args``."""
    return load_config(
        overrides={
            "kafka": {
                "bootstrap_servers": bootstrap,
                "input_topic": f"in-{tag}",
                "output_topic": f"out-{tag}",
                "dead_letter_topic": f"dlq-{tag}",
                "group": f"g-{tag}",
                "poll_max_records": args.batch,
                "poll_timeout_ms": 50,
            },
            "model": {
                "kind": args.model,
                "lookback": args.lookback,
                "horizon": args.horizon,
                "checkpoint": checkpoint,
            },
            "adaptation": {"policy": args.policy, "window": "vh", "memory": True},
            "state": {"dir": str(state)},
            "metrics": {"enabled": False},
            "serving": {"train_in": args.train_in},
        },
        environ={},
    )


def new_worker(cfg, args: argparse.Namespace) -> Worker:
    """A worker; with ``--unfreeze`` its start-up heap freeze is undone (to measure what the freeze buys)."""
    worker = Worker(cfg)
    if args.unfreeze:
        gc.unfreeze()
    return worker


def serve_until(worker: Worker, total: int, warm: int) -> tuple[float, int]:
    """Step ``worker`` until it has handled ``total`` records; the rate after the first ``warm``."""
    t0 = n0 = None
    progress = Progress("adaptcast worker", total)
    while worker.counts["records"] < total:
        progress.update(worker.counts["records"])
        worker.step()
        if t0 is None and worker.counts["records"] >= warm:
            t0, n0 = time.perf_counter(), worker.counts["records"]
    assert t0 is not None and n0 is not None
    return worker.counts["records"] - n0, time.perf_counter() - t0


def _produce_later(bootstrap: str, topic: str, recs: list, rate: float, delay: float) -> None:
    """The latency run's load, from its own process (a producer thread would share the worker's GIL)."""
    time.sleep(delay)
    produce(bootstrap, topic, recs, rate=rate)


def latency(bootstrap: str, ckpt: str, tmp: Path, args: argparse.Namespace, rate: float) -> dict:
    """p50/p99/p99.9 of input → prediction broker timestamps at ``rate`` records/s offered."""
    tag = uuid.uuid4().hex[:6]
    topics(bootstrap, f"in-{tag}", f"out-{tag}", f"dlq-{tag}")
    n_lat = int(rate * args.latency_seconds)
    lat_recs = records(args.series, n_lat // args.series + 1, seed=2)[:n_lat]
    cfg = worker_config(bootstrap, tag, tmp / f"state-c-{tag}", ckpt, args)
    worker = new_worker(cfg, args)
    trace = PollTrace(worker) if args.trace else None
    step = worker.step if trace is None else trace.step
    load_before = os.getloadavg()[0]
    load = mp.get_context("spawn").Process(
        target=_produce_later, args=(bootstrap, f"in-{tag}", lat_recs, rate, 3.0), daemon=True
    )
    load.start()
    deadline = time.monotonic() + args.latency_seconds + 90
    while worker.counts["records"] < len(lat_recs) and time.monotonic() < deadline:
        step()
    retrains = worker.loop.summary()["retrains"]
    worker.close()
    load.join(timeout=10)
    sent = {}
    for _, value, ts in topic_messages(bootstrap, f"in-{tag}", len(lat_recs)):
        v = json.loads(value)
        sent[(v["series"], v["ts"])] = ts
    lat = []
    for _, value, ts in topic_messages(bootstrap, f"out-{tag}", len(lat_recs)):
        v = json.loads(value)
        key = (v["series"], v["issued_at"])
        if key in sent and ts is not None and sent[key] is not None:
            lat.append(ts - sent[key])
    ms = np.array(lat, dtype=float)
    pct = {f"p{q:g}_ms": float(np.percentile(ms, q)) if ms.size else None for q in (50, 99, 99.9)}
    out = {"offered_rec_per_s": rate, "records": len(lat_recs), "predictions": int(ms.size), **pct}
    out.update(retrains=retrains, loadavg_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)])
    if trace is not None:
        trace.close()
        out["polls"] = trace.summary()
    return out


def _scale_worker(cfg_args: tuple, total: int, counter: mp.Value, out: mp.Queue) -> None:  # type: ignore[valid-type]
    """One group member: serve until all members together handled ``total``; report (time, records) marks."""
    worker = Worker(worker_config(*cfg_args), client_id=f"bench-{os.getpid()}")
    marks = []
    progress = Progress(f"scale-out member {os.getpid()}", total)
    while counter.value < total:  # type: ignore[attr-defined]
        progress.update(counter.value)  # type: ignore[attr-defined]
        n = worker.step()
        if n:
            with counter.get_lock():  # type: ignore[attr-defined]
                counter.value += n  # type: ignore[attr-defined]
            marks.append((time.monotonic(), n))
    worker.close()
    out.put(marks)


def scale_out(bootstrap: str, ckpt: str, tmp: Path, args: argparse.Namespace, recs: list, n: int) -> dict:
    """Aggregate rate of ``n`` worker processes in one group over the span all of them were consuming."""
    tag = uuid.uuid4().hex[:6]
    topics(bootstrap, f"in-{tag}", f"out-{tag}", f"dlq-{tag}")
    produce(bootstrap, f"in-{tag}", recs)
    ctx = mp.get_context("spawn")
    counter, out = ctx.Value("q", 0), ctx.Queue()
    procs = [
        ctx.Process(
            target=_scale_worker,
            args=(
                (bootstrap, tag, tmp / f"state-d-{tag}-{i}", ckpt, args),
                len(recs),
                counter,
                out,
            ),
        )
        for i in range(n)
    ]
    for p in procs:
        p.start()
    marks = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    busy = [ms for ms in marks if ms]  # a member that got no partition (or no records) has no marks
    start = max(ms[0][0] for ms in busy)  # every busy member consuming from here ...
    end = min(ms[-1][0] for ms in busy)  # ... until the first one ran out
    within = sum(k for ms in busy for t, k in ms if start < t <= end)
    return {
        "workers": n,
        "workers_with_records": len(busy),
        "records": len(recs),
        "records_in_span": int(within),
        "span_s": round(end - start, 2),
        "agg_rec_per_s": round(within / (end - start), 1) if end > start else None,
        "per_worker_records": [sum(k for _, k in ms) for ms in marks],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=500, help="records per poll (both consumers)")
    ap.add_argument("--rates", default="1000,5000", help="offered rates for the latency runs (records/s)")
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--skip-raw", action="store_true", help="no raw-client run (and no ratio)")
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--workers", default="", help="scale-out: comma-separated process counts, e.g. 1,2")
    ap.add_argument("--policy", default="drift", help="the worker's adaptation.policy (e.g. never)")
    ap.add_argument("--model", default="arnet", help="the served model's kind (e.g. lstm: a GPU predicts it)")
    ap.add_argument(
        "--train-in", default="process", choices=("process", "thread"), help="the worker's serving.train_in"
    )
    ap.add_argument("--unfreeze", action="store_true", help="undo the worker's start-up gc.freeze()")
    ap.add_argument("--trace", action="store_true", help="per-poll stage times in the latency runs")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument(
        "--time-limit",
        type=float,
        help="seconds; past it, print every thread's stack and exit (CI smoke runs)",
    )
    args = ap.parse_args()
    if args.time_limit:
        faulthandler.dump_traceback_later(args.time_limit, exit=True)
    summary: dict = {
        "machine": f"{os.cpu_count()} cores, shared with other jobs",
        "series": args.series,
        "steps": args.steps,
        "lookback": args.lookback,
        "horizon": args.horizon,
        "batch": args.batch,
        "policy": args.policy,
        "model": args.model,
        "train_in": args.train_in,
        "heap_frozen": not args.unfreeze,
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        "predicts_on": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="adaptcast-bench-")))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from adaptcast.deploy.kafka import KafkaBroker

            bootstrap = stack.enter_context(KafkaBroker(state_dir=tmp / "kafka")).bootstrap
        recs = records(args.series, args.steps)
        ckpt = trained(args.model, tmp / "model", args.lookback, args.horizon)
        warm = (args.lookback + args.horizon) * args.series
        summary["records"], summary["warm_records"] = len(recs), warm

        tag = uuid.uuid4().hex[:6]
        topics(bootstrap, f"in-{tag}", f"out-{tag}", f"dlq-{tag}")
        produce(bootstrap, f"in-{tag}", recs)
        if not args.skip_raw:  # (a) raw client rate
            raw = raw_rate(bootstrap, f"in-{tag}", f"rawout-{tag}", len(recs), args.batch)
            summary["raw_kafka_python_rec_per_s"] = round(raw, 1)

        # (b) adaptcast on the same records, same batch size, after the windows' warm-up
        cfg = worker_config(bootstrap, tag, tmp / "state-b", ckpt, args)
        worker = new_worker(cfg, args)
        done, seconds = serve_until(worker, len(recs), warm)
        worker.close()
        summary["adaptcast_rec_per_s"] = round(done / seconds, 1)
        summary["adaptcast_timed_records"] = done
        if not args.skip_raw:  # (a') the raw client again, writing the worker's predictions instead
            preds = predictions(bootstrap, f"out-{tag}")
            sized = raw_rate(bootstrap, f"in-{tag}", f"rawpred-{tag}", len(recs), args.batch, preds)
            summary["prediction_bytes_mean"] = round(float(np.mean([len(p) for p in preds])), 1)
            summary["input_bytes_mean"] = round(float(np.mean([len(v) for _, v in recs])), 1)
            summary["raw_kafka_python_prediction_sized_rec_per_s"] = round(sized, 1)
            summary["ratio"] = round(done / seconds / sized, 3)  # the target: same-size writes
            summary["ratio_small_records"] = round(done / seconds / raw, 3)
            summary["target_ratio"] = 0.5

        if not args.skip_latency:  # (c)
            rates = [float(r) for r in args.rates.split(",") if r]
            summary["latency"] = [latency(bootstrap, ckpt, tmp, args, r) for r in rates]
            summary["target_p99_ms_at_1000"] = 50

        if args.workers:  # (d)
            summary["scale_out"] = [
                scale_out(bootstrap, ckpt, tmp, args, recs, int(n)) for n in args.workers.split(",") if n
            ]
    emit(summary, args.out)


if __name__ == "__main__":
    main()
