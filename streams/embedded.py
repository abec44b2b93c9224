"""``adaptcast run`` without a broker: a built-in scenario streamed through the same loop and metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from forecast import create_forecaster
from forecast.windows import sliding_windows
from streams.config import Config
from streams.loop import ForecastLoop
from streams.metrics import Metrics, MetricsServer
from streams.records import validate
from streams.scenarios import make_scenario


@dataclass
class RunSummary:
    scenario: str
    elapsed_seconds: float
    metrics_url: str | None
    loop: dict[str, Any]
    rejected: int

    def line(self) -> str:
        s = self.loop
        mae = "n/a" if s["mae"] is None else f"{s['mae']:.4f}"
        return (
            f"adaptcast run: scenario {self.scenario} ({s['series']} series): {s['records']} records, "
            f"{s['forecasts']} forecasts, {s['scored_points']} scored points, MAE {mae}, "
            f"{self.rejected} rejected, model {s['model']} v{s['model_version']}, {self.elapsed_seconds:.1f} s"
        )


def run_embedded(cfg: Config, rate: float | None = None, metrics: Metrics | None = None) -> RunSummary:
    """Stream ``cfg.scenario`` through the loop, one timestamp (all series) per batch."""
    t0 = time.perf_counter()
    sc = make_scenario(cfg.scenario.name, series=cfg.scenario.series, steps=cfg.scenario.steps, seed=cfg.scenario.seed)
    channels = [sc.target]
    m = cfg.model
    model = create_forecaster(m.kind, lookback=m.lookback, horizon=m.horizon, n_features=len(channels), n_targets=1, **m.params)
    wide = sc.wide().drop("date").to_numpy().astype(np.float32)  # [steps, series]
    warmup = min(cfg.adaptation.min_train_rows, wide.shape[0] // 2)
    # warm-up: fit on the first rows of every series, then serve the rest
    Xs, Ys = zip(*(sliding_windows(wide[:warmup, j], m.lookback, m.horizon) for j in range(wide.shape[1])))
    model.fit(np.concatenate(Xs), np.concatenate(Ys))
    metrics = metrics or Metrics()
    server = MetricsServer(metrics, cfg.metrics.host, cfg.metrics.port) if cfg.metrics.enabled else None
    loop = ForecastLoop(model, channels, metrics=metrics, max_batch=cfg.serving.max_batch)
    metrics.model_version.set(0)
    metrics.ready = True
    rejected = 0
    deadline = None if cfg.serving.max_seconds is None else t0 + cfg.serving.max_seconds
    n_series = len(sc.series)
    rows = list(sc.records())
    try:
        for i in range(0, len(rows), n_series):
            batch = [validate(r) for r in rows[i : i + n_series]]
            result = loop.process(batch)
            rejected += len(result.rejected)
            if rate:
                time.sleep(len(batch) / rate)
            if deadline is not None and time.perf_counter() > deadline:
                break
    finally:
        if server is not None:
            server.close()
    return RunSummary(sc.name, time.perf_counter() - t0, server.url if server else None, loop.summary(), rejected)
