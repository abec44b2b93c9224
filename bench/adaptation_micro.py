"""Micro-benchmark of the adaptation components: ns per record for update/correct at batch 1 and 256.

Prints one JSON document.  Targets (issue): error memory <= 20 us per record at batch 256,
detectors <= 5 us per update.  Not part of the test suite.  Usage:
    python bench/adaptation_micro.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any

# The serving path does many small matrix products; a multi-threaded BLAS on a busy box
# turns a 90 us product into ~2 ms of thread hand-offs.  Pin one BLAS thread unless the
# caller chose otherwise (recorded in the output).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adaptcast.drift import (  # noqa: E402
    ADWIN,
    KSWIN,
    ComputeLedger,
    ErrorMemory,
    FeatureDrift,
    PageHinkley,
    PerformanceDrift,
    RetrainPolicy,
    StepInfo,
    VarianceHorizon,
)

DETECTOR_TARGET_NS = 5_000
MEMORY_TARGET_NS = 20_000


def ns_per_record(fn: Callable[[], Any], records_per_call: int, min_time: float) -> float:
    """Best-of-3 mean ns per record of ``fn`` (each run repeats until ``min_time`` elapses)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(3):
        n, t0 = 0, time.perf_counter()
        while True:
            fn()
            n += 1
            el = time.perf_counter() - t0
            if el >= min_time:
                break
        best = min(best, el / (n * records_per_call) * 1e9)
    return round(best, 1)


def bench_detectors(min_time: float) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    xs = np.abs(rng.normal(size=4096))
    makers: dict[str, Callable[[], Any]] = {
        "performance": lambda: PerformanceDrift(reference=1e9),
        "adwin": ADWIN,
        "page_hinkley": PageHinkley,
        "kswin": lambda: KSWIN(seed=0),
    }
    out: dict[str, Any] = {}
    for name, make in makers.items():
        det = make()
        it = iter(xs.tolist() * 1000)
        one = ns_per_record(lambda: det.update(next(it)), 1, min_time)
        det2 = make()
        batch = xs[:256]
        many = ns_per_record(lambda: det2.update_many(batch), 256, min_time)
        out[name] = {
            "update_ns_batch1": one,
            "update_ns_batch256": many,
            "target_ns": DETECTOR_TARGET_NS,
            "meets_target": max(one, many) <= DETECTOR_TARGET_NS,
        }
    fd = FeatureDrift(window=500)
    fd.set_reference(rng.normal(size=(2000, 8)))
    row, rows = rng.normal(size=(1, 8)), rng.normal(size=(256, 8))
    one = ns_per_record(lambda: fd.update(row), 1, min_time)
    many = ns_per_record(lambda: fd.update(rows), 256, min_time)
    out["feature_8features"] = {
        "update_ns_batch1": one,
        "update_ns_batch256": many,
        "target_ns": DETECTOR_TARGET_NS,
        "meets_target": max(one, many) <= DETECTOR_TARGET_NS,
        "note": "batch 256 = one update() with a [256, 8] block (one PSI check)",
    }
    return out


def bench_memory(min_time: float, dim: int = 64, horizon: int = 24, n_targets: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(1)
    mem = ErrorMemory(dim=dim, horizon=horizon, n_targets=n_targets, tables=8, bits=6, decay=0.999)
    out: dict[str, Any] = {
        "config": {
            "dim": dim,
            "horizon": horizon,
            "n_targets": n_targets,
            "tables": 8,
            "bits": 6,
            "nbytes": mem.nbytes,
        }
    }
    warm_k = rng.normal(size=(2048, dim)).astype(np.float32)
    mem.update(warm_k, rng.normal(size=(2048, horizon, n_targets)))
    for b in (1, 256):
        k = rng.normal(size=(b, dim)).astype(np.float32)
        r = rng.normal(size=(b, horizon, n_targets))
        up = ns_per_record(lambda: mem.update(k, r), b, min_time)
        co = ns_per_record(lambda: mem.correct(k, r), b, min_time)
        out[f"batch{b}"] = {"update_ns": up, "correct_ns": co}
    worst = max(out["batch256"]["update_ns"], out["batch256"]["correct_ns"])
    out["target_ns_batch256"] = MEMORY_TARGET_NS
    out["meets_target"] = worst <= MEMORY_TARGET_NS
    return out


def bench_other(min_time: float) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    out: dict[str, Any] = {}
    for n in (1_000, 100_000):
        hist = rng.normal(size=n)
        vh = VarianceHorizon(min_len=48)
        out[f"variance_horizon_select_ns_n{n}"] = ns_per_record(lambda: vh.select(hist), 1, min_time)
    pol = RetrainPolicy.parse("drift:adwin", window="fixed:500")
    step = iter(range(10**9))
    out["policy_should_retrain_ns_1error"] = ns_per_record(
        lambda: pol.should_retrain(StepInfo(step=next(step), rows_available=1000, errors=0.5)), 1, min_time
    )
    errs = np.abs(rng.normal(size=256))
    out["policy_should_retrain_ns_per_error_256"] = ns_per_record(
        lambda: pol.should_retrain(StepInfo(step=next(step), rows_available=1000, errors=errs)), 256, min_time
    )
    led = ComputeLedger(cuda=False)

    def measured() -> None:
        with led.measure("predict", samples=1):
            pass

    out["compute_ledger_measure_overhead_ns"] = ns_per_record(measured, 1, min_time)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="shorter timing runs")
    args = ap.parse_args()
    min_time = 0.05 if args.quick else 0.3
    result = {
        "benchmark": "adaptation_micro",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "detectors": bench_detectors(min_time),
        "error_memory": bench_memory(min_time),
        "other": bench_other(min_time),
    }
    result["all_targets_met"] = (
        all(v["meets_target"] for v in result["detectors"].values())
        and result["error_memory"]["meets_target"]
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
