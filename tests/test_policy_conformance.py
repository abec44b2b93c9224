"""Checks generated over every policy spelling the CLI offers: one pytest case per (spec, check).

Every detector in the registry gets its ``drift:<name>`` case automatically.  Only
``decision.retrain`` and ``decision.window`` are read.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from generated_checks import check_cases, learned_state, state_equal

from adaptcast.drift import RetrainPolicy, StepInfo, load_state, save_state
from adaptcast.drift.detectors import DETECTORS

SPECS = ["never", "periodic:50", "drift", *(f"drift:{name}" for name in DETECTORS)]
HISTORY = 500  # rows known before step 0; a retrain trains on the last HISTORY rows
STEPS = 2000
CHANGE = 1000  # step at which errors grow by 3 and the second feature moves by 2 sd


def _streams(seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Per row: a non-negative forecast error and three input features, both changing at ``CHANGE``.

    The seed puts no false alarm in the 100 steps before the change: KSWIN (about one per 1000
    steps at defaults) restarted there holds only post-change values and cannot see the change.
    """
    rng = np.random.default_rng(seed)
    after = np.arange(HISTORY + STEPS) >= HISTORY + CHANGE
    errors = np.abs(rng.normal(0.0, 1.0, after.size)) + 3.0 * after
    features = rng.normal(size=(after.size, 3))
    features[after, 1] += 2.0
    return errors, features


ERRORS, FEATURES = _streams()


def _parse(spec: str) -> RetrainPolicy:
    """The policy the CLI builds from ``spec``; a detector ``seed`` is pinned so runs repeat."""
    params = {}
    name = spec.removeprefix("drift:")
    if name in DETECTORS and "seed" in inspect.signature(DETECTORS[name]).parameters:
        params["seed"] = 0
    return RetrainPolicy.parse(spec, detector_params=params)


def _run(policy: RetrainPolicy, steps: range, has_model: bool) -> list[tuple[int, int | None]]:
    """The loop in miniature: errors and features each step; retrain at once when told."""
    out = []
    for step in steps:
        t = HISTORY + step
        info = StepInfo(
            step=step,
            rows_available=t,
            has_model=has_model,
            errors=ERRORS[t : t + 1],
            features=FEATURES[t : t + 1],
        )
        decision = policy.should_retrain(info)
        if decision.retrain:
            out.append((step, decision.window))
            has_model = True
            policy.notify_retrained(
                step,
                val_error=float(ERRORS[t - 100 : t].mean()),
                reference_features=FEATURES[t - HISTORY : t],
            )
    return out


def check_state_round_trip(spec: str, tmp_path: Path) -> None:
    """Saved to a file before and just after the change: ``from_state`` and ``load_state_dict`` resume."""
    for cut in (700, CHANGE + 20):
        policy = _parse(spec)
        _run(policy, range(cut), has_model=False)
        saved = load_state(save_state(tmp_path / f"{cut}.npz", {"policy": policy.state_dict()}))["policy"]
        rebuilt = RetrainPolicy.from_state(saved)
        twin = _parse(spec)
        twin.load_state_dict(saved)
        rest = range(cut, STEPS)
        expected = _run(policy, rest, has_model=True)
        assert _run(rebuilt, rest, has_model=True) == expected
        assert _run(twin, rest, has_model=True) == expected


def check_trigger_fires_on_its_stream(spec: str, tmp_path: Path) -> None:
    """Initial model at step 0, then: never again / every N steps / within 300 steps of the change."""
    policy = _parse(spec)
    decisions = _run(policy, range(STEPS), has_model=False)
    steps = [s for s, _ in decisions]
    assert all(window == HISTORY + s for s, window in decisions)  # window "full"
    assert steps[0] == 0
    if policy.trigger == "never":
        assert steps == [0]
    elif policy.trigger == "periodic":
        assert steps == list(range(0, STEPS, 50))
    else:
        after = [s for s in steps if s >= CHANGE]
        assert after and after[0] - CHANGE < 300, steps


def check_notify_rebases_the_detector(spec: str, tmp_path: Path) -> None:
    """``notify_retrained`` records the step and hands the new model's reference to ``detector.rebase``."""
    policy = _parse(spec)
    _run(policy, range(CHANGE + 50), has_model=False)
    new_model = {"val_error": 0.5, "reference_features": FEATURES[CHANGE : CHANGE + HISTORY]}
    policy.notify_retrained(CHANGE + 50, **new_model)
    assert policy.last_retrain_step == CHANGE + 50
    if policy.detector is None:
        return
    fresh = type(policy.detector)(**policy.detector.params())
    fresh.rebase(**new_model)
    assert state_equal(learned_state(policy.detector), learned_state(fresh))


POLICY_CHECKS = [check_state_round_trip, check_trigger_fires_on_its_stream, check_notify_rebases_the_detector]


@pytest.mark.parametrize("spec,check", check_cases(SPECS, POLICY_CHECKS))
def test_policy_check(spec: str, check: Callable[[str, Path], None], tmp_path: Path) -> None:
    check(spec, tmp_path)
