"""Isolated outliers: glitches (a sensor's 1e12, a unit slip) that a model must neither learn nor read.

One such value among thousands sets a scaler's mean and deviation and a squared loss on its own: the
model refitted on it serves nonsense long after the value has left its input window, and a window
holding it makes a linear model's forecast nonsense for a lookback. In a history, a value is a
glitch when it stands far from the medians of its neighbours on both sides (so a level shift, whose
neighbours follow it, never is) and further than any but a handful of other values do (so a
pattern that recurs, such as bursts of an error count, never is): training sets :func:`clean`
their histories. A window is too short to tell a pattern by, so there a glitch is a value far
beyond what the model's training windows held, among neighbours within it: every forecaster
:func:`repair`-s its input windows against the bounds it saw (:func:`widened`). Pure maths on
arrays whose second-to-last axis is time and last axis the channels.
"""

from __future__ import annotations

import numpy as np

# each side of a row, this many neighbours; a glitch spans at most HALF_WIDTH - 1 consecutive rows
# (so that fewer than half of the neighbours of a glitch, or of the row next to it, are glitches)
HALF_WIDTH = 4
# how many times further from its neighbours than the REPEATS-th furthest value a glitch stands
FACTOR = 10.0
# how many spans of the training bounds beyond them a window's newest value must lie to be a glitch
# (nothing after it tells one from a new level yet, so only a value no new level could reach is)
FAR = 1000.0
# the fewest values as far from their neighbours as a glitch that make it a pattern instead (or
# this share of them, in a long history)
REPEATS = 5
REPEAT_SHARE = 0.005


def isolated_outliers(x: np.ndarray) -> np.ndarray:
    """Mask of the glitches in ``x`` (``[..., rows, channels]``, or ``[rows]``), each column alone.

    A value's distance is the smaller of its distances from the median of the HALF_WIDTH values
    before it (the first rows: those there are) and from that of the HALF_WIDTH after it, so that the
    rows either side of a level shift, near one of their sides, are never far. A value is a glitch
    when that distance exceeds FACTOR times the k-th largest in its column, k being REPEATS (or
    REPEAT_SHARE of the rows), and that distance is not zero: in a column without noise (a constant
    one, a rare-event count, an indicator) there is no scale to tell a glitch by. The last
    HALF_WIDTH rows are never glitches: without values after them a glitch cannot be told from the
    start of a new level. Missing values (NaN) are never glitches.
    """
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        return isolated_outliers(a[:, None])[:, 0]
    w = HALF_WIDTH
    n = a.shape[-2]
    judged = n - w  # rows with w values after them
    k = max(REPEATS, int(REPEAT_SHARE * judged))
    mask = np.zeros(a.shape, dtype=bool)
    if judged <= max(k, w):
        return mask
    rows = [a[..., j : n - w + 1 + j, :] for j in range(w)]
    runs = _median_of(rows)  # runs[j]: the median of rows j .. j + w - 1
    after = np.abs(a[..., :judged, :] - runs[..., 1 : judged + 1, :])
    dist = after.copy()
    dist[..., w:, :] = np.fmin(np.abs(a[..., w:judged, :] - runs[..., : judged - w, :]), after[..., w:, :])
    for i in range(1, w):  # the first rows: as many values before them as there are
        near = np.abs(a[..., i, :] - _median_of([a[..., j, :] for j in range(i)]))
        dist[..., i, :] = np.fmin(near, after[..., i, :])
    # Only a column whose largest distance beats FACTOR times a lower bound of its k-th largest
    # (what is left of the sum once k - 1 values are taken as large as the largest) can hold one.
    known = np.where(np.isnan(dist), 0.0, dist)
    top = known.max(axis=-2)
    floor = (known.sum(axis=-2) - (k - 1) * top) / (judged - k + 1)
    maybe = (top > 0) & (top > FACTOR * np.maximum(floor, 0.0))
    if not maybe.any():
        return mask
    suspects = np.moveaxis(dist, -2, -1)[maybe]  # [columns, judged]
    ranked = np.where(np.isnan(suspects), -np.inf, suspects)
    typical = np.partition(ranked, judged - k, axis=-1)[:, judged - k : judged - k + 1]
    with np.errstate(invalid="ignore"):
        found = (suspects > FACTOR * typical) & (typical > 0)
    np.moveaxis(mask, -2, -1)[..., :judged][maybe] = found
    return mask


def clean(x: np.ndarray) -> tuple[np.ndarray, int]:
    """History ``x`` (``[rows, channels]`` or ``[rows]``) with its :func:`isolated_outliers`
    replaced by the median of the ``2·HALF_WIDTH`` values around each (fewer than half of them
    glitches), and its newest HALF_WIDTH rows :func:`repair`-ed against the bounds of the rows
    before them (a newest value is a glitch only FAR beyond those); and how many values changed
    (``x`` itself when none; a float array keeps its dtype)."""
    a = np.asarray(x)
    flat = a[:, None] if a.ndim == 1 else a
    mask = isolated_outliers(flat)
    out = flat.astype(a.dtype if a.dtype.kind == "f" else float)  # a copy
    n, w = flat.shape[0], HALF_WIDTH
    for row, col in zip(*np.nonzero(mask), strict=True):
        lo = max(0, min(row - w, n - 2 * w - 1))
        around = flat[lo : lo + 2 * w + 1, col].astype(float)
        out[row, col] = np.nanmedian(np.delete(around, row - lo))
    if n > 2 * w:
        out = repair(out[None], widened(None, out[None, : n - w]))[0]
    count = int((~((out == flat) | (np.isnan(out) & np.isnan(flat)))).sum())
    return (x, 0) if not count else (out.reshape(a.shape), count)


def repair(X: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Input windows ``[batch, lookback, channels]`` with their glitches replaced (``X`` when none).

    ``bounds`` (``[2, channels]``) are the least and greatest value of each channel in the model's
    training windows. A value is a glitch when it lies further outside them than their own span
    while the medians of the HALF_WIDTH values before it (the first rows: those there are) and of
    the HALF_WIDTH after it lie within that: a glitch beyond what the model ever saw, among values
    it has seen. A channel that did not vary in training gives no scale, and has none. In the last
    HALF_WIDTH rows, with too few values after them to tell a glitch from a new level, only a value
    FAR spans beyond is one, judged by the values before it. A value
    inside the bounds is never one, so a spike that recurs in the training rows (a nightly job's)
    stays for the model to forecast from; nor is a new level, whose neighbours are beyond too. A
    glitch is replaced by the median of the values around it, as :func:`clean` does.
    """
    beyond = _beyond(X, bounds, 1.0)
    w, n = HALF_WIDTH, X.shape[1]
    beyond[:, n - w :, :] &= far_beyond(X[:, n - w :, :], bounds)
    if not beyond.any():
        return X
    lo, hi = bounds[0], bounds[1]
    low, high = lo - (hi - lo), hi + (hi - lo)  # where a glitch's neighbours must lie
    out = X.copy()
    for b, i, c in zip(*np.nonzero(beyond), strict=True):  # row by row: an earlier one is mended first
        before, after = out[b, max(0, i - w) : i, c], X[b, i + 1 : i + 1 + w, c]
        sides = ([np.median(before)] if i else []) + ([np.median(after)] if i + w < n else [])
        if sides and all(low[c] <= m <= high[c] for m in sides):
            out[b, i, c] = np.median(np.concatenate([before, after]))
    return out


def far_beyond(values: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Where ``values`` (``[..., channels]``) lie FAR spans of ``bounds`` (``[2, channels]``) or more
    beyond them: no new level, only a glitch, reaches that far past what training saw. A channel
    that did not vary in training (span 0) gives no scale: nothing is beyond it."""
    return _beyond(values, bounds, FAR)


def _beyond(values: np.ndarray, bounds: np.ndarray, spans: float) -> np.ndarray:
    """Where ``values`` lie more than ``spans`` spans of ``bounds`` outside them (never in a channel
    of span 0)."""
    lo, hi = bounds[0], bounds[1]
    out = np.less(values, lo - spans * (hi - lo)) | np.greater(values, hi + spans * (hi - lo))
    return out & (hi > lo)


def widened(bounds: np.ndarray | None, X: np.ndarray) -> np.ndarray:
    """``bounds`` (``[2, channels]``, or None) widened to hold every value of windows ``X``."""
    seen = np.stack([np.nanmin(X, axis=(0, 1)), np.nanmax(X, axis=(0, 1))]).astype(np.float64)
    if bounds is None:
        return seen
    return np.stack([np.minimum(bounds[0], seen[0]), np.maximum(bounds[1], seen[1])])


def _median_of(values: list[np.ndarray]) -> np.ndarray:
    """Elementwise median of one to four like-shaped arrays, without sorting (NaN if any is)."""
    if len(values) <= 2:
        return sum(values) / len(values)
    total = sum(values)
    spread = np.maximum.reduce(values) + np.minimum.reduce(values)
    return (total - spread) / (len(values) - 2)
