"""Pickle-free snapshots: many components in one file, atomic writes, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.drift import ADWIN, KSWIN, ComputeLedger, ErrorMemory, RetrainPolicy, load_state, save_state


def test_snapshot_of_all_components_in_one_file(tmp_path) -> None:
    rng = np.random.default_rng(0)
    det, ks = ADWIN(), KSWIN(seed=2)
    det.update_many(rng.normal(size=500))
    ks.update_many(rng.normal(size=150))
    mem = ErrorMemory(dim=3, horizon=2)
    mem.update(rng.normal(size=(10, 3)), rng.normal(size=(10, 2, 1)))
    pol = RetrainPolicy.parse("drift:adwin", window="vh")
    led = ComputeLedger()
    led.add("train", wall_s=1.0, samples=5)
    states = {
        "adwin": det.state_dict(),
        "kswin": ks.state_dict(),
        "memory": mem.state_dict(),
        "policy": pol.state_dict(),
        "ledger": led.state_dict(),
        "extra": {"inf": float("inf"), "none": None},
    }
    path = save_state(tmp_path / "snap.npz", states)
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind
    back = load_state(path)
    assert set(back) == set(states)
    assert back["extra"]["inf"] == float("inf") and back["extra"]["none"] is None
    np.testing.assert_array_equal(back["memory"]["sums"], mem.state_dict()["sums"])
    with np.load(path, allow_pickle=False) as z:  # readable without pickle
        assert "__meta__" in z.files


def test_suffix_is_added(tmp_path) -> None:
    assert save_state(tmp_path / "snap", {"a": {"x": 1}}).name == "snap.npz"


def test_object_arrays_and_bad_values_are_refused(tmp_path) -> None:
    with pytest.raises(TypeError):
        save_state(tmp_path / "x.npz", {"a": {"obj": np.array([object()], dtype=object)}})
    with pytest.raises(TypeError):
        save_state(tmp_path / "x.npz", {"a": {"f": lambda: 1}})
    assert not list(tmp_path.iterdir())


def test_not_a_state_file(tmp_path) -> None:
    p = tmp_path / "plain.npz"
    np.savez(p, a=np.zeros(3))
    with pytest.raises(ValueError, match="not an adaptcast state"):
        load_state(p)
