"""Interval coverage and width per drift scenario: adaptive conformal (the loop's) vs static split conformal.

Each scenario and seed is backtested once with the default configuration (drift policy, error
memory, ``intervals.method: aci``); the static baseline is split conformal fitted at the start: per
series, lead and target, the ``⌈level·(n+1)⌉``-th smallest absolute error of the first
``--calibration`` forecast times, around the same forecasts, never updated. Both are scored on the
forecasts issued after that: long run; the stationary part (before the first event); and the 100
steps after each event. Prints JSON (means over seeds; ``sd`` is the spread of the seeds' long-run
coverage).

    python bench/intervals.py                         # naive, every scenario x 5 seeds
    python bench/intervals.py --model arnet --params '{"epochs": 2}' --out bench/results/intervals_arnet.json
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config
from adaptcast.streams.scenarios import SCENARIOS

AFTER = 100  # steps after an event over which coverage is compared
KEYS = ["series", "step", "target"]


def forecasts(
    scenario: str, seed: int, model: str, steps: int, series: int, params: dict[str, Any] | None = None
) -> tuple[pl.DataFrame, list]:
    """Scored forecasts of one default-configuration backtest, and the scenario's labelled events;
    ``params`` are the model kind's own hyper-parameters (``model.params``)."""
    cfg = load_config(
        overrides={
            "model": {"kind": model, "seed": seed, "params": params or {}},
            "scenario": {"name": scenario, "seed": seed, "steps": steps, "series": series},
            "backtest": {"timings": False},
        },
        environ={},
    )
    res = backtest(cfg, report=False, progress=False)
    return res.forecasts.drop_nulls("y"), res.summary["labelled_events"]


def static_bounds(fc: pl.DataFrame, levels: list[str], calibration: int) -> tuple[pl.DataFrame, datetime]:
    """``fc`` after its first ``calibration`` forecast times, with split-conformal bounds fitted on
    those times (``slo_<level>``, ``shi_<level>``), and the last calibration time."""
    end = fc["issued_at"].unique().sort()[calibration - 1]
    calib = fc.filter(pl.col("issued_at") <= end).with_columns(e=(pl.col("y") - pl.col("yhat")).abs())
    # the ceil(level (n + 1))-th smallest of n errors, n = calibration forecasts per series and lead
    q = {lv: min(1.0, float(lv) / 100 * (calibration + 1) / calibration) for lv in levels}
    half = calib.group_by(KEYS).agg(pl.col("e").quantile(q[lv], "higher").alias(f"q_{lv}") for lv in levels)
    out = fc.filter(pl.col("issued_at") > end).join(half, on=KEYS)
    bounds = [
        (pl.col("yhat") + sign * pl.col(f"q_{lv}")).alias(f"{side}_{lv}")
        for lv in levels
        for side, sign in (("slo", -1), ("shi", 1))
    ]
    return out.with_columns(bounds), end


def scores(fc: pl.DataFrame, levels: list[str]) -> dict[str, dict[str, float | None]]:
    """Coverage and mean width per level, adaptive (``lo``/``hi``) and static (``slo``/``shi``)."""
    out: dict[str, dict[str, float | None]] = {}
    for lv in levels:
        row: dict[str, float | None] = {}
        for name, (lo, hi) in {"adaptive": ("lo", "hi"), "static": ("slo", "shi")}.items():
            f = fc.filter(pl.col(f"{lo}_{lv}").is_not_nan())
            inside = (pl.col("y") >= pl.col(f"{lo}_{lv}")) & (pl.col("y") <= pl.col(f"{hi}_{lv}"))
            width = pl.col(f"{hi}_{lv}") - pl.col(f"{lo}_{lv}")
            got = f.select(inside.mean().alias("c"), width.mean().alias("w")) if f.height else None
            row[f"{name}_coverage"] = None if got is None else got["c"][0]
            row[f"{name}_width"] = None if got is None else got["w"][0]
        out[lv] = row
    return out


def parts(fc: pl.DataFrame, events: list[dict[str, Any]]) -> dict[str, pl.DataFrame]:
    """The long run, the stationary part (before the first event) and the ``AFTER`` steps after each event."""
    if not events:
        return {"long_run": fc, "stationary": fc, "after_event": fc.clear()}
    starts = [datetime.fromisoformat(ev["start"]) for ev in events]
    after = []
    for ev, start in zip(events, starts, strict=True):
        rows = fc.filter(pl.col("series").is_in(ev["series"]) & (pl.col("ts") >= start))
        stamps = rows["ts"].unique().sort()
        if len(stamps):
            after.append(rows.filter(pl.col("ts") <= stamps[min(AFTER, len(stamps)) - 1]))
    return {
        "long_run": fc,
        "stationary": fc.filter(pl.col("ts") < min(starts)),
        "after_event": pl.concat(after) if after else fc.clear(),
    }


def mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="naive")
    ap.add_argument("--params", type=json.loads, default={}, help="model.params as JSON: '{\"epochs\": 2}'")
    ap.add_argument("--scenarios", nargs="*", default=list(SCENARIOS))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=24 * 7 * 8)
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument(
        "--calibration", type=int, default=200, help="forecast times the static baseline is fitted on"
    )
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    levels = list(load_config(environ={}).intervals.levels)
    names = [f"{lv * 100:g}" for lv in levels]
    result: dict[str, Any] = {
        "model": args.model,
        "params": args.params,
        "seeds": args.seeds,
        "steps": args.steps,
        "series": args.series,
        "calibration": args.calibration,
        "scenarios": {},
    }
    for scenario in args.scenarios:
        runs = []
        for seed in range(args.seeds):
            fc, events = forecasts(scenario, seed, args.model, args.steps, args.series, args.params)
            fc, _ = static_bounds(fc, names, args.calibration)
            runs.append({part: scores(rows, names) for part, rows in parts(fc, events).items()})
        table: dict[str, Any] = {}
        for part in runs[0]:
            table[part] = {
                lv: {key: mean([r[part][lv][key] for r in runs]) for key in runs[0][part][lv]} for lv in names
            }
        for lv in names:
            long_run = [r["long_run"][lv]["adaptive_coverage"] for r in runs]
            table["long_run"][lv]["adaptive_coverage_sd"] = float(np.std(long_run))
        result["scenarios"][scenario] = table
        print(f"{scenario}: done", flush=True, file=sys.stderr)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
