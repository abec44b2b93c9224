"""``make demo-live``: a local broker, a replayed scenario and a live worker, with a one-line status.

    python -m adaptcast.deploy.demo_live --seconds 60 --scenario level_shift --rate 200

Starts its own Kafka broker (or uses ``KAFKA_BOOTSTRAP_SERVERS``), creates fresh topics, replays
the scenario at ``--rate`` records/s in the background, serves it with ``adaptcast run``'s worker
and prints rate, consumer lag, live MAE and model version every second; stops everything after
``--seconds``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60.0, help="how long the demo runs")
    ap.add_argument(
        "--scenario", default="level_shift", help="scenario to replay (see `adaptcast scenarios`)"
    )
    ap.add_argument("--series", type=int, default=8)
    ap.add_argument("--rate", type=float, default=200.0, help="records per second offered")
    ap.add_argument("--model", default="arnet")
    args = ap.parse_args(argv)

    from kafka.admin import KafkaAdminClient, NewTopic

    from adaptcast.deploy.kafka import KafkaBroker
    from adaptcast.streams.config import load_config
    from adaptcast.streams.replay import replay
    from adaptcast.streams.scenarios import make_scenario
    from adaptcast.streams.service import Worker

    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="adaptcast-demo-")))
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        if not bootstrap:
            print("starting a local Kafka broker …", file=sys.stderr)
            broker = stack.enter_context(KafkaBroker(state_dir=tmp / "kafka"))
            bootstrap = broker.bootstrap
        tag = uuid.uuid4().hex[:6]
        topics = {
            "input_topic": f"demo-in-{tag}",
            "output_topic": f"demo-out-{tag}",
            "dead_letter_topic": f"demo-dlq-{tag}",
        }
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(t, 4, 1) for t in topics.values()])
        admin.close()
        cfg = load_config(
            overrides={
                "kafka": {"bootstrap_servers": bootstrap, "group": f"demo-{tag}", **topics},
                "model": {"kind": args.model},
                "state": {"dir": str(tmp / "state")},
                "metrics": {"enabled": False},
            }
        )
        steps = int(args.seconds * args.rate / args.series) + 1
        records = list(make_scenario(args.scenario, series=args.series, steps=steps).records())
        feeder = threading.Thread(
            target=replay, args=(records, cfg.kafka, topics["input_topic"], args.rate), daemon=True
        )
        worker = Worker(cfg)
        feeder.start()
        end = time.monotonic() + args.seconds
        last_t, last_n, next_status = time.monotonic(), 0, time.monotonic() + 1
        print(
            f"serving {topics['input_topic']} → {topics['output_topic']} on {bootstrap} for {args.seconds:.0f} s",
            file=sys.stderr,
        )
        try:
            while time.monotonic() < end:
                worker.step()
                now = time.monotonic()
                if now >= next_status:
                    n = worker.counts["records"]
                    mae = worker.metrics.live_error._value.get()
                    print(
                        f"\r{n:>7} records  {((n - last_n) / (now - last_t)):7.1f} rec/s  lag {worker.source.lag():>6}  "
                        f"live MAE {mae:7.3f}  model {worker.loop.model_version:<24}",
                        end="",
                        flush=True,
                    )
                    last_t, last_n, next_status = now, n, now + 1
        finally:
            worker.close()  # flush, commit, snapshot
        summary = worker.summary()
        print(
            f"\ndone: {summary.get('records', 0)} records, {summary.get('predictions', 0)} predictions, "
            f"{summary['retrains']} retrains, {summary['drift_alarms']} drift alarms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
