"""Common shape of every drift detector: ``update(x) -> bool``, ``drift_detected``, ``reset()``, state."""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np

from ._validate import finite_array

__all__ = ["DriftDetector"]


class DriftDetector(abc.ABC):
    """Base class: a small state machine fed one value (or row) at a time.

    After a detection the detector starts afresh on the next ``update`` (as River does), so
    one change is reported once.  ``state_dict``/``load_state_dict`` resume it exactly.
    """

    name: ClassVar[str] = "detector"

    def __init__(self) -> None:
        self._drift = False
        self.n_detections = 0
        self.n_updates = 0

    # -- public API -------------------------------------------------------------------------
    @property
    def drift_detected(self) -> bool:
        """Whether the last ``update`` detected a change."""
        return self._drift

    def update(self, x: float) -> bool:
        """Feed one finite value; return True when a change is detected at this value."""
        v = float(x)
        if not math.isfinite(v):
            raise ValueError(f"{self.name}: input must be finite, got {x!r}")
        return self._update_one(v)

    def update_many(self, xs: Any) -> np.ndarray:
        """Feed a 1-D batch in order; return a bool array marking where changes were detected."""
        arr = finite_array(xs, f"{self.name} input", ndim=1, allow_empty=True)
        step = self._update_one
        return np.fromiter((step(v) for v in arr.tolist()), dtype=bool, count=arr.size)

    def reset(self) -> None:
        """Forget everything learned from the stream (parameters are kept)."""
        self._drift = False
        self.n_updates = 0
        self._reset_state()

    def params(self) -> dict[str, Any]:
        """Constructor parameters (JSON-able), enough to rebuild an untrained clone."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Complete state as JSON-able values and numpy arrays (see :mod:`drift.state`)."""
        return {
            "kind": self.name,
            "params": self.params(),
            "drift": self._drift,
            "n_detections": self.n_detections,
            "n_updates": self.n_updates,
            "state": self._get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by ``state_dict`` of a detector with the same parameters."""
        if state.get("kind") != self.name:
            raise ValueError(f"state is for {state.get('kind')!r}, not {self.name!r}")
        if _norm(state.get("params")) != _norm(self.params()):
            raise ValueError(
                f"{self.name}: parameters differ: state {state.get('params')} vs {self.params()}"
            )
        self._drift = bool(state["drift"])
        self.n_detections = int(state["n_detections"])
        self.n_updates = int(state["n_updates"])
        self._set_state(state["state"])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    # -- subclass hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def _update_one(self, v: float) -> bool: ...

    @abc.abstractmethod
    def _reset_state(self) -> None: ...

    @abc.abstractmethod
    def _get_state(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _set_state(self, s: dict[str, Any]) -> None: ...


def _norm(p: Any) -> Any:
    """Normalise params for comparison (tuples vs lists after a JSON round trip)."""
    if isinstance(p, dict):
        return {k: _norm(v) for k, v in p.items()}
    if isinstance(p, (list, tuple)):
        return [_norm(v) for v in p]
    return p
