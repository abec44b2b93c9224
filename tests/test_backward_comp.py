"""What an earlier adaptcast saved still loads and serves alike: the fixtures under tests/backward_comp/.

Each directory there was written once by ``tests/backward_comp/make_fixtures.py`` and committed; it
is never regenerated. A failure here means an upgrade would strand what users have on their
volumes: read the old form (a migration in the loader), or drop it on purpose and say so in
READABLE_FORMATS and docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from adaptcast.forecast import FORECASTERS, load_forecaster
from adaptcast.forecast.base import read_manifest
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.streams.build import build_loop, misfit
from adaptcast.streams.config import load_config
from adaptcast.streams.kafka_io import TopicPartition
from adaptcast.streams.records import Record
from adaptcast.streams.service import SnapshotStore

ROOT = Path(__file__).parent / "backward_comp"
FIXTURES = sorted(p for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
SAVED_MODELS = [
    (f, kind.name) for f in FIXTURES for kind in sorted((f / "models").iterdir()) if kind.is_dir()
]
HOW = "run tests/backward_comp/make_fixtures.py (a new directory; never rewrite an old one)"


def test_there_are_fixtures_and_the_newest_has_every_kind():
    assert FIXTURES, f"no fixture under {ROOT}: {HOW}"
    newest = FIXTURES[-1]
    missing = sorted(set(FORECASTERS) - {p.name for p in (newest / "models").iterdir()})
    assert not missing, f"{newest.name} has no saved {', '.join(missing)} model: {HOW}"


@pytest.mark.parametrize(("fixture", "kind"), SAVED_MODELS, ids=[f"{f.name}-{k}" for f, k in SAVED_MODELS])
def test_a_model_saved_earlier_loads_and_forecasts_the_same(fixture: Path, kind: str):
    path = fixture / "models" / kind
    manifest = read_manifest(path)  # its seal and file list still check out
    model = load_forecaster(path)
    assert model.kind == kind == manifest["kind"]
    with np.load(fixture / "models" / "expected.npz", allow_pickle=False) as saved:
        X, expected = saved["X"], saved[kind]
    np.testing.assert_allclose(
        model.predict(X),
        expected,
        rtol=1e-4,
        atol=1e-4 * float(np.abs(expected).max()),
        err_msg=f"{path} forecasts otherwise than when it was saved",
    )


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.name for f in FIXTURES])
def test_a_worker_upgraded_in_place_resumes_from_its_volumes(fixture: Path, tmp_path: Path, caplog):
    """The worker's start-up on volumes an earlier version wrote: the store's serving model, the
    adaptation snapshot (error memory, calibrator, level term and gate kept) and a partition's
    windows, so its next records are forecast at once, by that model, as before the upgrade."""
    volumes = shutil.copytree(fixture / "worker", tmp_path / "worker")
    cfg = load_config(overrides=json.loads((volumes / "config.json").read_text()), environ={})
    store = CheckpointStore(volumes / "checkpoints")
    model = store.load()
    assert not store.skipped and misfit(model, cfg) is None
    loop = build_loop(cfg)
    loop.serve(model)
    snapshots = SnapshotStore(volumes / "snapshots")
    with caplog.at_level(logging.WARNING):
        saved = snapshots.load_global()
        part = snapshots.load_partition(TopicPartition("records", 0))
    assert saved is not None and part is not None, caplog.text
    loop.load_state_dict(saved)
    offset, series = part
    loop.import_series(series)
    assert loop.step == saved["step"] and loop.model_version == store.serving() == saved["model_version"]
    for name, part_state in (("memory", loop.memory), ("intervals", loop.intervals), ("gate", loop.gate)):
        assert part_state is not None, f"{name} is off in {volumes / 'config.json'}"
        restored = part_state.state_dict()
        for key, value in saved[name].items():
            if isinstance(value, np.ndarray):
                got = restored[key]
                if (
                    got.ndim == value.ndim == 2
                    and got.shape[0] == value.shape[0] > 0
                    and got.shape[1] > value.shape[1]
                ):
                    assert np.isnan(
                        got[:, value.shape[1] :]
                    ).all()  # a column added since (the gate's persistence arm): unscored
                    got = got[:, : value.shape[1]]
                np.testing.assert_array_equal(got, value, err_msg=f"{name}.{key} was not restored")
    assert loop.level.state_dict()["n"].sum() > 0

    with np.load(volumes / "next.npz", allow_pickle=False) as nxt:
        records = [
            Record(str(s), int(t), {"y": float(y)})
            for s, t, y in zip(nxt["series"], nxt["ts_ms"], nxt["y"], strict=True)
        ]
        expected = dict(zip(nxt["forecast_series"].tolist(), nxt["yhat_base"], strict=True))
    out = loop.process(records)
    got = {f.series: f.yhat_base for f in out.forecasts}
    assert sorted(got) == sorted(expected), "every series' window must be restored: forecasts at once"
    assert {f.model_version for f in out.forecasts} == {store.serving()}
    for name, base in expected.items():
        np.testing.assert_allclose(got[name], base, rtol=1e-4, atol=1e-4 * float(np.abs(base).max()))
    assert offset > 0
