"""The one train/validation split of windows: newest fraction validates, a horizon − 1 gap before it."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.forecast.windows import joined, scale_spread, segments, sliding_windows, split_train_val
from adaptcast.streams.retrain import training_set, window_count


def test_newest_fraction_validates_after_a_gap():
    train, val = split_train_val(100, horizon=5, val_fraction=0.2)
    assert (train, val) == (slice(0, 76), slice(80, 100))


@pytest.mark.parametrize("n", [0, 1, 9])
def test_under_ten_windows_all_train(n):
    assert split_train_val(n, horizon=3, val_fraction=0.5) == (slice(0, n), None)


def test_no_room_for_training_means_no_validation():
    assert split_train_val(12, horizon=12, val_fraction=0.5) == (slice(0, 12), None)


def test_zero_fraction_is_no_validation():
    assert split_train_val(50, horizon=4, val_fraction=0.0) == (slice(0, 50), None)


@pytest.mark.parametrize("horizon", [1, 2, 7])
def test_no_row_is_a_target_of_both(horizon):
    rows = np.arange(60, dtype=np.float32)
    _, Y = sliding_windows(rows, lookback=4, horizon=horizon)
    train, val = split_train_val(len(Y), horizon, val_fraction=0.3)
    assert val is not None
    assert Y[train].max() + 1 == Y[val].min()  # adjacent, never shared


def test_runs_joined_split_again_and_give_windows_that_never_cross_a_break():
    a = np.arange(10.0, dtype=np.float32)[:, None]
    b = 100 + np.arange(7.0, dtype=np.float32)[:, None]
    tiny = np.ones((2, 1), np.float32)  # too short for a window: counts nothing
    history = joined([a, tiny, b])
    assert [r[:, 0].tolist() for r in segments(history)] == [a[:, 0].tolist(), [1, 1], b[:, 0].tolist()]
    assert segments(a)[0] is a and segments(np.empty((0, 1))) == []
    data = training_set([history], len(history), 3, 2, 1)
    assert data is not None and window_count([history], len(history), 3, 2) == len(data.full[0]) == 6 + 3
    # the newest rows of a history count across breaks: its last 9 rows hold b and one row of tiny
    assert window_count([history], 9, 3, 2) == 3
    X = data.full[0][:, :, 0]
    assert not np.isnan(X).any() and all(np.ptp(x) == 2 for x in X)  # consecutive rows of one run each
    assert scale_spread([history, 3 * history], 1) == pytest.approx(3.0)
