"""Prediction intervals per series on feeds whose series differ in scale: one default backtest per file.

Each file is read in the wide layout (every numeric column a series, served by one model; `window_norm:
auto` then picks `standard` where the series' step sizes differ enough). Prints JSON: per file,
series and level the coverage, the median and mean width and the mean Winkler score of the
intervals on every scored forecast, beside the series' MAE. A band that
covers at the nominal rate while being many times wider than the series' errors shows here as a mean
width and Winkler score far above the median width.

    python bench/interval_scales.py --feeds sb_jun.csv wide.csv --out bench/results/interval_scales.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import polars as pl
from output import emit

from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config


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


def run(path: Path) -> dict[str, Any]:
    """One default backtest of ``path``, every numeric column a series, and its intervals per series."""
    cfg = load_config(
        overrides={"backtest": {"data": str(path), "series_cols": ["*"]}},
        environ={},
    )
    res = backtest(cfg, report=False, progress=False)
    levels = [c.removeprefix("lo_") for c in res.forecasts.columns if c.startswith("lo_")]
    return {"file": path.name, "series": per_series(res.forecasts, levels)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", nargs="+", type=Path, required=True, help="wide CSV/Parquet files")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    emit({"feeds": [run(p) for p in args.feeds]}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
