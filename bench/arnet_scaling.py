"""AR-Net fit time vs lookback p against least squares on the same data; prints JSON with growth exponents.

The AR-Net paper's claim: SGD fitting grows linearly in p, least squares quadratically (or
worse). Both fit one-step-ahead AR(p) models on the same windows of a synthetic AR(3)
process; AR-Net runs a fixed number of epochs (no early stopping) so every p does equal
work. The exponent is the slope of log(seconds) against log(p). Usage:
    python bench/arnet_scaling.py [--samples 20000] [--epochs 5] [--lookbacks 16 64 256 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

# One BLAS thread: least squares is timed as single-threaded as AR-Net (torch_threads=1), and a
# multi-threaded BLAS on a shared 2-core box measures contention, not the algorithm.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from adaptcast.forecast import create_forecaster  # noqa: E402

TRUE = np.array([0.5, -0.3, 0.2])


def ar3(n: int, seed: int) -> np.ndarray:
    """A stationary AR(3) series with unit Gaussian noise."""
    rng = np.random.default_rng(seed)
    y, e = np.zeros(n + 500), rng.standard_normal(n + 500)
    for t in range(3, n + 500):
        y[t] = TRUE @ y[t - 3 : t][::-1] + e[t]
    return y[500:].astype(np.float32)


def least_squares_seconds(X: np.ndarray, Y: np.ndarray) -> tuple[float, np.ndarray]:
    """Time of an OLS AR fit with intercept (numpy lstsq) on the window matrix."""
    t0 = time.perf_counter()
    A = np.c_[X[:, ::-1, 0], np.ones(len(X), dtype=np.float32)]
    coef = np.linalg.lstsq(A, Y[:, 0, 0], rcond=None)[0][:-1]
    return time.perf_counter() - t0, coef


def exponent(ps: list[int], seconds: list[float]) -> float:
    return float(np.polyfit(np.log(ps), np.log(seconds), 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--lookbacks", type=int, nargs="+", default=[16, 64, 256, 1024])
    args = ap.parse_args()
    y = ar3(args.samples + max(args.lookbacks), seed=0)
    rows = []
    for p in args.lookbacks:
        w = sliding_window_view(y, p + 1)[-args.samples :]
        X, Y = np.ascontiguousarray(w[:, :p, None]), np.ascontiguousarray(w[:, p:, None])
        ls_s, ls_coef = least_squares_seconds(X, Y)
        model = create_forecaster(
            "arnet",
            lookback=p,
            horizon=1,
            epochs=args.epochs,
            patience=args.epochs,
            accelerator="cpu",
            num_threads=1,
        )
        report = model.fit(X, Y)
        coef = model.coefficients()[0]
        rows.append(
            {
                "p": p,
                "arnet_seconds": round(report.wall_seconds, 3),
                "arnet_seconds_per_epoch": round(report.wall_seconds / report.epochs, 4),
                "least_squares_seconds": round(ls_s, 4),
                "arnet_true_lag_error": round(float(np.abs(coef[:3] - TRUE).max()), 4),
                "least_squares_true_lag_error": round(float(np.abs(ls_coef[:3] - TRUE).max()), 4),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    ps = [r["p"] for r in rows]
    print(
        json.dumps(
            {
                "bench": "arnet_scaling",
                "samples": args.samples,
                "epochs": args.epochs,
                "device": "cpu",
                "torch_threads": 1,
                "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
                "machine": platform.machine(),
                "cpus": os.cpu_count(),
                "rows": rows,
                "arnet_exponent": round(exponent(ps, [r["arnet_seconds"] for r in rows]), 3),
                "least_squares_exponent": round(exponent(ps, [r["least_squares_seconds"] for r in rows]), 3),
                "arnet_exponent_large_p": round(
                    exponent(ps[-2:], [r["arnet_seconds"] for r in rows[-2:]]), 3
                ),
                "least_squares_exponent_large_p": round(
                    exponent(ps[-2:], [r["least_squares_seconds"] for r in rows[-2:]]), 3
                ),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
