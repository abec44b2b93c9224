"""The adaptation unit: swap, validation reject, training failure, stale candidates, memory reset, state."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.drift import Action, ComputeLedger, Decision, Reason, RetrainPolicy, load_state, save_state
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.base import BaseForecaster
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.adaptation import Adaptation
from adaptcast.streams.assess import assess, validation_error
from adaptcast.streams.events import Retrained, RetrainFailed, RetrainRejected, RetrainSuperseded
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.records import Record
from adaptcast.streams.retrain import InlineTrainer, TrainJob, TrainOutcome, run_job

HOUR = 3_600_000
LOOKBACK, HORIZON = 8, 3
PERIODIC = Decision(Action.RETRAIN, Reason.PERIODIC, 200)

# the flat records the backtest tables are built from: these keys must not change
TRAIN_EVENT_KEYS = {"event", "ts_ms", "step", "reason", "window", "train_samples", "samples_seen", "cleaned"}
EVENT_KEYS = {
    "retrain": {"model_version", "train_seconds", "epochs", "val_error"},
    "retrain_rejected": {"candidate_error", "serving_error", "train_seconds"},
    "retrain_failed": {"error"},
}


class FakeTrainer(InlineTrainer):
    """An ``InlineTrainer`` that only keeps what is submitted; the test finishes jobs in any order."""

    def __init__(self) -> None:
        super().__init__(ComputeLedger())
        self.jobs: list[TrainJob] = []

    def submit(self, job: TrainJob) -> None:
        self.jobs.append(job)

    def finish(self, job: TrainJob, model: BaseForecaster | None = None) -> None:
        """Train ``job`` for real, or hand back ``model`` as its candidate."""
        outcome = run_job(job, self.ledger)
        if model is not None:  # assessed where it "ran", as run_job assesses its own candidate
            gate = model if job.gated else None
            found = assess(job.data, model, gate, step=job.step, judge=job.judge, memory=job.memory)
            outcome = TrainOutcome(job, model, outcome.report, assessment=found)
        self._done.append(outcome)


def _histories(n_series: int = 2, rows: int = 300, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    return [
        (np.sin(t / 4 + k) + 0.1 * rng.normal(size=rows))[:, None].astype(np.float32) for k in range(n_series)
    ]


def _adaptation(
    trainer=None,
    kind: str = "naive",
    memory: dict | None = None,
    policy: str = "periodic:10",
    validate_routine: bool = True,
) -> Adaptation:
    """An adaptation whose periodic refits are gated like any other (``validate_routine``), unless told."""
    params = {"epochs": 2} if kind == "arnet" else {}
    template = create_forecaster(kind, lookback=LOOKBACK, horizon=HORIZON, **params)
    return Adaptation(
        template,
        policy=RetrainPolicy.parse(policy),
        trainer=trainer or InlineTrainer(ComputeLedger()),
        metrics=Metrics(),
        memory=memory,
        validate_routine=validate_routine,
    )


def _serving(ad: Adaptation) -> BaseForecaster:
    """Train and install the first model, as the loop does on its initial decision."""
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 200), _histories(), step=1, ts_ms=HOUR)
    (event,) = ad.collect(step=1)
    assert isinstance(event, Retrained)
    assert ad.model is not None
    return ad.model


def _serving_with_fake_trainer(
    policy: str = "periodic:10", validate_routine: bool = True
) -> tuple[Adaptation, FakeTrainer, BaseForecaster]:
    """An adaptation whose jobs the test finishes, and its first model (already installed)."""
    trainer = FakeTrainer()
    ad = _adaptation(trainer, policy=policy, validate_routine=validate_routine)
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 200), _histories(), step=1, ts_ms=HOUR)
    trainer.finish(trainer.jobs[-1])
    (event,) = ad.collect(step=1)
    assert isinstance(event, Retrained) and ad.model is not None
    return ad, trainer, ad.model


def _trained_clone(model: BaseForecaster, job: TrainJob) -> BaseForecaster:
    """A candidate of the serving model's kind, fitted on ``job``'s training set."""
    other = model.clone()
    other.fit(job.data.X, job.data.Y)
    return other


def _assert_record(event, kind: str) -> dict:
    """``event.to_dict()`` is a flat record of ``kind`` with exactly the keys the tables expect."""
    d = event.to_dict()
    assert d["event"] == kind and set(d) == TRAIN_EVENT_KEYS | EVENT_KEYS[kind]
    return d


def _metric(ad: Adaptation, line: str) -> bool:
    return line in ad.metrics.render().decode()


def test_candidate_is_validated_and_swapped_in():
    ad = _adaptation(kind="arnet")
    first = _serving(ad)
    assert first.version == "1" and first.parent_version is None and ad.model_version == "1"
    job = ad.start(PERIODIC, _histories(seed=1), step=20, ts_ms=20 * HOUR)
    assert job is not None and job.decision is PERIODIC and job.data.rows == 200
    (event,) = ad.collect(step=21)
    assert isinstance(event, Retrained) and event.step == 21 and event.ts_ms == 20 * HOUR
    assert ad.model is not first and ad.model_version == "2" and ad.model.parent_version == "1"
    assert ad.policy.last_retrain_step == 21
    d = _assert_record(event, "retrain")
    assert d["reason"] == "periodic" and d["model_version"] == "2"
    assert ad.events == [ad.events[0], event]
    assert _metric(ad, "adaptcast_model_version 2.0") and _metric(
        ad, 'adaptcast_retrains_total{reason="periodic"} 1.0'
    )
    assert ad.metrics.ready


def test_worse_candidate_is_rejected_and_serving_model_kept():
    ad, trainer, first = _serving_with_fake_trainer()
    job = ad.start(PERIODIC, _histories(), step=30, ts_ms=30 * HOUR)
    assert job is not None
    worse = _trained_clone(first, job)
    honest = worse.predict
    worse.predict = lambda X: honest(X) + 5.0  # type: ignore[method-assign]  # a candidate 5 units off
    trainer.finish(job, worse)
    (event,) = ad.collect(step=31)
    assert isinstance(event, RetrainRejected)
    assert event.candidate_error > event.serving_error
    assert ad.model is first and ad.model_version == "1"
    assert ad.policy.last_retrain_step == 31  # the detector restarts either way
    _assert_record(event, "retrain_rejected")
    assert _metric(ad, 'adaptcast_retrain_failures_total{stage="validation"} 1.0')


def test_a_candidate_is_compared_with_the_serving_models_gated_fit_on_windows_it_has_not_seen():
    """The serving model was refitted on every window, so the rival is its gated fit (trained
    without its validation slice), on the windows whose targets arrived after that fit's data."""
    ad, trainer, first = _serving_with_fake_trainer()
    initial = trainer.jobs[0]
    rival = ad._rival
    assert rival is not None and rival is not first
    data_end = 1 - (int(initial.data.val_age.max()) + HORIZON)  # its data ended before its slice and gap
    job = ad.start(PERIODIC, _histories(n_series=2, rows=330), step=30, ts_ms=30 * HOUR)
    assert job is not None and job.data.val is not None
    unseen = job.data.val_age < 30 - data_end
    worse = _trained_clone(first, job)
    honest = worse.predict
    worse.predict = lambda X: honest(X) + 5.0  # type: ignore[method-assign]
    trainer.finish(job, worse)
    (event,) = ad.collect(step=31)
    vx, vy = job.data.val
    assert isinstance(event, RetrainRejected)
    x, y = vx[unseen], vy[unseen]
    expected = max(  # in the candidate's units, over every lead; the bar is the worse of rival and served
        validation_error(rival, x, y, units=worse, every_lead=True),
        validation_error(first, x, y, units=worse, every_lead=True),
    )
    assert event.serving_error == pytest.approx(expected)


def _off_after_lead_one(model: BaseForecaster, by: float) -> None:
    """Make ``model`` forecast lead 1 as it did and every later lead ``by`` units off."""
    honest = model.predict

    def predict(X):
        out = honest(X).copy()
        out[:, 1:, :] += by
        return out

    model.predict = predict  # type: ignore[method-assign]


def test_a_served_refit_that_went_wrong_is_replaced_though_its_recipes_gated_fit_was_sound():
    """The served model is the refit on every window, the rival its gated fit: where the refit went
    wrong (one fitted across an outage forecast lead 1 well and later leads by the thousand), a
    candidate a little worse than the rival still replaces it."""
    ad, trainer, first = _serving_with_fake_trainer()
    _off_after_lead_one(first, 50.0)
    job = ad.start(_post_change(10), _histories(), step=500, ts_ms=500 * HOUR)
    cand = _trained_clone(first, job)
    honest = cand.predict
    cand.predict = lambda X: honest(X) + 0.3  # type: ignore[method-assign]  # 20-40 % worse than the rival
    trainer.finish(job, cand)
    (event,) = ad.collect(step=501)
    assert isinstance(event, Retrained) and ad.model is cand


def test_the_contest_scores_every_lead_not_only_the_first():
    """A candidate whose lead-1 forecasts are its honest fit's and whose later leads are far off loses."""
    ad, trainer, first = _serving_with_fake_trainer()
    job = ad.start(_post_change(10), _histories(), step=500, ts_ms=500 * HOUR)
    cand = _trained_clone(first, job)
    vx, vy = job.data.val
    lead_one = validation_error(cand, vx, vy)
    _off_after_lead_one(cand, 5.0)
    assert validation_error(cand, vx, vy) == pytest.approx(lead_one)
    trainer.finish(job, cand)
    (event,) = ad.collect(step=501)
    assert isinstance(event, RetrainRejected) and ad.model is first


def _post_change(change_step: int) -> Decision:
    return Decision(Action.RETRAIN, Reason.POST_CHANGE, 200, "performance", change_step)


@pytest.mark.parametrize(
    ("decision", "offset", "serves"),
    [
        (PERIODIC, 0.3, True),
        (_post_change(10), 0.3, False),  # the gated fit's data reaches past the change
        (_post_change(480), 0.3, True),  # it ended before the change: only a broken fit loses
        (_post_change(480), 5.0, False),
    ],
)
def test_a_refit_is_held_to_the_tight_margin_only_after_a_change_its_gated_fit_has_seen(
    decision, offset, serves
):
    """A candidate 20-40 % worse than its rival: after a periodic refit (the same recipe on more data)
    that is noise and it serves; after a detected change that the gated fit's data reaches past, it
    is rejected. Where that data ended before the change, rival and gated fit have only seen the old
    regime, so their contest says nothing of the refit that has seen the new one: it serves unless
    broken."""
    ad, trainer, first = _serving_with_fake_trainer()
    job = ad.start(decision, _histories(), step=500, ts_ms=500 * HOUR)
    cand = _trained_clone(first, job)
    honest = cand.predict
    cand.predict = lambda X: honest(X) + offset  # type: ignore[method-assign]
    vx, vy = job.data.val
    if offset < 1:
        ratio = validation_error(cand, vx, vy, every_lead=True) / validation_error(
            ad._rival, vx, vy, every_lead=True
        )
        assert 1.2 < ratio < 1.4
    trainer.finish(job, cand)
    (event,) = ad.collect(step=501)
    data_end = 500 - (int(job.data.val_age.max()) + HORIZON)
    assert 10 < data_end < 480  # the gated fit's data ended between the two changes above
    assert isinstance(event, Retrained if serves else RetrainRejected)


def test_training_failure_keeps_serving_and_is_recorded(monkeypatch):
    ad = _adaptation()
    first = _serving(ad)

    def boom(self, X, Y, val):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(type(first), "_fit", boom)
    assert ad.start(PERIODIC, _histories(), step=40, ts_ms=40 * HOUR) is not None
    (event,) = ad.collect(step=40)
    assert isinstance(event, RetrainFailed) and event.error == "RuntimeError: out of memory"
    assert ad.model is first and ad.model_version == "1"
    assert _assert_record(event, "retrain_failed")["reason"] == "periodic"
    assert _metric(ad, 'adaptcast_retrain_failures_total{stage="train"} 1.0')


def test_a_failed_fit_is_logged_with_its_error_once_per_distinct_error(monkeypatch, caplog):
    """Operators see why a retrain failed in the log, not only in a counter; a recipe that fails
    every retrain alike is not repeated at every step."""
    ad = _adaptation()
    first = _serving(ad)
    errors = iter(["out of memory", "out of memory", "disk full"])

    def boom(self, X, Y, val):
        raise RuntimeError(next(errors))

    monkeypatch.setattr(type(first), "_fit", boom)
    with caplog.at_level("WARNING", logger="adaptcast.adaptation"):
        for step in (40, 41, 42):
            ad.start(PERIODIC, _histories(), step=step, ts_ms=step * HOUR)
            ad.collect(step=step)
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == [
        "a periodic retrain at step 40 failed, the serving model stays: RuntimeError: out of memory",
        "a periodic retrain at step 42 failed, the serving model stays: RuntimeError: disk full",
    ]


def test_candidate_finishing_after_a_newer_one_is_not_installed():
    ad, trainer, _ = _serving_with_fake_trainer()
    older = ad.start(PERIODIC, _histories(seed=1), step=10, ts_ms=10 * HOUR)
    newer = ad.start(PERIODIC, _histories(seed=2), step=11, ts_ms=11 * HOUR)
    assert older is not None and newer is not None and older.seq < newer.seq
    trainer.finish(newer)
    (installed,) = ad.collect(step=12)
    assert isinstance(installed, Retrained) and installed.model_version == "2"
    serving = ad.model
    trainer.finish(older)
    (late,) = ad.collect(step=13)
    assert isinstance(late, RetrainSuperseded) and late.serving_version == "2"
    assert late.to_dict()["event"] == "retrain_superseded"
    assert ad.model is serving and ad.model_version == "2" and ad.model_number == 2
    assert _metric(ad, 'adaptcast_retrain_failures_total{stage="superseded"} 1.0')


def test_a_served_checkpoint_supersedes_running_jobs():
    ad, trainer, first = _serving_with_fake_trainer()
    running = ad.start(PERIODIC, _histories(), step=10, ts_ms=10 * HOUR)
    assert running is not None
    loaded = _trained_clone(first, running)
    loaded.version = "from-checkpoint"
    ad.serve(loaded)
    trainer.finish(running)
    (event,) = ad.collect(step=11)
    assert isinstance(event, RetrainSuperseded) and ad.model is loaded
    assert ad.model_version == "from-checkpoint"


def test_error_memory_is_rebuilt_and_seeded_on_every_swap():
    """A new model gets a new memory (new embeddings), seeded with its errors on the newest windows."""
    ad = _adaptation(memory={"warmup": 0})
    _serving(ad)
    mem = ad.memory
    assert mem is not None
    seeded = mem.n_updates
    keys = ad.model.embed(np.stack([h[-LOOKBACK:] for h in _histories()]))
    mem.update(keys, np.ones((len(keys), HORIZON, 1)))
    assert mem.n_updates == seeded + len(keys)
    job = ad.start(PERIODIC, _histories(seed=3), step=20, ts_ms=20 * HOUR)
    (event,) = ad.collect(step=20)
    assert isinstance(event, Retrained) and job.data.val is not None
    assert ad.memory is not mem and ad.memory.params() == mem.params()
    assert ad.memory.n_updates == len(job.data.val[0])  # the validation windows, none of the old records


def test_the_serving_thread_neither_builds_windows_nor_predicts_for_a_retrain():
    """Windows, validation predictions and the memory's seed are made where the job runs; the
    serving side hands over the histories and installs numbers (streams/assess.py)."""
    trainer = FakeTrainer()
    ad = _adaptation(trainer, kind="arnet", memory={"warmup": 0})
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 200), _histories(), step=1, ts_ms=HOUR)
    trainer.finish(trainer.jobs[-1])
    ad.collect(step=1)
    first, rival = ad.model, ad._rival  # the serving model and its gated fit, the candidate's judge
    change = Decision(Action.RETRAIN, Reason.DRIFT, 200, detector="performance")
    job = ad.start(change, _histories(seed=4), step=30, ts_ms=30 * HOUR)
    assert job is not None and job.judge is not None and job.judge.model is rival
    assert "data" not in vars(job)  # submitting built no windows
    outcome = run_job(job, trainer.ledger)  # the trainer's side

    def served_only(*args, **kwargs):
        raise AssertionError("predicted on the serving thread")

    for model in (first, rival, outcome.model, outcome.gate):
        model.predict = model.embed = model.predict_embed = served_only  # type: ignore[method-assign]
    trainer._done.append(outcome)
    (event,) = ad.collect(step=31)
    assert isinstance(event, Retrained) and ad.model is outcome.model
    assert ad.memory is outcome.assessment.memory and ad.memory.n_updates == len(job.data.val[0])
    assert event.val_error == outcome.assessment.gate_error


def _stream(step: int, n_series: int = 2) -> list[Record]:
    return [
        Record(f"s{k}", step * HOUR, {"y": float(np.sin(step / 5 + k) + 0.05 * np.cos(step * 1.3 + k))})
        for k in range(n_series)
    ]


def _loop(policy: str = "drift:page_hinkley") -> ForecastLoop:
    template = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    return ForecastLoop(template, ["y"], policy=RetrainPolicy.parse(policy), memory={"warmup": 0})


def _unmeasured(events: list) -> list[dict]:
    """Event records without the measured (clock-dependent) training seconds."""
    return [{k: v for k, v in e.to_dict().items() if k != "train_seconds"} for e in events]


@pytest.mark.parametrize("policy", ["drift:page_hinkley", "periodic:50"])
def test_adaptation_state_round_trip_continues_identically(tmp_path, policy):
    a = _loop(policy)
    for step in range(120):
        a.process(_stream(step))
    assert a.memory is not None and a.memory.n_updates > 0
    state = load_state(save_state(tmp_path / "loop.npz", {"loop": a.state_dict()}))["loop"]
    assert {"policy", "memory", "model_version", "model_number", "step", "newest_ts_ms"} <= set(state)

    b = _loop(policy)
    b.serve(a.model)
    b.load_state_dict(state)
    b.import_series(a.export_series(a.states))
    for st in a.states.values():  # forecasts awaiting truth are not snapshotted: b has none, so neither may a
        st.pending.clear()
    assert b.adaptation.model_number == a.adaptation.model_number and b.step == a.step
    assert b.policy.state_dict() == a.policy.state_dict()
    events = 0
    for step in range(120, 160):
        ra, rb = a.process(_stream(step)), b.process(_stream(step))
        assert [f.yhat.tolist() for f in ra.forecasts] == [f.yhat.tolist() for f in rb.forecasts]
        assert _unmeasured(ra.events) == _unmeasured(rb.events)
        events += len(ra.events)
    assert events == (1 if policy.startswith("periodic") else 0)


def test_restored_memory_is_dropped_when_another_model_serves():
    a = _loop()
    for step in range(120):
        a.process(_stream(step))
    other = a.model.clone()
    other.fit(*sliding_windows(_histories()[0], LOOKBACK, HORIZON))
    other.version = "other"
    b = _loop()
    b.serve(other)
    b.load_state_dict(a.state_dict())
    assert b.memory is not None and b.memory.n_updates == 0


def test_restored_memory_of_other_parameters_starts_fresh():
    """A snapshot from a release whose memory was built otherwise (no clip, say) resumes with a fresh
    memory for the same model instead of being refused."""
    a = _loop()
    for step in range(120):
        a.process(_stream(step))
    state = a.state_dict()
    state["memory"] = {**state["memory"], "params": {**state["memory"]["params"], "clip": 3.0}}
    b = _loop()
    b.serve(a.model)
    b.load_state_dict(state)
    assert b.memory is not None and b.memory.n_updates == 0 and b.step == a.step
    b.load_state_dict(a.state_dict())  # the same parameters: restored
    assert b.memory.n_updates == a.memory.n_updates > 0


def test_served_model_has_learnt_the_newest_windows(monkeypatch):
    """Validation holds the newest windows back from the judged fit, never from the model that serves."""
    fits: list[tuple[np.ndarray, bool]] = []
    naive = type(create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON))
    fit = naive.fit

    def spy(self, X, Y, val=None):
        fits.append((np.asarray(X[-1]).copy(), val is not None))
        return fit(self, X, Y, val)

    monkeypatch.setattr(naive, "fit", spy)
    ad = _adaptation()
    (history,) = _histories(n_series=1)
    ad.start(PERIODIC, [history], step=300, ts_ms=300 * HOUR)
    (event,) = ad.collect(step=300)
    assert isinstance(event, Retrained)
    (gated, with_val), (served, without_val) = fits
    newest = history[-(LOOKBACK + HORIZON) : -HORIZON]  # the last window whose truth is complete
    assert with_val and not without_val
    assert not np.array_equal(gated, newest) and np.array_equal(served, newest)


def test_a_rejected_candidate_keeps_the_detector_reference():
    """A rejection must not make the degraded serving error the detector's new normal."""
    ad, trainer, first = _serving_with_fake_trainer(policy="drift")
    reference = ad.policy.detector.current_reference
    job = ad.start(PERIODIC, _histories(seed=1), step=30, ts_ms=30 * HOUR)
    worse = _trained_clone(first, job)
    honest = worse.predict
    worse.predict = lambda X: honest(X) + 5.0  # type: ignore[method-assign]
    trainer.finish(job, worse)
    (event,) = ad.collect(step=31)
    assert isinstance(event, RetrainRejected) and event.serving_error != reference
    assert ad.policy.detector.current_reference == reference


def test_a_routine_refit_of_a_validated_recipe_is_one_fit_on_every_window():
    """No gated fit before a periodic refit: the validated epochs, every window, the rival kept."""
    ad = _adaptation(kind="arnet", validate_routine=False)
    first = _serving(ad)
    rival, recipe = ad._rival, ad._recipe
    assert rival is not None and recipe == {"epochs": recipe["epochs"]} and recipe["epochs"] >= 1
    job = ad.start(PERIODIC, _histories(seed=1), step=20, ts_ms=20 * HOUR)
    assert job is not None and not job.gated and job.recipe == recipe
    (event,) = ad.collect(step=21)
    assert isinstance(event, Retrained) and ad.model is not first and event.val_error is None
    assert event.samples_seen == recipe["epochs"] * len(job.data.full[0])  # one fit, newest windows included
    assert ad._rival is rival and ad._recipe == recipe  # the next gated candidate meets the validated fit
    d = _assert_record(event, "retrain")
    assert d["val_error"] is None


def test_a_change_still_gates_the_candidate_and_an_unvalidated_model_is_never_refitted_ungated():
    ad = _adaptation(kind="arnet", validate_routine=False)
    drift = Decision(Action.RETRAIN, Reason.DRIFT, 200, detector="performance")
    assert ad.start(PERIODIC, _histories(), step=1, ts_ms=HOUR).gated  # nothing validated serves yet
    ad.collect(step=1)
    assert not ad.start(PERIODIC, _histories(seed=1), step=20, ts_ms=20 * HOUR).gated
    ad.collect(step=21)
    job = ad.start(drift, _histories(seed=2), step=40, ts_ms=40 * HOUR)
    assert job is not None and job.gated and job.recipe is None
    ad.collect(step=41)
    ad.serve(ad.model)  # served as given (a checkpoint): its recipe is not known
    assert ad.start(PERIODIC, _histories(seed=3), step=60, ts_ms=60 * HOUR).gated


@pytest.mark.parametrize("damage", [lambda y: y + 100.0, lambda y: np.full_like(y, np.nan)])
def test_a_broken_routine_refit_is_rejected_and_the_serving_model_stays(damage):
    ad, trainer, first = _serving_with_fake_trainer(validate_routine=False)
    job = ad.start(PERIODIC, _histories(seed=1), step=20, ts_ms=20 * HOUR)
    assert job is not None and not job.gated
    broken = _trained_clone(first, job)
    honest = broken.predict
    broken.predict = lambda X: damage(honest(X))  # type: ignore[method-assign]
    trainer.finish(job, broken)
    (event,) = ad.collect(step=21)
    assert isinstance(event, RetrainRejected) and ad.model is first
    vx, vy = job.data.val
    assert event.serving_error == pytest.approx(
        validation_error(first, vx, vy, units=broken, every_lead=True)
    )


def test_the_recipe_survives_a_restart_only_with_its_model():
    ad = _adaptation(kind="arnet", validate_routine=False)
    _serving(ad)
    state = ad.state_dict()
    same = _adaptation(kind="arnet", validate_routine=False)
    same.serve(ad.model)
    same.load_state_dict(state)
    assert same._recipe == ad._recipe and not same.start(PERIODIC, _histories(), step=5, ts_ms=5 * HOUR).gated
    other = _adaptation(kind="arnet", validate_routine=False)
    stranger = ad.model.clone()
    stranger.fit(*sliding_windows(_histories()[0], LOOKBACK, HORIZON))
    stranger.version = "other"
    other.serve(stranger)
    other.load_state_dict(state)
    assert other._recipe is None


def test_a_recipe_is_validated_again_once_the_windows_have_doubled():
    """Rounds or epochs chosen on a short history are not trusted for a history twice as long."""
    ad = _adaptation(kind="arnet", validate_routine=False)
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 10_000), _histories(rows=100), step=1, ts_ms=HOUR)
    ad.collect(step=1)
    validated_on = ad._recipe_windows
    assert validated_on == 2 * (100 - LOOKBACK - HORIZON + 1)  # every window of both series
    same = ad.start(
        Decision(Action.RETRAIN, Reason.PERIODIC, 10_000), _histories(rows=150), step=2, ts_ms=HOUR
    )
    assert same is not None and not same.gated
    ad.collect(step=2)
    longer = ad.start(
        Decision(Action.RETRAIN, Reason.PERIODIC, 10_000), _histories(rows=300), step=3, ts_ms=HOUR
    )
    assert longer is not None and longer.gated  # 2 x 290 windows > 2 x 2 x 90
    ad.collect(step=3)
    assert ad._recipe_windows == len(longer.data.full[0])
