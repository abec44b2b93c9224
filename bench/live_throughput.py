"""Live-service throughput and latency against a real local broker.

(a) raw kafka-python consume → produce → flush → commit rate for the same records and batch size;
(b) adaptcast's end-to-end rate (AR-Net, error memory and drift detector on); the ratio (b)/(a);
(c) p50/p99 end-to-end latency at a fixed offered rate: the prediction's broker timestamp minus
    the input record's (both producer CreateTime on this machine, ms resolution).

    python bench/live_throughput.py                     # starts its own broker
    KAFKA_BOOTSTRAP_SERVERS=host:9092 python bench/live_throughput.py --records 50000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

from adaptcast.forecast import create_forecaster  # noqa: E402
from adaptcast.forecast.windows import sliding_windows  # noqa: E402
from adaptcast.streams.config import load_config  # noqa: E402
from adaptcast.streams.records import format_timestamp  # noqa: E402
from adaptcast.streams.service import Worker  # noqa: E402

HOUR = 3_600_000


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


def raw_rate(bootstrap: str, topic: str, out: str, n: int, batch: int) -> float:
    """Consume → produce (value unchanged) → flush → commit, as the worker does, without the model."""
    cons = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"raw-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=batch,
    )
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    seen, t0 = 0, None
    while seen < n:
        polled = cons.poll(timeout_ms=200, max_records=batch)
        msgs = [m for ms in polled.values() for m in ms]
        if not msgs:
            continue
        t0 = t0 or time.perf_counter()
        for m in msgs:
            prod.send(out, key=m.key, value=m.value)
        prod.flush()
        cons.commit()
        seen += len(msgs)
    rate = seen / (time.perf_counter() - t0)
    cons.close()
    prod.close()
    return rate


def trained_arnet(path: Path, lookback: int, horizon: int) -> str:
    rng = np.random.default_rng(1)
    t = np.arange(3000)
    y = 20 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, t.size)
    X, Y = sliding_windows(y, lookback, horizon)
    m = create_forecaster("arnet", lookback=lookback, horizon=horizon)
    m.fit(X, Y)
    m.save(path)
    return str(path)


def worker_config(
    bootstrap: str, tag: str, state: Path, checkpoint: str, batch: int, lookback: int, horizon: int
):
    return load_config(
        overrides={
            "kafka": {
                "bootstrap_servers": bootstrap,
                "input_topic": f"in-{tag}",
                "output_topic": f"out-{tag}",
                "dead_letter_topic": f"dlq-{tag}",
                "group": f"g-{tag}",
                "poll_max_records": batch,
                "poll_timeout_ms": 50,
            },
            "model": {"kind": "arnet", "lookback": lookback, "horizon": horizon, "checkpoint": checkpoint},
            "adaptation": {"policy": "drift", "window": "vh", "memory": True},
            "state": {"dir": str(state)},
            "metrics": {"enabled": False},
        },
        environ={},
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch", type=int, default=500, help="records per poll (both consumers)")
    ap.add_argument("--rate", type=float, default=1000.0, help="offered rate for the latency run")
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    args = ap.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="adaptcast-bench-")))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from adaptcast.deploy.kafka import KafkaBroker

            bootstrap = stack.enter_context(KafkaBroker(state_dir=tmp / "kafka")).bootstrap
        recs = records(args.series, args.steps)
        ckpt = trained_arnet(tmp / "arnet", args.lookback, args.horizon)

        # (a) raw client rate
        tag = uuid.uuid4().hex[:6]
        topics(bootstrap, f"in-{tag}", f"out-{tag}", f"dlq-{tag}")
        produce(bootstrap, f"in-{tag}", recs)
        raw = raw_rate(bootstrap, f"in-{tag}", f"rawout-{tag}", len(recs), args.batch)

        # (b) adaptcast on the same records, same batch size
        worker = Worker(
            worker_config(bootstrap, tag, tmp / "state-b", ckpt, args.batch, args.lookback, args.horizon)
        )
        t0 = None
        while worker.counts["records"] < len(recs):
            if worker.step() and t0 is None:
                t0 = time.perf_counter()
        ours = worker.counts["records"] / (time.perf_counter() - t0)
        worker.close()

        # (c) latency at a fixed offered rate
        tag = uuid.uuid4().hex[:6]
        topics(bootstrap, f"in-{tag}", f"out-{tag}", f"dlq-{tag}")
        n_lat = int(args.rate * args.latency_seconds)
        lat_recs = records(args.series, n_lat // args.series + 1, seed=2)[:n_lat]
        worker = Worker(
            worker_config(bootstrap, tag, tmp / "state-c", ckpt, args.batch, args.lookback, args.horizon)
        )
        stop = threading.Event()
        serving = threading.Thread(
            target=lambda: [worker.step() for _ in iter(lambda: stop.is_set(), True)], daemon=True
        )
        serving.start()
        time.sleep(2.0)  # let the worker join the group before load starts
        produce(bootstrap, f"in-{tag}", lat_recs, rate=args.rate)
        deadline = time.monotonic() + 60
        while worker.counts["records"] < len(lat_recs) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        serving.join()
        worker.close()
        sent = {}
        for m in KafkaConsumer(
            f"in-{tag}", bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
        ):
            v = json.loads(m.value)
            sent[(v["series"], v["ts"])] = m.timestamp
        lat = []
        for m in KafkaConsumer(
            f"out-{tag}", bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=3000
        ):
            v = json.loads(m.value)
            key = (v["series"], v["issued_at"])
            if key in sent:
                lat.append(m.timestamp - sent[key])
        lat_ms = np.array(lat, dtype=float)
    summary = {
        "machine": f"{os.cpu_count()} cores",
        "records": len(recs),
        "series": args.series,
        "batch": args.batch,
        "raw_kafka_python_rec_per_s": round(raw, 1),
        "adaptcast_rec_per_s": round(ours, 1),
        "ratio": round(ours / raw, 3),
        "target_ratio": 0.5,
        "latency": {
            "offered_rec_per_s": args.rate,
            "predictions": int(lat_ms.size),
            "p50_ms": float(np.percentile(lat_ms, 50)) if lat_ms.size else None,
            "p99_ms": float(np.percentile(lat_ms, 99)) if lat_ms.size else None,
            "target_p99_ms": 50,
        },
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
