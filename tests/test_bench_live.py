"""Smoke test of ``bench/live_throughput.py`` on the session's broker: it prints the JSON its docs read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_reports_the_ratio_against_a_raw_client_writing_prediction_sized_records(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    out = tmp_path / "live.json"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    cmd = [sys.executable, str(ROOT / "bench" / "live_throughput.py"), "--series", "4", "--steps", "90"]
    cmd += ["--batch", "100", "--skip-latency", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    # the worker's predictions (horizon 12, intervals on) are far larger than the inputs they answer
    assert result["prediction_bytes_mean"] > 5 * result["input_bytes_mean"]
    sized, small = result["raw_kafka_python_prediction_sized_rec_per_s"], result["raw_kafka_python_rec_per_s"]
    assert sized > 0 and small > 0
    rate = result["adaptcast_rec_per_s"]  # rates and ratios are rounded in the JSON
    assert result["ratio"] == pytest.approx(rate / sized, abs=2e-3)
    assert result["ratio_small_records"] == pytest.approx(rate / small, abs=2e-3)
