"""``KafkaBroker``: one single-node KRaft broker owned by a Python object, plus the state-dir helpers."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from adaptcast.deploy.kafka.config import (
    JVM_OPTIONS,
    MAIN_CLASS,
    broker_command,
    broker_settings,
    find_java,
    parse_properties,
    render_properties,
    tool_command,
)
from adaptcast.deploy.kafka.errors import KafkaLauncherError, tail_text
from adaptcast.deploy.kafka.jars import fetch_jars
from adaptcast.deploy.kafka.ports import HOST, ensure_port_free, free_port, port_in_use
from adaptcast.deploy.kafka.processes import (
    STOP_TIMEOUT_S,
    disarm_watchdog,
    pid_alive,
    start_watchdog,
    terminate_group,
)
from adaptcast.deploy.kafka.readiness import describe_brokers, tcp_reachable
from adaptcast.deploy.kafka.sasl import (
    BROKER_USER,
    SaslSetup,
    broker_password,
    listener_settings,
    scram_format_args,
)
from adaptcast.deploy.kafka.tls import client_certificate, make_certificates
from adaptcast.deploy.kafka.tls import listener_settings as tls_listener_settings

START_TIMEOUT_S = 90.0
PROPERTIES_FILE = "server.properties"
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"
DATA_DIR = "data"

_UUID_LINE = re.compile(r"^[A-Za-z0-9_-]{22}$")


def read_log_tail(path: Path, lines: int = 40, offset: int = 0) -> str:
    """Last ``lines`` lines of the log written after byte ``offset`` (for error messages)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no broker log)"
    return tail_text(text, lines) or "(broker log is empty)"


def is_broker_process(pid: int, properties: Path) -> bool:
    """True when ``pid`` is alive and runs ``kafka.Kafka`` on ``properties`` (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc (e.g. macOS): trust the pid file
    return MAIN_CLASS.encode() in argv and str(properties).encode() in argv


def read_pid(state_dir: Path) -> int | None:
    """The pid recorded in ``state_dir``'s pid file, if any."""
    try:
        return int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None


class KafkaBroker:
    """One single-node KRaft broker+controller on 127.0.0.1, owned by this object.

    Parameters
    ----------
    port
        Client port; ``None`` picks a free one on first start. Kept across restarts.
    state_dir
        Holds ``server.properties``, ``data/`` (the log dir), ``broker.log`` and
        ``broker.pid``; ``None`` makes a temporary directory, removed when the
        ``with`` block exits.
    start_timeout_s
        How long :meth:`start` waits for the broker to serve metadata.
    overrides
        Extra or replacement broker settings (e.g. another listener).
    jvm_options
        JVM flags; the default is a 256-512 MB G1 heap.
    sasl
        Make the client listener SASL_PLAINTEXT with these accounts (``None``: PLAINTEXT).
    tls
        Make the client listener SSL, with a throwaway CA and certificate in the state dir;
        with ``sasl``, SASL_SSL.
    mutual_tls
        With ``tls``: the listener asks every client for a certificate of that CA
        (``ssl.client.auth=required``; ``tls.client_certificate`` makes one).
    """

    def __init__(
        self,
        port: int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        start_timeout_s: float = START_TIMEOUT_S,
        overrides: Mapping[str, str] | None = None,
        jvm_options: Sequence[str] = JVM_OPTIONS,
        sasl: SaslSetup | None = None,
        tls: bool = False,
        mutual_tls: bool = False,
    ) -> None:
        if mutual_tls and not tls:
            raise KafkaLauncherError(
                "mutual_tls needs tls: client certificates are checked on a TLS listener"
            )
        self._state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self._owns_state_dir = state_dir is None
        self.start_timeout_s = start_timeout_s
        self.overrides = dict(overrides or {})
        self.jvm_options = tuple(jvm_options)
        self.sasl = sasl
        self.tls = tls
        self.mutual_tls = mutual_tls
        self.port: int | None = port
        self.controller_port: int | None = None
        self._command: list[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._detached = False

    # -- properties

    @property
    def state_dir(self) -> Path:
        """The state directory (created on first use)."""
        if self._state_dir is None:
            self._state_dir = Path(tempfile.mkdtemp(prefix="adaptcast-kafka-"))
        return self._state_dir

    @property
    def log_dir(self) -> Path:
        """Kafka's ``log.dirs`` (the topic data), inside the state directory."""
        return self.state_dir / DATA_DIR

    @property
    def log_file(self) -> Path:
        """The broker's own log (stdout and stderr of the JVM)."""
        return self.state_dir / LOG_FILE

    @property
    def properties_file(self) -> Path:
        """The rendered ``server.properties``."""
        return self.state_dir / PROPERTIES_FILE

    @property
    def bootstrap(self) -> str:
        """``host:port`` for clients; only valid once a port is chosen."""
        if self.port is None:
            raise KafkaLauncherError("broker has no port yet: call start() first")
        return f"{HOST}:{self.port}"

    def client_config(self, user: str | None = None) -> dict[str, object]:
        """kafka-python settings that reach this broker, logged in as ``user`` when it needs SASL.

        ``user=None`` on a SASL broker logs in with the broker's own account.
        """
        config: dict[str, object] = {"bootstrap_servers": self.bootstrap}
        if self.tls:
            certificates = make_certificates(self.state_dir, HOST)
            config.update(certificates.client_config())
            if self.mutual_tls:
                cert, key = client_certificate(certificates, BROKER_USER)
                config.update(ssl_certfile=str(cert), ssl_keyfile=str(key))
        if self.sasl is not None:
            password = broker_password(self.state_dir) if user is None else self.sasl.users[user]
            config.update(self.sasl.client_config(user or BROKER_USER, password, self._sasl_protocol))
        return config

    @property
    def _sasl_protocol(self) -> str:
        return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"

    @property
    def pid(self) -> int | None:
        """PID of the running JVM, or ``None`` when stopped."""
        return self._pid

    @property
    def command(self) -> list[str] | None:
        """The exact JVM command line of the last launch (reused by :meth:`restart`)."""
        return list(self._command) if self._command is not None else None

    def is_running(self) -> bool:
        """True while the JVM started by this object is alive."""
        if self._pid is None:
            return False
        if self._proc is not None:
            return self._proc.poll() is None
        return pid_alive(self._pid)

    # -- lifecycle

    def start(self, *, detach: bool = False) -> KafkaBroker:
        """Resolve jars, format storage if needed, launch the JVM and wait until it serves metadata.

        ``detach=True`` leaves the broker running after this Python process exits
        (the CLI's ``up``); otherwise a watchdog and an atexit hook stop it.
        """
        if self.is_running():
            return self
        java = find_java()
        lib = fetch_jars()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_if_already_running()
        self._choose_ports()
        self._write_properties()
        self._format_storage(java, lib)
        self._command = broker_command(java, lib, self.properties_file, self.jvm_options)
        self._launch(detach=detach)
        return self

    def restart(self) -> KafkaBroker:
        """Stop the JVM and run the same command again on the same log dir and port."""
        if self._command is None:
            raise KafkaLauncherError("restart() before start()")
        detach = self._detached
        self.stop()
        ensure_port_free(self.port)
        ensure_port_free(self.controller_port)
        self._launch(detach=detach)
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the broker's process group, wait for a clean shutdown, SIGKILL if it hangs."""
        pid, proc = self._pid, self._proc
        disarm_watchdog(self._watchdog)
        self._watchdog = None
        if pid is not None:
            terminate_group(pid, timeout_s, proc)
        self._pid = None
        self._proc = None
        if self._state_dir is not None and pid is not None and read_pid(self._state_dir) == pid:
            (self._state_dir / PID_FILE).unlink(missing_ok=True)
        atexit.unregister(self._stop_at_exit)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._owns_state_dir and self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)  # a temp dir we made; a given one is kept

    def __repr__(self) -> str:
        state = f"pid={self._pid}" if self._pid else "stopped"
        return f"KafkaBroker(port={self.port}, state_dir={str(self._state_dir)!r}, {state})"

    # -- steps

    def _refuse_if_already_running(self) -> None:
        """Refuse to start a second JVM on a state dir whose broker is still alive."""
        pid = read_pid(self.state_dir)
        if pid is not None and is_broker_process(pid, self.properties_file):
            raise KafkaLauncherError(
                f"a broker (pid {pid}) is already running from {self.state_dir}; stop it with "
                f"`python -m adaptcast.deploy.kafka down --state-dir {self.state_dir}`"
            )

    def _choose_ports(self) -> None:
        """Pick the client port (unless given) and the controller port (the previous run's, if free)."""
        if self.port is None:
            self.port = free_port()
        ensure_port_free(self.port)
        previous = self._previous_controller_port()
        if self.controller_port is None and previous not in (None, self.port) and not port_in_use(previous):
            self.controller_port = previous
        if self.controller_port is None or self.controller_port == self.port:
            self.controller_port = free_port()
            while self.controller_port == self.port:
                self.controller_port = free_port()
        ensure_port_free(self.controller_port)

    def _previous_controller_port(self) -> int | None:
        """Controller port in an existing ``server.properties``, so its storage sees the same quorum."""
        try:
            voters = parse_properties(self.properties_file.read_text()).get("controller.quorum.voters", "")
        except OSError:
            return None
        match = re.search(r":(\d+)$", voters)
        return int(match.group(1)) if match else None

    def _write_properties(self) -> None:
        """Render ``server.properties`` for the chosen ports and the state dir's log dir."""
        assert self.port is not None and self.controller_port is not None
        settings = broker_settings(self.port, self.controller_port, self.log_dir)
        if self.tls:
            certificates = make_certificates(self.state_dir, HOST)
            settings.update(tls_listener_settings(certificates, HOST, self.port, self.controller_port))
            if self.mutual_tls:
                settings["ssl.client.auth"] = "required"
        if (
            self.sasl is not None
        ):  # SASL_SSL with tls: the SASL listener replaces the SSL one, keeping its keys
            secret = broker_password(self.state_dir)
            settings.update(
                listener_settings(
                    self.sasl, HOST, self.port, self.controller_port, secret, self._sasl_protocol
                )
            )
        settings.update(self.overrides)
        self.properties_file.write_text(render_properties(settings))

    def _format_storage(self, java: str, lib: Path) -> None:
        """Format the KRaft log dir with a fresh cluster id, unless it is already formatted."""
        if (self.log_dir / "meta.properties").is_file():
            return
        output = self._run_tool(java, lib, "random-uuid")
        uuid = next(
            (line.strip() for line in reversed(output.splitlines()) if _UUID_LINE.match(line.strip())), None
        )
        if uuid is None:
            raise KafkaLauncherError(
                f"StorageTool random-uuid printed no cluster id:\n{tail_text(output, 20)}"
            )
        scram = [] if self.sasl is None else scram_format_args(self.sasl, broker_password(self.state_dir))
        self._run_tool(
            java, lib, "format", "-t", uuid, "-c", str(self.properties_file), "--ignore-formatted", *scram
        )

    def _run_tool(self, java: str, lib: Path, *args: str) -> str:
        """Run one StorageTool command and return its output, raising with that output on failure."""
        try:
            done = subprocess.run(
                tool_command(java, lib, *args),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaLauncherError(f"StorageTool {args[0]} timed out") from exc
        if done.returncode != 0:
            raise KafkaLauncherError(
                f"StorageTool {args[0]} failed (exit {done.returncode}):\n"
                f"{tail_text(done.stdout + done.stderr, 30)}"
            )
        return done.stdout

    def _launch(self, *, detach: bool) -> None:
        """Start the JVM in its own session (own process group), record its pid and wait until ready."""
        assert self._command is not None
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            log.write(f"\n# ---- adaptcast.deploy.kafka: starting broker on {self.bootstrap} ----\n".encode())
            log.flush()
            proc = subprocess.Popen(
                self._command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.state_dir,
                start_new_session=True,
            )
        self._proc, self._pid, self._detached = proc, proc.pid, detach
        (self.state_dir / PID_FILE).write_text(f"{proc.pid}\n")
        if not detach:
            self._watchdog = start_watchdog(proc.pid)
            atexit.register(self._stop_at_exit)
        try:
            self._wait_ready(offset)
        except BaseException:
            self.stop(timeout_s=10.0)
            raise

    def _wait_ready(self, log_offset: int) -> None:
        """Poll until the broker lists itself in a metadata response; fail with the log tail otherwise."""
        deadline = time.monotonic() + self.start_timeout_s
        last_error = "no connection yet"
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise KafkaLauncherError(
                    f"Kafka broker exited with code {self._proc.returncode} during start-up; "
                    f"log {self.log_file}:\n{read_log_tail(self.log_file, 40, log_offset)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaLauncherError(
                    f"Kafka broker on {self.bootstrap} not ready within {self.start_timeout_s:.0f}s "
                    f"({last_error}); log {self.log_file}:\n{read_log_tail(self.log_file, 40, log_offset)}"
                )
            if tcp_reachable(self.bootstrap, min(1.0, remaining)):
                try:
                    login = {k: v for k, v in self.client_config().items() if k != "bootstrap_servers"}
                    if describe_brokers(self.bootstrap, min(3.0, max(remaining, 0.5)), **login):
                        return
                    last_error = "metadata lists no brokers yet"
                except Exception as exc:  # not ready yet: kafka-python raises various types
                    last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.1)

    def _stop_at_exit(self) -> None:
        """atexit hook: never leave the JVM behind when the interpreter exits normally."""
        with contextlib.suppress(Exception):
            self.stop(timeout_s=10.0)


def stop_state_dir(state_dir: Path, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
    """Stop the broker recorded in ``state_dir``'s pid file; return its pid, or ``None`` if none ran."""
    pid = read_pid(state_dir)
    pid_file = state_dir / PID_FILE
    if pid is None:
        return None
    if not is_broker_process(pid, (state_dir / PROPERTIES_FILE).resolve()):
        pid_file.unlink(missing_ok=True)  # stale: the broker is gone (or the pid was reused)
        return None
    terminate_group(pid, timeout_s)
    pid_file.unlink(missing_ok=True)
    return pid


def running_port(state_dir: Path) -> int | None:
    """Client port of a live broker recorded in ``state_dir``, or ``None``."""
    pid = read_pid(state_dir)
    properties = (state_dir / PROPERTIES_FILE).resolve()
    if pid is None or not is_broker_process(pid, properties):
        return None
    listeners = parse_properties(properties.read_text()).get("advertised.listeners", "")
    match = re.search(r":(\d+)$", listeners)
    return int(match.group(1)) if match else None
