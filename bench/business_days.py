"""Weekday feeds on a business-day grid against the daily grid with weekends filled (before 2026-12).

Each feed (PATH:COLUMN of a daily file that skips weekends) is cut into ``--rows``-step slices and
every slice is backtested with the defaults twice in one process: with ``grid.frequency=1d`` (the
daily grid, each weekend a gap of two filled rows: what adaptcast did before business-day grids)
and with the period inferred (business days). A third run puts the business grid at the
lookback covering the same calendar span (``lookback·open days/7``), so the grid and the span a
window sees are told apart. Errors are compared on the forecasts both runs issued at the same time
for the same target time, as leads differ (Friday → Monday is lead 3 on one, lead 1 on the other).
Prints JSON: per slice the matched MAE ratio business ÷ daily, how many of the daily grid's
forecast points fell on closed days (never met by a truth), and the geometric-mean ratio over
slices with its 95 % interval.

    python bench/business_days.py --feeds msft.csv:Close msft.csv:Volume
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from adaptation_stats import paired
from defaults_check import parse_feed, slices
from output import emit
from tqdm import tqdm

from adaptcast.forecast.data import read_series
from adaptcast.streams.backtest import backtest
from adaptcast.streams.config import load_config

DAILY = "1d"


def forecasts(
    path: Path, column: str, offset: int, length: int, lookback: int, frequency: str | None
) -> pl.DataFrame:
    """The defaults' scored forecasts of one slice: issue time, target time, error."""
    data = read_series(path, [column])
    data = replace(data, frame=data.frame.slice(offset, length))
    cfg = load_config(
        overrides={
            "model": {"target": [column], "lookback": lookback},
            "grid": {"frequency": frequency},
            "backtest": {"timings": False},
        },
        environ={},
    )
    with tempfile.TemporaryDirectory() as out:
        backtest(cfg, data=data, out=out, report=False, progress=False)
        fc = pl.read_parquet(Path(out) / "forecasts.parquet")
    return fc.select("issued_at", "ts", err=(pl.col("yhat") - pl.col("y")).abs())


def run_slice(path: Path, column: str, offset: int, length: int, lookback: int) -> dict[str, Any]:
    daily = forecasts(path, column, offset, length, lookback, DAILY)
    business = forecasts(path, column, offset, length, lookback, None)
    span = round(lookback * 5 / 7)
    same_span = forecasts(path, column, offset, length, span, None)

    def matched(other: pl.DataFrame) -> float:
        both = daily.drop_nulls("err").join(other.drop_nulls("err"), on=["issued_at", "ts"], suffix="_b")
        return float(both["err_b"].mean() / both["err"].mean())

    closed = daily.filter(pl.col("ts").dt.weekday() > 5)
    return {
        "feed": f"{path.name}:{column}",
        "offset": offset,
        "rows": length,
        "ratio_same_lookback": matched(business),
        "ratio_same_span": matched(same_span),
        "same_span_lookback": span,
        "daily_points_on_weekends": closed.height,
        "daily_points": daily.height,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--feeds", nargs="+", action="extend", required=True, help="PATH:COLUMN, daily on weekdays"
    )
    ap.add_argument("--rows", type=int, default=3000, help="steps per slice (default 3,000)")
    ap.add_argument("--min-rows", type=int, default=600, help="shorter feeds are left out")
    ap.add_argument("--lookback", type=int, default=48, help="the defaults' model.lookback (48)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    feeds = [parse_feed(s) for s in args.feeds]
    work = [(p, c, o, n) for p, c in feeds for o, n in slices(p, c, args.rows, args.min_rows)]
    if not work:
        raise SystemExit(f"no feed has {args.min_rows} rows or more")
    rows = [run_slice(*w, args.lookback) for w in tqdm(work, desc="slices", unit="slice", file=sys.stderr)]

    def geo(key: str) -> dict[str, float | None] | None:
        return paired(dict(enumerate(r[key] for r in rows)), dict(enumerate(1.0 for _ in rows)), "ratio")

    emit(
        {
            "baseline": f"grid.frequency={DAILY} (weekends filled), defaults otherwise",
            "summary": {
                "slices": len(rows),
                "geomean_ratio_same_lookback": geo("ratio_same_lookback"),
                "geomean_ratio_same_span": geo("ratio_same_span"),
                "daily_share_of_points_on_weekends": sum(r["daily_points_on_weekends"] for r in rows)
                / sum(r["daily_points"] for r in rows),
            },
            "runs": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
