"""Where a live worker's polls spend their time: per-stage timers around one :class:`Worker`'s cycle.

The bench wraps the worker's stages (poll, installing finished retrains, the broker check, the
store check, the loop, producer sends, acknowledgement wait, commit, the periodic snapshot) with
timers, counts the garbage collector's pauses, and notes whether a retrain was running, so the
slowest polls can be matched with what they coincided with. Measurement only: nothing here
changes what the worker does.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

import numpy as np

STAGES = ("poll", "collect", "broker", "store", "loop", "send", "acks", "commit", "snapshot")


class PollTrace:
    """Per-step stage times of one worker, taken by wrapping its stage methods on the instance."""

    def __init__(self, worker: Any):
        self.worker = worker
        self.rows: list[dict[str, Any]] = []
        self._now: dict[str, float] = {}
        self._gc_start = 0.0
        targets = {
            "poll": (worker.source, "poll"),
            "collect": (worker.loop, "collect"),
            "broker": (worker, "_check_broker"),
            "store": (worker, "_follow_store"),
            "loop": (worker.loop, "process"),
            "send": (worker.sink, "send"),
            "acks": (worker, "_await_acks"),
            "commit": (worker, "_commit"),
            "snapshot": (worker, "_snapshot_in_background"),
        }
        for stage, (obj, name) in targets.items():
            setattr(obj, name, self._timed(stage, getattr(obj, name)))
        self._poll = worker.source.poll
        worker.source.poll = self._aged
        gc.callbacks.append(self._on_gc)

    def _timed(self, stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._now[stage] = self._now.get(stage, 0.0) + time.perf_counter() - t0

        return wrapped

    def _aged(self, *args: Any, **kwargs: Any) -> list[Any]:
        """The traced poll, noting how old its records are (their producer timestamps) when it returns."""
        msgs = self._poll(*args, **kwargs)
        if msgs:
            now_ms = time.time() * 1000
            ages = [now_ms - m.timestamp for m in msgs]
            self._now["age_mean"], self._now["age_max"] = sum(ages) / len(ages), max(ages)
        return msgs

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self._now["gc"] = self._now.get("gc", 0.0) + time.perf_counter() - self._gc_start
            self._now["gc_gen"] = max(self._now.get("gc_gen", 0), info["generation"])

    def step(self) -> int:
        """One traced worker step; its row holds the stage times in ms, records and retrain state."""
        self._now = {}
        busy_before = self.worker.loop.trainer.busy
        cpu0, t0 = time.thread_time(), time.perf_counter()
        n = self.worker.step()
        wall = time.perf_counter() - t0
        row = {k: round(v * 1000, 3) for k, v in self._now.items() if k in (*STAGES, "gc")}
        row.update({k: round(self._now[k], 1) for k in ("age_mean", "age_max") if k in self._now})
        row.update(
            t=round(t0, 3),
            records=n,
            wall_ms=round(wall * 1000, 3),
            thread_cpu_ms=round((time.thread_time() - cpu0) * 1000, 3),
            training=busy_before or self.worker.loop.trainer.busy,
            gc_gen=self._now.get("gc_gen"),
        )
        self.rows.append(row)
        return n

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)

    def summary(self, slow_quantile: float = 99.0) -> dict[str, Any]:
        """Stage means over all polls with records and over the slowest ones, and what those met with."""
        rows = [r for r in self.rows if r["records"]]
        if not rows:
            return {"polls": 0}
        wall = np.array([r["wall_ms"] for r in rows])
        cut = float(np.percentile(wall, slow_quantile))
        slow = [r for r in rows if r["wall_ms"] >= cut]

        def mean(rs: list[dict[str, Any]], key: str) -> float:
            return round(float(np.mean([r.get(key, 0.0) for r in rs])), 2)

        def stages(rs: list[dict[str, Any]]) -> dict[str, float]:
            keys = (*STAGES, "gc", "wall_ms", "thread_cpu_ms", "records", "age_mean", "age_max")
            return {k: mean(rs, k) for k in keys}

        t_start = rows[0]["t"]
        seconds: dict[int, list[dict[str, Any]]] = {}
        for r in rows:
            seconds.setdefault(int(r["t"] - t_start), []).append(r)
        timeline = [
            [
                s,
                len(rs),
                sum(r["records"] for r in rs),
                round(max(r["wall_ms"] for r in rs)),
                round(max(r.get("age_max", 0) for r in rs)),
                int(any(r["training"] for r in rs)),
            ]
            for s, rs in sorted(seconds.items())
        ]
        training = [r for r in rows if r["training"]]
        idle = [r for r in rows if not r["training"]]
        return {
            "polls": len(rows),
            "wall_ms_p50_p99_max": [round(float(np.percentile(wall, q)), 1) for q in (50, 99, 100)],
            "all": stages(rows),
            f"slowest_{100 - slow_quantile:g}pct": {
                **stages(slow),
                "share_while_training": round(sum(r["training"] for r in slow) / len(slow), 3),
                "share_with_gc": round(sum(bool(r.get("gc")) for r in slow) / len(slow), 3),
                "share_with_snapshot": round(sum("snapshot" in r for r in slow) / len(slow), 3),
                "share_with_broker_check": round(sum(r.get("broker", 0) > 1 for r in slow) / len(slow), 3),
            },
            "timeline_s_polls_records_maxwall_maxage_training": timeline,
            "slowest_polls": sorted(rows, key=lambda r: -r["wall_ms"])[:8],
            "polls_while_training": len(training),
            "while_training": stages(training) if training else None,
            "while_idle": stages(idle) if idle else None,
        }
