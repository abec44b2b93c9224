"""Malformed config files, variables and flags end in one ``Error:`` line and exit 2; secrets never show."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from adaptcast.streams.cli import main
from adaptcast.streams.metrics import Metrics

SECRET = "hunter2-do-not-print"

BAD_FILES = {
    "not-yaml": b"model: [unclosed\n",
    "a-list": b"- a\n- b\n",
    "unknown-key": b"model:\n  lookbak: 3\n",
    "wrong-type": b"serving:\n  max_batch: lots\n",
    "negative": b"model:\n  lookback: -1\n",
    "unknown-kind": b"model:\n  kind: oracle\n",
    "section-not-mapping": b"model: 5\n",
    "invalid-utf8": b"model:\n  kind: \xff\xfe\n",
    "python-tag": b"x: !!python/object/apply:os.system ['touch pwned']\n",
    "tabs": b"model:\n\tkind: arnet\n",
    "null-bytes": b"\x00\x00\x00",
}
BAD_FLAGS = {
    "port-out-of-range": ["run", "--metrics-port", "70000"],
    "negative-max-seconds": ["run", "--max-seconds", "-1"],
    "zero-startup-timeout": ["run", "--startup-timeout", "0"],
    "unknown-model": ["run", "--model", "oracle"],
    "rate-not-a-number": ["run", "--rate", "fast"],
    "quantile-past-one": ["run", "--otlp-quantiles", "0.5,1.5"],
    "quantile-not-a-number": ["run", "--otlp-quantiles", "p99"],
    "unknown-option": ["run", "--no-such-flag"],
    "missing-config-file": ["config", "show", "--config", "/nonexistent/adaptcast.yaml"],
}
BAD_ENV = {
    "env-not-a-number": {"ADAPTCAST__MODEL__LOOKBACK": "many"},
    "env-unknown-key": {"ADAPTCAST__MODEL__NOPE": "1"},
    "env-bad-secret-type": {"ADAPTCAST__KAFKA__SASL_PASSWORD": "[1, 2]"},
}


def _assert_one_error_line(result) -> None:
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_config_file(tmp_path, monkeypatch, name):
    path = tmp_path / "bad.yaml"
    path.write_bytes(BAD_FILES[name])
    monkeypatch.chdir(tmp_path)  # where a python tag would have touched its file
    result = CliRunner().invoke(main, ["config", "show", "--config", str(path)], env={})
    _assert_one_error_line(result)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("name", list(BAD_FLAGS))
def test_bad_flag(name):
    _assert_one_error_line(CliRunner().invoke(main, BAD_FLAGS[name], env={}))


@pytest.mark.parametrize("name", list(BAD_ENV))
def test_bad_environment_variable(name):
    result = CliRunner().invoke(main, ["config", "show"], env=BAD_ENV[name])
    _assert_one_error_line(result)
    assert "[1, 2]" not in result.output  # a secret's value is not echoed even when invalid


def test_a_state_dir_that_cannot_be_written_stops_the_worker_before_it_waits_for_kafka(tmp_path):
    """Say so at once: before, the worker waited for the broker and then died of a traceback."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    args = ["run", "--bootstrap-servers", "127.0.0.1:1", "--startup-timeout", "1", "--metrics-port", "0"]
    result = CliRunner().invoke(main, [*args, "--state-dir", str(blocker / "state")], env={})
    _assert_one_error_line(result)
    assert f"Error: state.dir {blocker / 'state'}: cannot write there (Not a directory)" in result.output


def test_config_show_masks_the_password():
    result = CliRunner().invoke(main, ["config", "show"], env={"ADAPTCAST__KAFKA__SASL_PASSWORD": SECRET})
    assert result.exit_code == 0 and SECRET not in result.output and "sasl_password: '***'" in result.output


@pytest.mark.slow
def test_no_secret_in_logs_or_metrics_of_a_worker(tmp_path):
    """A verbose worker with SASL credentials that cannot reach its broker: logs, error and /metrics."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": "",
        "ADAPTCAST__KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "ADAPTCAST__KAFKA__SASL_MECHANISM": "PLAIN",
        "ADAPTCAST__KAFKA__SASL_USERNAME": "svc",
        "ADAPTCAST__KAFKA__SASL_PASSWORD": SECRET,
    }
    flags = ["-v", "--bootstrap-servers", "127.0.0.1:1", "--startup-timeout", "1", "--metrics-port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "adaptcast.streams.cli", "run", *flags, "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and "127.0.0.1:1" in done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert SECRET.encode() not in Metrics().render()
