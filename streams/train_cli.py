"""``adaptcast train`` and ``adaptcast predict``: the forecasting API from the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from pathlib import Path
from typing import Any, get_args

import click
import numpy as np
import polars as pl

from adaptcast.forecast.base import (
    FORECASTERS,
    BaseForecaster,
    InputError,
    create_forecaster,
    load_forecaster,
)
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.forecast.data import (
    N_TIME_FEATURES,
    ROW_TIME,
    Duplicates,
    FrameReport,
    SeriesFrame,
    TimeFrame,
    Windows,
    channel_matrix,
    channel_names,
    implied_series_col,
    layout_conflict,
    make_windows,
    numeric_matrix,
    read_frame,
    read_series,
    read_table,
)
from adaptcast.forecast.envelope import Bounds
from adaptcast.forecast.metrics import mae, mse
from adaptcast.forecast.windows import auto_norm, split_train_val
from adaptcast.streams.build import template_from_config
from adaptcast.streams.calendar import advance, is_calendar, months, nominal_ms
from adaptcast.streams.calendar import describe as describe_period
from adaptcast.streams.cli_common import (
    CONFIG_OPTION,
    FREQUENCY_OPTION,
    RESAMPLE_OPTION,
    UserError,
    bootstrap_option,
    config_or_exit,
    grid_overrides,
    model_overrides,
    model_shape_options,
    servers_override,
    set_override,
    split_columns,
    table_out_option,
    write_frame,
)
from adaptcast.streams.config import Config
from adaptcast.streams.feed import forecasting, row_step, sole_value
from adaptcast.streams.formats import shape_for
from adaptcast.streams.grid import Fill, GridRules, parse_period
from adaptcast.streams.publish import publish
from adaptcast.streams.rate import from_seconds, in_seconds, is_rate
from adaptcast.streams.records import SchemaUnavailable, format_timestamp
from adaptcast.streams.regular import OnGrid, file_period, on_grid
from adaptcast.streams.resample import Resample
from adaptcast.streams.retrain import training_set
from adaptcast.streams.schedule import is_scheduled
from adaptcast.streams.schema_registry import registry_for
from adaptcast.streams.summary import BEAT_PERSISTENCE
from adaptcast.streams.topic_history import describe, recent_values, series_histories, worker_messages


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn InputError/ValueError/FileNotFoundError from the library into exit-code-2 messages."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (InputError, ValueError, FileNotFoundError) as exc:
            raise UserError(str(exc)) from None

    return wrapper


def _times_ms(times: pl.Series) -> np.ndarray:
    return times.cast(pl.Datetime("ms")).to_physical().to_numpy()


def grid_schema(period: int, rules: GridRules) -> dict[str, Any]:
    """What a manifest records of the grid a model was trained on; :func:`model_grid` reads it back."""
    return {
        "step_seconds": nominal_ms(period) / 1000 if is_calendar(period) else in_seconds(period),
        "step_months": -period if is_calendar(period) and not is_scheduled(period) else None,
        "step_schedule": describe_period(period) if is_scheduled(period) else None,
        "grid": {"fill": rules.fill.value, "max_fill": rules.max_fill, "resample": rules.resample.value},
    }


def gridded(tf: TimeFrame, columns: list[str], rules: GridRules) -> tuple[TimeFrame, OnGrid]:
    """The file's rows of ``columns`` on its time grid (streams/regular.py), as a frame to window."""
    times = tf.frame[tf.time_col]
    g = on_grid(_times_ms(times), numeric_matrix(tf, columns, missing_ok=True), rules)
    if g.ts_ms.size == 0:
        raise InputError(f"{tf.source}: no row has a value in every one of {columns}")
    frame = pl.DataFrame(
        {
            tf.time_col: pl.Series(g.ts_ms, dtype=pl.Int64).cast(pl.Datetime("ms")).cast(times.dtype),
            **{c: g.values[:, j] for j, c in enumerate(columns)},
        }
    )
    return replace(tf, frame=frame), g


def model_grid(model: BaseForecaster, tf: TimeFrame) -> GridRules:
    """The grid a trained model forecasts on: its step, and the gap rules it was trained with (a
    quarter of its lookback, linear, for a model saved before they were recorded). The file must
    have that step, unless the model was trained on resampled rows (its rows are then resampled to
    it); a model that records none (trained on a topic's series) takes the file's."""
    schema = model.schema
    recorded = schema.get("grid") or {}
    rules = GridRules(
        fill=Fill(recorded.get("fill", Fill.LINEAR.value)),
        max_fill=int(recorded.get("max_fill", model.lookback // 4)),
    )
    resample = Resample(recorded.get("resample", Resample.OFF.value))
    try:
        own = file_period(_times_ms(tf.frame[tf.time_col]), rules)
    except InputError as exc:
        raise InputError(f"{tf.source}: {exc}") from None
    steps, sessions, seconds = (
        schema.get("step_months"),
        schema.get("step_schedule"),
        schema.get("step_seconds"),
    )
    if sessions:
        period = parse_period(str(sessions))
    else:
        period = months(int(steps)) if steps else from_seconds(float(seconds)) if seconds else own
    resampled = resample is not Resample.OFF
    if not resampled and abs(nominal_ms(own) - nominal_ms(period)) > rules.tolerance * nominal_ms(period):
        raise InputError(
            f"{tf.source}: its rows are {describe_period(own)} apart, but the model forecasts steps of "
            f"{describe_period(period)}; give it data at that step"
        )
    return replace(rules, period_ms=period, resample=resample)


def whole_windows(w: Windows, g: OnGrid, start: int, stride: int, span: int) -> Windows:
    """The windows (of rows ``start + i·stride`` … ``+ span``) that no unfilled gap cuts."""
    keep = g.whole(start + stride * np.arange(w.X.shape[0]), span)
    return Windows(w.X[keep], w.Y[keep], w.timestamps[keep])


def errors(yhat: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The validation errors the summary reports."""
    return {"mse": mse(y, yhat), "mae": mae(y, yhat)}


TRAIN_EPILOG = """\b
Examples:
  adaptcast train --model arnet --data ETTh1.csv --target OT --lookback 96 --horizon 24 --out models/ot
  adaptcast train --model lstm --data load.parquet --target load --features temp,hour \\
      --lookback 48 --horizon 12 --time-features --param epochs=10 --out models/load
  adaptcast train --config deploy.yaml --from-topic        # publish to the store the workers follow
  adaptcast train --from-topic --bootstrap-servers 127.0.0.1:9092 --input-topic metrics --target y
  adaptcast train --data sensors.parquet --series-col sensor --target temp --out models/sensors
"""


DUPLICATES_OPTION = click.option(
    "--duplicates",
    default="error",
    show_default=True,
    type=click.Choice(get_args(Duplicates)),
    help="Rows sharing a timestamp: refuse (error), or keep the last/first.",
)


def series_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--series-col`` / ``--series-cols`` / ``--series-rows``: a file of many series, for one model
    over all of them."""
    fn = click.option(
        "--series-rows",
        is_flag=True,
        help="With --data: a series per row (M4's layout), its id the --series-col or first text column, "
        "its values the numeric columns in order, a --frequency step apart; one model for all of them.",
    )(fn)
    fn = click.option(
        "--series-cols",
        "series_cols",
        multiple=True,
        help="With --data: one series per column, these columns ('*': every numeric one), each read "
        "as the one --target; one model for all of them.",
    )(fn)
    return click.option(
        "--series-col",
        help="With --data: the column(s) holding the series id, comma-separated (long layout; default: "
        "a text column named series); one model for all series.",
    )(fn)


def series_layout(series_col: str | None, columns: list[str], series_rows: bool) -> str | None:
    """The flags naming a file of many series, as text (None: one series); refuses two layouts."""
    if why := layout_conflict(series_col, columns, series_rows):
        raise UserError(why)
    named = [
        f
        for f, on in (
            ("--series-col", series_col),
            ("--series-cols", columns),
            ("--series-rows", series_rows),
        )
        if on
    ]
    return "/".join(named) or None


def data_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--data FILE`` (required: CSV, Parquet, Feather, JSON, JSON lines or line protocol), as predict
    reads it."""
    return click.option("--data", "data_path", required=True, type=click.Path(path_type=Path), help=help)


@click.command("train", epilog=TRAIN_EPILOG)
@CONFIG_OPTION
@click.option("--model", "kind", type=click.Choice(sorted(FORECASTERS)), help="Model kind. [model.kind]")
@click.option(
    "--data",
    "data_path",
    type=click.Path(path_type=Path),
    help="CSV, Parquet, Feather, JSON, JSON-lines or line-protocol (.lp) file, also .gz/.zst/.bz2/.xz, "
    "with a time column (or Year and Month columns).",
)
@click.option(
    "--from-topic",
    is_flag=True,
    help="Train on the recent records of the input topic instead of a file. [kafka.*]",
)
@click.option(
    "--records",
    type=click.IntRange(min=1),
    help="With --from-topic: records read from the end of each partition. [state.warm_records]",
)
@bootstrap_option(when="With --from-topic: ")
@click.option("--input-topic", help="With --from-topic: the topic to read. [kafka.input_topic]")
@model_shape_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Save the model in this directory (replaced atomically) instead of publishing it to the store.",
)
@click.option("--state-dir", help="The store is STATE_DIR/models. [state.dir]")
@click.option(
    "--time-col",
    default=None,
    help="Time column (default: one named date, ts, timestamp, time, datetime or ds in any case, "
    "else the one holding dates).",
)
@FREQUENCY_OPTION
@RESAMPLE_OPTION
@series_options
@DUPLICATES_OPTION
@click.option("--time-features", is_flag=True, help="With --data: add hour/weekday/day/day-of-year channels.")
@click.option(
    "--val-fraction",
    default=0.2,
    show_default=True,
    type=click.FloatRange(0.0, 0.9),
    help="With --data: newest share of windows held out for validation / early stopping.",
)
@click.option(
    "--stride",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="With --data: rows between training windows.",
)
@click.option("--seed", type=int, help="[model.seed]")
@user_errors
def train_command(
    config_path: str | None,
    kind: str | None,
    data_path: Path | None,
    from_topic: bool,
    records: int | None,
    bootstrap_servers: str | None,
    input_topic: str | None,
    targets: tuple[str, ...],
    features: tuple[str, ...],
    lookback: int | None,
    horizon: int | None,
    out_dir: Path | None,
    state_dir: str | None,
    time_col: str | None,
    frequency: str | None,
    resample: str | None,
    series_col: str | None,
    series_cols: tuple[str, ...],
    series_rows: bool,
    duplicates: str,
    time_features: bool,
    val_fraction: float,
    stride: int,
    seed: int | None,
    params: tuple[str, ...],
) -> None:
    """Train a forecaster on a file or on the input topic's recent history; prints a JSON summary.

    Reads the same configuration as `adaptcast run` (--config, ADAPTCAST__* variables); each flag
    overrides the config key shown in brackets. Without --out the model becomes a new version in
    the checkpoint store (STATE_DIR/models) and is marked serving when it validates no worse than
    the serving model; workers following the store swap to it without a restart.
    """
    if bool(data_path) == from_topic:
        raise UserError("give exactly one of --data FILE or --from-topic")
    if from_topic and time_features:
        raise UserError("--time-features goes with --data: the workers feed no time channels")
    if not from_topic and (bootstrap_servers or input_topic):
        raise UserError("--bootstrap-servers and --input-topic go with --from-topic")
    overrides: dict[str, Any] = {}
    servers_override(overrides, bootstrap_servers)
    set_override(overrides, "kafka.input_topic", input_topic)
    grid_overrides(overrides, frequency, resample)
    model_overrides(
        overrides,
        kind=kind,
        targets=targets,
        features=features,
        lookback=lookback,
        horizon=horizon,
        seed=seed,
        params=params,
    )
    set_override(overrides, "state.dir", state_dir)
    cfg = config_or_exit(config_path, overrides)
    columns = split_columns(series_cols)
    many = series_layout(series_col, columns, series_rows)
    if many and (from_topic or time_features):
        raise UserError(f"{many} goes with --data and without --time-features")
    # read once, whatever its layout
    table = None if data_path is None else read_table(data_path, cfg.serving.otlp_quantiles)
    if table is not None and not columns and not series_rows and not time_features:
        series_col = series_col or implied_series_col(table)
    if table is not None and not columns and not series_rows:
        cfg = forecasting(cfg, sole_value(cfg, table, data_path, series_col) or cfg.model.targets)
    if table is None:
        model, summary, (vx, vy) = fit_on_topic(cfg, records or cfg.state.warm_records)
    elif series_col or columns or series_rows:
        assert data_path is not None
        model, summary, (vx, vy) = fit_on_series(
            cfg, data_path, series_col, columns, time_col, series_rows, table
        )
    else:
        assert data_path is not None
        model, summary, (vx, vy) = fit_on_file(
            cfg, data_path, time_col, duplicates, time_features, val_fraction, stride, table
        )
    if out_dir is not None:
        model.save(out_dir)
        summary["out"] = str(out_dir)
    else:
        store = CheckpointStore(Path(cfg.state.dir) / "models", keep=cfg.state.keep_versions)
        summary["store"] = {"root": str(store.root), **publish(store, model, vx, vy).to_dict()}
    click.echo(json.dumps(summary, indent=2))
    val = summary.get("val")
    if val is not None and val["mae"] > val["naive"]["mae"]:
        click.echo(
            f"adaptcast train: on the held-out windows the model erred more than repeating the last "
            f"value (MAE {val['mae']:.4g} against {val['naive']['mae']:.4g}): {BEAT_PERSISTENCE}",
            err=True,
        )


Held = tuple[np.ndarray, np.ndarray]  # the windows a model is validated on: X, Y


def fit_on_file(
    cfg: Config,
    data_path: Path,
    time_col: str | None,
    duplicates: str,
    time_features: bool,
    val_fraction: float,
    stride: int,
    table: pl.DataFrame | None = None,
) -> tuple[BaseForecaster, dict[str, Any], Held]:
    """Fit on one series' file (its ``table`` where read already): the newest ``val_fraction`` of the
    windows validates (vs seasonal naive)."""
    m = cfg.model
    tf = read_frame(data_path, time_col, duplicates, row_step(cfg), table)  # type: ignore[arg-type]
    tcols, fcols = m.targets, m.features
    channels = channel_names(tcols, fcols, with_time=time_features)
    rules = cfg.grid.rules(m.lookback)
    tf_grid, g = gridded(tf, channel_names(tcols, fcols), rules)
    hparams = dict(m.params)
    if time_features and "time_features" in getattr(FORECASTERS[m.kind], "defaults", {}):
        hparams.setdefault("time_features", N_TIME_FEATURES)
    lookback, horizon = m.lookback, m.horizon
    span = lookback + horizon - 1  # window s covers rows [s, s + span]
    train_idx, val_idx = split_train_val(max(tf_grid.frame.height - span, 0), horizon, val_fraction)
    cut = train_idx.stop + span  # training reads rows [0, cut)

    def windows(first: int, every: int, stop: int | None = None) -> Windows:
        """Rows ``[first, stop)``'s whole windows, ``every`` rows apart, glitches cleaned first."""
        made = make_windows(
            tf_grid,
            lookback,
            horizon,
            fcols,
            tcols,
            every,
            with_time=time_features,
            start=first,
            stop=stop,
            clean_glitches=True,
        )
        return whole_windows(made, g, first, every, span)

    train = windows(0, stride, cut)
    val = None if val_idx is None else windows(val_idx.start, 1)
    if train.X.shape[0] == 0:
        raise InputError(
            f"{tf.source}: no stretch of {lookback + horizon} consecutive steps to train on: gaps of more "
            f"than grid.max_fill={rules.max_fill} missing steps cut the data into {g.segments} pieces; "
            "fill them, raise grid.max_fill, or lower --lookback/--horizon"
        )
    if val is not None and val.X.shape[0] == 0:
        val = None
    model = create_forecaster(
        m.kind,
        lookback=lookback,
        horizon=horizon,
        n_features=len(channels),
        n_targets=len(tcols),
        seed=m.seed,
        **hparams,
    )
    model.schema = {
        "time_col": tf.time_col,
        "targets": tcols,
        "features": [c for c in fcols if c not in tcols],
        "time_features": time_features,
        "channels": channels,
        **grid_schema(g.period, rules),
        "trained_on": str(data_path),
        "train_rows": cut,
    }
    report = model.fit(train.X, train.Y, val=None if val is None else (val.X, val.Y))
    summary: dict[str, Any] = {
        "model": m.kind,
        "data": tf.report.summary(),
        "grid": g.summary(),
        "train_windows": int(train.X.shape[0]),
        "fit": {k: v for k, v in report.to_dict().items() if k != "extra"},
    }
    if val is None:
        return model, summary, (train.X, train.Y)
    summary["val"] = held_out(model, val.X, val.Y)
    return model, summary, (val.X, val.Y)


def held_out(model: BaseForecaster, X: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
    """The fitted ``model``'s errors on held-out windows beside persistence's (``naive``, the last
    value repeated): the bar a model has to clear."""
    naive = create_forecaster(
        "naive",
        lookback=model.lookback,
        horizon=model.horizon,
        n_features=model.n_features,
        n_targets=model.n_targets,
    )
    naive.fit(X[:1], Y[:1])
    return {"windows": int(X.shape[0]), **errors(model.predict(X), Y), "naive": errors(naive.predict(X), Y)}


def fit_on_topic(cfg: Config, per_partition: int) -> tuple[BaseForecaster, dict[str, Any], Held]:
    """Fit the configured model on the input topic's recent records, split as a worker's own retrain is."""
    m = cfg.model
    recent = recent_values(cfg.kafka, per_partition)
    try:
        histories = series_histories(
            worker_messages(cfg.serving, recent),
            m.channels,
            int(cfg.serving.max_future_s * 1000),
            cfg.grid.rules(m.lookback),
            cfg.serving.record_ts_unit,
            shape_for(
                cfg.serving.record_format,
                cfg.serving.series_field,
                cfg.serving.time_field,
                cfg.serving.otlp_quantiles,
            ),
            registry_for(cfg.kafka),
        )
    except SchemaUnavailable as exc:  # training on the records that could be read would skew the model
        raise InputError(
            f"topic {cfg.kafka.input_topic}: {exc}. Nothing was trained; run again once the registry answers"
        ) from None
    model, summary, held = fit_on_histories(
        cfg,
        list(histories.values()),
        cfg.adaptation.history,
        f"topic {cfg.kafka.input_topic}: in the last {per_partition} records of each partition",
    )
    return model, {**summary, "topic": {"name": cfg.kafka.input_topic, **describe(histories)}}, held


def fit_on_series(
    cfg: Config,
    data_path: Path,
    series_col: str | None,
    series_cols: list[str],
    time_col: str | None,
    series_rows: bool = False,
    table: pl.DataFrame | None = None,
) -> tuple[BaseForecaster, dict[str, Any], Held]:
    """One model for every series of a long (``series_col``), one-series-per-column or
    series-per-row file (its ``table`` where read already), trained as a worker trains on its series:
    each on its time grid, no window across a gap too long to fill."""
    m = cfg.model
    step = row_step(cfg)
    data = read_series(
        data_path, m.targets, m.features, series_col, time_col, series_cols, step, series_rows, table
    )
    rules = cfg.grid.rules(m.lookback)
    histories: list[np.ndarray] = []
    grids: dict[str, OnGrid] = {}
    for part in data.frame.partition_by("series", maintain_order=True):
        if part.height < m.lookback + m.horizon:  # not one window: nothing to learn from it
            continue
        g = on_grid(_times_ms(part["ts"]), part.select(data.channels).to_numpy(), rules)
        grids[part["series"][0]] = g
        histories.append(g.history().astype(np.float32))
    if not grids:
        raise InputError(
            f"{data_path}: no series has lookback + horizon = {m.lookback + m.horizon} rows to train on"
        )
    periods = {describe_period(g.period) for g in grids.values()}
    if len(periods) > 1:
        raise InputError(
            f"{data_path}: the series have different steps ({', '.join(sorted(periods))}); "
            "train one model per step"
        )
    model, summary, held = fit_on_histories(
        cfg, histories, max(len(h) for h in histories), f"{data_path}: in any series"
    )
    model.schema.update(
        grid_schema(next(iter(grids.values())).period, rules),
        time_features=False,
        trained_on=str(data_path),
        otlp_quantiles=list(cfg.serving.otlp_quantiles),  # predict reads a file of the feed alike
    )
    summary["data"] = {
        "series": len(grids),
        "series_too_short": data.frame["series"].n_unique() - len(grids),
        "rows": int(sum(g.ts_ms.size for g in grids.values())),
        "filled": sum(g.filled for g in grids.values()),
        "segments": sum(g.segments for g in grids.values()),
        "missing_rows": 0 if data.missing is None else data.missing.rows,
        "duplicate_rows": data.duplicates,
    }
    return model, summary, held


def fit_on_histories(
    cfg: Config, histories: list[np.ndarray], rows: int, where: str
) -> tuple[BaseForecaster, dict[str, Any], Held]:
    """Fit the configured model on per-series histories (their newest ``rows`` rows each), split and
    normalised as a worker's own retrain on those series is."""
    m = cfg.model
    data = training_set(histories, rows, m.lookback, m.horizon, len(m.targets))
    if data is None:
        raise InputError(
            f"{where}, no series has lookback + horizon = {m.lookback + m.horizon} consecutive rows"
        )
    model = template_from_config(cfg)
    if model.window_norm == "auto":  # as a worker's first retrain on these series would decide
        model.window_norm = auto_norm(histories, len(m.targets), model.level_norm)[0]
    model.schema = {"targets": m.targets, "features": m.features, "channels": m.channels}
    report = model.fit(data.X, data.Y, val=data.val)
    held = data.val if data.val is not None else (data.X, data.Y)
    summary: dict[str, Any] = {
        "model": m.kind,
        "train_windows": data.samples,
        "fit": {k: v for k, v in report.to_dict().items() if k != "extra"},
        "val": held_out(model, *held),
    }
    return model, summary, held


PREDICT_EPILOG = """\b
Examples:
  adaptcast predict --model-dir models/ot --data ETTh1.csv   # next horizon after the last row, CSV to stdout
  adaptcast predict --model-dir models/ot --data recent.parquet --all --out forecasts.parquet
  adaptcast predict --model-dir models/sensors --data sensors.parquet --series-col sensor
"""


def forecast_frame(model: BaseForecaster, tf: TimeFrame, every_window: bool) -> pl.DataFrame:
    """Long-format forecasts: one row per (issued_at, horizon step, target), with ``ts`` the forecast time."""
    windows, issued, period = issue(model, tf, every_window)
    return _forecasts(model, windows, issued, np.full(len(issued), period))


def series_forecasts(
    model: BaseForecaster, data: SeriesFrame, every_window: bool
) -> tuple[pl.DataFrame, list[str]]:
    """:func:`forecast_frame` for every series of ``data`` at once, a ``series`` column first; a series
    with no window to forecast from (too short, or its newest steps cut by a gap) is left out, and
    the reasons are returned."""
    parts, names, skipped = [], [], []
    for part in data.frame.partition_by("series", maintain_order=True):
        name = str(part["series"][0])
        frame = part.drop("series")
        report = FrameReport(frame.height, 0, True, None, 0, None)
        try:
            parts.append(issue(model, TimeFrame(frame, "ts", f"series {name}", report), every_window))
        except InputError as exc:
            skipped.append(str(exc))
            continue
        names.append(name)
    if not parts:
        raise InputError(f"{data.name}: no series has a window to forecast from; first: {skipped[0]}")
    windows = np.concatenate([w for w, _, _ in parts])
    issued = np.concatenate([i for _, i, _ in parts])
    periods = np.concatenate([np.full(len(i), p) for _, i, p in parts])
    frame = _forecasts(model, windows, issued, periods)
    per_series = np.repeat(names, [len(i) * model.horizon * model.n_targets for _, i, _ in parts])
    return frame.insert_column(0, pl.Series("series", per_series)), skipped


def issue(model: BaseForecaster, tf: TimeFrame, every_window: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """The windows ``[B, lookback, channels]`` to forecast from, their issue times and the grid's
    period: the newest window, or with ``every_window`` each one no unfilled gap cuts."""
    schema = model.schema
    if not schema.get("targets"):
        raise InputError(
            "the model's manifest has no data schema (targets/features); "
            "it was not trained by `adaptcast train`"
        )
    L = model.lookback
    rules = model_grid(model, tf)
    tf, g = gridded(tf, channel_names(schema["targets"], schema["features"]), rules)
    values = channel_matrix(tf, schema["targets"], schema["features"], bool(schema.get("time_features")))
    if values.shape[0] < L:
        raise InputError(
            f"{tf.source}: {values.shape[0]} steps, but the model needs at least lookback={L} steps"
        )
    starts = np.arange(values.shape[0] - L + 1)
    whole = g.whole(starts, L - 1)
    if not every_window and not whole[-1]:
        cut = g.ts_ms[np.flatnonzero(g.segment == g.segment[-1])[0]]
        raise InputError(
            f"{tf.source}: the newest {L} steps are cut by a gap of more than grid.max_fill="
            f"{rules.max_fill} missing steps before {format_timestamp(int(cut))}; "
            f"forecast from data whose last {L} steps have at most that many missing in a row"
        )
    starts = starts[whole] if every_window else starts[-1:]
    if starts.size == 0:
        raise InputError(f"{tf.source}: no {L} consecutive steps to forecast from (gaps cut every window)")
    windows = np.lib.stride_tricks.sliding_window_view(values, L, axis=0).transpose(0, 2, 1)[starts]
    issued = tf.frame[tf.time_col].to_numpy()[L - 1 :][starts]
    period = rules.period_ms or g.period
    return np.ascontiguousarray(windows), issued, g.period if is_rate(period) else period  # its phase


def _forecasts(
    model: BaseForecaster, windows: np.ndarray, issued: np.ndarray, periods: np.ndarray
) -> pl.DataFrame:
    """One predict call over ``windows``; rows ``issued_at, ts, step, target, yhat``, the forecast
    times ``periods`` (per window; calendar months keep their day of the month) after each issue."""
    # kept within each window's envelope, as the loop serves them (forecast/envelope.py)
    bounds = Bounds.of(windows, model.n_targets, model.horizon, model.input_bounds)
    yhat, _ = bounds.keep(model.predict(windows))  # [B, H, T]
    B, H, T = yhat.shape
    issued_at = np.repeat(issued, H * T)
    h = np.tile(np.repeat(np.arange(1, H + 1), T), B)
    at_ms = issued_at.astype("datetime64[ms]").astype(np.int64)
    ts = advance(at_ms, np.repeat(periods, H * T), h).astype("datetime64[ms]").astype(issued_at.dtype)
    return pl.DataFrame(
        {
            "issued_at": issued_at,
            "ts": ts,
            "step": h,
            "target": np.tile(np.asarray(model.schema["targets"]), B * H),
            "yhat": yhat.reshape(-1),
        }
    )


@click.command("predict", epilog=PREDICT_EPILOG)
@click.option(
    "--model-dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A directory written by `adaptcast train`.",
)
@data_option("CSV, Parquet, Feather, JSON, JSON lines or line protocol with the same columns as in training.")
@table_out_option("Write .csv or .parquet here (default: CSV to stdout).")
@DUPLICATES_OPTION
@series_options
@click.option(
    "--all", "every_window", is_flag=True, help="Forecast from every window, not just the latest one."
)
@user_errors
def predict_command(
    model_dir: Path,
    data_path: Path,
    out_path: Path | None,
    duplicates: str,
    series_col: str | None,
    series_cols: tuple[str, ...],
    series_rows: bool,
    every_window: bool,
) -> None:
    """Forecast the next horizon after the file's last row (or after every window with --all); with
    --series-col or --series-cols, after each series' last row."""
    model = load_forecaster(model_dir)
    time_col = model.schema.get("time_col")
    # a model trained on a file of values only numbered its rows: a file of its feed is numbered alike
    seconds = model.schema.get("step_seconds")
    calendar = model.schema.get("step_months") or model.schema.get("step_schedule")
    step = round(float(seconds) * 1000) if seconds and not calendar and time_col in (None, ROW_TIME) else None
    time_col = None if time_col == ROW_TIME else time_col
    columns = split_columns(series_cols)
    series_layout(series_col, columns, series_rows)
    table = read_table(data_path, model.schema.get("otlp_quantiles") or ())  # read once, as in training
    series_col = series_col or (None if columns or series_rows else implied_series_col(table))
    if series_col or columns or series_rows:
        targets = model.schema.get("targets") or []
        features = model.schema.get("features") or []
        data = read_series(
            data_path, targets, features, series_col, time_col, columns, step, series_rows, table
        )
        frame, skipped = series_forecasts(model, data, every_window)
        for why in skipped[:5]:
            click.echo(f"skipped {why}", err=True)
        if len(skipped) > 5:
            click.echo(f"skipped {len(skipped) - 5} more series", err=True)
    else:
        tf = read_frame(data_path, time_col, duplicates, step, table)  # type: ignore[arg-type]
        frame = forecast_frame(model, tf, every_window)
    if out_path is None:
        write_frame(frame, sys.stdout)
    else:
        write_frame(frame, out_path)
        windows = frame.height // (model.horizon * model.n_targets)
        click.echo(
            f"wrote {frame.height} forecasts ({windows} windows × {model.horizon} steps) to {out_path}",
            err=True,
        )
