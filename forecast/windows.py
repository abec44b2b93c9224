"""Pure windowing: turn a [rows, channels] array into model inputs and targets."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def sliding_windows(
    values: np.ndarray, lookback: int, horizon: int, n_targets: int = 1, stride: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """``X[i] = values[s:s+lookback]``, ``Y[i] = values[s+lookback:s+lookback+horizon, :n_targets]``.

    ``s`` runs over ``0, stride, 2*stride, …`` while the horizon still fits; the targets are the
    leading ``n_targets`` channels. Returns float32 copies (safe to keep while the source changes).
    """
    arr = np.asarray(values, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"values must be [rows, channels], got shape {list(arr.shape)}")
    if lookback < 1 or horizon < 1 or stride < 1:
        raise ValueError(
            f"lookback, horizon and stride must be positive, got {lookback}, {horizon}, {stride}"
        )
    span = lookback + horizon
    if arr.shape[0] < span:
        raise ValueError(
            f"need at least lookback + horizon = {span} rows to make one window, got {arr.shape[0]}"
        )
    view = sliding_window_view(arr, span, axis=0)[::stride]  # [N, C, span]
    view = np.moveaxis(view, 2, 1)
    return np.ascontiguousarray(view[:, :lookback]), np.ascontiguousarray(view[:, lookback:, :n_targets])


def joined(runs: list[np.ndarray]) -> np.ndarray:
    """Runs of rows (``[rows, channels]`` each, oldest first) as one history with a break row (all
    NaN) between each two: what :func:`segments` splits again. A series that restarted after a long
    gap keeps its earlier rows for training this way, and no window crosses the gap."""
    gap = np.full((1, runs[-1].shape[1]), np.nan, dtype=runs[-1].dtype)
    return np.concatenate([part for run in runs for part in (gap, run)][1:])


def segments(history: np.ndarray) -> list[np.ndarray]:
    """The runs of ``history`` between its break rows (see :func:`joined`), oldest first, empty runs
    left out; a history without breaks is its one run (no copy)."""
    if history.ndim != 2 or not len(history):
        return [history] if len(history) else []
    breaks = np.flatnonzero(np.isnan(history[:, 0]))
    if not breaks.size:
        return [history]
    bounds = zip(np.r_[0, breaks + 1], np.r_[breaks, len(history)], strict=True)
    return [history[a:b] for a, b in bounds if b > a]


def split_train_val(n_windows: int, horizon: int, val_fraction: float) -> tuple[slice, slice | None]:
    """Split consecutive windows (oldest first, one row apart) in time: ``(train, val)`` index slices.

    Validation is the newest ``round(val_fraction · n_windows)`` windows (none under 10 windows);
    training is the oldest windows up to a gap of ``horizon − 1``, so no row is a target of both.
    When that leaves no training window, every window trains and there is no validation.
    """
    n_val = round(val_fraction * n_windows) if n_windows >= 10 else 0
    n_train = n_windows - n_val - (horizon - 1 if n_val else 0)
    if n_train < 1 or n_val == 0:
        return slice(0, n_windows), None
    return slice(0, n_train), slice(n_windows - n_val, n_windows)


def scale_spread(histories: list[np.ndarray], n_targets: int) -> float:
    """How many times larger the most agitated series' steps are than the calmest's: per target, the
    ratio of the largest to the smallest standard deviation of first differences over the series
    (each history ``[rows, channels]``, targets first), the largest ratio over targets; 1 for fewer
    than two series with steps. One model over series of unlike scales serves the largest well and
    the others badly unless each window is standardised (``window_norm: standard``). Steps across a
    break row (:func:`joined`) do not count."""
    steps = [np.nanstd(np.diff(h[:, :n_targets], axis=0), axis=0) for h in histories if len(h) > 2]
    if len(steps) < 2:
        return 1.0
    sd = np.stack(steps)  # [series, targets]
    calm = np.where(sd > 0, sd, np.inf).min(axis=0)
    ratio = np.where(
        np.isfinite(calm) & (calm > 0), sd.max(axis=0) / np.where(np.isfinite(calm), calm, 1), 1.0
    )
    return float(ratio.max())


AUTO_SCALE_RATIO = 10.0  # "auto" standardises each window when the series' scales differ by more than this


def auto_norm(histories: list[np.ndarray], n_targets: int, level_norm: str = "none") -> tuple[str, float]:
    """What ``window_norm: auto`` becomes for these series, and their :func:`scale_spread`:
    ``standard`` over unlike scales, else the model's ``level_norm`` (``BaseForecaster.level_norm``)."""
    spread = scale_spread(histories, n_targets)
    return ("standard" if spread > AUTO_SCALE_RATIO else level_norm), spread
