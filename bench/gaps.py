"""Backtest error on ETTh1 with 5 % of the rows missing, against the same rows with none missing.

Rows are dropped either one by one at random or in runs of 1–12 hours; the loop puts every series
on its time grid, fills gaps up to ``grid.max_fill`` points and restarts the window after longer
ones. AR-Net with the default configuration (linear fill), and for comparison with the last value
repeated and with a restart on every gap; each pattern for several seeds. Each gappy run is
compared with the full run on the points it scored, and on those whose input window held filled
points. Prints JSON.

    python bench/gaps.py                      # 4000 rows, 3 seeds (about ten minutes on 2 cores)
    python bench/gaps.py --rows 2000 --seeds 1
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from adaptcast.forecast.data import SeriesFrame, read_series
from adaptcast.streams.backtest import BacktestResult, backtest
from adaptcast.streams.config import Config, deep_merge, load_config

ETT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ett" / "ETTh1.csv"
DROP = 0.05
LONGEST_RUN = 12


def isolated(n: int, rng: np.random.Generator) -> set[int]:
    """``DROP`` of the rows, each chosen at random (neighbours may happen to fall together)."""
    return set(rng.choice(n, size=round(DROP * n), replace=False).tolist())


def runs(n: int, rng: np.random.Generator) -> set[int]:
    """``DROP`` of the rows in separate runs of 1–12 consecutive rows at random places."""
    dropped: set[int] = set()
    target = round(DROP * n)
    while len(dropped) < target:
        length = min(int(rng.integers(1, LONGEST_RUN + 1)), target - len(dropped))
        start = int(rng.integers(1, n - length))
        if not dropped & set(range(start - 1, start + length + 1)):  # runs never merge
            dropped |= set(range(start, start + length))
    return dropped


PATTERNS = {"isolated": isolated, "runs": runs}
POLICIES = {"linear (default)": {}, "last": {"fill": "last"}, "restart on every gap": {"max_fill": 0}}


def scored(result: BacktestResult) -> pl.DataFrame:
    return result.forecasts.drop_nulls("y").select("issued_at", "step", "y", "yhat")


def mae(frame: pl.DataFrame, forecast: str) -> float | None:
    return float((frame["y"] - frame[forecast]).abs().mean()) if frame.height else None


def gappy_run(data: SeriesFrame, cfg: Config, dropped: set[int], full: pl.DataFrame) -> dict[str, Any]:
    """A backtest without the ``dropped`` rows, against the full run on the very points it scored."""
    keep = pl.Series([i not in dropped for i in range(data.frame.height)])
    res = backtest(cfg, data=replace(data, frame=data.frame.filter(keep)), report=False, progress=False)
    summary = next(iter(res.summary["configs"].values()))
    both = scored(res).join(full, on=["issued_at", "step"], suffix="_full")
    # a forecast read filled points when a dropped row lies in the lookback window ending at its issue time
    gone = np.concatenate([[0], np.cumsum([i in dropped for i in range(data.frame.height)])])
    row = {t: i for i, t in enumerate(data.frame["ts"].to_list())}
    lookback = cfg.model.lookback
    read_filled = pl.Series(
        [gone[row[t] + 1] > gone[max(0, row[t] + 1 - lookback)] for t in both["issued_at"].to_list()],
        dtype=pl.Boolean,
    )
    after_fill = both.filter(read_filled)
    return {
        "dropped": len(dropped),
        "filled_steps": summary["filled_steps"],
        "series_resets": summary["series_resets"],
        "n_scored": summary["n_scored"],
        "mae": summary["mae"],
        "mae_full_same_points": mae(both, "yhat_full"),
        "n_scored_after_fill": after_fill.height,
        "mae_after_fill": mae(after_fill, "yhat"),
        "mae_full_after_fill": mae(after_fill, "yhat_full"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    data = read_series(ETT, ["OT"]).head(args.rows)
    cfg = load_config(overrides={"model": {"kind": "arnet", "target": "OT"}}, environ={})
    full = backtest(cfg, data=data, report=False, progress=False)
    full_summary = next(iter(full.summary["configs"].values()))
    out: dict[str, Any] = {
        "data": f"ETTh1 OT, first {args.rows} rows",
        "model": "arnet, default configuration",
        "grid": cfg.grid.model_dump() | {"max_fill_effective": cfg.grid.rules(cfg.model.lookback).max_fill},
        "drop_fraction": DROP,
        "no_drops": {"mae": full_summary["mae"], "n_scored": full_summary["n_scored"]},
    }
    full_scored = scored(full)
    for name, pattern in PATTERNS.items():
        drops = [pattern(data.frame.height, np.random.default_rng(seed)) for seed in range(args.seeds)]
        out[name] = {}
        for policy, grid in POLICIES.items():
            variant = load_config(overrides=deep_merge(cfg.model_dump(), {"grid": grid}), environ={})
            per_seed = [
                {"seed": seed, **gappy_run(data, variant, dropped, full_scored)}
                for seed, dropped in enumerate(drops)
            ]
            values = {k: [r[k] for r in per_seed if r[k] is not None] for k in per_seed[0] if k != "seed"}
            out[name][policy] = {
                "mean": {k: float(np.mean(v)) if v else None for k, v in values.items()},
                "seeds": per_seed,
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
