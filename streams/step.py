"""What one loop step takes and gives: records in rounds, forecasts, scored errors, the step result."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adaptcast.drift.passes import occurrence
from adaptcast.streams.events import LoopEvent
from adaptcast.streams.records import Record, RecordError, format_timestamp


def in_rounds(records: Iterable[Record]) -> list[Record]:
    """Reorder so each series' k-th record comes in round k: one predict call per round, not per repeat.

    Order within a series is kept (that is all the loop relies on), so the result is the same
    as processing the records one by one.
    """
    recs = list(records)
    seen: dict[str, int] = {}
    series = np.fromiter((seen.setdefault(r.series, len(seen)) for r in recs), np.int64, len(recs))
    order = np.argsort(occurrence(series), kind="stable")
    return [recs[i] for i in order.tolist()]


@dataclass
class Forecast:
    """One emitted forecast: ``yhat``/``yhat_base`` are ``[horizon, n_targets]`` in target units.

    ``lo``/``hi`` ``[levels, horizon, n_targets]`` bound its intervals at ``levels`` (names such as
    ``"80"``; NaN where no residual is known yet), or are None when intervals are off.
    """

    series: str
    issued_at_ms: int
    ts_ms: list[int]
    yhat: np.ndarray
    yhat_base: np.ndarray
    model: str
    model_version: str
    levels: tuple[str, ...] = ()
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def to_json(self, targets: list[str]) -> dict[str, Any]:
        """The prediction record of docs/architecture.md (per-target lists over the horizon)."""
        return prediction_records([self], targets)[0]


def prediction_records(forecasts: Sequence[Forecast], targets: list[str]) -> list[dict[str, Any]]:
    """The prediction records of ``forecasts``, converted in bulk: one ``tolist`` per field for them all.

    A live worker encodes a whole poll's forecasts at once; per-forecast array conversions were a
    sixth of its time per prediction. Bounds are scanned for NaN (an interval not yet calibrated,
    written as null) once for the batch.
    """
    if not forecasts:
        return []
    with_bounds = [f.lo is not None and f.hi is not None for f in forecasts]
    if any(with_bounds) and not all(with_bounds):  # not made by one loop call: encode one by one
        return [prediction_records([f], targets)[0] for f in forecasts]
    yhat = np.stack([f.yhat for f in forecasts])  # [N, H, T]
    base = np.stack([f.yhat_base for f in forecasts])
    # sum / n is numpy's mean to the bit without its per-call Python wrapper
    corrections = ((yhat - base).sum(axis=2) / yhat.shape[2]).tolist()
    yhats, bases = yhat.transpose(0, 2, 1).tolist(), base.transpose(0, 2, 1).tolist()  # [N][T][H]
    bounds: list[tuple[Any, Any]] = [(None, None)] * len(forecasts)
    if all(with_bounds):
        lo = np.stack([f.lo for f in forecasts])  # [N, L, H, T]
        hi = np.stack([f.hi for f in forecasts])
        finite = (np.isfinite(lo).all(axis=(1, 2, 3)) & np.isfinite(hi).all(axis=(1, 2, 3))).tolist()
        los, his = lo.transpose(0, 1, 3, 2).tolist(), hi.transpose(0, 1, 3, 2).tolist()  # [N][L][T][H]
        bounds = [
            (lo_i, hi_i) if ok else (_finite_rows(lo_i), _finite_rows(hi_i))
            for lo_i, hi_i, ok in zip(los, his, finite, strict=True)
        ]
    out = []
    for f, y, b, c, (lo_i, hi_i) in zip(forecasts, yhats, bases, corrections, bounds, strict=True):
        rec = {
            "series": f.series,
            "issued_at": format_timestamp(f.issued_at_ms),
            "ts": [format_timestamp(t) for t in f.ts_ms],
            "yhat": dict(zip(targets, y, strict=True)),
            "yhat_base": dict(zip(targets, b, strict=True)),
            "model": f.model,
            "model_version": f.model_version,
            "correction": c,
        }
        if lo_i is not None:
            for side, rows in (("lo", lo_i), ("hi", hi_i)):
                rec[side] = {
                    lv: dict(zip(targets, r, strict=True)) for lv, r in zip(f.levels, rows, strict=True)
                }
        out.append(rec)
    return out


def _finite_rows(levels: list[list[list[float]]]) -> list[list[list[float | None]]]:
    """``[level][target][lead]`` bounds with NaN as null."""
    return [[_finite(values) for values in level] for level in levels]


def _finite(values: list[float]) -> list[float | None]:
    """JSON numbers, null for NaN (an interval not yet calibrated)."""
    return [v if math.isfinite(v) else None for v in values]


class RollingMean:
    """Mean of the last ``size`` values in O(1) per value."""

    def __init__(self, size: int):
        self._values: deque[float] = deque(maxlen=size)
        self._sum = 0.0

    def add(self, v: float) -> None:
        if len(self._values) == self._values.maxlen:
            self._sum -= self._values[0]
        self._values.append(v)
        self._sum += v

    def extend(self, values: np.ndarray) -> None:
        """Add many values in order (the sum is recomputed: one pass over at most ``size`` values)."""
        newest = np.asarray(values, dtype=np.float64)[-(self._values.maxlen or len(values)) :]
        self._values.extend(newest.tolist())
        self._sum = float(sum(self._values))

    @property
    def n(self) -> int:
        return len(self._values)

    @property
    def mean(self) -> float:
        return self._sum / len(self._values) if self._values else 0.0


@dataclass
class ScoredError:
    """Truth met a one-step-ahead forecast: absolute errors of the corrected and the base forecast."""

    series: str
    ts_ms: int
    lead: int
    abs_error: np.ndarray
    abs_error_base: np.ndarray


@dataclass
class StepResult:
    """What one ``process`` call produced."""

    forecasts: list[Forecast] = field(default_factory=list)
    accepted: list[Record] = field(default_factory=list)  # on their grid points: the truths forecasts meet
    rejected: list[tuple[Record, RecordError]] = field(default_factory=list)
    scored: list[ScoredError] = field(default_factory=list)  # one-step-ahead only: the drift detectors' input
    events: list[LoopEvent] = field(default_factory=list)
