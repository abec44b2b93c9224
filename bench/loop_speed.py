"""The serving loop alone, in process: µs per input record with AR-Net, error memory, detector, intervals.

The loop is assembled as ``adaptcast run`` and the Kafka worker assemble it (``build_loop``), serves a
trained AR-Net, and is fed polls of already decoded records (``--poll`` per call, every series in
turn, hourly steps), so what is timed is windows, predict, error memory, level term, intervals,
scoring and the drift policy: no Kafka, no JSON. The first ``lookback + horizon`` steps only fill
windows and pending forecasts and are not timed. The performance detector fires now and then even on
these stationary series, and its retrains run inline here (the worker runs them on a background
thread): polls with a retrain or a swap are left out of the loop's cost and counted beside it.
Deterministic work is printed beside the seconds: records, forecasts, predicted windows, scored
points, retrains. Wall and CPU time of the serving thread are both given.

    python bench/loop_speed.py                        # 50 series, lookback 48, 3 repeats
    python bench/loop_speed.py --series 500 --profile # also print the top of a cProfile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread, as `adaptcast` itself sets (streams/cli.py): on a shared 2-core box a threaded
# BLAS makes the error memory's small matrix products 50-200x slower. Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adaptcast.forecast import create_forecaster  # noqa: E402
from adaptcast.forecast.base import BaseForecaster  # noqa: E402
from adaptcast.forecast.checkpoint import load_forecaster  # noqa: E402
from adaptcast.forecast.threads import set_torch_threads  # noqa: E402
from adaptcast.forecast.windows import sliding_windows  # noqa: E402
from adaptcast.streams.build import build_loop  # noqa: E402
from adaptcast.streams.config import load_config  # noqa: E402
from adaptcast.streams.events import Event  # noqa: E402
from adaptcast.streams.loop import ForecastLoop  # noqa: E402
from adaptcast.streams.records import Record  # noqa: E402

HOUR = 3_600_000


def trained_arnet(lookback: int, horizon: int, epochs: int = 30) -> BaseForecaster:
    """AR-Net fitted on a noisy daily sine (the shape of the records fed to the loop)."""
    rng = np.random.default_rng(1)
    t = np.arange(3000)
    y = 20 + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, t.size)
    X, Y = sliding_windows(y, lookback, horizon)
    model = create_forecaster("arnet", lookback=lookback, horizon=horizon, epochs=epochs)
    model.fit(X, Y)
    with tempfile.TemporaryDirectory() as tmp:  # what a worker serves: a saved and reloaded checkpoint
        return load_forecaster(model.save(Path(tmp) / "arnet"))


def feed(n_series: int, steps: int, seed: int = 0) -> list[Record]:
    """Hourly records of ``n_series`` stationary noisy sines, step by step (every series at each step)."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    vals = 20 + 5 * np.sin(2 * np.pi * t / 24)[None, :] + rng.normal(0, 0.5, (n_series, steps))
    names = [f"s{i}" for i in range(n_series)]
    return [
        Record(names[i], k * HOUR, {"y": float(vals[i, k])}) for k in range(steps) for i in range(n_series)
    ]


def make_loop(model: BaseForecaster, memory: bool = True, intervals: str = "aci") -> ForecastLoop:
    """The live worker's loop (``bench/live_throughput.py``'s settings) serving ``model``."""
    cfg = load_config(
        overrides={
            "model": {"kind": "arnet", "lookback": model.lookback, "horizon": model.horizon},
            "adaptation": {"policy": "drift", "window": "vh", "memory": memory},
            "intervals": {"method": intervals},
            "metrics": {"enabled": False},
        },
        environ={},
    )
    loop = build_loop(cfg)
    loop.serve(model)
    return loop


def run_once(
    model: BaseForecaster,
    recs: list[Record],
    warm: int,
    poll: int,
    intervals: str,
    profile: cProfile.Profile | None,
) -> dict:
    """Feed ``recs`` in polls; time every steady poll after the first ``warm`` records.

    A poll in which a retrain ran (inline here) is left out of the timing and counted: its cost is
    the adaptation's, not the serving loop's. Wall and this thread's CPU time are both kept (the
    CPU time is far less sensitive to other jobs on a shared box).
    """
    loop = make_loop(model, intervals=intervals)
    for i in range(0, warm, poll):
        loop.process(recs[i : min(i + poll, warm)])
    predicts0 = _phase(loop, "predict", "samples")
    forecasts0, scored0 = loop.n_forecasts, loop._n_scored
    wall = cpu = 0.0
    steady = adapting = 0
    timed = recs[warm:]
    for i in range(0, len(timed), poll):
        batch = timed[i : i + poll]
        train0 = _phase(loop, "train", "calls")
        if profile is not None:
            profile.enable()
        t0, c0 = time.perf_counter(), time.thread_time()
        result = loop.process(batch)
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        if profile is not None:
            profile.disable()
        if _phase(loop, "train", "calls") > train0 or any(isinstance(e, Event) for e in result.events):
            adapting += len(batch)
            continue
        wall, cpu, steady = wall + dt, cpu + dc, steady + len(batch)
    summary = loop.summary()
    return {
        "records": len(timed),
        "forecasts": loop.n_forecasts - forecasts0,
        "predicted_windows": _phase(loop, "predict", "samples") - predicts0,
        "scored_points": loop._n_scored - scored0,
        "retrains": summary["retrains"],
        "drift_alarms": summary["drift_alarms"],
        "mae": summary["mae"],
        "records_timed": steady,
        "records_in_adapting_polls": adapting,
        "us_per_record": 1e6 * wall / max(steady, 1),
        "cpu_us_per_record": 1e6 * cpu / max(steady, 1),
    }


def _phase(loop: ForecastLoop, phase: str, field: str) -> float:
    return loop.ledger.totals().get(phase, {}).get(field, 0)


def _spread(values: list[float]) -> dict:
    """Each run's value, their mean and a 95 % half-width (normal approximation)."""
    v = np.array(values)
    half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return {
        "runs": [round(x, 1) for x in v],
        "mean": round(float(v.mean()), 1),
        "ci95": round(float(half), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=50)
    ap.add_argument("--steps", type=int, default=200, help="timed steps (each one record per series)")
    ap.add_argument("--poll", type=int, default=500, help="records per process() call")
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--intervals",
        choices=["aci", "dtaci", "off"],
        default="aci",
        help="conformal interval method (default aci; the worker's default is dtaci)",
    )
    ap.add_argument("--profile", action="store_true", help="print the top 30 functions by own time")
    args = ap.parse_args()
    set_torch_threads(1)  # what the worker serves with (serving.threads)
    model = trained_arnet(args.lookback, args.horizon)
    warm_steps = args.lookback + args.horizon
    recs = feed(args.series, warm_steps + args.steps)
    warm = warm_steps * args.series
    prof = cProfile.Profile() if args.profile else None
    runs = [run_once(model, recs, warm, args.poll, args.intervals, prof) for _ in range(args.repeats)]
    out = {
        "machine": f"{os.cpu_count()} cores, shared",
        "series": args.series,
        "lookback": args.lookback,
        "horizon": args.horizon,
        "poll": args.poll,
        "intervals": args.intervals,
        "work": {k: v for k, v in runs[0].items() if "us_per_record" not in k},
        **{key: _spread([r[key] for r in runs]) for key in ("us_per_record", "cpu_us_per_record")},
        "target_us_per_record": 30,
    }
    print(json.dumps(out, indent=2))
    if prof is not None:
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("cumtime").print_stats(
            f"{re.escape(str(ROOT))}|numpy|prometheus",
            45,  # the project's own files, wherever it lives
        )
        print(text.getvalue(), file=sys.stderr)


if __name__ == "__main__":
    main()
