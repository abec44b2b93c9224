"""Checkpoint faults: writer killed between files, corrupted newest version, full disk, retention, pickle."""

from __future__ import annotations

import errno
import json
import logging
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from adaptcast.drift import Action, ComputeLedger, Decision, Reason, RetrainPolicy
from adaptcast.forecast import create_forecaster
from adaptcast.forecast.base import MANIFEST
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.forecast.integrity import file_digests, seal
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams import service
from adaptcast.streams.adaptation import Adaptation
from adaptcast.streams.config import load_config
from adaptcast.streams.events import Retrained, RetrainFailed
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.retrain import InlineTrainer

LOOKBACK, HORIZON = 8, 2
TORCH = {"epochs": 1, "accelerator": "cpu", "num_threads": 1}


def arnet(seed: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((64, LOOKBACK, 1)).astype(np.float32)
    model = create_forecaster("arnet", lookback=LOOKBACK, horizon=HORIZON, seed=seed, **TORCH)
    model.fit(X, X[:, -HORIZON:, :1] + 0.1)
    return model, X


def naive():
    model = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    model.fit(*sliding_windows(np.arange(50.0), LOOKBACK, HORIZON))
    return model


KILL_BETWEEN_FILES = textwrap.dedent(
    """
    import os, signal, sys
    from adaptcast.forecast.checkpoint import CheckpointStore

    store = CheckpointStore(sys.argv[1])
    model = store.load()
    write_weights = type(model)._save_weights

    def weights_then_killed(self, directory):
        write_weights(self, directory)
        os.kill(os.getpid(), signal.SIGKILL)  # the manifest is never written

    type(model)._save_weights = weights_then_killed
    store.save(model)
    """
)


@pytest.mark.slow
def test_writer_killed_between_files_leaves_no_version(tmp_path):
    store = CheckpointStore(tmp_path, keep=5)
    model, X = arnet(0)
    good = store.save(model)
    done = subprocess.run([sys.executable, "-c", KILL_BETWEEN_FILES, str(tmp_path)], capture_output=True)
    assert done.returncode == -9, done.stderr.decode()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers and any((p / "weights.pt").is_file() for p in leftovers)  # it died mid-write
    assert store.versions() == [good] and store.load().version == good
    np.testing.assert_array_equal(store.load().predict(X), model.predict(X))
    after = store.save(model)  # the next save numbers on from the good one and clears the debris
    assert after.startswith("000002-") and not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


class NoKafka:
    """Stands in for the Kafka source and sink: these tests are about what the worker loads."""

    def __init__(self, *args, **kwargs):
        pass


def test_worker_serves_the_previous_good_version_when_the_newest_is_corrupted(tmp_path, monkeypatch, caplog):
    store = CheckpointStore(tmp_path / "models")
    good = store.save(arnet(0)[0])
    bad = store.save(arnet(1)[0], parent=good)
    store.mark_serving(bad, "test")
    weights = store.path(bad) / "weights.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    monkeypatch.setattr(service, "KafkaSource", NoKafka)
    monkeypatch.setattr(service, "KafkaSink", NoKafka)
    cfg = load_config(
        overrides={
            "kafka": {"bootstrap_servers": "127.0.0.1:1"},
            "model": {"kind": "arnet", "lookback": LOOKBACK, "horizon": HORIZON, "params": TORCH},
            "state": {"dir": str(tmp_path)},
        },
        environ={},
    )
    with caplog.at_level(logging.WARNING, logger="adaptcast.forecast.checkpoint"):
        worker = service.Worker(cfg)
    assert worker.loop.model_version == good
    assert str(weights) in caplog.text  # the refusal names the damaged file


def test_full_disk_while_saving_keeps_the_serving_model(tmp_path, monkeypatch):
    store = CheckpointStore(tmp_path, keep=3)
    template = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON)
    ad = Adaptation(
        template,
        policy=RetrainPolicy.parse("periodic:10"),
        trainer=InlineTrainer(ComputeLedger()),
        metrics=Metrics(),
        on_swap=store.save,
    )
    series = [np.sin(np.arange(300) / 4 + k)[:, None].astype(np.float32) for k in range(2)]
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL, 200), series, step=1, ts_ms=0)
    (first_event,) = ad.collect(step=1)
    assert isinstance(first_event, Retrained)
    serving = ad.model

    def disk_full(self, directory):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(serving), "_save_weights", disk_full)
    ad.start(Decision(Action.RETRAIN, Reason.PERIODIC, 200), series, step=20, ts_ms=0)
    (event,) = ad.collect(step=20)
    assert isinstance(event, RetrainFailed) and "No space left on device" in event.error
    assert ad.model is serving and ad.model_version == serving.version
    assert store.versions() == [serving.version]
    assert not any(p.name.startswith(".tmp-") for p in tmp_path.iterdir())


def test_retention_keeps_the_newest_and_the_marked_version(tmp_path):
    store = CheckpointStore(tmp_path, keep=2)
    marked = store.save(naive())
    store.mark_serving(marked, "test")
    saved = [store.save(naive()) for _ in range(4)]
    assert store.versions() == [marked, *saved[-2:]]
    assert store.load().version == marked


def test_a_pickle_bearing_checkpoint_is_refused_without_running_it(tmp_path):
    """Even with checksums an attacker recomputed, weights are read with weights_only: no code runs."""
    store = CheckpointStore(tmp_path / "models")
    version = store.save(arnet(0)[0])
    directory = store.path(version)
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"weight": Payload()}, directory / "weights.pt")
    manifest = (directory / MANIFEST).read_text()
    body = {k: v for k, v in json.loads(manifest).items() if k not in ("checksum", "files")}
    files = {k: v for k, v in file_digests(directory).items() if k != MANIFEST}
    (directory / MANIFEST).write_text(json.dumps(seal({**body, "files": files})))
    with pytest.raises(ValueError, match=r"weights\.pt: corrupted or truncated weights \(UnpicklingError"):
        store.load(version)
    assert not marker.exists()


def test_a_format_1_manifest_without_checksums_still_loads(tmp_path):
    store = CheckpointStore(tmp_path)
    version = store.save(naive())
    path = store.path(version) / MANIFEST
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("checksum", "files")}
    path.write_text(json.dumps({**old, "format": 1}))
    assert store.load(version).version == version


def test_a_model_keeps_the_bounds_its_glitches_are_told_by_and_says_when_they_are_malformed(tmp_path):
    """A saved model knows what its training windows held (input_bounds, which outliers.repair reads
    windows against); one saved before it kept them loads without; a malformed one is named."""
    store = CheckpointStore(tmp_path)
    model = arnet(0)[0]
    version = store.save(model)
    assert np.array_equal(store.load(version).input_bounds, model.input_bounds)
    path = store.path(version) / MANIFEST
    body = {k: v for k, v in json.loads(path.read_text()).items() if k != "checksum"}
    for bounds, loads in ((None, True), ([[0.0, 1.0, 2.0]], False), ("wide", False)):
        path.write_text(json.dumps(seal({**body, "input_bounds": bounds})))
        if loads:
            assert store.load(version).input_bounds is None
        else:
            with pytest.raises(ValueError, match=r"manifest.json: input_bounds is not two rows of 1 numbers"):
                store.load(version)
