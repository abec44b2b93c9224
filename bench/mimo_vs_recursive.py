"""MIMO-VP (all future frames in one pass) vs a recursive one-step model of the same architecture.

Data: a synthetic spatio-temporal grid generated in-process — Gaussian blobs moving on a
``size × size`` lattice, bouncing off the walls, carried by a slowly rotating "wind" (drift of
the motion field) while their amplitude and width drift too; a little observation noise.
Split in time: the first 70 % of frames train, the next 10 % validate, the last 20 % test.

Models: ``mimo_vp`` with ``horizon = H`` (one forward pass → H frames) and the *same* network
with ``horizon = 1``, trained one step ahead and rolled out recursively (each prediction is fed
back as the newest input frame). Same sizes, loss, optimiser, epochs and seed.

Prints JSON: MSE per lead time for both, the ratio last/first lead (error growth), parameter
counts and training seconds; also written to ``bench/results/mimo_vs_recursive.json``.

    python bench/mimo_vs_recursive.py                      # ~ a few minutes on 2 CPU cores
    python bench/mimo_vs_recursive.py --epochs 30 --frames 6000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault(
    "OMP_WAIT_POLICY", "PASSIVE"
)  # no spinning OpenMP threads on a shared CPU (see informer_ett.py)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def moving_blobs(frames: int, size: int = 16, n_blobs: int = 3, seed: int = 0) -> np.ndarray:
    """``[frames, size, size]`` float32 of drifting Gaussian blobs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform(2, size - 2, (n_blobs, 2))
    vel = rng.uniform(-0.6, 0.6, (n_blobs, 2))
    base_amp = rng.uniform(0.7, 1.3, n_blobs)
    base_sigma = rng.uniform(1.2, 2.2, n_blobs)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((frames, size, size), dtype=np.float32)
    for t in range(frames):
        phase = 2 * np.pi * t / frames
        wind = 0.25 * np.array([np.cos(phase), np.sin(phase)])  # drift of the motion field
        amp = base_amp * (1 + 0.3 * np.sin(phase + np.arange(n_blobs)))  # drifting amplitude
        sigma = base_sigma * (1 + 0.2 * t / frames)  # blobs slowly widen
        frame = np.zeros((size, size))
        for b in range(n_blobs):
            d2 = (yy - pos[b, 0]) ** 2 + (xx - pos[b, 1]) ** 2
            frame += amp[b] * np.exp(-d2 / (2 * sigma[b] ** 2))
        out[t] = frame + 0.02 * rng.standard_normal((size, size))
        pos += vel + wind
        for axis in range(2):  # bounce
            low, high = pos[:, axis] < 0, pos[:, axis] > size - 1
            vel[low | high, axis] *= -1
            pos[low, axis] = -pos[low, axis]
            pos[high, axis] = 2 * (size - 1) - pos[high, axis]
            pos[:, axis] = np.clip(pos[:, axis], 0, size - 1)
    return out


def main(argv: list[str] | None = None) -> int:
    from adaptcast.forecast import create_forecaster
    from adaptcast.forecast.metrics import mse
    from adaptcast.forecast.threads import set_torch_threads
    from adaptcast.forecast.windows import sliding_windows

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=3000)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--lookback", type=int, default=10)
    ap.add_argument("--horizon", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "mimo_vs_recursive.json"))
    args = ap.parse_args(argv)
    set_torch_threads(args.threads)

    S, L, H = args.size, args.lookback, args.horizon
    grid = moving_blobs(args.frames, S, seed=args.seed).reshape(args.frames, S * S)
    n_train, n_val = int(0.7 * args.frames), int(0.1 * args.frames)
    train, val, test = grid[:n_train], grid[n_train - L : n_train + n_val], grid[n_train + n_val - L :]
    F = S * S
    common = dict(
        lookback=L,
        n_features=F,
        n_targets=F,
        grid=(1, S, S),
        patch=args.patch,
        d_model=args.d_model,
        n_heads=4,
        d_ff=2 * args.d_model,
        e_layers=2,
        d_layers=2,
        epochs=args.epochs,
        batch_size=32,
        lr=1e-3,
        patience=4,
        accelerator=args.device,
        seed=args.seed,
    )
    Xte, Yte = sliding_windows(test, L, H, n_targets=F)

    # MIMO: one pass, H frames
    mimo = create_forecaster("mimo_vp", horizon=H, **common)
    Xtr, Ytr = sliding_windows(train, L, H, n_targets=F)
    Xva, Yva = sliding_windows(val, L, H, n_targets=F)
    t0 = time.perf_counter()
    rep_m = mimo.fit(Xtr, Ytr, val=(Xva, Yva))
    fit_m = time.perf_counter() - t0
    pred_m = mimo.predict(Xte)

    # recursive: the same network with horizon 1, rolled out H times
    rec = create_forecaster("mimo_vp", horizon=1, **common)
    Xtr1, Ytr1 = sliding_windows(train, L, 1, n_targets=F)
    Xva1, Yva1 = sliding_windows(val, L, 1, n_targets=F)
    t0 = time.perf_counter()
    rep_r = rec.fit(Xtr1, Ytr1, val=(Xva1, Yva1))
    fit_r = time.perf_counter() - t0
    window = Xte.copy()
    steps = []
    for _ in range(H):
        nxt = rec.predict(window)  # [B, 1, F]
        steps.append(nxt)
        window = np.concatenate([window[:, 1:], nxt], axis=1)
    pred_r = np.concatenate(steps, axis=1)

    persistence = np.repeat(Xte[:, -1:, :], H, axis=1)

    def per_lead(pred: np.ndarray) -> list[float]:
        return [round(mse(Yte[:, h], pred[:, h]), 5) for h in range(H)]

    def n_params(model) -> int:
        return int(sum(p.numel() for p in model.module.parameters()))

    m, r, p = per_lead(pred_m), per_lead(pred_r), per_lead(persistence)
    result = {
        "benchmark": "mimo_vs_recursive",
        "data": {
            "frames": args.frames,
            "grid": [1, S, S],
            "lookback": L,
            "horizon": H,
            "test_windows": int(Xte.shape[0]),
        },
        "mse_per_lead": {"mimo_vp": m, "recursive": r, "persistence": p},
        "mse_mean": {
            "mimo_vp": round(float(np.mean(m)), 5),
            "recursive": round(float(np.mean(r)), 5),
            "persistence": round(float(np.mean(p)), 5),
        },
        "error_growth_last_over_first": {
            "mimo_vp": round(m[-1] / m[0], 2),
            "recursive": round(r[-1] / r[0], 2),
        },
        "last_lead_mimo_better": bool(m[-1] < r[-1]),
        "params": {"mimo_vp": n_params(mimo), "recursive": n_params(rec)},
        "fit_seconds": {"mimo_vp": round(fit_m, 1), "recursive": round(fit_r, 1)},
        "epochs_run": {"mimo_vp": rep_m.epochs, "recursive": rep_r.epochs},
        "device": rep_m.device,
        "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in common.items()},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
