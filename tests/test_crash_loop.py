"""A crash loop: the worker is killed with SIGKILL at seeded random points, again and again, under load.

``state.warm_records`` is 0, so a restarted worker can only have full windows if it restored them
from its snapshots: a cold start would leave each series without forecasts for ``LOOKBACK - 1``
records after every crash, and the test would see the gap. The adaptation state (the loop's step
and the error memory's counters) must carry on across crashes instead of starting afresh.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from steady_feed import SteadyFeed
from test_service_kafka import (
    HOUR,
    _committed_total,
    _config,
    _expected_keys,
    _group_done,
    _group_progress,
    _kill_worker,
    _naive_checkpoint,
    _stop_worker,
    _topics,
    _wait_group_done,
    _wait_serving,
    _worker_process,
)
from topic_reader import read_topic

from adaptcast.drift.serialize import load_state
from adaptcast.streams.records import parse_timestamp

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SEED = 20
CRASHES = 5
N_SERIES, STEPS_PER_S = 8, 10.0  # 80 records/s offered throughout the kills and restarts


def _adaptation_state(state_dir: Path) -> tuple[int, int]:
    """(loop step, error-memory updates) in the loop snapshot on disk."""
    loop = load_state(state_dir / "snapshots" / "loop.npz")["loop"]
    return int(loop["step"]), int(loop["memory"]["counters"][0])


def test_repeated_kill_minus_nine_resumes_from_snapshots(kafka_bootstrap: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    names = _topics(kafka_bootstrap, partitions=2)
    cfg = _config(
        kafka_bootstrap,
        names,
        tmp_path / "state",
        _naive_checkpoint(tmp_path / "m"),
        adaptation={"memory": True},
    )
    data = cfg.model_dump(mode="json")
    data["state"]["warm_records"] = 0  # windows only from snapshots
    data["kafka"]["poll_max_records"] = 50  # many batches: a kill lands in one, or between two
    data["kafka"]["session_timeout_s"] = 6  # a killed worker's partitions move after 6 s, not 45
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(data))
    log = tmp_path / "worker.log"
    feed = SteadyFeed(kafka_bootstrap, names["input"], N_SERIES, STEPS_PER_S, max_steps=100_000)
    crashes: list[dict] = []
    states: list[tuple[int, int]] = []
    proc = _worker_process(cfg_path, log, "--verbose")
    try:
        _wait_serving(proc, log, 1)
        feed.start()
        snapshots = tmp_path / "state" / "snapshots"
        deadline = time.monotonic() + 60
        while len(list(snapshots.glob("*.npz"))) < 3:  # both partitions' windows and the loop state
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        for k in range(CRASHES):
            time.sleep(rng.uniform(0.5, 4.0))  # the kill lands wherever the worker happens to be
            assert proc.poll() is None, log.read_text()
            _kill_worker(proc)
            progress = _group_progress(kafka_bootstrap, names["group"], names["input"])
            at_kill = {p: done for p, (done, _end) in progress.items()}
            states.append(_adaptation_state(tmp_path / "state"))
            spawned = time.monotonic()
            proc = _worker_process(cfg_path, log, "--verbose")
            _wait_serving(proc, log, k + 2)
            serving = time.monotonic()
            # recovered: it commits past where the killed one stopped (or there was nothing left)
            target = sum(at_kill.values())
            while _committed_total(kafka_bootstrap, names["group"]) <= target and not _group_done(
                kafka_bootstrap, names["group"], names["input"]
            ):
                assert proc.poll() is None and time.monotonic() - spawned < 90, log.read_text()
                time.sleep(0.05)
            crashes.append(
                {
                    "committed_at_kill": at_kill,
                    "to_serving_s": round(serving - spawned, 2),
                    "to_progress_s": round(time.monotonic() - spawned, 2),
                }
            )
        time.sleep(2.0)  # some steady serving after the last restart
        records = feed.finish()

        def alive() -> str:
            assert proc.poll() is None, log.read_text()
            return log.read_text()

        _wait_group_done(kafka_bootstrap, names["group"], names["input"], 90, alive)
        _stop_worker(proc, log)
    finally:
        _kill_worker(proc)
        if feed.is_alive():
            feed.finish()
    text = log.read_text()
    assert text.count("adaptcast: serving") == CRASHES + 1

    # every record with a full window has its prediction, with the right value, despite warm_records=0
    steps = feed.steps
    assert len(records) == N_SERIES * steps
    expected = _expected_keys(N_SERIES, steps)
    msgs = read_topic(kafka_bootstrap, names["output"], len(expected))
    preds = [json.loads(m.value) for m in msgs]
    counts = Counter((p["series"], p["issued_at"]) for p in preds)
    assert set(counts) == expected, f"missing: {sorted(expected - set(counts))[:5]}"
    for p in preds:
        value = 1000 * int(p["series"][1:]) + parse_timestamp(p["issued_at"]) // HOUR
        assert p["yhat_base"]["y"] == pytest.approx([value] * len(p["yhat_base"]["y"]), abs=1e-2), p

    # every restart restored windows and adaptation state from the snapshots: no cold start
    resumed = text.split("connecting to Kafka")[2:]
    assert all("adaptation state restored from its snapshot" in part for part in resumed), text
    assert all("no usable snapshot" not in part for part in resumed), text
    final = _adaptation_state(tmp_path / "state")
    assert final[0] == steps, f"the loop's step restarted from 0 somewhere: {states} then {final}"
    assert states == sorted(states) and final >= states[-1], f"adaptation state went back: {states}"

    # duplicates: only records at or after the last commit before a kill, attributed to that kill
    inputs = read_topic(kafka_bootstrap, names["input"], len(records))
    where = {
        (json.loads(m.value)["series"], json.loads(m.value)["ts"]): (m.partition, m.offset) for m in inputs
    }
    per_crash = [0] * CRASHES
    for key, n in counts.items():
        if n == 1:
            continue
        part, off = where[key]
        blamed = [k for k, c in enumerate(crashes) if c["committed_at_kill"].get(part, 0) <= off]
        assert blamed, f"{key} duplicated although committed before every kill"
        per_crash[blamed[-1]] += n - 1
    for c, d in zip(crashes, per_crash, strict=True):
        c["duplicates"] = d
        del c["committed_at_kill"]
    print(
        json.dumps(
            {
                "test": "crash_loop",
                "seed": SEED,
                "records": len(records),
                "predictions_expected": len(expected),
                "predictions_written": len(preds),
                "duplicates": sum(per_crash),
                "crashes": crashes,
                "adaptation_state_at_kills": states,
                "adaptation_state_final": list(final),
            }
        )
    )
