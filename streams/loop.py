"""The adaptation loop shared by every front end: records in, forecasts out, errors scored as truth arrives.

The loop is pure with respect to I/O: sources, sinks and clocks live outside it, so the offline
backtest and the live Kafka service run this same code.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecast.base import BaseForecaster
from streams.metrics import Metrics
from streams.records import DUPLICATE, LATE, MISSING_VALUE, Record, RecordError, format_timestamp
from streams.state import PendingForecast, RingBuffer, SeriesState


@dataclass
class Forecast:
    """One emitted forecast: ``yhat``/``yhat_base`` are ``[horizon, n_targets]`` in target units."""

    series: str
    issued_at_ms: int
    ts_ms: list[int]
    yhat: np.ndarray
    yhat_base: np.ndarray
    model: str
    model_version: str

    def to_json(self, targets: list[str]) -> dict[str, Any]:
        """The prediction record of DESIGN.md (per-target lists over the horizon)."""
        return {
            "series": self.series,
            "issued_at": format_timestamp(self.issued_at_ms),
            "ts": [format_timestamp(t) for t in self.ts_ms],
            "yhat": {name: self.yhat[:, j].tolist() for j, name in enumerate(targets)},
            "yhat_base": {name: self.yhat_base[:, j].tolist() for j, name in enumerate(targets)},
            "model": self.model,
            "model_version": self.model_version,
            "correction": (self.yhat - self.yhat_base).mean(axis=1).tolist(),
        }


@dataclass
class ScoredError:
    """Truth met a forecast: absolute errors of the corrected and base forecast at one lead time."""

    series: str
    ts_ms: int
    lead: int
    abs_error: np.ndarray
    abs_error_base: np.ndarray


@dataclass
class StepResult:
    """What one ``process`` call produced."""

    forecasts: list[Forecast] = field(default_factory=list)
    rejected: list[tuple[Record, RecordError]] = field(default_factory=list)
    scored: list[ScoredError] = field(default_factory=list)


class ForecastLoop:
    """Keeps per-series windows, predicts in micro-batches and scores forecasts against later truth.

    ``channels`` are the value names of a record the model reads (targets first, as the model
    expects); a record lacking one is rejected. Records for a series must arrive in time order:
    an older timestamp is rejected as ``late``, an equal one as ``duplicate`` (the first wins).
    """

    def __init__(
        self,
        model: BaseForecaster,
        channels: list[str],
        *,
        history: int | None = None,
        max_batch: int = 256,
        metrics: Metrics | None = None,
        error_window: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ):
        if len(channels) != model.n_features:
            raise ValueError(f"model expects {model.n_features} input channels, got {len(channels)}: {channels}")
        self.model = model
        self.channels = list(channels)
        self.targets = self.channels[: model.n_targets]
        self.history = max(history or model.lookback, model.lookback)
        self.max_batch = max_batch
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.states: dict[str, SeriesState] = {}
        self.model_version = model.version or "0"
        self._one_step_errors: deque[float] = deque(maxlen=error_window)
        self._abs_sum = np.zeros(2)  # corrected, base
        self._n_scored = 0
        self.n_records = 0
        self.n_forecasts = 0

    # ---- public ---------------------------------------------------------------------------
    def process(self, records: Iterable[Record], received_at: float | None = None) -> StepResult:
        """Ingest records in order; every accepted record with a full window yields one forecast."""
        received_at = self.clock() if received_at is None else received_at
        result = StepResult()
        due: dict[str, SeriesState] = {}
        for rec in records:
            self.n_records += 1
            self.metrics.records_consumed.inc()
            try:
                row = self._row(rec)
                state = self._state(rec.series)
                self._check_order(rec, state)
            except RecordError as err:
                result.rejected.append((rec, err))
                self.metrics.records_rejected.labels(err.reason).inc()
                continue
            if rec.series in due or len(due) >= self.max_batch:
                self._flush(due, result, received_at)
            self._score(rec, row, state, result)
            if state.last_ts_ms is not None:
                state.period_ms = rec.ts_ms - state.last_ts_ms
            state.last_ts_ms = rec.ts_ms
            state.buffer.append(row)
            if len(state.buffer) >= self.model.lookback and state.period_ms:
                due[rec.series] = state
        self._flush(due, result, received_at)
        self.metrics.series_active.set(len(self.states))
        self.metrics.beat()
        return result

    def summary(self) -> dict[str, Any]:
        n = max(self._n_scored, 1)
        return {
            "records": self.n_records,
            "forecasts": self.n_forecasts,
            "series": len(self.states),
            "scored_points": self._n_scored,
            "mae": float(self._abs_sum[0] / n) if self._n_scored else None,
            "mae_base": float(self._abs_sum[1] / n) if self._n_scored else None,
            "model": self.model.kind,
            "model_version": self.model_version,
        }

    # ---- internals ----------------------------------------------------------------------------
    def _row(self, rec: Record) -> np.ndarray:
        try:
            return np.array([rec.values[c] for c in self.channels], dtype=np.float32)
        except KeyError as exc:
            raise RecordError(MISSING_VALUE, f"values lacks {exc.args[0]!r} (this model reads {', '.join(self.channels)})") from None

    def _state(self, series: str) -> SeriesState:
        state = self.states.get(series)
        if state is None:
            state = self.states[series] = SeriesState(RingBuffer(self.history, len(self.channels)))
        return state

    @staticmethod
    def _check_order(rec: Record, state: SeriesState) -> None:
        if state.last_ts_ms is None or rec.ts_ms > state.last_ts_ms:
            return
        if rec.ts_ms == state.last_ts_ms:
            raise RecordError(DUPLICATE, f"series {rec.series!r} already has a record at {format_timestamp(rec.ts_ms)}")
        raise RecordError(LATE, f"series {rec.series!r} is at {format_timestamp(state.last_ts_ms)}; record at {format_timestamp(rec.ts_ms)} is late")

    def _score(self, rec: Record, row: np.ndarray, state: SeriesState, result: StepResult) -> None:
        """Compare the new truth with every pending forecast whose horizon covers its timestamp."""
        truth = row[: len(self.targets)]
        period = state.period_ms or 1
        keep: deque[PendingForecast] = deque()
        for p in state.pending:
            lead = round((rec.ts_ms - p.issued_at_ms) / period)
            if 1 <= lead <= len(p.yhat) and abs(rec.ts_ms - p.issued_at_ms - lead * period) * 2 <= period:
                err = np.abs(truth - p.yhat[lead - 1])
                err_base = np.abs(truth - p.yhat_base[lead - 1])
                p.residuals[lead - 1] = truth - p.yhat_base[lead - 1]
                result.scored.append(ScoredError(rec.series, rec.ts_ms, lead, err, err_base))
                self._abs_sum += (float(err.mean()), float(err_base.mean()))
                self._n_scored += 1
                if lead == 1:
                    self._one_step_errors.append(float(err.mean()))
                if lead == len(p.yhat):
                    self._complete(p)
                    continue
            if p.issued_at_ms + len(p.yhat) * period > rec.ts_ms:
                keep.append(p)
        state.pending = keep
        if self._one_step_errors:
            self.metrics.live_error.set(sum(self._one_step_errors) / len(self._one_step_errors))

    def _complete(self, pending: PendingForecast) -> None:
        """Hook: every lead time of a forecast has been observed."""

    def _flush(self, due: dict[str, SeriesState], result: StepResult, received_at: float) -> None:
        if not due:
            return
        names = list(due)
        windows = np.stack([due[s].buffer.last(self.model.lookback) for s in names])
        t0 = time.perf_counter()
        base = self.model.predict(windows)
        yhat = base
        self.metrics.predict_duration.observe(time.perf_counter() - t0)
        self.metrics.predict_batch.observe(len(names))
        for i, s in enumerate(names):
            st = due[s]
            assert st.last_ts_ms is not None and st.period_ms is not None
            fc = Forecast(
                series=s,
                issued_at_ms=st.last_ts_ms,
                ts_ms=[st.last_ts_ms + k * st.period_ms for k in range(1, self.model.horizon + 1)],
                yhat=yhat[i],
                yhat_base=base[i],
                model=self.model.kind,
                model_version=self.model_version,
            )
            st.pending.append(PendingForecast(st.last_ts_ms, yhat[i], base[i], None, self.model_version, np.full_like(base[i], np.nan)))
            result.forecasts.append(fc)
        self.n_forecasts += len(names)
        self.metrics.predictions.inc(len(names))
        now = self.clock()
        self.metrics.end_to_end.observe(max(now - received_at, 0.0))
        due.clear()
