"""Where the local broker listens: the loopback host, Kafka's default port, and free or taken ports."""

from __future__ import annotations

import errno
import socket

from adaptcast.deploy.kafka.errors import KafkaLauncherError

HOST = "127.0.0.1"
DEFAULT_PORT = 9092


def free_port(host: str = HOST) -> int:
    """Ask the OS for a currently free TCP port on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = HOST) -> bool:
    """True when another socket holds ``host:port`` (TIME_WAIT leftovers do not count, as for Kafka)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def ensure_port_free(port: int | None) -> None:
    """Raise a clear error when ``port`` is taken by something else."""
    if port is not None and port_in_use(port):
        raise KafkaLauncherError(
            f"port {port} on {HOST} is already in use; pick another with --port / KAFKA_PORT "
            "(or stop whatever listens there)"
        )
