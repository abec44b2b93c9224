"""Checkpoint store: versioning, manifest contents, corruption detection and fallback."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.checkpoint import CheckpointStore


def fitted(kind: str, seed: int = 0, **hp):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, 8, 2)).astype(np.float32)
    Y = X[:, -2:, :1] + 0.1
    model = create_forecaster(kind, lookback=8, horizon=2, n_features=2, n_targets=1, seed=seed, **hp)
    model.fit(X, Y)
    return model, X


TORCH = {"epochs": 2, "accelerator": "cpu", "num_threads": 1}


@pytest.fixture()
def store_with_two(tmp_path):
    store = CheckpointStore(tmp_path / "store")
    first, X = fitted("arnet", **TORCH)
    v1 = store.save(first)
    second, _ = fitted("arnet", seed=1, **TORCH)
    v2 = store.save(second, parent=v1)
    return store, v1, v2, first, second, X


def test_versions_sorted_and_manifest(store_with_two):
    store, v1, v2, first, second, X = store_with_two
    assert store.versions() == [v1, v2] and store.latest() == v2 and v1 < v2
    manifest = json.loads((store.path(v2) / "manifest.json").read_text())
    assert manifest["kind"] == "arnet" and manifest["version"] == v2 and manifest["parent_version"] == v1
    assert {"config", "scaler", "schema", "libraries", "created_at"} <= set(manifest)
    assert "torch" in manifest["libraries"]
    loaded = store.load()
    assert loaded.version == v2 and store.skipped == []
    np.testing.assert_array_equal(loaded.predict(X), second.predict(X))
    np.testing.assert_array_equal(store.load(v1).predict(X), first.predict(X))


def test_a_refused_version_gives_way_to_the_newest_accepted_one(store_with_two, caplog):
    store, v1, v2, *_ = store_with_two
    store.mark_serving(v2, "published")
    with caplog.at_level(logging.WARNING):
        loaded = store.load(refuse=lambda m: "too new" if m.version == v2 else None)
    assert loaded.version == v1 and store.refused == [(v2, "too new")] == store.skipped
    assert f"checkpoint {v2} is passed over, trying the previous version: too new" in caplog.text
    with pytest.raises(ValueError, match=f"no loadable model version .*{v2}: no; {v1}: no"):
        store.load(refuse=lambda m: "no")
    assert store.load().version == v2 and store.refused == []  # nothing refused without a rule


def test_empty_store_is_clear(tmp_path):
    store = CheckpointStore(tmp_path / "nothing")
    assert store.versions() == [] and store.latest() is None
    with pytest.raises(FileNotFoundError, match="no model versions"):
        store.load()


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def flip_byte(path):
    """One bit flipped in the middle of the file: the weights may still parse, the checksum catches it."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def flip_digit(path):
    """A digit of the creation time changed: still valid JSON, no longer the manifest that was sealed."""
    manifest = json.loads(path.read_text())
    created = manifest["created_at"]
    manifest["created_at"] = created[:3] + ("1" if created[3] != "1" else "2") + created[4:]
    path.write_text(json.dumps(manifest))


def wrong_format(path):
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 99}))


@pytest.mark.parametrize(
    "damage, file, message",
    [
        (truncate, "weights.pt", "truncated"),
        (flip_byte, "weights.pt", "checksum mismatch"),
        (lambda p: p.write_text("{not json"), "manifest.json", "corrupted manifest"),
        (flip_digit, "manifest.json", "manifest checksum mismatch"),
        (wrong_format, "manifest.json", "manifest format 99 is not one this adaptcast reads"),
        (lambda p: p.unlink(), "weights.pt", "missing"),
        (lambda p: p.unlink(), "manifest.json", "no manifest"),
    ],
    ids=[
        "truncated-weights",
        "flipped-weights",
        "garbage-manifest",
        "flipped-manifest",
        "wrong-format",
        "missing-weights",
        "missing-manifest",
    ],
)
def test_corruption_names_file_and_falls_back(store_with_two, damage, file, message, caplog):
    store, v1, v2, first, _, X = store_with_two
    damage(store.path(v2) / file)
    with pytest.raises((ValueError, FileNotFoundError), match=message) as info:
        store.load(v2)
    assert file in str(info.value) and v2 in str(info.value)
    with caplog.at_level(logging.WARNING, logger="adaptcast.forecast.checkpoint"):
        model = store.load()
    assert model.version == v1 and [v for v, _ in store.skipped] == [v2]
    assert v2 in caplog.text
    np.testing.assert_array_equal(model.predict(X), first.predict(X))
    with pytest.raises((ValueError, FileNotFoundError)):
        store.load(fallback=False)


def test_all_corrupt_lists_every_version(store_with_two):
    store, v1, v2, *_ = store_with_two
    for v in (v1, v2):
        truncate(store.path(v) / "weights.pt")
    with pytest.raises(ValueError, match="no loadable model version") as info:
        store.load()
    assert v1 in str(info.value) and v2 in str(info.value)


def test_truncated_xgboost_booster_names_file(tmp_path):
    store = CheckpointStore(tmp_path)
    model, _ = fitted("xgboost", n_estimators=5, num_threads=1)
    v = store.save(model)
    truncate(store.path(v) / "model.ubj")
    with pytest.raises(ValueError, match=r"model\.ubj"):
        store.load(v)


def test_failed_save_leaves_no_version(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path)
    model, _ = fitted("arnet", **TORCH)

    def boom(directory):
        raise OSError("disk full")

    monkeypatch.setattr(model, "_save_weights", boom)
    with pytest.raises(OSError):
        store.save(model)
    assert store.versions() == [] and model.version is None
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_the_store_never_holds_more_than_keep_versions_even_while_writing(tmp_path, monkeypatch):
    """A state volume sized for ``keep`` versions must not need one more while a version lands."""
    store = CheckpointStore(tmp_path, keep=2)
    model, _ = fitted("arnet", **TORCH)
    seen = []
    write = model._save_weights

    def counting(directory):
        seen.append(len(store.versions()) + 1)  # the ones there, and the one being written
        return write(directory)

    monkeypatch.setattr(model, "_save_weights", counting)
    saved = [store.save(model) for _ in range(5)]
    assert max(seen) == 2 and store.versions() == saved[-2:]


def test_bad_version_id(tmp_path):
    with pytest.raises(ValueError, match="not a version id"):
        CheckpointStore(tmp_path).load("../etc")
