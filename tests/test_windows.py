"""The one train/validation split of windows: newest fraction validates, a horizon − 1 gap before it."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.forecast.windows import sliding_windows, split_train_val


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
