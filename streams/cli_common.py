"""Pieces shared by every ``adaptcast`` subcommand: the exit-code-2 error and option parsing."""

from __future__ import annotations

import json
from typing import Any

import click


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
