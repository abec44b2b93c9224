"""Link-failure head-to-head: liquid network, incremental MLP, error memory and retraining, one accounting.

Every contender runs through the same serving loop (``run_config``, as ``adaptcast backtest``) on
the same link-failure streams (a 6-node network, three failures, one stream per seed): each link
is a series, forecast ``--horizon`` steps ahead from its own last ``--lookback`` hours. The MLP is
AR-Net with one hidden layer. Compute is the loop's own ledger for all of them: samples seen over
every fit and CPU seconds of training, error memory and detection. Prints JSON (means with 95 %
intervals over seeds, paired ratios to periodic retraining); writes it and a markdown table.

    python bench/adaptation_h2h.py                # 3 seeds, 6 weeks
    python bench/adaptation_h2h.py --quick        # a smoke run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from adaptation import Setup, run_one
from adaptation_stats import mean_ci, paired

from adaptcast.forecast.data import SeriesFrame
from adaptcast.streams.config import load_config
from adaptcast.streams.feed import time_batches
from adaptcast.streams.scenarios import WEEK, make_scenario

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "MLP, periodic:24 retraining"
METRICS = ("mae", "post_event_mae", "samples_seen", "compute_s", "train_s", "memory_s", "detect_s", "n_fits")


def contenders(epochs: int) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """Name → (model kind, model params, adaptation section)."""
    mlp = {"hidden": [64], "epochs": epochs}
    return {
        "liquid network, never retrained": ("lnn", {"epochs": epochs}, {"policy": "never", "memory": False}),
        "MLP, incremental (warm, every 24 on the last week)": (
            "arnet",
            mlp,
            {"policy": "periodic:24", "window": "fixed:168", "refit_mode": "warm", "memory": False},
        ),
        "MLP, error memory only (never retrained)": ("arnet", mlp, {"policy": "never", "memory": True}),
        "MLP, drift-triggered retraining": ("arnet", mlp, {"policy": "drift", "memory": False}),
        "MLP, drift + error memory (the defaults)": ("arnet", mlp, {"policy": "drift", "memory": True}),
        BASELINE: ("arnet", mlp, {"policy": "periodic:24", "memory": False}),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    table = contenders(args.epochs)
    rows = []
    for seed in range(args.seeds):
        sc = make_scenario("link_failures", steps=args.weeks * WEEK, seed=seed)
        data = SeriesFrame("link_failures", sc.frame, [sc.target], 1, [e.to_dict() for e in sc.events])
        batches = time_batches(data)
        for name, (kind, params, adaptation) in table.items():
            cfg = load_config(
                overrides={
                    "model": {
                        "kind": kind,
                        "target": sc.target,
                        "lookback": args.lookback,
                        "horizon": args.horizon,
                        "seed": seed,
                        "params": params,
                    },
                    "adaptation": {"min_train_rows": args.warmup, "history": 100_000, **adaptation},
                },
                environ={},
            )
            setup = Setup(adaptation["policy"], cfg.adaptation.window, cfg.adaptation.memory)
            rows.append({"config": name, "seed": seed} | run_one(data, batches, cfg, setup, 0))
            print(f"seed {seed} {name}: MAE {rows[-1]['mae']:.4f}", file=sys.stderr)

    def seeds(name: str, metric: str) -> dict[int, float | None]:
        return {r["seed"]: r[metric] for r in rows if r["config"] == name}

    summary = {
        name: {m: mean_ci([r[m] for r in rows if r["config"] == name]) for m in METRICS}
        | {
            "mae_ratio": paired(seeds(name, "mae"), seeds(BASELINE, "mae"), "ratio"),
            "post_event_mae_ratio": paired(
                seeds(name, "post_event_mae"), seeds(BASELINE, "post_event_mae"), "ratio"
            ),
            "samples_seen_ratio": paired(
                seeds(name, "samples_seen"), seeds(BASELINE, "samples_seen"), "ratio"
            ),
        }
        for name in table
    }
    return {"args": vars(args), "baseline": BASELINE, "summary": summary, "rows": rows}


def markdown(result: dict[str, Any]) -> str:
    """One table: every contender's error, post-failure error and compute, with CIs over seeds."""

    def fmt(ci: dict | None, spec: str = ".3f") -> str:
        if ci is None:
            return "–"
        if ci["low"] is None:
            return format(ci["mean"], spec)
        return f"{ci['mean']:{spec}} ({ci['low']:{spec}}–{ci['high']:{spec}})"

    lines = [
        "| contender | MAE | MAE / periodic | post-failure MAE | post-failure / periodic | samples seen | "
        "fits | compute CPU s (train + memory + detect) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in result["summary"].items():
        lines.append(
            f"| {name} | {fmt(s['mae'])} | {fmt(s['mae_ratio'])} | {fmt(s['post_event_mae'])} | "
            f"{fmt(s['post_event_mae_ratio'])} | {fmt(s['samples_seen'], '.3g')} | "
            f"{fmt(s['n_fits'], '.1f')} | {fmt(s['compute_s'], '.1f')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 2 seeds, 2 weeks, 1 epoch")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--weeks", type=int, default=6)
    ap.add_argument("--lookback", type=int, default=24)
    ap.add_argument("--horizon", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=336, help="rows before the first model (two weeks)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptation_h2h_linkfail.json")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.weeks, args.epochs, args.warmup = 2, 2, 1, 96
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(
        json.dumps(
            {
                k: {m: v[m] for m in ("mae", "mae_ratio", "samples_seen")}
                for k, v in result["summary"].items()
            },
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
