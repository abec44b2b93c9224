"""Backtest speed against a peer: adaptcast's ``backtest()`` and Darts' ``historical_forecasts``, same work.

The work: XGBoost with the same booster settings (one output per tree, 64 histogram bins, fixed
rounds, no early stopping, no row or column sampling, one thread), 48 lags, horizon 12, a forecast
issued at every step (stride 1), retrained every 24 steps on all history, over the first ``--rows`` rows of
ETTh1's OT column (``--target`` another). The first four adaptcast recipes (``RECIPES``) keep that
retraining recipe; the others choose their own (drift-triggered retraining, level-invariant windows,
the Variance Horizon, early stopping on the validation slice) on the same data and booster, and are
judged by MAE. Each side runs in its own subprocess, alternating which goes first, ``--repeats``
times; the JSON gives median wall and CPU seconds, the ratio, MAE of both on the forecasts both
issued, and the training work (fits, rows × boosting rounds) counted from what each did.
``--peer-rounds`` runs the peer again at fewer rounds per fit, so a recipe that trains less is
also timed against the peer's cheapest run near its own best MAE, not only its 100-round one.

Darts is not a dependency of adaptcast: install it into a separate virtual environment
(``python3 -m venv /work/peer-venv && /work/peer-venv/bin/pip install darts xgboost polars``)
and pass its interpreter with ``--peer-python`` (or ``ADAPTCAST_PEER_PYTHON``). This file runs
in both interpreters, so at module level it imports only the standard library.

    python bench/backtest_speed.py --repeats 3 --out bench/results/backtest_speed.json
    python bench/backtest_speed.py --repeats 1 --recipes adaptcast adaptcast-refit-off --profile
    python bench/backtest_speed.py --repeats 3 --recipes adaptcast-drift-norm adaptcast-drift-norm-vh
    python bench/backtest_speed.py --repeats 3 --recipes adaptcast-drift-norm-es --peer-rounds 50 25
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from output import emit

ETT = Path(__file__).resolve().parents[2] / "shared" / "data" / "ett" / "ETTh1.csv"
PEER_PYTHON = os.environ.get("ADAPTCAST_PEER_PYTHON", "/work/peer-venv/bin/python")
LAGS, HORIZON, RETRAIN_EVERY = 48, 12, 24
# adaptcast's recipes. On the peer's own recipe (periodic:24, full window): the default (validate a
# candidate, then refit it on every window), no refit (the validated candidate serves as fitted) and
# warm (each fit adds rounds to the serving booster). Then adaptcast's own choices on the same data
# and booster, judged by MAE against the peer's: drift-triggered retraining, level-invariant windows
# (``window_norm: last``, so trees follow a level they never saw) and the Variance Horizon.
RECIPES = {
    "adaptcast": {"refit": True},
    "adaptcast-validate-routine": {"refit": True, "validate_routine": True},
    "adaptcast-refit-off": {"refit": False},
    "adaptcast-warm": {"refit": True, "refit_mode": "warm"},
    "adaptcast-norm": {"window_norm": "last"},
    "adaptcast-drift": {"policy": "drift"},
    "adaptcast-drift-norm": {"policy": "drift", "window_norm": "last"},
    "adaptcast-drift-norm-vh": {"policy": "drift", "window": "vh", "window_norm": "last"},
    # adaptcast's own early stopping (its default: patience up to 20 rounds, on the validation slice a
    # gated fit holds back), so each fit boosts as many of the 100 rounds as the newest data supports
    "adaptcast-es": {"early_stopping_rounds": 20},
    "adaptcast-drift-norm-es": {"policy": "drift", "window_norm": "last", "early_stopping_rounds": 20},
    # what ``adaptcast backtest --model xgboost`` does by default but for the error memory and
    # intervals (off on every side): drift, full window, windows normalised as the data say (auto)
    "adaptcast-defaults": {"policy": "drift", "window_norm": "auto", "early_stopping_rounds": 20},
    "adaptcast-drift-norm-vh-es": {
        "policy": "drift",
        "window": "vh",
        "window_norm": "last",
        "early_stopping_rounds": 20,
    },
    # the same with growth refits when the history has doubled (trees' ``auto`` is 1.1: 10 % more rows)
    "adaptcast-drift-norm-vh-growth2": {
        "policy": "drift",
        "window": "vh",
        "window_norm": "last",
        "growth": 2.0,
    },
}
MODEL_OPTIONS = ("window_norm", "early_stopping_rounds")  # recipe keys of the model, not the adaptation
SIDES = (*RECIPES, "darts")
BOOSTER = {  # the settings both sides train with, in adaptcast's names
    "max_depth": 4,
    "learning_rate": 0.1,
    "subsample": 1.0,
    "colsample_bytree": 1.0,
    "min_child_weight": 1.0,
    "reg_lambda": 1.0,
    "multi_strategy": "one_output_per_tree",
    "max_bin": 64,  # adaptcast's default; xgboost's (and so Darts') is 256, 3-4x the work per tree here
}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def adaptcast_config(rows: int, rounds: int, recipe: str, target: str = "OT") -> Any:
    """The ``Config`` one adaptcast side runs: periodic:24, full window, memory and intervals off, the
    shared booster, then what ``recipe`` (one of ``RECIPES``) changes in the model or the adaptation.

    The default fits each periodic refit once, on every window, with the rounds the last validated
    fit kept (a gated fit and a refit, two fits, again each time the windows have doubled);
    ``validate_routine: true`` gates every refit (two fits each, the default before); ``refit: false``
    serves the validated candidate as fitted (one fit, on the older 80 % of the windows);
    ``refit_mode: warm`` continues the serving booster with a fifth of the rounds at each fit.
    """
    from adaptcast.streams.config import load_config

    changes = RECIPES[recipe]
    return load_config(
        overrides={
            "model": {
                "kind": "xgboost",
                "target": target,
                "lookback": LAGS,
                "horizon": HORIZON,
                "params": {
                    **BOOSTER,
                    "n_estimators": rounds,
                    "early_stopping_rounds": 0,
                    "num_threads": 1,
                    "device": "cpu",
                    **{k: v for k, v in changes.items() if k in MODEL_OPTIONS},
                },
            },
            "adaptation": {
                "policy": f"periodic:{RETRAIN_EVERY}",
                "window": "full",
                "memory": False,
                **{k: v for k, v in changes.items() if k not in MODEL_OPTIONS},
            },
            "intervals": {"method": "off"},
            "backtest": {"data": str(ETT), "limit": rows, "timings": True},
        },
        environ={},
    )


def run_adaptcast(
    rows: int, rounds: int, out: Path, profile: bool, recipe: str, target: str = "OT"
) -> dict[str, Any]:
    """``backtest()`` of :func:`adaptcast_config`; forecasts saved to ``out`` as row indices."""
    import numpy as np
    import polars as pl

    from adaptcast.streams.backtest import backtest

    cfg = adaptcast_config(rows, rounds, recipe, target)
    wall, cpu = time.perf_counter(), _cpu()
    if profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        res = prof.runcall(backtest, cfg, report=False, progress=False)
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime")
        top = [
            {"function": f"{Path(fn).name}:{line}:{name}", "calls": nc, "tottime_s": round(tt, 3)}
            for (fn, line, name), (_, nc, tt, _, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[
                :15
            ]
        ]
    else:
        res, top = backtest(cfg, report=False, progress=False), None
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    s = next(iter(res.summary["configs"].values()))
    stamps = pl.read_csv(ETT, n_rows=rows, try_parse_dates=True)["date"].cast(pl.Datetime("ms"))
    index = {t: i for i, t in enumerate(stamps.dt.epoch("ms").to_list())}
    fc = res.forecasts.filter(pl.col("step") <= HORIZON)
    issued = np.array([index[t] for t in fc["issued_at"].dt.epoch("ms").to_list()])
    np.savez(out, issued=issued, lead=fc["step"].to_numpy(), yhat=fc["yhat"].to_numpy())
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "forecasts": s["n_forecasts"],
        "fits": s["n_fits"],
        "retrains": s["n_retrains"],
        "rows_x_rounds": s["samples_seen"],
        "train_cpu_s": s["train_seconds"],
        "profile_top": top,
    }


def run_darts(rows: int, rounds: int, out: Path, start: int, target: str = "OT") -> dict[str, Any]:
    """``XGBModel.historical_forecasts`` with ``retrain=24`` from ``start``; forecasts as row indices."""
    import numpy as np
    import polars as pl
    from darts import TimeSeries
    from darts.models import XGBModel

    y = pl.read_csv(ETT, n_rows=rows)[target].to_numpy().astype(np.float64)
    series = TimeSeries.from_values(y)
    model = XGBModel(
        lags=LAGS,
        output_chunk_length=HORIZON,
        multi_models=True,
        n_estimators=rounds,
        **BOOSTER,
        tree_method="hist",
        n_jobs=1,
        random_state=0,
    )
    wall, cpu = time.perf_counter(), _cpu()
    fcs = model.historical_forecasts(
        series,
        start=start,
        forecast_horizon=HORIZON,
        stride=1,
        retrain=RETRAIN_EVERY,
        last_points_only=False,
        overlap_end=False,
        verbose=False,
        show_warnings=False,
    )
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    first = np.array([int(f.start_time()) for f in fcs])
    issued = np.repeat(first - 1, HORIZON)
    lead = np.tile(np.arange(1, HORIZON + 1), len(fcs))
    yhat = np.concatenate([f.values()[:, 0] for f in fcs])
    np.savez(out, issued=issued, lead=lead, yhat=yhat)
    fit_at = first[::RETRAIN_EVERY]  # history length at each fit: every row before the first forecast point
    samples = [int(t) - LAGS - HORIZON + 1 for t in fit_at]
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "forecasts": len(fcs),
        "fits": len(fit_at),
        "retrains": len(fit_at),
        "rows_x_rounds": sum(samples) * rounds,
        "version": __import__("darts").__version__,
    }


def _side(
    python: str, side: str, args: argparse.Namespace, out: Path, start: int = 0, profile: bool = False
) -> dict[str, Any]:
    """Run one side in its own process; ``darts@R`` is the peer at ``R`` boosting rounds per fit."""
    worker, _, rounds = side.partition("@")
    cmd = [
        python,
        __file__,
        "--worker",
        worker,
        "--rows",
        str(args.rows),
        "--rounds",
        rounds or str(args.rounds),
    ]
    cmd += ["--npz", str(out), "--start", str(start), "--target", args.target] + (
        ["--profile"] if profile else []
    )
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{side} worker failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mae_on_common(a: Path, b: Path, rows: int, target: str) -> dict[str, Any]:
    """MAE of a side (``a``) and darts (``b``) over the (issue row, lead) pairs both forecast."""
    import numpy as np
    import polars as pl

    y = pl.read_csv(ETT, n_rows=rows)[target].to_numpy()
    fa, fb = np.load(a), np.load(b)
    ka = {(int(i), int(k)): v for i, k, v in zip(fa["issued"], fa["lead"], fa["yhat"], strict=True)}
    kb = {(int(i), int(k)): v for i, k, v in zip(fb["issued"], fb["lead"], fb["yhat"], strict=True)}
    common = sorted(set(ka) & set(kb))
    truth = np.array([y[i + k] for i, k in common])
    return {
        "points": len(common),
        "adaptcast": float(np.mean(np.abs(truth - np.array([ka[p] for p in common])))),
        "darts": float(np.mean(np.abs(truth - np.array([kb[p] for p in common])))),
        "first_issue_row": common[0][0] if common else None,
    }


def peer_near_best(points: dict[str, dict[str, float]]) -> str:
    """The peer run with the least CPU among those whose MAE is within 2 % of the peer's best."""
    best = min(p["mae"] for p in points.values())
    return min(
        (side for side, p in points.items() if p["mae"] <= 1.02 * best), key=lambda s: points[s]["cpu_s"]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=100, help="boosting rounds per fit, both sides")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--target", default="OT", help="ETTh1 column forecast (default: OT)")
    ap.add_argument(
        "--peer-rounds",
        type=int,
        nargs="*",
        default=[],
        help="the peer again at these boosting rounds per fit (e.g. 50 25): its own error-vs-CPU "
        "points, so a speed-up is also read against its cheapest run at about its best MAE",
    )
    ap.add_argument("--peer-python", default=PEER_PYTHON, help="interpreter with darts installed")
    ap.add_argument(
        "--profile", action="store_true", help="one more adaptcast run under cProfile (top functions)"
    )
    ap.add_argument(
        "--recipes",
        nargs="+",
        choices=list(RECIPES),
        default=list(RECIPES),
        help="adaptcast recipes to time against darts (default: all)",
    )
    ap.add_argument("--out", type=Path)
    ap.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--npz", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker in RECIPES:
        print(
            json.dumps(
                run_adaptcast(args.rows, args.rounds, args.npz, args.profile, args.worker, args.target)
            )
        )
        return
    if args.worker == "darts":
        print(json.dumps(run_darts(args.rows, args.rounds, args.npz, args.start, args.target)))
        return
    if not Path(args.peer_python).exists():
        raise SystemExit(
            f"no peer interpreter at {args.peer_python}: python3 -m venv /work/peer-venv && "
            "/work/peer-venv/bin/pip install darts xgboost polars, or pass --peer-python"
        )
    peers = ("darts", *(f"darts@{r}" for r in args.peer_rounds if r != args.rounds))
    sides = (*args.recipes, *peers)
    first = sides[0]
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        npz = {side: Path(tmp) / f"{side}.npz" for side in sides}
        runs[first].append(_side(sys.executable, first, args, npz[first]))
        # darts' first forecast point: the row after adaptcast's first issue
        start = int(__import__("numpy").load(npz[first])["issued"].min()) + 1
        for r in range(args.repeats):
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                if r == 0 and side == first:
                    continue  # ran first, to find darts' start
                python = args.peer_python if side in peers else sys.executable
                runs[side].append(_side(python, side, args, npz[side], start))
                print(f"repeat {r} {side}: {runs[side][-1]['wall_s']:.1f} s wall", file=sys.stderr)
        mae = {
            side: _mae_on_common(npz[side], npz["darts"], args.rows, args.target)
            for side in sides
            if side != "darts"
        }
        profile = (
            _side(sys.executable, first, args, npz[first], profile=True)["profile_top"]
            if args.profile
            else None
        )
    med = {
        side: {k: statistics.median(x[k] for x in rs) for k in ("wall_s", "cpu_s")}
        for side, rs in runs.items()
    }
    ours = args.recipes
    # the peer's own points: rounds per fit -> median CPU seconds and MAE on the common forecasts
    points = {
        side: {
            "cpu_s": med[side]["cpu_s"],
            "mae": mae[side]["adaptcast"] if side != "darts" else mae[ours[0]]["darts"],
        }
        for side in peers
    }
    near_best = points[peer_near_best(points)]
    result = {
        "work": {
            "data": f"ETTh1 {args.target}, first {args.rows} rows",
            "model": {"xgboost": {**BOOSTER, "n_estimators": args.rounds, "threads": 1}},
            "lags": LAGS,
            "horizon": HORIZON,
            "stride": 1,
            "retrain_every": RETRAIN_EVERY,
            "darts_start_row": start,
            "recipes": {side: RECIPES[side] for side in args.recipes},  # what each adaptcast side changes
        },
        "repeats": args.repeats,
        "median": med,
        "speedup_vs_darts": {  # darts' seconds over adaptcast's: > 1 is adaptcast faster
            side: {k: med["darts"][k] / med[side][k] for k in ("wall_s", "cpu_s")} for side in ours
        },
        "speedup_cpu_per_repeat": {  # repeat i of darts over repeat i of each side: the spread of the ratio
            side: [d["cpu_s"] / a["cpu_s"] for d, a in zip(runs["darts"], runs[side], strict=True)]
            for side in ours
        },
        "peer_points": points,
        # CPU of the peer's cheapest run within 2 % of its best MAE, over each side's
        "speedup_cpu_vs_peer_near_its_best": {side: near_best["cpu_s"] / med[side]["cpu_s"] for side in ours},
        "mae": {side: mae[side] for side in ours},
        "deterministic_work": {
            side: {k: rs[0][k] for k in ("forecasts", "fits", "retrains", "rows_x_rounds")}
            for side, rs in runs.items()
        },
        "runs": runs,
        "adaptcast_profile_top": profile,
        "box": f"shared 2-core VM, load average {load:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end: wall seconds are noisy, CPU seconds less so",
    }
    emit(result, args.out)


if __name__ == "__main__":
    main()
