"""Error against compute for the adaptation policies, on every scenario type and ETTh1.

For each dataset and model: periodic (full window), periodic + Variance Horizon, drift (full),
drift + VH, each with the error memory off and on — replayed through the same loop as
``adaptcast backtest``. Prints one table and a JSON summary with the issue's target checks;
compute is training CPU seconds measured in this process.

    python bench/adaptation.py                       # everything (tens of minutes on 2 cores)
    python bench/adaptation.py --datasets level_shift --models arnet --steps 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adaptcast.streams.backtest import run_config  # noqa: E402
from adaptcast.streams.config import load_config  # noqa: E402
from adaptcast.streams.feed import load_feed, time_batches  # noqa: E402
from adaptcast.streams.scenarios import SCENARIOS  # noqa: E402

ETT = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
CONFIGS = {
    "periodic": ("periodic:{every}", "full"),
    "periodic+vh": ("periodic:{every}", "vh"),
    "drift": ("drift", "full"),
    "drift+vh": ("drift", "vh"),
}


def dataset(name: str, steps: int, series: int, seed: int, ett_steps: int):
    if name == "etth1":
        cfg = {"backtest": {"data": str(ETT), "limit": ett_steps}, "model": {"target": "OT"}}
    else:
        cfg = {"scenario": {"name": name, "series": series, "steps": steps, "seed": seed}}
    return load_feed(load_config(overrides=cfg, environ={}))


def run(args: argparse.Namespace) -> dict:
    rows = []
    for ds in args.datasets:
        data = dataset(ds, args.steps, args.series, args.seed, args.ett_steps)
        batches = time_batches(data)
        for model in args.models:
            for cname, (policy, window) in CONFIGS.items():
                for memory in (False, True):
                    cfg = load_config(
                        overrides={
                            "model": {
                                "kind": model,
                                "target": data.targets[0],
                                "lookback": args.lookback,
                                "horizon": args.horizon,
                                "seed": args.seed,
                                "params": json.loads(args.params) if args.params else {},
                            },
                            "adaptation": {
                                "policy": policy.format(every=args.every),
                                "window": window,
                                "memory": memory,
                                "min_train_rows": args.warmup,
                                "history": 100_000,
                            },
                        },
                        environ={},
                    )
                    t0 = time.perf_counter()
                    s = run_config(data, cfg, batches, progress=False)[0].summary
                    abrupt = [
                        e["mae_after_50"]
                        for e in s["events"]
                        if e["mae_after_50"] is not None and e["kind"] != "trend"
                    ]
                    rows.append(
                        {
                            "dataset": ds,
                            "model": model,
                            "config": cname,
                            "memory": memory,
                            "mae": s["mae"],
                            "train_seconds": s["train_seconds"],
                            "train_samples": s["train_samples"],
                            "n_retrains": s["n_retrains"],
                            "error_x_compute": s["error_x_compute"],
                            "mae_after_events": sum(abrupt) / len(abrupt) if abrupt else None,
                            "detection_delays": [e["detection_delay_steps"] for e in s["events"]],
                            "wall_seconds": time.perf_counter() - t0,
                        }
                    )
                    r = rows[-1]
                    print(
                        f"{ds:<13} {model:<8} {cname:<12} mem={'on ' if memory else 'off'} "
                        f"MAE {r['mae']:.4f} train {r['train_seconds']:.1f}s retrains {r['n_retrains']}",
                        file=sys.stderr,
                        flush=True,
                    )
    return {"rows": rows, "checks": checks(rows), "args": vars(args)}


def _get(rows, **key):
    return next(r for r in rows if all(r[k] == v for k, v in key.items()))


def checks(rows: list[dict]) -> list[dict]:
    """The issue's four targets, per dataset and model."""
    out = []
    for ds in sorted({r["dataset"] for r in rows}):
        for model in sorted({r["model"] for r in rows if r["dataset"] == ds}):
            sub = [r for r in rows if r["dataset"] == ds and r["model"] == model]
            out.extend({"dataset": ds, "model": model, **c} for c in _checks(sub))
    return out


def _on_off(flag: bool) -> str:
    return "on" if flag else "off"


def _checks(sub: list[dict]) -> Iterator[dict]:
    """The checks over the rows of one dataset and model."""
    for trigger in ("periodic", "drift"):
        for mem in (False, True):
            full, vh = _get(sub, config=trigger, memory=mem), _get(sub, config=f"{trigger}+vh", memory=mem)
            yield _saves_compute(f"vh vs full ({trigger}, memory {_on_off(mem)})", full, vh, 0.5, 1.15)
    for window in ("", "+vh"):
        for mem in (False, True):
            per, dr = (
                _get(sub, config=f"periodic{window}", memory=mem),
                _get(sub, config=f"drift{window}", memory=mem),
            )
            check = f"drift vs periodic (window {window or 'full'}, memory {_on_off(mem)})"
            yield _saves_compute(check, per, dr, 0.8, 1.02)
    for cname in CONFIGS:
        off, on = _get(sub, config=cname, memory=False), _get(sub, config=cname, memory=True)
        ev = None
        if off["mae_after_events"] and on["mae_after_events"] is not None:
            ev = 1 - on["mae_after_events"] / off["mae_after_events"]
        ratio = on["mae"] / off["mae"]
        yield {
            "check": f"memory on vs off ({cname})",
            "event_mae_reduction": ev,
            "mae_ratio": ratio,
            "met": (ev is None or ev >= 0.25) and ratio <= 1.02,
        }
    best = min(sub, key=lambda r: r["error_x_compute"])
    yield {
        "check": "drift+vh+memory has the lowest error_x_compute",
        "best": f"{best['config']} memory={_on_off(best['memory'])}",
        "met": best["config"] == "drift+vh" and best["memory"],
    }


def _saves_compute(check: str, base: dict, cand: dict, min_saved: float, max_ratio: float) -> dict:
    """``cand`` vs ``base``: met when it saves ``min_saved`` of the train seconds within ``max_ratio`` MAE."""
    saved = 1 - cand["train_seconds"] / base["train_seconds"] if base["train_seconds"] else None
    ratio = cand["mae"] / base["mae"]
    return {
        "check": check,
        "compute_saved": saved,
        "mae_ratio": ratio,
        "met": saved is not None and saved >= min_saved and ratio <= max_ratio,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| dataset | model | config | memory | MAE | MAE after events | train s | retrains | MAE × train s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ev = "–" if r["mae_after_events"] is None else f"{r['mae_after_events']:.3f}"
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['config']} | {'on' if r['memory'] else 'off'} "
            f"| {r['mae']:.4f} | {ev} | {r['train_seconds']:.1f} | {r['n_retrains']} "
            f"| {r['error_x_compute']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--datasets", nargs="+", default=[*[n for n in SCENARIOS if n != "stationary"], "stationary", "etth1"]
    )
    ap.add_argument("--models", nargs="+", default=["arnet", "xgboost"])
    ap.add_argument("--steps", type=int, default=24 * 7 * 6)
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument("--ett-steps", type=int, default=3000)
    ap.add_argument(
        "--warmup",
        type=int,
        default=336,
        help="rows of history before the first model is trained (two weeks hourly)",
    )
    ap.add_argument("--every", type=int, default=24, help="periodic cadence in steps")
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", help="model hyper-parameters as JSON")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "adaptation.json")
    args = ap.parse_args()
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))
    print(table(result["rows"]))
    print(
        json.dumps(
            {
                "checks_met": sum(c["met"] for c in result["checks"]),
                "checks": len(result["checks"]),
                "failed": [c for c in result["checks"] if not c["met"]],
            },
            indent=1,
            default=str,
        )
    )


if __name__ == "__main__":
    main()
