"""Pieces shared by every ``adaptcast`` subcommand: the exit-code-2 error, option parsing and the config."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from adaptcast.streams.config import Config, ConfigError, load_config
from adaptcast.streams.formats import SHAPES

if TYPE_CHECKING:
    import polars as pl


class UserError(click.ClickException):
    """Bad input from the user: ``Error: …`` on stderr, exit code 2, no traceback."""

    exit_code = 2


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``--param epochs=5 --param hidden=[32,16]``: values parsed as JSON, else kept as strings."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param {item!r}: expected KEY=VALUE, e.g. --param epochs=10")
        try:
            out[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            out[key.strip()] = raw
    return out


def split_columns(values: tuple[str, ...]) -> list[str]:
    """Accept ``--features a --features b`` and ``--features a,b`` alike."""
    return [c.strip() for v in values for c in v.split(",") if c.strip()]


CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="ADAPTCAST_CONFIG",
    help="YAML config file (env ADAPTCAST_CONFIG). ADAPTCAST__SECTION__KEY env vars override it; "
    "flags override both.",
)


def config_or_exit(path: str | None, overrides: dict[str, Any] | None = None) -> Config:
    """The effective configuration; a bad one is a :class:`UserError` naming the key."""
    try:
        return load_config(path, overrides)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def check_writable(directory: Path, key: str) -> None:
    """Raise UserError, naming ``key``, when files cannot be created in ``directory`` (made if missing)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".adaptcast-write-check-"):
            pass
    except OSError as exc:
        raise UserError(
            f"{key} {directory}: cannot write there ({exc.strerror or exc}); mount a writable volume "
            f"there (in Kubernetes, a pod securityContext.fsGroup lets its user write the volume) or "
            f"point {key} elsewhere"
        ) from None


def reachable_kafka(cfg: Config, within_s: float) -> str:
    """``cfg``'s Kafka bootstrap servers, once a broker there answered within ``within_s``; else a
    :class:`UserError` saying what to set, or why none answered (a refused login included)."""
    from adaptcast.streams.broker_wait import probe_broker
    from adaptcast.streams.kafka_auth import KafkaAuthError

    servers = cfg.kafka.bootstrap_servers
    if not servers:
        raise UserError("no Kafka bootstrap servers: pass --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS")
    try:
        why = probe_broker(cfg.kafka, within_s)
    except KafkaAuthError as exc:
        raise UserError(str(exc)) from None
    if why is not None:
        raise UserError(f"cannot reach Kafka at {servers}: {why}")
    return servers


def set_override(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Put a flag's value into an override dict under its dotted config key, when the flag was given."""
    if value is None:
        return
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value


FREQUENCY_OPTION = click.option(
    "--frequency",
    help="Each series' period or weekly schedule, e.g. 1h, 15min, 1mo, 64Hz, 1bd, '1h Mon-Fri 09:00-18:00', "
    "'1h Mon-Fri 09:00-17:00 Europe/Berlin' (default: inferred from the records; a file of values only "
    "needs it). [grid.frequency]",
)


RESAMPLE_OPTION = click.option(
    "--resample",
    type=click.Choice(["off", "last", "mean"]),
    help="For irregular feeds (trades, events, reports on change): each --frequency period's records "
    "of a series become one, their last values or their mean (default off: each record is placed on "
    "the grid as it is). The period may be opening hours ('30min Mon-Sun 08:00-17:00'): records "
    "outside them are dead-lettered. [grid.resample]",
)


def bootstrap_option(when: str = "", unset: str = "") -> Callable[[Any], Any]:
    """The ``--bootstrap-servers`` flag every Kafka-reading command shares; ``when`` and ``unset``
    say, in one command's words, when it applies and what leaving it out means."""
    return click.option(
        "--bootstrap-servers",
        help=f"{when}Kafka bootstrap servers host:port[,…] (env KAFKA_BOOTSTRAP_SERVERS).{unset} "
        "[kafka.bootstrap_servers]",
    )


def servers_override(d: dict[str, Any], flag: str | None) -> None:
    """``--bootstrap-servers``, else ``KAFKA_BOOTSTRAP_SERVERS``, into an override dict, where given."""
    set_override(d, "kafka.bootstrap_servers", flag or os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None)


def grid_overrides(d: dict[str, Any], frequency: str | None, resample: str | None) -> None:
    """``--frequency`` and ``--resample`` into an override dict, where given."""
    set_override(d, "grid.frequency", frequency)
    set_override(d, "grid.resample", resample)


def with_options(func: Callable[..., Any], options: Sequence[Callable[[Any], Any]]) -> Callable[..., Any]:
    """``func`` decorated with ``options`` in the order ``--help`` lists them (the first on top)."""
    for option in reversed(options):
        func = option(func)
    return func


def target_override(targets: tuple[str, ...]) -> str | list[str] | None:
    """``--target`` flags as ``model.target``: one name, a list of several, None where none was given."""
    columns = split_columns(targets)
    return (columns[0] if len(columns) == 1 else columns) if columns else None


def record_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """How input records are read (``--target``, ``--record-format``, its fields and time unit),
    alike in ``run`` and ``peek``; :func:`record_overrides` puts them into the config."""
    options = (
        click.option(
            "--target",
            "targets",
            multiple=True,
            help="Value(s) of the records to forecast (repeat or comma-separate). [model.target]",
        ),
        click.option(
            "--record-format",
            type=click.Choice(list(SHAPES)),
            help="Shape of the input records: adaptcast's own, Telegraf's JSON, influx (InfluxDB line "
            "protocol: Telegraf's default), prometheus-kafka-adapter's "
            "JSON, flat (every numeric field a value), debezium (a table's change events), cloudevents "
            "(structured JSON) or otlp (the OpenTelemetry Collector's protobuf or JSON; target value). "
            "[serving.record_format]",
        ),
        click.option(
            "--otlp-quantiles",
            help="Otlp records: also forecast these quantiles of every histogram and summary, "
            'comma-separated (0.5,0.99), each a series name{quantile="0.99"} beside name_count and '
            "name_sum. [serving.otlp_quantiles]",
        ),
        click.option(
            "--series-field",
            help="Flat, debezium and cloudevents records: the field naming the series, or several "
            "comma-separated (host,metric: a series per pair; default series). [serving.series_field]",
        ),
        click.option(
            "--time-field",
            help="Flat, debezium and cloudevents records: the field holding the time (default ts, timestamp "
            "or time). [serving.time_field]",
        ),
        click.option(
            "--ts-unit",
            type=click.Choice(["ms", "s", "us", "ns"]),
            help="Unit of a numeric record time (Telegraf writes seconds). [serving.ts_unit]",
        ),
        click.option(
            "--series-from-key",
            is_flag=True,
            default=None,
            help="A record without series takes its message key. [serving.series_from_key]",
        ),
        click.option(
            "--ts-from-message",
            is_flag=True,
            default=None,
            help="A record without ts takes its Kafka message timestamp. [serving.ts_from_message]",
        ),
    )
    return with_options(func, options)


def record_overrides(
    overrides: dict[str, Any],
    targets: tuple[str, ...],
    record_format: str | None,
    otlp_quantiles: str | None,
    series_field: str | None,
    time_field: str | None,
    ts_unit: str | None,
    series_from_key: bool | None,
    ts_from_message: bool | None,
) -> None:
    """The :func:`record_options` given, as config overrides."""
    set_override(overrides, "model.target", target_override(targets))
    set_override(overrides, "serving.record_format", record_format)
    quantiles = split_columns((otlp_quantiles,)) if otlp_quantiles else None
    set_override(overrides, "serving.otlp_quantiles", quantiles)
    set_override(overrides, "serving.series_field", series_field)
    set_override(overrides, "serving.time_field", time_field)
    set_override(overrides, "serving.ts_unit", ts_unit)
    set_override(overrides, "serving.series_from_key", series_from_key)
    set_override(overrides, "serving.ts_from_message", ts_from_message)


def model_shape_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--target``, ``--features``, ``--lookback``, ``--horizon`` and ``--param``, alike in every
    command that trains a model; :func:`model_overrides` turns them into the ``model`` section."""
    options = [
        click.option(
            "--target",
            "targets",
            multiple=True,
            help="Target column(s) to forecast; repeat or comma-separate for several (default: y, or "
            "a file's one column of values). [model.target]",
        ),
        click.option(
            "--features",
            multiple=True,
            help="Extra input columns; repeat or comma-separate. [model.features]",
        ),
        click.option(
            "--lookback", type=click.IntRange(min=1), help="Input rows per forecast. [model.lookback]"
        ),
        click.option("--horizon", type=click.IntRange(min=1), help="Steps forecast. [model.horizon]"),
        click.option(
            "--param",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            help="Model hyper-parameter, the value as JSON (e.g. epochs=5); repeatable. [model.params]",
        ),
    ]
    return with_options(func, options)


def model_overrides(
    overrides: dict[str, Any],
    *,
    kind: str | None,
    targets: tuple[str, ...],
    features: tuple[str, ...],
    lookback: int | None,
    horizon: int | None,
    seed: int | None,
    params: tuple[str, ...],
) -> None:
    """The ``model`` section of ``overrides`` from the flags of :func:`model_shape_options`, ``--model``
    and ``--seed`` (a flag not given leaves its key to the config)."""
    set_override(overrides, "model.target", target_override(targets))
    set_override(overrides, "model.features", split_columns(features) if features else None)
    for key, value in (
        ("kind", kind),
        ("lookback", lookback),
        ("horizon", horizon),
        ("seed", seed),
        ("params", parse_params(params) or None),
    ):
        set_override(overrides, f"model.{key}", value)


PARQUET_SUFFIXES, CSV_SUFFIXES = (".parquet", ".pq"), (".csv",)


def table_out_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--out FILE`` into ``out_path``: optional, CSV or Parquet, the suffix checked before any work."""
    return click.option(
        "--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), callback=_table_path, help=help
    )


def _table_path(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    if path is not None and path.suffix.lower() not in (*PARQUET_SUFFIXES, *CSV_SUFFIXES):
        raise UserError(f"--out {path}: use a .csv or .parquet file name")
    return path


def write_frame(frame: pl.DataFrame, path: Path | TextIO) -> None:
    """Write a table to ``path``: Parquet for ``.parquet``/``.pq``, CSV for ``.csv`` or a text stream
    (stdout), its times as ISO-8601 with as many second digits as the finest time needs (none for
    whole seconds; polars writes six for every time otherwise)."""
    import polars as pl  # here: the CLI starts without it

    if not isinstance(path, Path) or path.suffix.lower() in CSV_SUFFIXES:
        times = [c for c, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
        micros = [frame[c].dt.timestamp("us") for c in times]
        fraction = ""  # every time on a whole second; else milliseconds, or microseconds if needed
        for unit, digits in ((1_000_000, ""), (1_000, "%.3f"), (1, "%.6f")):
            if all((us % unit == 0).all() for us in micros):
                fraction = digits
                break
        zoned = any(frame.schema[c].time_zone for c in times)  # type: ignore[attr-defined]
        form = "%Y-%m-%dT%H:%M:%S" + fraction + ("%:z" if zoned else "")
        frame.write_csv(path, datetime_format=form)
    elif path.suffix.lower() in PARQUET_SUFFIXES:
        frame.write_parquet(path)
    else:
        raise UserError(f"--out {path}: use a .csv or .parquet file name")
