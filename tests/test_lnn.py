"""Liquid networks: CfC/LTC/NCP variants train, and streaming carries the hidden state between calls."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.forecast import create_forecaster, load_forecaster

TINY = {"epochs": 2, "units": 12, "accelerator": "cpu", "num_threads": 1}


def windows(n: int = 96, lookback: int = 10, horizon: int = 3) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n + lookback + horizon)
    s = np.stack([np.sin(t / 3), np.cos(t / 5)], 1).astype(np.float32)
    X = np.stack([s[i : i + lookback] for i in range(n)])
    Y = np.stack([s[i + lookback : i + lookback + horizon, :1] for i in range(n)])
    return X, Y


@pytest.fixture(scope="module")
def cfc():
    X, Y = windows()
    model = create_forecaster("lnn", lookback=10, horizon=3, n_features=2, **TINY)
    model.fit(X, Y)
    return model, X


def test_stream_step_by_step_equals_predict(cfc):
    model, X = cfc
    state = None
    for t in range(X.shape[1]):
        yhat, state = model.stream(X[:4, t], state)
    np.testing.assert_allclose(yhat, model.predict(X[:4]), rtol=1e-5, atol=1e-5)
    # Chunked calls give the same answer as one call.
    _y1, s1 = model.stream(X[:4, :6])
    y2, _ = model.stream(X[:4, 6:], s1)
    np.testing.assert_allclose(y2, model.predict(X[:4]), rtol=1e-5, atol=1e-5)


def test_stream_state_matters(cfc):
    model, X = cfc
    _, warm = model.stream(X[:2])
    fresh, _ = model.stream(X[:2, -1])
    carried, _ = model.stream(X[:2, -1], warm)
    assert not np.allclose(fresh, carried)


def test_stream_rejects_bad_steps(cfc):
    model, _ = cfc
    with pytest.raises(ValueError, match="n_features=2"):
        model.stream(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        model.stream(np.full((1, 2), np.nan, dtype=np.float32))


@pytest.mark.parametrize(
    "variant",
    [{"cell": "ltc"}, {"wiring": "ncp", "motor": 4}, {"cell": "ltc", "wiring": "ncp", "motor": 4}],
    ids=["ltc", "cfc-ncp", "ltc-ncp"],
)
def test_variants_fit_save_load(variant, tmp_path):
    X, Y = windows(n=32)
    model = create_forecaster("lnn", lookback=10, horizon=3, n_features=2, **{**TINY, "epochs": 1, **variant})
    model.fit(X, Y)
    model.save(tmp_path / "m")
    again = load_forecaster(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    assert model.embed(X[:2]).shape == (2, variant.get("motor", 12))


@pytest.mark.parametrize(
    "bad, message",
    [({"cell": "gru"}, "cell"), ({"wiring": "x"}, "wiring"), ({"wiring": "ncp", "motor": 11}, "motor")],
)
def test_bad_variant_rejected(bad, message):
    with pytest.raises(ValueError, match=message):
        create_forecaster("lnn", lookback=4, horizon=1, units=12, **bad)
