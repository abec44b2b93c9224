"""Prometheus metrics of one adaptcast process and the HTTP endpoint serving them.

Names follow docs/architecture.md: prefix ``adaptcast_``, base units, ``_total`` counters, no series labels.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TRAIN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class Metrics:
    """All metrics on a private registry, so several loops (tests) never collide."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.records_consumed = Counter("adaptcast_records_consumed_total", "Input records read", registry=r)
        self.records_rejected = Counter(
            "adaptcast_records_rejected_total", "Input records sent to dead letters", ["reason"], registry=r
        )
        self.predictions = Counter("adaptcast_predictions_total", "Forecasts produced", registry=r)
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
        self.drift_detections = Counter(
            "adaptcast_drift_detections_total", "Drift alarms", ["detector"], registry=r
        )
        self.retrains = Counter("adaptcast_retrains_total", "Model retrains started", ["reason"], registry=r)
        self.retrain_failures = Counter(
            "adaptcast_retrain_failures_total", "Retrains that failed or were rejected", ["stage"], registry=r
        )
        self.model_version = Gauge("adaptcast_model_version", "Serving model version number", registry=r)
        self.model_trained = Gauge(
            "adaptcast_model_trained_timestamp_seconds",
            "When the serving model was trained (unix time)",
            registry=r,
        )
        self.vh_rows = Gauge(
            "adaptcast_variance_horizon_rows", "Rows chosen by the last training-window decision", registry=r
        )
        self.memory_hit_ratio = Gauge(
            "adaptcast_error_memory_hit_ratio", "Share of corrections that found stored errors", registry=r
        )
        self.memory_correction = Histogram(
            "adaptcast_error_memory_correction_abs",
            "Mean absolute correction per forecast (target units)",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=r,
        )
        self.consumer_lag = Gauge(
            "adaptcast_consumer_lag_records", "Records behind the end of the input topic", registry=r
        )
        self.series_active = Gauge("adaptcast_series_active", "Series with state in this process", registry=r)
        self.build = Info("adaptcast_build", "adaptcast build information", registry=r)
        try:
            version = metadata.version("adaptcast")
        except metadata.PackageNotFoundError:
            version = "unknown"
        self.build.info({"version": version})
        self.heartbeat = time.monotonic()
        self.ready = False

    def beat(self) -> None:
        """Mark the loop alive (read by /healthz)."""
        self.heartbeat = time.monotonic()

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
                if path == "/metrics":
                    self._send(200, outer.metrics.render(), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    alive = time.monotonic() - outer.metrics.heartbeat < stale_seconds
                    self._send(200 if alive else 503, b"ok\n" if alive else b"loop stalled\n")
                elif path == "/readyz":
                    ok = outer.metrics.ready
                    self._send(200 if ok else 503, b"ready\n" if ok else b"not ready\n")
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
                "pick another --metrics-port (0 = any free port)"
            ) from None
        self.port = self._server.server_address[1]
        self.host = host
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-http", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
