"""Offline backtest: the configured feed on a simulated clock through the live loop, configurations compared.

Rolling origin: at every timestamp each series gets a forecast from the model serving *then*;
retraining runs inline, so a run is reproducible from its seed. The configuration is the one
``adaptcast run`` reads; ``backtest.compare`` lists further configurations as overrides of it.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.conformal import winkler
from adaptcast.drift.policy import RetrainPolicy
from adaptcast.forecast.base import InputError
from adaptcast.forecast.data import SeriesFrame
from adaptcast.forecast.metrics import mae, mase, mse, naive_scale, smape
from adaptcast.streams.build import build_loop
from adaptcast.streams.config import Config, ConfigError, deep_merge, load_config, parse_scalar
from adaptcast.streams.events import LoopEvent
from adaptcast.streams.feed import load_feed, time_batches
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.pushgateway import push_backtest
from adaptcast.streams.records import Record
from adaptcast.streams.report import ConfigRun, write_report
from adaptcast.streams.retrain import InlineTrainer, TrainOutcome
from adaptcast.streams.summary import RunSummary

SUMMARY_SCHEMA = 1
FORECASTS_FILE, EVENTS_FILE, SUMMARY_FILE = "forecasts.parquet", "events.parquet", "summary.json"
AFTER_EVENT_STEPS = 50
FIT_OUTCOMES = ("retrain", "retrain_rejected", "retrain_failed", "retrain_superseded")  # one per fit
UNCORRECTABLE = ("variance",)  # event kinds left out of the post-event error: noise cannot be corrected
COVERAGE_AFTER_STEPS = 100  # interval coverage is judged over more steps: a miss rate needs more points
COMPARE_ALIASES = {
    "model": "model.kind",
    "policy": "adaptation.policy",
    "window": "adaptation.window",
    "memory": "adaptation.memory",
}


def label(cfg: Config, policy: str | None = None) -> str:
    """The name a configuration goes by in reports: model kind, policy (or ``policy``), window, memory."""
    a = cfg.adaptation
    return f"{cfg.model.kind} {policy or a.policy} {a.window} memory={'on' if a.memory else 'off'}"


def variant(cfg: Config, text: str) -> Config:
    """``"policy=periodic:24,memory=off"`` → ``cfg`` with those keys replaced (dotted keys work too)."""
    overrides: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = COMPARE_ALIASES.get(key.strip(), key.strip())
        if not sep or "." not in key:
            raise InputError(
                f"compare {text!r}: each item must be KEY=VALUE with KEY one of "
                f"{', '.join(COMPARE_ALIASES)} or a dotted config key such as model.lookback"
            )
        node = overrides
        *parents, leaf = key.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = parse_scalar(value.strip())
    if not overrides:
        raise InputError(f"compare {text!r} changes nothing; write e.g. policy=periodic:24,memory=off")
    base = cfg.model_dump(exclude_unset=False)
    base["backtest"]["compare"] = []
    try:
        return load_config(overrides=deep_merge(base, overrides), environ={})
    except ConfigError as exc:
        raise InputError(f"compare {text!r}: {exc}") from None


@dataclass
class BacktestResult:
    """What a backtest produced: ``summary.json`` as a dict, and the forecasts and events frames."""

    summary: dict[str, Any]
    forecasts: pl.DataFrame
    events: pl.DataFrame
    runs: list[RunSummary]


def backtest(
    config: Config | None = None,
    *,
    data: SeriesFrame | None = None,
    out: str | Path | None = None,
    report: bool = True,
    progress: bool | None = None,
) -> BacktestResult:
    """Replay the feed through ``config`` and every ``config.backtest.compare`` variant, and score them.

    ``config`` defaults to :func:`~adaptcast.streams.config.load_config` (file, environment);
    ``data`` to the feed it names. With ``out`` the files the CLI writes go there: forecasts.parquet,
    events.parquet, summary.json, and report.html with its plots unless ``report`` is false. With
    ``backtest.pushgateway`` set, each configuration's final numbers are pushed there too.
    """
    cfg = config if config is not None else load_config()
    data = data if data is not None else load_feed(cfg)
    configs = [cfg, *(variant(cfg, text) for text in cfg.backtest.compare)]
    batches = time_batches(data)
    names = [label(cfg)]
    for text, c in zip(cfg.backtest.compare, configs[1:], strict=True):
        names.append(label(c) if label(c) not in names else f"{label(c)} [{text}]")
    if len(set(names)) < len(names):
        raise InputError(f"two compared configurations are the same: {names}")
    done = [
        run_config(data, c, batches, progress=progress, name=n) for c, n in zip(configs, names, strict=True)
    ]
    runs = [run for run, _ in done]
    summary = {
        "schema": SUMMARY_SCHEMA,
        "data": data.name,
        "series": data.frame["series"].n_unique(),
        "steps": len(batches),
        "targets": data.targets,
        "channels": data.channels,
        "lookback": cfg.model.lookback,
        "horizon": cfg.model.horizon,
        "seed": cfg.model.seed,
        "labelled_events": data.events,
        "configs": {r.name: r.summary for r in runs},
    }
    result = BacktestResult(
        summary,
        pl.concat([r.forecasts.with_columns(pl.lit(r.name).alias("config")) for r in runs]),
        pl.concat([r.events.with_columns(pl.lit(r.name).alias("config")) for r in runs]),
        [line for _, line in done],
    )
    if out is not None:
        _write(Path(out), result, runs, data, report)
    if cfg.backtest.pushgateway:
        push_backtest(cfg.backtest.pushgateway, summary)
    return result


def _write(out: Path, result: BacktestResult, runs: list[ConfigRun], data: SeriesFrame, report: bool) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result.forecasts.write_parquet(out / FORECASTS_FILE)
    result.events.write_parquet(out / EVENTS_FILE)
    text = json.dumps(result.summary, indent=2, sort_keys=True, default=_json_default)
    (out / SUMMARY_FILE).write_text(text + "\n")
    if report:
        meta = {k: v for k, v in result.summary.items() if k != "configs"}
        write_report(out, runs, data.events, f"adaptcast backtest — {data.name}", meta)


class CountingTrainer(InlineTrainer):
    """The backtest's inline trainer; it also sums the samples every fit reports seeing, kept or not."""

    def __init__(self, ledger: ComputeLedger):
        super().__init__(ledger)
        self.samples_seen = 0

    def poll(self) -> list[TrainOutcome]:
        done = super().poll()
        self.samples_seen += sum(o.samples_seen for o in done)
        return done


def run_config(
    data: SeriesFrame,
    cfg: Config,
    batches: list[tuple[int, list[Record]]] | None = None,
    progress: bool | None = None,
    name: str | None = None,
    policy: RetrainPolicy | None = None,
) -> tuple[ConfigRun, RunSummary]:
    """Run one configuration over the data on a simulated clock; score it and summarise the run.

    ``name`` labels it in reports (default: model, policy, window and memory); ``policy`` drives
    the loop instead of the configured one (e.g. a benchmark's reference policy).
    """
    batches = batches if batches is not None else time_batches(data)
    sim_now = [0.0]
    try:
        loop = build_loop(cfg, metrics=Metrics(), trainer_factory=CountingTrainer, clock=lambda: sim_now[0])
    except ValueError as exc:
        raise InputError(str(exc)) from None
    if policy is not None:
        loop.adaptation.policy = policy
    rows: list[
        tuple[str, int, int, int, np.ndarray, np.ndarray, str, np.ndarray | None, np.ndarray | None]
    ] = []
    truths: list[Record] = []
    spec = cfg.adaptation.policy if policy is None else policy.spec
    name = name or label(cfg, spec)
    show = sys.stderr.isatty() if progress is None else progress
    for ts, batch in tqdm(batches, desc=name, unit="step", disable=not show, leave=False):
        sim_now[0] = ts / 1000
        res = loop.process(batch)
        truths.extend(res.accepted)
        for f in res.forecasts:
            rows.append(
                (
                    f.series,
                    f.issued_at_ms,
                    f.ts_ms[0],
                    f.ts_ms[-1],
                    f.yhat,
                    f.yhat_base,
                    f.model_version,
                    f.lo,
                    f.hi,
                )
            )
    events = _event_table(loop.events)
    forecasts = _forecast_table(data, rows, loop.horizon, truths, events, loop.levels)
    summary = _summarise(data, cfg, spec, forecasts, events, loop)
    line = RunSummary.from_loop(loop.summary(), data.name, config=name)
    phases = {k: v for k, v in loop.ledger.totals().items() if k != "all"}
    return ConfigRun(name, forecasts, events, summary, phases), line


def bound_columns(levels: tuple[str, ...]) -> list[str]:
    """``lo_80``, ``hi_80``, ``lo_95``, ``hi_95``: the interval columns of forecasts.parquet."""
    return [f"{side}_{lv}" for lv in levels for side in ("lo", "hi")]


def _forecast_table(
    data: SeriesFrame,
    rows: list,
    horizon: int,
    truths: list[Record],
    events: pl.DataFrame,
    levels: tuple[str, ...] = (),
) -> pl.DataFrame:
    """One row per (forecast, lead, target) with the truth the loop scored it on (null where none),
    and the bounds of its interval at each level (NaN before the calibrator knew a residual)."""
    t = data.n_targets
    n = len(rows)
    columns = [
        "series",
        "issued_at",
        "step",
        "ts",
        "target",
        "y",
        "yhat_base",
        "yhat",
        *bound_columns(levels),
    ]
    if n == 0:
        return pl.DataFrame(
            schema={
                "series": pl.String,
                "issued_at": pl.Datetime("ms"),
                "step": pl.Int32,
                "ts": pl.Datetime("ms"),
                "target": pl.String,
                "y": pl.Float64,
                "yhat_base": pl.Float64,
                "yhat": pl.Float64,
                **dict.fromkeys(bound_columns(levels), pl.Float64),
                "model_version": pl.String,
            }
        ).select(*columns, "model_version")
    series = np.repeat(np.array([r[0] for r in rows], dtype=object), horizon * t)
    issued = np.repeat(np.array([r[1] for r in rows], dtype=np.int64), horizon * t)
    period = np.array([(r[3] - r[1]) // horizon for r in rows], dtype=np.int64)
    step = np.tile(np.repeat(np.arange(1, horizon + 1), t), n)
    ts = issued + np.repeat(period, horizon * t) * step
    target = np.tile(np.array(data.targets, dtype=object), n * horizon)
    yhat = np.stack([r[4] for r in rows]).reshape(-1)
    base = np.stack([r[5] for r in rows]).reshape(-1)
    versions = np.repeat(np.array([r[6] for r in rows], dtype=object), horizon * t)
    bounds = {
        f"{side}_{lv}": np.stack([r[k][i] for r in rows]).reshape(-1).astype(np.float64)
        for i, lv in enumerate(levels)
        for k, side in ((7, "lo"), (8, "hi"))
    }
    fc = pl.DataFrame(
        {
            "series": series.tolist(),
            "issued_at": issued,
            "step": step.astype(np.int32),
            "ts": ts,
            "target": target.tolist(),
            "yhat_base": base.astype(np.float64),
            "yhat": yhat.astype(np.float64),
            **bounds,
            "model_version": versions.tolist(),
        }
    ).with_columns(pl.col("issued_at").cast(pl.Datetime("ms")), pl.col("ts").cast(pl.Datetime("ms")))
    out = _without_restarted(
        fc.join(_truth(truths, data.targets), on=["series", "ts", "target"], how="left"), events
    )
    return out.select(*columns, "model_version").sort("issued_at", "series", "step", "target")


def _truth(records: list[Record], targets: list[str]) -> pl.DataFrame:
    """The records the loop accepted, on their grid points, one row per target: never a filled point."""
    return pl.DataFrame(
        {
            "series": [r.series for r in records for _ in targets],
            "ts": [r.ts_ms for r in records for _ in targets],
            "target": targets * len(records),
            "y": [r.values[t] for r in records for t in targets],
        },
        schema={"series": pl.String, "ts": pl.Int64, "target": pl.String, "y": pl.Float64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ms")))


def _without_restarted(fc: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """No truth for a lead past a restart of its series' window (the loop drops those from scoring too)."""
    restarts = events.filter(pl.col("event") == "series_reset").select(
        "series", pl.col("ts").alias("_restart")
    )
    if restarts.is_empty():
        return fc
    fc = fc.sort("issued_at").join_asof(
        restarts.sort("_restart"),
        left_on="issued_at",
        right_on="_restart",
        by="series",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    return fc.with_columns(
        pl.when(pl.col("_restart") <= pl.col("ts")).then(None).otherwise(pl.col("y")).alias("y")
    ).drop("_restart")


def _event_table(events: list[LoopEvent]) -> pl.DataFrame:
    cols = {
        "ts": pl.Datetime("ms"),
        "event": pl.String,
        "reason": pl.String,
        "detector": pl.String,
        "window": pl.Int64,
        "train_samples": pl.Int64,
        "train_seconds": pl.Float64,
        "model_version": pl.String,
        "step": pl.Int64,
        "series": pl.String,  # gap_filled, series_reset
        "steps": pl.Int64,  # grid points filled, or missing before a restart
        "period_ms": pl.Int64,  # the series' period after a restart
        "samples_seen": pl.Int64,
    }
    rows = [{k: d.get(k if k != "ts" else "ts_ms") for k in cols} for d in (e.to_dict() for e in events)]
    return pl.DataFrame(rows, schema={**cols, "ts": pl.Int64}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms"))
    )


def _summarise(
    data: SeriesFrame, cfg: Config, policy: str, fc: pl.DataFrame, events: pl.DataFrame, loop: ForecastLoop
) -> dict[str, Any]:
    scored = fc.drop_nulls("y")
    y, yhat = scored["y"].to_numpy(), scored["yhat"].to_numpy()
    scale = naive_scale(
        [
            g["y"].to_numpy()
            for g in data.frame.select("series", pl.col(data.targets[0]).alias("y")).partition_by("series")
        ]
    )
    totals = loop.ledger.totals()
    train = totals.get("train", {})
    predict_s = sum(totals.get(p, {}).get("cpu_s", 0.0) for p in ("predict", "correct"))
    m = mae(y, yhat) if len(y) else None
    train_s = float(train.get("cpu_s", 0.0))
    fits = {kind: int((events["event"] == kind).sum()) for kind in FIT_OUTCOMES}
    out: dict[str, Any] = {
        "config": {
            "model": cfg.model.kind,
            "policy": policy,
            "window": cfg.adaptation.window,
            "memory": cfg.adaptation.memory,
        },
        "mae": m,
        "mae_base": mae(y, scored["yhat_base"].to_numpy()) if len(y) else None,
        "mse": mse(y, yhat) if len(y) else None,
        "smape": smape(y, yhat) if len(y) else None,
        "mase": mase(y, yhat, scale) if len(y) else None,
        "n_forecasts": loop.n_forecasts,
        "n_scored": len(y),
        "n_retrains": fits["retrain"],
        "n_fits": sum(fits.values()),
        "fit_outcomes": fits,
        "n_drift_alarms": int((events["event"] == "drift").sum()),
        "filled_steps": int(events.filter(pl.col("event") == "gap_filled")["steps"].sum()),
        "series_resets": int((events["event"] == "series_reset").sum()),
        "train_samples": int(train.get("samples", 0)),
        "samples_seen": _samples_seen(events, loop),
        "memory_samples": int(totals.get("correct", {}).get("samples", 0)),
        "train_seconds": train_s if cfg.backtest.timings else None,
        "predict_seconds": predict_s if cfg.backtest.timings else None,
        "error_x_compute": (m * train_s) if (cfg.backtest.timings and m is not None) else None,
        "intervals": interval_scores(scored, loop.levels),
        "events": [_event_score(ev, fc, events, loop) for ev in data.events],
        "post_event": _post_event(data.events, fc),
    }
    return out


def _samples_seen(events: pl.DataFrame, loop: ForecastLoop) -> int:
    """Training work: samples × epochs (or rows × boosting rounds) summed over every fit, kept or not.

    Read from the training events where the loop records it per fit, else from the counting trainer.
    """
    per_fit = events.filter(pl.col("event").is_in(FIT_OUTCOMES))["samples_seen"]
    if per_fit.len() and per_fit.null_count() == 0:
        return int(per_fit.sum())
    return int(getattr(loop.trainer, "samples_seen", 0))


def _issued_after(ev: dict[str, Any], fc: pl.DataFrame) -> pl.DataFrame:
    """Scored rows of forecasts issued in the first ``AFTER_EVENT_STEPS`` steps from ``ev``, on its series."""
    rows = fc.filter(
        pl.col("series").is_in(ev["series"]) & (pl.col("issued_at") >= datetime.fromisoformat(ev["start"]))
    )
    issued = rows["issued_at"].unique().sort().head(AFTER_EVENT_STEPS)
    return rows.filter(pl.col("issued_at").is_in(issued.implode())).drop_nulls("y")


def _post_event(labelled: list[dict[str, Any]], fc: pl.DataFrame) -> dict[str, Any] | None:
    """Error of the forecasts issued just after the labelled events, overall and per lead.

    Pooled over every event except ``UNCORRECTABLE`` kinds; None when there is no such event.
    """
    kept = [ev for ev in labelled if ev["kind"] not in UNCORRECTABLE]
    if not kept:
        return None
    rows = pl.concat([_issued_after(ev, fc) for ev in kept])
    if rows.height == 0:
        return None
    err = rows.with_columns(
        (pl.col("y") - pl.col("yhat")).abs().alias("ae"),
        (pl.col("y") - pl.col("yhat_base")).abs().alias("ae_base"),
    )
    lead = err.group_by("step").agg(pl.col("ae").mean(), pl.col("ae_base").mean()).sort("step")
    return {
        "steps": AFTER_EVENT_STEPS,
        "events": len(kept),
        "n_scored": rows.height,
        "mae": float(err["ae"].mean()),
        "mae_base": float(err["ae_base"].mean()),
        "mae_by_lead": lead["ae"].to_list(),
        "mae_base_by_lead": lead["ae_base"].to_list(),
    }


def interval_scores(scored: pl.DataFrame, levels: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    """Per level: share of truths inside the interval, mean width and mean Winkler score, over the
    scored points that had an interval (NaN bounds: issued before any residual was known)."""
    out: dict[str, dict[str, float | None]] = {}
    for lv in levels:
        rows = scored.filter(pl.col(f"lo_{lv}").is_not_nan() & pl.col(f"hi_{lv}").is_not_nan())
        y, lo, hi = (rows[c].to_numpy() for c in ("y", f"lo_{lv}", f"hi_{lv}"))
        n = len(y)
        out[lv] = {
            "coverage": float(((y >= lo) & (y <= hi)).mean()) if n else None,
            "mean_width": float((hi - lo).mean()) if n else None,
            "winkler": float(winkler(y, lo, hi, float(lv) / 100).mean()) if n else None,
            "n": n,
        }
    return out


def _event_score(
    ev: dict[str, Any], fc: pl.DataFrame, events: pl.DataFrame, loop: ForecastLoop
) -> dict[str, Any]:
    """Detection delay (steps from the event to the first drift alarm) and MAE over the next 50 steps.

    ``mae_after_50`` scores forecasts *for* those steps (some issued before the event);
    ``mae_after_issued`` those issued in them, every lead.
    """
    start = datetime.fromisoformat(ev["start"])
    alarms = events.filter((pl.col("event") == "drift") & (pl.col("ts") >= start)).sort("ts")
    after = fc.filter(pl.col("series").is_in(ev["series"]) & (pl.col("ts") >= start)).drop_nulls("y")
    window = _first_steps(after, AFTER_EVENT_STEPS)
    issued = _issued_after(ev, fc)
    delay = None
    if alarms.height:
        delay = int(fc.filter(pl.col("ts") > start)["ts"].unique().sort().search_sorted(alarms["ts"][0]) + 1)
    return {
        "kind": ev["kind"],
        "start": ev["start"],
        "series": len(ev["series"]),
        "detection_delay_steps": delay,
        "mae_after_50": mae(window["y"].to_numpy(), window["yhat"].to_numpy()) if window.height else None,
        "mae_base_after_50": mae(window["y"].to_numpy(), window["yhat_base"].to_numpy())
        if window.height
        else None,
        "mae_after_issued": mae(issued["y"].to_numpy(), issued["yhat"].to_numpy()) if issued.height else None,
        "mae_base_after_issued": mae(issued["y"].to_numpy(), issued["yhat_base"].to_numpy())
        if issued.height
        else None,
        "intervals_after_100": interval_scores(_first_steps(after, COVERAGE_AFTER_STEPS), loop.levels),
    }


def _first_steps(fc: pl.DataFrame, steps: int) -> pl.DataFrame:
    """The rows of ``fc`` at its first ``steps`` distinct timestamps."""
    stamps = fc["ts"].unique().sort()
    return fc.filter(pl.col("ts") <= stamps[min(steps, len(stamps)) - 1]) if len(stamps) else fc


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")
