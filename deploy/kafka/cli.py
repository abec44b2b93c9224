"""The developer CLI, ``python -m adaptcast.deploy.kafka up|down|status|fetch``, around a detached broker."""

from __future__ import annotations

import time
from pathlib import Path

import click

from adaptcast.deploy.kafka.broker import START_TIMEOUT_S, KafkaBroker, running_port, stop_state_dir
from adaptcast.deploy.kafka.errors import KafkaLauncherError
from adaptcast.deploy.kafka.jars import KAFKA_VERSION, fetch_jars, jars_ready
from adaptcast.deploy.kafka.ports import DEFAULT_PORT, HOST
from adaptcast.deploy.kafka.sasl import MECHANISMS, SaslSetup, parse_user
from adaptcast.deploy.kafka.tls import client_certificate, make_certificates
from adaptcast.streams.cli_common import UserError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".cache" / "kafka"


class _LauncherGroup(click.Group):
    """Reports a launcher failure as ``Error: …`` with exit code 2 instead of a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KafkaLauncherError as exc:
            raise UserError(str(exc)) from None


STATE_DIR_OPTION = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, resolve_path=True, path_type=Path),
    default=DEFAULT_STATE_DIR,
    show_default=True,
    help="Holds server.properties, data/, broker.log and broker.pid.",
)


@click.group(
    cls=_LauncherGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    help=f"""Run a local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft) from Maven Central jars.

    Jars are cached in $ADAPTCAST_CACHE_DIR/kafka-{KAFKA_VERSION}/lib (default ~/.cache/adaptcast).
    The broker log is <state-dir>/broker.log.

    \b
    Examples:
      python -m adaptcast.deploy.kafka up                      # 127.0.0.1:9092, state in .cache/kafka
      KAFKA_PORT=19092 python -m adaptcast.deploy.kafka up     # another port
      python -m adaptcast.deploy.kafka up --port 0 --state-dir /tmp/k   # any free port
      export KAFKA_BOOTSTRAP_SERVERS=$(python -m adaptcast.deploy.kafka up)
      python -m adaptcast.deploy.kafka status
      python -m adaptcast.deploy.kafka down
      python -m adaptcast.deploy.kafka fetch                   # only resolve the jars (Maven Central)
    """,
)
def main() -> None:
    pass


@main.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    envvar="KAFKA_PORT",
    show_default=True,
    show_envvar=True,
    help="Client port; 0 picks any free one.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=START_TIMEOUT_S,
    show_default=True,
    help="Seconds to wait until the broker serves metadata.",
)
@click.option(
    "--sasl-mechanism",
    type=click.Choice(MECHANISMS),
    help="Make the client listener SASL_PLAINTEXT with this mechanism (default: PLAINTEXT, no login).",
)
@click.option(
    "--sasl-user",
    "sasl_users",
    multiple=True,
    metavar="NAME:PASSWORD",
    help="A client account of the SASL listener; repeatable. SCRAM accounts are fixed when the state "
    "dir is first formatted.",
)
@click.option(
    "--tls",
    is_flag=True,
    help="Make the client listener SSL (SASL_SSL with --sasl-mechanism), with a throwaway CA and "
    "certificate (openssl) in the state dir.",
)
@click.option(
    "--mutual-tls",
    is_flag=True,
    help="With --tls: ask every client for a certificate of that CA (mutual TLS); one is made for you.",
)
@STATE_DIR_OPTION
def up(
    port: int,
    timeout: float,
    sasl_mechanism: str | None,
    sasl_users: tuple[str, ...],
    tls: bool,
    mutual_tls: bool,
    state_dir: Path,
) -> None:
    """Start a broker in the background and print its address.

    Waits until the broker serves metadata, then prints its bootstrap address (host:port) on
    stdout and leaves it running. When a broker already runs from --state-dir, only prints its
    address.

    \b
    Examples:
      python -m adaptcast.deploy.kafka up
      KAFKA_PORT=19092 python -m adaptcast.deploy.kafka up
      python -m adaptcast.deploy.kafka up --port 0 --state-dir /tmp/k --timeout 180
      export KAFKA_BOOTSTRAP_SERVERS=$(python -m adaptcast.deploy.kafka up)
      python -m adaptcast.deploy.kafka up --state-dir /tmp/ks --sasl-mechanism SCRAM-SHA-512 \\
          --sasl-user alice:alice-secret
      python -m adaptcast.deploy.kafka up --state-dir /tmp/kt --tls
      python -m adaptcast.deploy.kafka up --state-dir /tmp/km --tls --mutual-tls
    """
    if sasl_users and sasl_mechanism is None:
        raise UserError("--sasl-user needs --sasl-mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)")
    if mutual_tls and not tls:
        raise UserError("--mutual-tls needs --tls: client certificates are checked on a TLS listener")
    sasl = None
    if sasl_mechanism is not None:
        sasl = SaslSetup(sasl_mechanism, dict(parse_user(u) for u in sasl_users))
    running = running_port(state_dir)
    if running is not None:
        click.echo(f"broker already running from {state_dir}", err=True)
        click.echo(f"{HOST}:{running}")
        return
    broker = KafkaBroker(
        port=port or None,
        state_dir=state_dir,
        start_timeout_s=timeout,
        sasl=sasl,
        tls=tls,
        mutual_tls=mutual_tls,
    )
    began = time.monotonic()
    broker.start(detach=True)
    click.echo(
        f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - began:.1f}s (pid {broker.pid}, "
        f"log {broker.log_file}); stop with: python -m adaptcast.deploy.kafka down --state-dir {state_dir}",
        err=True,
    )
    if sasl is not None or tls:
        click.echo(_client_settings(broker), err=True)
    click.echo(broker.bootstrap)


def _client_settings(broker: KafkaBroker) -> str:
    """What a client of a secured listener sets, in one line."""
    protocol = broker.client_config()["security_protocol"]
    what, settings = f"listener {protocol}", [f"kafka.security_protocol={protocol}"]
    if broker.sasl is not None:
        what += f" ({broker.sasl.mechanism}), users {', '.join(broker.sasl.users)}"
        settings += [
            f"kafka.sasl_mechanism={broker.sasl.mechanism}",
            "kafka.sasl_username",
            "kafka.sasl_password",
        ]
    if broker.tls:
        certificates = make_certificates(broker.state_dir, HOST)
        settings.append(f"kafka.ssl_cafile={certificates.ca}")
        if broker.mutual_tls:
            cert, key = client_certificate(certificates, "client")
            what += " asking for client certificates"
            settings += [f"kafka.ssl_certfile={cert}", f"kafka.ssl_keyfile={key}"]
    return f"{what}; clients set {', '.join(settings)}"


@main.command()
@STATE_DIR_OPTION
def down(state_dir: Path) -> None:
    """Stop the broker recorded in --state-dir.

    SIGTERM first, SIGKILL if it does not exit in time; nothing to do when none runs.

    \b
    Examples:
      python -m adaptcast.deploy.kafka down
      python -m adaptcast.deploy.kafka down --state-dir /tmp/k
    """
    pid = stop_state_dir(state_dir)
    click.echo("no broker running" if pid is None else f"stopped broker (pid {pid})", err=True)


@main.command()
@STATE_DIR_OPTION
@click.pass_context
def status(ctx: click.Context, state_dir: Path) -> None:
    """Print the running broker's address; exit 1 when none runs.

    Looks at the broker recorded in --state-dir and checks that its process is still alive.

    \b
    Examples:
      python -m adaptcast.deploy.kafka status
      python -m adaptcast.deploy.kafka status --state-dir /tmp/k || echo "no broker there"
    """
    port = running_port(state_dir)
    if port is None:
        click.echo("no broker running", err=True)
        ctx.exit(1)
    click.echo(f"{HOST}:{port}")


@main.command()
def fetch() -> None:
    """Resolve the broker jars from Maven Central into the cache.

    Prints the jar directory; Maven runs only when that directory is missing or stale.

    \b
    Examples:
      python -m adaptcast.deploy.kafka fetch
      ADAPTCAST_CACHE_DIR=/srv/cache python -m adaptcast.deploy.kafka fetch
    """
    began = time.monotonic()
    cached = jars_ready()
    lib = fetch_jars()
    how = "already cached" if cached else f"resolved in {time.monotonic() - began:.1f}s"
    click.echo(f"Kafka {KAFKA_VERSION} jars {how}", err=True)
    click.echo(lib)
