"""Offline backtest: replay history on a simulated clock through the live loop, compare configurations.

Rolling origin: at every timestamp each series gets a forecast from the model serving *then*;
retraining runs inline, so a run is reproducible from its seed.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from tqdm import tqdm

from adaptcast.drift.policy import RetrainPolicy, WindowRule
from adaptcast.forecast.base import FORECASTERS, InputError, create_forecaster
from adaptcast.forecast.data import read_frame
from adaptcast.forecast.metrics import mae, mase, mse, naive_scale, smape
from adaptcast.streams.events import Event
from adaptcast.streams.loop import ForecastLoop
from adaptcast.streams.metrics import Metrics
from adaptcast.streams.records import Record
from adaptcast.streams.report import ConfigRun, write_report
from adaptcast.streams.retrain import make_policy
from adaptcast.streams.scenarios import make_scenario

SUMMARY_SCHEMA = 1
AFTER_EVENT_STEPS = 50
COMPARE_KEYS = ("model", "policy", "window", "memory")


@dataclass
class BacktestData:
    """A long frame ``ts, series, <channels…>`` sorted by time then series, plus labelled events."""

    name: str
    frame: pl.DataFrame
    channels: list[str]
    n_targets: int
    events: list[dict[str, Any]]

    @property
    def targets(self) -> list[str]:
        return self.channels[: self.n_targets]


@dataclass(frozen=True)
class RunSpec:
    """One configuration to replay: model kind, retrain policy, window rule and error memory."""

    model: str = "arnet"
    policy: str = "drift"
    window: str = "vh"
    memory: bool = True

    def __post_init__(self) -> None:
        if self.model not in FORECASTERS:
            raise InputError(f"unknown model {self.model!r}; choose one of: {', '.join(sorted(FORECASTERS))}")
        try:
            RetrainPolicy.parse(self.policy)
            WindowRule.parse(self.window)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    @property
    def label(self) -> str:
        return f"{self.model} {self.policy} {self.window} memory={'on' if self.memory else 'off'}"

    def with_overrides(self, text: str) -> RunSpec:
        """``"policy=periodic:24,window=full,memory=off"`` → a copy with those keys replaced."""
        changes: dict[str, Any] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or key not in COMPARE_KEYS:
                raise InputError(
                    f"--compare {text!r}: each item must be KEY=VALUE with KEY in {', '.join(COMPARE_KEYS)}"
                )
            changes[key] = (
                parse_on_off(value.strip(), "--compare memory") if key == "memory" else value.strip()
            )
        if not changes:
            raise InputError(f"--compare {text!r} changes nothing; write e.g. policy=periodic:24,memory=off")
        return replace(self, **changes)


def parse_on_off(value: str, what: str) -> bool:
    if value.lower() in ("on", "true", "yes", "1"):
        return True
    if value.lower() in ("off", "false", "no", "0"):
        return False
    raise InputError(f"{what} must be on or off, got {value!r}")


# ---- data ---------------------------------------------------------------------------------------------------


def scenario_data(name: str, series: int, steps: int, seed: int) -> BacktestData:
    try:
        sc = make_scenario(name, series=series, steps=steps, seed=seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    events = [e.to_dict() for e in sc.events]
    return BacktestData(name, sc.frame, [sc.target], 1, events)


def file_data(
    path: str | Path, targets: list[str], features: list[str], series_col: str | None, time_col: str | None
) -> BacktestData:
    """Read a wide (one series) or long (``series_col``) file, strictly: no duplicates, sorted time, no NaN."""
    raw = read_frame(path, time_col=time_col, duplicates="last") if series_col is None else None
    if raw is not None:
        if not raw.report.was_sorted:
            raise InputError(
                f"{path}: timestamps in {raw.time_col!r} are not in increasing order; sort the file by time"
            )
        if raw.report.duplicates_dropped:
            raise InputError(
                f"{path}: column {raw.time_col!r} has {raw.report.duplicates_dropped} duplicate timestamps; keep one row per time"
            )
        frame, tcol = raw.frame.with_columns(pl.lit(Path(path).stem).alias("series")), raw.time_col
    else:
        frame, tcol = _long_frame(Path(path), series_col, time_col)
    channels = [*targets, *[f for f in features if f not in targets]]
    if not targets:
        raise InputError(f"{path}: choose the target column(s) with --target")
    for c in channels:
        if c not in frame.columns:
            raise InputError(
                f"{path}: column {c!r} not found; columns are {[x for x in frame.columns if x not in (tcol, 'series')]}"
            )
        if not frame.schema[c].is_numeric():
            raise InputError(f"{path}: column {c!r} is {frame.schema[c]}, not numeric")
        bad = frame[c].is_null() | frame[c].cast(pl.Float64).is_nan()
        if bad.any():
            first = frame.filter(bad)[tcol][0]
            raise InputError(
                f"{path}: column {c!r} has {int(bad.sum())} missing/NaN values (first at {first}); fill or drop those rows"
            )
    frame = frame.select(
        pl.col(tcol).alias("ts"),
        pl.col("series").cast(pl.String),
        *[pl.col(c).cast(pl.Float64) for c in channels],
    )
    return BacktestData(
        Path(path).stem, frame.sort("ts", "series", maintain_order=True), channels, len(targets), []
    )


def _long_frame(path: Path, series_col: str, time_col: str | None) -> tuple[pl.DataFrame, str]:
    from adaptcast.forecast.data import validate_frame

    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        df = (
            pl.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".pq")
            else pl.read_csv(path, infer_schema_length=10000)
        )
    except pl.exceptions.NoDataError:
        raise InputError(f"{path}: file is empty; it needs a header row and data rows") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise InputError(f"{path}: cannot parse ({str(exc).splitlines()[0]})") from None
    if series_col not in df.columns:
        raise InputError(f"{path}: series column {series_col!r} not found; columns are {df.columns}")
    parts = []
    for key, group in df.group_by(series_col, maintain_order=True):
        tf = validate_frame(
            group.drop(series_col), time_col=time_col, source=f"{path} (series {key[0]})", duplicates="error"
        )
        if not tf.report.was_sorted:
            raise InputError(
                f"{path}: timestamps of series {key[0]!r} are not in increasing order; sort the file by time"
            )
        parts.append(tf.frame.with_columns(pl.lit(str(key[0])).alias("series")))
        time_col = tf.time_col
    assert time_col is not None
    return pl.concat(parts), time_col


def to_batches(data: BacktestData) -> list[tuple[int, list[Record]]]:
    """Records grouped by timestamp, in time order (one batch = one step of the simulated clock)."""
    ts_ms = (data.frame["ts"].dt.epoch("ms")).to_numpy()
    series = data.frame["series"].to_list()
    values = data.frame.select(data.channels).to_numpy()
    batches: list[tuple[int, list[Record]]] = []
    for i, t in enumerate(ts_ms):
        rec = Record(series[i], int(t), dict(zip(data.channels, map(float, values[i]), strict=False)))
        if batches and batches[-1][0] == t:
            batches[-1][1].append(rec)
        else:
            batches.append((int(t), [rec]))
    return batches


# ---- replay ---------------------------------------------------------------------------------------------------


@dataclass
class BacktestOptions:
    lookback: int = 48
    horizon: int = 12
    seed: int = 0
    params: dict[str, Any] | None = None
    min_train_rows: int | None = None
    history: int = 100_000
    timings: bool = True
    progress: bool | None = None
    memory_params: dict[str, Any] | None = None


def replay(
    data: BacktestData,
    spec: RunSpec,
    opts: BacktestOptions,
    batches: list[tuple[int, list[Record]]] | None = None,
) -> ConfigRun:
    """Run one configuration over the data and score it."""
    batches = batches if batches is not None else to_batches(data)
    params = dict(opts.params or {})
    try:
        template = create_forecaster(
            spec.model,
            lookback=opts.lookback,
            horizon=opts.horizon,
            n_features=len(data.channels),
            n_targets=data.n_targets,
            seed=opts.seed,
            **params,
        )
    except TypeError as exc:
        raise InputError(f"--param: {exc}") from None
    policy = make_policy(spec.policy, spec.window, opts.lookback, opts.horizon, opts.history)
    sim_now = [0.0]
    loop = ForecastLoop(
        template,
        data.channels,
        policy=policy,
        memory={"seed": opts.seed, **(opts.memory_params or {})} if spec.memory else None,
        min_train_rows=opts.min_train_rows,
        history=opts.history,
        metrics=Metrics(),
        clock=lambda: sim_now[0],
    )
    rows: list[tuple[str, int, int, int, np.ndarray, np.ndarray, str]] = []
    show = sys.stderr.isatty() if opts.progress is None else opts.progress
    for ts, batch in tqdm(batches, desc=spec.label, unit="step", disable=not show, leave=False):
        sim_now[0] = ts / 1000
        res = loop.process(batch)
        for f in res.forecasts:
            rows.append(
                (f.series, f.issued_at_ms, f.ts_ms[0], f.ts_ms[-1], f.yhat, f.yhat_base, f.model_version)
            )
    forecasts = _forecast_table(data, rows, loop.horizon)
    events = _event_table(loop.events)
    summary = _summarise(data, spec, forecasts, events, loop, opts)
    return ConfigRun(spec.label, forecasts, events, summary)


def _forecast_table(data: BacktestData, rows: list, horizon: int) -> pl.DataFrame:
    """One row per (forecast, lead, target) with the truth joined in (null where never observed)."""
    t = data.n_targets
    n = len(rows)
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
                "model_version": pl.String,
            }
        )
    series = np.repeat(np.array([r[0] for r in rows], dtype=object), horizon * t)
    issued = np.repeat(np.array([r[1] for r in rows], dtype=np.int64), horizon * t)
    period = np.array([(r[3] - r[1]) // horizon for r in rows], dtype=np.int64)
    step = np.tile(np.repeat(np.arange(1, horizon + 1), t), n)
    ts = issued + np.repeat(period, horizon * t) * step
    target = np.tile(np.array(data.targets, dtype=object), n * horizon)
    yhat = np.stack([r[4] for r in rows]).reshape(-1)
    base = np.stack([r[5] for r in rows]).reshape(-1)
    versions = np.repeat(np.array([r[6] for r in rows], dtype=object), horizon * t)
    fc = pl.DataFrame(
        {
            "series": series.tolist(),
            "issued_at": issued,
            "step": step.astype(np.int32),
            "ts": ts,
            "target": target.tolist(),
            "yhat_base": base.astype(np.float64),
            "yhat": yhat.astype(np.float64),
            "model_version": versions.tolist(),
        }
    ).with_columns(pl.col("issued_at").cast(pl.Datetime("ms")), pl.col("ts").cast(pl.Datetime("ms")))
    truth = data.frame.unpivot(
        index=["ts", "series"], on=data.targets, variable_name="target", value_name="_truth"
    )
    truth = truth.with_columns(pl.col("ts").cast(pl.Datetime("ms"))).rename({"_truth": "y"})
    out = fc.join(truth, on=["series", "ts", "target"], how="left")
    return out.select(
        "series", "issued_at", "step", "ts", "target", "y", "yhat_base", "yhat", "model_version"
    ).sort("issued_at", "series", "step", "target")


def _event_table(events: list[Event]) -> pl.DataFrame:
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
    }
    rows = [{k: d.get(k if k != "ts" else "ts_ms") for k in cols} for d in (e.to_dict() for e in events)]
    return pl.DataFrame(rows, schema={**cols, "ts": pl.Int64}).with_columns(
        pl.col("ts").cast(pl.Datetime("ms"))
    )


def _summarise(
    data: BacktestData,
    spec: RunSpec,
    fc: pl.DataFrame,
    events: pl.DataFrame,
    loop: ForecastLoop,
    opts: BacktestOptions,
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
    out: dict[str, Any] = {
        "config": {"model": spec.model, "policy": spec.policy, "window": spec.window, "memory": spec.memory},
        "mae": m,
        "mae_base": mae(y, scored["yhat_base"].to_numpy()) if len(y) else None,
        "mse": mse(y, yhat) if len(y) else None,
        "smape": smape(y, yhat) if len(y) else None,
        "mase": mase(y, yhat, scale) if len(y) else None,
        "n_forecasts": loop.n_forecasts,
        "n_scored": len(y),
        "n_retrains": int((events["event"] == "retrain").sum()),
        "n_drift_alarms": int((events["event"] == "drift").sum()),
        "train_samples": int(train.get("samples", 0)),
        "train_seconds": train_s if opts.timings else None,
        "predict_seconds": predict_s if opts.timings else None,
        "error_x_compute": (m * train_s) if (opts.timings and m is not None) else None,
        "events": [_event_score(ev, fc, events, loop) for ev in data.events],
    }
    return out


def _event_score(
    ev: dict[str, Any], fc: pl.DataFrame, events: pl.DataFrame, loop: ForecastLoop
) -> dict[str, Any]:
    """Detection delay (steps from the event start to the first drift alarm) and MAE over the next 50 steps."""
    from datetime import datetime

    start = datetime.fromisoformat(ev["start"])
    alarms = events.filter((pl.col("event") == "drift") & (pl.col("ts") >= start)).sort("ts")
    after = fc.filter(pl.col("series").is_in(ev["series"]) & (pl.col("ts") >= start)).drop_nulls("y")
    stamps = after["ts"].unique().sort()
    horizon_end = stamps[min(AFTER_EVENT_STEPS, len(stamps)) - 1] if len(stamps) else None
    window = after.filter(pl.col("ts") <= horizon_end) if horizon_end is not None else after
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
    }


def run_backtest(
    data: BacktestData, specs: list[RunSpec], opts: BacktestOptions, out: Path, report: bool = True
) -> dict[str, Any]:
    """Replay every configuration; write forecasts/events parquet, summary.json and the HTML report."""
    out.mkdir(parents=True, exist_ok=True)
    batches = to_batches(data)
    runs = [replay(data, spec, opts, batches) for spec in specs]
    frames = [r.forecasts.with_columns(pl.lit(r.name).alias("config")) for r in runs]
    pl.concat(frames).write_parquet(out / "forecasts.parquet")
    pl.concat([r.events.with_columns(pl.lit(r.name).alias("config")) for r in runs]).write_parquet(
        out / "events.parquet"
    )
    summary = {
        "schema": SUMMARY_SCHEMA,
        "data": data.name,
        "series": data.frame["series"].n_unique(),
        "steps": len(batches),
        "targets": data.targets,
        "channels": data.channels,
        "lookback": opts.lookback,
        "horizon": opts.horizon,
        "seed": opts.seed,
        "labelled_events": data.events,
        "configs": {r.name: r.summary for r in runs},
    }
    (out / "summary.json").write_text(
        json.dumps(summary, indent=2, sort_keys=True, default=_json_default) + "\n"
    )
    if report:
        write_report(
            out,
            runs,
            data.events,
            f"adaptcast backtest — {data.name}",
            {k: v for k, v in summary.items() if k != "configs"},
        )
    return summary


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")
