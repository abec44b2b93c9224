"""The broker JVM's process group: liveness, SIGTERM-then-SIGKILL stop, and a watchdog against stray JVMs."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

# Standard library only: this file is also the watchdog's script, run by path with ``python -I``.

STOP_TIMEOUT_S = 30.0


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


def start_watchdog(pgid: int) -> subprocess.Popen[bytes]:
    """Start a tiny process that stops the broker's group when our end of its stdin pipe closes.

    That happens when this Python process dies in any way (even SIGKILL), unless
    :func:`disarm_watchdog` ran first: no stray JVM outlives its owner.
    """
    return subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).resolve()), str(pgid), str(STOP_TIMEOUT_S)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def disarm_watchdog(watchdog: subprocess.Popen[bytes] | None) -> None:
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


def _watch(pgid: int, grace_s: float) -> None:
    """The watchdog's body: wait until the owner disarms it or dies, and in the second case stop the group."""
    if sys.stdin.readline().strip() != "disarm":
        terminate_group(pgid, grace_s)


if __name__ == "__main__":
    _watch(int(sys.argv[1]), float(sys.argv[2]))
