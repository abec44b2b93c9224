"""Liquid network (no retraining) vs an incrementally re-fitted MLP on the link-failure scenario; prints JSON.

The experiment of arXiv 2404.05304 at small scale: per-link loads of a 6-node, 10-link network
(``streams.scenarios.link_failure``: demands are sums of sines, failures re-route traffic). Both
models forecast every link one step ahead from the last ``lookback`` hours of all links, and
are first trained on the same rows before any failure. Then the stream is replayed:

* ``lnn``: the CfC network keeps its weights; it adapts only through its input-dependent dynamics.
* ``mlp_inc_<b>``: an MLP is warm-start re-fitted every ``b`` steps on the last ``b`` labelled windows.

Reported per model: RMSE and MAPE on the pre-failure stretch and after each failure, hours to
recover (first hour after a failure from which the 24-hour rolling MAPE stays within 1.25x the
pre-failure MAPE; scale-free, since re-routed links carry more load), the MAPE over the second
half of each post-failure stretch (has the model settled?), and training seconds. Usage:
    python bench/lnn_vs_incremental.py [--weeks 8] [--batches 12 48 168]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import itertools

from adaptcast.forecast import create_forecaster
from adaptcast.forecast.metrics import mape, rmse
from adaptcast.forecast.scaling import Scaler
from adaptcast.forecast.threads import set_torch_threads
from adaptcast.streams.scenarios import WEEK, link_failure

ROLL, RECOVER_FACTOR = 24, 1.25


def windows(values: np.ndarray, lookback: int) -> tuple[np.ndarray, np.ndarray]:
    """X[i] = rows [i, i+lookback), Y[i] = row i+lookback (one step ahead, all links)."""
    w = np.lib.stride_tricks.sliding_window_view(values, lookback + 1, axis=0).transpose(0, 2, 1)
    return np.ascontiguousarray(w[:, :lookback]), np.ascontiguousarray(w[:, lookback:])


def significant(truth: np.ndarray) -> np.ndarray:
    """Entries whose true load is non-negligible (a failed link carries 0: no percentage error there)."""
    return np.abs(truth) > 0.1 * np.abs(truth).mean()


def segment_metrics(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """RMSE over all links; MAPE over the significant entries."""
    return {"rmse": round(rmse(truth, pred), 4), "mape": round(mape(truth[mask], pred[mask]), 2)}


def hours_to_recover(ape_per_step: np.ndarray, failure: int, end: int, baseline_mape: float) -> int | None:
    """First k after ``failure`` from which the rolling MAPE stays within the limit until ``end``.

    None when it never does.
    """
    seg = ape_per_step[failure:end]
    if seg.size < ROLL:
        return None
    roll = np.convolve(seg, np.ones(ROLL) / ROLL, mode="valid")
    bad = np.nonzero(roll > RECOVER_FACTOR * baseline_mape)[0]
    if bad.size == 0:
        return 0
    k = int(bad[-1]) + 1
    return k if k < roll.size else None


def summarise(pred: np.ndarray, truth: np.ndarray, cuts: list[int], seconds: float) -> dict[str, object]:
    """Metrics before and after each failure; ``cuts`` are eval-relative failure indices."""
    bounds = [0, *cuts, len(truth)]
    mask = significant(truth)
    segs = [segment_metrics(pred[a:b], truth[a:b], mask[a:b]) for a, b in itertools.pairwise(bounds)]
    ape_step = np.array(
        [mape(t[m], p[m]) if m.any() else 0.0 for t, p, m in zip(truth, pred, mask, strict=True)]
    )
    return {
        "before": segs[0],
        "after_failures": segs[1:],
        "hours_to_recover": [
            hours_to_recover(ape_step, c, e, segs[0]["mape"]) for c, e in zip(cuts, bounds[2:], strict=False)
        ],
        "second_half_mape": [
            round(float(ape_step[(c + e) // 2 : e].mean()), 2) for c, e in zip(cuts, bounds[2:], strict=False)
        ],
        "train_seconds": round(seconds, 2),
    }


class MLP(nn.Module):
    """Flattened window → hidden → next value of every link (scaled)."""

    def __init__(self, lookback: int, n: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(lookback * n, hidden), nn.ReLU(), nn.Linear(hidden, n)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def train_steps(
    model: MLP,
    opt: torch.optim.Optimizer,
    X: torch.Tensor,
    Y: torch.Tensor,
    epochs: int,
    batch: int,
    gen: torch.Generator,
) -> None:
    for _ in range(epochs):
        for idx in torch.randperm(X.shape[0], generator=gen).split(batch):
            opt.zero_grad()
            nn.functional.mse_loss(model(X[idx]), Y[idx]).backward()
            opt.step()


def incremental_mlp(
    X: np.ndarray, Y: np.ndarray, n_train: int, every: int, args: argparse.Namespace
) -> tuple[np.ndarray, float]:
    """Fit on the first ``n_train`` windows, then predict the rest.

    Every ``every`` windows the model is re-fitted on the latest ``every`` windows.
    """
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    scaler = Scaler.fit(X[:n_train, 0])
    Xs, Ys = torch.from_numpy(scaler.transform(X)), torch.from_numpy(scaler.transform(Y[:, 0]))
    model = MLP(X.shape[1], X.shape[2], args.hidden)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    t0 = time.perf_counter()
    train_steps(model, opt, Xs[:n_train], Ys[:n_train], args.epochs, 64, gen)
    preds = []
    for start in range(n_train, X.shape[0], every):
        with torch.inference_mode():
            preds.append(model(Xs[start : start + every]).numpy())
        done = min(start + every, X.shape[0])  # windows whose truth is now known
        train_steps(model, opt, Xs[done - every : done], Ys[done - every : done], args.refit_epochs, 64, gen)
    seconds = time.perf_counter() - t0
    return scaler.inverse(np.concatenate(preds)), seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--lookback", type=int, default=24)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--refit-epochs", type=int, default=5)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--units", type=int, default=32)
    ap.add_argument("--batches", type=int, nargs="+", default=[12, 48, 168])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    set_torch_threads(1)
    sc = link_failure(steps=args.weeks * WEEK, seed=args.seed)
    wide = sc.wide()
    values = wide.drop("date").to_numpy().astype(np.float32)
    X, Y = windows(values, args.lookback)
    fail_steps = [e.start_step for e in sc.events]
    train_end = int(0.8 * fail_steps[0])  # forecast times before this are training data
    n_train = train_end - args.lookback
    cuts = [s - train_end for s in fail_steps]
    truth = Y[n_train:, 0]

    n = values.shape[1]
    lnn = create_forecaster(
        "lnn",
        lookback=args.lookback,
        horizon=1,
        n_features=n,
        n_targets=n,
        seed=args.seed,
        units=args.units,
        epochs=args.epochs,
        patience=5,
        lr=3e-3,
        accelerator="cpu",
        num_threads=1,
    )
    n_fit = int(0.8 * n_train)
    report = lnn.fit(X[:n_fit], Y[:n_fit], val=(X[n_fit:n_train], Y[n_fit:n_train]))
    results = {"lnn": summarise(lnn.predict(X[n_train:])[:, 0], truth, cuts, report.wall_seconds)}
    for b in args.batches:
        pred, secs = incremental_mlp(X, Y, n_train, b, args)
        results[f"mlp_inc_{b}"] = summarise(pred[:, 0] if pred.ndim == 3 else pred, truth, cuts, secs)
    print(
        json.dumps(
            {
                "bench": "lnn_vs_incremental",
                "scenario": "streams.scenarios.link_failure",
                "steps": int(values.shape[0]),
                "links": n,
                "failures_at_step": fail_steps,
                "train_until_step": train_end,
                "lookback": args.lookback,
                "events": [e.detail for e in sc.events],
                "recover_rule": (
                    f"24h rolling MAPE <= {RECOVER_FACTOR} x pre-failure MAPE, until the next failure"
                ),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
