"""Level-invariant inputs (``window_norm``): every model can learn changes relative to each window's level."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.forecast import create_forecaster, load_forecaster
from adaptcast.forecast.windows import sliding_windows

LOOKBACK, HORIZON = 12, 3


def _windows(seed: int, level: float, rows: int = 800) -> tuple[np.ndarray, np.ndarray]:
    """AR(1) (φ = 0.9, unit noise) around ``level``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows)
    for t in range(1, rows):
        y[t] = 0.9 * y[t - 1] + rng.normal()
    return sliding_windows((y + level)[:, None].astype(np.float32), LOOKBACK, HORIZON, 1)


def _mae(model, X, Y) -> float:
    return float(np.abs(model.predict(X) - Y).mean())


def test_xgboost_follows_a_level_it_never_saw_only_with_window_norm():
    X, Y = _windows(0, level=0.0)
    Xn, Yn = _windows(1, level=50.0)  # 50 noise sds above anything in training: trees cannot reach it
    plain = create_forecaster("xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=60)
    plain.fit(X, Y)
    last = create_forecaster(
        "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=60, window_norm="last"
    )
    last.fit(X, Y)
    at_home = _mae(last, X[-200:], Y[-200:])
    assert _mae(last, Xn, Yn) < 1.5 * at_home  # as good at level 50 as at level 0 (about 1.2 here)
    assert _mae(plain, Xn, Yn) > 20 * at_home  # stuck at the training range, ~45 too low


@pytest.mark.parametrize("kind", ["arnet", "naive", "xgboost"])
@pytest.mark.parametrize("norm", ["last", "mean"])
def test_window_norm_survives_save_and_load_and_predicts_the_same(tmp_path, kind, norm):
    params = {"epochs": 2} if kind == "arnet" else {"n_estimators": 5} if kind == "xgboost" else {}
    X, Y = _windows(0, level=5.0, rows=300)
    model = create_forecaster(kind, lookback=LOOKBACK, horizon=HORIZON, window_norm=norm, **params)
    model.fit(X, Y)
    back = load_forecaster(model.save(tmp_path / "m"))
    assert back.window_norm == norm and back.config == model.config == model.clone().config
    np.testing.assert_allclose(back.predict(X[:20]), model.predict(X[:20]), rtol=1e-5, atol=1e-4)


def test_window_norm_is_off_by_default_and_checked():
    model = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    assert model.window_norm == "none" and "window_norm" not in model.config
    with pytest.raises(ValueError, match="window_norm must be one of none, last, mean"):
        create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON, window_norm="first")


def test_naive_with_window_norm_still_repeats_the_last_value():
    """The anchor is added back exactly: a model that predicts 0 change forecasts the last value."""
    X, Y = _windows(0, level=3.0, rows=200)
    model = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON, window_norm="last")
    model.fit(X, Y)
    np.testing.assert_allclose(model.predict(X), np.repeat(X[:, -1:, :1], HORIZON, axis=1), atol=1e-4)
