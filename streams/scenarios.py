"""Seeded synthetic multi-series feeds with labelled drift events, for demos, tests and benchmarks.

Every scenario is hourly by default, with daily and weekly seasonality and noise; the drift
event(s) are returned with their start/end so detection delay can be scored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np
import polars as pl

START = datetime(2024, 1, 1)
DAY = 24
WEEK = 24 * 7


@dataclass(frozen=True)
class DriftEvent:
    """A labelled change: which series, when it starts and ends (equal for abrupt changes)."""

    kind: str
    series: tuple[str, ...]
    start_step: int
    end_step: int
    start: datetime
    end: datetime
    abrupt: bool
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "series": list(self.series),
            "start_step": self.start_step,
            "end_step": self.end_step,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "abrupt": self.abrupt,
            "detail": self.detail,
        }


@dataclass
class Scenario:
    """A long frame (``ts``, ``series``, ``y``) sorted by time then series, plus its events."""

    name: str
    frame: pl.DataFrame
    events: list[DriftEvent]
    freq: timedelta
    target: str = "y"
    description: str = ""
    series: list[str] = field(default_factory=list)

    def wide(self) -> pl.DataFrame:
        """One column per series (``date`` first): the layout ``adaptcast train`` reads."""
        return self.frame.pivot(on="series", index="ts", values=self.target).rename({"ts": "date"})

    def records(self) -> Iterator[dict[str, object]]:
        """Input records as docs/architecture.md defines them, in arrival order."""
        for ts, series, y in self.frame.select("ts", "series", self.target).iter_rows():
            yield {"series": series, "ts": ts.isoformat(), "values": {self.target: y}}


def _base(rng: np.random.Generator, n_series: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-series seasonal signal without noise, the noise scale, and the time index."""
    t = np.arange(steps, dtype=np.float64)
    level = rng.uniform(10.0, 50.0, size=(n_series, 1))
    daily = rng.uniform(2.0, 6.0, size=(n_series, 1))
    weekly = rng.uniform(0.5, 2.0, size=(n_series, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n_series, 1))
    signal = (
        level
        + daily * np.sin(2 * np.pi * t / DAY + phase)
        + weekly * np.sin(2 * np.pi * t / WEEK + phase / 3)
    )
    sigma = 0.1 * daily
    return signal, sigma, t


def _frame(values: np.ndarray, names: list[str], freq: timedelta) -> pl.DataFrame:
    n_series, steps = values.shape
    ts = [START + i * freq for i in range(steps)]
    return pl.DataFrame(
        {
            "ts": np.repeat(np.array(ts, dtype="datetime64[us]"), n_series),
            "series": names * steps,
            "y": values.T.reshape(-1),
        }
    ).with_columns(pl.col("y").cast(pl.Float64))


def _event(kind: str, names: list[str], start: int, end: int, freq: timedelta, detail: str) -> DriftEvent:
    return DriftEvent(
        kind, tuple(names), start, end, START + start * freq, START + end * freq, start == end, detail
    )


def _single_change(kind: str, description: str) -> Callable[..., Scenario]:
    """Build a generator for one of the per-series drift kinds (the change is applied from ``at``)."""

    def make(
        series: int = 4,
        steps: int = 4 * WEEK,
        seed: int = 0,
        at: float = 0.6,
        freq: timedelta = timedelta(hours=1),
    ) -> Scenario:
        rng = np.random.default_rng(seed)
        signal, sigma, t = _base(rng, series, steps)
        noise = rng.standard_normal(signal.shape)
        start = int(at * steps)
        end = start
        after = t >= start
        scale = np.ones_like(signal)
        names = [f"s{i}" for i in range(series)]
        if kind == "level_shift":
            shift = rng.choice([-1.0, 1.0], size=(series, 1)) * rng.uniform(4.0, 8.0, size=(series, 1))
            signal = signal + shift * after
            detail = "level += " + ", ".join(f"{v:+.2f}" for v in shift[:, 0])
        elif kind == "trend":
            end = min(steps - 1, start + steps // 5)
            slope = rng.uniform(0.03, 0.08, size=(series, 1)) * rng.choice([-1.0, 1.0], size=(series, 1))
            ramp = np.clip(t - start, 0, end - start)
            signal = signal + slope * ramp
            detail = f"linear ramp over {end - start} steps, total " + ", ".join(
                f"{v:+.2f}" for v in (slope * (end - start))[:, 0]
            )
        elif kind == "variance":
            scale = np.where(after, 4.0, 1.0) * np.ones_like(signal)
            detail = "noise std x4"
        elif kind == "seasonality":
            base_signal, _, _ = _base(np.random.default_rng(seed), series, steps)
            level = base_signal.mean(axis=1, keepdims=True)
            shifted = level + 1.5 * (np.roll(base_signal, DAY // 4, axis=1) - level)
            signal = np.where(after, shifted, signal)
            detail = "daily phase +6 h, amplitude x1.5"
        else:  # pragma: no cover - guarded by the registry below
            raise ValueError(kind)
        values = signal + sigma * scale * noise
        return Scenario(
            kind,
            _frame(values, names, freq),
            [_event(kind, names, start, end, freq, detail)],
            freq,
            description=description,
            series=names,
        )

    make.__doc__ = description
    return make


def change_steps(steps: int, events: int) -> list[int]:
    """``events`` change points spread evenly: as many rows before the first as after each one."""
    return [steps * (k + 1) // (events + 1) for k in range(events)]


def _repeated_change(
    name: str, kind: str, low: float, high: float, description: str
) -> Callable[..., Scenario]:
    """Build scenario ``name``: ``events`` changes of one kind per stream, each sized ``low``–``high``.

    Sizes are in noise standard deviations (σ): a level step of that many σ, a slope change of
    that many σ per day, or (``variance``) a noise factor that alternately grows and shrinks.
    """

    def make(
        series: int = 4,
        steps: int = 4 * WEEK,
        seed: int = 0,
        events: int = 3,
        freq: timedelta = timedelta(hours=1),
    ) -> Scenario:
        rng = np.random.default_rng(seed)
        signal, sigma, t = _base(rng, series, steps)
        noise = rng.standard_normal(signal.shape)
        scale = np.ones_like(signal)
        names = [f"s{i}" for i in range(series)]
        labelled = []
        for k, start in enumerate(change_steps(steps, events)):
            after = t >= start
            size = rng.uniform(low, high, size=(series, 1))
            sign = rng.choice([-1.0, 1.0], size=(series, 1))
            if kind == "level_shift":
                signal = signal + sign * size * sigma * after
                detail = "level += " + ", ".join(f"{v:+.1f}σ" for v in (sign * size)[:, 0])
            elif kind == "trend_break":
                signal = signal + sign * size * sigma / DAY * np.clip(t - start, 0, None)
                detail = "slope += " + ", ".join(f"{v:+.1f}σ/day" for v in (sign * size)[:, 0])
            else:
                factor = size if k % 2 == 0 else 1 / size
                scale = np.where(after, scale * factor, scale)
                detail = "noise std x" + ", x".join(f"{v:.2f}" for v in factor[:, 0])
            labelled.append(_event(kind, names, start, start, freq, detail))
        values = signal + sigma * scale * noise
        return Scenario(
            name, _frame(values, names, freq), labelled, freq, description=description, series=names
        )

    make.__doc__ = description
    return make


def stationary(
    series: int = 4, steps: int = 4 * WEEK, seed: int = 0, freq: timedelta = timedelta(hours=1)
) -> Scenario:
    """Seasonal series with noise and no drift: the false-alarm reference."""
    rng = np.random.default_rng(seed)
    signal, sigma, _ = _base(rng, series, steps)
    values = signal + sigma * rng.standard_normal(signal.shape)
    names = [f"s{i}" for i in range(series)]
    return Scenario(
        "stationary",
        _frame(values, names, freq),
        [],
        freq,
        description=stationary.__doc__ or "",
        series=names,
    )


# ---- link failure: traffic routed over a small network ------------------------------------------------

NETWORK_EDGES: tuple[tuple[str, str], ...] = (
    ("A", "B"),
    ("B", "C"),
    ("C", "D"),
    ("D", "E"),
    ("E", "F"),
    ("F", "A"),
    ("A", "C"),
    ("B", "E"),
    ("C", "F"),
    ("D", "F"),
)


def shortest_path(edges: list[tuple[str, str]], src: str, dst: str) -> list[tuple[str, str]]:
    """Breadth-first shortest path as a list of undirected links (ties broken by name for determinism)."""
    adj: dict[str, list[str]] = {}
    for a, b in edges:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    prev: dict[str, str] = {src: src}
    queue = deque([src])
    while queue:
        node = queue.popleft()
        if node == dst:
            break
        for nxt in sorted(adj.get(node, [])):
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    if dst not in prev:
        raise ValueError(f"no path from {src} to {dst}: the network is disconnected")
    path, node = [], dst
    while node != src:
        path.append(tuple(sorted((prev[node], node))))
        node = prev[node]
    return path[::-1]  # type: ignore[return-value]


def _connected(edges: list[tuple[str, str]], nodes: list[str]) -> bool:
    try:
        for node in nodes[1:]:
            shortest_path(edges, nodes[0], node)
    except ValueError:
        return False
    return True


def route_loads(
    edges: list[tuple[str, str]], demands: dict[tuple[str, str], np.ndarray]
) -> dict[tuple[str, str], np.ndarray]:
    """Sum each pair's traffic over the links of its shortest path."""
    steps = len(next(iter(demands.values())))
    loads = {tuple(sorted(e)): np.zeros(steps) for e in edges}
    for (src, dst), traffic in demands.items():
        for link in shortest_path(edges, src, dst):
            loads[link] += traffic
    return loads  # type: ignore[return-value]


def link_failure(
    series: int = 0,
    steps: int = 4 * WEEK,
    seed: int = 0,
    failures: tuple[float, ...] = (0.5, 0.75),
    freq: timedelta = timedelta(hours=1),
) -> Scenario:
    """Per-link load of a 6-node network; at each failure time one link goes down and traffic re-routes.

    Each node pair's demand is a sum of sines (daily + half-daily + weekly) plus noise; link load is the
    sum of the demands routed over it. A failed link carries zero from then on; surviving links take
    the re-routed traffic (an abrupt drift). ``series`` is ignored: the links are the series.
    """
    rng = np.random.default_rng(seed)
    nodes = sorted({n for e in NETWORK_EDGES for n in e})
    t = np.arange(steps, dtype=np.float64)
    demands: dict[tuple[str, str], np.ndarray] = {}
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            base = rng.uniform(1.0, 5.0)
            comp = sum(
                rng.uniform(0.2, 1.0) * base * np.sin(2 * np.pi * t / p + rng.uniform(0, 2 * np.pi))
                for p in (DAY, DAY / 2, WEEK)
            )
            demands[(a, b)] = np.maximum(base + 0.5 * comp + 0.05 * base * rng.standard_normal(steps), 0.0)
    edges = [tuple(sorted(e)) for e in NETWORK_EDGES]
    links = [f"{a}-{b}" for a, b in edges]
    cut_steps = sorted(int(f * steps) for f in failures)
    order = rng.permutation(len(edges))
    failed: list[tuple[str, str]] = []
    segments = [0, *cut_steps, steps]
    values = np.zeros((len(edges), steps))
    events: list[DriftEvent] = []
    for k in range(len(segments) - 1):
        alive = [e for e in edges if e not in failed]
        loads = route_loads(alive, demands)  # type: ignore[arg-type]
        lo, hi = segments[k], segments[k + 1]
        for j, e in enumerate(edges):
            values[j, lo:hi] = loads[e][lo:hi] if e in loads else 0.0
        if k < len(cut_steps):
            # fail a link whose removal keeps the network connected
            cand = next(
                edges[i]
                for i in order
                if edges[i] not in failed and _connected([e for e in alive if e != edges[i]], nodes)
            )
            failed.append(cand)
            new_loads = route_loads([e for e in edges if e not in failed], demands)  # type: ignore[arg-type]
            changed = [
                links[j]
                for j, e in enumerate(edges)
                if e in failed or not np.allclose(new_loads.get(e, 0.0), loads[e])
            ]
            s = cut_steps[k]
            events.append(_event("link_failure", changed, s, s, freq, f"link {'-'.join(failed[-1])} down"))
    return Scenario(
        "link_failure",
        _frame(values, links, freq),
        events,
        freq,
        description=link_failure.__doc__ or "",
        series=links,
    )


def link_failures(
    series: int = 0,
    steps: int = 4 * WEEK,
    seed: int = 0,
    events: int = 3,
    freq: timedelta = timedelta(hours=1),
) -> Scenario:
    """The link-failure network with ``events`` failures, evenly spaced (``series`` is ignored)."""
    fractions = tuple((s + 0.5) / steps for s in change_steps(steps, events))  # int(f·steps) gives s back
    sc = link_failure(series, steps, seed, fractions, freq)
    return replace(sc, name="link_failures", description=link_failures.__doc__ or "")


SCENARIOS: dict[str, Callable[..., Scenario]] = {
    "stationary": stationary,
    "level_shift": _single_change("level_shift", "Abrupt level shift on every series at 60 % of the stream."),
    "trend": _single_change(
        "trend", "Gradual drift: a linear trend ramps in over a fifth of the stream from 60 %."
    ),
    "variance": _single_change("variance", "Noise standard deviation grows fourfold at 60 % of the stream."),
    "seasonality": _single_change(
        "seasonality", "The daily cycle moves by 6 hours and grows 1.5x at 60 % of the stream."
    ),
    "link_failure": link_failure,
    "level_shifts": _repeated_change(
        "level_shifts", "level_shift", 5.0, 10.0, "Abrupt level shifts of 5-10 noise σ, evenly spaced."
    ),
    "level_shifts_subtle": _repeated_change(
        "level_shifts_subtle", "level_shift", 1.0, 3.0, "Subtle level shifts of 1-3 noise σ, evenly spaced."
    ),
    "trend_breaks": _repeated_change(
        "trend_breaks", "trend_break", 1.0, 3.0, "The slope changes by 1-3 noise σ per day, evenly spaced."
    ),
    "variance_shifts": _repeated_change(
        "variance_shifts",
        "variance",
        3.0,
        4.0,
        "Noise std alternately grows and shrinks 3-4x, evenly spaced.",
    ),
    "link_failures": link_failures,
}


def make_scenario(name: str, **kwargs: object) -> Scenario:
    """Generate scenario ``name``; unknown names raise ValueError listing the valid ones."""
    try:
        factory = SCENARIOS[name]
    except KeyError:
        raise ValueError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}") from None
    return factory(**kwargs)


def describe(name: str) -> str:
    """First line of the scenario's docstring."""
    return (SCENARIOS[name].__doc__ or "").strip().splitlines()[0]
