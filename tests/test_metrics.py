"""Point-forecast error metrics (and the backtest's MASE scale) on hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from adaptcast.forecast import metrics
from adaptcast.streams.backtest_scores import series_extent

Y = np.array([[1.0, -2.0], [4.0, 0.5]])
YHAT = np.array([[2.0, -2.0], [1.0, 1.0]])  # errors 1, 0, 3, 0.5


def test_absolute_and_squared_errors():
    np.testing.assert_array_equal(metrics.absolute_errors(Y, YHAT), [[1.0, 0.0], [3.0, 0.5]])
    assert metrics.mae(Y, YHAT) == pytest.approx(4.5 / 4)
    assert metrics.mse(Y, YHAT) == pytest.approx(10.25 / 4)
    assert metrics.rmse(Y, YHAT) == pytest.approx(math.sqrt(10.25 / 4))


def test_scaled_mae_divides_each_target_by_its_scale():
    assert metrics.scaled_mae(Y, YHAT, np.array([1.0, 0.5])) == pytest.approx((1 + 0 + 3 + 1) / 4)


def test_percentage_errors():
    assert metrics.mape(Y, YHAT) == pytest.approx(100 * (1 + 0 + 0.75 + 1) / 4)
    assert metrics.smape([0.0, 1.0], [0.0, 3.0]) == pytest.approx(100 * (0 + 2 * 2 / 4) / 2)


def test_mase_against_the_naive_scale():
    # rows interleaved by time, as a feed holds them; no difference is taken across two series
    frame = pl.DataFrame({"series": ["a", "b", "a", "b", "a", "c"], "y": [0.0, 10.0, 2.0, 10.0, 1.0, 99.0]})
    longest, scale = series_extent(frame, "y")  # |2 - 0|, |1 - 2|, |10 - 10|
    assert longest == 3 and scale == pytest.approx(1.0)
    assert math.isnan(series_extent(frame.filter(pl.col("series") == "c"), "y")[1])  # one row: no pair
    assert metrics.mase(Y, YHAT, scale) == pytest.approx(4.5 / 4)
    assert math.isnan(metrics.mase(Y, YHAT, 0.0))
