"""Point-forecast error metrics (pure numpy): the one place an error is computed from ``y`` and ``ŷ``."""

from __future__ import annotations

import math

import numpy as np


def absolute_errors(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    """``|y − ŷ|`` element-wise: the per-point error that the MAE-type metrics average."""
    return np.abs(np.asarray(y) - np.asarray(yhat))


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute error."""
    return float(np.mean(absolute_errors(y, yhat)))


def scaled_mae(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray | float) -> float:
    """MAE in units of ``scale`` (broadcast, e.g. one training std per target channel on the last axis)."""
    return float(np.mean(absolute_errors(y, yhat) / scale))


def mse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean squared error."""
    return float(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2))


def rmse(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared error."""
    return math.sqrt(mse(y, yhat))


def mape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Mean absolute percentage error in percent; undefined where ``y`` is 0, so pass the entries to score."""
    return float(100 * np.mean(absolute_errors(y, yhat) / np.abs(np.asarray(y))))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0–200); pairs where both are 0 count as 0 error."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    denom = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2 * absolute_errors(y, yhat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * ratio.mean())


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    """Mean absolute scaled error: MAE over ``scale`` (the in-sample naive MAE, e.g.
    ``backtest_scores.series_extent``); NaN unless ``scale > 0``."""
    return mae(y, yhat) / scale if scale > 0 else float("nan")
