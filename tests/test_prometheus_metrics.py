"""The metric registry keeps the naming rules and starts every label at zero; the endpoints tell the truth."""

from __future__ import annotations

import json
import math
import re
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
from click.testing import CliRunner

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.detectors import DETECTORS
from adaptcast.forecast import create_forecaster
from adaptcast.streams.cli import main
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import (
    MODEL_SERVING,
    OUTCOMES,
    PARTITIONS_ASSIGNED,
    RETRAIN_REASONS,
    Metrics,
    MetricsServer,
)
from adaptcast.streams.pushgateway import NUMBERS, backtest_registry
from adaptcast.streams.records import REASONS, Record

HOUR = 3_600_000
NAME = re.compile(r"^adaptcast_[a-z0-9_]+$")
LABELS = {"reason", "detector", "outcome", "stage", "phase", "clock", "topic", "partition", "version"}
NOT_BASE_UNITS = re.compile(
    r"_(ms|milliseconds|microseconds|minutes|hours|days|kilobytes|megabytes|percent)(_|$)"
)


def _families(metrics: Metrics):
    return list(metrics.registry.collect())


def test_every_metric_keeps_the_naming_rules():
    for fam in _families(Metrics()):
        assert NAME.match(fam.name), fam.name
        assert fam.documentation, f"{fam.name} has no help text"
        assert not NOT_BASE_UNITS.search(fam.name), f"{fam.name}: use base units (seconds, bytes, ratios)"
        for sample in fam.samples:
            assert set(sample.labels) - {"le"} <= LABELS, f"{sample.name}: labels {sorted(sample.labels)}"
            assert "series" not in sample.labels
        if fam.type == "counter":
            assert all(s.name.endswith(("_total", "_created")) for s in fam.samples), fam.name
        elif fam.type == "gauge":
            assert not fam.name.endswith("_total"), fam.name
        if fam.type == "histogram" and ("duration" in fam.name or "latency" in fam.name):
            assert fam.name.endswith("_seconds"), f"{fam.name}: times are in seconds"


def test_labelled_counters_start_with_every_known_value():
    m = Metrics()
    values = {fam.name: {tuple(sorted(s.labels.items())) for s in fam.samples} for fam in _families(m)}
    assert {(("reason", r),) for r in REASONS} <= values["adaptcast_records_rejected"]
    assert {(("detector", d),) for d in DETECTORS} <= values["adaptcast_drift_detections"]
    assert {(("reason", r),) for r in RETRAIN_REASONS} <= values["adaptcast_retrains"]
    outcomes = {(("outcome", o), ("reason", r)) for r in RETRAIN_REASONS for o in OUTCOMES.values()}
    assert outcomes <= values["adaptcast_retrain_outcomes"]
    phases = {(("clock", "wall"), ("phase", p)) for p in ("train", "predict", "correct")}
    assert phases <= values["adaptcast_compute_seconds"]


def test_compute_ledger_is_exported_at_scrape_time():
    m = Metrics()
    ledger = ComputeLedger(cuda=False)
    m.track_compute(ledger)
    ledger.add("correct", wall_s=0.25, cpu_s=0.5, samples=4)
    text = m.render().decode()
    assert 'adaptcast_compute_seconds_total{clock="wall",phase="correct"} 0.25' in text
    assert 'adaptcast_compute_samples_total{phase="correct"} 4.0' in text


def test_model_age_is_nan_until_a_model_serves():
    m = Metrics(max_model_age_s=60)
    assert math.isnan(m._model_age())
    m.model_swapped(3, trained_at=1.0)
    assert m._model_age() > 0 and m.ready
    assert "adaptcast_model_max_age_seconds 60.0" in m.render().decode()


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def served():
    """A metrics server around fresh metrics whose clock the test moves."""
    now = [0.0]
    m = Metrics(clock=lambda: now[0])
    srv = MetricsServer(m, port=0, stale_seconds=30)
    base = srv.url.removesuffix("/metrics")
    try:
        yield m, base, now
    finally:
        srv.close()


def test_readyz_is_503_until_the_loop_serves_a_model(served):
    m, base, _ = served
    template = create_forecaster("naive", lookback=4, horizon=2)
    loop = ForecastLoop(template, ["y"], metrics=m, min_train_rows=8)
    code, body = _get(base + "/readyz")
    assert code == 503 and MODEL_SERVING in body
    assert "adaptcast_ready 0.0" in _get(base + "/metrics")[1]
    step = 0
    while loop.model is None:
        loop.process([Record("a", step * HOUR, {"y": float(np.sin(step))})])
        step += 1
        assert step < 50, "the first model should be trained once min_train_rows rows are buffered"
    assert _get(base + "/readyz") == (200, "ready\n")
    assert "adaptcast_ready 1.0" in _get(base + "/metrics")[1]


def test_readyz_on_kafka_also_needs_assigned_partitions(served):
    m, base, _ = served
    m.set_condition(PARTITIONS_ASSIGNED, False)
    m.model_swapped(1, trained_at=0.0)
    code, body = _get(base + "/readyz")
    assert code == 503 and PARTITIONS_ASSIGNED in body
    m.set_partitions({("in", 0): 5, ("in", 1): 0})
    assert _get(base + "/readyz")[0] == 200
    text = _get(base + "/metrics")[1]
    assert 'adaptcast_consumer_lag_records{partition="0",topic="in"} 5.0' in text
    assert "adaptcast_partitions_assigned 2.0" in text
    m.set_partitions({("in", 1): 0})  # partition 0 moved to another worker: its lag series goes
    text = _get(base + "/metrics")[1]
    assert 'partition="0"' not in text and "adaptcast_partitions_assigned 1.0" in text
    m.set_partitions({})
    assert _get(base + "/readyz")[0] == 503


def test_healthz_turns_503_when_the_loop_stops_beating(served):
    m, base, now = served
    assert _get(base + "/healthz") == (200, "ok\n")
    now[0] = 29.0
    assert _get(base + "/healthz")[0] == 200
    now[0] = 31.0
    code, body = _get(base + "/healthz")
    assert code == 503 and "stalled" in body
    m.beat()
    assert _get(base + "/healthz")[0] == 200


class _Pushgateway(BaseHTTPRequestHandler):
    """Records each push: method, path and body."""

    pushes: ClassVar[list[tuple[str, str, str]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.pushes.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway():
    """URL of a stand-in Pushgateway, and the pushes it received."""
    _Pushgateway.pushes.clear()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Pushgateway)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", _Pushgateway.pushes
    finally:
        srv.shutdown()
        srv.server_close()


BACKTEST = ["backtest", "--scenario", "level_shift", "--model", "naive", "--lookback", "24", "--horizon", "6"]
BACKTEST += ["--steps", "300", "--series", "2", "--policy", "never", "--compare", "memory=off"]


def test_backtest_pushes_each_configurations_final_numbers(pushgateway, tmp_path):
    url, pushes = pushgateway
    res = CliRunner().invoke(main, [*BACKTEST, "--pushgateway", url, "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    ((method, path, body),) = pushes
    assert method == "PUT" and path.startswith("/metrics/job/adaptcast_backtest/data")
    summary = json.loads((tmp_path / "summary.json").read_text())
    for config, numbers in summary["configs"].items():
        assert f'adaptcast_backtest_mae{{config="{config}"}} {numbers["mae"]}' in body
    assert all(name in body for name, _ in NUMBERS.values())


def test_a_missing_number_is_pushed_as_nan():
    registry = backtest_registry({"data": "d", "configs": {"c": {"mae": 1.5, "mase": None}}})
    assert registry.get_sample_value("adaptcast_backtest_mae", {"config": "c"}) == 1.5
    assert math.isnan(registry.get_sample_value("adaptcast_backtest_mase", {"config": "c"}))


def test_an_unreachable_pushgateway_is_a_clear_error_after_the_results_are_written(tmp_path):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Pushgateway)
    port = srv.server_address[1]
    srv.server_close()  # nothing listens there now
    res = CliRunner().invoke(
        main, [*BACKTEST, "--pushgateway", f"http://127.0.0.1:{port}", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and f"127.0.0.1:{port}" in res.output
    assert f"the run itself finished and wrote {tmp_path}" in " ".join(res.output.split())
    assert (tmp_path / "summary.json").is_file()
