"""A real Prometheus scrapes a Kafka worker streaming a drift; every panel, rule and alert signal has data.

Prometheus scrapes every second with deploy/prometheus's rules. Once the worker has served the
whole scenario (a level shift: drift alarm, retrain, swap) each expression of the dashboards and
rule files is asked for over the run, Grafana variables substituted; each must parse, and all but
whole alerts (empty while all is well) must return at least one series.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
import uuid

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from adaptcast.deploy.kafka.ports import free_port
from adaptcast.deploy.monitoring.prometheus import Prometheus, render_config
from adaptcast.deploy.monitoring.queries import all_expressions
from adaptcast.deploy.monitoring.rules import SCRAPE_JOB
from adaptcast.streams.config import load_config
from adaptcast.streams.metrics import Metrics, MetricsServer
from adaptcast.streams.scenarios import make_scenario
from adaptcast.streams.service import Worker

pytestmark = [pytest.mark.kafka, pytest.mark.prometheus, pytest.mark.slow]

BURSTS = 12  # the scenario arrives in this many bursts, one per second, so scrapes see it move
WAIT_S = 180.0


def _topics(bootstrap: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    names = {
        "input": f"mon-in-{tag}",
        "output": f"mon-out-{tag}",
        "dlq": f"mon-dlq-{tag}",
        "group": f"mon-{tag}",
    }
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(names[k], 2, 1) for k in ("input", "output", "dlq")])
    admin.close()
    return names


def _feed(bootstrap: str, topic: str, records: list[dict], dead_letter: bool = False) -> None:
    """Records in bursts, with ``dead_letter``: plus one record that cannot be decoded."""
    prod = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    size = -(-len(records) // BURSTS)
    for i in range(0, len(records), size):
        for rec in records[i : i + size]:
            prod.send(topic, key=rec["series"].encode(), value=json.dumps(rec).encode())
        if i == 0 and dead_letter:
            prod.send(topic, key=b"s0", value=b"not json")
        prod.flush()
        time.sleep(1.0)
    prod.close()


def _wait_for(what: str, check, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def _value(prom: Prometheus, expr: str) -> float:
    result = prom.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def test_every_panel_rule_and_alert_signal_has_data(kafka_bootstrap, prometheus_binary, tmp_path):
    names = _topics(kafka_bootstrap)
    cfg = load_config(
        overrides={
            "kafka": {
                "bootstrap_servers": kafka_bootstrap,
                "input_topic": names["input"],
                "output_topic": names["output"],
                "dead_letter_topic": names["dlq"],
                "group": names["group"],
                "poll_timeout_ms": 100,
            },
            "model": {"kind": "arnet", "params": {"epochs": 10}},
            "state": {"dir": str(tmp_path / "state")},
            "metrics": {"port": 0},
        },
        environ={},
    )
    metrics = Metrics()
    server = MetricsServer.from_config(metrics, cfg.metrics)
    assert server is not None
    target = f"127.0.0.1:{server.port}"
    prom = Prometheus(tmp_path / "prometheus", free_port())
    worker = Worker(cfg, metrics)
    thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    try:
        prom.start(render_config(target, scrape_interval="1s"))
        thread.start()
        _wait_for("a first scrape", lambda: _value(prom, f'up{{job="{SCRAPE_JOB}"}}') == 1)
        started = time.time()
        scenario = make_scenario("level_shift", series=4, steps=24 * 7 * 4, seed=0)
        records = list(scenario.records())
        # the first model must serve before the shift arrives, however fast the box trains: one
        # fitted on data that already holds the shift would see no drift to raise an alarm about
        before = scenario.events[0].start_step * len(scenario.series)
        _feed(kafka_bootstrap, names["input"], records[:before], dead_letter=True)
        swapped = 'sum(adaptcast_retrain_outcomes_total{outcome="swapped"})'
        _wait_for("a first model", lambda: _value(prom, swapped) >= 1)
        _feed(kafka_bootstrap, names["input"], records[before:])
        # counters seen moving by Prometheus, not just by the worker: the drift, then its retrain swapped in
        _wait_for("a drift alarm", lambda: _value(prom, "sum(adaptcast_drift_detections_total)") >= 1)
        _wait_for("a model swapped in after the drift", lambda: _value(prom, swapped) >= 2)
        _wait_for(
            "recording rules over the run",
            lambda: _value(prom, "count(instance:adaptcast_predictions:rate5m)") >= 1,
        )
        with urllib.request.urlopen(f"http://{target}/readyz", timeout=5) as resp:
            assert resp.status == 200  # a model serves and partitions are assigned
        time.sleep(3)  # a few more scrapes and rule evaluations after the swap
        end = time.time()
        variables = {
            "job": SCRAPE_JOB,
            "instance": target,
            "__rate_interval": "30s",
            "__interval": "10s",
            "datasource": "unused",
        }
        rows, missing = [], []
        for e in all_expressions():
            series = prom.query_range(e.substituted(variables), start=started, end=end, step=1)
            rows.append((e.source, len(series)))
            if e.must_match and not series:
                missing.append(f"{e.source}: {e.expr}")
    finally:
        worker.stop_event.set()
        thread.join(timeout=60)
        server.close()
        prom.stop()
    width = max(len(source) for source, _ in rows)
    print(f"\n{'panel / rule':<{width}}  series")
    for source, count in rows:
        print(f"{source:<{width}}  {count}")
    assert not missing, "no series for:\n" + "\n".join(missing)
