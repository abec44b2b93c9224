"""Soak: a long stream through one worker on a real broker, retraining on, watching for slow leaks.

A producer thread streams ``--records`` records round-robin over ``--series`` series (a noisy daily
sine, hourly steps) while one ``adaptcast run`` worker process serves them with the naive model and a
periodic retrain policy that fires about ``--retrains`` times, keeping ``--keep-versions`` model
versions. Every ``--sample-s`` seconds the bench reads the worker's RSS, open descriptors and threads
(``/proc``), the sizes of its snapshot and checkpoint directories, the versions in its store, and its
``/metrics`` counters. It prints one JSON object: throughput, the figures of each half of the run
(halves by records consumed, not by time), and the checks

* RSS grows less than 5 % over the second half;
* descriptors and threads stay flat over the second half: the floor of its last third (its
  minimum) is no more than a small tolerance above the floor of its first third. A leak raises every
  sample; a client connection or the retrain thread that comes and goes raises only some, so a
  spike does not fail the check and a slow leak does;
* the store never holds more than ``--keep-versions`` versions, and old ones were pruned.

    python bench/soak.py                                   # 1,000,000 records, 500 series, own broker
    python bench/soak.py --records 200000 --out bench/results/soak_200k.json
    KAFKA_BOOTSTRAP_SERVERS=host:9092 python bench/soak.py --records 50000

``adaptation.history`` is bounded (``--history`` rows per series) so the worker's state reaches its
size early; with the default 10,000 rows a run this long would grow by design, not by a leak.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kafka import KafkaProducer  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from output import emit  # noqa: E402

from adaptcast.deploy.kafka.ports import free_port  # noqa: E402
from adaptcast.streams.records import format_timestamp  # noqa: E402

HOUR = 3_600_000
RSS_GROWTH_LIMIT_PCT = 5.0
FD_TOLERANCE, THREAD_TOLERANCE = 2, 1  # how far a floor may move without a leak
METRIC_LINE = re.compile(r"^(adaptcast_[a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.M)


@dataclass
class Sample:
    """One look at the worker process and its directories."""

    seconds: float
    consumed: float
    predictions: float
    retrains: float
    rss_bytes: int
    fds: int
    threads: int
    snapshot_bytes: int
    checkpoint_bytes: int
    versions: int
    oldest_version: int | None
    newest_version: int | None


def dir_bytes(path: Path) -> int:
    """Total size of the files under ``path`` (0 when it does not exist yet)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_size
            except OSError:  # pruned or renamed while we walked
                continue
    return total


def process_figures(pid: int) -> tuple[int, int, int]:
    """RSS in bytes, open descriptors and threads of ``pid``, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    threads = int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))
    return rss_kb * 1024, len(os.listdir(f"/proc/{pid}/fd")), threads


def scrape(url: str) -> dict[str, float]:
    """The worker's adaptcast_* counters, summed over their labels."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    totals: dict[str, float] = {}
    for name, value in METRIC_LINE.findall(text):
        totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def store_versions(models: Path) -> list[int]:
    """Version numbers present in the model store (directories named like 000001-…)."""
    if not models.is_dir():
        return []
    return sorted(int(p.name[:6]) for p in models.iterdir() if p.is_dir() and re.match(r"\d{6}-", p.name))


def stream(bootstrap: str, topic: str, n_records: int, n_series: int, done: threading.Event) -> None:
    """Produce ``n_records`` round-robin over the series, step by step, as fast as the broker takes them."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=256 * 1024)
    phase = [2 * math.pi * i / n_series for i in range(n_series)]
    for n in range(n_records):
        step, i = divmod(n, n_series)
        y = 20 + 5 * math.sin(2 * math.pi * step / 24 + phase[i]) + ((n * 7919) % 1000) / 1000 - 0.5
        record = {"series": f"s{i}", "ts": format_timestamp(step * HOUR), "values": {"y": y}}
        producer.send(topic, key=f"s{i}".encode(), value=orjson.dumps(record))
    producer.flush()
    producer.close()
    done.set()


def worker_config(bootstrap: str, tag: str, state: Path, port: int, args: argparse.Namespace) -> dict:
    every = max(args.records // args.series // args.retrains, 1)
    return {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "input_topic": f"soak-in-{tag}",
            "output_topic": f"soak-out-{tag}",
            "dead_letter_topic": f"soak-dlq-{tag}",
            "group": f"soak-{tag}",
            "poll_max_records": 500,
        },
        "model": {"kind": "naive", "lookback": args.lookback, "horizon": args.horizon},
        "adaptation": {
            "policy": f"periodic:{every}",
            "history": args.history,
            "min_train_rows": args.lookback,
        },
        "state": {"dir": str(state), "keep_versions": args.keep_versions, "snapshot_interval_s": 2.0},
        "metrics": {"host": "127.0.0.1", "port": port},
    }


def halves(samples: list[Sample], total: int) -> tuple[list[Sample], list[Sample]]:
    """Samples of the first and second half of the stream, split where half the records were consumed."""
    first = [s for s in samples if s.consumed < total / 2]
    return first, [s for s in samples if s.consumed >= total / 2]


def spread(values: list[int]) -> dict[str, int]:
    return {"min": min(values), "max": max(values)} if values else {}


def floor_rise(values: list[int]) -> int | None:
    """How far the minimum of the last third of ``values`` sits above that of the first third.

    None with fewer than three values, where no trend can be told from a spike.
    """
    if len(values) < 3:
        return None
    third = len(values) // 3
    return min(values[-third:]) - min(values[:third])


def summarize(samples: list[Sample], args: argparse.Namespace, policy: str, seconds: float) -> dict[str, Any]:
    first, second = halves(samples, args.records)
    busy = [s for s in samples if s.consumed > 0]
    # RSS: the median of the first three samples of the second half against the last three, so one
    # garbage-collector moment does not decide
    head = sorted(s.rss_bytes for s in second[:3])
    tail = sorted(s.rss_bytes for s in second[-3:])
    rss_mid, rss_end = (head[len(head) // 2], tail[len(tail) // 2]) if second else (0, 0)
    growth = 100.0 * (rss_end - rss_mid) / rss_mid if rss_mid else float("nan")
    fds2, threads2 = [s.fds for s in second], [s.threads for s in second]
    fds_rise, threads_rise = floor_rise(fds2), floor_rise(threads2)
    last = samples[-1]
    versions_max = max(s.versions for s in samples)
    span = busy[-1].seconds - busy[0].seconds if len(busy) > 1 else float("nan")
    return {
        "records": args.records,
        "series": args.series,
        "partitions": args.partitions,
        "model": "naive",
        "policy": policy,
        "history": args.history,
        "keep_versions": args.keep_versions,
        "seconds": round(seconds, 1),
        "throughput_records_per_s": round((busy[-1].consumed - busy[0].consumed) / span, 1) if span else None,
        "consumed": int(last.consumed),
        "predictions": int(last.predictions),
        "retrains": int(last.retrains),
        "samples": {"first_half": len(first), "second_half": len(second), "every_s": args.sample_s},
        "rss_mb": {
            "first_sample": round(samples[0].rss_bytes / 2**20, 1),
            "second_half_start": round(rss_mid / 2**20, 1),
            "end": round(rss_end / 2**20, 1),
            "max": round(max(s.rss_bytes for s in samples) / 2**20, 1),
        },
        "rss_growth_second_half_pct": round(growth, 2),
        "fds": {
            "first_half": spread([s.fds for s in first]),
            "second_half": spread(fds2),
            "second_half_floor_rise": fds_rise,
        },
        "threads": {
            "first_half": spread([s.threads for s in first]),
            "second_half": spread(threads2),
            "second_half_floor_rise": threads_rise,
        },
        "snapshot_dir_bytes": {"second_half": spread([s.snapshot_bytes for s in second])},
        "checkpoint_dir_bytes": {"second_half": spread([s.checkpoint_bytes for s in second])},
        "checkpoint_versions": {
            "max_present": versions_max,
            "end": last.versions,
            "newest_saved": last.newest_version,
            "oldest_at_end": last.oldest_version,
        },
        "checks": {
            "rss_growth_below_5pct": bool(growth < RSS_GROWTH_LIMIT_PCT),
            "fds_flat": fds_rise is not None and fds_rise <= FD_TOLERANCE,
            "threads_flat": threads_rise is not None and threads_rise <= THREAD_TOLERANCE,
            "versions_within_keep": versions_max <= args.keep_versions,
            "old_versions_pruned": (last.oldest_version or 0) > 1,
        },
        "tolerances": {"fds": FD_TOLERANCE, "threads": THREAD_TOLERANCE, "rss_pct": RSS_GROWTH_LIMIT_PCT},
    }


def run(args: argparse.Namespace, bootstrap: str, tmp: Path) -> tuple[dict[str, Any], list[Sample]]:
    tag = uuid.uuid4().hex[:8]
    port = free_port()
    cfg = worker_config(bootstrap, tag, tmp / "state", port, args)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    topics = [cfg["kafka"][k] for k in ("input_topic", "output_topic", "dead_letter_topic")]
    admin.create_topics([NewTopic(t, args.partitions if t == topics[0] else 1, 1) for t in topics])
    admin.close()
    (tmp / "worker.yaml").write_text(yaml.safe_dump(cfg))
    with open(tmp / "worker.log", "wb") as log:  # the child keeps its own copy of the descriptor
        worker = subprocess.Popen(
            [sys.executable, "-m", "adaptcast.streams.cli", "run", "--config", str(tmp / "worker.yaml")],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("ADAPTCAST__")},
        )
    produced = threading.Event()
    producer = threading.Thread(
        target=stream, args=(bootstrap, topics[0], args.records, args.series, produced), daemon=True
    )
    url = f"http://127.0.0.1:{port}/metrics"
    samples: list[Sample] = []
    began = time.monotonic()
    try:
        producer.start()
        while True:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited with {worker.returncode}; see {tmp / 'worker.log'}")
            if time.monotonic() - began > args.timeout_s:
                raise RuntimeError(f"not done within --timeout-s {args.timeout_s}")
            try:
                counters = scrape(url)
            except OSError:  # not serving metrics yet
                time.sleep(0.5)
                continue
            rss, fds, threads = process_figures(worker.pid)
            versions = store_versions(tmp / "state" / "models")
            samples.append(
                Sample(
                    seconds=round(time.monotonic() - began, 2),
                    consumed=counters.get("adaptcast_records_consumed_total", 0.0),
                    predictions=counters.get("adaptcast_predictions_total", 0.0),
                    retrains=counters.get("adaptcast_retrains_total", 0.0),
                    rss_bytes=rss,
                    fds=fds,
                    threads=threads,
                    snapshot_bytes=dir_bytes(tmp / "state" / "snapshots"),
                    checkpoint_bytes=dir_bytes(tmp / "state" / "models"),
                    versions=len(versions),
                    oldest_version=versions[0] if versions else None,
                    newest_version=versions[-1] if versions else None,
                )
            )
            if samples[-1].consumed >= args.records:
                break
            time.sleep(args.sample_s)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
    seconds = time.monotonic() - began
    return summarize(samples, args, cfg["adaptation"]["policy"], seconds), samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--series", type=int, default=500)
    ap.add_argument(
        "--partitions", type=int, default=1, help="input partitions (with more, periodic retrains stop early)"
    )
    ap.add_argument("--retrains", type=int, default=20, help="about how many periodic retrains to fire")
    ap.add_argument("--keep-versions", type=int, default=3, help="state.keep_versions")
    ap.add_argument("--history", type=int, default=256, help="adaptation.history: rows kept per series")
    ap.add_argument("--lookback", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=6)
    ap.add_argument("--sample-s", type=float, default=3.0, help="seconds between samples")
    ap.add_argument("--timeout-s", type=float, default=7200.0)
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument("--samples-out", type=Path, help="write every sample as JSON lines here")
    args = ap.parse_args()
    if args.records < args.series * 2:
        ap.error("--records must be at least twice --series")
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="adaptcast-soak-")))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            from adaptcast.deploy.kafka import KafkaBroker

            bootstrap = stack.enter_context(KafkaBroker(state_dir=tmp / "kafka")).bootstrap
        result, samples = run(args, bootstrap, tmp)
    emit(result, args.out)
    if args.samples_out:
        args.samples_out.write_text("".join(json.dumps(asdict(s)) + "\n" for s in samples))


if __name__ == "__main__":
    main()
