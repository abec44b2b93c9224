"""Run a real single-node Apache Kafka broker (KRaft) from Maven Central jars.

No Docker and no download site: the broker's classpath is resolved with Maven
from ``deploy/kafka/pom.xml`` into a cache outside the work tree, storage is
formatted with Kafka's own ``StorageTool``, and ``kafka.Kafka`` runs as a
combined broker+controller on 127.0.0.1. Used by the test suite (see
``tests/conftest.py``) and by developers through the CLI::

    python -m adaptcast.deploy.kafka up            # start on 127.0.0.1:9092, detached
    python -m adaptcast.deploy.kafka down          # stop it
    python -m adaptcast.deploy.kafka fetch         # only resolve the jars

Python API::

    with KafkaBroker() as broker:        # free port, temporary state dir
        produce_to(broker.bootstrap)
        broker.restart()                 # same JVM command, log dir and port

Stdlib only, except the readiness probe, which imports kafka-python lazily.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import errno
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

KAFKA_VERSION = "4.3.1"
"""Apache Kafka broker version (``org.apache.kafka:kafka_2.13``); the one place it is pinned."""

LOG4J_VERSION = "2.25.5"
"""Log4j 2 version for log4j-api/-core/-slf4j-impl (Kafka 4.x logs through slf4j-api 1.7.x)."""

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Pinned Maven plugin that copies the resolved jars."""

DEFAULT_PORT = 9092
HOST = "127.0.0.1"
JVM_OPTIONS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:TieredStopAtLevel=1",  # C1 only: ~2x faster start/restart on 2 busy cores; drop it for throughput runs
    "-Djava.awt.headless=true",
)
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0

ASSETS_DIR = Path(__file__).resolve().parent / "kafka"
POM_FILE = ASSETS_DIR / "pom.xml"
LOG4J2_CONFIG = ASSETS_DIR / "log4j2.xml"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = REPO_ROOT / ".cache" / "kafka"

PROPERTIES_FILE = "server.properties"
PID_FILE = "broker.pid"
LOG_FILE = "broker.log"
DATA_DIR = "data"
COMPLETE_MARKER = ".complete"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"

_UUID_LINE = re.compile(r"^[A-Za-z0-9_-]{22}$")


class KafkaLauncherError(RuntimeError):
    """A broker could not be resolved, started, reached or stopped; the message says why."""


# --------------------------------------------------------------------------- tools


def find_java() -> str:
    """Return the ``java`` executable (``$JAVA_HOME/bin/java`` first), or say what to install."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").is_file():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise KafkaLauncherError(
            "Java not found: the Kafka broker needs a Java 17+ runtime. Install one "
            "(e.g. `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME."
        )
    return found


def find_maven() -> str:
    """Return the ``mvn`` executable, or say what to install (only needed until the jars are cached)."""
    found = shutil.which("mvn")
    if found is None:
        raise KafkaLauncherError(
            "Maven not found: it resolves the Kafka jars from Maven Central once. Install it "
            f"(e.g. `apt-get install maven`), or fill {jar_dir()} yourself."
        )
    return found


# --------------------------------------------------------------------------- jars


def cache_dir() -> Path:
    """Directory holding this Kafka version's jars: ``$ADAPTCAST_CACHE_DIR`` or ``~/.cache/adaptcast``."""
    root = os.environ.get("ADAPTCAST_CACHE_DIR") or str(Path.home() / ".cache" / "adaptcast")
    return Path(root).expanduser() / f"kafka-{KAFKA_VERSION}"


def jar_dir() -> Path:
    """Directory whose ``*`` is the broker classpath."""
    return cache_dir() / "lib"


def _marker_text() -> str:
    """Content of the completion marker; a version change makes the cached copy stale."""
    return f"kafka={KAFKA_VERSION}\nlog4j={LOG4J_VERSION}\nplugin={DEPENDENCY_PLUGIN}\n"


def jars_ready(lib: Path | None = None) -> bool:
    """True when ``lib`` holds a complete copy for the pinned versions (marker written last)."""
    lib = lib or jar_dir()
    marker = lib / COMPLETE_MARKER
    return marker.is_file() and marker.read_text() == _marker_text()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` so concurrent resolves do not race."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def maven_command(mvn: str, output_dir: Path) -> list[str]:
    """The ``mvn`` command line that copies the broker's runtime jars into ``output_dir``."""
    return [
        mvn,
        "-B",
        "-q",
        "-f",
        str(POM_FILE),
        f"-Dkafka.version={KAFKA_VERSION}",
        f"-Dlog4j.version={LOG4J_VERSION}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={output_dir}",
    ]


def fetch_jars(timeout_s: float = 900.0) -> Path:
    """Resolve the broker jars once into the cache and return their directory.

    The copy goes to a staging directory that is renamed into place and then
    marked complete, so an interrupted resolve is simply redone next time.
    """
    lib = jar_dir()
    if jars_ready(lib):
        return lib
    mvn = find_maven()
    with _file_lock(lib.parent / ".lock"):
        if jars_ready(lib):
            return lib
        staging = lib.parent / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(lib, ignore_errors=True)
        try:
            done = subprocess.run(
                maven_command(mvn, staging),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KafkaLauncherError(f"Maven did not resolve the Kafka jars within {timeout_s:.0f}s") from exc
        if done.returncode != 0:
            raise KafkaLauncherError(
                f"Maven failed to resolve org.apache.kafka:kafka_2.13:{KAFKA_VERSION} "
                f"(exit {done.returncode}):\n{_tail_text(done.stdout + done.stderr, 40)}"
            )
        if not (staging / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
            raise KafkaLauncherError(f"Maven finished but {staging} has no kafka_2.13-{KAFKA_VERSION}.jar")
        staging.rename(lib)
        (lib / COMPLETE_MARKER).write_text(_marker_text())
    return lib


# --------------------------------------------------------------------------- ports and config


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


def broker_settings(port: int, controller_port: int, data_dir: Path, host: str = HOST) -> dict[str, str]:
    """Single-node combined broker+controller settings, tuned for fast start and small tests."""
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "share.coordinator.state.topic.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.recovery.threads.per.data.dir": "1",
        "num.replica.fetchers": "1",
        "log.cleaner.threads": "1",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
    }


def render_properties(settings: Mapping[str, str]) -> str:
    """Render settings as a Java properties file (keys sorted, values escaped where needed)."""
    lines = ["# Written by deploy/kafka.py; rewritten on every start."]
    for key in sorted(settings):
        value = str(settings[key]).replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def parse_properties(text: str) -> dict[str, str]:
    """Parse the simple ``key=value`` properties this module writes (enough to recover ports)."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "!")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        result[key.strip()] = value.strip().replace("\\n", "\n").replace("\\\\", "\\")
    return result


def broker_command(
    java: str, lib: Path, properties: Path, jvm_options: Sequence[str] = JVM_OPTIONS
) -> list[str]:
    """The JVM command line that runs the broker from ``properties``."""
    return [
        java,
        *jvm_options,
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        str(lib / "*"),
        MAIN_CLASS,
        str(properties),
    ]


def tool_command(java: str, lib: Path, *args: str) -> list[str]:
    """The JVM command line for one ``StorageTool`` invocation."""
    return [
        java,
        "-Xmx256m",
        "-XX:TieredStopAtLevel=1",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
        "-cp",
        str(lib / "*"),
        STORAGE_TOOL,
        *args,
    ]


# --------------------------------------------------------------------------- reachability


def parse_bootstrap(bootstrap: str) -> list[tuple[str, int]]:
    """Split ``host:port[,host:port...]`` (``[v6]:port`` allowed, port defaults to 9092)."""
    endpoints: list[tuple[str, int]] = []
    for item in bootstrap.split(","):
        item = item.strip()
        if not item:
            continue
        if "://" in item:
            item = item.split("://", 1)[1]
        match = re.fullmatch(r"\[(?P<v6>[^\]]+)\](?::(?P<p6>\d+))?|(?P<host>[^:]+)(?::(?P<port>\d+))?", item)
        if match is None:
            raise ValueError(f"not a host:port address: {item!r}")
        host = match.group("v6") or match.group("host")
        port = match.group("p6") or match.group("port") or DEFAULT_PORT
        endpoints.append((host, int(port)))
    if not endpoints:
        raise ValueError(f"no address in bootstrap string {bootstrap!r}")
    return endpoints


def tcp_reachable(bootstrap: str, timeout_s: float) -> bool:
    """True when at least one bootstrap endpoint accepts a TCP connection within ``timeout_s``."""
    for host, port in parse_bootstrap(bootstrap):
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def describe_brokers(bootstrap: str, timeout_s: float) -> list[int]:
    """Ids of the unfenced brokers in the cluster's metadata (kafka-python); raises when unreadable in time."""
    from kafka import KafkaAdminClient  # lazy: fetch/down must work without kafka-python

    timeout_ms = max(int(timeout_s * 1000), 200)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="adaptcast-kafka-probe",
        bootstrap_timeout_ms=timeout_ms,
        request_timeout_ms=timeout_ms,
    )
    try:
        cluster = admin.describe_cluster()
    finally:
        admin.close()
    brokers = cluster.get("brokers") or []
    return sorted(
        int(broker.get("broker_id", broker.get("node_id", -1)))
        for broker in brokers
        if not broker.get("is_fenced")
    )


def check_bootstrap(bootstrap: str, timeout_s: float = 5.0) -> list[int]:
    """Fail fast, with the address in the message, unless ``bootstrap`` serves metadata within ``timeout_s``."""
    start = time.monotonic()
    try:
        endpoints = parse_bootstrap(bootstrap)
    except ValueError as exc:
        raise KafkaLauncherError(f"Kafka bootstrap address {bootstrap!r} is malformed: {exc}") from exc
    if not tcp_reachable(bootstrap, timeout_s):
        raise KafkaLauncherError(
            f"Kafka at {bootstrap} is not reachable: no TCP connection to "
            f"{', '.join(f'{h}:{p}' for h, p in endpoints)} within {timeout_s:.0f}s"
        )
    remaining = max(timeout_s - (time.monotonic() - start), 1.0)
    try:
        brokers = describe_brokers(bootstrap, remaining)
    except Exception as exc:  # kafka-python raises several unrelated types here
        raise KafkaLauncherError(
            f"Kafka at {bootstrap} accepts connections but served no metadata within {timeout_s:.0f}s: {exc}"
        ) from exc
    if not brokers:
        raise KafkaLauncherError(f"Kafka at {bootstrap} reports no live brokers")
    return brokers


# --------------------------------------------------------------------------- processes


def _tail_text(text: str, lines: int) -> str:
    """Last ``lines`` lines of ``text``."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def read_log_tail(path: Path, lines: int = 40, offset: int = 0) -> str:
    """Last ``lines`` lines of the log written after byte ``offset`` (for error messages)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return "(no broker log)"
    return _tail_text(text, lines) or "(broker log is empty)"


def pid_alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


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


def terminate_group(
    pid: int, timeout_s: float = STOP_TIMEOUT_S, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the process group led by ``pid``, wait up to ``timeout_s``, then SIGKILL it."""
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        if _wait_exit(pid, wait_s, proc):
            break
    if proc is not None and proc.poll() is None:
        proc.wait(timeout=5.0)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # anything the JVM left in its group


def _wait_exit(pid: int, timeout_s: float, proc: subprocess.Popen[bytes] | None) -> bool:
    """Wait until ``pid`` has exited (reaping it when it is our child); True if it did in time."""
    if proc is not None:
        try:
            proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


_WATCHDOG_SOURCE = """
import os, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
if sys.stdin.readline().strip() == "disarm":
    sys.exit(0)
for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        sys.exit(0)
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            sys.exit(0)
        time.sleep(0.1)
"""


def _start_watchdog(pgid: int) -> subprocess.Popen[bytes]:
    """Start a tiny process that stops the broker's group when our end of its stdin pipe closes.

    That happens when this Python process dies in any way (even SIGKILL), unless
    :meth:`KafkaBroker.stop` disarmed it first: no stray JVM outlives its owner.
    """
    return subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG_SOURCE, str(pgid), str(STOP_TIMEOUT_S)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _disarm_watchdog(watchdog: subprocess.Popen[bytes] | None) -> None:
    """Tell the watchdog the broker was stopped on purpose and let it exit."""
    if watchdog is None:
        return
    with contextlib.suppress(OSError, ValueError):
        assert watchdog.stdin is not None
        watchdog.stdin.write(b"disarm\n")
        watchdog.stdin.close()
    try:
        watchdog.wait(timeout=5.0)
    except subprocess.TimeoutExpired:
        watchdog.kill()
        watchdog.wait()


# --------------------------------------------------------------------------- broker


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
    """

    def __init__(
        self,
        port: int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        *,
        start_timeout_s: float = START_TIMEOUT_S,
        overrides: Mapping[str, str] | None = None,
        jvm_options: Sequence[str] = JVM_OPTIONS,
    ) -> None:
        self._requested_port = port
        self._state_dir = Path(state_dir).resolve() if state_dir is not None else None
        self._owns_state_dir = state_dir is None
        self.start_timeout_s = start_timeout_s
        self.overrides = dict(overrides or {})
        self.jvm_options = tuple(jvm_options)
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
        self._ensure_port_free(self.port)
        self._ensure_port_free(self.controller_port)
        self._launch(detach=detach)
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """SIGTERM the broker's process group, wait for a clean shutdown, SIGKILL if it hangs."""
        pid, proc = self._pid, self._proc
        _disarm_watchdog(self._watchdog)
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
        """Pick the client port (if not given) and the controller port (reused from a previous run if free)."""
        if self.port is None:
            self.port = free_port()
        self._ensure_port_free(self.port)
        previous = self._previous_controller_port()
        if self.controller_port is None and previous not in (None, self.port) and not port_in_use(previous):
            self.controller_port = previous
        if self.controller_port is None or self.controller_port == self.port:
            self.controller_port = free_port()
            while self.controller_port == self.port:
                self.controller_port = free_port()
        self._ensure_port_free(self.controller_port)

    def _previous_controller_port(self) -> int | None:
        """Controller port recorded in an existing ``server.properties``, so its storage sees the same quorum."""
        try:
            voters = parse_properties(self.properties_file.read_text()).get("controller.quorum.voters", "")
        except OSError:
            return None
        match = re.search(r":(\d+)$", voters)
        return int(match.group(1)) if match else None

    @staticmethod
    def _ensure_port_free(port: int | None) -> None:
        """Raise a clear error when ``port`` is taken by something else."""
        if port is not None and port_in_use(port):
            raise KafkaLauncherError(
                f"port {port} on {HOST} is already in use; pick another with --port / KAFKA_PORT "
                "(or stop whatever listens there)"
            )

    def _write_properties(self) -> None:
        """Render ``server.properties`` for the chosen ports and the state dir's log dir."""
        assert self.port is not None and self.controller_port is not None
        settings = broker_settings(self.port, self.controller_port, self.log_dir)
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
                f"StorageTool random-uuid printed no cluster id:\n{_tail_text(output, 20)}"
            )
        self._run_tool(java, lib, "format", "-t", uuid, "-c", str(self.properties_file), "--ignore-formatted")

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
                f"StorageTool {args[0]} failed (exit {done.returncode}):\n{_tail_text(done.stdout + done.stderr, 30)}"
            )
        return done.stdout

    def _launch(self, *, detach: bool) -> None:
        """Start the JVM in its own session (own process group), record its pid and wait until ready."""
        assert self._command is not None
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        with open(self.log_file, "ab") as log:
            log.write(f"\n# ---- deploy/kafka.py: starting broker on {self.bootstrap} ----\n".encode())
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
            self._watchdog = _start_watchdog(proc.pid)
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
                    if describe_brokers(self.bootstrap, min(3.0, max(remaining, 0.5))):
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


# --------------------------------------------------------------------------- CLI

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


if __name__ == "__main__":
    sys.exit(main())
