"""Fast tests of the Kafka launcher's pure parts and failure paths (no Java, no broker)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from adaptcast.deploy.kafka import broker, cli, config, errors, jars, ports, processes, readiness

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections but never answers (a wrong service, or a hung broker)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept_forever() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        server.close()


def closed_port() -> int:
    """A port nothing listens on (connections are refused at once)."""
    return ports.free_port()


# ----------------------------------------------------------------------- config


def test_broker_settings_single_node_kraft() -> None:
    """The rendered config is a combined broker+controller with internal topics sized for one node."""
    settings = config.broker_settings(19092, 19093, Path("/tmp/k/data"))
    assert settings["process.roles"] == "broker,controller"
    assert settings["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert settings["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert settings["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19092"
    assert settings["log.dirs"] == "/tmp/k/data"
    assert settings["offsets.topic.num.partitions"] == "1"
    assert settings["group.initial.rebalance.delay.ms"] == "0"
    for key, value in settings.items():
        if key.endswith(("replication.factor", "min.isr")):
            assert value == "1", key


def test_properties_round_trip() -> None:
    """What render_properties writes, parse_properties reads back unchanged."""
    settings = config.broker_settings(1, 2, Path("/data dir/x"))
    settings["odd.value"] = "a=b\\c"
    text = config.render_properties(settings)
    assert text.startswith("#")
    assert config.parse_properties(text) == settings


def test_broker_command_uses_pinned_classpath_and_logging(tmp_path: Path) -> None:
    """The JVM command has a small G1 heap, our log4j2 config and kafka.Kafka on the properties file."""
    command = config.broker_command("java", tmp_path / "lib", tmp_path / "server.properties")
    assert command[0] == "java"
    assert "-XX:+UseG1GC" in command and "-Xmx512m" in command
    assert f"-Dlog4j2.configurationFile={config.LOG4J2_CONFIG}" in command
    assert command[command.index("-cp") + 1] == str(tmp_path / "lib" / "*")
    assert command[-2:] == ["kafka.Kafka", str(tmp_path / "server.properties")]
    assert config.LOG4J2_CONFIG.is_file() and jars.POM_FILE.is_file()


def test_maven_command_pins_versions(tmp_path: Path) -> None:
    """Jars come from the checked-in POM with the versions pinned in the module."""
    command = jars.maven_command("mvn", tmp_path)
    assert f"-Dkafka.version={jars.KAFKA_VERSION}" in command
    assert f"-Dlog4j.version={jars.LOG4J_VERSION}" in command
    assert f"{jars.DEPENDENCY_PLUGIN}:copy-dependencies" in command
    assert "-DincludeScope=runtime" in command and f"-DoutputDirectory={tmp_path}" in command
    assert command[command.index("-f") + 1] == str(jars.POM_FILE)


# ----------------------------------------------------------------------- jar cache


def test_cache_dir_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ADAPTCAST_CACHE_DIR moves the jar cache; the version is part of the path."""
    monkeypatch.setenv("ADAPTCAST_CACHE_DIR", str(tmp_path))
    assert jars.jar_dir() == tmp_path / f"kafka-{jars.KAFKA_VERSION}" / "lib"


def test_jars_ready_needs_matching_marker(tmp_path: Path) -> None:
    """A copy without its completion marker, or with another version's marker, is not reused."""
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "kafka_2.13.jar").write_bytes(b"")
    assert not jars.jars_ready(lib)
    (lib / jars.COMPLETE_MARKER).write_text("kafka=0.0.0\n")
    assert not jars.jars_ready(lib)
    (lib / jars.COMPLETE_MARKER).write_text(jars._marker_text())
    assert jars.jars_ready(lib)


FAKE_MVN = """#!/bin/sh
# Stand-in for mvn: "copies" the kafka jar into -DoutputDirectory, logs the call, exits $FAKE_MVN_RC.
for arg in "$@"; do
  case "$arg" in -DoutputDirectory=*) out="${arg#-DoutputDirectory=}" ;; esac
done
mkdir -p "$out" && touch "$out/kafka_2.13-$FAKE_KAFKA_VERSION.jar"
echo call >> "$FAKE_MVN_LOG"
exit "${FAKE_MVN_RC:-0}"
"""


def test_fetch_jars_redoes_an_interrupted_resolve_then_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed copy leaves no marker and is redone; a completed one is reused without calling Maven."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    (bin_dir / "mvn").write_text(FAKE_MVN)
    (bin_dir / "mvn").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("ADAPTCAST_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_MVN_LOG", str(calls))
    monkeypatch.setenv("FAKE_KAFKA_VERSION", jars.KAFKA_VERSION)

    monkeypatch.setenv("FAKE_MVN_RC", "1")
    with pytest.raises(errors.KafkaLauncherError, match="Maven failed"):
        jars.fetch_jars()
    assert not jars.jars_ready()

    monkeypatch.setenv("FAKE_MVN_RC", "0")
    lib = jars.fetch_jars()
    assert jars.jars_ready(lib) and (lib / f"kafka_2.13-{jars.KAFKA_VERSION}.jar").is_file()
    assert jars.fetch_jars() == lib
    assert calls.read_text().count("call") == 2


def test_missing_maven_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without cached jars and without mvn, the error names Maven and how to get it."""
    monkeypatch.setenv("ADAPTCAST_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(errors.KafkaLauncherError, match=r"Maven not found.*install"):
        jars.fetch_jars()


def test_missing_java_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without java on PATH or in JAVA_HOME, the error names Java and how to get it."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(errors.KafkaLauncherError, match=r"Java not found.*[Ii]nstall"):
        config.find_java()


# ----------------------------------------------------------------------- ports


def test_free_port_is_free_and_port_in_use_sees_listeners() -> None:
    """free_port gives a bindable port; port_in_use flags it while something listens there."""
    port = ports.free_port()
    assert not ports.port_in_use(port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        assert ports.port_in_use(port)
        with pytest.raises(errors.KafkaLauncherError, match=f"port {port} .* already in use"):
            ports.ensure_port_free(port)
    assert not ports.port_in_use(port)


def test_parse_bootstrap() -> None:
    """Comma lists, default port, IPv6 brackets and a scheme prefix are understood."""
    assert readiness.parse_bootstrap("a:1, b:2") == [("a", 1), ("b", 2)]
    assert readiness.parse_bootstrap("kafka") == [("kafka", 9092)]
    assert readiness.parse_bootstrap("[::1]:9093") == [("::1", 9093)]
    assert readiness.parse_bootstrap("PLAINTEXT://h:7") == [("h", 7)]
    with pytest.raises(ValueError):
        readiness.parse_bootstrap(" , ")


# ----------------------------------------------------------------------- fail fast


@pytest.mark.timeout(60)  # a hang guard, not a timing check
def test_check_bootstrap_refused_fails_fast() -> None:
    """A closed port fails at the TCP step, naming the address, without asking for metadata."""
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(errors.KafkaLauncherError, match=f"{address} is not reachable"):
        readiness.check_bootstrap(address, timeout_s=5.0)


@pytest.mark.timeout(60)  # a hang guard, not a timing check
def test_check_bootstrap_silent_server_times_out(silent_server: int) -> None:
    """A port that accepts but never speaks Kafka fails at the metadata step instead of hanging."""
    address = f"127.0.0.1:{silent_server}"
    with pytest.raises(
        errors.KafkaLauncherError, match=f"{address} accepts connections but served no metadata"
    ):
        readiness.check_bootstrap(address, timeout_s=1.0)


def test_session_stops_fast_on_unreachable_external_cluster() -> None:
    """With KAFKA_BOOTSTRAP_SERVERS unreachable, a Kafka test session exits at once with the address."""
    address = f"127.0.0.1:{closed_port()}"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": address}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_kafka_broker.py"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert address in output and "not reachable" in output
    assert "passed" not in output


# ----------------------------------------------------------------------- process cleanup


def _sleeper_group() -> subprocess.Popen[bytes]:
    """A stand-in for the JVM: a long sleep leading its own process group."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def test_watchdog_stops_the_group_when_its_owner_goes_away() -> None:
    """Closing the watchdog's pipe without disarming it (owner died) terminates the process group."""
    victim = _sleeper_group()
    watchdog = processes.start_watchdog(victim.pid)
    try:
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        assert victim.wait(timeout=10) == -15
        watchdog.wait(timeout=10)
    finally:
        victim.kill()
        watchdog.kill()


def test_disarmed_watchdog_leaves_the_group_alone() -> None:
    """A deliberate stop disarms the watchdog first, so it never signals a (possibly reused) group."""
    victim = _sleeper_group()
    watchdog = processes.start_watchdog(victim.pid)
    try:
        processes.disarm_watchdog(watchdog)
        assert watchdog.returncode == 0
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_terminate_group_escalates_to_sigkill() -> None:
    """A process that ignores SIGTERM is killed after the grace period."""
    ignore_term = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print(1, flush=True); time.sleep(60)"
    )
    stubborn = subprocess.Popen(
        [sys.executable, "-c", ignore_term],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert stubborn.stdout is not None and stubborn.stdout.readline()
    processes.terminate_group(stubborn.pid, timeout_s=0.5, proc=stubborn)
    assert stubborn.returncode == -9


def test_down_with_stale_pid_file(tmp_path: Path) -> None:
    """`down` on a state dir whose broker is gone removes the pid file and reports nothing running."""
    (tmp_path / broker.PID_FILE).write_text(f"{os.getpid()}\n")  # alive, but not a broker
    assert broker.stop_state_dir(tmp_path) is None
    assert not (tmp_path / broker.PID_FILE).exists()
    runner = CliRunner()
    assert runner.invoke(cli.main, ["down", "--state-dir", str(tmp_path)]).exit_code == 0
    assert runner.invoke(cli.main, ["status", "--state-dir", str(tmp_path)]).exit_code == 1


def test_cli_reports_launcher_errors_with_exit_code_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launcher failure is one `Error:` line and exit code 2, not a traceback."""
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = CliRunner().invoke(cli.main, ["up", "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2, result.output
    assert "Error: Java not found" in result.output
    assert "Traceback" not in result.output
