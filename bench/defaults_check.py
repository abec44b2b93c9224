"""Are the defaults safe on your feeds? What a user gets without flags, against periodic retraining.

Each feed (a CSV or Parquet file and one target column) is cut into consecutive slices of
``--rows`` steps, and every slice is backtested twice in one process, as ``adaptcast backtest``
would with no flags and with ``--compare`` of the baseline (``--policy periodic:24 --window full
--memory off``). Prints JSON: per slice the MAE ratio defaults ÷ baseline and the training work
ratio (samples seen), the defaults' MAE before the error memory's correction (``mae_bare``) and the
share of their forecasts the gate served the last value (``persisted``), so a miss can be traced to
the model or to what is served on top of it; then the worst, median and geometric-mean ratio with
its 95 % interval, and how many slices hold the issue's bound (≤ 1.02). The feeds are read where
they lie, never copied.

    python bench/defaults_check.py                              # every ETTh1 channel, 3,000-step slices
    python bench/defaults_check.py --feeds my.csv:load other.parquet:value --rows 2000
    python bench/defaults_check.py --set adaptation.growth=1.5  # the defaults with one key changed
    python bench/defaults_check.py --set model.kind=xgboost --slices 1   # both sides on another model
    python bench/defaults_check.py --set model.kind=xgboost --set model.params.window_norm=last
    python bench/defaults_check.py --set model.kind=xgboost --ours adaptation.refit_mode=auto
    python bench/defaults_check.py --feeds fleet.csv:'*' disks.csv:sda,sdb   # many series, one model

``--set`` changes both sides; ``--ours`` only the defaults', the baseline keeping the default's
value (periodic retraining is cold whatever ``refit_mode`` the defaults are tried with).

A feed ``PATH:*`` (every numeric column) or ``PATH:A,B,...`` is a wide file of several series that
share one model, as ``adaptcast backtest --series-cols`` runs it: each slice is one backtest of all
of them, and each series is a row of the result with its own MAE ratio (the work is the run's).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl
from adaptation_stats import paired
from output import emit
from tqdm import tqdm

from adaptcast.forecast.base import InputError
from adaptcast.forecast.data import SeriesFrame, read_series
from adaptcast.streams.backtest import backtest, compare_items, variant
from adaptcast.streams.config import load_config
from adaptcast.streams.report import series_mae

ROOT = Path(__file__).resolve().parents[1]
ETT = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
ETT_CHANNELS = ("HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT")
BASELINE = "policy=periodic:24,window=full,memory=off"
BOUND = 1.02  # the "defaults are safe" bound on the MAE ratio


def parse_feed(spec: str) -> tuple[Path, str]:
    """``PATH:COLUMN`` → (path, column); the column is what follows the last colon (``*`` or a
    comma-separated list: several series in one run)."""
    path, sep, column = spec.rpartition(":")
    if not sep or not path or not column:
        raise SystemExit(f"--feeds {spec!r}: write PATH:COLUMN, e.g. data/load.csv:value")
    if not Path(path).is_file():
        raise SystemExit(f"--feeds {spec!r}: no file {path}")
    return Path(path), column


def several(column: str) -> list[str] | None:
    """The wide layout's columns when ``column`` names several series (``*``, ``A,B``), else None."""
    return ["*"] if column == "*" else column.split(",") if "," in column else None


def read(path: Path, column: str) -> SeriesFrame:
    """One series (its column the target), or several of a wide file, each read as target ``y``."""
    cols = several(column)
    return read_series(path, [column]) if cols is None else read_series(path, ["y"], series_cols=cols)


def slices(path: Path, column: str, rows: int, min_rows: int) -> list[tuple[int, int]]:
    """(offset, length) of consecutive ``rows``-step slices; a shorter feed is one slice if ≥ ``min_rows``."""
    n = read(path, column).frame["ts"].n_unique()
    if n < min_rows:
        return []
    return [(0, n)] if n < rows else [(o, rows) for o in range(0, n - rows + 1, rows)]


def baseline_spec(cfg: Any, ours: str) -> str:
    """The baseline's overrides: ``BASELINE`` plus, for each key ``ours`` changes on the defaults' side
    only, that key's value in ``cfg`` (so the baseline keeps it). Keys ``BASELINE`` sets stay its."""
    fixed = {key for key, _ in compare_items(BASELINE)}
    values, kept = cfg.model_dump(), []
    for key, _ in compare_items(ours):
        if key in fixed:
            continue
        node: Any = values
        for name in key.split("."):
            if not isinstance(node, dict) or name not in node:
                raise SystemExit(
                    f"--ours: {key} has no value in the configuration for the baseline to keep; "
                    "change it on both sides with --set"
                )
            node = node[name]
        kept.append(f"{key}={json.dumps(node)}")
    return ",".join([BASELINE, *kept])


def run_slice(
    path: Path, column: str, offset: int, length: int, changes: str, ours: str = ""
) -> list[dict[str, Any]]:
    """Backtest one slice with the defaults (``changes``: ``KEY=VALUE,...`` over them on both sides,
    ``ours`` on the defaults' side only) and the baseline; a row per series."""
    data = read(path, column)
    steps = data.frame["ts"].unique().sort().slice(offset, length)
    data = replace(data, frame=data.frame.filter(pl.col("ts").is_between(steps[0], steps[-1])))
    target = data.targets[0]
    cfg = load_config(overrides={"model": {"target": [target]}, "backtest": {"timings": False}}, environ={})
    cfg = variant(cfg, changes) if changes else cfg
    baseline = baseline_spec(cfg, ours)
    cfg = variant(cfg, ours) if ours else cfg
    cfg = cfg.model_copy(update={"backtest": cfg.backtest.model_copy(update={"compare": [baseline]})})
    res = backtest(cfg, data=data, report=False, progress=False)
    (ours, defaults), (theirs, periodic) = res.summary["configs"].items()
    errors = {  # (series, config) → (MAE, MAE before the error memory's correction)
        (name, config): (mae, bare)
        for name, config, mae, bare in series_mae(
            res.scan_forecasts, ["series", "config"], mae="yhat", bare="yhat_base"
        ).iter_rows()
    }
    names = sorted({name for name, _ in errors})
    return [
        {
            "feed": f"{path.name}:{column if several(column) is None else name}",
            "offset": offset,
            "rows": length,
            "series_in_run": len(names),
            "mae": errors[name, ours][0],
            "mae_bare": errors[name, ours][1],  # the defaults' forecasts before the error memory's correction
            # share of the defaults' forecasts the gate served the value at issue (of the whole run)
            "persisted": defaults["n_persisted"] / max(defaults["n_forecasts"], 1),
            "mae_baseline": errors[name, theirs][0],
            "ratio": errors[name, ours][0] / errors[name, theirs][0],
            "work_ratio": defaults["samples_seen"] / max(periodic["samples_seen"], 1),  # of the whole run
            "fits": defaults["n_fits"],
            "fits_baseline": periodic["n_fits"],
        }
        for name in names
    ]


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Worst, median and geometric-mean MAE ratio (with its 95 % interval); slices within the bound."""
    ratios = [r["ratio"] for r in rows]
    geo = paired(
        dict(enumerate(r["mae"] for r in rows)), dict(enumerate(r["mae_baseline"] for r in rows)), "ratio"
    )
    return {
        "slices": len(rows),
        "within_bound": sum(x <= BOUND for x in ratios),
        "bound": BOUND,
        "worst_ratio": max(ratios),
        "median_ratio": statistics.median(ratios),
        "geomean_ratio": geo,
        "median_work_ratio": statistics.median(r["work_ratio"] for r in rows),
        "worst_work_ratio": max(r["work_ratio"] for r in rows),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--feeds", nargs="+", action="extend", help="PATH:COLUMN (default: every ETTh1 channel in ../shared)"
    )
    ap.add_argument("--rows", type=int, default=3000, help="steps per slice (default 3,000)")
    ap.add_argument("--min-rows", type=int, default=600, help="shorter feeds are left out")
    ap.add_argument(
        "--slices", type=int, help="at most this many slices per feed, the first ones (default all)"
    )
    ap.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="dotted config keys to change on both sides (repeatable)",
    )
    ap.add_argument(
        "--ours",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="dotted config keys to change on the defaults' side only; the baseline keeps their "
        "values (repeatable)",
    )
    ap.add_argument("--jobs", type=int, default=2, help="slices backtested at once (processes)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    if args.feeds:
        feeds = [parse_feed(s) for s in args.feeds]
    elif ETT.is_file():
        feeds = [(ETT, c) for c in ETT_CHANNELS]
    else:
        raise SystemExit(f"{ETT} not found: name the feeds with --feeds PATH:COLUMN")
    changes, ours = ",".join(args.set), ",".join(args.ours)
    for flag, text in (("--set", changes), ("--ours", ours)):
        try:  # a misspelt key fails here, not in every slice
            if text:
                variant(load_config(environ={}), text)
        except InputError as exc:
            raise SystemExit(f"{flag}: {exc}") from None
    baseline_spec(load_config(environ={}), ours)
    work = [(p, c, o, n) for p, c in feeds for o, n in slices(p, c, args.rows, args.min_rows)[: args.slices]]
    if not work:
        raise SystemExit(f"no feed has {args.min_rows} rows or more")
    if args.jobs == 1:
        done = [
            run_slice(*w, changes, ours) for w in tqdm(work, desc="slices", unit="slice", file=sys.stderr)
        ]
    else:  # spawned, not forked: a fork of a process that has started torch's thread pools can hang
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(run_slice, *w, changes, ours) for w in work]
            done = [f.result() for f in tqdm(futures, desc="slices", unit="slice", file=sys.stderr)]
    rows = [row for slice_rows in done for row in slice_rows]
    emit(
        {
            "baseline": BASELINE,
            "changes": args.set,
            "ours": args.ours,
            "summary": summarise(rows),
            "runs": rows,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
