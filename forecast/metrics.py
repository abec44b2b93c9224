"""Point-forecast error metrics (pure numpy)."""

from __future__ import annotations

import numpy as np


def mae(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(yhat))))


def mse(y: np.ndarray, yhat: np.ndarray) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(yhat)) ** 2))


def smape(y: np.ndarray, yhat: np.ndarray) -> float:
    """Symmetric MAPE in percent (0–200); pairs where both are 0 count as 0 error."""
    y, yhat = np.asarray(y, dtype=np.float64), np.asarray(yhat, dtype=np.float64)
    denom = np.abs(y) + np.abs(yhat)
    ratio = np.divide(2 * np.abs(y - yhat), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100 * ratio.mean())


def naive_scale(series_values: list[np.ndarray], season: int = 1) -> float:
    """MASE denominator: mean |y_t − y_{t−season}| pooled over series (in-sample seasonal naive)."""
    diffs = [np.abs(v[season:] - v[:-season]) for v in series_values if len(v) > season]
    if not diffs:
        return float("nan")
    return float(np.concatenate(diffs).mean())


def mase(y: np.ndarray, yhat: np.ndarray, scale: float) -> float:
    return mae(y, yhat) / scale if scale > 0 else float("nan")
