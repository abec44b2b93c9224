"""How much can any correction of the bare forecasts take off the error after a change?

Issue 15 asks the error memory for ≥ 25 % lower MAE over forecasts issued in the 50 steps after
each abrupt event. This bench runs drift-triggered retraining without the memory (the bare
forecasts, every retrain included), then corrects those forecasts offline and scores each
correction against them, whole stream and after events:

- ``level_term``: the product's fast level term (:class:`adaptcast.drift.level.LevelTerm`) alone,
  fed each series' newest one-step residual and reset at a swap, its offset on every lead;
- ``newest_per_lead``: each lead corrected by its own newest known residual (lead h's residual
  is known h steps after its forecast was issued);
- ``hindsight_lead1``: each forecast corrected on every lead by its *own* lead-1 residual, known
  only in hindsight: the ceiling of any correction that moves all leads by one offset;
- ``hindsight_per_lead``: each lead corrected by the previous forecast's residual at that lead,
  before it could be known: not realisable, a bound.

    python bench/memory_ceiling.py --model xgboost --params '{"n_estimators": 100, "num_threads": 1}'
    python bench/memory_ceiling.py --dataset trend_breaks --seeds 5
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adaptation import DATASETS, SEGMENTS, compose, config, dataset, setups
from adaptation_stats import mean_ci
from output import emit
from tqdm import tqdm

from adaptcast.drift.level import LevelTerm
from adaptcast.streams.backtest import run_config
from adaptcast.streams.backtest_scores import AFTER_EVENT_STEPS
from adaptcast.streams.config import AdaptationConfig


def residuals(
    forecasts: pl.DataFrame | pl.LazyFrame, horizon: int
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Bare residuals ``y − yhat_base`` as ``[series, issue step, lead]`` (NaN where unknown), the
    serving model's version per issue step, and the issue steps' times."""
    f = (
        forecasts.lazy()
        .with_columns(
            pl.col("issued_at").rank("dense").cast(pl.Int64).alias("t"),
            pl.col("model_version").rank("dense").cast(pl.Int64).alias("v"),  # equal or not is all it says
        )
        .collect()
    )
    names = sorted(f["series"].unique().to_list())
    row = {s: i for i, s in enumerate(names)}
    n = int(f["t"].max())
    r = np.full((len(names), n, horizon), np.nan)
    v = np.zeros(n, dtype=np.int64)
    s = np.array([row[x] for x in f["series"].to_list()])
    t, lead = f["t"].to_numpy() - 1, f["step"].to_numpy() - 1
    r[s, t, lead] = (f["y"] - f["yhat_base"]).to_numpy()
    v[t] = f["v"].to_numpy()
    issued = np.sort(f["issued_at"].unique().to_numpy())
    return names, r, v, issued


def level_term(names: list[str], r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The product's level term alone: offsets from the newest one-step residuals, reset at each swap."""
    level, out = LevelTerm(), np.zeros_like(r)
    for t in range(r.shape[1]):
        if t and v[t] != v[t - 1]:
            level.reset()
        elif t:
            known = ~np.isnan(r[:, t - 1, 0])
            level.update([s for s, k in zip(names, known, strict=True) if k], r[known, t - 1, :1])
        out[:, t, :] = level.offset(names)
    return out


def newest_per_lead(names: list[str], r: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(r)
    for h in range(r.shape[2]):
        out[:, h + 1 :, h] = r[:, : r.shape[1] - h - 1, h]
    return np.nan_to_num(out)


def hindsight_lead1(names: list[str], r: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.broadcast_to(r[:, :, :1], r.shape).copy())


def hindsight_per_lead(names: list[str], r: np.ndarray, v: np.ndarray) -> np.ndarray:
    out = np.zeros_like(r)
    out[:, 1:] = r[:, :-1]
    return np.nan_to_num(out)


CORRECTIONS: dict[str, Callable[[list[str], np.ndarray, np.ndarray], np.ndarray]] = {
    "level_term": level_term,
    "newest_per_lead": newest_per_lead,
    "hindsight_lead1": hindsight_lead1,
    "hindsight_per_lead": hindsight_per_lead,
}


def ratios(r: np.ndarray, c: np.ndarray, post: np.ndarray) -> dict[str, float | None]:
    """MAE of the corrected forecasts over the bare ones: whole stream, and issued after events."""
    known = ~np.isnan(r)
    err, bare = np.abs(r - c), np.abs(r)
    after = known & post[None, :, None]
    return {
        "whole": float(err[known].mean() / bare[known].mean()),
        "post_event": float(err[after].mean() / bare[after].mean()) if after.any() else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="level_shifts", choices=DATASETS)
    ap.add_argument("--model", default="arnet")
    ap.add_argument("--params", default="{}", help="model hyper-parameters as JSON")
    ap.add_argument("--config", default="drift", help="the bench configuration giving the bare forecasts")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument("--segment", type=int, default=240, help=f"steps per segment ({SEGMENTS} segments)")
    ap.add_argument("--warmup", type=int, default=336, help="rows before the first model")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    setup = compose(args.config, setups([24, 96, 384], AdaptationConfig().refit_mode)[0])  # as users get it
    per_seed: dict[str, list[dict]] = {name: [] for name in CORRECTIONS}
    for seed in tqdm(range(args.seeds), desc="memory ceiling", unit="seed", file=sys.stderr):
        data = dataset(args.dataset, seed, args)
        run, _ = run_config(data, config(args, data, setup, seed), progress=False)
        names, r, v, issued = residuals(run.forecasts, args.horizon)
        window = AFTER_EVENT_STEPS * (issued[1] - issued[0])  # forecasts are issued once a period
        post = np.zeros(len(issued), dtype=bool)
        for e in data.events:
            if e["kind"] != "variance_shift":  # noise cannot be corrected
                start = np.datetime64(e["start"]).astype(issued.dtype)
                post |= (issued >= start) & (issued < start + window)
        for name, correct in CORRECTIONS.items():
            per_seed[name].append({"seed": seed} | ratios(r, correct(names, r, v), post))
    emit(
        {
            "dataset": args.dataset,
            "model": args.model,
            "params": args.params,
            "config": args.config,
            "stream_steps": SEGMENTS * args.segment,
            "after_event_steps": AFTER_EVENT_STEPS,
            "what": "MAE of the corrected over the bare forecasts (1: no gain), mean over seeds, 95 % CI",
            "corrections": {
                name: {
                    "whole": mean_ci([x["whole"] for x in rows]),
                    "post_event": mean_ci([x["post_event"] for x in rows]),
                    "per_seed": rows,
                }
                for name, rows in per_seed.items()
            },
        },
        args.out,
    )


if __name__ == "__main__":
    main()
