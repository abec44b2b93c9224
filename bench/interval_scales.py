"""Prediction intervals per series on feeds whose series differ in scale: one default backtest per file.

Each file is read in the wide layout (every numeric column a series, served by one model; `window_norm:
auto` then picks `standard` where the series' step sizes differ enough). Prints JSON: per file,
series and level the coverage, the median and mean width and the mean Winkler score of the
intervals on every scored forecast, beside the series' MAE. A band that covers at the nominal rate
while being many times wider than the series' errors shows here as a mean width and Winkler score
far above the median width.

``--scenarios`` adds built-in drift scenarios made unlike: series ``i`` multiplied by
``--scale-step`` to the power ``i``, one run per seed. Their labelled events are known, so each
also gets the same scores over the forecasts issued in the ``AFTER`` steps from each event's start.

    python bench/interval_scales.py --feeds sb_jun.csv wide.csv --out bench/results/interval_scales.json
    python bench/interval_scales.py --scenarios level_shift trend variance --seeds 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from output import emit

from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config
from adaptcast.streams.scenarios import make_scenario

AFTER = 100  # issue times after an event's start scored apart (as bench/intervals.py)


def per_series(fc: pl.DataFrame, levels: list[str]) -> dict[str, dict[str, Any]]:
    """Per series: its MAE and, per level, coverage, median and mean width and mean Winkler score."""
    fc = fc.drop_nulls("y").filter(*(pl.col(f"lo_{lv}").is_not_nan() for lv in levels))  # bounded
    y = pl.col("y")
    rows = []
    for lv in levels:
        a = 1.0 - float(lv) / 100
        lo, hi = pl.col(f"lo_{lv}"), pl.col(f"hi_{lv}")
        rows.append(
            fc.group_by("series").agg(
                pl.lit(lv).alias("level"),
                ((y >= lo) & (y <= hi)).mean().alias("coverage"),
                (hi - lo).median().alias("median_width"),
                (hi - lo).mean().alias("mean_width"),
                ((hi - lo) + (2 / a) * ((lo - y).clip(0) + (y - hi).clip(0))).mean().alias("winkler"),
                (pl.col("yhat") - y).abs().mean().alias("mae"),
            )
        )
    out: dict[str, dict[str, Any]] = {}
    for row in pl.concat(rows).sort("series", "level").iter_rows(named=True):
        entry = out.setdefault(row["series"], {"mae": row["mae"], "levels": {}})
        entry["levels"][row["level"]] = {
            k: row[k] for k in ("coverage", "median_width", "mean_width", "winkler")
        }
    return out


def run(path: Path, events: list[datetime] | None = None) -> dict[str, Any]:
    """One default backtest of ``path``, every numeric column a series, and its intervals per series
    (also over the forecasts issued in the ``AFTER`` hourly steps from each of ``events``)."""
    cfg = load_config(
        overrides={"backtest": {"data": str(path), "series_cols": ["*"]}},
        environ={},
    )
    fc = backtest(cfg, report=False, progress=False).forecasts
    levels = [c.removeprefix("lo_") for c in fc.columns if c.startswith("lo_")]
    out: dict[str, Any] = {"file": path.name, "series": per_series(fc, levels)}
    if events:
        issued = pl.col("issued_at")
        after = pl.any_horizontal(issued.is_between(t, t + timedelta(hours=AFTER - 1)) for t in events)
        out["after_event"] = per_series(fc.filter(after), levels)
    return out


def scaled_scenario(
    name: str, seed: int, steps: int, step: float, directory: Path
) -> tuple[Path, list[datetime]]:
    """Scenario ``name`` (seed ``seed``, ``steps`` long) in the wide layout with series ``i`` times
    ``step**i``, written under ``directory``, and its events' start times."""
    sc = make_scenario(name, seed=seed, steps=steps)
    frame = sc.frame.with_columns(
        pl.col("y") * step ** pl.col("series").rank("dense").sub(1).cast(pl.Float64)
    )
    path = directory / f"{name}_{seed}.csv"
    frame.pivot(on="series", index="ts", values="y").sort("ts").write_csv(path)
    return path, [ev.start for ev in sc.events]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", nargs="*", type=Path, default=[], help="wide CSV/Parquet files")
    ap.add_argument("--scenarios", nargs="*", default=[], help="built-in scenarios, made unlike")
    ap.add_argument("--seeds", type=int, default=3, help="runs per scenario")
    ap.add_argument("--steps", type=int, default=1344, help="scenario length (as bench/intervals.py)")
    ap.add_argument("--scale-step", type=float, default=100.0, help="series i is multiplied by this**i")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if not args.feeds and not args.scenarios:
        ap.error("give --feeds, --scenarios or both")
    result: dict[str, Any] = {"feeds": [run(p) for p in args.feeds]}
    with tempfile.TemporaryDirectory() as tmp:
        result["scenarios"] = [
            {"scenario": name, "seed": seed, "scale_step": args.scale_step, **run(*made)}
            for name in args.scenarios
            for seed in range(args.seeds)
            for made in [scaled_scenario(name, seed, args.steps, args.scale_step, Path(tmp))]
        ]
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
