"""``adaptcast run`` without a broker: the configured offline feed through the same loop and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable

from adaptcast.streams.build import build_loop
from adaptcast.streams.config import Config
from adaptcast.streams.feed import declare_schedules, forecasting, load_feed, time_batches
from adaptcast.streams.metrics import Metrics, MetricsServer
from adaptcast.streams.step import Forecast
from adaptcast.streams.summary import RunSummary


def run_embedded(
    cfg: Config,
    rate: float | None = None,
    metrics: Metrics | None = None,
    sink: Callable[[list[Forecast]], None] | None = None,
) -> RunSummary:
    """Stream the feed one timestamp (all series) per batch; ``sink`` receives each batch's forecasts."""
    t0 = time.perf_counter()
    data = load_feed(cfg)
    cfg = declare_schedules(forecasting(cfg, data.targets), data)
    metrics = metrics or Metrics(max_model_age_s=cfg.metrics.max_model_age_s)
    loop = build_loop(cfg, metrics=metrics)
    server = MetricsServer.from_config(metrics, cfg.metrics)
    rejected = 0
    deadline = None if cfg.serving.max_seconds is None else t0 + cfg.serving.max_seconds
    try:
        for _, batch in time_batches(data):
            result = loop.process(batch)
            rejected += len(result.rejected)
            if sink is not None:
                sink(result.forecasts)
            if rate:
                time.sleep(len(batch) / rate)
            if deadline is not None and time.perf_counter() > deadline:
                break
    finally:
        if server is not None:
            server.close()
    source = f"scenario {data.name}" if cfg.backtest.data is None else data.name
    totals = {**loop.summary(), "series": data.n_series}
    return RunSummary.from_loop(totals, source, rejected=rejected, seconds=time.perf_counter() - t0)
