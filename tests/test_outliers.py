"""Isolated outliers: a glitch is cleaned from histories and repaired in input windows; a level
shift, a recurring burst, a rare event of a noiseless column and the newest rows never are."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.forecast.outliers import (
    HALF_WIDTH,
    REPEATS,
    clean,
    far_beyond,
    isolated_outliers,
    repair,
    widened,
)


def wave(n: int = 1500, seed: int = 0) -> np.ndarray:
    t = np.arange(n)
    return 10 + 3 * np.sin(2 * np.pi * t / 24) + np.random.default_rng(seed).normal(0, 0.5, n)


@pytest.mark.parametrize("run", range(1, HALF_WIDTH))
def test_a_glitch_of_up_to_a_few_rows_is_replaced_by_its_neighbours_median(run):
    x = wave()
    glitched = x.copy()
    glitched[700 : 700 + run] = 1e12
    glitched[1000] = -5e9
    out, count = clean(glitched)
    assert count == run + 1
    changed = np.flatnonzero(out != glitched)
    assert changed.tolist() == [*range(700, 700 + run), 1000]  # nothing else moves
    assert np.abs(out - x).max() < 5  # each now sits among its neighbours
    assert np.median(glitched[[996, 997, 998, 999, 1001, 1002, 1003, 1004]]) == out[1000]


def test_a_level_shift_however_large_is_no_glitch():
    x = wave()
    x[800:] += 1e9
    assert not isolated_outliers(x).any()
    assert clean(x)[0] is x


def test_a_pattern_that_recurs_is_no_glitch_and_a_noiseless_column_has_none():
    rng = np.random.default_rng(1)
    bursts = np.zeros(2000)
    bursts[rng.choice(2000, REPEATS + 1, replace=False)] = 500.0  # error-count bursts: a pattern
    indicator = np.zeros(2000)
    indicator[[300, 900]] = 1.0  # a rare event of a column without noise: no scale to judge it by
    both = np.stack([bursts, indicator], 1)
    assert not isolated_outliers(both).any()
    heavy = rng.standard_t(3, 20000)  # a heavy tail's peaks are the data, not glitches
    assert isolated_outliers(heavy).sum() == 0


def test_a_history_s_newest_value_is_cleaned_only_when_no_new_level_reaches_that_far():
    """A history ends where a retrain starts: a glitch there was kept, and reached the training
    targets. Now a newest value FAR spans beyond the rows before it is one; a new level is not."""
    x = wave(400)
    span = x[:-HALF_WIDTH].max() - x[:-HALF_WIDTH].min()
    glitched = x.copy()
    glitched[-1] = 1e12
    out, count = clean(glitched)
    assert count == 1 and out[-1] == np.median(x[-1 - HALF_WIDTH : -1])
    risen = x.copy()
    risen[-HALF_WIDTH:] += 100 * span
    out, count = clean(risen)
    assert out is risen and count == 0


def test_the_newest_rows_and_missing_values_are_never_isolated_outliers():
    x = wave(300)
    x[-HALF_WIDTH:] = 1e12  # a glitch or a new level: nothing after it tells yet
    x[100] = np.nan
    x[102] = 1e12
    mask = isolated_outliers(x)
    assert np.flatnonzero(mask).tolist() == [102]


def test_repair_mends_a_value_beyond_what_training_saw_among_values_it_saw():
    x = wave(200).astype(np.float32)
    X = np.stack([x[i : i + 48] for i in range(0, 150, 10)])[:, :, None]
    bounds = widened(None, X)
    assert bounds.tolist() == [[float(x[:188].min())], [float(x[:188].max())]]
    assert repair(X, bounds) is X  # nothing to mend: the windows themselves
    bad = X.copy()
    bad[3, 20, 0] = 1e12
    bad[5, 0, 0] = -1e12  # the first row: judged on the values after it
    fixed = repair(bad, bounds)
    assert fixed.dtype == np.float32
    assert np.flatnonzero((fixed != bad).any(axis=(1, 2))).tolist() == [3, 5]
    assert fixed[3, 20, 0] == np.median(np.r_[bad[3, 16:20, 0], bad[3, 21:25, 0]])
    assert fixed[5, 0, 0] == np.median(bad[5, 1:5, 0])


def test_a_channel_constant_in_training_has_no_glitch():
    """A series at 0 all through training that steps to 10 is a new level, not a glitch: with no
    spread there is no scale (a naive model kept forecasting 0 after the step)."""
    X = np.zeros((3, 24, 1))
    bounds = widened(None, X)
    stepped = X.copy()
    stepped[:, -1, 0] = 10.0
    stepped[0, 10, 0] = 1e12
    assert repair(stepped, bounds) is stepped
    assert not far_beyond(np.array([[1e12]]), bounds).any()


def test_repair_mends_glitches_near_each_other_in_order():
    """Two glitches two rows apart at a window's start: the second is judged on the first as mended
    (it was judged on the first's 1e9 and left, and a model forecast 1e8 from that window)."""
    x = wave(200)
    X = np.stack([x[i : i + 48] for i in range(100)])[:, :, None]
    bounds = widened(None, X)
    bad = X[:1].copy()
    bad[0, [0, 2], 0] = 1e9
    fixed = repair(bad, bounds)
    assert np.abs(fixed[0, :, 0] - X[0, :, 0]).max() < 5


def test_repair_leaves_a_spike_training_saw_a_new_level_and_the_newest_rows():
    t = np.arange(400)
    y = 10 + np.sin(2 * np.pi * t / 24) + np.where(t % 24 == 2, 1000.0, 0.0)  # a nightly job's spike
    X = np.stack([y[i : i + 48] for i in range(300)])[:, :, None]
    bounds = widened(None, X)
    assert repair(X, bounds) is X  # each window's spikes are what training held
    shifted = X[:5].copy()
    shifted[:, 30:, 0] += 1e6  # a new level far beyond: its neighbours are beyond too
    assert repair(shifted, bounds) is shifted or np.array_equal(repair(shifted, bounds), shifted)
    span = float(bounds[1, 0] - bounds[0, 0])
    newest = X[:5].copy()
    newest[:, -HALF_WIDTH:, 0] += 100 * span  # a new level or a glitch: nothing after it tells yet
    assert np.array_equal(repair(newest, bounds), newest)
    glitched = X[:5].copy()
    glitched[:, -1, 0] = 1e12  # but no new level is FAR spans beyond what training saw
    fixed = repair(glitched, bounds)
    assert np.array_equal(fixed[:, :-1], glitched[:, :-1])
    assert np.array_equal(fixed[:, -1, 0], np.median(glitched[:, -1 - HALF_WIDTH : -1, 0], axis=1))
    wider = widened(bounds, glitched)  # a warm fit on windows that hold it widens what was seen
    assert wider[1, 0] == 1e12 and wider[0, 0] == bounds[0, 0]
