"""What the loop reports: drift alarms, the outcome of every training job, and grid events of a series.

Each event is a small frozen dataclass; ``to_dict`` gives the flat record the backtest tables
and the service log use (``event``, ``ts_ms``, ``step``, ``reason`` and the event's fields).
Adaptation events (:class:`Event`) carry the policy decision behind them; a series' grid events
(:class:`SeriesEvent`: a filled gap, a restarted window) have none.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar

from adaptcast.drift.policy import Decision

__all__ = [
    "DriftAlarm",
    "Event",
    "GapFilled",
    "LoopEvent",
    "RetrainFailed",
    "RetrainRejected",
    "RetrainSuperseded",
    "Retrained",
    "SeriesEvent",
    "SeriesReset",
]


@dataclass(frozen=True, kw_only=True)
class Event:
    """Something adaptation did at ``step`` (newest record time ``ts_ms``) because of ``decision``."""

    kind: ClassVar[str]
    ts_ms: int
    step: int
    decision: Decision

    def to_dict(self) -> dict[str, Any]:
        """Flat record: ``event`` (the kind), ``ts_ms``, ``step``, ``reason`` (decision label), fields."""
        out: dict[str, Any] = {"event": self.kind, "ts_ms": self.ts_ms, "step": self.step}
        out["reason"] = self.decision.label
        out.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in _COMMON)
        return out


_COMMON = {"ts_ms", "step", "decision"}  # the fields every event has, written first by to_dict


@dataclass(frozen=True, kw_only=True)
class DriftAlarm(Event):
    """The policy's detector fired (the decision names it)."""

    kind: ClassVar[str] = "drift"

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "detector": self.decision.detector}


@dataclass(frozen=True, kw_only=True)
class TrainEvent(Event):
    """How a training job ended; it trained on the last ``window`` rows, ``train_samples`` windows.

    ``samples_seen`` is the job's deterministic compute: samples x epochs (rows x boosting
    rounds) summed over its fits, the validated fit and the refit on every window. ``cleaned``
    counts the glitches replaced in its training rows (:mod:`adaptcast.forecast.outliers`).
    """

    window: int
    train_samples: int
    samples_seen: int = 0
    cleaned: int = 0


@dataclass(frozen=True, kw_only=True)
class Retrained(TrainEvent):
    """The candidate passed validation and now serves as ``model_version``.

    ``val_error`` is None after an ungated routine refit: it trained on the newest windows too, so
    there is no out-of-sample error to report.
    """

    kind: ClassVar[str] = "retrain"
    model_version: str
    train_seconds: float
    epochs: int
    val_error: float | None


@dataclass(frozen=True, kw_only=True)
class RetrainRejected(TrainEvent):
    """The candidate validated worse than the serving model (standardised lead-1 MAE); it was dropped."""

    kind: ClassVar[str] = "retrain_rejected"
    candidate_error: float
    serving_error: float
    train_seconds: float


@dataclass(frozen=True, kw_only=True)
class RetrainFailed(TrainEvent):
    """Training raised; ``error`` is the exception as ``Type: message``. The serving model stays."""

    kind: ClassVar[str] = "retrain_failed"
    error: str | None


@dataclass(frozen=True, kw_only=True)
class RetrainSuperseded(TrainEvent):
    """The candidate finished after a model from a newer job was installed; it was dropped unvalidated."""

    kind: ClassVar[str] = "retrain_superseded"
    serving_version: str


@dataclass(frozen=True, kw_only=True)
class SeriesEvent:
    """Something the time grid did to one ``series`` at ``step``, on its grid point ``ts_ms``."""

    kind: ClassVar[str]
    ts_ms: int
    step: int
    series: str

    def to_dict(self) -> dict[str, Any]:
        """Flat record: ``event`` (the kind), ``ts_ms``, ``step``, ``series`` and the event's fields."""
        out: dict[str, Any] = {"event": self.kind, "ts_ms": self.ts_ms, "step": self.step}
        out.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name not in _COMMON)
        return out


@dataclass(frozen=True, kw_only=True)
class GapFilled(SeriesEvent):
    """``steps`` missing grid points from ``ts_ms`` on were filled for the model's input (never scored)."""

    kind: ClassVar[str] = "gap_filled"
    steps: int


@dataclass(frozen=True, kw_only=True)
class SeriesReset(SeriesEvent):
    """The series' window restarted at ``ts_ms``.

    ``reason`` is ``gap`` (``steps`` grid points were missing, more than ``grid.max_fill``) or
    ``grid_change`` (the series moved to a new grid; ``steps`` is None); ``period_ms`` is the
    series' period after the restart.
    """

    kind: ClassVar[str] = "series_reset"
    reason: str
    steps: int | None
    period_ms: int | None


LoopEvent = Event | SeriesEvent  # what the loop's event list holds
