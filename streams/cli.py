"""The ``adaptcast`` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from streams.config import ConfigError, load_config, to_yaml


class UserError(click.ClickException):
    """Bad input from the user: message on stderr, exit code 2, no traceback."""

    exit_code = 2


def _config(path: str | None, overrides: dict[str, Any] | None = None):
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def _set(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Put a flag's value into an override dict when the flag was given."""
    if value is None:
        return
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


CONFIG_OPTION = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), envvar="ADAPTCAST_CONFIG",
    help="YAML config file (env ADAPTCAST_CONFIG). ADAPTCAST__SECTION__KEY env vars override it; flags override both.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="adaptcast")
def main() -> None:
    """adaptcast: drift-adaptive streaming time-series forecasting.

    \b
    Examples:
      adaptcast run                              # embedded scenario, no broker needed
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
    click.echo(to_yaml(_config(config_path)), nl=False)


@main.command()
@CONFIG_OPTION
@click.option("--bootstrap-servers", help="Kafka bootstrap servers host:port[,…] (env KAFKA_BOOTSTRAP_SERVERS). Unset: embedded scenario.")
@click.option("--scenario", help="Embedded scenario to stream when no broker is configured (see `adaptcast scenarios`).")
@click.option("--model", "model_kind", help="Model kind to serve (e.g. naive, arnet, lstm, lnn, xgboost).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Port for /metrics, /healthz, /readyz (0 = any free port).")
@click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), help="Stop after this many seconds.")
@click.option("--rate", type=click.FloatRange(min=0), default=0, show_default=True, help="Embedded feed: records per second (0 = as fast as possible).")
def run(config_path, bootstrap_servers, scenario, model_kind, metrics_port, max_seconds, rate) -> None:
    """Run the forecasting service.

    Without a broker it streams a built-in scenario through the same loop (windows → model →
    live error → metrics) and prints a summary; with --bootstrap-servers it serves Kafka.

    \b
    Examples:
      adaptcast run
      adaptcast run --scenario link_failure --metrics-port 9108 --rate 200
    """
    import os

    overrides: dict[str, Any] = {}
    _set(overrides, "kafka.bootstrap_servers", bootstrap_servers or os.environ.get("KAFKA_BOOTSTRAP_SERVERS"))
    _set(overrides, "scenario.name", scenario)
    _set(overrides, "model.kind", model_kind)
    _set(overrides, "metrics.port", metrics_port)
    _set(overrides, "serving.max_seconds", max_seconds)
    cfg = _config(config_path, overrides)
    if cfg.kafka.bootstrap_servers:
        raise UserError("serving from Kafka is not available in this build yet; unset --bootstrap-servers to run the embedded scenario")
    from streams.embedded import run_embedded

    try:
        summary = run_embedded(cfg, rate=rate or None)
    except (ValueError, OSError) as exc:
        raise UserError(str(exc)) from None
    click.echo(summary.line())


@main.command()
@click.argument("name", required=False)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the scenario to this CSV or Parquet file.")
@click.option("--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True, help="wide: date + one column per series; long: ts, series, y.")
@click.option("--series", type=click.IntRange(min=1), default=4, show_default=True, help="Number of series (ignored by link_failure).")
@click.option("--steps", type=click.IntRange(min=2), default=24 * 7 * 4, show_default=True, help="Time steps (hourly).")
@click.option("--seed", type=int, default=0, show_default=True)
def scenarios(name, out, layout, series, steps, seed) -> None:
    """List the built-in drift scenarios, or write one to a file.

    \b
    Examples:
      adaptcast scenarios
      adaptcast scenarios level_shift --out level_shift.csv
      adaptcast scenarios link_failure --layout long --out links.parquet
    """
    from streams.scenarios import SCENARIOS, describe, make_scenario

    if name is None:
        for n in SCENARIOS:
            click.echo(f"{n:<14} {describe(n)}")
        return
    try:
        sc = make_scenario(name, series=series, steps=steps, seed=seed)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    frame = sc.wide() if layout == "wide" else sc.frame
    if out is None:
        click.echo(frame)
    else:
        if out.suffix.lower() == ".parquet":
            frame.write_parquet(out)
        elif out.suffix.lower() == ".csv":
            frame.write_csv(out)
        else:
            raise UserError(f"--out {out}: use a .csv or .parquet file name")
        click.echo(f"wrote {frame.height} rows of scenario {name} to {out}; events:")
        for ev in sc.events:
            click.echo(f"  {ev.kind} at {ev.start.isoformat()} (step {ev.start_step}) on {len(ev.series)} series: {ev.detail}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
