"""The soak benchmark at 50,000 records over 500 series: counts and sizes stay flat while retraining.

``bench/soak.py`` runs a worker process on the real broker; this checks what does not depend on
the machine's speed: every record consumed, retrains fired, descriptors and threads flat over the
second half, and the model store pruned to ``keep_versions``. RSS is reported, not asserted: over a
run this short its growth is within allocator noise on a shared machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from bench_module import load

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"
RECORDS, SERIES, KEEP = 50_000, 500, 3


@pytest.mark.kafka
@pytest.mark.slow
def test_soak_50k_records_flat_descriptors_threads_and_pruned_store(kafka_bootstrap: str) -> None:
    flags = ["--records", str(RECORDS), "--series", str(SERIES), "--keep-versions", str(KEEP)]
    flags += [
        "--retrains",
        "10",
        "--history",
        "40",
        "--sample-s",
        "0.5",
        "--timeout-s",
        "900",
        "--partitions",
        "1",
    ]
    done = subprocess.run(
        [sys.executable, str(SOAK), *flags],
        capture_output=True,
        text=True,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["consumed"] >= RECORDS
    assert result["retrains"] >= 5
    assert result["samples"]["second_half"] >= 3, result["samples"]  # flatness over fewer says nothing
    checks = result["checks"]
    assert checks["fds_flat"] and checks["threads_flat"], (result["fds"], result["threads"])
    assert checks["versions_within_keep"] and checks["old_versions_pruned"], result["checkpoint_versions"]


def test_flatness_compares_floors_so_a_spike_passes_and_a_leak_fails() -> None:
    soak = load("soak")
    spike = [14, 15, 14, 20, 14, 15, 14, 14, 19]  # transient connections, no trend
    leak = [14, 15, 14, 15, 16, 16, 17, 18, 17]  # a descriptor kept per retrain: the floor climbs
    assert soak.floor_rise(spike) == 0
    assert soak.floor_rise(leak) == 3 > soak.FD_TOLERANCE
    assert soak.floor_rise([14, 15]) is None  # too few samples to tell a trend from a spike
