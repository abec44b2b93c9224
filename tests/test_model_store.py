"""The store workers follow: serving marks, validated publishing, rollback, shared writers, topic history."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from click.testing import CliRunner

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.forecast.windows import sliding_windows
from adaptcast.streams.cli import main as cli
from adaptcast.streams.publish import publish
from adaptcast.streams.topic_history import series_histories

LOOKBACK, HORIZON, PERIOD = 12, 3, 6


def seasonal_windows() -> tuple[np.ndarray, np.ndarray]:
    """A pure period-6 wave: seasonal naive with season 6 is exact, with season 1 it is not."""
    return sliding_windows(np.sin(np.arange(200) * 2 * np.pi / PERIOD), LOOKBACK, HORIZON)


def naive(season: int):
    model = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON, season=season)
    X, Y = seasonal_windows()
    model.fit(X, Y)
    return model


def test_load_serves_the_marked_version_even_when_newer_ones_exist(tmp_path):
    store = CheckpointStore(tmp_path)
    first = store.save(naive(1))
    store.save(naive(PERIOD))
    assert store.serving() is None and store.load().version != first  # unmarked: the newest
    store.mark_serving(first, "test")
    assert store.serving() == first and store.load().version == first
    assert [m["version"] for m in store.marks()] == [first]


def test_marking_a_version_that_does_not_load_is_refused(tmp_path):
    store = CheckpointStore(tmp_path)
    good = store.save(naive(1))
    store.mark_serving(good, "test")
    broken = store.save(naive(1))
    (store.path(broken) / "manifest.json").write_text("{ truncated")
    with pytest.raises(ValueError, match="corrupted manifest"):
        store.mark_serving(broken, "test")
    with pytest.raises(FileNotFoundError):
        store.mark_serving("000099-20260101T000000Z", "test")
    assert store.serving() == good


def test_concurrent_writers_get_distinct_versions(tmp_path):
    """Workers and the retraining job share one store on a volume: versions are allocated under a lock."""
    models = [naive(1) for _ in range(6)]
    versions: list[str] = []
    threads = [
        threading.Thread(target=lambda m=m: versions.append(CheckpointStore(tmp_path).save(m)))
        for m in models
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(versions)) == 6 and sorted(versions) == CheckpointStore(tmp_path).versions()


def test_publish_marks_a_candidate_only_when_it_validates(tmp_path):
    store = CheckpointStore(tmp_path)
    X, Y = seasonal_windows()
    first = publish(store, naive(PERIOD), X, Y)
    assert first.marked_serving and first.compared_with is None and store.serving() == first.version
    worse = publish(store, naive(1), X, Y)
    assert not worse.marked_serving and worse.compared_with == first.version
    assert worse.candidate_error > worse.serving_error and store.serving() == first.version
    assert store.load(worse.version).parent_version == first.version  # kept, for inspection
    equal = publish(store, naive(PERIOD), X, Y)
    assert equal.marked_serving and store.serving() == equal.version


def test_rollback_command_marks_the_previous_or_the_named_version(tmp_path):
    store = CheckpointStore(tmp_path / "models")
    v1, v2, v3 = (store.save(naive(PERIOD)) for _ in range(3))
    run = CliRunner().invoke
    res = run(cli, ["model", "list", "--state-dir", str(tmp_path / "empty")], env={})
    assert res.exit_code == 2 and "no model versions yet" in res.output
    res = run(cli, ["model", "rollback", "--state-dir", str(tmp_path)], env={})
    assert res.exit_code == 2 and "no version was ever marked" in res.output
    listing = run(cli, ["model", "list", "--state-dir", str(tmp_path)], env={}).output.splitlines()
    assert "nothing marked serving" in listing[0] and [line[0] for line in listing[1:]] == [" ", " ", "*"]
    for v in (v1, v2):
        store.mark_serving(v, "trained")
    res = run(cli, ["model", "rollback", "--state-dir", str(tmp_path)], env={})
    assert res.exit_code == 0, res.output
    assert store.serving() == v1 and f"{v1} marked serving" in res.output and f"was {v2}" in res.output
    res = run(cli, ["model", "rollback", v3, "--state-dir", str(tmp_path)], env={})
    assert res.exit_code == 0 and store.serving() == v3
    res = run(cli, ["model", "rollback", "nonsense", "--state-dir", str(tmp_path)], env={})
    assert res.exit_code == 2 and "not a version id" in res.output
    listing = run(cli, ["model", "list", "--state-dir", str(tmp_path)], env={}).output.splitlines()
    assert [line[0] for line in listing] == [" ", " ", "*"] and v3 in listing[2]


def test_a_rollback_to_a_version_the_configuration_does_not_fit_warns(tmp_path):
    """Marked anyway (another configuration's workers may serve it), with the keys that differ."""
    store = CheckpointStore(tmp_path / "models")
    v1 = store.save(naive(PERIOD))
    args = ["model", "rollback", v1, "--state-dir", str(tmp_path)]
    fits = {"ADAPTCAST__MODEL__KIND": "naive", "ADAPTCAST__MODEL__LOOKBACK": str(LOOKBACK)}
    res = CliRunner().invoke(cli, args, env={**fits, "ADAPTCAST__MODEL__HORIZON": str(HORIZON)})
    assert res.exit_code == 0 and store.serving() == v1 and "warning" not in res.output
    res = CliRunner().invoke(cli, args, env=fits)  # the configured horizon is the default, 12
    assert res.exit_code == 0 and store.serving() == v1
    assert (
        f"warning: {v1} does not fit this configuration (model.horizon {HORIZON} (configured: 12))"
        in res.output
    )


def test_train_without_out_publishes_to_the_store(tmp_path):
    csv = tmp_path / "wave.csv"
    wave = np.sin(np.arange(200) * 2 * np.pi / PERIOD)
    csv.write_text("ts,y\n" + "".join(f"{t * 3600},{v}\n" for t, v in enumerate(wave)))
    args = ["train", "--model", "naive", "--data", str(csv), "--target", "y", "--lookback", str(LOOKBACK)]
    args += ["--horizon", str(HORIZON), "--param", f"season={PERIOD}", "--state-dir", str(tmp_path / "state")]
    res = CliRunner().invoke(cli, args, env={})
    assert res.exit_code == 0, res.output
    published = json.loads(res.stdout)["store"]
    assert published["marked_serving"] and published["candidate_error"] == pytest.approx(0, abs=1e-6)
    assert CheckpointStore(tmp_path / "state" / "models").serving() == published["version"]
    res = CliRunner().invoke(cli, ["train", "--state-dir", str(tmp_path)], env={})
    assert res.exit_code == 2 and "exactly one of --data FILE or --from-topic" in res.output
    res = CliRunner().invoke(cli, ["train", "--data", "x.csv", "--input-topic", "metrics"], env={})
    assert res.exit_code == 2 and "--bootstrap-servers and --input-topic go with --from-topic" in res.output


def test_topic_history_keeps_what_the_loop_would(tmp_path):
    def rec(series, ts, y):
        return json.dumps({"series": series, "ts": ts, "values": {"y": y}}).encode()

    values = [rec("a", 1000, 1.0), b"not json", rec("b", 1000, 5.0), rec("a", 2000, 2.0)]
    values += [rec("a", 2000, 9.0), rec("a", 1500, 9.0), rec("a", 3000, 3.0)]  # duplicate, late, good
    values += [json.dumps({"series": "b", "ts": 4000, "values": {"z": 1.0}}).encode()]  # lacks y
    keyed = (b"c", json.dumps({"ts": 1000, "values": {"y": 7.0}}).encode(), None)  # the series is the key
    stamped = (b"d", json.dumps({"values": {"y": 8.0}}).encode(), 1000)  # the time is the message's
    got = series_histories([*values, keyed, stamped], ["y"])
    assert got.keys() == {"a", "b", "c", "d"}
    assert got["a"][:, 0].tolist() == [1.0, 2.0, 3.0] and got["b"][:, 0].tolist() == [5.0]


def test_publish_compares_both_errors_in_the_candidates_units(tmp_path):
    """Two models forecasting alike tie, however unlike the data their scalers were fitted on: a
    candidate fitted on calmer windows (a smaller scaler spread) is not refused for the units alone."""
    store = CheckpointStore(tmp_path)
    X, Y = seasonal_windows()
    wide = create_forecaster("naive", lookback=LOOKBACK, horizon=HORIZON, season=1)
    wide.fit(3 * X, 3 * Y)  # the same forecasts, a scaler three times as wide
    publish(store, wide, X, Y)
    calm = publish(store, naive(1), X, Y)
    assert calm.candidate_error == pytest.approx(calm.serving_error) and calm.marked_serving
