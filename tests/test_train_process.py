"""Retraining in a child process (streams/train_process.py): same candidates as inline; clean failures."""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest

from adaptcast.drift import Action, ComputeLedger, Decision, Reason
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.threads import set_torch_threads
from adaptcast.streams.assess import Judge
from adaptcast.streams.retrain import TrainJob, TrainOutcome, run_job
from adaptcast.streams.train_process import ProcessTrainer

LOOKBACK, HORIZON = 12, 3


def _histories(seed: int, n: int = 3, rows: int = 300) -> list[np.ndarray]:
    """``n`` AR(1) series ``[rows, 1]``."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        y = np.zeros(rows)
        for t in range(1, rows):
            y[t] = 0.8 * y[t - 1] + rng.normal()
        out.append(y[:, None].astype(np.float32))
    return out


def _job(seq: int, seed: int = 0, warm_from=None, template=None, **more) -> TrainJob:
    template = template or create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, epochs=3, seed=7)
    decision = Decision(Action.RETRAIN, Reason.PERIODIC, 300)
    return TrainJob(
        template, _histories(seed), 300, decision, step=seq, ts_ms=seq, seq=seq, warm_from=warm_from, **more
    )


def _in_child(trainer: ProcessTrainer, job: TrainJob) -> TrainOutcome:
    trainer.submit(job)
    assert trainer.wait(timeout=600)
    (outcome,) = trainer.poll()
    return outcome


@pytest.fixture(scope="module")
def trainer():
    """One child for the module: it imports torch once (seconds on a shared box)."""
    t = ProcessTrainer(ComputeLedger(), threads=1)
    yield t
    t.close()


def test_a_fit_in_the_child_serves_the_same_forecasts_as_one_fitted_inline(trainer):
    job = _job(1)
    ledger = trainer.ledger
    before = ledger.totals().get("train", {"calls": 0, "samples": 0})
    outcome = _in_child(trainer, job)
    assert outcome.error is None and outcome.job is job
    assert trainer._proc is not None and trainer._proc.pid != os.getpid()
    with set_torch_threads(1):
        inline = run_job(job, ComputeLedger())
    X = job.data.full[0][-50:]
    np.testing.assert_array_equal(outcome.model.predict(X), inline.model.predict(X))
    np.testing.assert_array_equal(outcome.gate.predict(X), inline.gate.predict(X))
    assert outcome.model is not outcome.gate  # the refit on every window came back too
    assert [r.epochs for r in outcome.reports] == [r.epochs for r in inline.reports]
    assert outcome.samples_seen == inline.samples_seen
    after = ledger.totals()["train"]  # the child's fits are booked in the worker's ledger
    assert after["calls"] - before["calls"] == 2
    assert after["samples"] - before["samples"] == job.data.samples + len(job.data.full[0])


def test_a_warm_job_continues_the_serving_model_as_inline(trainer):
    serving = _in_child(trainer, _job(2)).model
    job = _job(3, seed=1, warm_from=serving)
    outcome = _in_child(trainer, job)
    with set_torch_threads(1):
        inline = run_job(job, ComputeLedger())
    assert outcome.error is None
    X = job.data.full[0][-50:]
    np.testing.assert_array_equal(outcome.model.predict(X), inline.model.predict(X))
    assert outcome.reports[0].epochs == serving.warm_hparams()["epochs"]


@pytest.mark.parametrize("judge", ["warm", "apart", "rival, serving warm", "rival, serving apart"])
def test_the_child_assesses_a_candidate_as_inline(trainer, judge):
    """Judged against the serving model (sent once when it is also the warm start) or apart, or a
    rival beside the serving model (the warm start or sent apart), with an error memory: the contest,
    residuals, reference and seeded memory come back as inline."""
    serving = _in_child(trainer, _job(7)).model
    rival = _in_child(trainer, _job(8, seed=3)).gate
    judges = {
        "warm": Judge(serving, ended=None),
        "apart": Judge(rival, 2),
        "rival, serving warm": Judge(rival, 2, serving),
        "rival, serving apart": Judge(rival, 2, serving),
    }
    warm = None if judge == "rival, serving apart" else serving
    job = _job(9, seed=1, warm_from=warm, judge=judges[judge], memory={"seed": 3, "step_decay": 0.99})
    outcome = _in_child(trainer, job)
    with set_torch_threads(1):
        inline = run_job(job, ComputeLedger())
    got, want = outcome.assessment, inline.assessment
    assert outcome.error is None and got is not None and want is not None
    assert got.contest is not None and got.contest == pytest.approx(want.contest, rel=1e-6)
    assert got.gate_error == pytest.approx(want.gate_error, rel=1e-6)
    assert (got.rows, got.samples, got.windows, got.held) == (
        want.rows,
        want.samples,
        want.windows,
        want.held,
    )
    np.testing.assert_allclose(got.residuals, want.residuals, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.reference, want.reference, rtol=1e-6)
    assert got.memory is not None and want.memory is not None
    assert got.memory.n_updates == want.memory.n_updates == len(job.data.val[0])
    keys = serving.embed(job.data.full[0][-20:])
    np.testing.assert_allclose(
        got.memory.correction(keys), want.memory.correction(keys), rtol=1e-5, atol=1e-7
    )


def test_an_ungated_job_is_one_fit_on_every_window_in_the_child_as_inline(trainer):
    job = replace(_job(4, seed=2), recipe={"epochs": 2})
    outcome = _in_child(trainer, job)
    with set_torch_threads(1):
        inline = run_job(job, ComputeLedger())
    assert outcome.error is None and outcome.gate is None and len(outcome.reports) == 1
    assert outcome.reports[0].epochs == 2 and outcome.samples_seen == 2 * len(job.data.full[0])
    X = job.data.full[0][-50:]
    np.testing.assert_array_equal(outcome.model.predict(X), inline.model.predict(X))


def test_a_failing_fit_is_an_outcome_with_its_error_and_the_child_serves_on(trainer):
    naive = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    parent = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    first = _job(4, template=naive)
    parent.fit(first.data.X, first.data.Y)
    outcome = _in_child(trainer, _job(5, template=naive, warm_from=parent))  # naive cannot continue a fit
    assert outcome.model is None and "NotImplementedError" in outcome.error
    assert "cannot continue" in outcome.error
    assert _in_child(trainer, _job(6)).error is None


def test_a_child_that_dies_fails_its_job_and_the_next_job_starts_a_new_one():
    trainer = ProcessTrainer(ComputeLedger(), threads=1)
    try:
        trainer.submit(_job(1))
        while trainer._proc is None:  # started by the trainer thread
            trainer.wait(timeout=0.01)
        first = trainer._proc
        first.kill()
        assert trainer.wait(timeout=60)
        (outcome,) = trainer.poll()
        assert outcome.model is None and "training process exited" in outcome.error
        again = _in_child(trainer, _job(2))
        assert again.error is None and trainer._proc is not first
    finally:
        trainer.close()
    assert trainer._proc.poll() is not None  # close() stopped the child
