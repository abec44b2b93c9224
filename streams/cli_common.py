"""Pieces shared by every ``adaptcast`` subcommand: the exit-code-2 error, option parsing and the config."""

from __future__ import annotations

import json
from typing import Any

import click

from adaptcast.streams.config import Config, ConfigError, load_config


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


def set_override(d: dict[str, Any], dotted: str, value: Any) -> None:
    """Put a flag's value into an override dict under its dotted config key, when the flag was given."""
    if value is None:
        return
    *parents, leaf = dotted.split(".")
    for p in parents:
        d = d.setdefault(p, {})
    d[leaf] = value
