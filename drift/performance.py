"""Performance-based drift: the rolling live error against the model's validation error."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._validate import finite_array, finite_scalar
from .base import DriftDetector

__all__ = ["PerformanceDrift"]

# Fewest values left in a batch for the array path: below it, value by value is cheaper than the
# array path's fixed cost (a few dozen numpy calls; one scalar update is about half a microsecond).
_LAP_MIN = 48


class PerformanceDrift(DriftDetector):
    """Fire when the mean of the last ``window`` live errors exceeds ``reference * (1 + tolerance)``.

    Input is a non-negative error per forecast (|e|, e², …) in the units of the reference,
    the model's validation error, set by :meth:`rebase` at every model swap.  Rules:
    no decision before ``min_samples`` errors since the last reset; the first ``cooldown``
    errors after a reset/retrain are ignored (they mostly belong to forecasts of the previous
    model); without a reference the mean of the first ``min_samples`` errors becomes it
    (self-calibration).  After firing, the window empties and cooldown restarts.
    ``reference`` is the constructor's value, ``current_reference`` the one in use.

    >>> import numpy as np
    >>> from adaptcast.drift.performance import PerformanceDrift
    >>> rng = np.random.default_rng(0)
    >>> errors = np.abs(np.r_[rng.normal(0, 1, 500), rng.normal(0, 3, 100)])  # tripled at 500
    >>> detector = PerformanceDrift(reference=0.8)  # the model's validation error
    >>> next(i for i, e in enumerate(errors) if detector.update(float(e)))
    508
    """

    name = "performance"

    def __init__(
        self,
        window: int = 100,
        tolerance: float = 0.2,
        min_samples: int = 30,
        cooldown: int = 0,
        reference: float | None = None,
    ) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if not min_samples >= 1:
            raise ValueError(f"min_samples must be >= 1, got {min_samples}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown}")
        tol = finite_scalar(tolerance, "tolerance")
        if tol < 0:
            raise ValueError(f"tolerance must be >= 0, got {tol}")
        self.window = int(window)
        self.tolerance = tol
        self.min_samples = int(min(min_samples, window))
        self.cooldown = int(cooldown)
        self.reference = None if reference is None else self._check_ref(reference)
        self.current_reference = self.reference  # the one in use: given, rebased or self-calibrated
        self._auto = reference is None
        self.reset()

    @staticmethod
    def _check_ref(v: float) -> float:
        r = finite_scalar(v, "reference")
        if r < 0:
            raise ValueError(f"reference error must be >= 0, got {r}")
        return r

    # -- reference ----------------------------------------------------------------------------
    def set_reference(self, val_error: float | None) -> None:
        """Set the validation error of the (new) model and restart window and cooldown.

        ``None`` switches to self-calibration from the next ``min_samples`` errors.
        """
        if val_error is None:
            self.current_reference, self._auto = None, True
        else:
            self.current_reference, self._auto = self._check_ref(val_error), False
        self.reset()

    def rebase(self, val_error: float | None = None, reference_features: np.ndarray | None = None) -> None:
        """After a model swap: ``val_error`` becomes the reference; without one, keep it and reset."""
        if val_error is None:
            self.reset()
        else:
            self.set_reference(val_error)

    @property
    def threshold(self) -> float | None:
        """Rolling-error level above which the detector fires (None until a reference exists)."""
        ref = self.current_reference
        return None if ref is None else ref * (1.0 + self.tolerance)

    @property
    def rolling_error(self) -> float:
        """Mean of the errors currently in the window (NaN-free: 0.0 when empty)."""
        return self._sum / self._count if self._count else 0.0

    # -- state machine ------------------------------------------------------------------------
    def _fresh_state(self) -> dict[str, Any]:
        # a given reference (constructor, set_reference, rebase) survives a reset; a calibrated one does not
        return {
            "_buf": [0.0] * self.window,
            "_pos": 0,
            "_count": 0,
            "_sum": 0.0,
            "_since": 0,  # errors seen since the last reset (for cooldown)
            "_calib_sum": 0.0,
            "_calib_n": 0,
            "_auto": self._auto,
            "current_reference": None if self._auto else self.current_reference,
        }

    def update(self, x: float) -> bool:
        v = float(x)
        if not (math.isfinite(v) and v >= 0.0):
            raise ValueError(f"performance: error must be finite and >= 0, got {x!r}")
        return self._update_one(v)

    def update_many(self, xs: Any) -> np.ndarray:
        """:meth:`update` over a batch, the same decisions and state to the last bit: the steady
        state (a reference, cooldown over, no detection pending) runs a lap of the window at a time
        as arrays; the rest (calibration, cooldown, the restart after a detection, a short tail)
        value by value."""
        arr = finite_array(xs, f"{self.name} input", ndim=1, allow_empty=True)
        if (arr < 0).any():
            raise ValueError("performance: errors must be >= 0")
        out = np.zeros(arr.size, dtype=bool)
        i = 0
        while i < arr.size:
            filling = self._count < self.window
            if (
                self._drift
                or self._since < self.cooldown
                or self.current_reference is None
                or (filling and self._pos != self._count)
                or arr.size - i < _LAP_MIN
            ):
                out[i] = self._update_one(float(arr[i]))
                i += 1
            else:
                i = self._lap(arr, i, out)
        return out

    def _lap(self, arr: np.ndarray, i: int, out: np.ndarray) -> int:
        """Steady-state updates from ``arr[i]`` to the end of the window's lap or the first detection,
        the running sum accumulated in :meth:`_update_one`'s order; returns where it stopped."""
        w, pos, count = self.window, self._pos, self._count
        v = arr[i : i + min(arr.size - i, w - pos)]
        m = v.size
        if count == w:  # full: each value replaces the oldest, sum − old + new
            steps = np.empty(2 * m + 1)
            steps[0], steps[1::2], steps[2::2] = self._sum, np.negative(self._buf[pos : pos + m]), v
            sums = np.add.accumulate(steps)[2::2]
            counts = np.full(m, w)
        else:  # filling (the position is the count): sum + new
            sums = np.add.accumulate(np.concatenate(([self._sum], v)))[1:]
            counts = count + np.arange(1, m + 1)
        buf = self._buf[:pos] + v.tolist() + self._buf[pos + m :]
        if pos + m == w:  # the lap's last value: the sum is recomputed before it is judged
            sums[-1] = math.fsum(buf[: int(counts[-1])])
        fired = np.flatnonzero(
            (counts >= self.min_samples) & (sums > self.current_reference * (1.0 + self.tolerance) * counts)
        )
        k = int(fired[0]) + 1 if len(fired) else m
        self._buf[pos : pos + k] = buf[pos : pos + k]
        self._sum, self._count = float(sums[k - 1]), int(counts[k - 1])
        self._pos = 0 if pos + k == w else pos + k
        self.n_updates += k
        self._since += k
        if len(fired):
            self._drift = True
            self.n_detections += 1
            out[i + k - 1] = True
        return i + k

    def _update_one(self, v: float) -> bool:
        if self._drift:
            self._drift = False
            self._restart()
        self.n_updates += 1
        self._since += 1
        if self._since <= self.cooldown:
            return False
        if self.current_reference is None:
            self._calib_sum += v
            self._calib_n += 1
            if self._calib_n >= self.min_samples:
                self.current_reference = self._calib_sum / self._calib_n
            return False
        w = self.window
        if self._count == w:
            self._sum -= self._buf[self._pos]
        else:
            self._count += 1
        self._buf[self._pos] = v
        self._sum += v
        self._pos += 1
        if self._pos == w:
            self._pos = 0
            self._sum = math.fsum(self._buf[: self._count])  # cancel rounding drift once per lap
        if (
            self._count >= self.min_samples
            and self._sum > self.current_reference * (1.0 + self.tolerance) * self._count
        ):
            self._drift = True
            self.n_detections += 1
            return True
        return False
