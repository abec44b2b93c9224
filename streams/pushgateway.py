"""A backtest's final numbers pushed to a Prometheus Pushgateway, one group per data set (optional)."""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

JOB = "adaptcast_backtest"
# summary.json key of each configuration → (metric, help); counts are gauges: a run's final value
NUMBERS = {
    "mae": ("adaptcast_backtest_mae", "Mean absolute error over every scored forecast point"),
    "mae_base": ("adaptcast_backtest_mae_base", "The same without error-memory correction"),
    "mase": ("adaptcast_backtest_mase", "MAE over the in-sample one-step naive MAE"),
    "smape": ("adaptcast_backtest_smape", "Symmetric mean absolute percentage error (percent)"),
    "n_forecasts": ("adaptcast_backtest_forecasts", "Forecasts made"),
    "n_retrains": ("adaptcast_backtest_retrains", "Models swapped in"),
    "n_drift_alarms": ("adaptcast_backtest_drift_alarms", "Drift alarms"),
    "train_seconds": ("adaptcast_backtest_train_seconds", "CPU seconds spent training"),
}


def backtest_registry(summary: dict[str, Any]) -> CollectorRegistry:
    """One gauge per number of :data:`NUMBERS`, labelled by configuration; missing numbers are NaN."""
    registry = CollectorRegistry()
    gauges = {key: Gauge(name, text, ["config"], registry=registry) for key, (name, text) in NUMBERS.items()}
    for config, numbers in summary["configs"].items():
        for key, gauge in gauges.items():
            value = numbers.get(key)
            gauge.labels(config).set(math.nan if value is None else float(value))
    return registry


class PushError(RuntimeError):
    """The Pushgateway could not be reached or refused the push; the message names its URL."""


def push_backtest(url: str, summary: dict[str, Any], timeout_s: float = 10.0) -> None:
    """Replace the group ``{job="adaptcast_backtest", data=<data set>}`` on the Pushgateway at ``url``."""
    try:
        push_to_gateway(
            url,
            job=JOB,
            registry=backtest_registry(summary),
            grouping_key={"data": summary["data"]},
            timeout=timeout_s,
        )
    except OSError as exc:  # urllib's URLError and HTTPError are OSErrors
        raise PushError(f"cannot push the backtest's numbers to the Pushgateway at {url}: {exc}") from None
