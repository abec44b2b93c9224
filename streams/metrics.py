"""Prometheus metrics of one adaptcast process and the HTTP endpoint serving them.

Names follow docs/architecture.md: prefix ``adaptcast_``, base units, ``_total`` counters, no series
labels. Labelled counters start at zero for every known label value, so a panel shows 0, not "no data".
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, Metric

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.detectors import DETECTORS
from adaptcast.drift.policy import Reason
from adaptcast.streams.config import MetricsConfig
from adaptcast.streams.events import (
    DriftAlarm,
    Event,
    Retrained,
    RetrainFailed,
    RetrainRejected,
    RetrainSuperseded,
)
from adaptcast.streams.records import REASONS

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TRAIN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
SCALED_ERROR_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)

RETRAIN_REASONS = tuple(r.value for r in (Reason.INITIAL, Reason.PERIODIC, Reason.DRIFT))
OUTCOMES: dict[type[Event], str] = {
    Retrained: "swapped",
    RetrainRejected: "rejected",
    RetrainFailed: "failed",
    RetrainSuperseded: "superseded",
}
FAILURE_STAGES: dict[type[Event], str] = {
    RetrainFailed: "train",
    RetrainRejected: "validation",
    RetrainSuperseded: "superseded",
}
RESET_REASONS = ("gap", "grid_change")  # why a series' window restarts (the loop's series_reset events)
COMPUTE_PHASES = ("train", "predict", "correct")  # the ComputeLedger phases the loop measures
COMPUTE_CLOCKS = {"wall": "wall_s", "cpu": "cpu_s", "cuda": "cuda_s"}

MODEL_SERVING = "model_serving"
PARTITIONS_ASSIGNED = "partitions_assigned"
KAFKA_CONNECTED = "kafka_connected"  # the broker answers (at start, then each second; Kafka only)
SCHEMA_REGISTRY = "schema_registry"  # no partition waits for the registry (with kafka.schema_registry_url)
DEFAULT_MAX_MODEL_AGE_S = 7 * 86_400.0


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """What ``histogram.observe(v)`` does for each value, with one increment per bucket.

    prometheus_client has no bulk observe, and one call per forecast costs more than the rest of
    the loop's per-record work; this reads the same bucket bounds and counters ``observe`` does.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if not v.size:
        return
    bounds = np.asarray(histogram._upper_bounds)
    at = np.searchsorted(bounds, v, side="left")  # the first bound >= the value, as observe picks
    histogram._sum.inc(float(v.sum()))
    for i, n in enumerate(np.bincount(at[at < bounds.size], minlength=bounds.size).tolist()):
        if n:
            histogram._buckets[i].inc(n)


class ComputeCollector:
    """The loop's :class:`ComputeLedger` as counters, read at scrape time: seconds and samples per phase."""

    def __init__(self) -> None:
        self.ledger: ComputeLedger | None = None

    def collect(self) -> Iterator[Metric]:
        totals = self.ledger.totals() if self.ledger is not None else {}
        phases = [*COMPUTE_PHASES, *(p for p in totals if p not in COMPUTE_PHASES and p != "all")]
        seconds = CounterMetricFamily(
            "adaptcast_compute_seconds",
            "Seconds spent per loop phase (train, predict, correct = error memory) on each clock",
            labels=["phase", "clock"],
        )
        samples = CounterMetricFamily(
            "adaptcast_compute_samples", "Windows processed per loop phase", labels=["phase"]
        )
        for phase in phases:
            row = totals.get(phase, {})
            for clock, key in COMPUTE_CLOCKS.items():
                seconds.add_metric([phase, clock], row.get(key, 0.0))
            samples.add_metric([phase], row.get("samples", 0))
        yield seconds
        yield samples

    def describe(self) -> Iterator[Metric]:
        return self.collect()


class Metrics:
    """All metrics on a private registry, so several loops (tests) never collide.

    Readiness is a set of named conditions (a model serves; on Kafka, partitions are assigned):
    ``/readyz`` and ``adaptcast_ready`` are 1 when all hold. ``clock`` times the loop's heartbeat.
    """

    def __init__(
        self,
        *,
        max_model_age_s: float = DEFAULT_MAX_MODEL_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        r = self.registry = CollectorRegistry()
        self.records_consumed = Counter("adaptcast_records_consumed_total", "Input records read", registry=r)
        self.records_rejected = Counter(
            "adaptcast_records_rejected_total", "Input records sent to dead letters", ["reason"], registry=r
        )
        self.predictions = Counter("adaptcast_predictions_total", "Forecasts produced", registry=r)
        self.forecasts_clipped = Counter(
            "adaptcast_forecasts_clipped_total",
            "Forecasts the model answered far beyond their window's range, served its last value instead",
            registry=r,
        )
        self.predict_duration = Histogram(
            "adaptcast_predict_duration_seconds",
            "Model predict call per micro-batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.predict_batch = Histogram(
            "adaptcast_predict_batch_size",
            "Windows per predict call",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
            registry=r,
        )
        self.train_duration = Histogram(
            "adaptcast_train_duration_seconds",
            "Training wall time per retrain",
            buckets=TRAIN_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "adaptcast_end_to_end_latency_seconds",
            "Record received to forecast emitted",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.live_error = Gauge(
            "adaptcast_live_mae", "Rolling mean absolute error of one-step-ahead forecasts", registry=r
        )
        self.live_persistence_error = Gauge(
            "adaptcast_live_persistence_mae",
            "The same for persistence (the last value as the forecast), on the same points: the bar to clear",
            registry=r,
        )
        self.interval_coverage = Gauge(
            "adaptcast_interval_coverage",
            "Share of the last 500 scored forecast points inside their interval, per nominal level",
            ["level"],
            registry=r,
        )
        self.grid_filled = Counter(
            "adaptcast_grid_filled_steps_total",
            "Missing grid points filled for the model's input (never scored)",
            registry=r,
        )
        self.series_resets = Counter(
            "adaptcast_series_resets_total",
            "Series windows restarted: after a gap longer than grid.max_fill, or onto a new grid",
            ["reason"],
            registry=r,
        )
        self.series_forgotten = Counter(
            "adaptcast_series_forgotten_total",
            "Series forgotten after more than grid.forget_after of their periods without a record",
            registry=r,
        )
        self.records_expired = Counter(
            "adaptcast_records_expired_total",
            "Input offsets the topic's retention deleted after the group's committed offset, before the "
            "group read them (counted when a partition is assigned)",
            registry=r,
        )
        self.series_moved = Counter(
            "adaptcast_series_partition_moves_total",
            "Records of a series met on another input partition than its last one (not keyed by series)",
            registry=r,
        )
        self.live_scaled_error = Histogram(
            "adaptcast_live_scaled_error",
            "Serving model's one-step absolute error in target standard deviations (as validation error)",
            buckets=SCALED_ERROR_BUCKETS,
            registry=r,
        )
        self.validation_error = Gauge(
            "adaptcast_validation_scaled_error",
            "Serving model's one-step MAE on its validation windows, in target standard deviations; "
            "after a one-fit routine refit, its recipe's last validated fit's (NaN: not validated by "
            "this process)",
            registry=r,
        )
        self.validation_error.set(math.nan)
        self.drift_detections = Counter(
            "adaptcast_drift_detections_total", "Drift alarms", ["detector"], registry=r
        )
        self.retrains = Counter("adaptcast_retrains_total", "Model retrains started", ["reason"], registry=r)
        self.retrain_outcomes = Counter(
            "adaptcast_retrain_outcomes_total",
            "Finished retrains by why they started and how they ended",
            ["reason", "outcome"],
            registry=r,
        )
        self.retrain_failures = Counter(
            "adaptcast_retrain_failures_total", "Retrains that failed or were rejected", ["stage"], registry=r
        )
        self.model_version = Gauge("adaptcast_model_version", "Serving model version number", registry=r)
        self.model_trained = Gauge(
            "adaptcast_model_trained_timestamp_seconds",
            "When the serving model was trained (unix time)",
            registry=r,
        )
        self.trained_at: float | None = None
        self.model_age = Gauge(
            "adaptcast_model_age_seconds", "Age of the serving model (NaN: none serves)", registry=r
        )
        self.model_age.set_function(self._model_age)
        self.model_max_age = Gauge(
            "adaptcast_model_max_age_seconds",
            "Configured age above which the serving model counts as stale (metrics.max_model_age_s)",
            registry=r,
        )
        self.model_max_age.set(max_model_age_s)
        self.vh_rows = Gauge(
            "adaptcast_variance_horizon_rows", "Rows chosen by the last training-window decision", registry=r
        )
        self.memory_hit_ratio = Gauge(
            "adaptcast_error_memory_hit_ratio", "Share of corrections that found stored errors", registry=r
        )
        self.memory_served_ratio = Gauge(
            "adaptcast_error_memory_served_ratio",
            "Mean share of the memory's correction served in the last predict call (1 all, 0.5 half, 0 none)",
            registry=r,
        )
        self.persistence_served_ratio = Gauge(
            "adaptcast_persistence_served_ratio",
            "Share of the last predict call's forecasts served the value at issue: on their series "
            "persistence has been erring clearly less than the model",
            registry=r,
        )
        self.memory_correction = Histogram(
            "adaptcast_error_memory_correction_abs",
            "Mean absolute correction per forecast (target units)",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.compute = ComputeCollector()
        r.register(self.compute)
        self.consumer_lag = Gauge(
            "adaptcast_consumer_lag_records",
            "Records behind the end of each assigned input partition",
            ["topic", "partition"],
            registry=r,
        )
        self._lag_keys: set[tuple[str, str]] = set()
        self.partitions = Gauge(
            "adaptcast_partitions_assigned", "Input partitions assigned to this worker", registry=r
        )
        self.series_active = Gauge("adaptcast_series_active", "Series with state in this process", registry=r)
        self.ready_gauge = Gauge("adaptcast_ready", "1 when /readyz answers 200, else 0", registry=r)
        self.ready_gauge.set_function(lambda: float(self.ready))
        self.build = Info("adaptcast_build", "adaptcast build information", registry=r)
        try:
            version = metadata.version("adaptcast")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.build.info({"version": version})
        self._init_labels()
        self.clock = clock
        self.heartbeat = clock()
        self.conditions: dict[str, bool] = {MODEL_SERVING: False}

    def _init_labels(self) -> None:
        """Create every known label value at zero."""
        for reason in REASONS:
            self.records_rejected.labels(reason)
        for detector in DETECTORS:
            self.drift_detections.labels(detector)
        for reason in RETRAIN_REASONS:
            self.retrains.labels(reason)
            for outcome in OUTCOMES.values():
                self.retrain_outcomes.labels(reason, outcome)
        for stage in FAILURE_STAGES.values():
            self.retrain_failures.labels(stage)
        for reason in RESET_REASONS:
            self.series_resets.labels(reason)

    # ---- liveness and readiness ---------------------------------------------------------------------
    def beat(self) -> None:
        """Mark the loop alive (read by /healthz)."""
        self.heartbeat = self.clock()

    def stalled_for(self) -> float:
        """Seconds since the loop last beat."""
        return self.clock() - self.heartbeat

    def set_condition(self, name: str, ok: bool = True) -> None:
        """Set one readiness condition (``MODEL_SERVING``, ``KAFKA_CONNECTED``, ``PARTITIONS_ASSIGNED``,
        ``SCHEMA_REGISTRY``)."""
        self.conditions[name] = ok

    @property
    def ready(self) -> bool:
        return all(self.conditions.values())

    def unmet(self) -> list[str]:
        """The readiness conditions that do not hold."""
        return [name for name, ok in self.conditions.items() if not ok]

    # ---- what the loop and the worker report ------------------------------------------------------------
    def count_event(self, event: Event) -> None:
        """Count a drift alarm or a training outcome; a swap also sets the validation error gauge."""
        if isinstance(event, DriftAlarm):
            self.drift_detections.labels(event.decision.detector).inc()
            return
        reason = event.decision.reason.value
        self.retrain_outcomes.labels(reason, OUTCOMES[type(event)]).inc()
        if isinstance(event, Retrained):
            if event.val_error is not None:  # an ungated routine refit leaves the last validated error
                self.validation_error.set(event.val_error)
        else:
            self.retrain_failures.labels(FAILURE_STAGES[type(event)]).inc()

    def model_swapped(self, number: int, trained_at: float) -> None:
        """A newly trained model serves: its number and training time; the worker is ready to serve."""
        self.model_version.set(number)
        self.set_model_trained(trained_at)
        self.set_condition(MODEL_SERVING)

    def set_model_trained(self, trained_at: float | None) -> None:
        """When the serving model was trained (unix time; None: unknown)."""
        self.trained_at = trained_at
        self.model_trained.set(trained_at or 0.0)

    def _model_age(self) -> float:
        return math.nan if self.trained_at is None else max(time.time() - self.trained_at, 0.0)

    def track_compute(self, ledger: ComputeLedger) -> None:
        """Export ``ledger`` (the loop's compute accounting) as ``adaptcast_compute_*_total``."""
        self.compute.ledger = ledger

    def set_partitions(self, lags: Mapping[tuple[str, int], int]) -> None:
        """The assigned partitions and each one's lag; partitions no longer assigned are dropped."""
        keys = {(topic, str(p)) for topic, p in lags}
        for key in self._lag_keys - keys:
            self.consumer_lag.remove(*key)
        for (topic, p), lag in lags.items():
            self.consumer_lag.labels(topic, str(p)).set(lag)
        self._lag_keys = keys
        self.partitions.set(len(keys))
        self.set_condition(PARTITIONS_ASSIGNED, bool(keys))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """``/metrics``, ``/healthz`` (loop beat within ``stale_seconds``) and ``/readyz`` on a daemon thread."""

    def __init__(
        self, metrics: Metrics, host: str = "127.0.0.1", port: int = 9108, stale_seconds: float = 30.0
    ):
        self.metrics = metrics
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                m = outer.metrics
                if path == "/metrics":
                    self._send(200, m.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    stalled = m.stalled_for()
                    if stalled < stale_seconds:
                        self._send(200, b"ok\n")
                    else:
                        self._send(503, f"loop stalled: no beat for {stalled:.0f} s\n".encode())
                elif path == "/readyz":
                    unmet = m.unmet()
                    body = f"not ready: {', '.join(unmet)}\n" if unmet else "ready\n"
                    self._send(503 if unmet else 200, body.encode())
                else:
                    self._send(404, b"try /metrics, /healthz or /readyz\n")

            def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as exc:
            raise OSError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}; "
                "pick another --metrics-host/--metrics-port (port 0 = any free port)"
            ) from None
        self.port = self._server.server_address[1]
        self.host = host
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    @classmethod
    def from_config(cls, metrics: Metrics, cfg: MetricsConfig) -> MetricsServer | None:
        """The server ``cfg`` describes, or None when metrics are disabled."""
        if not cfg.enabled:
            return None
        return cls(metrics, cfg.host, cfg.port, stale_seconds=cfg.stale_after_s)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    @property
    def address(self) -> tuple[str, int]:
        """The listening socket's own (host, port): where the server really is."""
        host, port = self._server.socket.getsockname()[:2]
        return host, port

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
