"""``adaptcast peek``: what a worker would make of the input topic, before deploying it (streams/peek.py)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from adaptcast.streams.cli_common import (
    CONFIG_OPTION,
    FREQUENCY_OPTION,
    RESAMPLE_OPTION,
    UserError,
    bootstrap_option,
    config_or_exit,
    grid_overrides,
    reachable_kafka,
    record_options,
    record_overrides,
    servers_override,
    set_override,
)

PROBE_S = 5.0  # how long the broker has to answer before peek says why not


@click.command("peek")
@CONFIG_OPTION
@bootstrap_option()
@click.option("--input-topic", help="The topic to read. [kafka.input_topic]")
@record_options
@FREQUENCY_OPTION
@RESAMPLE_OPTION
@click.option(
    "-n",
    "--records",
    "per_partition",
    type=click.IntRange(1, 1_000_000),
    default=100,
    show_default=True,
    help="Read the newest this many messages of each partition.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def peek_command(
    config_path: str | None,
    bootstrap_servers: str | None,
    input_topic: str | None,
    frequency: str | None,
    resample: str | None,
    per_partition: int,
    as_json: bool,
    **records: Any,
) -> None:
    """Show what a worker would make of the input topic's newest records, before deploying it.

    Reads without a consumer group (the workers' offsets are untouched) and decodes each record as
    a worker with the same flags and config would: its series and how far apart their readings
    are, the values they carry, and what would be dead-lettered and why. Where records do not
    read, it tries other record formats, the series from the message key, the time from Kafka and
    other time units, and says which flags read them and which targets they offer. Exit code 1
    when no record reads.

    \b
    Examples:
      adaptcast peek --bootstrap-servers 127.0.0.1:9092 --input-topic telegraf
      adaptcast peek --input-topic telegraf --record-format influx --target usage_idle
      adaptcast peek --config prod.yaml -n 1000 --json
    """
    from adaptcast.streams.peek import peek, text
    from adaptcast.streams.records import SchemaUnavailable
    from adaptcast.streams.schema_registry import registry_for
    from adaptcast.streams.topic_history import recent_values

    overrides: dict[str, Any] = {}
    servers_override(overrides, bootstrap_servers)
    set_override(overrides, "kafka.input_topic", input_topic)
    grid_overrides(overrides, frequency, resample)
    record_overrides(overrides, **records)
    cfg = config_or_exit(config_path, overrides)
    servers = reachable_kafka(cfg, PROBE_S)
    try:
        messages = recent_values(cfg.kafka, per_partition)
        report = peek(cfg, messages, per_partition, registry_for(cfg.kafka))
    except (ValueError, TimeoutError) as exc:  # no such topic (the nearest names given); a read too slow
        raise UserError(str(exc)) from None
    except SchemaUnavailable as exc:
        raise UserError(f"{exc}; run again once the schema registry answers") from None
    if not messages:
        click.echo(f"{cfg.kafka.input_topic} at {servers} holds no records yet", err=True)
        sys.exit(1)
    click.echo(json.dumps(report.as_dict(), indent=2) if as_json else text(report, servers, cfg.serving))
    if report.reading.records == 0:
        sys.exit(1)
