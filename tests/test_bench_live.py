"""Smoke test of ``bench/live_throughput.py`` on the session's broker: it prints the JSON its docs read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench_module import load

ROOT = Path(__file__).resolve().parents[1]


def test_reports_the_ratio_against_a_raw_client_writing_prediction_sized_records(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "live.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    cmd = [sys.executable, str(ROOT / "bench" / "live_throughput.py"), "--series", "4", "--steps", "90"]
    cmd += ["--batch", "100", "--skip-latency", "--time-limit", "400", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=500, check=False)
    assert done.returncode == 0, done.stderr[-4000:]  # a stall says where it stood; a hang, every stack
    result = json.loads(out.read_text())
    # the worker's predictions (horizon 12, intervals on) are far larger than the inputs they answer
    assert result["prediction_bytes_mean"] > 5 * result["input_bytes_mean"]
    sized, small = result["raw_kafka_python_prediction_sized_rec_per_s"], result["raw_kafka_python_rec_per_s"]
    assert sized > 0 and small > 0
    rate = result["adaptcast_rec_per_s"]  # rates and ratios are rounded in the JSON
    assert result["ratio"] == pytest.approx(rate / sized, abs=2e-3)
    assert result["ratio_small_records"] == pytest.approx(rate / small, abs=2e-3)


def test_a_consuming_loop_that_stops_progressing_says_where_it_stood() -> None:
    progress = load("live_throughput").Progress("raw client on in-x", total=360, stall_s=0.0)
    progress.update(200)  # progress: fine
    with pytest.raises(RuntimeError, match="raw client on in-x: no new record for 0 s at 200 of 360"):
        progress.update(200)
