"""Write what this adaptcast saves, for every later adaptcast to read: ``tests/test_backward_comp.py``.

    python tests/backward_comp/make_fixtures.py            # writes tests/backward_comp/<date>-format<N>/
    python tests/backward_comp/make_fixtures.py LABEL      # or under another name

Run it when the checkpoint, manifest or snapshot format changes, and commit the new directory
beside the old ones. Never regenerate an old one: each is what a release wrote to a volume, and
an upgraded worker must still read it (or READABLE_FORMATS, the test and docs/reliability.md must
say that it no longer does). A directory holds:

- ``models/<kind>/``: one tiny fitted model of every registered kind, as ``BaseForecaster.save``
  writes it, and ``models/expected.npz``: windows ``X`` and each kind's forecasts of them;
- ``worker/``: what a worker leaves on its volumes mid-stream: a checkpoint store with the model it
  serves, its snapshots (adaptation state and one partition's windows), the configuration it ran
  (``config.json``: overrides of the defaults), and the next records with the forecasts of them
  before any correction (``next.npz``).
"""

from __future__ import annotations

import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the conformance suite's tiny models and data

from test_forecast_conformance import synthetic, tiny_config  # noqa: E402

from adaptcast.forecast import FORECASTERS, create_forecaster  # noqa: E402
from adaptcast.forecast.base import MANIFEST_FORMAT  # noqa: E402
from adaptcast.forecast.checkpoint import CheckpointStore  # noqa: E402
from adaptcast.streams.build import build_loop  # noqa: E402
from adaptcast.streams.config import load_config  # noqa: E402
from adaptcast.streams.kafka_io import TopicPartition  # noqa: E402
from adaptcast.streams.records import Record  # noqa: E402
from adaptcast.streams.service import SnapshotStore  # noqa: E402

# the worker's run: the defaults (error memory, intervals and gate on), reading the target "y"
WORKER_CONFIG: dict[str, Any] = {"model": {"target": ["y"]}}
PARTITION = TopicPartition("records", 0)
SMALLER = {"xgboost": {"n_estimators": 8}}  # the conformance suite's 60 rounds would be 0.6 MB here
SERIES, STEPS, HOUR_MS = ("a", "b", "c"), 400, 3_600_000


def feed(steps: int, start: int = 0) -> list[list[Record]]:
    """Per step, one record of each series: daily cycles at three levels, the third shifted at step 250."""
    rng = np.random.default_rng(start + 7)
    out = []
    for t in range(start, start + steps):
        out.append(
            [
                Record(
                    s, t * HOUR_MS, {"y": float(level + 3 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5))}
                )
                for s, level in zip(SERIES, (10.0, 20.0, 30.0 + 4.0 * (t >= 250)), strict=True)
            ]
        )
    return out


def write_models(root: Path) -> None:
    """One fitted model per kind, and its forecasts of held-out windows."""
    X, Y = synthetic(700, seed=1)
    expected: dict[str, np.ndarray] = {"X": X[600:640]}
    for kind in sorted(FORECASTERS):
        model = create_forecaster(kind, **{**tiny_config(kind), **SMALLER.get(kind, {})})
        model.fit(X[:500], Y[:500], val=(X[500:600], Y[500:600]))
        model.save(root / "models" / kind)
        expected[kind] = model.predict(expected["X"])
    np.savez(root / "models" / "expected.npz", **expected)


def write_worker(root: Path) -> None:
    """A loop run as the worker runs it, then its volumes: checkpoint store, snapshots, config."""
    cfg = load_config(overrides=WORKER_CONFIG, environ={})
    store = CheckpointStore(root / "worker" / "checkpoints")
    loop = build_loop(
        cfg, on_swap=lambda m: store.save(m, parent=None if loop.model is None else loop.model.version)
    )
    for step in feed(STEPS):
        loop.process(step)
    store.mark_serving(loop.model_version, "fixture")
    for stale in store.versions():
        if stale != loop.model_version:
            shutil.rmtree(store.path(stale))
    (store.root / ".lock").unlink(missing_ok=True)
    snaps = SnapshotStore(root / "worker" / "snapshots")
    snaps.save_global(loop.state_dict())
    snaps.save_partition(PARTITION, STEPS * len(SERIES), loop.export_series(SERIES))
    (root / "worker" / "config.json").write_text(json.dumps(WORKER_CONFIG, indent=2) + "\n")
    nxt = feed(1, start=STEPS)[0]
    out = loop.process(nxt)
    np.savez(
        root / "worker" / "next.npz",
        series=np.array([r.series for r in nxt]),
        ts_ms=np.array([r.ts_ms for r in nxt], dtype=np.int64),
        y=np.array([r.values["y"] for r in nxt]),
        forecast_series=np.array([f.series for f in out.forecasts]),
        yhat_base=np.stack([f.yhat_base for f in out.forecasts]),
    )


def main(argv: list[str]) -> None:
    label = argv[0] if argv else f"{datetime.now(UTC):%Y%m%d}-format{MANIFEST_FORMAT}"
    root = HERE / label
    if root.exists():
        raise SystemExit(f"{root} exists: fixtures are never regenerated; name a new LABEL")
    write_models(root)
    write_worker(root)
    print(f"wrote {root}")


if __name__ == "__main__":
    main(sys.argv[1:])
