"""Every model kind on the embedded default, as a new user runs it: ``adaptcast run --model KIND`` (JSON).

Each (kind, model seed) is one fresh ``adaptcast run`` process (start-up and imports included, as a
user pays them) with ``CI=1`` and a free metrics port; its wall seconds and the CPU seconds of the
child are measured here, and the run's own summary line gives MAE, retrains and the run's own
seconds. Issue 19's bound is 60 s of wall for every kind on this CPU.

    python bench/embedded_kinds.py                        # every kind, model seed 0
    python bench/embedded_kinds.py --kinds informer lnn --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from output import emit

ROOT = Path(__file__).resolve().parents[1]
BOUND_S = 60.0
SUMMARY = re.compile(
    r"MAE (?P<mae>[\d.]+|n/a), (?P<alarms>\d+) drift alarms, (?P<retrains>\d+) retrains, "
    r"(?P<rejected>\d+) records rejected, model \S+ v\S+, (?P<seconds>[\d.]+) s"
)


def run_kind(kind: str, seed: int, scenario: str | None) -> dict[str, Any]:
    """One ``adaptcast run --model kind`` in a child process: wall, child CPU and its summary."""
    cmd = [sys.executable, "-c", "from adaptcast.streams.cli import main; main()", "run", "--model", kind]
    cmd += ["--metrics-port", "0", *(["--scenario", scenario] if scenario else [])]
    env = {**os.environ, "CI": "1", "ADAPTCAST__MODEL__SEED": str(seed)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    found = SUMMARY.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise SystemExit(
            f"adaptcast run --model {kind} failed (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    mae = found["mae"]
    return {
        "kind": kind,
        "seed": seed,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "run_s": float(found["seconds"]),
        "mae": None if mae == "n/a" else float(mae),
        "retrains": int(found["retrains"]),
        "drift_alarms": int(found["alarms"]),
        "under_bound": wall < BOUND_S,
    }


def main(argv: list[str] | None = None) -> None:
    from adaptcast.forecast.base import FORECASTERS

    kinds = sorted(FORECASTERS)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=kinds, choices=kinds)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="model seeds (ADAPTCAST__MODEL__SEED)")
    ap.add_argument("--scenario", help="embedded scenario (default: the config's, level_shift)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args(argv)
    runs = [run_kind(k, s, args.scenario) for k in args.kinds for s in args.seeds]
    worst = {k: max(r["wall_s"] for r in runs if r["kind"] == k) for k in args.kinds}
    emit(
        {
            "command": "adaptcast run --model KIND --metrics-port 0 (CI=1)",
            "bound_s": BOUND_S,
            "load_average": [round(v, 2) for v in os.getloadavg()],
            "runs": runs,
            "worst_wall_s": worst,
            "every_kind_under_bound": all(w < BOUND_S for w in worst.values()),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
