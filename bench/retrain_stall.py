"""What a retrain costs the serving thread of a long-running worker, and what it hands its trainer.

A worker that has served for a while holds ``adaptation.history`` rows per series (10,000 by
default). Every retrain builds windows over them, fits, validates the candidate against the
serving recipe and seeds the new model's error memory; only the fit is the trainer's own work.
This bench builds the worker's loop (``build_loop``, the same settings as ``adaptcast run``),
serves a model, gives every series ``--rows`` rows of history, and times on the serving thread
(``time.thread_time``: CPU, far less sensitive to other jobs than wall time):

- ``submit``: ``Adaptation.start`` for one drift retrain (the trainer is held, so no fit runs);
- ``install``: ``Adaptation.collect`` of the finished job (the trainer's outcome handed back);
- the **baseline, in the same process**: the same work done on the serving thread, as every
  retrain did before it moved to the trainer: building the job's windows
  (``TrainJob.data``) and assessing the candidate (``assess``).

Deterministic work is printed beside the seconds: windows built, validation windows predicted,
and the bytes a job hands the child process (its histories) against the windows it would have
written instead. Repeated ``--repeats`` times; medians.

    python bench/retrain_stall.py                        # 50 series x 10,000 rows, AR-Net
    python bench/retrain_stall.py --series 200 --rows 2000 --out bench/results/retrain_stall_200.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `adaptcast` sets it (streams/cli.py)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from output import emit

from adaptcast.drift import Action, Decision, Reason
from adaptcast.streams.assess import assess
from adaptcast.streams.build import build_loop
from adaptcast.streams.config import load_config
from adaptcast.streams.retrain import InlineTrainer, TrainJob, run_job


class HeldTrainer(InlineTrainer):
    """Keeps what is submitted; the bench runs the job itself, off the clock."""

    def submit(self, job: TrainJob) -> None:
        self.job = job


def histories(n_series: int, rows: int, seed: int = 0) -> list[np.ndarray]:
    """Noisy daily cycles ``[rows, 1]`` with a level shift two thirds in (what makes drift fire)."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    base = 20 + 5 * np.sin(2 * np.pi * t / 24) + 3 * (t > 2 * rows // 3)
    return [(base + rng.normal(0, 0.5, rows)).astype(np.float32)[:, None] for _ in range(n_series)]


def timed(f: Any) -> tuple[Any, float]:
    c0 = time.thread_time()
    out = f()
    return out, time.thread_time() - c0


def one_round(args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """One drift retrain at full history: its serving-thread cost now, and the same work inline."""
    cfg = load_config(
        overrides={
            "model": {"kind": args.model, "lookback": args.lookback, "horizon": args.horizon},
            "adaptation": {"history": args.rows},
            "metrics": {"enabled": False},
        },
        environ={},
    )
    loop = build_loop(cfg)
    ad = loop.adaptation
    hist = histories(args.series, args.rows, seed)
    first = max(2 * (args.lookback + args.horizon), 600)
    ad.start(Decision(Action.RETRAIN, Reason.INITIAL), [h[:first] for h in hist], first, 0)
    ad.collect(first)  # the first model serves, with its memory
    ad.trainer = held = HeldTrainer(ad.trainer.ledger)
    drift = Decision(Action.RETRAIN, Reason.DRIFT, detector="performance", change_step=args.rows * 2 // 3)
    job, submit_s = timed(lambda: ad.start(drift, hist, args.rows, 1))
    assert job is not None and held.job is job
    outcome = run_job(job, held.ledger)  # the trainer's work: windows, fits, assessment (off the clock)
    assert outcome.assessment is not None and outcome.model is not None
    held._done.append(outcome)
    events, install_s = timed(lambda: ad.collect(args.rows))
    # the baseline: the same windows and assessment made on the serving thread
    fresh = TrainJob(job.template, job.histories, job.rows, drift, job.step, job.ts_ms, job.seq)
    data, windows_s = timed(lambda: fresh.data)
    _, assess_s = timed(
        lambda: assess(data, outcome.model, outcome.gate, step=job.step, judge=job.judge, memory=job.memory)
    )
    window_bytes = data.X.nbytes + data.Y.nbytes + data.full[0].nbytes + data.full[1].nbytes
    if data.val is not None:
        window_bytes += data.val[0].nbytes + data.val[1].nbytes
    return {
        "event": type(events[0]).__name__,
        "serving_thread_s": submit_s + install_s,
        "submit_s": submit_s,
        "install_s": install_s,
        "baseline_serving_thread_s": windows_s + assess_s,
        "baseline_windows_s": windows_s,
        "baseline_assess_s": assess_s,
        "windows": len(data.full[0]),
        "validation_windows": 0 if data.val is None else len(data.val[0]),
        "bytes_to_child": sum(h.nbytes for h in job.histories),
        "bytes_as_windows": window_bytes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--rows", type=int, default=10_000, help="history rows per series (adaptation.history)")
    ap.add_argument("--model", default="arnet")
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    rounds = [one_round(args, seed) for seed in range(args.repeats)]
    med = {k: statistics.median(r[k] for r in rounds) for k in rounds[0] if k != "event"}
    emit(
        {
            "bench": "retrain_stall",
            "series": args.series,
            "rows": args.rows,
            "model": args.model,
            "lookback": args.lookback,
            "horizon": args.horizon,
            "repeats": args.repeats,
            "events": [r["event"] for r in rounds],
            "median": med,
            "serving_thread_ratio": med["serving_thread_s"] / med["baseline_serving_thread_s"],
            "bytes_ratio": med["bytes_to_child"] / med["bytes_as_windows"],
            "rounds": rounds,
        },
        args.out,
    )


if __name__ == "__main__":
    main()
