"""Compute accounting: wall/CPU seconds and samples per phase, robust and serialisable."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from adaptcast.drift import ComputeLedger, load_state, save_state


def _busy(cpu_seconds: float) -> None:
    """Spin until this thread has used ``cpu_seconds`` of CPU (robust on a loaded machine)."""
    end = time.thread_time() + cpu_seconds
    x = 0
    while time.thread_time() < end:
        x += 1


def test_measure_records_wall_cpu_and_samples() -> None:
    led = ComputeLedger(cuda=False)
    with led.measure("train", samples=100):
        _busy(0.05)
    with led.measure("predict", samples=10):
        time.sleep(0.05)
    tot = led.totals()
    assert tot["train"]["calls"] == 1 and tot["train"]["samples"] == 100
    assert (
        tot["train"]["wall_s"] >= 0.05
        and tot["train"]["cpu_s"] >= 0.05
        and tot["train"]["thread_cpu_s"] >= 0.05
    )
    assert tot["predict"]["wall_s"] >= 0.05 and tot["predict"]["thread_cpu_s"] < 0.04  # sleeping costs no CPU
    assert tot["all"]["samples"] == 110 and tot["all"]["calls"] == 2
    assert led.per_sample()["train"]["wall_s"] == pytest.approx(tot["train"]["wall_s"] / 100)


def test_exception_inside_block_is_still_recorded() -> None:
    led = ComputeLedger(cuda=False)
    with pytest.raises(RuntimeError), led.measure("correct", samples=3):
        raise RuntimeError("boom")
    assert led.totals()["correct"]["samples"] == 3


def test_add_and_validation() -> None:
    led = ComputeLedger()
    led.add("train", wall_s=2.0, cpu_s=3.0, cuda_s=1.5, samples=1000)
    led.add("train", wall_s=1.0, samples=500)
    t = led.totals()["train"]
    assert (t["calls"], t["samples"], t["wall_s"], t["cuda_s"]) == (2, 1500, 3.0, 1.5)
    with pytest.raises(ValueError):
        led.add("train", wall_s=float("nan"))
    with pytest.raises(ValueError):
        led.add("train", wall_s=-1.0)
    with pytest.raises(ValueError), led.measure("", samples=1):
        pass
    with pytest.raises(ValueError), led.measure("x", samples=-1):
        pass


def test_state_round_trip(tmp_path) -> None:
    led = ComputeLedger()
    led.add("train", wall_s=0.5, cpu_s=0.7, samples=32)
    with led.measure("predict", samples=4):
        pass
    path = save_state(tmp_path / "ledger.npz", {"ledger": led.state_dict()})
    back = ComputeLedger()
    back.load_state_dict(load_state(path)["ledger"])
    assert back.totals() == led.totals()
    led.reset()
    assert led.totals() == {}


def test_importing_drift_does_not_import_torch() -> None:
    code = (
        "import sys; from adaptcast import drift; led = drift.ComputeLedger()\n"
        "with led.measure('x'): pass\nprint('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cuda_events_are_used_when_torch_cuda_is_available(monkeypatch) -> None:
    import types

    class Event:
        t = 0.0

        def __init__(self, enable_timing: bool = False) -> None:
            assert enable_timing
            self.synced = False

        def record(self) -> None:
            Event.t += 0.25
            self.at = Event.t

        def synchronize(self) -> None:
            self.synced = True

        def elapsed_time(self, end: Event) -> float:
            assert end.synced
            return (end.at - self.at) * 1000.0  # ms

    cuda = types.SimpleNamespace(is_available=lambda: True, Event=Event)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    led = ComputeLedger()
    with led.measure("train", samples=1):
        pass
    assert led.totals()["train"]["cuda_s"] == pytest.approx(0.25)
    off = ComputeLedger(cuda=False)
    with off.measure("train"):
        pass
    assert off.totals()["train"]["cuda_s"] == 0.0
