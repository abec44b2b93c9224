"""Series that come and go (pods, sessions, devices): what the serving loop holds as ids churn.

``--live`` series report every hour; each id is replaced by a new one every ``--life`` hours (the
replacements staggered), so ids ever seen grow without bound while the live ones stay fixed. The
loop is the live worker's (``bench/loop_speed.py``'s AR-Net with memory, detector and DtACI
intervals), run twice in one process on the same records: forgetting silent series
(``grid.forget_after`` at its default) and never forgetting (the behaviour before it existed).
Deterministic counts (series held, rows a snapshot would write) are printed beside CPU seconds.

    python bench/series_churn.py                          # 50 live series, life 100 h, 3,000 h
    python bench/series_churn.py --live 200 --steps 1500
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as adaptcast sets it (streams/cli.py)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from loop_speed import HOUR, make_loop, trained_arnet

from adaptcast.forecast.threads import set_torch_threads
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.records import Record

NEVER = 10**9  # periods: a series is never silent that long


def churn(live: int, life: int, steps: int, seed: int = 0) -> list[list[Record]]:
    """One poll per hour: ``live`` series, id ``pod-j-g`` for generation ``g`` of slot ``j``."""
    rng = np.random.default_rng(seed)
    polls = []
    for k in range(steps):
        y = 20 + 5 * np.sin(2 * np.pi * k / 24) + rng.normal(0, 0.5, live)
        polls.append(
            [
                Record(f"pod-{j}-{(k + j * life // live) // life}", k * HOUR, {"y": float(y[j])})
                for j in range(live)
            ]
        )
    return polls


def run(loop: ForecastLoop, polls: list[list[Record]], every: int) -> dict:
    """Feed the polls; sample what is held every ``every`` steps."""
    held, cpu = [], 0.0
    for k, poll in enumerate(polls, 1):
        c0 = time.thread_time()
        loop.process(poll)
        cpu += time.thread_time() - c0
        if k % every == 0:
            held.append(len(loop.states))
    rows = sum(len(s.buffer) for s in loop.states.values())
    records = sum(len(p) for p in polls)
    return {
        "series_held": held,
        "series_held_at_end": len(loop.states),
        "snapshot_rows_at_end": rows,  # the rows a snapshot of every partition would write
        "cpu_us_per_record": round(1e6 * cpu / records, 1),
        "forecasts": loop.n_forecasts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--live", type=int, default=50, help="series reporting at any time")
    ap.add_argument("--life", type=int, default=100, help="hours before an id is replaced")
    ap.add_argument("--steps", type=int, default=3000, help="hours fed")
    ap.add_argument("--every", type=int, default=500, help="hours between two samples of what is held")
    args = ap.parse_args()
    set_torch_threads(1)
    model = trained_arnet(48, 12)
    polls = churn(args.live, args.life, args.steps)
    out: dict = {"machine": f"{os.cpu_count()} cores, shared", **vars(args)}
    for name, forget_after in (("never_forget", NEVER), ("forget", None)):
        loop = make_loop(model, intervals="dtaci")
        loop.forget_after = forget_after or loop.forget_after
        out[name] = {"forget_after": loop.forget_after, **run(loop, polls, args.every)}
    out["ids_seen"] = len({r.series for p in polls for r in p})
    f, n = out["forget"], out["never_forget"]
    out["ratio"] = {
        "series_held": round(f["series_held_at_end"] / n["series_held_at_end"], 3),
        "snapshot_rows": round(f["snapshot_rows_at_end"] / n["snapshot_rows_at_end"], 3),
        "cpu_per_record": round(f["cpu_us_per_record"] / n["cpu_us_per_record"], 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
