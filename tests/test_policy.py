"""Retrain policies: spec parsing, decisions with reasons, determinism, notify/cooldown, state."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.drift import (
    ADWIN,
    Action,
    Decision,
    PerformanceDrift,
    Reason,
    RetrainPolicy,
    StepInfo,
    VarianceHorizon,
    WindowRule,
    load_state,
    save_state,
)
from adaptcast.drift.bridge import BridgeWatch
from adaptcast.drift.policy import REGIME_REACH


def run(
    policy: RetrainPolicy, errors: np.ndarray, rows0: int = 500, history: np.ndarray | None = None
) -> list[tuple[int, Decision]]:
    """Minimal loop: one error per step, retrain immediately when told."""
    out = []
    has_model = False
    for step, e in enumerate(errors.tolist()):
        info = StepInfo(
            step=step, rows_available=rows0 + step, has_model=has_model, errors=e, history=history
        )
        d = policy.should_retrain(info)
        if d.retrain:
            out.append((step, d))
            has_model = True
            policy.notify_retrained(step, val_error=1.0)
    return out


@pytest.mark.parametrize(
    "spec,expected",
    [
        ("never", "never"),
        ("periodic:24", "periodic:24"),
        ("drift", "drift:performance"),
        ("drift:adwin", "drift:adwin"),
        ("drift:ph", "drift:page_hinkley"),
        ("DRIFT:KSWIN", "drift:kswin"),
        ("drift:feature", "drift:feature"),
    ],
)
def test_parse_specs(spec: str, expected: str) -> None:
    assert RetrainPolicy.parse(spec).spec == expected


@pytest.mark.parametrize(
    "spec", ["", "sometimes", "periodic", "periodic:0", "periodic:x", "drift:ddm", "never:3"]
)
def test_invalid_policy_spec_names_spec_and_valid_forms(spec: str) -> None:
    with pytest.raises(ValueError) as ei:
        RetrainPolicy.parse(spec)
    assert repr(spec) in str(ei.value) and "periodic:EVERY" in str(ei.value)


@pytest.mark.parametrize("spec", ["fixed", "fixed:0", "fixed:-3", "vh:3", "all"])
def test_invalid_window_spec(spec: str) -> None:
    with pytest.raises(ValueError) as ei:
        RetrainPolicy.parse("never", window=spec)
    assert repr(spec) in str(ei.value) and "fixed:N" in str(ei.value)


def test_window_specs() -> None:
    info = StepInfo(step=0, rows_available=300, history=np.random.default_rng(0).normal(size=300))
    assert WindowRule.parse("full").rows(info) == 300
    assert WindowRule.parse("fixed:100").rows(info) == 100
    assert WindowRule.parse("fixed:1000").rows(info) == 300
    assert WindowRule.parse("vh", min_len=50).rows(info) == 50
    with pytest.raises(ValueError, match="history"):
        WindowRule.parse("vh").rows(StepInfo(step=0, rows_available=10))


def test_the_horizon_keeps_a_young_regime_whole_and_leaves_an_old_stable_one_to_its_rule() -> None:
    info = StepInfo(step=0, rows_available=3000, history=np.random.default_rng(1).normal(size=3000))
    rule = WindowRule.parse("vh", min_len=50)
    assert rule.rows(info) == 50  # a stationary history: the horizon's own choice
    for regime in (60, 120, 199):  # a change it could straddle: every row since it
        assert rule.rows(info, regime=regime) == regime
    # a regime older than REGIME_REACH min_lens: its rows beyond that are compute, not information
    assert REGIME_REACH * 50 == 200
    assert rule.rows(info, regime=2500) == rule.rows(info, regime=201) == 200


def test_a_history_function_is_called_only_when_a_retrain_needs_its_window() -> None:
    series = np.random.default_rng(0).normal(size=300)
    calls: list[int] = []

    def history() -> np.ndarray:
        calls.append(1)
        return series

    lazy = StepInfo(step=0, rows_available=300, history=history)
    eager = StepInfo(step=0, rows_available=300, history=series)
    assert WindowRule.parse("vh", min_len=50).rows(lazy) == WindowRule.parse("vh", min_len=50).rows(eager)
    assert len(calls) == 1
    policy = RetrainPolicy.parse("periodic:5", window="vh")
    decisions = [
        policy.should_retrain(StepInfo(step=t, rows_available=300 + t, history=history)) for t in range(4)
    ]
    assert not any(d.retrain for d in decisions) and len(calls) == 1  # waiting steps build no history
    assert policy.should_retrain(StepInfo(step=5, rows_available=305, history=history)).retrain
    assert len(calls) == 2  # the retrain's window did
    assert WindowRule.parse("fixed:7").spec == "fixed:7"


def test_initial_then_never() -> None:
    """The first model trains on every row there is: the window rule applies to retrains only."""
    decisions = run(RetrainPolicy.parse("never", window="fixed:200"), np.full(300, 50.0))
    assert decisions == [(0, Decision(Action.RETRAIN, Reason.INITIAL, 500))]


def test_no_data_means_no_retrain() -> None:
    d = RetrainPolicy.parse("periodic:5").should_retrain(StepInfo(step=0, rows_available=0, has_model=False))
    assert d == Decision.wait(Reason.NO_DATA) and not d.retrain and d.label == "no-data"


def test_periodic_every_n_steps() -> None:
    steps = [s for s, d in run(RetrainPolicy.parse("periodic:24"), np.zeros(100))]
    assert steps == [0, 24, 48, 72, 96]


def test_steps_since_retrain_override() -> None:
    pol = RetrainPolicy.parse("periodic:10")
    assert not pol.should_retrain(StepInfo(step=3, rows_available=5)).retrain  # counts from here
    d = pol.should_retrain(StepInfo(step=4, rows_available=5, steps_since_retrain=10))
    assert d.reason is Reason.PERIODIC and d.retrain
    assert pol.should_retrain(StepInfo(step=5, rows_available=5)).reason is Reason.PERIODIC_WAIT


def test_drift_policy_fires_on_error_jump_with_reason_and_vh_window() -> None:
    rng = np.random.default_rng(0)
    errs = np.abs(np.r_[rng.normal(0, 1, 600), rng.normal(0, 1, 400) + 3.0])
    hist = rng.normal(size=2000)
    pol = RetrainPolicy.parse("drift:adwin", window="vh", vh_params={"min_len": 64})
    decisions = run(pol, errs, history=hist)
    assert decisions[0][1].reason is Reason.INITIAL
    drift = [(s, d) for s, d in decisions if d.reason is Reason.DRIFT]
    assert drift and 600 <= drift[0][0] < 800
    assert all(d.window == 64 and d.detector == "adwin" and d.change_step == s for s, d in drift)
    assert drift[0][1].label == "drift:adwin"


def test_performance_policy_uses_validation_error_and_cooldown() -> None:
    pol = RetrainPolicy.parse(
        "drift", detector_params={"window": 10, "min_samples": 10, "tolerance": 0.5}, cooldown=20
    )
    decisions = run(pol, np.full(200, 2.0))  # val_error=1.0 is notified -> 2.0 > 1.5 fires
    steps = [s for s, _ in decisions]
    # initial at 0; then cooldown 20 steps, then 10 samples -> fires at step 30; again 30 later
    assert steps[:4] == [0, 30, 60, 90]
    assert {d.label for _, d in decisions[1:]} == {"drift:performance"}
    assert isinstance(pol.detector, PerformanceDrift) and pol.detector.current_reference == 1.0


def test_notify_resets_detector() -> None:
    pol = RetrainPolicy.on_drift(ADWIN())
    pol.should_retrain(StepInfo(step=0, rows_available=10, has_model=True, errors=[1.0] * 100))
    assert pol.detector is not None and pol.detector.n_updates == 100
    pol.notify_retrained(5)
    assert pol.detector.n_updates == 0 and pol.last_retrain_step == 5


def test_decisions_are_deterministic() -> None:
    errs = np.abs(np.random.default_rng(3).normal(size=3000)) * np.r_[np.ones(1500), 3 * np.ones(1500)]
    a = run(RetrainPolicy.parse("drift:kswin", detector_params={"seed": 1}), errs)
    b = run(RetrainPolicy.parse("drift:kswin", detector_params={"seed": 1}), errs)
    assert a == b and len(a) > 1


def test_feature_drift_policy_uses_features() -> None:
    rng = np.random.default_rng(2)
    pol = RetrainPolicy.parse("drift:feature", detector_params={"window": 200, "min_samples": 150})
    pol.should_retrain(StepInfo(step=0, rows_available=10, has_model=False))
    pol.notify_retrained(0, reference_features=rng.normal(size=(1000, 2)))
    fired = None
    for step in range(1, 600):
        x = rng.normal(size=(1, 2)) + (2.0 if step > 300 else 0.0)
        d = pol.should_retrain(StepInfo(step=step, rows_available=1000, features=x))
        if d.retrain:
            fired = (step, d.label)
            break
    assert fired is not None and fired[0] > 300 and fired[1] == "drift:feature"


@pytest.mark.parametrize(
    "decision,label",
    [
        (Decision(Action.RETRAIN, Reason.INITIAL, 10), "initial"),
        (Decision(Action.RETRAIN, Reason.PERIODIC, 10), "periodic"),
        (Decision(Action.RETRAIN, Reason.DRIFT, 10, "page_hinkley", 7), "drift:page_hinkley"),
        (Decision.wait(Reason.COOLDOWN), "cooldown"),
        (Decision.wait(Reason.NO_DRIFT), "no-drift"),
    ],
)
def test_decision_labels_keep_the_metric_spellings(decision: Decision, label: str) -> None:
    assert decision.label == label
    assert decision.retrain == (decision.action is Action.RETRAIN)


def test_drift_decision_names_its_detector() -> None:
    with pytest.raises(ValueError, match="detector"):
        Decision(Action.RETRAIN, Reason.DRIFT, 10)


def test_nan_error_is_rejected() -> None:
    pol = RetrainPolicy.parse("drift:adwin")
    with pytest.raises(ValueError, match="NaN or inf"):
        pol.should_retrain(StepInfo(step=1, rows_available=10, errors=[0.1, float("nan")]))


def test_state_round_trip_continues_identically(tmp_path) -> None:
    rng = np.random.default_rng(5)
    errs = np.abs(np.r_[rng.normal(0, 1, 500), rng.normal(2, 1, 500)])
    ref = RetrainPolicy.parse("drift:ph", window="fixed:50", detector_params={"threshold": 20})
    full = run(ref, errs)
    first = RetrainPolicy.parse("drift:ph", window="fixed:50", detector_params={"threshold": 20})
    head = run(first, errs[:400])
    path = save_state(tmp_path / "p.npz", {"policy": first.state_dict()})
    back = RetrainPolicy.from_state(load_state(path)["policy"])
    assert back.spec == "drift:page_hinkley" and back.window.spec == "fixed:50"
    tail = []
    for step in range(400, 1000):
        d = back.should_retrain(StepInfo(step=step, rows_available=500 + step, errors=errs[step]))
        if d.retrain:
            tail.append((step, d))
            back.notify_retrained(step, val_error=1.0)
    assert head + tail == full
    with pytest.raises(ValueError):
        RetrainPolicy.parse("never").load_state_dict(first.state_dict())


def test_vh_params_survive_state() -> None:
    pol = RetrainPolicy.parse(
        "periodic:3", window=WindowRule("vh", vh=VarianceHorizon(min_len=20, max_len=100))
    )
    back = RetrainPolicy.from_state(pol.state_dict())
    assert back.window.vh is not None and back.window.vh.params() == {
        "min_len": 20,
        "max_len": 100,
        "tolerance": 0.1,
        "noise_z": 2.5,
    }


def _drift_policy(**kw) -> RetrainPolicy:
    pol = RetrainPolicy.parse("drift", window="full", **kw)
    pol.should_retrain(StepInfo(step=0, rows_available=100, has_model=False))
    pol.notify_retrained(0, val_error=0.1, rows=100)
    return pol


def _feed(
    pol: RetrainPolicy, steps: range, error: float, rows0: int = 100, served: float | None = None
) -> list[tuple[int, Decision]]:
    """Four series' errors per step (``served``: the served forecasts' error, when it differs)."""
    out = []
    for step in steps:
        both = {"errors": [error] * 4, "served_errors": None if served is None else np.full(4, served)}
        d = pol.should_retrain(StepInfo(step=step, rows_available=rows0 + step, **both))
        if d.reason not in (Reason.NO_DRIFT, Reason.COOLDOWN):
            out.append((step, d))
            if d.retrain:
                pol.notify_retrained(step, val_error=0.1, rows=rows0 + step)
    return out


def test_a_drift_refit_waits_for_post_change_data_then_refits_as_it_doubles() -> None:
    pol = _drift_policy(defer=20)
    assert _feed(pol, range(1, 50), 0.1) == []
    (alarm_step, alarm), *early = _feed(pol, range(50, 70), 2.0)  # the serving model is off until refitted
    refits = early + _feed(pol, range(70, 200), 0.1)
    assert alarm.reason is Reason.DRIFT and not alarm.retrain and alarm.change_step == alarm_step
    steps = [s for s, d in refits if d.reason is Reason.POST_CHANGE]
    assert steps[:3] == [alarm_step + 20, alarm_step + 40, alarm_step + 80]
    for s, d in refits[:3]:
        assert (
            d.change_step == alarm_step and d.window >= s - alarm_step
        )  # the change reaches the window rule


def test_growth_waits_while_a_post_change_refit_is_deferred() -> None:
    """A growth refit between an alarm and its deferred refit would fit windows that straddle the
    change (a linear AR fit on a disk emptied mid-window forecast 50x its error for a lookback);
    the post-change refit comes as scheduled, and growth counts again after it."""
    pol = _drift_policy(defer=20, growth=1.1)
    assert _feed(pol, range(1, 9), 0.1) == []  # 108 rows against 100: not yet grown
    (alarm_step, alarm), *rest = _feed(pol, range(9, 60), 2.0)
    assert alarm.reason is Reason.DRIFT and not alarm.retrain
    assert [(s - alarm_step, d.reason) for s, d in rest[:1]] == [(20, Reason.POST_CHANGE)]
    later = _feed(pol, range(60, 200), 0.1)
    assert any(d.reason is Reason.GROWTH for _, d in later)


def test_a_change_the_served_forecasts_do_not_bridge_is_refitted_early_then_as_its_data_doubles() -> None:
    """The served error stays at 20x its level for a span after the alarm: one refit then, and the
    later ones at twice, four times … its post-change length rather than at ``defer``."""
    pol = _drift_policy(defer=20, bridge=(5, 3.0))
    assert _feed(pol, range(1, 50), 0.1) == []
    (alarm_step, alarm), (early_step, early) = _feed(pol, range(50, 56), 2.0)
    assert alarm.reason is Reason.DRIFT and not alarm.retrain
    assert early_step == alarm_step + 5 and early.reason is Reason.UNBRIDGED and early.retrain
    assert early.change_step == alarm_step and early.window >= 5
    later = _feed(pol, range(56, 200), 0.1)
    assert [(s - alarm_step, d.reason) for s, d in later[:3]] == [
        (n, Reason.POST_CHANGE) for n in (10, 20, 40)
    ]


def test_the_early_refit_is_asked_for_once_per_change_even_before_it_is_reported() -> None:
    """A busy trainer may not start it at once; the policy does not ask again at every step."""
    pol = _drift_policy(defer=20, bridge=(5, 3.0))
    _feed(pol, range(1, 50), 0.1)
    asked = {
        s: pol.should_retrain(StepInfo(step=s, rows_available=100 + s, errors=[2.0] * 4))
        for s in range(50, 90)
    }
    alarm = min(s for s, d in asked.items() if d.reason is Reason.DRIFT)
    retrains = [(s - alarm, d.reason) for s, d in asked.items() if d.retrain]  # none reported done
    assert retrains[0] == (5, Reason.UNBRIDGED) and Reason.UNBRIDGED not in {r for _, r in retrains[1:]}


def test_a_change_the_served_forecasts_bridge_waits_for_its_deferred_refit() -> None:
    """The bare model's error stays high, the served one (the error memory's) does not: no early refit,
    the same refits as without the watch (on the bare errors alone it refits early: the test above)."""
    watched, plain = _drift_policy(defer=20, bridge=(5, 3.0)), _drift_policy(defer=20)
    for pol in (watched, plain):
        _feed(pol, range(1, 50), 0.1)
    runs = [
        _feed(p, range(50, 70), 2.0, served=0.1) + _feed(p, range(70, 200), 0.1) for p in (watched, plain)
    ]
    assert runs[0] == runs[1] and Reason.UNBRIDGED not in {d.reason for _, d in runs[0]}
    assert [s - runs[0][0][0] for s, d in runs[0] if d.retrain][:3] == [20, 40, 80]


def test_the_watch_says_when_the_error_stayed_high_and_learns_its_reference_only_between_changes() -> None:
    w = BridgeWatch(span=3, ratio=2.0, memory=1)  # memory 1: the reference is the last error seen
    for e in (1.0, 1.0, 4.0):
        w.observe(np.array([e, e]))
    assert w.reference == 4.0
    w.start(10)
    for step in (11, 12):
        w.observe(np.array([9.0]))
        assert not w.due(step)  # fewer than a span of steps since the change
    w.observe(np.array([9.0]))
    assert w.reference == 4.0 and w.due(13)  # 9 > 2 x 4
    w.stop()
    w.observe(np.array([1.0]))
    assert w.reference == 1.0
    w.start(20)
    for _ in range(3):
        w.observe(np.array([1.5, 2.5]))  # mean 2: not above 2 x 1
    assert not w.due(23)


def test_the_watch_refits_early_when_every_leads_forecasts_are_far_worse_than_persistence() -> None:
    """Lead 1 bridged (its served error at its level before the change) while the forecasts over every
    lead are far worse than repeating the last value: the wait is not bridged. At 2x persistence
    (ratio 3) it is."""

    def run(served_over_persistence: float) -> bool:
        w = BridgeWatch(span=3, ratio=3.0)
        for _ in range(10):
            w.observe(np.array([1.0]), (12.0, 10.0))
        w.start(10)
        due = []
        for step in (11, 12, 13):
            w.observe(np.array([1.0]), (10.0 * served_over_persistence, 10.0))
            due.append(w.due(step))
        return due == [False, False, True]

    assert run(3.5) and not run(2.0)
    w = BridgeWatch(span=2, ratio=3.0)
    w.start(0)
    for step in (1, 2):
        w.observe(np.empty(0), (5.0, 0.0))  # nothing to compare with: persistence was exact
        assert not w.due(step)


def test_the_watch_counts_only_what_it_saw_since_the_change_against_persistence() -> None:
    w = BridgeWatch(span=2, ratio=3.0)
    w.observe(np.array([1.0]), (100.0, 1.0))  # before any change: not kept
    w.start(5)
    w.observe(np.array([1.0]), (100.0, 1.0))
    assert not w.due(7)  # a span of steps, but one observation since the change
    state = w.state_dict()
    back = BridgeWatch(span=2, ratio=3.0)
    back.load_state_dict(state)
    assert back.state_dict() == state
    old = {k: v for k, v in state.items() if k != "against"}  # written before the watch kept them
    back.load_state_dict(old)
    assert list(back.against) == []


def test_the_watch_survives_a_state_round_trip_mid_change() -> None:
    pol = _drift_policy(defer=20, bridge=(5, 3.0))
    _feed(pol, range(1, 50), 0.1)
    _feed(pol, range(50, 53), 2.0)
    back = RetrainPolicy.from_state(pol.state_dict())
    assert _feed(back, range(53, 120), 2.0) == _feed(pol, range(53, 120), 2.0)
    assert back.bridge.state_dict() == pol.bridge.state_dict()


def test_defer_zero_refits_at_the_alarm() -> None:
    pol = _drift_policy(defer=0)
    _feed(pol, range(1, 50), 0.1)
    (step, d), *_ = _feed(pol, range(50, 120), 2.0)
    assert d.retrain and d.reason is Reason.DRIFT and d.change_step == step


def test_a_rejection_retries_when_the_post_change_data_has_doubled() -> None:
    pol = _drift_policy(defer=10)
    _feed(pol, range(1, 50), 0.1)
    step = 50
    while not pol.schedule.due(step) and step < 500:
        pol.should_retrain(StepInfo(step=step, rows_available=200, errors=[2.0] * 4))
        step += 1
    assert pol.schedule.due(step)
    change = pol.schedule.change_step
    pol.notify_rejected(step)
    assert pol.detector.current_reference == 0.1
    assert pol.schedule.next_step == change + 2 * (step - change)


def test_growth_retrains_when_the_history_has_doubled() -> None:
    pol = _drift_policy(growth=2.0)
    quiet = [
        pol.should_retrain(StepInfo(step=s, rows_available=100 + s, errors=[0.1])) for s in range(1, 100)
    ]
    assert not any(d.retrain for d in quiet)
    d = pol.should_retrain(StepInfo(step=100, rows_available=200, errors=[0.1]))
    assert d.retrain and d.reason is Reason.GROWTH and d.label == "growth"


def test_a_rejected_growth_refit_waits_for_a_growth_step_of_new_rows() -> None:
    pol = _drift_policy(growth=2.0)  # the serving model was fitted from 100 rows
    d = pol.should_retrain(StepInfo(step=100, rows_available=200, errors=[0.1]))
    assert d.reason is Reason.GROWTH
    pol.notify_rejected(100, rows=200)
    later = [
        pol.should_retrain(StepInfo(step=s, rows_available=100 + s, errors=[0.1])) for s in range(101, 200)
    ]
    assert not any(d.retrain for d in later)  # not once per step while the history is still 2x the base
    d = pol.should_retrain(StepInfo(step=200, rows_available=300, errors=[0.1]))
    assert d.retrain and d.reason is Reason.GROWTH  # (growth - 1) x 100 rows after the rejected attempt


def test_rejected_refits_do_not_postpone_growth_past_the_serving_model() -> None:
    # a chain of rejected candidates used to move the growth trigger's base to each one's rows, so a
    # model fitted from 100 rows could serve on while the history grew 30-fold (a gate judging on a
    # recent slice that lacks a feed's rare events rejected five refits in a row)
    pol = _drift_policy(growth=2.0)
    for step, rows in ((150, 250), (250, 350), (350, 450)):
        pol.notify_rejected(step, rows=rows)
        waits = [
            pol.should_retrain(StepInfo(step=s, rows_available=100 + s, errors=[0.1]))
            for s in range(step + 1, step + 50)
        ]
        assert not any(d.retrain for d in waits)
    fired = next(
        s
        for s in range(400, 2000)
        if pol.should_retrain(StepInfo(step=s, rows_available=100 + s, errors=[0.1])).retrain
    )
    assert fired == 450  # 100 rows after the last attempt: before, 2 x 450 rows (step 800)
    pol.notify_retrained(fired, val_error=0.1, rows=550)
    assert not pol.should_retrain(StepInfo(step=600, rows_available=700, errors=[0.1])).retrain
    assert pol.should_retrain(StepInfo(step=1000, rows_available=1100, errors=[0.1])).reason is Reason.GROWTH


def test_growth_still_fires_once_the_history_is_capped() -> None:
    # a long-running worker keeps ``history`` rows per series: the kept history stops growing, the
    # feed does not, and a model must not serve for ever because its buffer is full
    pol = _drift_policy(growth=1.5)
    pol.notify_retrained(0, val_error=0.1, rows=1000)
    capped = [pol.should_retrain(StepInfo(step=s, rows_available=1000, errors=[0.1])) for s in range(1, 500)]
    assert not any(d.retrain for d in capped)
    d = pol.should_retrain(StepInfo(step=500, rows_available=1000, errors=[0.1]))
    assert d.retrain and d.reason is Reason.GROWTH


def test_growth_waits_while_the_history_is_shorter_than_the_serving_models() -> None:
    # a series restarted after a long gap has only its newest rows: refitting on them would replace a
    # model trained on far more data; growth waits until the history is back to the model's
    pol = _drift_policy(growth=1.1)
    pol.notify_retrained(0, val_error=0.1, rows=1000)
    restarted = [
        pol.should_retrain(StepInfo(step=s, rows_available=s - 199, errors=[0.1])) for s in range(200, 1199)
    ]
    assert not any(d.retrain for d in restarted)
    d = pol.should_retrain(StepInfo(step=1199, rows_available=1000, errors=[0.1]))
    assert d.retrain and d.reason is Reason.GROWTH


def test_growth_waits_for_its_fewest_new_rows_on_a_short_history() -> None:
    pol = RetrainPolicy.parse("drift", window="full", growth=1.1, min_growth=50)
    pol.should_retrain(StepInfo(step=0, rows_available=100, has_model=False))
    pol.notify_retrained(0, val_error=0.1, rows=100)  # a tenth is 10 rows: too few to refit on
    early = [pol.should_retrain(StepInfo(step=s, rows_available=100 + s, errors=[0.1])) for s in range(1, 50)]
    assert not any(d.retrain for d in early)
    d = pol.should_retrain(StepInfo(step=50, rows_available=150, errors=[0.1]))
    assert d.retrain and d.reason is Reason.GROWTH
    assert RetrainPolicy.from_state(pol.state_dict()).min_growth == 50


def test_schedule_and_growth_survive_a_state_round_trip() -> None:
    pol = _drift_policy(defer=10, growth=3.0)
    _feed(pol, range(1, 50), 0.1)
    _feed(pol, range(50, 70), 2.0)
    back = RetrainPolicy.from_state(pol.state_dict())
    assert back.schedule.state_dict() == pol.schedule.state_dict() and back.growth == 3.0
    assert back.trained_rows == pol.trained_rows


def test_the_detector_is_fed_while_a_refit_is_due_but_not_yet_done() -> None:
    """A slow background fit leaves a post-change refit due for many steps; the detector keeps counting."""
    pol = _drift_policy(defer=10)
    _feed(pol, range(1, 50), 0.1)
    step = 50
    while not pol.schedule.due(step):
        pol.should_retrain(StepInfo(step=step, rows_available=200, errors=[2.0] * 4))
        step += 1
    before = pol.detector.state_dict()["n_updates"]
    for s in range(step, step + 5):  # the refit's job is running: the policy is not told yet
        d = pol.should_retrain(StepInfo(step=s, rows_available=200, errors=[0.1] * 4))
        assert d.reason is Reason.POST_CHANGE
    assert pol.detector.state_dict()["n_updates"] == before + 20
