"""Backtest forecasts as they are made: joined with their truth once it is final, written in chunks.

A forecast is final once the clock has passed its last lead (every truth it can get has arrived,
and every restart that voids a lead is known). Final forecasts leave the buffer in issue order, so
the chunks concatenate into the table sorted by issue time, series, lead and target; only the
forecasts still open and the truths they may need stay in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

from adaptcast.streams.events import LoopEvent, SeriesReset
from adaptcast.streams.records import Record
from adaptcast.streams.step import Forecast

FLUSH_FORECASTS = 5_000  # final forecasts buffered before a chunk is written (× horizon × targets rows)


def bound_columns(levels: tuple[str, ...]) -> list[str]:
    """``lo_80``, ``hi_80``, ``lo_95``, ``hi_95``: the interval columns of forecasts.parquet."""
    return [f"{side}_{lv}" for lv in levels for side in ("lo", "hi")]


def forecast_schema(levels: tuple[str, ...]) -> dict[str, pl.DataType]:
    """Columns of forecasts.parquet in order (without the ``config`` column the backtest adds)."""
    return {
        "series": pl.String(),
        "issued_at": pl.Datetime("ms"),
        "step": pl.Int32(),
        "ts": pl.Datetime("ms"),
        "target": pl.String(),
        "y": pl.Float64(),
        "yhat_base": pl.Float64(),
        "yhat": pl.Float64(),
        **{c: pl.Float64() for c in bound_columns(levels)},
        "model_version": pl.String(),
    }


def _closes_by(f: Forecast, horizon: int) -> int:
    """When ``f`` is final: one period after its last lead, past any record snapped back onto that point
    (the period as its last two points are apart: calendar months vary)."""
    before = f.ts_ms[-2] if horizon > 1 else f.issued_at_ms
    return 2 * f.ts_ms[-1] - before


class ForecastSink:
    """Buffers one configuration's forecasts until final, then hands them on in sorted chunks.

    ``write`` receives each chunk (one row per forecast, lead and target, with its truth or null);
    ``flush_forecasts`` bounds how many final forecasts wait before a chunk is made.
    """

    def __init__(
        self,
        targets: list[str],
        horizon: int,
        levels: tuple[str, ...],
        write: Callable[[pl.DataFrame], None],
        flush_forecasts: int = FLUSH_FORECASTS,
    ):
        self.targets, self.horizon, self.levels = list(targets), horizon, levels
        self.write = write
        self.flush_forecasts = max(flush_forecasts, 1)
        self.open: deque[Forecast] = deque()  # in issue order
        self.truths: deque[tuple[int, list[Record]]] = deque()  # (ts of the step, records) in time order
        self.restarts: list[tuple[str, int]] = []  # (series, ts) of every window restart so far
        self.final: list[Forecast] = []
        self.chunks = 0

    def add(self, now_ms: int, forecasts: list[Forecast], accepted: list[Record], events: list[LoopEvent]):
        """One step's output at clock ``now_ms``; writes a chunk when enough forecasts are final."""
        self.open.extend(forecasts)
        if accepted:
            self.truths.append((max(r.ts_ms for r in accepted), accepted))
        self.restarts.extend((e.series, e.ts_ms) for e in events if isinstance(e, SeriesReset))
        while self.open and _closes_by(self.open[0], self.horizon) <= now_ms:
            self.final.append(self.open.popleft())
        if len(self.final) >= self.flush_forecasts:
            self._flush()

    def close(self) -> None:
        """Write everything left: the run is over, so no forecast can get more truth."""
        self.final.extend(self.open)
        self.open.clear()
        self._flush()
        if not self.chunks:
            self.write(forecast_table(self.targets, [], self.horizon, [], [], self.levels))  # the empty table

    def _flush(self) -> None:
        if not self.final:
            return
        rows, self.final = self.final, []
        while self.open and rows and rows[-1].issued_at_ms == self.open[0].issued_at_ms:
            self.open.appendleft(
                rows.pop()
            )  # one issue time stays in one chunk, so chunks concatenate sorted
        if not rows:
            return
        oldest = min(f.issued_at_ms for f in rows)
        keep_from = self.open[0].issued_at_ms if self.open else None
        truths = [rec for ts, recs in self.truths if ts > oldest for rec in recs]
        while keep_from is not None and self.truths and self.truths[0][0] <= keep_from:
            self.truths.popleft()  # a truth is only ever for a later timestamp than its forecast's issue
        if keep_from is None:
            self.truths.clear()
        chunk = forecast_table(self.targets, rows, self.horizon, truths, self.restarts, self.levels)
        self.chunks += 1
        self.write(chunk)


def forecast_table(
    targets: list[str],
    rows: list[Forecast],
    horizon: int,
    truths: list[Record],
    restarts: list[tuple[str, int]],
    levels: tuple[str, ...] = (),
) -> pl.DataFrame:
    """One row per (forecast, lead, target) with the truth the loop scored it on (null where none),
    and the bounds of its interval at each level (NaN before the calibrator knew a residual)."""
    schema = forecast_schema(levels)
    t = len(targets)
    n = len(rows)
    if n == 0:
        return pl.DataFrame(schema=schema)
    rep = horizon * t
    issued = np.repeat(np.array([f.issued_at_ms for f in rows], dtype=np.int64), rep)
    step = np.tile(np.repeat(np.arange(1, horizon + 1), t), n)
    bounds = {
        f"{side}_{lv}": np.stack([getattr(f, side)[i] for f in rows]).reshape(-1).astype(np.float64)
        for i, lv in enumerate(levels)
        for side in ("lo", "hi")
    }
    fc = pl.DataFrame(
        {
            "series": np.repeat(np.array([f.series for f in rows], dtype=object), rep).tolist(),
            "issued_at": issued,
            "step": step.astype(np.int32),
            "ts": np.repeat(np.array([f.ts_ms for f in rows], dtype=np.int64), t, axis=1).reshape(-1),
            "target": np.tile(np.array(targets, dtype=object), n * horizon).tolist(),
            "yhat_base": np.stack([f.yhat_base for f in rows]).reshape(-1).astype(np.float64),
            "yhat": np.stack([f.yhat for f in rows]).reshape(-1).astype(np.float64),
            **bounds,
            "model_version": np.repeat(np.array([f.model_version for f in rows], dtype=object), rep).tolist(),
        }
    ).with_columns(pl.col("issued_at").cast(pl.Datetime("ms")), pl.col("ts").cast(pl.Datetime("ms")))
    out = _without_restarted(
        fc.join(_truth(truths, targets), on=["series", "ts", "target"], how="left"), restarts
    )
    return out.select(*schema).sort("issued_at", "series", "step", "target")


def _truth(records: list[Record], targets: list[str]) -> pl.DataFrame:
    """The records the loop accepted, on their grid points, one row per target: never a filled point."""
    return pl.DataFrame(
        {
            "series": [r.series for r in records for _ in targets],
            "ts": [r.ts_ms for r in records for _ in targets],
            "target": targets * len(records),
            "y": [r.values[t] for r in records for t in targets],
        },
        schema={"series": pl.String, "ts": pl.Int64, "target": pl.String, "y": pl.Float64},
    ).with_columns(pl.col("ts").cast(pl.Datetime("ms")))


def _without_restarted(fc: pl.DataFrame, restarts: list[tuple[str, int]]) -> pl.DataFrame:
    """No truth for a lead past a restart of its series' window (the loop drops those from scoring too)."""
    if not restarts:
        return fc
    marks = pl.DataFrame(
        {"series": [s for s, _ in restarts], "_restart": [ts for _, ts in restarts]},
        schema={"series": pl.String, "_restart": pl.Int64},
    ).with_columns(pl.col("_restart").cast(pl.Datetime("ms")))
    fc = fc.sort("issued_at").join_asof(
        marks.sort("_restart"),
        left_on="issued_at",
        right_on="_restart",
        by="series",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    return fc.with_columns(
        pl.when(pl.col("_restart") <= pl.col("ts")).then(None).otherwise(pl.col("y")).alias("y")
    ).drop("_restart")


class PartWriter:
    """Chunks as numbered Parquet files in one folder, read back lazily."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []

    def __call__(self, chunk: pl.DataFrame) -> None:
        path = self.folder / f"part-{len(self.paths):06d}.parquet"
        chunk.write_parquet(path)
        self.paths.append(path)

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.paths)


class FrameCollector:
    """Chunks kept in memory (a run without an output folder): the table is their concatenation."""

    def __init__(self):
        self.chunks: list[pl.DataFrame] = []

    def __call__(self, chunk: pl.DataFrame) -> None:
        self.chunks.append(chunk)

    def scan(self) -> pl.LazyFrame:
        return pl.concat(self.chunks).lazy()
