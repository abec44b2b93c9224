"""Interval coverage and width per drift scenario: adaptive conformal (the loop's) vs static split conformal.

Each scenario and seed is backtested once with the default configuration (drift policy, error
memory, ``intervals.method``); the static baseline is split conformal around the same forecasts,
fitted once near the start and never updated: per series, lead and target, the
``⌈level·(n+1)⌉``-th smallest absolute error over ``--calibration`` forecast times that follow a
``--skip`` warm-up (the first fits see little data) and end before the first labelled event.
Both are scored on the forecasts issued after that slice, in three parts: the long run; the
stationary part (truths before the first event); and, per event, the forecasts its series issue in
the ``AFTER`` steps from its start (issue time: a forecast issued before a change could not have
known of it, whatever the method). Prints JSON: every seed's numbers, then per scenario, part and
level the means over seeds with 95 % t-intervals, paired adaptive − static differences, and the
issue's targets as met / not met.

    python bench/intervals.py                         # naive, every single-event scenario x 5 seeds
    python bench/intervals.py --model arnet --params '{"epochs": 2}' --out bench/results/intervals_arnet.json
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from adaptation_stats import mean_ci, paired

from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config

AFTER = 100  # issue times after an event over which coverage is compared
KEYS = ["series", "step", "target"]
SCENARIOS = ["stationary", "level_shift", "trend", "variance", "seasonality", "link_failure"]
TOLERANCE = 0.02  # long-run coverage within this of nominal
WIDTH_BOUND = 1.25  # stationary width at most this times the static one
METHODS = {"adaptive": ("lo", "hi"), "static": ("slo", "shi")}


def forecasts(
    scenario: str,
    seed: int,
    model: str,
    steps: int,
    series: int,
    params: dict[str, Any] | None = None,
    intervals: dict[str, Any] | None = None,
) -> tuple[pl.DataFrame, list]:
    """Scored forecasts of one default-configuration backtest, and the scenario's labelled events;
    ``params`` are the model kind's own hyper-parameters (``model.params``), ``intervals`` overrides
    the ``intervals`` section."""
    cfg = load_config(
        overrides={
            "model": {"kind": model, "seed": seed, "params": params or {}},
            "scenario": {"name": scenario, "seed": seed, "steps": steps, "series": series},
            "backtest": {"timings": False},
            "intervals": intervals or {},
        },
        environ={},
    )
    res = backtest(cfg, report=False, progress=False)
    return res.forecasts.drop_nulls("y"), res.summary["labelled_events"]


def static_bounds(
    fc: pl.DataFrame, levels: list[str], calibration: int, skip: int, events: list[dict[str, Any]]
) -> tuple[pl.DataFrame, tuple[datetime, datetime]]:
    """``fc`` after the static baseline's calibration slice, with split-conformal bounds fitted on that
    slice (``slo_<level>``, ``shi_<level>``), and the slice's first and last issue times.

    The slice is ``calibration`` issue times after the first ``skip``, moved earlier (into the
    warm-up) where the first labelled event would otherwise fall inside it.
    """
    times = fc["issued_at"].unique().sort()
    stop = skip + calibration
    if events:
        first = min(datetime.fromisoformat(ev["start"]) for ev in events)
        stop = min(stop, int((times < first).sum()))
    if stop < calibration:
        raise ValueError(
            f"only {stop} forecast times before the first event, fewer than --calibration {calibration}"
        )
    begin, end = times[stop - calibration], times[stop - 1]
    calib = fc.filter(pl.col("issued_at").is_between(begin, end)).with_columns(
        e=(pl.col("y") - pl.col("yhat")).abs()
    )
    # the ceil(level (n + 1))-th smallest of n errors, n = calibration forecasts per series and lead
    q = {lv: min(1.0, float(lv) / 100 * (calibration + 1) / calibration) for lv in levels}
    half = calib.group_by(KEYS).agg(pl.col("e").quantile(q[lv], "higher").alias(f"q_{lv}") for lv in levels)
    out = fc.filter(pl.col("issued_at") > end).join(half, on=KEYS)
    bounds = [
        (pl.col("yhat") + sign * pl.col(f"q_{lv}")).alias(f"{side}_{lv}")
        for lv in levels
        for side, sign in (("slo", -1), ("shi", 1))
    ]
    return out.with_columns(bounds), (begin, end)


def scores(fc: pl.DataFrame, levels: list[str]) -> dict[str, dict[str, float | None]]:
    """Coverage, its distance from nominal ``|coverage − level|``, mean width and mean Winkler score per
    level, adaptive (``lo``/``hi``) and static (``slo``/``shi``), on the rows where both have a bound.
    The distance shows when a method covers more than the other only by covering more than asked."""
    out: dict[str, dict[str, float | None]] = {}
    for lv in levels:
        a = 1.0 - float(lv) / 100
        f = fc.filter(pl.col(f"lo_{lv}").is_not_nan() & pl.col(f"slo_{lv}").is_not_nan())
        row: dict[str, float | None] = {}
        for name, (lo_, hi_) in METHODS.items():
            lo, hi, y = pl.col(f"{lo_}_{lv}"), pl.col(f"{hi_}_{lv}"), pl.col("y")
            outside = (lo - y).clip(lower_bound=0) + (y - hi).clip(lower_bound=0)
            got = f.select(
                ((y >= lo) & (y <= hi)).mean().alias("coverage"),
                (hi - lo).mean().alias("width"),
                ((hi - lo) + (2.0 / a) * outside).mean().alias("winkler"),
            )
            for key in ("coverage", "width", "winkler"):
                row[f"{name}_{key}"] = got[key][0] if f.height else None
            cov = row[f"{name}_coverage"]
            row[f"{name}_distance"] = None if cov is None else abs(cov - float(lv) / 100)
        out[lv] = row
    return out


def parts(fc: pl.DataFrame, events: list[dict[str, Any]]) -> dict[str, pl.DataFrame]:
    """The long run, the stationary part (truths before the first event) and, pooled over events, the
    forecasts each event's series issue in the ``AFTER`` issue times from its start."""
    if not events:
        return {"long_run": fc, "stationary": fc, "after_event": fc.clear()}
    starts = [datetime.fromisoformat(ev["start"]) for ev in events]
    after = []
    for ev, start in zip(events, starts, strict=True):
        rows = fc.filter(pl.col("series").is_in(ev["series"]) & (pl.col("issued_at") >= start))
        stamps = rows["issued_at"].unique().sort()
        if len(stamps):
            after.append(rows.filter(pl.col("issued_at") <= stamps[min(AFTER, len(stamps)) - 1]))
    return {
        "long_run": fc,
        "stationary": fc.filter(pl.col("ts") < min(starts)),
        "after_event": pl.concat(after) if after else fc.clear(),
    }


def run_one(
    scenario: str, seed: int, args: argparse.Namespace, levels: list[str]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Scores per part and level of one scenario and seed."""
    fc, events = forecasts(scenario, seed, args.model, args.steps, args.series, args.params, args.intervals)
    fc, _ = static_bounds(fc, levels, args.calibration, args.skip, events)
    return {part: scores(rows, levels) for part, rows in parts(fc, events).items()}


def summarise(runs: dict[int, dict[str, Any]], levels: list[str]) -> dict[str, Any]:
    """Per part and level: each metric's mean over seeds with its 95 % t-interval; the paired
    adaptive − static differences of coverage, distance from nominal and Winkler score, and the
    adaptive / static width ratio."""
    out: dict[str, Any] = {}
    first = next(iter(runs.values()))
    for part in first:
        out[part] = {}
        for lv in levels:
            col = {key: {s: r[part][lv][key] for s, r in runs.items()} for key in first[part][lv]}
            row: dict[str, Any] = {key: mean_ci(list(v.values())) for key, v in col.items()}
            row["coverage_diff"] = paired(col["adaptive_coverage"], col["static_coverage"], "diff")
            row["distance_diff"] = paired(col["adaptive_distance"], col["static_distance"], "diff")
            row["winkler_diff"] = paired(col["adaptive_winkler"], col["static_winkler"], "diff")
            row["width_ratio"] = paired(col["adaptive_width"], col["static_width"], "ratio")
            out[part][lv] = row
    return out


def targets(summary: dict[str, Any], levels: list[str], has_events: bool) -> dict[str, Any]:
    """The issue's targets on the means over seeds: long-run coverage within ``TOLERANCE`` of nominal,
    stationary width at most ``WIDTH_BOUND`` x static, and after an event coverage above the static
    baseline's (``met`` only where the paired 95 % interval of the difference lies above 0)."""
    out: dict[str, Any] = {}
    for lv in levels:
        nominal = float(lv) / 100
        cov = summary["long_run"][lv]["adaptive_coverage"]
        ratio = summary["stationary"][lv]["width_ratio"]
        row: dict[str, Any] = {
            "long_run_coverage": _verdict(cov is not None and abs(cov["mean"] - nominal) <= TOLERANCE),
            "stationary_width": _verdict(ratio is not None and ratio["mean"] <= WIDTH_BOUND),
        }
        diff = summary["after_event"][lv]["coverage_diff"]
        if has_events:
            low = None if diff is None else diff["low"]
            row["after_event_coverage"] = _verdict(low is not None and low > 0)
        out[lv] = row
    return out


def _verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def markdown(result: dict[str, Any]) -> str:
    """The docs table of a result: per scenario and level, means over seeds with 95 % intervals."""

    def ci(row: dict[str, Any], key: str, digits: int = 3) -> str:
        v = row.get(key)
        if v is None:
            return "–"
        if v["low"] is None:
            return f"{v['mean']:.{digits}f}"
        return f"{v['mean']:.{digits}f} [{v['low']:.{digits}f}, {v['high']:.{digits}f}]"

    lines = [
        "| scenario | level | long-run coverage, adaptive | static | after-event coverage, adaptive | static "
        "| difference | after-event \\|coverage − level\\|, adaptive | static "
        "| after-event Winkler, adaptive | static | stationary width ratio | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, sc in result["scenarios"].items():
        for lv, goal in sc["targets"].items():
            long, after = sc["summary"]["long_run"][lv], sc["summary"]["after_event"][lv]
            ratio = sc["summary"]["stationary"][lv]
            verdicts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in goal.items())
            lines.append(
                f"| {name} | {lv} % | {ci(long, 'adaptive_coverage')} | {ci(long, 'static_coverage')} "
                f"| {ci(after, 'adaptive_coverage')} | {ci(after, 'static_coverage')} "
                f"| {ci(after, 'coverage_diff')} | {ci(after, 'adaptive_distance')} "
                f"| {ci(after, 'static_distance')} | {ci(after, 'adaptive_winkler', 2)} "
                f"| {ci(after, 'static_winkler', 2)} | {ci(ratio, 'width_ratio', 2)} | {verdicts} |"
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="naive")
    ap.add_argument("--params", type=json.loads, default={}, help="model.params as JSON: '{\"epochs\": 2}'")
    ap.add_argument(
        "--intervals", type=json.loads, default={}, help="overrides of the intervals section as JSON"
    )
    ap.add_argument("--scenarios", nargs="*", default=SCENARIOS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=24 * 7 * 8)
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument("--skip", type=int, default=200, help="forecast times before the static calibration")
    ap.add_argument(
        "--calibration", type=int, default=200, help="forecast times the static baseline is fitted on"
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--table", type=Path, help="print the markdown table of a saved result and exit")
    args = ap.parse_args()
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    cfg = load_config(overrides={"intervals": args.intervals}, environ={}).intervals
    levels = [f"{lv * 100:g}" for lv in cfg.levels]
    result: dict[str, Any] = {
        "model": args.model,
        "params": args.params,
        "intervals": cfg.model_dump(),
        "seeds": args.seeds,
        "steps": args.steps,
        "series": args.series,
        "skip": args.skip,
        "calibration": args.calibration,
        "after": AFTER,
        "scenarios": {},
    }
    for scenario in args.scenarios:
        runs = {seed: run_one(scenario, seed, args, levels) for seed in range(args.seeds)}
        summary = summarise(runs, levels)
        result["scenarios"][scenario] = {
            "targets": targets(summary, levels, scenario != "stationary"),
            "summary": summary,
            "seeds": runs,
        }
        if args.out:  # after every scenario, so that a stopped run keeps what it finished
            args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{scenario}: done", flush=True, file=sys.stderr)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
