"""Warm-started retraining: continue from the serving model's state, and the policy's warm/cold choice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from adaptcast.drift import Action, ComputeLedger, Decision, Reason, RetrainPolicy
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.models.arnet import ROBUST_PASSES
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.adaptation import Adaptation
from adaptcast.streams.events import Retrained
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.retrain import InlineTrainer, TrainJob, run_job

LOOKBACK, HORIZON = 12, 3


def _series(seed: int, rows: int = 600, level: float = 0.0) -> np.ndarray:
    """AR(1) around ``level``, ``[rows, 1]``."""
    rng = np.random.default_rng(seed)
    y = np.zeros(rows)
    for t in range(1, rows):
        y[t] = 0.8 * y[t - 1] + rng.normal()
    return (y + level)[:, None].astype(np.float32)


def _windows(seed: int, rows: int = 600, level: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Windows ``[B, LOOKBACK, 1]`` → ``[B, HORIZON, 1]`` of :func:`_series`."""
    return sliding_windows(_series(seed, rows, level), LOOKBACK, HORIZON, 1)


def _mse(model, X, Y) -> float:
    return float(((model.predict(X) - Y) ** 2).mean())


def test_arnet_warm_fit_continues_from_the_parent_weights_and_leaves_it_alone():
    X, Y = _windows(0)
    parent = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=20)
    parent.fit(X, Y)
    before = {k: v.clone() for k, v in parent.module.state_dict().items()}
    X2, Y2 = _windows(1)
    warm = parent.clone(**parent.warm_hparams())
    report = warm.fit_warm(parent, X2, Y2)
    cold = parent.clone(**parent.warm_hparams())
    cold.fit(X2, Y2)
    assert report.epochs == warm.hparams["epochs"] == 4
    assert report.samples_seen == 4 * len(X2)
    assert warm.scaler is parent.scaler  # the weights are in the parent's units
    assert _mse(warm, X2, Y2) < 0.9 * _mse(cold, X2, Y2)  # the same few epochs, from a good start
    for k, v in parent.module.state_dict().items():
        assert torch.equal(v, before[k])


def test_xgboost_warm_fit_adds_rounds_to_a_copy_of_the_parent_trees():
    X, Y = _windows(0)
    parent = create_forecaster("xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=30)
    parent.fit(X, Y)
    rounds = parent.booster.num_boosted_rounds()
    X2, Y2 = _windows(1, level=3.0)  # the new data sits higher: more rounds must move towards it
    warm = parent.clone(n_estimators=10, early_stopping_rounds=0)
    report = warm.fit_warm(parent, X2, Y2)
    assert warm.booster.num_boosted_rounds() == rounds + 10
    assert parent.booster.num_boosted_rounds() == rounds
    assert report.samples_seen == 10 * len(X2) and report.extra["best_iteration"] == 10
    assert _mse(warm, X2, Y2) < _mse(parent, X2, Y2)


def test_fit_warm_refuses_models_that_cannot_continue_and_unfitted_parents():
    X, Y = _windows(0, rows=100)
    naive = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    naive.fit(X, Y)
    with pytest.raises(NotImplementedError, match="cannot continue"):
        naive.clone().fit_warm(naive, X, Y)
    arnet = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=1)
    with pytest.raises(ValueError, match="fitted arnet parent"):
        arnet.clone().fit_warm(arnet, X, Y)


@pytest.mark.parametrize(
    ("mode", "warm_reasons"),
    [
        ("cold", set()),
        ("warm", {Reason.PERIODIC, Reason.GROWTH, Reason.DRIFT, Reason.POST_CHANGE}),
        ("auto", {Reason.PERIODIC, Reason.GROWTH}),
    ],
)
def test_the_policy_picks_warm_or_cold_by_mode_and_reason(mode, warm_reasons):
    policy = RetrainPolicy.parse("drift", refit_mode=mode)
    assert RetrainPolicy.from_state(policy.state_dict()).refit_mode == mode
    for reason in (Reason.INITIAL, Reason.PERIODIC, Reason.GROWTH, Reason.DRIFT, Reason.POST_CHANGE):
        detector = "performance" if reason in (Reason.DRIFT, Reason.POST_CHANGE) else None
        decision = Decision(Action.RETRAIN, reason, 100, detector)
        assert policy.warm_start(decision) == (reason in warm_reasons)


def test_refit_mode_is_checked():
    with pytest.raises(ValueError, match="refit_mode must be one of cold, warm, auto"):
        RetrainPolicy.parse("periodic:5", refit_mode="hot")


def test_auto_mode_continues_the_serving_model_on_a_periodic_refit_and_starts_afresh_after_a_change():
    history = [_series(0, rows=400)]
    template = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=10)
    ledger = ComputeLedger()
    ad = Adaptation(
        template,
        policy=RetrainPolicy.parse("drift", refit_mode="auto"),
        trainer=InlineTrainer(ledger),
        metrics=Metrics(),
        validate_margin=10.0,  # this test is about how a job starts, not which candidate wins
    )
    retrain = _retrainer(ad, history)
    first, _ = retrain(Reason.INITIAL)
    serving = ad.model
    job, _ = retrain(Reason.PERIODIC)
    assert first.warm_from is None and job.warm_from is serving
    job, _ = retrain(Reason.POST_CHANGE)
    assert job.warm_from is None


def _retrainer(ad: Adaptation, history: list[np.ndarray]) -> Callable[[Reason], tuple[TrainJob, Retrained]]:
    """``retrain(reason)``: one retrain of ``ad`` on ``history`` for that reason, at the next step."""
    steps = iter(range(1, 100))

    def retrain(reason: Reason) -> tuple[TrainJob, Retrained]:
        step = next(steps)
        detector = "performance" if reason is Reason.POST_CHANGE else None
        job = ad.start(Decision(Action.RETRAIN, reason, 10_000, detector), history, step=step, ts_ms=step)
        (event,) = ad.collect(step=step)
        assert isinstance(event, Retrained) and job is not None
        return job, event

    return retrain


def _booster_adaptation(n_estimators: int, policy: str, refit_mode: str, **kwargs: Any) -> Adaptation:
    """The loop's adaptation over an XGBoost template of ``n_estimators`` rounds, no early stopping."""
    template = create_forecaster(
        "xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=n_estimators, early_stopping_rounds=0
    )
    return Adaptation(
        template,
        policy=RetrainPolicy.parse(policy, refit_mode=refit_mode),
        trainer=InlineTrainer(ComputeLedger()),
        metrics=Metrics(),
        **kwargs,
    )


def _initial_job(epochs: int = 10) -> tuple[Adaptation, TrainJob]:
    """A gated retrain job of a torch AR-Net on 400 rows, after the first model is serving."""
    history = [_series(0, rows=400)]
    template = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=epochs, patience=epochs)
    ad = Adaptation(
        template,
        policy=RetrainPolicy.parse("periodic:5"),
        trainer=InlineTrainer(ComputeLedger()),
        metrics=Metrics(),
    )
    job = ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 10_000), history, step=1, ts_ms=1)
    ad.collect(step=1)
    return ad, job


def test_a_warm_job_gates_with_a_fifth_of_the_cold_work():
    ad, job = _initial_job()
    cold = run_job(job, ComputeLedger())
    job.warm_from = ad.model
    warm = run_job(job, ComputeLedger())
    assert warm.error is None and cold.error is None
    (cold_gate, cold_refit), (warm_gate, warm_refit) = cold.reports, warm.reports
    assert warm_gate.samples_seen * 5 <= cold_gate.samples_seen
    assert warm_refit.samples_seen == cold_refit.samples_seen  # both continue their gate alike


def test_a_networks_refit_continues_its_validated_fit_on_every_window():
    """The refit starts from the gate's weights (and keeps its scaler) and does a warm fit's work on
    every window, the validation slice included, instead of repeating the gate's epochs from scratch."""
    _, job = _initial_job()
    out = run_job(job, ComputeLedger())
    gate, refit = out.reports
    X = job.data.full[0]
    assert gate.epochs == 10 and refit.epochs == 2 and refit.samples_seen == 2 * len(X) > 2 * len(job.data.X)
    assert out.gate is not None and out.model is not None
    assert out.model.scaler.to_dict() == out.gate.scaler.to_dict()  # a cold refit fits its own scaler
    assert not np.allclose(out.model.predict(X), out.gate.predict(X))  # yet it learnt from every window


def test_linear_arnet_closed_form_is_least_squares_in_one_pass():
    X, Y = _windows(0)
    # a fixed, tiny ridge, every window weighed alike
    model = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, ridge=1e-3, robust=False)
    report = model.fit_closed_form(X, Y)
    assert report.samples_seen == len(X) and report.epochs == 1
    z = np.concatenate([X[:, ::-1, 0], np.ones((len(X), 1))], axis=1)  # lags, most recent first, and a bias
    w, *_ = np.linalg.lstsq(z, Y[:, :, 0], rcond=None)
    np.testing.assert_allclose(model.predict(X)[:, :, 0], z @ w, atol=0.02)  # the ridge term is tiny
    sgd = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=30)
    sgd_report = sgd.fit(X, Y)
    assert _mse(model, X, Y) <= _mse(sgd, X, Y) * 1.001 and sgd_report.samples_seen >= 10 * len(X)


def test_closed_form_is_for_linear_unregularised_arnet_only():
    X, Y = _windows(0, rows=100)
    for params in ({"hidden": [8]}, {"sparsity": 0.5}):
        model = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, **params)
        assert not model.supports_closed_form
        with pytest.raises(NotImplementedError, match="no closed-form fit"):
            model.fit_closed_form(X, Y)


def test_closed_form_refit_mode_solves_every_fit_in_one_pass_from_the_serving_model():
    history = [_series(0, rows=400)]
    template = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON)
    ad = Adaptation(
        template,
        policy=RetrainPolicy.parse("periodic:5", refit_mode="closed_form"),
        trainer=InlineTrainer(ComputeLedger()),
        metrics=Metrics(),
        validate_margin=10.0,  # this test is about how the fits are made, not which candidate wins
    )
    first = ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 10_000), history, step=1, ts_ms=1)
    (event,) = ad.collect(step=1)
    assert first.closed_form and first.warm_from is None
    # one pass per solve: the plain one and ROBUST_PASSES reweighted ones, for the gate and the refit
    assert event.samples_seen == (1 + ROBUST_PASSES) * (first.data.samples + len(first.data.full[0]))
    serving = ad.model
    job = ad.start(Decision(Action.RETRAIN, Reason.PERIODIC, 10_000), history, step=6, ts_ms=6)
    (event,) = ad.collect(step=6)
    assert job.closed_form and job.warm_from is serving
    assert isinstance(event, Retrained) and ad.model.scaler is serving.scaler


def test_closed_form_mode_fits_a_model_without_a_closed_form_cold():
    """The default refit mode: XGBoost has no closed form, so its retrains are full cold fits, not warm."""
    history = [_series(0, rows=400)]
    ad = _booster_adaptation(10, "periodic:5", "closed_form")
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 10_000), history, step=1, ts_ms=1)
    ad.collect(step=1)
    job = ad.start(Decision(Action.RETRAIN, Reason.PERIODIC, 10_000), history, step=6, ts_ms=6)
    (event,) = ad.collect(step=6)
    assert job is not None and not job.closed_form and job.warm_from is None and not job.gated
    assert event.samples_seen == 10 * len(job.data.full[0])  # all rounds, one fit on every window


def test_a_booster_continues_only_while_it_is_smaller_than_a_cold_fit_may_grow():
    X, Y = _windows(0, rows=200)
    parent = create_forecaster("xgboost", lookback=LOOKBACK, horizon=HORIZON, n_estimators=10)
    parent.fit(X, Y)
    assert parent.booster.num_boosted_rounds() <= 10
    assert parent.clone(n_estimators=30).continues(parent)
    assert not parent.clone(n_estimators=parent.booster.num_boosted_rounds()).continues(parent)
    arnet = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=1)
    arnet.fit(X, Y)
    assert arnet.clone().continues(arnet)  # only a booster's size is bounded


def test_a_booster_continued_at_every_refit_stays_within_a_cold_fits_rounds():
    """Under ``auto`` growth refits add rounds to the serving booster until it has as many as a cold
    fit may reach; the next starts cold, and is validated afresh: rounds found by a warm fit (added to
    a model) are never reused for a cold one."""
    history = [_series(0, rows=400)]
    ad = _booster_adaptation(40, "drift", "auto", validate_margin=10.0)  # how jobs start, not who wins
    first = ad.template.clone(n_estimators=10)
    first.fit(*sliding_windows(history[0], LOOKBACK, HORIZON, 1))
    ad.serve(first)
    retrain = _retrainer(ad, history)
    rounds, jobs = [10], []
    while (job := retrain(Reason.GROWTH)[0]).warm_from is not None:
        jobs.append(job)
        rounds.append(ad.model.booster.num_boosted_rounds())
    assert rounds == [10, 18, 26, 34, 42]  # a fifth of n_estimators added each time, until past 40
    assert jobs[1].recipe is not None  # a warm fit's rounds serve the next warm refit
    assert job.recipe is None and ad.model.booster.num_boosted_rounds() <= 40  # not the cold one
