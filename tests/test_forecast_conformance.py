"""One conformance suite for every registered forecaster (including kinds registered later)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adaptcast.forecast import FORECASTERS, BaseForecaster, FitReport, create_forecaster, load_forecaster
from adaptcast.forecast.integrity import seal
from adaptcast.forecast.training import TorchForecaster

LOOKBACK, HORIZON, N_FEATURES, N_TARGETS, PERIOD = 24, 6, 2, 1, 12

# Tiny per-kind hyper-parameters so the whole suite runs in seconds on 2 CPU cores.
TINY: dict[str, dict[str, Any]] = {
    "naive": {"season": PERIOD},
    "arnet": {"epochs": 30},
    "lstm": {"epochs": 15, "hidden": 16, "lr": 3e-3},
    "lnn": {"epochs": 12, "units": 16, "lr": 3e-3},
    "xgboost": {"n_estimators": 60, "max_depth": 4, "num_threads": 1},
    "informer": {
        "epochs": 8,
        "d_model": 16,
        "n_heads": 2,
        "d_ff": 32,
        "e_layers": 1,
        "d_layers": 1,
        "lr": 1e-3,
        "lr_decay": 1.0,
    },
    "mimo_vp": {
        "epochs": 8,
        "d_model": 16,
        "n_heads": 2,
        "d_ff": 32,
        "e_layers": 2,
        "d_layers": 2,
        "epoch_samples": None,
        "lr": 1e-3,
    },
}


def tiny_config(kind: str) -> dict[str, Any]:
    """Shape + tiny hparams; torch models forced onto one CPU thread for fast, stable tests."""
    cls = FORECASTERS[kind]
    hp = dict(TINY.get(kind, {}))
    if issubclass(cls, TorchForecaster):
        known = cls.all_defaults()
        hp = {k: v for k, v in hp.items() if k in known}
        hp.update(accelerator="cpu", num_threads=1)
    return dict(lookback=LOOKBACK, horizon=HORIZON, n_features=N_FEATURES, n_targets=N_TARGETS, seed=0, **hp)


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of a learnable series: a period-12 wave, slowly drifting amplitude, plus a leading feature."""
    rng = np.random.default_rng(seed)
    t = np.arange(n + LOOKBACK + HORIZON)
    amp = 1.0 + 0.5 * np.sin(2 * np.pi * t / 500)
    y = (
        10
        + amp * np.sin(2 * np.pi * t / PERIOD)
        + 0.3 * np.sin(2 * np.pi * t / 5)
        + 0.1 * rng.standard_normal(t.size)
    )
    x2 = np.cos(2 * np.pi * t / PERIOD) + 0.1 * rng.standard_normal(t.size)
    series = np.stack([y, x2], 1).astype(np.float32)
    X = np.stack([series[i : i + LOOKBACK] for i in range(n)])
    Y = np.stack([series[i + LOOKBACK : i + LOOKBACK + HORIZON, :N_TARGETS] for i in range(n)])
    return X, Y


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    X, Y = synthetic(900, seed=1)
    return {"train": (X[:600], Y[:600]), "val": (X[600:750], Y[600:750]), "test": (X[750:], Y[750:])}


@pytest.fixture(scope="module", params=sorted(FORECASTERS))
def fitted(request, data, tmp_path_factory) -> tuple[BaseForecaster, FitReport, Path]:
    """Each kind fitted once, from inside an empty working directory (to catch stray files)."""
    cwd = tmp_path_factory.mktemp(f"cwd-{request.param}")
    old = os.getcwd()
    os.chdir(cwd)
    try:
        model = create_forecaster(request.param, **tiny_config(request.param))
        report = model.fit(*data["train"], val=data["val"])
    finally:
        os.chdir(old)
    return model, report, cwd


def test_fit_report(fitted):
    model, report, _ = fitted
    assert isinstance(report, FitReport)
    assert report.wall_seconds >= 0 and report.cpu_seconds >= 0 and report.device
    if model.kind != "naive":
        assert report.epochs >= 1 and report.samples_seen >= 600
        assert np.isfinite(report.train_loss) and report.val_loss is not None and np.isfinite(report.val_loss)


def test_no_files_written_to_cwd(fitted):
    _, _, cwd = fitted
    assert list(cwd.iterdir()) == []


def test_predict_shape_and_finite(fitted, data):
    model, _, _ = fitted
    for batch in (1, 7):
        yhat = model.predict(data["test"][0][:batch])
        assert yhat.shape == (batch, HORIZON, N_TARGETS) and yhat.dtype == np.float32
        assert np.isfinite(yhat).all()


def test_embed_shape(fitted, data):
    model, _, _ = fitted
    z = model.embed(data["test"][0][:5])
    assert z.ndim == 2 and z.shape[0] == 5 and z.shape[1] >= 1 and np.isfinite(z).all()
    assert model.embed(data["test"][0][:3]).shape[1] == z.shape[1]


def test_predict_embed_is_predict_and_embed_in_one_pass(fitted, data):
    model, _, _ = fitted
    X = data["test"][0][:9]
    yhat, keys = model.predict_embed(X)
    np.testing.assert_allclose(yhat, model.predict(X), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keys, model.embed(X), rtol=1e-5, atol=1e-6)
    assert yhat.dtype == keys.dtype == np.float32 and keys.flags.c_contiguous


def test_a_glitch_inside_a_window_does_not_reach_the_forecast(fitted, data):
    """Every kind reads a window holding a sensor's 1e12 as if that value were its neighbours'
    median (forecast.outliers.repair), not as a level to forecast from."""
    from adaptcast.forecast.outliers import HALF_WIDTH

    model, _, _ = fitted
    X = data["test"][0][:4].copy()
    at = LOOKBACK // 2
    around = np.concatenate([X[:, at - HALF_WIDTH : at, 0], X[:, at + 1 : at + 1 + HALF_WIDTH, 0]], axis=1)
    X[:, at, 0] = np.median(around, axis=1)
    glitched = X.copy()
    glitched[:, at, 0] = 1e12
    np.testing.assert_allclose(model.predict(glitched), model.predict(X), rtol=1e-5, atol=1e-5)


def test_save_load_round_trip(fitted, data, tmp_path):
    model, _, _ = fitted
    model.save(tmp_path / "m")
    again = load_forecaster(tmp_path / "m")
    assert again.kind == model.kind and again.config == model.config
    X = data["test"][0]
    np.testing.assert_array_equal(again.predict(X), model.predict(X))
    np.testing.assert_array_equal(again.embed(X[:4]), model.embed(X[:4]))


def test_clone_is_untrained_copy(fitted):
    model, _, _ = fitted
    twin = model.clone()
    assert twin.config == model.config and not twin.is_fitted


@pytest.mark.parametrize(
    "shape",
    [(3, LOOKBACK - 1, N_FEATURES), (3, LOOKBACK, N_FEATURES + 1), (LOOKBACK, N_FEATURES)],
    ids=["short", "wide", "2d"],
)
def test_wrong_shape_names_expected_shape(fitted, shape):
    model, _, _ = fitted
    with pytest.raises(ValueError, match=rf"lookback={LOOKBACK}, n_features={N_FEATURES}"):
        model.predict(np.zeros(shape, dtype=np.float32))


def test_nan_input_rejected(fitted, data):
    model, _, _ = fitted
    X = data["test"][0][:2].copy()
    X[1, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(X)
    with pytest.raises(ValueError, match="NaN"):
        model.embed(X)
    with pytest.raises(ValueError, match="NaN"):
        model.predict_embed(X)


def test_beats_seasonal_naive(fitted, data):
    model, _, _ = fitted
    if model.kind == "naive":
        pytest.skip("naive is the baseline itself")
    X, Y = data["test"]
    baseline = create_forecaster("naive", **tiny_config("naive"))
    baseline.fit(*data["train"])
    mse = float(((model.predict(X) - Y) ** 2).mean())
    ref = float(((baseline.predict(X) - Y) ** 2).mean())
    assert mse < ref, f"{model.kind}: MSE {mse:.4f} does not beat seasonal-naive {ref:.4f}"


def test_unknown_kind_lists_choices():
    with pytest.raises(ValueError, match="arnet"):
        create_forecaster("no-such-model", lookback=4, horizon=1)


@pytest.mark.parametrize(
    "kind", sorted(k for k, c in FORECASTERS.items() if issubclass(c, TorchForecaster) or k == "xgboost")
)
def test_unknown_hyperparameter_rejected(kind):
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        create_forecaster(kind, lookback=4, horizon=1, no_such_knob=1)


@pytest.mark.parametrize("kind", sorted(k for k in FORECASTERS if k != "naive"))
def test_wrongly_typed_hyperparameters_rejected_by_name(kind):
    typed = {
        n: v for n, v in FORECASTERS[kind].all_defaults().items() if isinstance(v, (bool, int, float, list))
    }
    assert typed, f"{kind} has no numeric, boolean or list hyper-parameter to check"
    for name, default in typed.items():
        wrong = "abc" if not isinstance(default, bool) else 1
        with pytest.raises(ValueError, match=f"{kind}: hyper-parameter '{name}' must be"):
            create_forecaster(kind, lookback=4, horizon=1, **{name: wrong})
        create_forecaster(kind, lookback=4, horizon=1, **{name: default})  # its own default passes


@pytest.mark.parametrize("kind", sorted(k for k in FORECASTERS if k != "naive"))
def test_same_seed_same_model(kind, data):
    X, Y = data["train"][0][:200], data["train"][1][:200]
    preds = []
    for _ in range(2):
        model = create_forecaster(kind, **tiny_config(kind))
        model.fit(X, Y)
        preds.append(model.predict(data["test"][0][:8]))
    np.testing.assert_array_equal(preds[0], preds[1])


@pytest.mark.parametrize("with_val", [True, False], ids=["val", "train-only"])
def test_early_stopping_keeps_best_epoch(data, with_val):
    """The reported loss is the best epoch's, and the restored weights reproduce it."""
    model = create_forecaster("lstm", **{**tiny_config("lstm"), "epochs": 8, "patience": 2, "lr": 0.05})
    val = data["val"] if with_val else None
    report = model.fit(*data["train"], val=val)
    key = "val_loss" if with_val else "train_loss"
    losses = [h[key] for h in report.extra["history"]]
    assert getattr(report, key) == min(losses) and report.extra["best_epoch"] == 1 + int(np.argmin(losses))
    if with_val:
        scale = model.scaler.head(N_TARGETS)
        mse = float(((scale.transform(model.predict(val[0])) - scale.transform(val[1])) ** 2).mean())
        assert mse == pytest.approx(report.val_loss, rel=1e-4)


def test_fit_prints_nothing_in_ci():
    """No Lightning banners, tips or progress bars in logs (CI set); a fresh process, outside log capture."""
    script = (
        "import numpy as np; from forecast import create_forecaster; "
        "X = np.random.rand(64, 4, 1).astype('f4'); "
        "m = create_forecaster('arnet', lookback=4, horizon=1, epochs=2, accelerator='cpu'); "
        "m.fit(X, X[:, -1:], val=(X, X[:, -1:]))"
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=root,
        env={**os.environ, "CI": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


@pytest.mark.parametrize(
    ("kind", "short", "unit", "metric"),
    [("arnet", {"epochs": 2}, "epoch", "val_loss"), ("xgboost", {"n_estimators": 3}, "round", "val_rmse")],
)
def test_fit_shows_progress_at_a_terminal(kind, short, unit, metric, data, monkeypatch, capsys):
    """At a terminal a fit draws one bar over its epochs (or boosting rounds) with the validation loss."""
    monkeypatch.setattr("adaptcast.forecast.training.show_progress", lambda: True)
    model = create_forecaster(kind, **{**tiny_config(kind), **short})
    model.fit(*data["train"], val=data["val"])
    err = capsys.readouterr().err
    assert f"{kind} training" in err and unit in err and metric in err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only fallback")
def test_gpu_model_loads_on_cpu_host(data, tmp_path):
    """A checkpoint trained with accelerator="gpu" predicts on a CPU host; training there says why not."""
    model = create_forecaster("arnet", **{**tiny_config("arnet"), "epochs": 1})
    model.fit(*data["train"])
    model.save(tmp_path / "m")
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    manifest["config"]["accelerator"] = "gpu"
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(seal(manifest)))  # as a GPU host wrote it
    again = load_forecaster(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(data["test"][0]), model.predict(data["test"][0]))
    with pytest.raises(ValueError, match="CUDA is not available"):
        again.clone().fit(*data["train"])
