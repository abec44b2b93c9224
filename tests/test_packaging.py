"""The wheel installs one import name, ``adaptcast``, and its public API works from a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, str]:
    """The wheel pip builds from this tree, and what the build printed."""
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (built,) = out.glob("adaptcast-*.whl")
    return built, done.stdout + done.stderr


@pytest.fixture(scope="module")
def wheel(build) -> Path:
    return build[0]


def test_the_build_has_nothing_to_warn_of(build):
    """A new user's first `make` builds the package: setuptools warned there of every data folder
    (dashboards, rules) that looks like a package but is not listed as one."""
    assert "Warning" not in build[1], build[1]


def test_wheel_holds_only_the_adaptcast_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"adaptcast", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    for sub in ("forecast", "streams", "drift", "deploy"):
        assert f"adaptcast/{sub}/__init__.py" in names
    assert any(n.startswith("adaptcast/deploy/kafka/") and n.endswith("pom.xml") for n in names)
    for data in (
        "prometheus/prometheus.yml",
        "prometheus/rules/adaptcast-alerts.yml",
        "prometheus/rules/adaptcast-recording.yml",
        "grafana/dashboards/adaptcast-overview.json",
        "grafana/dashboards/adaptcast-adaptation.json",
        "grafana/provisioning/datasources/adaptcast.yml",
    ):
        assert f"adaptcast/deploy/{data}" in names, data


@pytest.mark.slow
def test_fresh_venv_imports_the_public_api(wheel, tmp_path):
    """Install the wheel alone into a new venv; its dependencies come from this environment."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    added = {p.name for p in site.iterdir()} - {"__pycache__"}
    assert added == {"adaptcast", wheel.name.split("-py3")[0] + ".dist-info"}, added
    env = {**os.environ, "PYTHONPATH": sysconfig.get_path("purelib")}  # the dependencies, not adaptcast
    code = (
        "import adaptcast; print(adaptcast.__file__); print(callable(adaptcast.backtest)); "
        "m = adaptcast.create_forecaster('naive', lookback=4, horizon=2); print(type(m).__name__); "
        "print(adaptcast.load_config().model.kind)"
    )
    out = subprocess.run(
        [py, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    lines = out.split()
    assert lines[0].startswith(str(site)), out
    assert lines[1:] == ["True", "SeasonalNaive", "arnet"], out
