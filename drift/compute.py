"""Compute accounting: wall, CPU and CUDA seconds and sample counts per phase (train, predict, correct)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ComputeLedger", "PhaseTotals"]

_FIELDS = ("calls", "samples", "wall_s", "cpu_s", "thread_cpu_s", "cuda_s")


@dataclass
class PhaseTotals:
    """Accumulated cost of one phase."""

    calls: int = 0
    samples: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0  # process CPU time (all threads, incl. torch/xgboost pools)
    thread_cpu_s: float = 0.0  # CPU time of the measuring thread only
    cuda_s: float = 0.0  # GPU time between CUDA events on the current stream (0 without CUDA)


_CUDA_CACHE: tuple[Any, bool] | None = None  # (torch module, usable): is_available() costs ~0.15 ms a call


def _torch_cuda() -> Any:
    """The ``torch.cuda`` module if torch is already imported and CUDA is usable, else None."""
    global _CUDA_CACHE
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    if _CUDA_CACHE is None or _CUDA_CACHE[0] is not torch:
        try:
            usable = bool(torch.cuda.is_available())
        except Exception:  # pragma: no cover - broken driver setups
            usable = False
        _CUDA_CACHE = (torch, usable)
    return torch.cuda if _CUDA_CACHE[1] else None


class ComputeLedger:
    """Attribute compute to named phases so forecast error can be reported against compute.

    ``with ledger.measure("train", samples=n): ...`` records wall (``perf_counter``), process
    CPU (``process_time``), thread CPU (``thread_time``) and — when torch is already imported
    and CUDA is available — CUDA seconds timed with events (synchronising at block exit).
    drift never imports torch itself.  Thread-safe; ``state_dict`` is JSON-able.
    """

    def __init__(self, cuda: bool | None = None) -> None:
        self.cuda = cuda  # None: auto-detect at each measure()
        self._phases: dict[str, PhaseTotals] = {}
        self._lock = threading.Lock()

    @contextmanager
    def measure(self, phase: str, samples: int = 0) -> Iterator[None]:
        """Time the enclosed block and add it (and ``samples``) to ``phase``, even if it raises."""
        if not phase or not isinstance(phase, str):
            raise ValueError(f"phase must be a non-empty string, got {phase!r}")
        if int(samples) < 0:
            raise ValueError(f"samples must be >= 0, got {samples}")
        cu = _torch_cuda() if self.cuda is not False else None
        start_ev = end_ev = None
        if cu is not None:
            start_ev, end_ev = cu.Event(enable_timing=True), cu.Event(enable_timing=True)
            start_ev.record()
        w0, c0, t0 = time.perf_counter(), time.process_time(), time.thread_time()
        try:
            yield
        finally:
            cuda_s = 0.0
            if cu is not None and start_ev is not None and end_ev is not None:
                end_ev.record()
                end_ev.synchronize()
                cuda_s = start_ev.elapsed_time(end_ev) / 1000.0
            self.add(
                phase,
                wall_s=time.perf_counter() - w0,
                cpu_s=time.process_time() - c0,
                thread_cpu_s=time.thread_time() - t0,
                cuda_s=cuda_s,
                samples=int(samples),
            )

    def add(
        self,
        phase: str,
        *,
        wall_s: float = 0.0,
        cpu_s: float = 0.0,
        thread_cpu_s: float = 0.0,
        cuda_s: float = 0.0,
        samples: int = 0,
        calls: int = 1,
    ) -> None:
        """Record externally measured cost (e.g. from a trainer's FitReport)."""
        vals = (wall_s, cpu_s, thread_cpu_s, cuda_s)
        if any(not (v == v and v >= 0 and v != float("inf")) for v in vals) or samples < 0 or calls < 0:
            raise ValueError(f"costs must be finite and >= 0, got {vals}, samples={samples}, calls={calls}")
        with self._lock:
            p = self._phases.setdefault(phase, PhaseTotals())
            p.calls += calls
            p.samples += int(samples)
            p.wall_s += wall_s
            p.cpu_s += cpu_s
            p.thread_cpu_s += thread_cpu_s
            p.cuda_s += cuda_s

    def totals(self) -> dict[str, dict[str, float]]:
        """``{phase: {calls, samples, wall_s, cpu_s, thread_cpu_s, cuda_s}}`` plus an ``all`` row."""
        with self._lock:
            out = {k: asdict(v) for k, v in self._phases.items()}
        if out:
            out["all"] = {f: sum(v[f] for v in out.values()) for f in _FIELDS}
        return out

    def per_sample(self) -> dict[str, dict[str, float]]:
        """Seconds per sample for each phase (phases without samples are left out)."""
        return {
            k: {f: v[f] / v["samples"] for f in ("wall_s", "cpu_s", "thread_cpu_s", "cuda_s")}
            for k, v in self.totals().items()
            if k != "all" and v["samples"] > 0
        }

    def reset(self) -> None:
        """Forget all records."""
        with self._lock:
            self._phases.clear()

    def state_dict(self) -> dict[str, Any]:
        """JSON-able snapshot."""
        with self._lock:
            return {"kind": "compute_ledger", "phases": {k: asdict(v) for k, v in self._phases.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a snapshot from ``state_dict``."""
        if state.get("kind") != "compute_ledger":
            raise ValueError("not a compute-ledger state")
        with self._lock:
            self._phases = {
                k: PhaseTotals(
                    **{f: (int(v[f]) if f in ("calls", "samples") else float(v[f])) for f in _FIELDS}
                )
                for k, v in state["phases"].items()
            }
