"""Many series through the serving loop: compute per series of the adaptation stack at ≥ 200 series.

The Variance-Horizon paper ran thousands of sources; this replays a multi-event level-shift stream
of ``--series`` series through the backtest loop (one global AR-Net, the defaults and periodic
retraining) and reports, per configuration, the loop's ledger per phase (training, prediction, error
memory, detection) in total and per series, samples seen, fits and MAE. Prints JSON and writes it.

    python bench/adaptation_scale.py                       # 200 series x 600 steps
    python bench/adaptation_scale.py --series 500 --quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from adaptcast.forecast.data import SeriesFrame
from adaptcast.streams.backtest import run_config
from adaptcast.streams.config import load_config
from adaptcast.streams.feed import time_batches
from adaptcast.streams.scenarios import make_scenario

ROOT = Path(__file__).resolve().parents[1]
PHASES = ("train", "predict", "correct", "detect")
CONFIGS = {
    "defaults (drift, full window, error memory)": {},
    "periodic:96, full window, no memory": {"policy": "periodic:96", "memory": False},
}


def run(args: argparse.Namespace) -> dict[str, Any]:
    sc = make_scenario("level_shifts", series=args.series, steps=args.steps, seed=args.seed)
    data = SeriesFrame("level_shifts", sc.frame, [sc.target], 1, [e.to_dict() for e in sc.events])
    batches = time_batches(data)
    out = {}
    for name, adaptation in CONFIGS.items():
        cfg = load_config(
            overrides={
                "model": {
                    "kind": "arnet",
                    "target": sc.target,
                    "lookback": args.lookback,
                    "horizon": args.horizon,
                    "seed": args.seed,
                    "params": {"epochs": args.epochs},
                },
                "adaptation": {"min_train_rows": args.warmup, "history": 100_000, **adaptation},
            },
            environ={},
        )
        t0 = time.perf_counter()
        result, _ = run_config(data, cfg, batches, progress=False)
        wall = time.perf_counter() - t0
        s, phases = result.summary, result.phases
        cpu = {p: phases.get(p, {}).get("cpu_s", 0.0) for p in PHASES}
        out[name] = {
            "mae": s["mae"],
            "n_fits": s["n_fits"],
            "samples_seen": s["samples_seen"],
            "samples_seen_per_series": s["samples_seen"] / args.series,
            "cpu_s": cpu,
            "cpu_ms_per_series": {p: 1000 * v / args.series for p, v in cpu.items()},
            "cpu_ms_per_series_step": {p: 1e3 * v / (args.series * args.steps) for p, v in cpu.items()},
            "compute_s": result.compute_seconds,
            "compute_ms_per_series": 1000 * result.compute_seconds / args.series,
            "run_wall_s": wall,
            "records": args.series * args.steps,
        }
        print(f"{name}: {wall:.0f} s, MAE {s['mae']:.4f}", file=sys.stderr)
    return {"args": vars(args), "configs": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 240 steps")
    ap.add_argument("--series", type=int, default=200)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--lookback", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=120)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptation_scale.json")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.warmup = 240, 60
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
