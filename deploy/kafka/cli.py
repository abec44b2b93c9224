"""The developer CLI, ``python -m adaptcast.deploy.kafka up|down|status|fetch``, around a detached broker."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from adaptcast.deploy.kafka.broker import START_TIMEOUT_S, KafkaBroker, running_port, stop_state_dir
from adaptcast.deploy.kafka.errors import KafkaLauncherError
from adaptcast.deploy.kafka.jars import KAFKA_VERSION, fetch_jars, jars_ready
from adaptcast.deploy.kafka.ports import DEFAULT_PORT, HOST

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".cache" / "kafka"

_EPILOG = """\
examples:
  python -m adaptcast.deploy.kafka up                      # 127.0.0.1:9092, state in .cache/kafka
  KAFKA_PORT=19092 python -m adaptcast.deploy.kafka up     # another port
  python -m adaptcast.deploy.kafka up --port 0 --state-dir /tmp/k   # any free port
  export KAFKA_BOOTSTRAP_SERVERS=$(python -m adaptcast.deploy.kafka up)
  python -m adaptcast.deploy.kafka status
  python -m adaptcast.deploy.kafka down
  python -m adaptcast.deploy.kafka fetch                   # only resolve the jars (Maven Central)

Jars are cached in $ADAPTCAST_CACHE_DIR/kafka-{version}/lib (default ~/.cache/adaptcast).
The broker log is <state-dir>/broker.log.
"""


def _default_port() -> int:
    """Client port for ``up``: ``$KAFKA_PORT`` or 9092."""
    raw = os.environ.get("KAFKA_PORT", "")
    try:
        return int(raw) if raw else DEFAULT_PORT
    except ValueError as exc:
        raise KafkaLauncherError(f"KAFKA_PORT must be a port number, got {raw!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    """Argument parser for ``python -m adaptcast.deploy.kafka``."""
    parser = argparse.ArgumentParser(
        prog="python -m adaptcast.deploy.kafka",
        description=f"Run a local single-node Apache Kafka {KAFKA_VERSION} broker (KRaft) from Maven Central jars.",
        epilog=_EPILOG.format(version=KAFKA_VERSION),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{up,down,status,fetch}")
    up = sub.add_parser("up", help="start a broker in the background; print its bootstrap address once ready")
    up.add_argument(
        "--port", type=int, default=None, help="client port (default $KAFKA_PORT or 9092; 0 = any free)"
    )
    up.add_argument("--timeout", type=float, default=START_TIMEOUT_S, help="seconds to wait for readiness")
    down = sub.add_parser("down", help="stop the broker recorded in the state dir")
    status = sub.add_parser("status", help="print the bootstrap address if a broker runs, exit 1 otherwise")
    for command in (up, down, status):
        command.add_argument(
            "--state-dir",
            type=Path,
            default=DEFAULT_STATE_DIR,
            help=f"state directory (default {DEFAULT_STATE_DIR})",
        )
    sub.add_parser("fetch", help="resolve the broker jars from Maven Central into the cache and exit")
    return parser


def _cmd_up(args: argparse.Namespace) -> int:
    """``up``: start detached unless a broker already runs from this state dir."""
    state_dir = args.state_dir.resolve()
    port = running_port(state_dir)
    if port is not None:
        print(f"broker already running from {state_dir}", file=sys.stderr)
        print(f"{HOST}:{port}")
        return 0
    requested = _default_port() if args.port is None else args.port
    broker = KafkaBroker(port=requested or None, state_dir=state_dir, start_timeout_s=args.timeout)
    began = time.monotonic()
    broker.start(detach=True)
    print(
        f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - began:.1f}s (pid {broker.pid}, "
        f"log {broker.log_file}); stop with: python -m adaptcast.deploy.kafka down --state-dir {state_dir}",
        file=sys.stderr,
    )
    print(broker.bootstrap)
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    """``down``: stop the broker from the pid file (no-op when none runs)."""
    pid = stop_state_dir(args.state_dir.resolve())
    print("no broker running" if pid is None else f"stopped broker (pid {pid})", file=sys.stderr)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    """``status``: print the bootstrap address of a running broker."""
    port = running_port(args.state_dir.resolve())
    if port is None:
        print("no broker running", file=sys.stderr)
        return 1
    print(f"{HOST}:{port}")
    return 0


def _cmd_fetch(_: argparse.Namespace) -> int:
    """``fetch``: resolve the jars and print where they are."""
    began = time.monotonic()
    cached = jars_ready()
    lib = fetch_jars()
    how = "already cached" if cached else f"resolved in {time.monotonic() - began:.1f}s"
    print(f"Kafka {KAFKA_VERSION} jars {how}", file=sys.stderr)
    print(lib)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "fetch": _cmd_fetch}
    try:
        return handlers[args.action](args)
    except KafkaLauncherError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
