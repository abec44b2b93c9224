"""``adaptcast model``: list the checkpoint store's versions and mark one as serving (a rollback)."""

from __future__ import annotations

from pathlib import Path

import click

from adaptcast.forecast.base import read_manifest
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.streams.cli_common import CONFIG_OPTION, UserError, config_or_exit, set_override
from adaptcast.streams.config import Config

STATE_DIR_OPTION = click.option("--state-dir", help="The store is STATE_DIR/models. [state.dir]")


def open_store(config_path: str | None, state_dir: str | None) -> tuple[CheckpointStore, Config]:
    """The store a configuration's workers follow, and that configuration."""
    overrides: dict = {}
    set_override(overrides, "state.dir", state_dir)
    cfg = config_or_exit(config_path, overrides)
    return CheckpointStore(Path(cfg.state.dir) / "models"), cfg


def previous_serving(store: CheckpointStore) -> str:
    """The version marked serving before the current one."""
    marks = [m["version"] for m in store.marks()]
    if not marks:
        raise UserError(
            f"{store.root}: no version was ever marked serving; name the VERSION to serve "
            "(`adaptcast model list` shows them)"
        )
    earlier = [v for v in marks if v != marks[-1]]
    if not earlier:
        raise UserError(f"{store.root}: {marks[-1]} is the only version ever marked serving; name a VERSION")
    return earlier[-1]


@click.group("model")
def model_group() -> None:
    """The model store the workers follow: list versions, roll back to one."""


@model_group.command("list")
@CONFIG_OPTION
@STATE_DIR_OPTION
def list_command(config_path: str | None, state_dir: str | None) -> None:
    """Versions oldest first; `*` marks the one serving.

    \b
    Examples:
      adaptcast model list --config deploy.yaml
    """
    store, _ = open_store(config_path, state_dir)
    versions = store.versions()
    if not versions:
        raise UserError(f"{store.root}: no model versions yet (a worker or `adaptcast train` writes them)")
    marked = store.serving()
    if marked is None:  # what a worker loads then: the newest version
        marked = versions[-1]
        click.echo(
            f"(nothing marked serving in {store.root}: a worker starting now loads the newest version)"
        )
    for version in versions:
        try:
            manifest = read_manifest(store.path(version))
            parent = manifest.get("parent_version") or "-"
            about = f"{manifest['kind']}, parent {parent}, created {manifest.get('created_at')}"
        except (ValueError, FileNotFoundError) as exc:
            about = f"unreadable: {exc}"
        click.echo(f"{'*' if version == marked else ' '} {version}  {about}")


@model_group.command("rollback")
@CONFIG_OPTION
@STATE_DIR_OPTION
@click.argument("version", required=False)
def rollback_command(config_path: str | None, state_dir: str | None, version: str | None) -> None:
    """Mark VERSION serving (default: the version that served before the current one).

    Workers following the store swap to it within state.model_poll_s, without a restart.

    \b
    Examples:
      adaptcast model rollback --config deploy.yaml
      adaptcast model rollback 000004-20260101T120000Z --config deploy.yaml
    """
    store, cfg = open_store(config_path, state_dir)
    current = store.serving()
    target = version or previous_serving(store)
    try:
        model = store.mark_serving(target, "rollback")
    except (ValueError, FileNotFoundError) as exc:
        raise UserError(f"cannot serve {target}: {exc}") from None
    click.echo(f"{target} marked serving in {store.root} (was {current or 'unmarked'})")
    from adaptcast.streams.build import misfit  # the loop's modules: only a rollback needs them

    why = misfit(model, cfg)
    if why is not None:
        click.echo(
            f"warning: {target} does not fit this configuration ({why}); workers configured so keep "
            "the model they serve (pass the workers' --config to check against theirs)",
            err=True,
        )
