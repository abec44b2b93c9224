"""How far a served forecast may stray from its window: the window's range, widened by a few spans.

A model read a window unlike anything it trained on (a feed that jumped a thousandfold, a unit
change, a first model fitted on one rare outage) can answer with values thousands of times beyond
the window; a linear model does, and a forecast that far off is wrong whatever the feed does next.
A trend carried on for the horizon moves ``horizon / lookback`` of its window's spans beyond the
window's range, so forecasts are kept within :data:`REACH` times the larger of 1 and that ratio,
in spans of the window, of its range. A window's span is at least the span of the values the model
trained on, so a flat window (a night, a run of zeros of an intermittent count) still lets a
forecast move as far as the training data did. A target whose forecast strays beyond that at any
lead is served its window's last value at every lead instead: the model has shown it cannot read
that window, and the envelope's edge, two spans out, would be a guess as wild. Where zero is a
series' floor (:func:`floor`), nothing is served beneath it. Pure maths on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REACH = 2.0  # spans of the window a forecast may lie beyond its range, at a horizon up to the lookback


def envelope(
    windows: np.ndarray, n_targets: int, horizon: int, trained: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Lowest and highest plausible forecast per window and target, each ``[B, 1, T]``.

    ``windows`` is ``[B, lookback, channels]`` with the targets first; ``trained`` the least and
    greatest value of each channel the model trained on (``[2, channels]``, a model's
    ``input_bounds``), or None. A window with no span, of a model with no known training span,
    has no bounds (±inf): nothing says how far its forecasts may move.
    """
    w = np.asarray(windows[:, :, :n_targets], dtype=np.float64)
    low, high = w.min(axis=1), w.max(axis=1)
    span = high - low
    if trained is not None:
        span = np.maximum(span, (trained[1] - trained[0])[:n_targets])
    reach = REACH * max(1.0, horizon / w.shape[1]) * np.where(span > 0, span, np.inf)
    return (low - reach)[:, None, :], (high + reach)[:, None, :]


def strays(forecasts: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Per window and target, whether ``forecasts`` (``[B, H, T]``) leave ``[low, high]`` at any lead:
    ``[B, 1, T]``."""
    return ((forecasts < low) | (forecasts > high)).any(axis=1, keepdims=True)


def floor(windows: np.ndarray, n_targets: int, trained: np.ndarray | None) -> np.ndarray:
    """Least possible value per window and target, ``[B, 1, T]`` (float32): 0 where zero is the
    series' floor, else −inf.

    Zero is a floor where the model trained on values down to exactly 0 and none below, and the
    window holds none below it: counts, rainfall, a shop's orders while it is closed. A forecast or
    an interval bound beneath it cannot happen, and repeating zeros is what a linear model overshoots.
    A series that does cross zero (a temperature) loses the floor with its first negative value.
    """
    w = np.asarray(windows[:, :, :n_targets])
    if trained is None:
        return np.full((len(w), 1, n_targets), -np.inf, dtype=np.float32)
    at_zero = (trained[0, :n_targets] == 0.0) & (w.min(axis=1) >= 0)  # [B, T]; a NaN is no evidence
    return np.where(at_zero, 0.0, -np.inf).astype(np.float32)[:, None, :]


@dataclass(frozen=True)
class Bounds:
    """Where the forecasts of a batch of windows may lie: within ``[low, high]`` (:func:`envelope`)
    and not beneath ``least`` (:func:`floor`); each ``[B, 1, T]``. One place, so the loop and
    ``adaptcast predict`` serve alike."""

    low: np.ndarray
    high: np.ndarray
    least: np.ndarray
    last: np.ndarray  # each window's last value of each target: what a stray forecast is replaced by

    @classmethod
    def of(cls, windows: np.ndarray, n_targets: int, horizon: int, trained: np.ndarray | None) -> Bounds:
        """The bounds of ``windows`` for a model trained on values within ``trained`` (``input_bounds``)."""
        low, high = envelope(windows, n_targets, horizon, trained)
        last = np.asarray(windows[:, -1:, :n_targets], dtype=np.float32)
        return cls(low, high, floor(windows, n_targets, trained), last)

    def keep(self, forecasts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``forecasts`` (``[B, H, T]``) with each target that strays from the envelope replaced by its
        window's last value, raised to the floor, as float32, and which windows strayed (the floor
        only takes error off: not counted)."""
        wild = strays(forecasts, self.low, self.high)
        out = np.where(wild, self.last, forecasts) if wild.any() else forecasts
        return np.maximum(out, self.least).astype(np.float32, copy=False), wild.any(axis=(1, 2))
