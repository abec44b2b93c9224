"""How one KRaft node is configured and launched: its ``server.properties`` and its JVM command lines."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from adaptcast.deploy.kafka.errors import KafkaLauncherError
from adaptcast.deploy.kafka.ports import HOST

JVM_OPTIONS: tuple[str, ...] = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:TieredStopAtLevel=1",  # C1 only: ~2x faster (re)start on 2 busy cores; drop it for throughput runs
    "-Djava.awt.headless=true",
)
LOG4J2_CONFIG = Path(__file__).resolve().with_name("log4j2.xml")
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"


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
    lines = ["# Written by adaptcast.deploy.kafka; rewritten on every start."]
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
