"""The ``adaptcast`` command line."""

from __future__ import annotations

import os

# numpy's small per-batch matrix products (error memory, scoring) are many times slower with a
# multi-threaded BLAS on a busy machine; set before numpy loads, overridable from the environment
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# idle OpenMP threads sleep instead of spinning: on a shared box spinning tripled torch's CPU time per step
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from adaptcast.streams.cli_common import (
    CONFIG_OPTION,
    FREQUENCY_OPTION,
    RESAMPLE_OPTION,
    UserError,
    bootstrap_option,
    check_writable,
    config_or_exit,
    grid_overrides,
    model_overrides,
    model_shape_options,
    reachable_kafka,
    record_options,
    record_overrides,
    servers_override,
    set_override,
    split_columns,
    table_out_option,
    with_options,
    write_frame,
)
from adaptcast.streams.config import to_yaml

LAZY_COMMANDS = {  # imported on use: they pull in torch, which takes seconds to load
    "train": (
        "adaptcast.streams.train_cli",
        "train_command",
        "Train a forecaster on a file or the input topic; save it or publish it to the store.",
    ),
    "predict": (
        "adaptcast.streams.train_cli",
        "predict_command",
        "Forecast with a saved model from a file's latest rows.",
    ),
    "model": (
        "adaptcast.streams.model_cli",
        "model_group",
        "List the model store's versions, or roll back to one.",
    ),
    "peek": (
        "adaptcast.streams.peek_cli",
        "peek_command",
        "Show what a worker would make of the input topic's newest records.",
    ),
}


class LazyGroup(click.Group):
    """A click group that imports heavy subcommands only when they run (keeps --help fast)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            import importlib

            module, attr, _ = LAZY_COMMANDS[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in LAZY_COMMANDS:
                rows.append((name, LAZY_COMMANDS[name][2]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width - 16)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def scenario_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--steps``, ``--series`` and ``--seed``: the size and seed of a generated scenario.

    The same options in ``replay --scenario`` and ``scenarios`` (``backtest`` has its own: no
    defaults there, so the config decides).
    """
    return with_options(
        command,
        (
            click.option(
                "--steps",
                type=click.IntRange(min=2),
                default=24 * 7 * 4,
                show_default=True,
                help="Time steps (hourly).",
            ),
            click.option(
                "--series",
                "n_series",
                type=click.IntRange(min=1),
                default=4,
                show_default=True,
                help="Number of series (ignored by link_failure).",
            ),
            click.option("--seed", type=int, default=0, show_default=True),
        ),
    )


@click.group(
    cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(package_name="adaptcast")
def main() -> None:
    """adaptcast: drift-adaptive streaming time-series forecasting.

    \b
    Examples:
      adaptcast run                              # embedded scenario, no broker needed
      adaptcast peek --bootstrap-servers 127.0.0.1:9092 --input-topic metrics   # how a worker reads it
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic metrics
      adaptcast config show --config prod.yaml   # the effective configuration
      adaptcast scenarios                        # built-in drift scenarios
    """


@main.group()
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@CONFIG_OPTION
def config_show(config_path: str | None) -> None:
    """Print the effective configuration (defaults ← file ← environment) as YAML.

    \b
    Examples:
      adaptcast config show
      ADAPTCAST__MODEL__KIND=arnet adaptcast config show --config my.yaml
    """
    click.echo(to_yaml(config_or_exit(config_path)), nl=False)


@main.command()
@CONFIG_OPTION
@bootstrap_option(unset=" Unset: the embedded scenario.")
@click.option("--input-topic", help="Topic with input records.")
@click.option("--output-topic", help="Topic for predictions.")
@click.option("--dead-letter-topic", help="Topic for rejected records.")
@click.option("--group", help="Consumer group id.")
@click.option(
    "--start-at",
    type=click.Choice(["earliest", "latest"]),
    help="Where a group without committed offsets starts: every record kept, or the end (its windows "
    "filled from the records before it). [kafka.start_at]",
)
@click.option("--state-dir", help="Directory for model checkpoints and state snapshots.")
@click.option(
    "--scenario", help="Embedded scenario to stream when no broker is configured (see `adaptcast scenarios`)."
)
@click.option("--model", "model_kind", help="Model kind to serve (e.g. naive, arnet, lstm, lnn, xgboost).")
@record_options
@click.option(
    "--metrics-host",
    help="Bind address for /metrics, /healthz, /readyz (default 127.0.0.1; 0.0.0.0 for all interfaces).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    help="Port for /metrics, /healthz, /readyz (0 = any free port).",
)
@click.option(
    "--max-seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds."
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Embedded feed: records per second (0 = as fast as possible).",
)
@click.option(
    "--startup-timeout",
    type=click.FloatRange(min=0, min_open=True),
    help="Kafka: exit with code 2 when no broker answers within this many seconds of starting "
    "(default: keep retrying). [kafka.startup_timeout_s]",
)
@FREQUENCY_OPTION
@RESAMPLE_OPTION
@click.option(
    "-v", "--verbose", is_flag=True, help="Log what the service does (assignments, retrains, swaps)."
)
def run(
    config_path,
    bootstrap_servers,
    input_topic,
    output_topic,
    dead_letter_topic,
    group,
    start_at,
    state_dir,
    scenario,
    model_kind,
    metrics_host,
    metrics_port,
    max_seconds,
    rate,
    startup_timeout,
    frequency,
    resample,
    verbose,
    **records: Any,
) -> None:
    """Run the forecasting service.

    With a broker (--bootstrap-servers, the config or KAFKA_BOOTSTRAP_SERVERS) it consumes the
    input topic as a consumer group, produces predictions and dead letters, retrains in the
    background and stops cleanly on SIGTERM/SIGINT. Without one it streams a built-in scenario
    through the same loop and prints a summary.

    \b
    Examples:
      adaptcast run
      adaptcast run --scenario link_failure --metrics-port 9108 --rate 200
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic metrics \\
          --output-topic forecasts --dead-letter-topic metrics.dlq --group fc --model arnet \\
          --start-at latest
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic telegraf \\
          --record-format influx --target usage_idle        # Telegraf's default line protocol
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic otlp_metrics \\
          --record-format otlp --target value               # the OpenTelemetry Collector
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic otlp_metrics \\
          --record-format otlp --target value --otlp-quantiles 0.5,0.99   # and its latency p50, p99
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic devices \\
          --record-format flat --series-from-key --ts-from-message --target temp
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic pg.public.readings \\
          --record-format debezium --series-field sensor_id --time-field recorded_at \\
          --ts-unit us --target temp
      adaptcast run --bootstrap-servers 127.0.0.1:9092 --input-topic calls \\
          --frequency '1h Mon-Fri 09:00-17:00 Europe/Berlin'
    """
    import logging

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    logging.getLogger("kafka").setLevel(logging.WARNING)
    overrides: dict[str, Any] = {}
    grid_overrides(overrides, frequency, resample)
    servers_override(overrides, bootstrap_servers)
    for key, value in (
        ("input_topic", input_topic),
        ("output_topic", output_topic),
        ("dead_letter_topic", dead_letter_topic),
        ("group", group),
        ("start_at", start_at),
    ):
        set_override(overrides, f"kafka.{key}", value)
    set_override(overrides, "state.dir", state_dir)
    set_override(overrides, "scenario.name", scenario)
    set_override(overrides, "model.kind", model_kind)
    record_overrides(overrides, **records)
    set_override(overrides, "metrics.host", metrics_host)
    set_override(overrides, "metrics.port", metrics_port)
    set_override(overrides, "serving.max_seconds", max_seconds)
    set_override(overrides, "kafka.startup_timeout_s", startup_timeout)
    cfg = config_or_exit(config_path, overrides)
    if cfg.kafka.bootstrap_servers:
        _serve_kafka(cfg)
        return
    from adaptcast.streams.embedded import run_embedded

    try:
        summary = run_embedded(cfg, rate=rate or None)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    click.echo(summary.line())


def _serve_kafka(cfg) -> None:
    import threading
    import time

    from kafka.errors import KafkaError

    from adaptcast.streams.broker_wait import BrokerUnreachable, wait_for_broker
    from adaptcast.streams.metrics import KAFKA_CONNECTED, Metrics, MetricsServer
    from adaptcast.streams.signals import stop_on_signals

    check_writable(Path(cfg.state.dir), "state.dir")  # before waiting for a broker: waiting cannot fix it
    metrics = Metrics(max_model_age_s=cfg.metrics.max_model_age_s)
    metrics.set_condition(KAFKA_CONNECTED, False)
    server = MetricsServer.from_config(metrics, cfg.metrics)
    stop = threading.Event()
    stop_on_signals(stop)
    limit = cfg.serving.max_seconds
    deadline = None if limit is None else time.monotonic() + limit
    servers = cfg.kafka.bootstrap_servers
    where = f"metrics at {server.url}; " if server is not None else ""
    click.echo(f"adaptcast: {where}connecting to Kafka at {servers}", err=True)
    try:
        try:
            if not wait_for_broker(cfg.kafka, stop, deadline=deadline, beat=metrics.beat):
                click.echo(f"adaptcast: stopped before Kafka at {servers} answered; nothing served")
                return
            metrics.set_condition(KAFKA_CONNECTED, True)
            from adaptcast.streams.service import Worker  # torch: loaded once a broker answers

            worker = Worker(cfg, metrics, stop_event=stop)
        except BrokerUnreachable as exc:
            raise UserError(str(exc)) from None
        except KafkaError as exc:
            raise UserError(f"cannot reach Kafka at {servers}: {exc}") from None
        except ValueError as exc:
            raise UserError(str(exc)) from None
        k = cfg.kafka
        click.echo(f"adaptcast: serving {k.input_topic} → {k.output_topic} as group {k.group}", err=True)
        try:
            summary = worker.run(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        except KafkaError as exc:  # output the broker did not take, for good: exit 1, so it is restarted
            raise click.ClickException(
                f"Kafka at {servers} did not take the forecasts or dead letters of a batch "
                f"({type(exc).__name__}: {exc}); nothing of that batch was committed, a restarted worker "
                f"reads it again. The broker's log says why: a record over the max.message.bytes of "
                f"{k.output_topic} or {k.dead_letter_topic}, a write its ACLs deny, or an outage longer "
                f"than kafka.delivery_timeout_s ({k.delivery_timeout_s:g} s)"
            ) from None
    finally:
        if server is not None:
            server.close()
    click.echo(summary.line())


@main.command()
@CONFIG_OPTION
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--scenario", help="Replay a built-in scenario instead of a file.")
@click.option("--topic", required=True, help="Topic to produce to.")
@bootstrap_option()
@click.option(
    "--target",
    "targets",
    multiple=True,
    help="File: value column(s) to send (default: every numeric column).",
)
@click.option(
    "--series-col",
    help="File: column(s) with the series id, comma-separated (host,_field: a series per pair; default: "
    "a text column named series, else one series named after the file).",
)
@click.option(
    "--series-cols",
    "series_cols",
    multiple=True,
    help="File: one series per column, these columns ('*': every numeric one), each sent as the "
    "value named by --target (default: model.target).",
)
@click.option(
    "--series-rows",
    is_flag=True,
    help="File: a series per row (M4's layout), its id the --series-col or first text column, its "
    "values the numeric columns in order, a --frequency step apart from 1970-01-01, each sent as "
    "the value named by --target (default: model.target).",
)
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Records per second.")
@click.option(
    "--speedup",
    type=click.FloatRange(min=0, min_open=True),
    help="Replay the records' own spacing this many times faster.",
)
@FREQUENCY_OPTION
@scenario_options
def replay(
    config_path,
    path,
    scenario,
    topic,
    bootstrap_servers,
    targets,
    series_col,
    series_cols,
    series_rows,
    rate,
    speedup,
    frequency,
    steps,
    n_series,
    seed,
) -> None:
    """Produce a live feed to Kafka from a file or a scenario (for demos and load tests).

    \b
    Examples:
      adaptcast replay --scenario level_shift --topic adaptcast.input --rate 500
      adaptcast replay ETTh1.csv --target OT --topic ett --speedup 3600
      adaptcast replay electricity.csv.gz --series-cols '*' --topic clients --rate 2000
      adaptcast replay m4_daily.csv --series-rows --frequency 1d --topic m4 --rate 5000
    """
    from kafka.errors import KafkaError

    if bool(path) == bool(scenario):
        raise UserError("give exactly one of PATH or --scenario NAME")
    if rate and speedup:
        raise UserError("use either --rate or --speedup, not both")
    overrides: dict[str, Any] = {}
    set_override(overrides, "grid.frequency", frequency)
    servers_override(overrides, bootstrap_servers)
    cfg = config_or_exit(config_path, overrides)
    # first, before the heavy imports: a wrong address or login is one line, not a hang
    servers = reachable_kafka(cfg, REPLAY_PROBE_S)
    from adaptcast.forecast.base import InputError
    from adaptcast.streams.replay import replay as produce

    try:
        columns = split_columns(series_cols)
        if columns or series_rows:  # each column (row) a series; its values under the one value name
            targets = targets[:1] or tuple(cfg.model.targets[:1])
        from adaptcast.streams.feed import row_step

        step = row_step(cfg)  # a file of values only: its rows a declared step apart
        records = _replay_records(
            path,
            scenario,
            targets,
            series_col,
            columns,
            series_rows,
            steps,
            n_series,
            seed,
            step,
            cfg.serving.otlp_quantiles,
        )
        sent = produce(records, cfg.kafka, topic, rate=rate, speedup=speedup, progress=sys.stderr.isatty())
    except (InputError, ValueError) as exc:
        raise UserError(str(exc)) from None
    except KafkaError as exc:
        raise UserError(f"Kafka at {servers}: {type(exc).__name__}: {exc}") from None
    click.echo(f"replayed {sent} records to {topic}")


REPLAY_PROBE_S = 5.0  # how long `adaptcast replay` gives the broker to answer before it says why not


def _replay_records(
    path,
    scenario,
    targets,
    series_col,
    series_cols,
    series_rows,
    steps,
    n_series,
    seed,
    step_ms,
    quantiles=(),
) -> list[dict[str, Any]]:
    if scenario:
        from adaptcast.streams.scenarios import make_scenario

        return list(make_scenario(scenario, series=n_series, steps=steps, seed=seed).records())
    from adaptcast.forecast.data import read_series, read_table, value_columns

    table = read_table(Path(path), quantiles)  # read once: for the values to send and for the series
    cols = list(targets) or value_columns(table, Path(path), series_col)
    data = read_series(path, cols, [], series_col, None, series_cols, step_ms, series_rows, table)
    out = []
    for row in data.frame.iter_rows(named=True):
        out.append(
            {
                "series": row["series"],
                "ts": row["ts"].isoformat(),
                "values": {c: row[c] for c in data.channels},
            }
        )
    return out


@main.command()
@CONFIG_OPTION
@click.option(
    "--data",
    "data_path",
    type=click.Path(dir_okay=False),
    help="CSV, Parquet, Feather, JSON, JSON-lines or line-protocol (.lp) file, also .gz/.zst/.bz2/.xz, "
    "with a time column (or Year and Month columns; wide, or long with --series-col). "
    "[backtest.data]",
)
@click.option(
    "--scenario", help="A built-in scenario instead of a file (see `adaptcast scenarios`). [scenario.name]"
)
@click.option(
    "--series-col",
    help="Column(s) holding the series id, comma-separated (host,_field: a series per pair; long "
    "layout; default: a text column named series). [backtest.series_col]",
)
@click.option(
    "--series-cols",
    "series_cols",
    multiple=True,
    help="Wide layout, one series per column: these columns ('*': every numeric one), each read as "
    "the one --target. [backtest.series_cols]",
)
@click.option(
    "--series-rows",
    is_flag=True,
    default=None,
    help="A series per row (M4's layout): its id the --series-col or first text column, its values "
    "the numeric columns in order, a --frequency step apart. [backtest.series_rows]",
)
@click.option(
    "--time-col",
    help="Time column (default: one named date, ts, timestamp, time, datetime or ds in any case, "
    "else the one holding dates). [backtest.time_col]",
)
@FREQUENCY_OPTION
@RESAMPLE_OPTION
@click.option("--model", help="Model kind. [model.kind]")
@click.option(
    "--policy",
    help="never | periodic:EVERY | drift[:DETECTOR] (performance, adwin, ph, kswin, feature). "
    "[adaptation.policy]",
)
@click.option("--window", help="Training window: full | fixed:N | vh (Variance Horizon). [adaptation.window]")
@click.option("--memory", type=click.Choice(["on", "off"]), help="ReLoop2 error memory. [adaptation.memory]")
@click.option(
    "--compare",
    "compares",
    multiple=True,
    help="Another configuration as KEY=VALUE overrides (keys: model, policy, window, memory, "
    "or a dotted config key); repeatable. [backtest.compare]",
)
@model_shape_options
@click.option(
    "--min-train-rows",
    type=click.IntRange(min=1),
    help="Rows per series before the first model is trained. [adaptation.min_train_rows]",
)
@click.option(
    "--limit", type=click.IntRange(min=2), help="Replay only the first N time steps. [backtest.limit]"
)
@click.option("--steps", type=click.IntRange(min=2), help="Scenario length. [scenario.steps]")
@click.option("--series", "n_series", type=click.IntRange(min=1), help="Scenario series. [scenario.series]")
@click.option(
    "--seed",
    type=int,
    help="Seeds the scenario, the models and the error memory. [scenario.seed, model.seed]",
)
@click.option(
    "--timings",
    type=click.Choice(["on", "off"]),
    help="off: leave measured seconds out of summary.json (byte-identical reruns). [backtest.timings]",
)
@click.option(
    "--pushgateway",
    help="Push each configuration's final numbers to this Prometheus Pushgateway URL. [backtest.pushgateway]",
)
@click.option(
    "--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output directory."
)
def backtest(
    config_path,
    data_path,
    scenario,
    targets,
    features,
    series_col,
    series_cols,
    series_rows,
    time_col,
    frequency,
    resample,
    model,
    policy,
    window,
    memory,
    compares,
    lookback,
    horizon,
    params,
    min_train_rows,
    limit,
    steps,
    n_series,
    seed,
    timings,
    pushgateway,
    out,
) -> None:
    """Replay history through the live loop and compare adaptation policies.

    Reads the same configuration as `adaptcast run` (--config, ADAPTCAST__* variables); each flag
    overrides the config key shown in brackets. Writes forecasts.parquet, events.parquet,
    summary.json, report.html and PNG plots to --out.

    \b
    Examples:
      adaptcast backtest --scenario level_shift --out runs/ls
      adaptcast backtest --config prod.yaml --scenario link_failure --out runs/prod
      adaptcast backtest --scenario trend --policy periodic:24 --window full --memory off \\
          --compare "policy=drift,window=vh,memory=on" --out runs/trend
      adaptcast backtest --data ../shared/data/ett/ETTh1.csv --target OT --model arnet \\
          --policy drift --window vh --limit 4000 --out runs/etth1
      adaptcast backtest --data electricity.csv.gz --series-cols '*' --out runs/clients
    """
    from adaptcast.forecast.base import InputError
    from adaptcast.streams.backtest import backtest as run_backtest
    from adaptcast.streams.pushgateway import PushError

    if data_path and scenario:
        raise UserError("give at most one of --data FILE or --scenario NAME")
    overrides: dict[str, Any] = {}
    set_override(overrides, "backtest.data", data_path)
    grid_overrides(overrides, frequency, resample)
    if scenario:
        set_override(overrides, "scenario.name", scenario)
        overrides["backtest"] = {**overrides.get("backtest", {}), "data": None}
    model_overrides(
        overrides,
        kind=model,
        targets=targets,
        features=features,
        lookback=lookback,
        horizon=horizon,
        seed=seed,
        params=params,
    )
    for key, value in (
        ("series_col", series_col),
        ("series_cols", split_columns(series_cols) or None),
        ("series_rows", series_rows),
        ("time_col", time_col),
        ("limit", limit),
        ("compare", list(compares) or None),
        ("timings", _on_off(timings)),
        ("pushgateway", pushgateway),
    ):
        set_override(overrides, f"backtest.{key}", value)
    for key, value in (
        ("policy", policy),
        ("window", window),
        ("memory", _on_off(memory)),
        ("min_train_rows", min_train_rows),
    ):
        set_override(overrides, f"adaptation.{key}", value)
    for key, value in (("steps", steps), ("series", n_series), ("seed", seed)):
        set_override(overrides, f"scenario.{key}", value)
    cfg = config_or_exit(config_path, overrides)
    try:
        result = run_backtest(cfg, out=out)
    except InputError as exc:
        raise UserError(str(exc)) from None
    except PushError as exc:
        raise UserError(str(exc)) from None
    for run, entry in zip(result.runs, result.summary["configs"].values(), strict=True):
        secs = "" if entry["train_seconds"] is None else f", train {entry['train_seconds']:.1f} s"
        click.echo(run.line("adaptcast backtest") + secs)
    click.echo(f"wrote {out}/summary.json, forecasts.parquet, events.parquet and report.html")


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


@main.command()
@click.argument("name", required=False)
@table_out_option("Write the scenario to this CSV or Parquet file.")
@click.option(
    "--layout",
    type=click.Choice(["wide", "long"]),
    default="wide",
    show_default=True,
    help="wide: date + one column per series; long: ts, series, y.",
)
@scenario_options
def scenarios(name, out_path, layout, steps, n_series, seed) -> None:
    """List the built-in drift scenarios, or write one to a file.

    \b
    Examples:
      adaptcast scenarios
      adaptcast scenarios level_shift --out level_shift.csv
      adaptcast scenarios link_failure --layout long --out links.parquet
    """
    from adaptcast.streams.scenarios import SCENARIOS, describe, make_scenario

    if name is None:
        for n in SCENARIOS:
            click.echo(f"{n:<14} {describe(n)}")
        return
    try:
        sc = make_scenario(name, series=n_series, steps=steps, seed=seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    frame = sc.wide() if layout == "wide" else sc.frame
    if out_path is None:
        click.echo(frame)
    else:
        write_frame(frame, out_path)
        click.echo(f"wrote {frame.height} rows of scenario {name} to {out_path}; events:")
        for ev in sc.events:
            click.echo(
                f"  {ev.kind} at {ev.start.isoformat()} (step {ev.start_step}) "
                f"on {len(ev.series)} series: {ev.detail}"
            )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
