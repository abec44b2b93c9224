"""The broker's classpath, resolved once from Maven Central with ``pom.xml`` into a per-version cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from filelock import FileLock

from adaptcast.deploy.kafka.errors import KafkaLauncherError, tail_text

KAFKA_VERSION = "4.3.1"
"""Apache Kafka broker version (``org.apache.kafka:kafka_2.13``); the one place it is pinned."""

LOG4J_VERSION = "2.25.5"
"""Log4j 2 version for log4j-api/-core/-slf4j-impl (Kafka 4.x logs through slf4j-api 1.7.x)."""

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
"""Pinned Maven plugin that copies the resolved jars."""

POM_FILE = Path(__file__).resolve().with_name("pom.xml")
COMPLETE_MARKER = ".complete"


def find_maven() -> str:
    """Return the ``mvn`` executable, or say what to install (only needed until the jars are cached)."""
    found = shutil.which("mvn")
    if found is None:
        raise KafkaLauncherError(
            "Maven not found: it resolves the Kafka jars from Maven Central once. Install it "
            f"(e.g. `apt-get install maven`), or fill {jar_dir()} yourself."
        )
    return found


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
    with FileLock(lib.parent / ".lock"):  # concurrent resolves (parallel test sessions) wait their turn
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
                f"(exit {done.returncode}):\n{tail_text(done.stdout + done.stderr, 40)}"
            )
        if not (staging / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
            raise KafkaLauncherError(f"Maven finished but {staging} has no kafka_2.13-{KAFKA_VERSION}.jar")
        staging.rename(lib)
        (lib / COMPLETE_MARKER).write_text(_marker_text())
    return lib
