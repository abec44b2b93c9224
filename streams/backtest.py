"""Offline backtest: the configured feed on a simulated clock through the live loop, configurations compared.

Rolling origin: at every timestamp each series gets a forecast from the model serving *then*;
retraining runs inline, so a run is reproducible from its seed. The configuration is the one
``adaptcast run`` reads; ``backtest.compare`` lists further configurations as overrides of it.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.policy import RetrainPolicy
from adaptcast.forecast.base import InputError
from adaptcast.forecast.data import SeriesFrame
from adaptcast.streams.backtest_scores import AFTER_EVENT_STEPS, ScoreBoard, interval_scores, series_extent
from adaptcast.streams.backtest_sink import (
    FLUSH_FORECASTS,
    ForecastSink,
    FrameCollector,
    PartWriter,
    bound_columns,
)
from adaptcast.streams.build import build_loop
from adaptcast.streams.config import Config, ConfigError, deep_merge, load_config, parse_scalar
from adaptcast.streams.events import LoopEvent, RetrainFailed, SeriesReset
from adaptcast.streams.feed import declare_schedules, forecasting, iter_time_batches, load_feed
from adaptcast.streams.grid import TOO_FAST, own_period
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.pushgateway import PushError, push_backtest
from adaptcast.streams.records import Record
from adaptcast.streams.report import ConfigRun, write_report
from adaptcast.streams.retrain import InlineTrainer, TrainOutcome
from adaptcast.streams.summary import BEAT_PERSISTENCE, RunSummary

log = logging.getLogger("adaptcast.backtest")

SUMMARY_SCHEMA = 1
FORECASTS_FILE, EVENTS_FILE, SUMMARY_FILE = "forecasts.parquet", "events.parquet", "summary.json"
PARTS_DIR = ".forecast-parts"  # chunks of forecasts.parquet while the run writes them
FIT_OUTCOMES = ("retrain", "retrain_rejected", "retrain_failed", "retrain_superseded")  # one per fit
__all__ = ["AFTER_EVENT_STEPS", "backtest", "bound_columns", "interval_scores", "run_config", "variant"]
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


def compare_items(text: str) -> list[tuple[str, str]]:
    """``"policy=periodic:24,model.lookback=96"`` → ``[(dotted key, value text), ...]``, aliases spelt out."""
    items = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = COMPARE_ALIASES.get(key.strip(), key.strip())
        if not sep or "." not in key:
            raise InputError(
                f"compare {text!r}: each item must be KEY=VALUE with KEY one of "
                f"{', '.join(COMPARE_ALIASES)} or a dotted config key such as model.lookback"
            )
        items.append((key, value.strip()))
    return items


def variant(cfg: Config, text: str) -> Config:
    """``"policy=periodic:24,memory=off"`` → ``cfg`` with those keys replaced (dotted keys work too)."""
    overrides: dict[str, Any] = {}
    for key, value in compare_items(text):
        node = overrides
        *parents, leaf = key.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = parse_scalar(value)
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
    """What a backtest produced: ``summary.json`` as a dict, the events, and the forecasts, read on demand
    (from forecasts.parquet when the run wrote one, so a long run's table is loaded only when asked for)."""

    summary: dict[str, Any]
    scan_forecasts: pl.LazyFrame
    events: pl.DataFrame
    runs: list[RunSummary]

    @property
    def forecasts(self) -> pl.DataFrame:
        return self.scan_forecasts.collect()


def backtest(
    config: Config | None = None,
    *,
    data: SeriesFrame | None = None,
    out: str | Path | None = None,
    report: bool = True,
    progress: bool | None = None,
    flush_forecasts: int = FLUSH_FORECASTS,
) -> BacktestResult:
    """Replay the feed through ``config`` and every ``config.backtest.compare`` variant, and score them.

    ``config`` defaults to :func:`~adaptcast.streams.config.load_config` (file, environment);
    ``data`` to the feed it names. With ``out`` the files the CLI writes go there: forecasts.parquet,
    events.parquet, summary.json, and report.html with its plots unless ``report`` is false; the
    forecasts are written in chunks of ``flush_forecasts`` final forecasts as the run goes, so memory
    does not grow with the run. With ``backtest.pushgateway`` set, each configuration's final numbers
    are pushed there too.
    """
    cfg = config if config is not None else load_config()
    data = data if data is not None else load_feed(cfg)
    cfg = declare_schedules(forecasting(cfg, data.targets), data)
    configs = [cfg, *(variant(cfg, text) for text in cfg.backtest.compare)]
    names = [label(cfg)]
    for text, c in zip(cfg.backtest.compare, configs[1:], strict=True):
        names.append(label(c) if label(c) not in names else f"{label(c)} [{text}]")
    if len(set(names)) < len(names):
        raise InputError(f"two compared configurations are the same: {names}")
    parts = None if out is None else Path(out) / PARTS_DIR
    if parts is not None and parts.exists():
        shutil.rmtree(parts)  # left by an interrupted run
    done = [
        run_config(
            data,
            c,
            progress=progress,
            name=n,
            parts=None if parts is None else parts / str(i),
            flush_forecasts=flush_forecasts,
        )
        for i, (c, n) in enumerate(zip(configs, names, strict=True))
    ]
    runs = [run for run, _ in done]
    summary = {
        "schema": SUMMARY_SCHEMA,
        "data": data.name,
        "series": data.n_series,
        "steps": data.frame["ts"].n_unique(),
        "missing_rows": 0 if data.missing is None else data.missing.rows,
        "duplicate_rows": data.duplicates,
        "targets": data.targets,
        "channels": data.channels,
        "lookback": cfg.model.lookback,
        "horizon": cfg.model.horizon,
        "seed": cfg.model.seed,
        "labelled_events": data.events,
        "configs": {r.name: r.summary for r in runs},
    }
    events = pl.concat([r.events.with_columns(pl.lit(r.name).alias("config")) for r in runs])
    forecasts = pl.concat([r.forecasts.lazy().with_columns(pl.lit(r.name).alias("config")) for r in runs])
    if out is not None:
        forecasts = _write(Path(out), summary, forecasts, events, runs, data, report)
    if cfg.backtest.pushgateway:
        try:
            push_backtest(cfg.backtest.pushgateway, summary)
        except PushError as exc:
            kept = f"; the run itself finished and wrote {out}" if out is not None else ""
            raise PushError(f"{exc}{kept}") from None
    return BacktestResult(summary, forecasts, events, [line for _, line in done])


def _write(
    out: Path,
    summary: dict[str, Any],
    forecasts: pl.LazyFrame,
    events: pl.DataFrame,
    runs: list[ConfigRun],
    data: SeriesFrame,
    report: bool,
) -> pl.LazyFrame:
    """The output files; the report reads forecasts.parquet back lazily. Returns a scan of that file."""
    out.mkdir(parents=True, exist_ok=True)
    forecasts.sink_parquet(out / FORECASTS_FILE)
    shutil.rmtree(out / PARTS_DIR, ignore_errors=True)
    written = pl.scan_parquet(out / FORECASTS_FILE)
    events.write_parquet(out / EVENTS_FILE)
    text = json.dumps(summary, indent=2, sort_keys=True, default=_json_default)
    (out / SUMMARY_FILE).write_text(text + "\n")
    if report:
        for run in runs:
            run.forecasts = written.filter(pl.col("config") == run.name)
        meta = {k: v for k, v in summary.items() if k != "configs"}
        write_report(out, runs, data.events, f"adaptcast backtest — {data.name}", meta)
    return written


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
    batches: Iterable[tuple[int, list[Record]]] | None = None,
    progress: bool | None = None,
    name: str | None = None,
    policy: RetrainPolicy | None = None,
    parts: Path | None = None,
    flush_forecasts: int = FLUSH_FORECASTS,
) -> tuple[ConfigRun, RunSummary]:
    """Run one configuration over the data on a simulated clock; score it and summarise the run.

    ``name`` labels it in reports (default: model, policy, window and memory); ``policy`` drives
    the loop instead of the configured one (e.g. a benchmark's reference policy). The forecasts go
    to Parquet chunks in ``parts`` as they become final (in memory without it); the run's
    ``forecasts`` read them lazily.
    """
    sim_now = [0.0]
    try:
        loop = build_loop(cfg, metrics=Metrics(), trainer_factory=CountingTrainer, clock=lambda: sim_now[0])
    except ValueError as exc:
        raise InputError(str(exc)) from None
    longest, scale = series_extent(data.frame, data.targets[0])
    if longest < loop.min_train_rows + loop.horizon:
        raise InputError(
            f"{data.name}: the longest series has {longest} rows, but the first model is trained after "
            f"{loop.min_train_rows} (adaptation.min_train_rows) and its forecasts are scored {loop.horizon} "
            "steps later, so nothing would be scored; use a longer file, or lower --min-train-rows, "
            "--lookback or --horizon"
        )
    if policy is not None:
        loop.adaptation.policy = policy
    spec = cfg.adaptation.policy if policy is None else policy.spec
    name = name or label(cfg, spec)
    writer = FrameCollector() if parts is None else PartWriter(parts)
    scores = ScoreBoard(loop.levels, data.events)

    def write(chunk: pl.DataFrame) -> None:
        scores.add(chunk)
        writer(chunk)

    sink = ForecastSink(data.targets, loop.horizon, loop.levels, write, flush_forecasts)
    show = sys.stderr.isatty() if progress is None else progress
    steps = iter_time_batches(data) if batches is None else batches
    total = data.frame["ts"].n_unique() if batches is None else None
    rejected: Counter[str] = Counter()  # what a worker would have dead-lettered, by reason
    for ts, batch in tqdm(steps, desc=name, unit="step", total=total, disable=not show, leave=False):
        sim_now[0] = ts / 1000
        res = loop.process(batch)
        sink.add(ts, res.forecasts, res.accepted, res.events)
        rejected.update(err.reason for _, err in res.rejected)
    sink.close()
    events = _event_table(loop.events)
    totals = {**loop.summary(), "series": data.n_series}
    summary = {
        **_summarise(cfg, spec, scores, scale, events, loop),
        "mae_persistence": totals["mae_persistence"],  # the value at issue repeated, on the same points
        "records_rejected": dict(sorted(rejected.items())),
    }
    line = RunSummary.from_loop(totals, data.name, rejected=rejected.total(), config=name)
    failed = [e.error or "no message" for e in loop.events if isinstance(e, RetrainFailed)]
    resets = [e for e in loop.events if isinstance(e, SeriesReset)]
    restarts = Counter(e.reason for e in resets)
    moved = Counter(e.period_ms for e in resets if e.reason == "grid_change" and e.period_ms)
    period = moved.most_common(1)[0][0] if moved else None
    advices = what_went_wrong(
        line, rejected, restarts, loop.lookback, failed, summary["mae_persistence"], period
    )
    for advice in advices:
        log.warning("%s [%s]: %s", data.name, name, advice)
    phases = {k: v for k, v in loop.ledger.totals().items() if k != "all"}
    return ConfigRun(name, writer.scan(), events, summary, phases), line


def what_went_wrong(
    line: RunSummary,
    rejected: Counter[str],
    restarts: Counter[str],
    lookback: int,
    failed: Iterable[str] = (),
    persistence: float | None = None,
    period: int | None = None,
) -> list[str]:
    """What a run's numbers say about a feed or a model the settings do not fit, and what to change:
    fits that raised (``failed``: their errors), most records off the grid, no forecast at all (with
    the series' ``restarts`` by reason, ``gap`` or ``grid_change``), or forecasts that erred more than
    repeating the last value would have (``persistence``: its MAE on the same points). ``period``,
    the one a series most often moved onto a new grid of, is named as the one to aggregate to."""
    out = []
    own = own_period(period)  # the feed's own period where it is a fixed one; else an example
    every = own or "10min"
    if line.mae is not None and persistence is not None and line.mae > persistence:
        out.append(
            f"the forecasts erred more than repeating each series' last value would have (MAE "
            f"{line.mae:.4g} against {persistence:.4g}, {line.mae / persistence:.2f}x): the model found "
            "nothing to learn that the last value does not already say, as on a random walk (prices, "
            f"exchange rates). {BEAT_PERSISTENCE}"
        )
    failed = list(failed)
    if failed:
        served = "the model before each kept serving" if line.forecasts else "no model was ever trained"
        out.append(
            f"{len(failed)} fit{'s' if len(failed) > 1 else ''} failed ({served}); the first: "
            f"{failed[0]}. Check model.params and the training settings (adaptation.history, the model size)"
        )
    misplaced = rejected["off_grid"] + rejected["duplicate"]
    if misplaced > 0.05 * line.records:
        out.append(
            f"{misplaced} of {line.records} records were off the grid or on a point already taken: a "
            f"feed {TOO_FAST} needs its rate declared (--frequency 256Hz), one that keeps no regular "
            f"interval a period to aggregate to (--frequency {every} --resample mean; grid.frequency, "
            "grid.resample: mean; opening hours as the period if it closes: --frequency '30min "
            "Mon-Fri 08:00-17:00' --resample mean), a "
            "jittered one a larger grid.tolerance, hours kept on a local clock through daylight saving "
            "their time zone in grid.frequency (e.g. '1h Mon-Fri 09:00-17:00 Europe/Berlin')"
        )
    if line.forecasts == 0 and line.records >= lookback and not failed:
        gaps, regrids = restarts["gap"], restarts["grid_change"]
        if gaps and gaps >= regrids:
            why = (
                f"the series restarted {gaps} times after gaps longer than grid.max_fill before holding "
                f"{lookback} rows (model.lookback): a feed that closes at night or at weekends needs its "
                "hours in grid.frequency (e.g. '1h Mon-Fri 09:00-18:00', with --resample mean if it keeps "
                "no regular interval while open); a gappy one a larger grid.max_fill"
            )
        elif regrids:
            why = (
                f"the series moved onto a new grid {regrids} times before holding {lookback} rows "
                "(model.lookback): its records keep no interval one grid holds; "
                + ("" if own else "declare the rate it samples at (--frequency 64Hz) or ")
                + f"give it a period to aggregate to (--frequency {every} --resample mean)"
            )
        else:
            why = f"no series held {lookback} rows (model.lookback) on its grid"
        out.append(f"no forecasts: {why}")
    return out


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
        "cleaned": pl.Int64,  # glitches replaced in a fit's training rows
    }
    rows = [{k: d.get(k if k != "ts" else "ts_ms") for k in cols} for d in (e.to_dict() for e in events)]
    return pl.DataFrame(rows, schema={**cols, "ts": pl.Int64}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms"))
    )


def _summarise(
    cfg: Config, policy: str, scores: ScoreBoard, scale: float, events: pl.DataFrame, loop: ForecastLoop
) -> dict[str, Any]:
    """The summary's figures for one configuration; ``scale`` is the feed's MASE denominator."""
    totals = loop.ledger.totals()
    train = totals.get("train", {})
    predict_s = sum(totals.get(p, {}).get("cpu_s", 0.0) for p in ("predict", "correct"))
    errors = scores.errors(scale)
    m = errors["mae"]
    train_s = float(train.get("cpu_s", 0.0))
    fits = {kind: int((events["event"] == kind).sum()) for kind in FIT_OUTCOMES}
    out: dict[str, Any] = {
        "config": {
            "model": cfg.model.kind,
            "policy": policy,
            "window": cfg.adaptation.window,
            "memory": cfg.adaptation.memory,
        },
        **errors,
        "n_forecasts": loop.n_forecasts,
        "n_clipped": loop.n_clipped,
        "n_persisted": loop.n_persisted,
        "n_scored": scores.n,
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
        "intervals": scores.interval_scores(),
        "events": scores.event_scores(events),
        "post_event": scores.post_event(),
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


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")
