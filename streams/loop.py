"""The adaptation loop shared by every front end.

records → per-series windows on a time grid → micro-batched predict → error-memory correction → forecasts;
truth for earlier forecasts → live error → :class:`Adaptation` (retrain policy, candidate trained
inline or in the background, validated against the serving model, swapped in).

The loop does no I/O of its own: sources, sinks, checkpoint stores and clocks are injected, so
the offline backtest and the live Kafka service run this same code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.conformal import ConformalParams, OnlineConformal, level_name
from adaptcast.drift.gate import CorrectionGate, midpoint
from adaptcast.drift.level import LevelTerm
from adaptcast.drift.memory import ErrorMemory
from adaptcast.drift.passes import occurrence
from adaptcast.drift.policy import RetrainPolicy, StepInfo
from adaptcast.forecast.base import BaseForecaster
from adaptcast.forecast.envelope import Bounds
from adaptcast.forecast.exports import counter_note
from adaptcast.forecast.outliers import far_beyond
from adaptcast.streams.adaptation import VALIDATE_MARGIN, Adaptation
from adaptcast.streams.calendar import DAY_MS, advance, describe, nominal_ms, shift
from adaptcast.streams.events import (
    DriftAlarm,
    Event,
    GapFilled,
    LoopEvent,
    Retrained,
    SeriesEvent,
    SeriesReset,
)
from adaptcast.streams.grid import (
    CLOSURE_MAX_MS,
    FAST_MS,
    TOO_FAST,
    Action,
    GridRules,
    Placement,
    SeriesGrid,
    fill_rows,
    own_period,
    place,
    steady,
)
from adaptcast.streams.metrics import Metrics, observe_many
from adaptcast.streams.pending import ForecastStore
from adaptcast.streams.rate import same_step
from adaptcast.streams.records import LATE, MISSING_VALUE, OFF_GRID, Record, RecordError, format_timestamp
from adaptcast.streams.resample import Bucket, Resample, period_start
from adaptcast.streams.retrain import InlineTrainer, Trainer
from adaptcast.streams.schedule import CLOSED, MIN_WEEKS, is_scheduled
from adaptcast.streams.state import POSITIONS_PER_SERIES, Pending, RingBuffer, SeriesState
from adaptcast.streams.step import Forecast, RollingMean, ScoredError, StepResult, in_rounds

log = logging.getLogger("adaptcast.loop")
FORGET_CHECK_STEPS = 64  # time steps between two looks for silent series (a look costs one pass over them)


def step_means(values: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The mean of ``values`` at each distinct time in ``ts``, in time order: what a drift detector
    reads, one observation per step however many series were scored at it. Fed each series' error,
    its window and ``min_samples`` shrank with the number of series (100 errors: 25 steps at 4
    series, 4 at 26), and it judged a new model on a few steps' noise (docs/adaptation.md)."""
    steps, at = np.unique(ts, return_inverse=True)
    return np.bincount(at, weights=values, minlength=len(steps)) / np.bincount(at, minlength=len(steps))


@dataclass
class _Poll:
    """One ``process`` call's accepted records, in the order taken, and the forecasts due at them."""

    recs: list[Record]  # accepted, on their grid points
    names: list[str]  # their series, in order of first appearance
    series: np.ndarray  # [n] each one's series, as an index into ``names``
    pos: np.ndarray  # [n] each one's grid position
    rows: np.ndarray  # [n, channels] each one's input row
    due: np.ndarray  # [m] the records a forecast is issued at (indices into ``recs``)
    windows: np.ndarray  # [m, lookback, channels] the window each forecast is made from
    period: np.ndarray  # [m] the grid period of its series, ms


class ForecastLoop:
    """Keeps per-series windows, predicts in micro-batches, scores forecasts and adapts the model.

    ``model`` is the serving model when fitted, or an unfitted template: then nothing is
    forecast until ``min_train_rows`` rows of some series are buffered and the initial model is
    trained. ``channels`` are the record value names the model reads (targets first). Each series
    lives on a time grid (``grid``, see :mod:`adaptcast.streams.grid`): a record is moved onto
    its grid point, short gaps are filled, long ones restart the window; a record older than the
    series' latest is ``late``, one on the latest grid point a ``duplicate`` (the first wins), one
    between grid points ``off_grid``. One *step* is one advance of the newest timestamp seen.
    Retraining, validation and swaps are delegated to :attr:`adaptation`; ``memory``,
    ``intervals``, ``on_swap`` and ``validate_margin`` go to it. With ``memory_gate`` a series is
    served the memory's correction, half of it or none, whichever has been erring least there
    (:class:`~adaptcast.drift.gate.CorrectionGate`).

    Front ends build it from a configuration (:func:`~adaptcast.streams.build.build_loop`) and feed
    it records; each call returns the forecasts, scores and events it produced:

    >>> import math
    >>> from adaptcast import load_config
    >>> from adaptcast.streams.build import build_loop
    >>> from adaptcast.streams.records import Record
    >>> loop = build_loop(load_config(overrides={"model": {"kind": "naive", "target": ["y"]}}, environ={}))
    >>> HOUR = 3_600_000
    >>> results = [loop.process([Record("pump-1", t * HOUR, {"y": math.sin(t / 4)})]) for t in range(200)]
    >>> sum(len(r.forecasts) for r in results)  # one a step once the first model is trained
    80
    >>> forecast = results[-1].forecasts[0]
    >>> forecast.series, forecast.yhat.shape, len(forecast.ts_ms), forecast.model
    ('pump-1', (12, 1), 12, 'naive')
    """

    def __init__(
        self,
        model: BaseForecaster,
        channels: list[str],
        *,
        policy: RetrainPolicy | None = None,
        memory: dict[str, Any] | None = None,
        memory_gate: bool = True,
        intervals: ConformalParams | None = None,
        trainer: Trainer | None = None,
        ledger: ComputeLedger | None = None,
        on_swap: Callable[[BaseForecaster], str | None] | None = None,
        history: int | None = None,
        min_train_rows: int | None = None,
        grid: GridRules | None = None,
        validate_margin: float = VALIDATE_MARGIN,
        refit: bool = True,
        validate_routine: bool = False,
        max_batch: int = 256,
        metrics: Metrics | None = None,
        error_window: int = 500,
        clock: Callable[[], float] = time.monotonic,
    ):
        if len(channels) != model.n_features:
            raise ValueError(
                f"model expects {model.n_features} input channels, got {len(channels)}: {channels}"
            )
        self.template = model
        self.channels = list(channels)
        self.targets = self.channels[: model.n_targets]
        self.lookback, self.horizon = model.lookback, model.horizon
        self.history = max(history or 4 * (model.lookback + model.horizon), model.lookback + model.horizon)
        self.min_train_rows = min(min_train_rows or 2 * (model.lookback + model.horizon), self.history)
        self.grid = grid or GridRules(max_fill=model.lookback // 4)
        self.forget_after = self.grid.forget_after or 4 * (model.lookback + model.horizon)
        # the newest time of the stream a series arrives in: one stream offline; the Kafka worker
        # gives each partition's own, so a partition that lags another forgets none of its series
        self.stream_time: Callable[[str], int | None] = lambda _series: self._newest_ts
        self._checked_idle = 0  # the step at which silent series were last looked for
        self.ledger = ledger or ComputeLedger()
        self.max_batch = max_batch
        self.metrics = metrics or Metrics()
        self.metrics.track_compute(self.ledger)
        self.clock = clock
        self.adaptation = Adaptation(
            model,
            policy=policy or RetrainPolicy.never(),
            trainer=trainer or InlineTrainer(self.ledger),
            metrics=self.metrics,
            memory=memory,
            intervals=intervals,
            on_swap=on_swap,
            validate_margin=validate_margin,
            refit=refit,
            validate_routine=validate_routine,
        )
        self.states: dict[str, SeriesState] = {}
        self._serial = 0  # states made so far: each takes its own range of grid positions
        self._counter_said = False  # whether a series named as a counter has been warned of
        self.pending = ForecastStore()
        self._kept = 0  # forecasts left by the last pruning
        self._versions: dict[str, int] = {}  # model version → the number the store keeps
        self.step = 0
        self._newest_ts: int | None = None
        self._live = RollingMean(error_window)
        self._live_persistence = RollingMean(error_window)  # the same points, the value at issue repeated
        self._lead1_base = np.empty((0, len(self.targets)), dtype=np.float32)  # this call's, for the policy
        self._lead1_served = self._lead1_base  # the same, of the forecasts served
        self._lead1_ts = np.empty(0, np.int64)  # their truths' times
        self._against_persistence = (0.0, 0.0)  # this call's every-lead errors: the model's, persistence's
        self.level = LevelTerm(n_targets=len(self.targets))
        self._level_version: str | None = None
        self.gate = CorrectionGate() if memory_gate else None
        self.levels = tuple(level_name(lv) for lv in intervals.levels) if intervals else ()
        self._coverage = [RollingMean(error_window) for _ in self.levels]
        for name in self.levels:
            self.metrics.interval_coverage.labels(name).set(float("nan"))
        self._abs_sum = np.zeros(3)  # corrected, base, persistence (the value at issue repeated)
        self._n_scored = 0
        self.n_records = 0
        self.n_forecasts = 0
        self.n_clipped = 0  # forecasts that strayed from their window's envelope: served its last value
        self.n_persisted = 0  # forecasts served the value at issue by the gate (drift/gate.py)

    # ---- what adaptation serves and decides with ----------------------------------------------
    @property
    def model(self) -> BaseForecaster | None:
        """The serving model (None until the first one is trained)."""
        return self.adaptation.model

    @property
    def model_version(self) -> str:
        return self.adaptation.model_version

    @property
    def memory(self) -> ErrorMemory | None:
        """The serving model's error memory (None when the memory is off)."""
        return self.adaptation.memory

    @property
    def intervals(self) -> OnlineConformal | None:
        """The serving model's interval calibrator (None when intervals are off)."""
        return self.adaptation.intervals

    @property
    def policy(self) -> RetrainPolicy:
        return self.adaptation.policy

    @property
    def trainer(self) -> Trainer:
        return self.adaptation.trainer

    @property
    def events(self) -> list[LoopEvent]:
        """Every drift alarm, training outcome and grid event of a series so far, oldest first."""
        return self.adaptation.events

    # ---- public ---------------------------------------------------------------------------
    def process(
        self, records: Iterable[Record], received_at: float | None = None, emit: bool = True
    ) -> StepResult:
        """Ingest records in order; every accepted record with a full window yields one forecast.

        With ``emit=False`` records only warm the windows (re-read after a restart): nothing is
        forecast, scored or trained. Records are placed and buffered one by one; forecasting,
        correction, scoring and calibration then run once for the whole call, on arrays. Within a
        call every forecast uses the model, memory, level term and calibrator as they were at its
        start (they learn from this call's truths at its end), so this is the same as forecasting
        record by record.
        """
        received_at = self.clock() if received_at is None else received_at
        result = StepResult()
        first_step = self.step
        forecasting = emit and self.model is not None
        ordered = in_rounds(records)
        self.n_records += len(ordered)
        self.metrics.records_consumed.inc(len(ordered))
        if self.grid.resample is not Resample.OFF:
            ordered = self._resample(ordered, result)
        poll = self._take_next_points(ordered, result, forecasting)
        if poll is None:
            poll = self._take_one_by_one(ordered, result, forecasting)
        if emit:
            self._forecast(poll, result, received_at)
            self._settle(poll, result)
            self._adapt(result, poll.rows if self._wants_features() else None)
            if self.memory is not None and self.step > first_step:
                self.memory.advance(self.step - first_step)  # the memory forgets per step, not per update
            self._prune()
        if self.step - self._checked_idle >= FORGET_CHECK_STEPS:
            self.forget_idle()
        self.metrics.series_active.set(len(self.states))
        self.metrics.beat()
        return result

    def serve(self, model: BaseForecaster) -> None:
        """Serve an already trained model (loaded from a checkpoint) from now on."""
        self.adaptation.serve(model)

    def collect(self) -> list[Event]:
        """Install finished background trainings now (the live service calls this between polls)."""
        return self.adaptation.collect(self.step)

    def summary(self) -> dict[str, Any]:
        n = max(self._n_scored, 1)
        return {
            "records": self.n_records,
            "forecasts": self.n_forecasts,
            "series": len(self.states),
            "scored_points": self._n_scored,
            "mae": float(self._abs_sum[0] / n) if self._n_scored else None,
            "mae_base": float(self._abs_sum[1] / n) if self._n_scored else None,
            "mae_persistence": float(self._abs_sum[2] / n) if self._n_scored else None,
            "model": self.template.kind,
            "model_version": self.model_version,
            "retrains": sum(isinstance(e, Retrained) for e in self.events),
            "drift_alarms": sum(isinstance(e, DriftAlarm) for e in self.events),
        }

    # ---- state snapshots (restart and rebalance) ---------------------------------------------------
    def export_series(self, names: Iterable[str]) -> dict[str, Any]:
        """Windows of ``names`` as arrays and numbers (pickle-free; see drift.serialize.save_state),
        with the channels their columns hold."""
        out: dict[str, Any] = {}
        for name in names:
            st = self.states.get(name)
            if st is None:
                continue
            out[name] = {
                "rows": np.array(st.buffer.last(len(st.buffer))),
                "filled": np.array(st.buffer.filled(len(st.buffer))),
                "count": st.buffer.count,
                **({} if st.earlier is None else {"earlier": np.array(st.earlier)}),
                "grid": st.grid.to_dict(),
                "channels": list(self.channels),
                **({} if st.bucket is None else {"bucket": st.bucket.to_dict()}),
            }
        return out

    def import_series(self, series: dict[str, Any]) -> None:
        """Restore windows written by :meth:`export_series` (replacing what is held for those series).

        Columns follow the channels by name, so a snapshot taken before a channel was dropped or
        reordered restores; one that lacks a channel this loop reads (a feature added, the target
        changed) raises ValueError before anything is replaced, as does a snapshot from before
        channels were recorded whose width differs. A series whose snapshot grid has another period
        than the configuration now declares starts afresh. A snapshot from before the time grid
        (``last_ts_ms``, ``period_ms``) continues on that period while the series' first records
        after it confirm or replace it.
        """
        columns = {name: self._snapshot_columns(name, d) for name, d in series.items()}
        for name, d in series.items():
            if "grid" in d:
                grid = SeriesGrid.from_dict(d["grid"])
            else:
                grid = SeriesGrid(d["period_ms"], d["last_ts_ms"], d["last_ts_ms"])
            declared = self.grid.period_of(name)
            if declared is not None and not same_step(grid.period_ms, declared):
                log.info(
                    "series %r: the snapshot's grid is %s, the configuration declares %s: its window "
                    "starts afresh",
                    name,
                    describe(grid.period_ms or 0),
                    describe(declared),
                )
                self.states.pop(name, None)
                continue
            # whether the period is the configuration's word follows the configuration now
            st = self.states[name] = self._new_state(replace(grid, declared=declared is not None))
            rows = np.asarray(d["rows"], dtype=np.float32)[-self.history :, columns[name]]
            filled = np.asarray(d.get("filled", np.zeros(len(rows))), dtype=bool)[-self.history :]
            for row, was_filled in zip(rows, filled, strict=True):
                st.buffer.append(row, bool(was_filled))
            st.buffer.count = int(d["count"])
            if "earlier" in d:
                st.earlier = np.asarray(d["earlier"], dtype=np.float32)[-self.history :, columns[name]]
            if "bucket" in d:
                st.bucket = Bucket.from_dict(d["bucket"], columns[name])

    def _snapshot_columns(self, name: str, d: dict[str, Any]) -> list[int]:
        """The columns of series ``name``'s snapshot ``d`` that hold this loop's channels, in order."""
        saved = [str(c) for c in d.get("channels", [])]
        width = np.shape(d["rows"])[1] if np.ndim(d["rows"]) == 2 else len(self.channels)
        if not saved:  # written before snapshots named their channels: only the width can be checked
            if width != len(self.channels):
                raise ValueError(
                    f"series {name!r}: the snapshot holds {width} channels, the configuration reads "
                    f"{len(self.channels)} ({', '.join(self.channels)})"
                )
            return list(range(width))
        missing = [c for c in self.channels if c not in saved]
        if missing:
            raise ValueError(
                f"series {name!r}: the snapshot holds {', '.join(saved)}, not {', '.join(missing)}, "
                "which the configuration reads"
            )
        return [saved.index(c) for c in self.channels]

    def drop_series(self, names: Iterable[str]) -> None:
        """Forget series this process no longer serves (their partitions moved elsewhere, or they went
        silent); their forecasts awaiting truth go at the next pruning."""
        names = list(names)
        for name in names:
            self.states.pop(name, None)
        self.level.forget(names)
        if self.intervals is not None:
            self.intervals.forget(names)

    def forget_idle(self) -> list[str]:
        """Forget every series silent for more than ``forget_after`` of its periods, counted against
        :attr:`stream_time`. Its window would restart on its next record anyway (the gap is longer
        than ``grid.max_fill``); keeping it would let a feed whose series come and go (pods,
        sessions, devices) grow the state, the snapshots and each poll's work without bound. A
        series whose period is not known yet is measured by the most common one."""
        self._checked_idle = self.step
        periods = [nominal_ms(st.grid.period_ms) for st in self.states.values() if st.grid.period_ms]
        typical = (
            nominal_ms(self.grid.period_ms)
            if self.grid.period_ms
            else (int(np.median(periods)) if periods else None)
        )
        idle = []
        for name, st in self.states.items():
            seen, now = st.grid.seen_ms, self.stream_time(name)
            if st.bucket is not None:  # resampled: its newest records may still be held, unplaced
                seen = max(seen or st.bucket.start_ms, st.bucket.start_ms)
            period = nominal_ms(st.grid.period_ms) if st.grid.period_ms else typical
            if seen is not None and now is not None and period and now - seen > self.forget_after * period:
                idle.append(name)
        if idle:
            self.drop_series(idle)
            self.metrics.series_forgotten.inc(len(idle))
            log.info("forgot %d series silent for more than %d periods", len(idle), self.forget_after)
        return idle

    def state_dict(self) -> dict[str, Any]:
        """Process-wide state: the adaptation's (policy, detector, error memory, counters) and the step."""
        return {
            **self.adaptation.state_dict(),
            "step": self.step,
            "newest_ts_ms": self._newest_ts,
            "level": self.level.state_dict(),
            "level_version": self._level_version,
            "gate": None if self.gate is None else self.gate.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; the memory is kept only if it belongs to the serving model."""
        self.adaptation.load_state_dict(state)
        self.step = int(state["step"])
        self._newest_ts = None if state["newest_ts_ms"] is None else int(state["newest_ts_ms"])
        if state.get("level") is not None and state.get("level_version") == self.model_version:
            self.level.load_state_dict(state["level"])
            self._level_version = self.model_version
        if state.get("gate") is not None and self.gate is not None:
            self.gate.load_state_dict(state["gate"])

    # ---- ingestion ------------------------------------------------------------------------------
    def _take_one_by_one(self, ordered: list[Record], result: StepResult, forecasting: bool) -> _Poll:
        """Place and buffer each record by the grid rules; reject what cannot be used."""
        pos: list[int] = []
        rows: list[np.ndarray] = []
        windows: list[np.ndarray] = []
        due: list[int] = []
        period: list[int] = []
        for rec in ordered:
            try:
                row = self._row(rec)
                state = self._state(rec.series)
                placed = self._check_order(rec, state)
            except RecordError as err:
                self._reject(rec, err, result)
                continue
            rec = self._to_grid(rec, row, placed, state, result)
            result.accepted.append(rec)
            pos.append(state.pending.pos)
            rows.append(row)
            state.buffer.append(row)
            if self._newest_ts is None or rec.ts_ms > self._newest_ts:
                self._newest_ts = rec.ts_ms
                self.step += 1
            if forecasting and len(state.buffer) >= self.lookback and state.grid.period_ms:
                windows.append(state.buffer.last(self.lookback).copy())  # later rows may reuse it
                due.append(len(rows) - 1)
                period.append(state.grid.period_ms)
        c = len(self.channels)
        index: dict[str, int] = {}
        series = [index.setdefault(r.series, len(index)) for r in result.accepted]
        return _Poll(
            result.accepted,
            list(index),
            np.array(series, dtype=np.int64),
            np.array(pos, dtype=np.int64),
            np.stack(rows) if rows else np.empty((0, c), dtype=np.float32),
            np.array(due, dtype=np.int64),
            np.stack(windows) if windows else np.empty((0, self.lookback, c), dtype=np.float32),
            np.array(period, dtype=np.int64),
        )

    def _take_next_points(self, ordered: list[Record], result: StepResult, forecasting: bool) -> _Poll | None:
        """The whole call at once when every record is on the grid point after its series' latest (the
        steady state), which is what :meth:`_take_one_by_one` would do; None, having changed nothing,
        when some record needs the grid rules (a new series, a gap, a duplicate, a missing value...)."""
        if not ordered:
            return None
        index: dict[str, int] = {}
        which = np.fromiter((index.setdefault(r.series, len(index)) for r in ordered), np.int64, len(ordered))
        found = [self.states.get(name) for name in index]
        states = [st for st in found if st is not None and steady(st.grid, self.grid)]
        if len(states) < len(found):
            return None
        grids = [st.grid for st in states]
        ts = np.fromiter((r.ts_ms for r in ordered), np.int64, len(ordered))
        last = np.array([g.last_ms for g in grids], dtype=np.int64)
        period = np.array([g.period_ms for g in grids], dtype=np.int64)
        rank = occurrence(which)  # the record's place in its series' run (``ordered`` is in rounds)
        count = np.bincount(which, minlength=len(grids))
        if not np.array_equal(ts, advance(last[which], period[which], rank + 1)):
            return None
        if count.max() + self.lookback - 1 > self.history:  # windows of this call's rows: from one buffer
            return None
        try:
            rows = np.array([[r.values[c] for c in self.channels] for r in ordered], dtype=np.float32)
        except KeyError:
            return None
        held = np.array([len(st.buffer) for st in states], dtype=np.int64)
        pos = np.array([st.pending.pos for st in states], dtype=np.int64)
        before = np.minimum(held, self.lookback - 1)  # rows held that this call's windows reach back to
        by_series = np.argsort(which, kind="stable")
        newest = ts[by_series[np.cumsum(count) - 1]]
        runs = np.split(rows[by_series], np.cumsum(count)[:-1])
        recent = []  # per series, the rows its windows are cut from: those held, then this call's
        for st, run, k, b, p, t in zip(
            states, runs, count.tolist(), before.tolist(), period.tolist(), newest.tolist(), strict=True
        ):
            st.buffer.extend(run)
            recent.append(st.buffer.last(b + k))
            st.grid = SeriesGrid(p, t, t, True, declared=st.grid.declared, week=st.grid.week)
            st.pending.advance(k)
        due = (
            np.flatnonzero(held[which] + rank + 1 >= self.lookback) if forecasting else np.empty(0, np.int64)
        )
        at = (np.cumsum(before + count) - count)[which[due]] + rank[due]  # each one's row in ``recent``
        windows = np.concatenate(recent)[at[:, None] + np.arange(1 - self.lookback, 1)]
        start = ts[0] - 1 if self._newest_ts is None else self._newest_ts
        latest = np.maximum.accumulate(np.r_[start, ts[:-1]])  # the newest time before each record
        self.step += int((ts > latest).sum())
        self._newest_ts = int(max(start, ts.max()))
        result.accepted.extend(ordered)
        return _Poll(
            result.accepted, list(index), which, pos[which] + rank + 1, rows, due, windows, period[which[due]]
        )

    def _resample(self, ordered: list[Record], result: StepResult) -> list[Record]:
        """Each period's records of a series as one record (``grid.resample``): a record of a later
        period releases the one held; one of an earlier period than that held is late."""
        released = []
        for rec in ordered:
            try:
                row = self._row(rec)
            except RecordError as err:
                self._reject(rec, err, result)
                continue
            state = self._state(rec.series)
            period = self.grid.period_of(rec.series)
            assert period is not None  # GridRules refuses resampling without a declared period
            start = int(period_start(rec.ts_ms, period))
            held = state.bucket
            if start == CLOSED:
                why = (
                    f"series {rec.series!r}: record at {format_timestamp(rec.ts_ms)} is outside the "
                    f"sessions of {describe(period)}; widen grid.frequency's hours to keep such records"
                )
                self._reject(rec, RecordError(OFF_GRID, why), result)
            elif held is not None and start < held.start_ms:
                why = (
                    f"series {rec.series!r} is past the period from {format_timestamp(held.start_ms)}; "
                    f"record at {format_timestamp(rec.ts_ms)} is late"
                )
                self._reject(rec, RecordError(LATE, why), result)
            elif held is not None and start == held.start_ms:
                held.add(row)
            else:
                if held is not None:
                    values = dict(zip(self.channels, held.value(self.grid.resample).tolist(), strict=True))
                    released.append(Record(rec.series, held.start_ms, values))
                state.bucket = Bucket.of(start, row)
        return released

    def _reject(self, rec: Record, err: RecordError, result: StepResult) -> None:
        """Send a record to the call's rejections (the worker dead-letters them) and count it."""
        result.rejected.append((rec, err))
        self.metrics.records_rejected.labels(err.reason).inc()

    def _row(self, rec: Record) -> np.ndarray:
        try:
            return np.array([rec.values[c] for c in self.channels], dtype=np.float32)
        except KeyError as exc:
            raise RecordError(
                MISSING_VALUE, f"values lacks {exc.args[0]!r} (this model reads {', '.join(self.channels)})"
            ) from None

    def _state(self, series: str) -> SeriesState:
        state = self.states.get(series)
        if state is None:
            state = self.states[series] = self._new_state(self.grid.new_grid(series))
            if not self._counter_said and (note := counter_note(series)) is not None:
                log.warning("%s", note)
                self._counter_said = True
        return state

    def _new_state(self, grid: SeriesGrid) -> SeriesState:
        """A series' state with an empty window and grid positions no other state has used."""
        self._serial += 1
        buffer = RingBuffer(self.history, len(self.channels))
        return SeriesState(buffer, grid, Pending(self._serial * POSITIONS_PER_SERIES))

    def _check_order(self, rec: Record, state: SeriesState) -> Placement:
        """Place the record on its series' grid; raise for a duplicate, late or off-grid one."""
        before = state.grid.period_ms
        placed, state.grid = place(state.grid, rec.ts_ms, self.grid)
        if not placed.action.rejected:
            moved = before is not None and is_scheduled(before) and state.grid.period_ms != before
            if moved and not placed.action.restarts:  # its hours in UTC moved with a clock change
                text = describe(state.grid.period_ms or 0)
                log.info(
                    "series %r keeps its hours on a local clock: %s from %s on; declare it "
                    "(grid.frequency: %r) so that a worker starting afresh has it at once",
                    rec.series,
                    text,
                    format_timestamp(placed.ts_ms),
                    text,
                )
            return placed
        at, last = format_timestamp(rec.ts_ms), format_timestamp(state.grid.last_ms or 0)
        if placed.action is Action.DUPLICATE:
            why = f"series {rec.series!r} already has a record at {last} (this one is at {at})"
        elif placed.action is Action.LATE:
            seen = format_timestamp(state.grid.seen_ms or 0)
            why = f"series {rec.series!r} is at {seen}; record at {at} is late"
        elif state.grid.period_ms is not None and is_scheduled(state.grid.period_ms):
            why = (
                f"series {rec.series!r}: {at} is not within {self.grid.tolerance:.0%} of a step of a point "
                f"of its schedule ({describe(state.grid.period_ms)}): the schedule is closed then "
                "(grid.frequency; its hours exclude the end, so 09:00-18:00 holds 09:00 to 17:00 hourly)"
            )
        else:
            why = (
                f"series {rec.series!r}: {at} is further than {self.grid.tolerance:.0%} of its period "
                f"({describe(state.grid.period_ms or 0)}) from its grid through {last} (grid.tolerance; "
                "a feed whose records jitter more needs a larger one, and grid.frequency declared; one "
                "that keeps no regular interval, grid.frequency and grid.resample)"
            )
        raise RecordError(placed.action.value, why)

    def _to_grid(
        self, rec: Record, row: np.ndarray, placed: Placement, state: SeriesState, result: StepResult
    ) -> Record:
        """Fill the grid points missing before the record, or restart the window; returns it on its point."""
        period = state.grid.period_ms
        if placed.inferred:
            log.info(
                "series %r: period of %s inferred from its first records", rec.series, describe(period or 0)
            )
        if placed.action is Action.APPEND:
            state.pending.advance(1)
        elif placed.action is Action.FILL:
            assert period is not None  # a gap is counted in periods
            state.pending.advance(placed.missing + 1)
            for filled in fill_rows(state.buffer.last(1)[0], row, placed.missing, self.grid.fill):
                state.buffer.append(filled, filled=True)
            self.metrics.grid_filled.inc(placed.missing)
            first = shift(placed.ts_ms, period, -placed.missing)
            self._series_event(
                GapFilled(ts_ms=first, step=self.step, series=rec.series, steps=placed.missing), result
            )
        elif placed.action.restarts:
            state.restart(keep_rows=placed.action is Action.RESET)
            reason = "gap" if placed.action is Action.RESET else "grid_change"
            self.metrics.series_resets.labels(reason).inc()
            at = format_timestamp(placed.ts_ms)
            # a fixed grid that changed is news; a provisional one giving way while inferring is not,
            # nor a grid within the day whose closures showed its schedule
            changed = placed.action is Action.REGRID and state.grid.fixed
            level = logging.WARNING if changed and not is_scheduled(period or 0) else logging.INFO
            log.log(
                level,
                "series %r restarts at %s (%s, period %s)%s",
                rec.series,
                at,
                reason,
                describe(period or 0),
                _restart_hint(placed, period, changed),
            )
            steps = placed.missing if placed.action is Action.RESET else None
            ev = SeriesReset(
                ts_ms=placed.ts_ms,
                step=self.step,
                series=rec.series,
                reason=reason,
                steps=steps,
                period_ms=period,
            )
            self._series_event(ev, result)
        return rec if placed.ts_ms == rec.ts_ms else replace(rec, ts_ms=placed.ts_ms)

    def _series_event(self, event: SeriesEvent, result: StepResult) -> None:
        """Record a grid event of one series in the loop's event list and in this call's result."""
        self.adaptation.events.append(event)
        result.events.append(event)

    # ---- forecasting ----------------------------------------------------------------------------------
    def _forecast(self, poll: _Poll, result: StepResult, received_at: float) -> None:
        """Predict every window due in this call (``max_batch`` per predict call), correct them, add
        intervals, emit the forecasts and keep them in the store until their horizon is observed."""
        if not len(poll.due) or self.model is None:
            return
        windows = poll.windows
        issued = [poll.recs[i] for i in poll.due.tolist()]
        names = [rec.series for rec in issued]
        parts = [self._predict(windows[i : i + self.max_batch]) for i in range(0, len(names), self.max_batch)]
        # a window unlike any the model trained on can draw an answer far beyond it (forecast/envelope.py)
        bounds = Bounds.of(windows, len(self.targets), self.horizon, self.model.input_bounds)
        base, strayed = bounds.keep(np.concatenate([b for b, _ in parts]))
        keys = None if self.memory is None else np.concatenate([k for _, k in parts])
        yhat = corrected = base
        lo = hi = half = level = None
        # under window_norm standard, errors are kept in each window's units, so series of any scale
        # share the memory and weigh alike in the detector (the calibrator scales per series instead)
        scale = self.model.output_scale(windows)[:, None, :] if self.model.window_norm == "standard" else None
        if self.memory is not None and keys is not None:
            with self.ledger.measure("correct", samples=len(names)):  # the keyed memory, level term and gate
                if scale is not None:
                    corrected = (self.memory.correct(keys, base / scale) * scale).astype(np.float32)
                else:
                    corrected = self.memory.correct(keys, base).astype(np.float32)
                at = poll.series[poll.due]
                level = self.level.offset(poll.names)[at]
                corrected = np.maximum(corrected + level[:, None, :], bounds.least).astype(np.float32)
                share = np.ones(len(names)) if self.gate is None else self.gate.share(poll.names)[at]
                yhat = np.where((share == 1)[:, None, None], corrected, base)
                halved = share == 0.5
                if halved.any():
                    yhat[halved] = midpoint(base[halved], corrected[halved])
                if self.gate is not None:  # where the last value has been the better forecast, serve it
                    persist = self.gate.persist(poll.names)[at]
                    if persist.any():
                        yhat = np.where(persist[:, None, None], windows[:, -1:, : len(self.targets)], yhat)
                        share[persist] = 0.0
                    self.n_persisted += int(persist.sum())
                    self.metrics.persistence_served_ratio.set(float(persist.mean()))
            self.metrics.memory_hit_ratio.set(self.memory.hit_ratio)
            self.metrics.memory_served_ratio.set(float(share.mean()))
            observe_many(self.metrics.memory_correction, np.abs(yhat - base).mean(axis=(1, 2)))
        if yhat is not base:  # the memory's correction, added to a plausible base, may stray too
            yhat, corrections_strayed = bounds.keep(yhat)
            strayed |= corrections_strayed
        if strayed.any():
            self.n_clipped += int(strayed.sum())
            self.metrics.forecasts_clipped.inc(int(strayed.sum()))
        if self.intervals is not None:
            half = self.intervals.half_widths(poll.names)[poll.series[poll.due]].astype(np.float32)
            # [B, L, H, T]; a lower bound beneath the floor cannot happen either
            lo, hi = np.maximum(yhat[:, None] - half, bounds.least[:, None]), yhat[:, None] + half
        last = np.array([rec.ts_ms for rec in issued], dtype=np.int64)
        times = advance(last[:, None], poll.period[:, None], np.arange(1, self.horizon + 1)).tolist()
        kind, version, levels = self.template.kind, self.model_version, self.levels
        bounds = (
            zip(lo, hi, strict=True) if lo is not None and hi is not None else [(None, None)] * len(issued)
        )
        result.forecasts.extend(
            Forecast(rec.series, rec.ts_ms, ts, y, b, kind, version, levels, low, high)
            for rec, ts, y, b, (low, high) in zip(issued, times, yhat, base, bounds, strict=True)
        )
        version = self._versions.setdefault(self.model_version, len(self._versions))
        cols = {"yhat": yhat, "base": base, "version": np.full(len(names), version)}
        if keys is not None and level is not None:
            cols.update(key=keys, level=level, corrected=corrected)
        # stored for every forecast, ones where it was in target units: the model that scores it may
        # be one fitted in other units (``window_norm: auto`` standardises once series grow apart)
        cols["scale"] = (
            np.ones((len(names), len(self.targets)), np.float32) if scale is None else scale[:, 0, :]
        )
        if half is not None:
            cols["half"] = half
        cols["last"] = windows[:, -1, : len(self.targets)]  # the value at issue: persistence's forecast
        self.pending.add(poll.pos[poll.due], **cols)
        self.n_forecasts += len(names)
        self.metrics.predictions.inc(len(names))
        self.metrics.end_to_end.observe(max(self.clock() - received_at, 0.0))

    def _predict(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """One predict call: base forecasts ``[B, H, T]`` and, when the memory is on, its keys ``[B, d]``
        from the same pass (a network's key is an intermediate of its forecast)."""
        assert self.model is not None
        t0 = time.perf_counter()
        keys = None
        with self.ledger.measure("predict", samples=len(windows)):
            if self.memory is None:
                base = self.model.predict(windows)
            else:
                base, keys = self.model.predict_embed(windows)
        self.metrics.predict_duration.observe(time.perf_counter() - t0)
        self.metrics.predict_batch.observe(len(windows))
        return base, keys

    def _prune(self) -> None:
        """Drop stored forecasts no later truth can meet: past their horizon, or of a series gone.

        Only once the store has doubled since the last pruning (they can no longer match anyway:
        this bounds memory, at a cost spread over the forecasts added since).
        """
        if len(self.pending) < 2 * self._kept + 1024:
            return
        serials = np.array([st.pending.pos // POSITIONS_PER_SERIES for st in self.states.values()], np.int64)
        current = np.array([st.pending.pos for st in self.states.values()], np.int64)
        order = np.argsort(serials)
        serials, current = serials[order], current[order]
        owner = self.pending.pos // POSITIONS_PER_SERIES
        at = np.minimum(np.searchsorted(serials, owner), max(len(serials) - 1, 0))
        alive = (serials[at] == owner) if len(serials) else np.zeros(len(owner), dtype=bool)
        self.pending.keep(alive & (self.pending.pos > current[at] - self.horizon))
        self._kept = len(self.pending)

    # ---- scoring ----------------------------------------------------------------------------------
    def _settle(self, poll: _Poll, result: StepResult) -> None:
        """Match this call's truths with every stored forecast whose horizon covers them; errors and
        residuals vectorised; lead-1 errors go to ``result.scored``."""
        self._lead1_base = self._lead1_served = np.empty((0, len(self.targets)), dtype=np.float32)
        self._lead1_ts = np.empty(0, np.int64)
        self._against_persistence = (0.0, 0.0)
        truth_idx, idx, lead = self.pending.match(poll.pos, self.horizon)
        if not len(idx):
            return
        t = len(self.targets)
        cols = self.pending.cols
        truth = poll.rows[truth_idx, :t]
        yhat = cols["yhat"][idx, lead - 1]
        base = cols["base"][idx, lead - 1]
        resid = truth - base
        err, err_base = np.abs(truth - yhat), np.abs(resid)
        err_mean = err.mean(axis=1)
        current = cols["version"][idx] == self._versions.get(self.model_version, -1)
        recs, names = poll.recs, poll.names
        series = poll.series[truth_idx]  # outcome i is of series names[series[i]]
        scale = cols["scale"][idx]  # each forecast's errors over this are in its window's units (or ones)
        # a glitch's truth (far beyond anything the model trained on) is scored, but nothing learns from it
        bounds = None if self.model is None else self.model.input_bounds
        sound = (
            np.ones(len(idx), dtype=bool) if bounds is None else ~far_beyond(truth, bounds[:, :t]).any(axis=1)
        )
        learn = current & sound
        persistence = np.abs(truth - cols["last"][idx])  # the value at issue repeated: the bar to clear
        self._remember(idx, lead, resid / scale, learn)
        if "corrected" in cols:  # the memory's forecast, served or not: its level term and gate learn
            with self.ledger.measure("correct", samples=len(idx)):
                corrected = cols["corrected"][idx, lead - 1]
                self._level_update(names, series, idx, lead, truth, corrected, learn)
                if self.gate is not None:
                    self.gate.update(
                        names,
                        series[sound],
                        np.abs(truth - corrected)[sound].mean(axis=1),
                        err_base[sound].mean(axis=1),
                        persistence[sound].mean(axis=1),
                        np.abs(truth - midpoint(base, corrected))[sound].mean(axis=1),
                    )
        self._calibrate(names, series, idx, lead, truth - yhat, current, learn)
        first = np.flatnonzero(lead == 1)
        truths = [recs[i] for i in truth_idx[first].tolist()]
        result.scored.extend(
            ScoredError(r.series, r.ts_ms, 1, e, e_base)
            for r, e, e_base in zip(truths, err[first], err_base[first], strict=True)
        )
        self._lead1_ts = np.fromiter((r.ts_ms for r in truths), np.int64, count=len(truths))
        self._live.extend(err_mean[first])
        own = err_base / scale  # the model's errors, every lead
        self._lead1_base = own[first]
        if self.policy.bridge is not None:  # only the early-refit watch reads these
            self._lead1_served = (err / scale)[first]
            # every lead of the model's own forecasts against persistence: whether the model broke,
            # whatever the memory's correction (built from lead 1's residual) patches meanwhile
            self._against_persistence = (
                float(self._scaled_errors(own).sum()),
                float(self._scaled_errors(persistence / scale).sum()),
            )
        self._abs_sum += (
            float(err_mean.sum(dtype=np.float64)),
            float(err_base.mean(axis=1, dtype=np.float64).sum()),
            float(persistence.mean(axis=1, dtype=np.float64).sum()),
        )
        self._n_scored += len(idx)
        self._live_persistence.extend(persistence[first].mean(axis=1))
        self.metrics.live_error.set(self._live.mean)
        self.metrics.live_persistence_error.set(self._live_persistence.mean)

    # ---- adaptation -------------------------------------------------------------------------------------
    def _adapt(self, result: StepResult, fresh: np.ndarray | None) -> None:
        """Give the policy this call's errors and ``fresh`` input rows; let adaptation retrain and install."""
        rows = max((s.held for s in self.states.values()), default=0)
        if self.model is None and rows < self.min_train_rows:
            return
        errors = self._scaled_errors(self._lead1_base)
        observe_many(self.metrics.live_scaled_error, errors)
        info = StepInfo(
            step=self.step,
            rows_available=rows,
            has_model=self.model is not None,
            errors=step_means(errors, self._lead1_ts) if len(errors) else errors,
            served_errors=self._scaled_errors(self._lead1_served) if self.policy.bridge is not None else None,
            against_persistence=self._against_persistence if self.policy.bridge is not None else None,
            features=self._scaled_features(fresh),
            history=self._vh_history if self.policy.window.kind == "vh" else None,
            time=None if self._newest_ts is None else self._newest_ts / 1000,
        )
        ts = self._newest_ts or 0
        mark = len(self.events)
        with self.ledger.measure("detect", samples=len(errors)):
            decision = self.adaptation.decide(info, ts)
        if decision.retrain:
            histories = [s.history() for s in self.states.values()]
            self.adaptation.start(decision, histories, self.step, ts, list(self.states))
        self.adaptation.collect(self.step)
        result.events.extend(self.events[mark:])

    def _wants_features(self) -> bool:
        """Whether the policy's detector reads input rows rather than forecast errors."""
        det = self.policy.detector
        return det is not None and det.input_kind == "features"

    def _scaled_features(self, rows: np.ndarray | None) -> np.ndarray | None:
        """Input rows ``[rows, channels]`` standardised with the serving model's scaler (None: not wanted)."""
        if rows is None or not len(rows) or self.model is None or self.model.scaler is None:
            return None
        return self.model.scaler.transform(rows).astype(np.float64)

    def _scaled_errors(self, errors: np.ndarray) -> np.ndarray:
        """|errors| (``[outcomes, targets]``) in standardised target units, one per outcome (comparable
        across series; under window_norm standard each was divided by its window's scale first)."""
        if self.model is None or self.model.scaler is None:
            return np.empty(0)
        std = self.model.scaler.std[: len(self.targets)]
        return (errors / std).mean(axis=1).astype(np.float64)

    def _vh_history(self, max_series: int = 32) -> np.ndarray:
        """Target history ``[rows, series]`` of the longest-buffered series, for the Variance Horizon."""
        states = sorted(self.states.values(), key=lambda s: -len(s.buffer))[:max_series]
        rows = min(len(s.buffer) for s in states)
        return np.stack([s.buffer.last(rows)[:, 0] for s in states], axis=1).astype(np.float64)

    def _level_update(
        self,
        names: list[str],
        series: np.ndarray,
        idx: np.ndarray,
        lead: np.ndarray,
        truth: np.ndarray,
        corrected: np.ndarray,
        current: np.ndarray,
    ) -> None:
        """Feed the level term the one-step error its own offset left (the memory's residual) of each series.

        A new serving model starts the level term afresh: it was refitted on the newest data.
        """
        if self.memory is None:
            return
        if self._level_version != self.model_version:
            self.level.reset()
            self._level_version = self.model_version
        rows = np.flatnonzero((lead == 1) & current & ("level" in self.pending.cols))
        if len(rows):
            before = corrected[rows] - self.pending.cols["level"][idx[rows]]
            self.level.update([names[i] for i in series[rows].tolist()], truth[rows] - before)

    def _remember(self, idx: np.ndarray, lead: np.ndarray, resid: np.ndarray, current: np.ndarray) -> None:
        """Store each newly known residual under its forecast's key, lead by lead, as it is observed.

        A forecast whose several leads were observed in this call is one row with several residuals
        (``counts`` records) when the memory has no per-record decay, whose weights would depend on order.
        """
        if self.memory is None or "key" not in self.pending.cols:
            return
        fresh = np.flatnonzero(current)
        if not len(fresh):
            return
        if self.memory.decay < 1.0:
            forecast, row = idx[fresh], np.arange(len(fresh))
        else:
            forecast, row = np.unique(idx[fresh], return_inverse=True)
        n, t = len(forecast), len(self.targets)
        values = np.zeros((n, self.horizon, t))
        mask = np.zeros((n, self.horizon, t), dtype=bool)
        values[row, lead[fresh] - 1] = resid[fresh]
        mask[row, lead[fresh] - 1] = True
        counts = np.bincount(row, minlength=n)
        with self.ledger.measure("correct", samples=len(fresh)):
            self.memory.update(self.pending.cols["key"][forecast], values, mask, counts=counts)

    def _calibrate(
        self,
        names: list[str],
        series: np.ndarray,
        idx: np.ndarray,
        lead: np.ndarray,
        resid: np.ndarray,
        current: np.ndarray,
        learn: np.ndarray,
    ) -> None:
        """Tell the calibrator each serving-model forecast's residual ``y − yhat`` (corrected) and
        whether it fell inside the intervals it was issued with (the ``learn`` ones: not a glitch's);
        update the live coverage (every ``current`` one)."""
        if self.intervals is None:
            return
        keep = np.flatnonzero(current)  # the calibrator holds the residuals of the serving model only
        if len(keep):
            half = None
            if "half" in self.pending.cols:
                half = self.pending.cols["half"][idx[keep], :, lead[keep] - 1].astype(np.float64)  # [n, L, T]
            taught = learn[keep]
            self.intervals.update_many(
                names,
                series[keep][taught],
                lead[keep][taught],
                resid[keep][taught],
                None if half is None else half[taught],
            )
            if half is not None:
                known = np.isfinite(half).all(axis=(1, 2))
                inside = (np.abs(resid[keep][known])[:, None, :] <= half[known]).mean(axis=2)  # [n, L]
                for j, cov in enumerate(self._coverage):
                    cov.extend(inside[:, j])
        for name, cov in zip(self.levels, self._coverage, strict=True):
            if cov.n:
                self.metrics.interval_coverage.labels(name).set(cov.mean)


def _restart_hint(placed: Placement, period: int | None, changed: bool) -> str:
    """What to do about a restart that a feed's shape may cause at every turn: a gap of under four
    days on a grid within the day (the feed may close at night or at weekends), or a fixed grid that
    moved (the feed may keep no regular interval, or, under a second, be faster than its stamps)."""
    if changed and period is not None and is_scheduled(period):
        return (
            f"; its records since its first closure, over {MIN_WEEKS} weeks, follow this schedule: declare "
            f"it (grid.frequency: {describe(period)!r}) so that a worker starting afresh has it at once"
        )
    if changed and period is not None and 0 < period < FAST_MS:
        return (
            f"; if the feed is {TOO_FAST}, declare its rate (grid.frequency: 256Hz); if it keeps no "
            "regular interval, declare a period and aggregate each one: grid.frequency: 100ms, "
            "grid.resample: mean (docs/architecture.md)"
        )
    if changed:  # its own period where it has one: stamps that drift off it (a weekly series
        # stamped at 52ths of a year) fall back on it once each is aggregated to its period
        every = own_period(period) or "10min"
        return (
            "; if the feed keeps no regular interval (reports on change, events, stamps that drift off "
            f"a period), declare one and aggregate each period: grid.frequency: {every}, "
            "grid.resample: mean (docs/architecture.md)"
        )
    if placed.action is not Action.RESET or period is None or not 0 < period < DAY_MS:
        return ""
    if placed.missing * period >= CLOSURE_MAX_MS:
        return ""
    return (
        "; if the feed closes at night or at weekends, declare its hours, e.g. grid.frequency: "
        f"'1h Mon-Fri 09:00-18:00', or it restarts at every closure until {MIN_WEEKS} weeks of records "
        "show them (docs/architecture.md, Schedules)"
    )
