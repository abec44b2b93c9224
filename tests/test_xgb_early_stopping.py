"""XGBoost's early stopping: patience that grows with the round of the best score."""

from __future__ import annotations

import numpy as np
import pytest
import xgboost as xgb

from adaptcast.drift.compute import ComputeLedger
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.models.xgb import _Patience
from adaptcast.streams.retrain import fit_candidate, training_set


def _rounds_run(scores: list[float], least: int, most: int) -> tuple[int, int]:
    """Feed ``scores`` round by round; return the rounds run before it stopped and the best round."""
    stop = _Patience(least, most)
    for i in range(len(scores)):
        if stop.after_iteration(
            None, i, {"train": {"rmse": scores[: i + 1]}, "val": {"rmse": scores[: i + 1]}}
        ):
            return i + 1, stop.best
    return len(scores), stop.best


def test_an_early_best_gets_the_least_patience():
    """Best at the second round: 5 more rounds, not 20."""
    assert _rounds_run([1.0, 0.9] + [0.95] * 60, least=5, most=20) == (7, 1)


def test_patience_grows_with_the_rounds_to_the_best():
    """Best at round 12: as many rounds again; best at round 40: capped at ``most``."""
    assert _rounds_run(list(np.linspace(1.0, 0.5, 12)) + [0.6] * 60, least=5, most=20) == (24, 11)
    assert _rounds_run(list(np.linspace(1.0, 0.5, 40)) + [0.6] * 60, least=5, most=20) == (60, 39)


def test_it_reads_the_last_evaluation_set():
    """The validation set (listed last) decides, not the training loss that keeps falling."""
    stop = _Patience(2, 20)
    falling = [1.0, 0.9, 0.8, 0.7]
    flat = [0.5, 0.6, 0.6, 0.6]
    assert not stop.after_iteration(None, 0, {"train": {"rmse": falling[:1]}, "val": {"rmse": flat[:1]}})
    assert not stop.after_iteration(None, 1, {"train": {"rmse": falling[:2]}, "val": {"rmse": flat[:2]}})
    assert stop.after_iteration(None, 2, {"train": {"rmse": falling[:3]}, "val": {"rmse": flat[:3]}})


def test_a_fixed_patience_matches_xgboosts_own_early_stopping():
    """With ``early_stopping_min_rounds == early_stopping_rounds`` the kept rounds are xgboost's."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 8, 1))
    Y = X[:, -1:, :] + rng.normal(scale=2.0, size=(400, 1, 1))
    model = create_forecaster(
        "xgboost",
        lookback=8,
        horizon=1,
        n_estimators=200,
        early_stopping_rounds=10,
        early_stopping_min_rounds=10,
    )
    report = model._fit(X[:300], Y[:300], (X[300:], Y[300:]))  # the arrays as the fit sees them, scaled
    assert report.epochs < 200  # it stopped early, so the comparison says something
    params = {**model._params(), "nthread": model.fit_threads(X[:300]) or -1}
    dtrain = xgb.DMatrix(X[:300, :, 0], label=Y[:300, :, 0])
    dval = xgb.DMatrix(X[300:, :, 0], label=Y[300:, :, 0])
    evals = [(dtrain, "train"), (dval, "val")]
    ref = xgb.train(params, dtrain, 200, evals=evals, early_stopping_rounds=10, verbose_eval=False)
    assert (report.extra["best_iteration"], report.epochs) == (
        ref.best_iteration + 1,
        ref.num_boosted_rounds(),
    )


def test_the_least_patience_must_be_positive():
    with pytest.raises(ValueError, match="early_stopping_min_rounds"):
        create_forecaster("xgboost", lookback=8, horizon=1, early_stopping_min_rounds=0)


def test_the_refit_on_every_window_boosts_the_kept_rounds_grown_with_the_windows_it_adds():
    """The validation slice's windows join the refit, and the rounds grow with them (capped)."""
    rng = np.random.default_rng(4)
    series = np.cumsum(rng.normal(size=900)) + np.sin(np.arange(900) / 5)
    template = create_forecaster("xgboost", lookback=12, horizon=2, n_estimators=300)
    data = training_set([series], rows=900, lookback=12, horizon=2, n_targets=1)
    gate, served, (report, _) = fit_candidate(template, data, ComputeLedger())
    kept, full = report.extra["best_iteration"], len(data.full[0])
    assert report.extra["rows"] == len(data.X) < full and kept < 300  # it stopped early
    assert served.booster.num_boosted_rounds() == min(300, -(-kept * full // len(data.X)))
    assert gate.refit_hparams(report, len(data.X))["n_estimators"] == kept  # no windows added: as kept
