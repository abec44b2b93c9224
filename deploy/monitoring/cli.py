"""``python -m adaptcast.deploy.monitoring install|up|down|generate``, behind ``make monitor``."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import click

from adaptcast.deploy.kafka.ports import port_in_use
from adaptcast.deploy.monitoring import prometheus
from adaptcast.streams.cli_common import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DIR = REPO_ROOT / ".cache" / "monitor"

DIR_OPTION = click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, resolve_path=True, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Holds prometheus.yml, data/, prometheus.log and prometheus.pid.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Prometheus for adaptcast: install it, run it against `adaptcast run`, regenerate rules and dashboards.

    \b
    Examples:
      adaptcast run --metrics-port 9108 --rate 20 &      # something to scrape
      python -m adaptcast.deploy.monitoring up            # Prometheus on http://127.0.0.1:9090
      python -m adaptcast.deploy.monitoring down
      python -m adaptcast.deploy.monitoring generate      # after editing rules.py or dashboards.py
    """


@main.command()
@click.option("--optional", is_flag=True, help="Exit 0 with a note when apt-get cannot be used here.")
def install(optional: bool) -> None:
    """Install the Debian `prometheus` package (prometheus, promtool) unless it is installed."""
    try:
        path = prometheus.ensure_installed()
    except prometheus.PrometheusUnavailable as exc:
        if not optional:
            raise UserError(str(exc)) from None
        click.echo(f"note: {exc}; the Prometheus tests will be skipped", err=True)
        return
    except prometheus.PrometheusError as exc:
        raise UserError(str(exc)) from None
    click.echo(f"prometheus: {path}")


@main.command()
@click.option(
    "--target", default="127.0.0.1:9108", show_default=True, help="host:port of `adaptcast run`'s /metrics."
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=9090, show_default=True, help="Prometheus port."
)
@click.option("--scrape-interval", default="5s", show_default=True, help="How often to scrape and evaluate.")
@DIR_OPTION
def up(target: str, port: int, scrape_interval: str, workdir: Path) -> None:
    """Start Prometheus in the background scraping TARGET with adaptcast's rules; print its URL."""
    if (workdir / "prometheus.pid").exists():
        raise UserError(
            f"a Prometheus started here may still run; stop it first: make monitor-down ({workdir})"
        )
    if port_in_use(port):
        raise UserError(f"port {port} is taken; pick another with --port (make monitor PROMETHEUS_PORT=N)")
    server = prometheus.Prometheus(workdir, port)
    try:
        server.start(prometheus.render_config(target, scrape_interval))
    except (prometheus.PrometheusUnavailable, prometheus.PrometheusError) as exc:
        raise UserError(str(exc)) from None
    click.echo(f"Prometheus at {server.url} scraping http://{target}/metrics (log {server.log})")
    click.echo(f"  alerts: {server.url}/alerts   targets: {server.url}/targets   stop: make monitor-down")
    if not _reachable(f"http://{target}/metrics"):
        port_hint = target.rsplit(":", 1)[-1]
        click.echo(
            f"  nothing answers at {target} yet: start `adaptcast run --metrics-port {port_hint} --rate 20` "
            "(embedded) or a Kafka worker with that metrics port",
            err=True,
        )


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


@main.command()
@DIR_OPTION
def down(workdir: Path) -> None:
    """Stop the Prometheus started by `up`."""
    stopped = prometheus.stop_pid_file(workdir)
    click.echo("Prometheus stopped" if stopped else f"no Prometheus was started from {workdir}")


@main.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 listing the files that are stale.")
def generate(check: bool) -> None:
    """Write deploy/prometheus/rules/ and deploy/grafana/dashboards/ from rules.py and dashboards.py."""
    from adaptcast.deploy.monitoring import generate as gen

    if check:
        stale = gen.stale()
        if stale:
            click.echo("stale (run `python -m adaptcast.deploy.monitoring generate`): " + ", ".join(stale))
            sys.exit(1)
        click.echo("generated monitoring files are up to date")
        return
    changed = gen.write()
    click.echo("wrote " + ", ".join(changed) if changed else "generated monitoring files are up to date")
