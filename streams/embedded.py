"""``adaptcast run`` without a broker: a built-in scenario streamed through the same loop and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adaptcast.drift.compute import ComputeLedger
from adaptcast.forecast import create_forecaster
from adaptcast.streams.config import Config
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import Metrics, MetricsServer
from adaptcast.streams.records import validate
from adaptcast.streams.retrain import Trainer, make_policy
from adaptcast.streams.scenarios import make_scenario


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
            f"{s['drift_alarms']} drift alarms, {s['retrains']} retrains, {self.rejected} rejected, model {s['model']} v{s['model_version']}, "
            f"{self.elapsed_seconds:.1f} s"
        )


def build_loop(
    cfg: Config,
    channels: list[str],
    metrics: Metrics,
    trainer_factory: Callable[[ComputeLedger], Trainer] | None = None,
    **kwargs: Any,
) -> ForecastLoop:
    """The loop a config describes: an untrained model template, the policy, the error memory."""
    m, a = cfg.model, cfg.adaptation
    ledger = ComputeLedger()
    if trainer_factory is not None:
        kwargs["trainer"] = trainer_factory(ledger)
    template = create_forecaster(
        m.kind, lookback=m.lookback, horizon=m.horizon, n_features=len(channels), n_targets=1, **m.params
    )
    policy = make_policy(a.policy, a.window, m.lookback, m.horizon, a.history)
    return ForecastLoop(
        template,
        channels,
        policy=policy,
        memory={} if a.memory else None,
        min_train_rows=a.min_train_rows,
        history=a.history,
        max_batch=cfg.serving.max_batch,
        metrics=metrics,
        ledger=ledger,
        **kwargs,
    )


def run_embedded(cfg: Config, rate: float | None = None, metrics: Metrics | None = None) -> RunSummary:
    """Stream ``cfg.scenario`` through the loop, one timestamp (all series) per batch."""
    t0 = time.perf_counter()
    sc = make_scenario(
        cfg.scenario.name, series=cfg.scenario.series, steps=cfg.scenario.steps, seed=cfg.scenario.seed
    )
    metrics = metrics or Metrics()
    loop = build_loop(cfg, [sc.target], metrics)
    server = MetricsServer(metrics, cfg.metrics.host, cfg.metrics.port) if cfg.metrics.enabled else None
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
    return RunSummary(
        sc.name, time.perf_counter() - t0, server.url if server else None, loop.summary(), rejected
    )
