"""Common shape of every drift detector: ``update(x) -> bool``, ``drift_detected``, ``reset()``, state."""

from __future__ import annotations

import abc
import collections
import copy
import math
import random
from typing import Any, ClassVar

import numpy as np

from ._params import Parametrised
from ._validate import finite_array

__all__ = ["INPUT_KINDS", "DriftDetector"]

INPUT_KINDS = ("errors", "features")


class DriftDetector(Parametrised, abc.ABC):
    """Base class: a small state machine fed one value (or row) at a time.

    A subclass stores each constructor argument as ``self.<name>`` (``params()`` reads them
    from the signature) and declares its learned state once, in :meth:`_fresh_state`; from
    that the base class resets, saves and restores it.  After a detection the detector starts
    afresh on the next ``update`` (as River does), so one change is reported once.
    """

    name: ClassVar[str] = "detector"
    # what ``update`` is fed: "errors" (forecast errors) or "features" (input rows [n, channels])
    input_kind: ClassVar[str] = "errors"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.input_kind not in INPUT_KINDS:
            raise TypeError(f"{cls.__name__}.input_kind must be one of {INPUT_KINDS}, got {cls.input_kind!r}")

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
        """Forget what the stream taught; keep the parameters and any reference given by ``rebase``."""
        self._drift = False
        self.n_updates = 0
        self._restart()

    def rebase(self, val_error: float | None = None, reference_features: np.ndarray | None = None) -> None:
        """Start afresh after a model swap; ``val_error`` / ``reference_features`` describe the new model.

        The default ignores both and calls :meth:`reset`; detectors that compare against a
        reference (the validation error, the training inputs) take it from here.
        """
        self.reset()

    def state_dict(self) -> dict[str, Any]:
        """Complete state as JSON-able values and numpy arrays (see :mod:`adaptcast.drift.serialize`)."""
        return {
            "kind": self.name,
            "params": self.params(),
            "drift": self._drift,
            "n_detections": self.n_detections,
            "n_updates": self.n_updates,
            "state": {k: _to_saved(getattr(self, k)) for k in self._fresh_state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state produced by ``state_dict`` of a detector with the same parameters."""
        if state.get("kind") != self.name:
            raise ValueError(f"state is for {state.get('kind')!r}, not {self.name!r}")
        if _norm(state.get("params")) != _norm(self.params()):
            raise ValueError(
                f"{self.name}: parameters differ: state {state.get('params')} vs {self.params()}"
            )
        fresh, saved = self._fresh_state(), state["state"]
        if set(saved) != set(fresh):
            raise ValueError(
                f"{self.name}: saved state has fields {sorted(saved)}, this version {sorted(fresh)}"
            )
        self._drift = bool(state["drift"])
        self.n_detections = int(state["n_detections"])
        self.n_updates = int(state["n_updates"])
        for k, like in fresh.items():
            setattr(self, k, _from_saved(saved[k], like))

    # -- subclass hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def _update_one(self, v: float) -> bool: ...

    @abc.abstractmethod
    def _fresh_state(self) -> dict[str, Any]:
        """Every learned-state attribute and its value after ``reset()``: the one declaration of state.

        Values are numbers, strings, None, numpy arrays, lists, deques or ``random.Random``;
        an attribute ``reset()`` keeps (a reference given by ``rebase``) maps to its current value.
        """

    def _restart(self) -> None:
        """Set every state attribute to its fresh value (also the restart after a detection)."""
        for k, v in self._fresh_state().items():
            setattr(self, k, v)


def _to_saved(v: Any) -> Any:
    """A state attribute as JSON-able values and arrays, sharing nothing with the live object."""
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, random.Random):
        version, internal, gauss = v.getstate()
        return [version, np.asarray(internal, dtype=np.int64), gauss]
    if isinstance(v, (list, tuple, collections.deque)):
        return [_to_saved(x) for x in v]
    return v


def _from_saved(s: Any, like: Any) -> Any:
    """Inverse of :func:`_to_saved`, shaped like ``like`` (the attribute's fresh value)."""
    if s is None:
        return None
    if isinstance(like, random.Random):
        rng = random.Random()
        rng.setstate((int(s[0]), tuple(int(x) for x in np.asarray(s[1]).tolist()), s[2]))
        return rng
    if isinstance(like, collections.deque):
        return collections.deque(s, maxlen=like.maxlen)
    if isinstance(like, np.ndarray):
        return np.array(s, dtype=like.dtype)
    if isinstance(like, (bool, int, float, str)):
        return type(like)(s)
    return copy.deepcopy(s)


def _norm(p: Any) -> Any:
    """Normalise params for comparison (tuples vs lists after a JSON round trip)."""
    if isinstance(p, dict):
        return {k: _norm(v) for k, v in p.items()}
    if isinstance(p, (list, tuple)):
        return [_norm(v) for v in p]
    return p
