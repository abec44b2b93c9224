"""A local Prometheus: install the Debian package, render a config for one adaptcast target, run, query.

``make monitor`` starts one scraping ``adaptcast run``; the integration test starts one on a free
port with a short scrape interval. Both read ``deploy/prometheus/prometheus.yml`` and its rules.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from adaptcast.deploy.kafka.processes import terminate_group
from adaptcast.deploy.monitoring.generate import DEPLOY
from adaptcast.deploy.monitoring.rules import SCRAPE_JOB

PROMETHEUS_DIR = DEPLOY / "prometheus"
PACKAGE = "prometheus"  # the Debian package: prometheus and promtool
READY_TIMEOUT_S = 60.0


class PrometheusUnavailable(RuntimeError):
    """Prometheus is not installed and cannot be: no apt-get, or not root."""


class PrometheusError(RuntimeError):
    """Prometheus failed to start, or refused a query; the message says why."""


def binary(name: str = "prometheus") -> str | None:
    """Path of ``prometheus`` or ``promtool``, or None when it is not installed."""
    return shutil.which(name)


def ensure_installed() -> str:
    """The prometheus binary, installing the Debian package first when it is missing."""
    if binary() and binary("promtool"):
        return str(binary())
    if shutil.which("apt-get") is None:
        raise PrometheusUnavailable("Prometheus is not installed and this machine has no apt-get")
    if os.geteuid() != 0:
        raise PrometheusUnavailable(
            f"Prometheus is not installed; as root, run: apt-get update && apt-get install {PACKAGE}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", PACKAGE],
    ):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise PrometheusError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    found = binary()
    if found is None or binary("promtool") is None:
        raise PrometheusError(f"apt-get installed {PACKAGE}, but prometheus or promtool is not on PATH")
    return found


def render_config(target: str, scrape_interval: str | None = None) -> str:
    """``deploy/prometheus/prometheus.yml`` scraping ``target`` (host:port); rule files by absolute path."""
    cfg = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    cfg["rule_files"] = [str(PROMETHEUS_DIR / f) for f in cfg["rule_files"]]
    (job,) = [j for j in cfg["scrape_configs"] if j["job_name"] == SCRAPE_JOB]
    job["static_configs"] = [{"targets": [target]}]
    if scrape_interval is not None:
        cfg["global"]["scrape_interval"] = cfg["global"]["evaluation_interval"] = scrape_interval
    return yaml.safe_dump(cfg, sort_keys=False)


class Prometheus:
    """One Prometheus process, its config, data and log under ``workdir``, on 127.0.0.1:``port``."""

    def __init__(self, workdir: Path, port: int):
        self.workdir = workdir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "prometheus.log"

    def start(self, config: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Write ``config``, start Prometheus in its own process group and wait until it is ready."""
        exe = ensure_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "prometheus.yml").write_text(config)
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    exe,
                    f"--config.file={self.workdir / 'prometheus.yml'}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        (self.workdir / "prometheus.pid").write_text(str(self.proc.pid))
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(f"Prometheus did not become ready; {self.log}:\n{self._log_tail()}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            terminate_group(self.proc.pid, timeout_s=10.0, proc=self.proc)
        (self.workdir / "prometheus.pid").unlink(missing_ok=True)

    def api(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1/<path>``: the answer's ``data``, or PrometheusError with Prometheus' message."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """The series ``expr`` returns between ``start`` and ``end`` (unix seconds)."""
        return self.api("query_range", query=expr, start=start, end=end, step=step)["result"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("query", query=expr)["result"]


def stop_pid_file(workdir: Path) -> bool:
    """Stop the Prometheus whose pid ``workdir/prometheus.pid`` names; False when none was running."""
    pid_file = workdir / "prometheus.pid"
    if not pid_file.exists():
        return False
    terminate_group(int(pid_file.read_text()), timeout_s=10.0)
    pid_file.unlink()
    return True
