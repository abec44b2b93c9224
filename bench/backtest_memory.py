"""Peak RSS of ``adaptcast backtest`` against the length of the run: does memory grow with the records?

Each point is one backtest in a fresh subprocess (peak RSS is per process): a synthetic
``level_shift`` scenario of ``series × steps`` hourly records, naive model (so the model is not
what is measured), periodic:168 retraining on a fixed 336-row window, intervals on, report written.
The JSON gives, per point, peak RSS (``ru_maxrss``), RSS after the imports, wall seconds and the
records, and the ratio of each point's peak to the first one's. ``--source parquet`` (or ``csv``)
writes each scenario to a long file first (``ts, series, y``) and replays that, as a user would:
then reading the file is measured too.

    python bench/backtest_memory.py --points 500x672 500x8760 --out bench/results/backtest_memory.json
    python bench/backtest_memory.py --source parquet --out bench/results/backtest_memory_parquet.json
"""

from __future__ import annotations

import argparse
import importlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from output import emit


def _rss_mb() -> float:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024


def _scenario(series: int, steps: int) -> dict[str, Any]:
    return {"name": "level_shift", "series": series, "steps": steps}


def write_file(series: int, steps: int, path: Path) -> None:
    """The scenario's records as a long file (Parquet or CSV, by ``path``'s suffix)."""
    from adaptcast.streams.config import load_config
    from adaptcast.streams.feed import scenario_feed

    frame = scenario_feed(load_config(overrides={"scenario": _scenario(series, steps)}, environ={})).frame
    frame = frame.select("ts", "series", "y")
    frame.write_parquet(path) if path.suffix == ".parquet" else frame.write_csv(path)


def measure(series: int, steps: int, module: str, data: Path | None) -> dict[str, Any]:
    """One backtest in this process, of the scenario or of ``data`` (its file); ``module`` holds the
    ``backtest`` function (e.g. an older copy)."""
    backtest = importlib.import_module(module).backtest
    from adaptcast.streams.config import load_config

    imported = _rss_mb()
    source: dict[str, Any] = (
        {"scenario": _scenario(series, steps)}
        if data is None
        else {"backtest": {"data": str(data), "series_col": "series"}}
    )
    cfg = load_config(
        overrides={
            "model": {"kind": "naive"},
            "adaptation": {"policy": "periodic:168", "window": "fixed:336", "memory": False},
            **source,
        },
        environ={},
    )
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        backtest(cfg, out=out, progress=False)
        size = sum(p.stat().st_size for p in Path(out).iterdir() if p.is_file())
    return {
        "series": series,
        "steps": steps,
        "records": series * steps,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_imports_mb": imported,
        "wall_s": time.perf_counter() - wall,
        "output_mb": size / 2**20,
        "module": module,
        "source": "scenario" if data is None else data.suffix[1:],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--points", nargs="+", default=["500x672", "500x8760"], help="SERIESxSTEPS, first is the base"
    )
    ap.add_argument("--module", default="adaptcast.streams.backtest", help="module whose backtest() runs")
    ap.add_argument(
        "--source",
        choices=["scenario", "parquet", "csv"],
        default="scenario",
        help="replay the scenario in memory, or from a long file of it written first",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        series, steps = map(int, args.worker.split("x"))
        print(json.dumps(measure(series, steps, args.module, args.data)))
        return
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for point in args.points:
            cmd = [sys.executable, __file__, "--worker", point, "--module", args.module]
            if args.source != "scenario":  # written here: the measured process only reads it
                data = Path(tmp) / f"{point}.{args.source}"
                write_file(*map(int, point.split("x")), data)
                cmd += ["--data", str(data)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{point} failed:\n{done.stderr[-3000:]}")
            points.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(json.dumps(points[-1]), file=sys.stderr)
    base = points[0]["peak_rss_mb"]
    for p in points:
        p["peak_vs_first"] = p["peak_rss_mb"] / base
    result = {"points": points, "box": "shared 2-core VM; RSS does not depend on the load, wall seconds do"}
    emit(result, args.out)


if __name__ == "__main__":
    main()
