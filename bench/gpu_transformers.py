"""Seconds per training epoch of Informer and MIMO-VP: CPU (fp32) vs GPU (fp32 and bf16 autocast).

One self-contained command; prints JSON. Without a CUDA device it prints a JSON note and exits 0
(``--cpu-only`` still measures the CPU side). Workloads:

* ``informer``: the paper's reference config (d_model 512, 8 heads, d_ff 2048, 2+1 layers,
  factor 5, batch 32, seq_len 96, label_len 48, horizon 24) on ETTh1 multivariate with time
  features when the CSV is present (synthetic data of the same shape otherwise); a full epoch
  is 8521 windows = 267 steps.
* ``mimo_vp``: 16×16 moving-blob grid (bench/mimo_vs_recursive.py), 10 → 10 frames, patch 4,
  d_model 64, batch 32.

Each device trains through the normal ``fit`` path (Lightning, ``accelerator``/``precision``
hparams) for 2 epochs on ``steps × batch`` windows after a short warm-up fit; seconds per step
are scaled to seconds per full epoch. The floating-point operations of one training step are
counted once on the CPU (torch's ``FlopCounterMode``: matrix products, convolutions and
attention, the operations that dominate these networks), so each GPU run also reports the
throughput it achieved and its share of the GPU's dense bf16 tensor-core peak.

    python bench/gpu_transformers.py                    # GPU machine: CPU vs GPU fp32 vs GPU bf16
    python bench/gpu_transformers.py --cpu-steps 10 --gpu-steps 267
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # no spinning OpenMP threads on a shared CPU (see informer_ett.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def informer_data(data: Path) -> tuple[str, str, np.ndarray, np.ndarray, dict]:
    """ETTh1 multivariate windows (96 → 24) plus four time-feature channels; synthetic without the CSV."""
    from informer_ett import make_splits

    from adaptcast.forecast.models.informer import PAPER_SIZES

    if data.is_file():
        X, Y = make_splits(data, "multivariate", 96, 24)[0]["train"]
        source = "ETTh1 multivariate"
    else:
        rng = np.random.default_rng(0)
        X = rng.standard_normal((8521, 96, 11)).astype(np.float32)
        Y = rng.standard_normal((8521, 24, 7)).astype(np.float32)
        X[..., 7:] = rng.uniform(-0.5, 0.5, X[..., 7:].shape)
        source = "synthetic (ETTh1 CSV not found)"
    return "informer", source, X, Y, {**PAPER_SIZES, "time_features": 4, "freq": "h", "label_len": 48}


def mimo_data(data: Path) -> tuple[str, str, np.ndarray, np.ndarray, dict]:
    """The blob grid is generated in-process; ``data`` is unused (same signature as :func:`informer_data`)."""
    from mimo_vs_recursive import moving_blobs

    from adaptcast.forecast.windows import sliding_windows

    frames = moving_blobs(3000, 16).reshape(3000, 256)
    X, Y = sliding_windows(frames[:2100], 10, 10, n_targets=256)
    return "mimo_vp", "moving blobs 16x16", X, Y, {"grid": [1, 16, 16], "patch": 4, "d_model": 64}


def workload(
    kind: str, source: str, X: np.ndarray, Y: np.ndarray, hparams: dict, batch: int, n_steps: int
) -> tuple[dict, np.ndarray, np.ndarray, int]:
    """(metadata with the model config, the first ``n_steps × batch`` windows, steps in a full epoch).

    The config's shape (lookback, horizon, features, targets) is read off the windows themselves.
    """
    full_steps = -(-X.shape[0] // batch)
    n = min(X.shape[0], n_steps * batch)
    shape = {"lookback": X.shape[1], "horizon": Y.shape[1], "n_features": X.shape[2], "n_targets": Y.shape[2]}
    cfg = {"kind": kind, **shape, **hparams, "batch_size": batch}
    return {"config": cfg, "source": source, "full_epoch_steps": full_steps}, X[:n], Y[:n], full_steps


# NVIDIA's dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, by a substring of the device name;
# the first match wins, so the PCIe H100 comes before the SXM one.
BF16_PEAK_TFLOPS = (("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("A100", 312.0))


def bf16_peak_tflops(device_name: str | None) -> float | None:
    """The dense bf16 peak of a GPU named ``device_name`` (None: not in :data:`BF16_PEAK_TFLOPS`)."""
    return next((peak for key, peak in BF16_PEAK_TFLOPS if device_name and key in device_name), None)


def step_flops(cfg: dict, X: np.ndarray, Y: np.ndarray, batch: int) -> int:
    """Floating-point operations of one training step (loss forward and backward on one batch)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from adaptcast.forecast import create_forecaster

    cfg = dict(cfg)
    model = create_forecaster(cfg.pop("kind"), **cfg, accelerator="cpu")
    net = model.build_module()
    x, y = torch.as_tensor(X[:batch]), torch.as_tensor(Y[:batch])
    with FlopCounterMode(display=False) as counter:
        model.loss(net, x, y).backward()
    return int(counter.get_total_flops())


def throughput(flops: int, seconds_per_step: float, peak_tflops: float | None) -> dict:
    """Achieved TFLOP/s of a timed run, and its share of the peak (None without one)."""
    achieved = flops / seconds_per_step / 1e12
    share = None if peak_tflops is None else round(achieved / peak_tflops, 4)
    return {"achieved_tflops": round(achieved, 2), "share_of_bf16_peak": share}


def time_fit(
    cfg: dict, X: np.ndarray, Y: np.ndarray, accelerator: str, precision: str, batch: int, full_steps: int
) -> dict:
    import torch

    from adaptcast.forecast import create_forecaster

    cfg = dict(cfg)
    kind = cfg.pop("kind")
    common = dict(accelerator=accelerator, precision=precision, patience=100)
    warm = create_forecaster(kind, **cfg, epochs=1, **common)
    warm.fit(X[: 2 * batch], Y[: 2 * batch])  # CUDA context, kernels, allocator
    if accelerator == "gpu":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    model = create_forecaster(kind, **cfg, epochs=2, **common)
    t0 = time.perf_counter()
    report = model.fit(X, Y)
    wall = time.perf_counter() - t0
    steps = report.epochs * -(-X.shape[0] // batch)
    per_step = wall / steps
    out = {
        "precision": str(report.extra.get("precision")),
        "steps_timed": steps,
        "seconds_per_step": round(per_step, 4),
        "seconds_per_epoch": round(per_step * full_steps, 2),
        "train_loss": round(report.train_loss, 4),
    }
    if accelerator == "gpu":
        out["peak_gpu_memory_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="informer,mimo_vp")
    ap.add_argument("--cpu-steps", type=int, default=10, help="training steps per timed CPU epoch")
    ap.add_argument("--gpu-steps", type=int, default=100, help="training steps per timed GPU epoch")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--cpu-only", action="store_true", help="measure the CPU even without a GPU")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU measurement")
    ap.add_argument(
        "--data",
        type=Path,
        default=None,
        help="ETTh1 CSV for the Informer workload (default ../shared/data/ett/ETTh1.csv; "
        "synthetic data of the same shape if absent)",
    )
    args = ap.parse_args(argv)
    from informer_ett import DEFAULT_DATA

    data = args.data or DEFAULT_DATA
    has_gpu = torch.cuda.is_available()
    doc: dict = {
        "benchmark": "gpu_transformers",
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if has_gpu else None,
            "torch": torch.__version__,
        },
        "results": {},
    }
    if not has_gpu and not args.cpu_only:
        doc["note"] = "no CUDA device: nothing to compare (use --cpu-only to time the CPU alone)"
        print(json.dumps(doc, indent=2))
        return 0
    bf16 = has_gpu and torch.cuda.is_bf16_supported()
    builders = {"informer": informer_data, "mimo_vp": mimo_data}
    for name in [m.strip() for m in args.models.split(",") if m.strip()]:
        entry: dict = {}
        if not args.no_cpu:
            meta, X, Y, full = workload(*builders[name](data), args.batch_size, args.cpu_steps)
            entry.update(meta)
            entry["cpu_fp32"] = time_fit(meta["config"], X, Y, "cpu", "32-true", args.batch_size, full)
        if has_gpu:
            meta, X, Y, full = workload(*builders[name](data), args.batch_size, args.gpu_steps)
            entry.update(meta)
            entry["gpu_fp32"] = time_fit(meta["config"], X, Y, "gpu", "32-true", args.batch_size, full)
            if bf16:
                entry["gpu_bf16_mixed"] = time_fit(
                    meta["config"], X, Y, "gpu", "bf16-mixed", args.batch_size, full
                )
            entry["flops_per_step"] = step_flops(meta["config"], X, Y, args.batch_size)
            peak = bf16_peak_tflops(doc["machine"]["gpu"])
            entry["gpu_bf16_peak_tflops"] = peak
            for key in ("gpu_fp32", "gpu_bf16_mixed"):
                if key in entry:
                    entry[key].update(
                        throughput(entry["flops_per_step"], entry[key]["seconds_per_step"], peak)
                    )
        cpu = entry.get("cpu_fp32", {}).get("seconds_per_epoch")
        for key in ("gpu_fp32", "gpu_bf16_mixed"):
            if cpu and key in entry:
                entry[f"speedup_{key}_vs_cpu"] = round(cpu / entry[key]["seconds_per_epoch"], 1)
        entry["config"] = {k: v for k, v in entry["config"].items()}
        doc["results"][name] = entry
        print(json.dumps({name: entry}), file=sys.stderr, flush=True)
    print(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
