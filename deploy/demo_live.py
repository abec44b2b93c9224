"""``make demo-live``: a local broker, a replayed scenario and a live worker, with a one-line status."""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--seconds",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="How long the demo runs.",
)
@click.option(
    "--scenario",
    default="level_shift",
    show_default=True,
    help="Scenario to replay (see `adaptcast scenarios`).",
)
@click.option(
    "--series", type=click.IntRange(min=1), default=8, show_default=True, help="Series in the scenario."
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=200.0,
    show_default=True,
    help="Records per second offered.",
)
@click.option("--model", default="arnet", show_default=True, help="Model kind to serve.")
def main(seconds: float, scenario: str, series: int, rate: float, model: str) -> None:
    """Serve a replayed drift scenario live through Kafka and show rate, lag, error and model.

    Starts its own Kafka broker (or uses KAFKA_BOOTSTRAP_SERVERS), creates fresh topics, replays
    the scenario at --rate records/s in the background, serves it with `adaptcast run`'s worker
    and prints rate, consumer lag, live MAE and model version every second; stops everything
    after --seconds.

    \b
    Examples:
      python -m adaptcast.deploy.demo_live
      python -m adaptcast.deploy.demo_live --seconds 60 --scenario level_shift --rate 200
      KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 python -m adaptcast.deploy.demo_live --model naive
    """
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
            click.echo("starting a local Kafka broker …", err=True)
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
                "model": {"kind": model},
                "state": {"dir": str(tmp / "state")},
                "metrics": {"enabled": False},
            }
        )
        steps = int(seconds * rate / series) + 1
        records = list(make_scenario(scenario, series=series, steps=steps).records())
        feeder = threading.Thread(
            target=replay, args=(records, cfg.kafka, topics["input_topic"], rate), daemon=True
        )
        worker = Worker(cfg)
        feeder.start()
        end = time.monotonic() + seconds
        last_t, last_n, next_status = time.monotonic(), 0, time.monotonic() + 1
        click.echo(
            f"serving {topics['input_topic']} → {topics['output_topic']} on {bootstrap} for {seconds:.0f} s",
            err=True,
        )
        try:
            while time.monotonic() < end:
                worker.step()
                now = time.monotonic()
                if now >= next_status:
                    n = worker.counts["records"]
                    rate_now = (n - last_n) / (now - last_t)
                    mae = worker.metrics.live_error._value.get()
                    lag = sum(worker.source.lags().values())
                    click.echo(
                        f"\r{n:>7} records  {rate_now:7.1f} rec/s  lag {lag:>6}  "
                        f"live MAE {mae:7.3f}  model {worker.loop.model_version:<24}",
                        nl=False,
                    )
                    last_t, last_n, next_status = now, n, now + 1
        finally:
            worker.close()  # flush, commit, snapshot
        click.echo("\n" + worker.summary().line("demo-live"))


if __name__ == "__main__":
    main()
