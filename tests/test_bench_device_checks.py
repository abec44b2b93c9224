"""``bench/device_checks.sh`` runs benches that exist, with flags they accept; its FLOP counts are right."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bench_module import load

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "device_checks.sh"

gpu_transformers = load("gpu_transformers")


def _script(*groups: str) -> subprocess.CompletedProcess:
    """The script's dry run for ``groups`` (all of them when none is named)."""
    env = {**os.environ, "DRY_RUN": "1", "PY": sys.executable}
    return subprocess.run(["bash", str(SCRIPT), *groups], cwd=ROOT, env=env, capture_output=True, text=True)


def _dry_run(*groups: str) -> list[list[str]]:
    out = _script(*groups)
    assert out.returncode == 0, out.stderr
    return [shlex.split(line) for line in out.stdout.splitlines() if line.strip()]


def test_the_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)]).returncode == 0


@pytest.mark.parametrize("index", range(4))
def test_each_check_names_a_bench_and_flags_it_accepts(index: int):
    commands = _dry_run()
    assert len(commands) == 4  # throughput vs peak, live on the GPU, univariate rows, multivariate seeds
    cmd = commands[index]
    assert cmd[0] == sys.executable and (ROOT / cmd[1]).is_file()
    usage = subprocess.run([*cmd[:2], "--help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for flag in (arg for arg in cmd[2:] if arg.startswith("--")):
        assert re.search(rf"{re.escape(flag)}\b", usage), f"{cmd[1]} has no {flag}"


def test_step_flops_counts_forward_and_weight_gradient_products():
    batch, lookback, horizon = 8, 24, 6
    cfg = {"kind": "arnet", "lookback": lookback, "horizon": horizon, "n_features": 1, "n_targets": 1}
    X = np.zeros((batch, lookback, 1), np.float32)
    Y = np.zeros((batch, horizon, 1), np.float32)
    # a linear AR-Net: one [B, L] x [L, H] product forward, one of the same size for the weights' gradient
    assert gpu_transformers.step_flops(cfg, X, Y, batch) == 2 * (2 * batch * lookback * horizon)


def test_throughput_against_the_peak_of_the_named_gpu():
    assert gpu_transformers.bf16_peak_tflops("NVIDIA H200") == 989.0
    assert gpu_transformers.bf16_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert gpu_transformers.bf16_peak_tflops("Tesla T4") is None
    assert gpu_transformers.throughput(10**12, 0.5, 989.0) == {
        "achieved_tflops": 2.0,
        "share_of_bf16_peak": 0.002,
    }
    assert gpu_transformers.throughput(10**12, 0.5, None)["share_of_bf16_peak"] is None


def test_groups_select_their_checks_and_an_unknown_group_is_refused():
    (live,) = _dry_run("live")
    assert live[1] == "bench/live_throughput.py" and live[live.index("--model") + 1] == "lstm"
    assert [cmd[1] for cmd in _dry_run("informer")] == [
        "bench/gpu_transformers.py",
        "bench/informer_ett.py",
        "bench/informer_ett.py",
    ]
    refused = _script("tpu")
    assert refused.returncode == 2 and "unknown group tpu" in refused.stderr


BUNDLE = ROOT / "bench" / "offline_bundle.sh"


def test_the_offline_bundle_packs_a_runtime_the_broker_jars_and_the_missing_wheels():
    from adaptcast.deploy.kafka.jars import jars_ready

    assert subprocess.run(["bash", "-n", str(BUNDLE)]).returncode == 0
    if not jars_ready():
        pytest.skip("the broker's jars are not cached here")
    env = {**os.environ, "DRY_RUN": "1", "PY": sys.executable, "JDK": "/opt/jdk", "OUT": "/tmp/bundle"}
    out = subprocess.run(["bash", str(BUNDLE)], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    jlink = next(line for line in lines if line.startswith("/opt/jdk/bin/jlink"))
    assert "java.base" in jlink and "java.desktop" in jlink  # without java.desktop log4j cannot start
    assert any(line.startswith("tar ") and "/tmp/bundle/jre.tar.xz" in line for line in lines)
    downloads = [line.split()[-1] for line in lines if " pip download " in line]
    assert any(spec.startswith("kafka-python==") for spec in downloads)
    assert any(spec.startswith("xgboost-cpu==") for spec in downloads)  # the CPU-only build
    assert not any(spec.startswith(("torch==", "numpy==")) for spec in downloads)  # the image has them
