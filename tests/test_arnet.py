"""AR-Net reproduces least-squares AR coefficients and, with its regulariser, recovers sparse ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from adaptcast.forecast import create_forecaster, load_forecaster
from adaptcast.forecast.models.arnet import sparsity_penalty

TRUE = np.array([0.5, -0.3, 0.2])
FAST = {"accelerator": "cpu", "num_threads": 1, "patience": 100}  # run the whole LR schedule


def ar_series(n: int, seed: int = 0) -> np.ndarray:
    """A stationary AR(3) process with unit-variance Gaussian noise (500 burn-in steps dropped)."""
    rng = np.random.default_rng(seed)
    y, e = np.zeros(n + 500), rng.standard_normal(n + 500)
    for t in range(3, n + 500):
        y[t] = TRUE @ y[t - 3 : t][::-1] + e[t]
    return y[500:].astype(np.float32)


def lag_windows(y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    w = sliding_window_view(y, p + 1)
    return np.ascontiguousarray(w[:, :p, None]), np.ascontiguousarray(w[:, p:, None])


def least_squares(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """OLS AR coefficients with intercept, most recent lag first."""
    A = np.c_[X[:, ::-1, 0], np.ones(len(X))]
    return np.linalg.lstsq(A, Y[:, 0, 0], rcond=None)[0][:-1]


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return ar_series(20_000)


def test_learns_least_squares_coefficients(series):
    X, Y = lag_windows(series, 3)
    model = create_forecaster("arnet", lookback=3, horizon=1, **FAST)
    model.fit(X, Y)
    coef = model.coefficients()
    assert coef.shape == (1, 3)
    np.testing.assert_allclose(coef[0], TRUE, atol=0.03)
    np.testing.assert_allclose(coef[0], least_squares(X, Y), atol=0.03)


def test_sparse_recovery_with_regulariser_and_without(series):
    X, Y = lag_windows(series, 100)
    sparse = create_forecaster("arnet", lookback=100, horizon=1, sparsity=0.03, **FAST)
    sparse.fit(X, Y)
    coef = sparse.coefficients()[0]
    np.testing.assert_allclose(coef[:3], TRUE, atol=0.05)
    assert np.abs(coef[3:]).max() < 0.02
    dense = create_forecaster("arnet", lookback=100, horizon=1, **FAST)
    dense.fit(X, Y)
    # The regulariser must be what makes the spurious lags vanish: much larger without it.
    spurious_dense = np.abs(dense.coefficients()[0][3:]).sum()
    assert np.abs(coef[3:]).sum() < 0.05 * spurious_dense


def test_coefficients_most_recent_lag_first_and_survive_reload(tmp_path):
    # y_t = 0.8 * y_{t-1} only: the weight must sit in column 0, not column lookback-1.
    rng = np.random.default_rng(1)
    y = np.zeros(6000, dtype=np.float32)
    for t in range(1, y.size):
        y[t] = 0.8 * y[t - 1] + rng.standard_normal()
    X, Y = lag_windows(y, 4)
    model = create_forecaster("arnet", lookback=4, horizon=1, epochs=15, **FAST)
    model.fit(X, Y)
    coef = model.coefficients()[0]
    assert abs(coef[0] - 0.8) < 0.05 and np.abs(coef[1:]).max() < 0.05
    model.save(tmp_path / "ar")
    np.testing.assert_array_equal(load_forecaster(tmp_path / "ar").coefficients(), model.coefficients())


def test_sparsity_penalty_shape():
    w = torch.tensor([0.0, 0.01, 0.1, 1.0, -1.0, 10.0])
    per = [float(sparsity_penalty(v.view(1), 3.0, 3.0)) for v in w]
    assert per[0] < 0.1 and per[-1] > 0.99 and per[3] == pytest.approx(per[4])
    assert per[1] < per[2] < per[3] < per[5]


def test_lambda_from_sparsity():
    model = create_forecaster("arnet", lookback=10, horizon=1, sparsity=0.1)
    assert model.lam == pytest.approx(0.01 * 9)
    assert create_forecaster("arnet", lookback=10, horizon=1, lam=0.5).lam == 0.5
    with pytest.raises(ValueError, match="sparsity"):
        create_forecaster("arnet", lookback=10, horizon=1, sparsity=1.5)


def test_coefficients_refuse_hidden_layers():
    X, Y = lag_windows(ar_series(500), 5)
    model = create_forecaster("arnet", lookback=5, horizon=1, hidden=[8], epochs=1, **FAST)
    model.fit(X, Y)
    with pytest.raises(ValueError, match="hidden"):
        model.coefficients()
    assert model.embed(X[:3]).shape == (3, 8)
