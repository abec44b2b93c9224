"""Drift detectors: River as oracle, false-alarm rates, performance/feature rules, and checks
generated over the registry (one case per detector and check: params, state, reset, bad input, …)."""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from generated_checks import check_cases, learned_state, state_equal

from adaptcast.drift import (
    ADWIN,
    KSWIN,
    FeatureDrift,
    PageHinkley,
    PerformanceDrift,
    load_state,
    performance,
    save_state,
)
from adaptcast.drift.base import DriftDetector
from adaptcast.drift.detectors import DETECTORS, detector_from_state, make_detector
from adaptcast.drift.kswin import ks_pvalue_equal_n, ks_statistic_count

river_drift = pytest.importorskip("river.drift")


def _streams() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "mean_shift": np.r_[rng.normal(0, 1, 2000), rng.normal(1.5, 1, 2000)],
        "variance_shift": np.r_[rng.normal(0, 1, 2000), rng.normal(0, 3, 2000)],
        "no_drift": rng.normal(0, 1, 10000),
        "abs_error_two_shifts": np.abs(
            np.r_[rng.normal(0, 1, 3000), rng.normal(2, 1, 3000), rng.normal(0, 1, 3000)]
        ),
    }


STREAMS = _streams()

# (ours, river) constructor pairs with identical parameters
PAIRS = {
    "adwin_default": (lambda: ADWIN(), lambda: river_drift.ADWIN()),
    "adwin_fast": (lambda: ADWIN(delta=0.1, clock=1), lambda: river_drift.ADWIN(delta=0.1, clock=1)),
    "adwin_custom": (
        lambda: ADWIN(delta=0.05, clock=8, max_buckets=3, min_window_length=12, grace_period=60),
        lambda: river_drift.ADWIN(delta=0.05, clock=8, max_buckets=3, min_window_length=12, grace_period=60),
    ),
    "ph_down_fading": (
        lambda: PageHinkley(min_instances=10, threshold=8, delta=0.01, alpha=0.99, mode="down"),
        lambda: river_drift.PageHinkley(min_instances=10, threshold=8, delta=0.01, alpha=0.99, mode="down"),
    ),
    "ph_river_defaults": (lambda: PageHinkley(threshold=50.0), lambda: river_drift.PageHinkley()),
    "ph_sensitive_up": (
        lambda: PageHinkley(threshold=5, delta=0.05, mode="up"),
        lambda: river_drift.PageHinkley(threshold=5, delta=0.05, mode="up"),
    ),
    "kswin_default": (lambda: KSWIN(seed=3), lambda: river_drift.KSWIN(seed=3)),
    "kswin_small": (
        lambda: KSWIN(alpha=0.01, window_size=60, stat_size=20, seed=7),
        lambda: river_drift.KSWIN(alpha=0.01, window_size=60, stat_size=20, seed=7),
    ),
}


def _fired(det, xs) -> list[int]:
    out = []
    for i, x in enumerate(xs.tolist()):
        det.update(x)
        if det.drift_detected:
            out.append(i)
    return out


@pytest.mark.parametrize("stream", sorted(STREAMS))
@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_same_firing_indices_as_river(stream: str, pair: str) -> None:
    ours, theirs = PAIRS[pair]
    xs = STREAMS[stream]
    if pair.startswith("kswin"):
        xs = xs[:4000]  # River's KSWIN calls scipy per step: keep the suite fast
    mine = np.flatnonzero(ours().update_many(xs)).tolist()
    assert mine == _fired(theirs(), xs)
    assert mine == _fired(ours(), xs)  # update() and update_many() agree


@pytest.mark.parametrize(
    "make,stream",
    [
        (ADWIN, "mean_shift"),
        (ADWIN, "variance_shift"),
        (PageHinkley, "mean_shift"),
        (lambda: KSWIN(seed=1), "mean_shift"),
        (lambda: KSWIN(seed=1), "variance_shift"),
    ],
)  # Page-Hinkley tracks the mean; a zero-mean variance shift is not its job
def test_shifts_are_detected_after_the_change(make, stream: str) -> None:
    fired = np.flatnonzero(make().update_many(STREAMS[stream]))
    assert fired.size and (fired >= 2000).any()
    assert (fired[fired >= 2000][0] - 2000) < 400


@pytest.mark.parametrize("make", [ADWIN, PageHinkley])
@pytest.mark.parametrize("seed", [100, 101, 102, 103, 104])
def test_default_false_alarms_at_most_one_per_10k(make, seed: int) -> None:
    xs = np.random.default_rng(seed).normal(0, 1, 10_000)
    assert make().update_many(xs).sum() <= 1


def test_kswin_false_alarm_rate_is_reported_and_matches_river() -> None:
    counts = []
    for seed in range(5):
        xs = np.random.default_rng(200 + seed).normal(0, 1, 10_000)
        counts.append(int(KSWIN(seed=seed).update_many(xs).sum()))
    xs = np.random.default_rng(200).normal(0, 1, 10_000)
    assert counts[0] == len(_fired(river_drift.KSWIN(seed=0), xs))
    # documented in docs/adaptation.md: ~12 per 10k stationary points at defaults
    assert 3 <= np.mean(counts) <= 30


def test_ks_pvalue_matches_scipy_exact() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(5)
    for n in (10, 30):
        for shift in (0.0, 0.5, 1.0, 2.0):
            a, b = rng.normal(0, 1, n).tolist(), rng.normal(shift, 1, n).tolist()
            h = ks_statistic_count(a, b)
            ref = scipy_stats.ks_2samp(a, b, method="exact")
            assert h / n == pytest.approx(ref.statistic)
            assert ks_pvalue_equal_n(h, n) == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-15)


def test_page_hinkley_threshold_default_differs_from_river_on_purpose() -> None:
    assert PageHinkley().threshold == 150.0
    assert river_drift.PageHinkley().threshold == 50.0


# -- performance-based drift ------------------------------------------------------------------
def test_performance_fires_only_above_tolerance_after_min_samples() -> None:
    d = PerformanceDrift(window=50, tolerance=0.2, min_samples=20, reference=1.0)
    assert not d.update_many(np.full(200, 1.19)).any()  # below 1.2 forever
    d = PerformanceDrift(window=50, tolerance=0.2, min_samples=20, reference=1.0)
    fired = np.flatnonzero(d.update_many(np.full(100, 1.25)))
    assert fired[0] == 19  # first decision at min_samples


def test_performance_cooldown_and_set_reference() -> None:
    d = PerformanceDrift(window=10, tolerance=0.1, min_samples=5, cooldown=30, reference=1.0)
    fired = np.flatnonzero(d.update_many(np.full(60, 5.0)))
    assert fired[0] == 30 + 5 - 1
    d.set_reference(10.0)
    assert not d.update_many(np.full(60, 5.0)).any()
    assert d.threshold == pytest.approx(11.0)


def test_performance_window_forgets_old_errors() -> None:
    d = PerformanceDrift(window=20, tolerance=0.5, min_samples=20, reference=1.0)
    assert not d.update_many(np.r_[np.full(10, 3.0), np.full(100, 0.5)][10:]).any()
    d.reset()
    flags = d.update_many(np.r_[np.full(19, 0.5), np.full(1, 40.0)])
    assert flags[-1]  # mean (19*0.5+40)/20 = 2.475 > 1.5
    assert d.rolling_error == pytest.approx(2.475)


def test_performance_self_calibrates_without_reference() -> None:
    d = PerformanceDrift(window=30, tolerance=0.2, min_samples=30)
    assert not d.update_many(np.full(30, 2.0)).any()
    assert d.current_reference == pytest.approx(2.0)
    assert np.flatnonzero(d.update_many(np.full(40, 3.0)))[0] == 29


def test_performance_rejects_negative_errors() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        PerformanceDrift(reference=1.0).update(-0.1)


# -- feature drift ------------------------------------------------------------------------------
def test_feature_drift_quiet_on_same_distribution_and_names_shifted_feature() -> None:
    rng = np.random.default_rng(3)
    train = rng.normal(size=(4000, 4))
    d = FeatureDrift(window=500)
    d.set_reference(train)
    assert not d.update_many(rng.normal(size=(3000, 4))).any()
    live = rng.normal(size=(600, 4))
    live[:, 2] += 1.0
    for row in live:
        if d.update(row):
            break
    assert d.drift_detected
    assert d.drifted_features.tolist() == [2]


def test_feature_drift_batch_equals_rows() -> None:
    rng = np.random.default_rng(4)
    ref, live = rng.normal(size=(1000, 3)), rng.normal(0.2, 1.0, size=(700, 3))
    a, b = FeatureDrift(window=300, threshold=10.0), FeatureDrift(window=300, threshold=10.0)
    a.set_reference(ref)
    b.set_reference(ref)
    for chunk in np.array_split(live, 7):
        a.update(chunk)
    b.update_many(live)
    np.testing.assert_allclose(a.psi, b.psi)
    assert a.state_dict()["state"]["_counts"].sum() == 300 * 3


def test_feature_drift_auto_reference() -> None:
    rng = np.random.default_rng(6)
    d = FeatureDrift(window=200, min_samples=50)
    assert not d.update(rng.normal(size=(200, 2)))
    assert d.n_features == 2
    assert d.update(rng.normal(3.0, 1.0, size=(100, 2)))


def test_make_detector_names_and_aliases() -> None:
    assert isinstance(make_detector("PH"), PageHinkley)
    assert isinstance(make_detector("adwin", delta=0.1), ADWIN)
    with pytest.raises(ValueError, match="valid"):
        make_detector("ddm")


def test_load_state_from_other_params_or_version_is_refused() -> None:
    with pytest.raises(ValueError, match="parameters differ"):
        ADWIN(delta=0.01).load_state_dict(ADWIN().state_dict())
    with pytest.raises(ValueError, match="not"):
        ADWIN().load_state_dict(PageHinkley().state_dict())
    old = ADWIN().state_dict()
    old["state"] = {"row_lens": np.zeros(1, dtype=np.int64)}  # the layout before state was declared
    with pytest.raises(ValueError, match="fields"):
        ADWIN().load_state_dict(old)


def test_a_detector_must_store_its_arguments_and_name_its_input() -> None:
    class Forgetful(ADWIN):
        def __init__(self, delta: float = 0.002, extra: int = 1) -> None:
            super().__init__(delta)

    with pytest.raises(TypeError, match="extra"):
        Forgetful().params()
    with pytest.raises(TypeError, match="input_kind"):
        type("Odd", (ADWIN,), {"input_kind": "images"})


def test_rebase_sets_the_reference_where_a_detector_has_one() -> None:
    d = PerformanceDrift(min_samples=10)
    d.rebase(val_error=2.0)
    assert d.current_reference == 2.0 and d.reference is None
    d.update_many(np.full(20, 1.0))
    d.rebase()  # a failed retrain: same model, same reference
    assert d.current_reference == 2.0 and d.n_updates == 0
    assert np.flatnonzero(d.update_many(np.full(20, 2.5)))[0] == 9
    rng = np.random.default_rng(9)
    f = FeatureDrift(window=100, min_samples=50)
    f.rebase(reference_features=rng.normal(size=(500, 2)))
    assert f.n_features == 2
    assert f.update_many(rng.normal(size=(100, 2)) + np.array([0.0, 2.0])).any()
    assert f.drifted_features.tolist() == [1]
    f.rebase()
    assert f.n_features == 2  # a given reference is kept


def test_feature_drift_learned_reference_survives_detections_not_reset() -> None:
    rng = np.random.default_rng(6)
    d = FeatureDrift(window=200, min_samples=50)
    d.update(rng.normal(size=(200, 2)))
    assert d.update(rng.normal(3.0, 1.0, size=(100, 2)))
    assert d.update(rng.normal(3.0, 1.0, size=(100, 2)))  # still compared with the learned reference
    d.reset()
    assert d.n_features is None


# -- checks generated over the registry: one case per (detector, check) --------------------------
CHANGE = 1000  # where every check stream changes


def _stream(kind: str, seed: int = 0, n: int = 2000) -> np.ndarray:
    """What a detector of ``input_kind`` is fed, with an obvious change at ``CHANGE``."""
    rng = np.random.default_rng(seed)
    if kind == "errors":  # |noise|, then 3 units larger
        return np.abs(rng.normal(0.0, 1.0, n)) + 3.0 * (np.arange(n) >= CHANGE)
    if kind == "features":  # three channels, the second moves by 2 sd
        x = rng.normal(size=(n, 3))
        x[CHANGE:, 1] += 2.0
        return x
    raise AssertionError(f"no check stream for input_kind {kind!r}: add one to _stream")


def _fresh(name: str) -> DriftDetector:
    """The registry's detector with default parameters; a ``seed`` is pinned so twins draw alike."""
    seeded = "seed" in inspect.signature(DETECTORS[name]).parameters
    return make_detector(name, **({"seed": 0} if seeded else {}))


Make = Callable[[], DriftDetector]


def check_params_round_trip(make: Make, tmp_path: Path) -> None:
    """Every constructor argument is in ``params()``, which survives JSON and builds a twin."""
    det = make()
    params = det.params()
    assert list(params) == list(inspect.signature(type(det)).parameters)
    twin = type(det)(**json.loads(json.dumps(params)))
    assert twin.params() == params and repr(twin) == repr(det)
    xs = _stream(det.input_kind)
    assert np.array_equal(twin.update_many(xs), det.update_many(xs))


def check_state_round_trip(make: Make, tmp_path: Path) -> None:
    """Saved to a file during warm-up, right at a detection and after it: a twin resumes exactly."""
    xs = _stream(make().input_kind)
    first = int(np.flatnonzero(make().update_many(xs))[0])
    for cut in (200, first + 1, CHANGE + 50):
        det = make()
        det.update_many(xs[:cut])
        saved = load_state(save_state(tmp_path / f"{cut}.npz", {"det": det.state_dict()}))["det"]
        twin = make()
        twin.load_state_dict(saved)
        rebuilt = detector_from_state(saved)
        assert state_equal(twin.state_dict(), det.state_dict())
        assert state_equal(rebuilt.state_dict(), det.state_dict())
        expected = det.update_many(xs[cut:])
        assert np.array_equal(twin.update_many(xs[cut:]), expected)
        assert np.array_equal(rebuilt.update_many(xs[cut:]), expected)


def check_reset_equals_fresh(make: Make, tmp_path: Path) -> None:
    """``reset()`` forgets the stream: same state and outputs as a fresh detector."""
    xs = _stream(make().input_kind)
    det, fresh = make(), make()
    det.update_many(xs)
    det.reset()
    assert state_equal(learned_state(det), learned_state(fresh))
    assert np.array_equal(det.update_many(xs), fresh.update_many(xs))


def check_non_finite_input_raises(make: Make, tmp_path: Path) -> None:
    """NaN or inf, alone or in a batch, raises a ValueError naming the detector and changes nothing."""
    det = make()
    xs = _stream(det.input_kind)
    det.update_many(xs[:300])
    before = det.state_dict()
    clear = rf"{re.escape(det.name)}.*(finite|NaN)"
    for bad in (math.nan, math.inf, -math.inf):
        batch = xs[300:305].copy()
        batch.flat[-1] = bad
        with pytest.raises(ValueError, match=clear):
            det.update(batch[-1])
        with pytest.raises(ValueError, match=clear):
            det.update_many(batch)
    assert state_equal(det.state_dict(), before)


def check_update_matches_update_many(make: Make, tmp_path: Path) -> None:
    """A loop of ``update`` gives ``update_many``'s flags and state; an empty batch changes nothing."""
    xs = _stream(make().input_kind)
    one, many = make(), make()
    flags = []
    for x in xs:
        flags.append(one.update(x))
        assert one.drift_detected == flags[-1]
    assert np.array_equal(many.update_many(xs), flags)
    assert many.update_many(xs[:0]).shape == (0,)
    assert state_equal(one.state_dict(), many.state_dict())


def check_fires_on_an_obvious_change(make: Make, tmp_path: Path) -> None:
    """A large change in what the detector is fed is reported within 300 inputs."""
    det = make()
    flags = det.update_many(_stream(det.input_kind))
    fired = np.flatnonzero(flags)
    after = fired[fired >= CHANGE]
    assert after.size and after[0] - CHANGE < 300, fired
    assert det.n_detections == flags.sum()


def check_rebase(make: Make, tmp_path: Path) -> None:
    """``rebase()`` alone is ``reset()``; with a reference, the stream before it no longer matters."""
    xs, later = _stream(make().input_kind), _stream(make().input_kind, seed=1)
    a, b = make(), make()
    a.update_many(xs)
    b.update_many(xs)
    a.rebase()
    b.reset()
    assert state_equal(a.state_dict(), b.state_dict())
    assert np.array_equal(a.update_many(later), b.update_many(later))
    new_model = {  # what the loop knows after training on the stream's first regime
        "val_error": float(_stream("errors")[:CHANGE].mean()),
        "reference_features": _stream("features")[:CHANGE],
    }
    used, fresh = make(), make()
    used.update_many(xs)
    used.rebase(**new_model)
    fresh.rebase(**new_model)
    assert not used.drift_detected
    assert state_equal(learned_state(used), learned_state(fresh))
    assert np.array_equal(used.update_many(later), fresh.update_many(later))


DETECTOR_CHECKS = [
    check_params_round_trip,
    check_state_round_trip,
    check_reset_equals_fresh,
    check_non_finite_input_raises,
    check_update_matches_update_many,
    check_fires_on_an_obvious_change,
    check_rebase,
]


@pytest.mark.parametrize("name,check", check_cases(DETECTORS, DETECTOR_CHECKS))
def test_detector_check(name: str, check: Callable[[Make, Path], None], tmp_path: Path) -> None:
    check(lambda: _fresh(name), tmp_path)


@pytest.mark.parametrize("lap_min", [1, None])
@pytest.mark.parametrize("seed", range(6))
def test_performance_batches_match_one_by_one_to_the_last_bit(
    seed: int, lap_min: int | None, monkeypatch
) -> None:
    """The batched steady state (a lap at a time as arrays) decides and ends exactly as update(),
    with the array path taken wherever it may be (``lap_min`` 1) and as shipped."""
    if lap_min is not None:
        monkeypatch.setattr(performance, "_LAP_MIN", lap_min)
    rng = np.random.default_rng(seed)
    window, min_samples = int(rng.integers(3, 40)), int(rng.integers(1, 50))
    params = {
        "window": window,
        "tolerance": float(rng.uniform(0.0, 0.5)),
        "min_samples": min_samples,
        "cooldown": int(rng.integers(0, 30)),
        "reference": None if seed % 3 == 0 else float(rng.uniform(0.5, 1.5)),
    }
    # quiet stretches, shifts that fire, and values that sit on the threshold
    xs = np.abs(
        np.concatenate([rng.normal(mu, 0.3, int(rng.integers(20, 300))) for mu in (1, 1.6, 1, 3, 1.2, 1)])
    )
    one, many = PerformanceDrift(**params), PerformanceDrift(**params)
    fired_one = [one.update(x) for x in xs]
    cuts = np.sort(rng.choice(np.arange(1, xs.size), size=7, replace=False))
    fired_many = np.concatenate([many.update_many(part) for part in np.split(xs, cuts)])
    assert fired_many.tolist() == fired_one and any(fired_one)
    a, b = one.state_dict(), many.state_dict()
    assert a["state"]["_sum"] == b["state"]["_sum"]  # the running sum, float for float
    assert str(a) == str(b)
