"""A broker outage under load: the broker stops for a while and comes back; the worker rides it out.

A producer offers a fixed rate throughout; a dedicated broker (never the session's shared one)
is stopped and started again on the same log dir and port. The worker must reconnect on its own
(one process throughout), report not ready while the broker is gone and ready again after, and
leave every record with a full window with exactly one prediction value once duplicates are
dropped on ``(series, issued_at)``.
"""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
import yaml
from kafka.errors import KafkaTimeoutError
from steady_feed import SteadyFeed
from test_service_kafka import (
    HOUR,
    LOOKBACK,
    _config,
    _kill_worker,
    _naive_checkpoint,
    _stop_worker,
    _topics,
    _wait_group_done,
    _wait_serving,
    _worker_process,
)
from topic_reader import read_topic

from adaptcast.deploy.kafka import KafkaBroker
from adaptcast.streams.kafka_io import KafkaSink
from adaptcast.streams.records import parse_timestamp

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N_SERIES = 4
STEPS_PER_S = 10.0  # offered load: N_SERIES records per step, 40 records/s
RUN_UP_S = 6.0  # steady serving before the broker stops
DOWN_S = 12.0  # from the broker's stop to its start; unreachable for longer (shutdown and start-up)
STEPS = 450  # 45 s of offered input: it spans the outage and some steady serving after it


class Probe(threading.Thread):
    """Samples the worker's /readyz and /metrics every ``every_s`` until stopped."""

    def __init__(self, base: str, feed: SteadyFeed, every_s: float = 0.25):
        super().__init__(daemon=True)
        self.base, self.feed, self.every_s = base, feed, every_s
        self.samples: list[dict] = []
        self.stop = threading.Event()

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                code, why = self.get("/readyz")
                _, text = self.get("/metrics")
            except OSError:
                continue  # the worker is busy for longer than the timeout: skip this sample
            metric = defaultdict(float)
            for name, value in re.findall(r"^(adaptcast_\w+)(?:\{[^}]*\})? (\S+)$", text, re.M):
                metric[name] += float(value)
            self.samples.append(
                {
                    "t": time.monotonic(),
                    "ready": code == 200,
                    "why": why.strip(),
                    "offered": self.feed.offered,
                    "predictions": int(metric["adaptcast_predictions_total"]),
                    "lag": int(metric["adaptcast_consumer_lag"]),
                }
            )


def _yhat_at_issue(p: dict) -> float:
    """The value a naive forecast repeats (before the error memory's correction): the input's value at
    the issue time, 1000*i + t."""
    return 1000 * int(p["series"][1:]) + parse_timestamp(p["issued_at"]) // HOUR


def _serving(tmp_path: Path, bootstrap: str, names: dict[str, str], **sections) -> tuple:
    """A worker process serving a naive checkpoint on ``names``: its config, config file, log, process."""
    cfg = _config(bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"), **sections)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    log = tmp_path / "worker.log"
    return cfg, cfg_path, log, _worker_process(cfg_path, log, "--verbose")


def test_worker_rides_out_a_broker_outage_under_load(tmp_path: Path) -> None:
    with KafkaBroker(state_dir=tmp_path / "broker") as broker:
        bootstrap = broker.bootstrap
        names = _topics(bootstrap, partitions=2)
        _, _, log, proc = _serving(tmp_path, bootstrap, names, metrics={"enabled": True, "port": 0})
        feed = SteadyFeed(bootstrap, names["input"], N_SERIES, STEPS_PER_S, STEPS)
        try:
            _wait_serving(proc, log, 1)
            base = re.search(r"metrics at (http://\S+)/metrics", log.read_text()).group(1)
            probe = Probe(base, feed)
            deadline = time.monotonic() + 30
            while probe.get("/readyz")[0] != 200:  # partitions assigned and a first lag check done
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
            probe.start()
            feed.start()
            time.sleep(RUN_UP_S)
            t_stop = time.monotonic()
            broker.stop()
            t_stopped = time.monotonic()
            time.sleep(DOWN_S)
            t_start = time.monotonic()
            broker.start()
            t_up = time.monotonic()
            feed.join(timeout=STEPS / STEPS_PER_S + 60)
            records = feed.finish()

            def alive() -> str:
                assert proc.poll() is None, f"the worker died during the outage:\n{log.read_text()}"
                return log.read_text()

            _wait_group_done(bootstrap, names["group"], names["input"], 90, alive)
            t_done = time.monotonic()
            time.sleep(1.0)  # a few samples of the steady state after it caught up
            probe.stop.set()
            probe.join(timeout=10)
            _stop_worker(proc, log)
        finally:
            _kill_worker(proc)
        text = log.read_text()
        assert text.count("adaptcast: serving") == 1, "one process throughout: it reconnected by itself"

        samples = probe.samples
        before = [s for s in samples if s["t"] < t_stop]
        assert before and all(s["ready"] for s in before), before
        not_ready = next(s["t"] for s in samples if s["t"] > t_stop and not s["ready"])
        assert not_ready < t_start, "the worker must notice the outage while it lasts"
        during = [s for s in samples if not_ready <= s["t"] <= t_start]
        assert not any(s["ready"] for s in during), f"ready while the broker was down: {during}"
        assert all("kafka_connected" in s["why"] for s in during), during
        ready_again = next(s["t"] for s in samples if s["t"] > t_start and s["ready"])
        after = [s for s in samples if s["t"] >= t_done]
        assert after and all(s["ready"] for s in after), after

        # every record with a full window has its prediction; after dedup, exactly one value per record
        msgs = read_topic(bootstrap, names["output"], len(records))
        yhats: dict[tuple[str, str], set[tuple[float, ...]]] = defaultdict(set)
        copies: dict[tuple[str, str], int] = defaultdict(int)
        for m in msgs:
            p = json.loads(m.value)
            key = (p["series"], p["issued_at"])
            yhats[key].add(tuple(p["yhat"]["y"]))
            copies[key] += 1
            base = p["yhat_base"]["y"]  # the model's own value; yhat adds the error memory's correction
            assert base == pytest.approx([_yhat_at_issue(p)] * len(base), abs=1e-2), p
        expected = {
            (r["series"], r["ts"]) for r in records if parse_timestamp(r["ts"]) // HOUR >= LOOKBACK - 1
        }
        assert set(copies) == expected, f"missing: {sorted(expected - set(copies))[:5]}"
        duplicates = sum(n - 1 for n in copies.values())
        corrected_differently = sum(len(v) > 1 for v in yhats.values())

    t0 = samples[0]["t"]
    backlog = [s["offered"] - s["predictions"] for s in samples]  # offered, not yet forecast (lag)
    steady = max(b for s, b in zip(samples, backlog, strict=True) if s["t"] < t_stop)
    cleared = next(s["t"] for s, b in zip(samples, backlog, strict=True) if s["t"] > t_up and b <= steady)
    print(
        json.dumps(
            {
                "test": "broker_outage",
                "offered_per_s": N_SERIES * STEPS_PER_S,
                "records": len(records),
                "predictions_expected": len(expected),
                "predictions_written": len(msgs),
                "duplicates": duplicates,
                "duplicates_corrected_differently": corrected_differently,
                "broker_stop_s": round(t_stopped - t_stop, 1),
                "broker_down_s": round(t_start - t_stopped, 1),
                "broker_start_s": round(t_up - t_start, 1),
                "not_ready_after_stop_began_s": round(not_ready - t_stop, 2),
                "ready_after_broker_up_s": round(ready_again - t_up, 2),
                "backlog_steady": steady,
                "backlog_peak": max(backlog),
                "backlog_back_to_steady_after_broker_up_s": round(cleared - t_up, 2),
                "all_committed_after_broker_up_s": round(t_done - t_up, 2),
                "lag_every_s": [  # seconds since the feed began, ready, backlog, the worker's lag gauge
                    [round(s["t"] - t0, 1), s["ready"], b, s["lag"]]
                    for s, b in zip(samples[::4], backlog[::4], strict=True)
                ],
            }
        )
    )


def test_sigterm_while_the_broker_is_down_exits_and_a_restart_loses_nothing(tmp_path: Path) -> None:
    """Kubernetes drains a node while the broker is away: SIGTERM ends the wait for the held batch,
    the worker exits 0 without committing what the broker did not acknowledge, and the worker
    started once the broker is back forecasts every record (at-least-once)."""
    shutdown_s = 3.0
    with KafkaBroker(state_dir=tmp_path / "broker") as broker:
        bootstrap = broker.bootstrap
        names = _topics(bootstrap, partitions=2)
        cfg, cfg_path, log, proc = (
            _serving(  # the stopped worker cannot leave its group: 6 s, not 45, to wait
                tmp_path,
                bootstrap,
                names,
                state={"shutdown_timeout_s": shutdown_s},
                kafka={"session_timeout_s": 6},
            )
        )
        feed = SteadyFeed(bootstrap, names["input"], N_SERIES, STEPS_PER_S, max_steps=100)
        sink = KafkaSink(cfg.kafka)
        try:
            _wait_serving(proc, log, 1)
            feed.start()
            time.sleep(3.0)  # serving the feed
            sink.send(names["dlq"], "probe", {"sent": "before"})
            assert sink.acked(10.0)
            broker.stop()
            # a worker stopped with output in flight closes its producer within the timeout; the
            # subprocess has such output only when the stop catches a batch between send and ack
            sink.send(names["dlq"], "probe", {"sent": "during"})
            sink.close(timeout_s=0.5)  # kafka-python's close raised KafkaTimeoutError here
            deadline = time.monotonic() + 30
            while "does not answer" not in log.read_text():  # the worker noticed the outage
                assert proc.poll() is None, f"the worker died during the outage:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"the outage went unnoticed:\n{log.read_text()}"
                time.sleep(0.1)
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=90)
            exit_s = time.monotonic() - signalled
            assert code == 0, f"exit code {code} after SIGTERM:\n{log.read_text()}"
            broker.start()
            records = feed.finish()
            proc = _worker_process(cfg_path, log, "--verbose")
            _wait_group_done(bootstrap, names["group"], names["input"], 90, log.read_text)
            _stop_worker(proc, log)
        finally:
            _kill_worker(proc)
        msgs = read_topic(bootstrap, names["output"], len(records))
    keys = {(p["series"], p["issued_at"]) for p in map(json.loads, (m.value for m in msgs))}
    expected = {(r["series"], r["ts"]) for r in records if parse_timestamp(r["ts"]) // HOUR >= LOOKBACK - 1}
    assert keys == expected, f"missing: {sorted(expected - keys)[:5]}"
    print(
        json.dumps(
            {"test": "sigterm_during_outage", "shutdown_timeout_s": shutdown_s, "exit_s": round(exit_s, 1)}
        )
    )


def test_output_the_broker_never_acknowledges_fails_for_good_after_the_delivery_timeout(
    tmp_path: Path,
) -> None:
    """An outage longer than ``kafka.delivery_timeout_s``: the producer retries a send until then,
    then the send fails for good and the sink keeps why, which stops the worker with its batch
    uncommitted (the path the refused-output test in test_service_kafka.py follows to exit 1)."""
    with KafkaBroker(state_dir=tmp_path / "broker") as broker:
        names = _topics(broker.bootstrap, partitions=1)
        cfg = _config(broker.bootstrap, names, tmp_path / "state", _naive_checkpoint(tmp_path / "m"))
        sink = KafkaSink(cfg.kafka.model_copy(update={"delivery_timeout_s": 5.0}))
        try:
            sink.send(names["output"], "probe", {"sent": "before"})
            assert sink.acked(10.0)
            broker.stop()
            sink.send(names["output"], "probe", {"sent": "during"})
            assert not sink.acked(0.5) and sink.failed is None  # in flight: retried, not failed
            deadline = time.monotonic() + 60
            with pytest.raises(KafkaTimeoutError):
                while not sink.acked(1.0):
                    assert time.monotonic() < deadline, "the send never failed"
            assert isinstance(sink.failed, KafkaTimeoutError)
        finally:
            sink.close(timeout_s=0.5)
