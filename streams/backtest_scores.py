"""Backtest scores kept as running aggregates over the forecast chunks, so no run holds its whole table.

Error and interval figures are sums; each labelled event keeps only the rows its scores read (the
first steps after it), which the chunks' issue order lets it prune as they arrive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import polars as pl

from adaptcast.drift.conformal import winkler
from adaptcast.forecast.metrics import mae

AFTER_EVENT_STEPS = 50
COVERAGE_AFTER_STEPS = 100  # interval coverage is judged over more steps: a miss rate needs more points
UNCORRECTABLE = ("variance",)  # event kinds left out of the post-event error: noise cannot be corrected


def series_extent(frame: pl.DataFrame, column: str) -> tuple[int, float]:
    """Rows of the longest series of a long ``frame`` (each series' rows in time order), and the MASE
    denominator: mean |y_t − y_{t−1}| of ``column`` pooled over its series (NaN without a pair).
    One grouping pass; no series is copied out."""
    per = frame.group_by("series").agg(
        rows=pl.len(), abs_sum=pl.col(column).diff().abs().sum(), pairs=pl.col(column).diff().count()
    )
    pairs = int(per["pairs"].sum())
    scale = float(per["abs_sum"].sum()) / pairs if pairs else float("nan")
    return int(per["rows"].max() or 0), scale


def interval_scores(scored: pl.DataFrame, levels: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    """Per level: share of truths inside the interval, mean width and mean Winkler score, over the
    scored points that had an interval (NaN bounds: issued before any residual was known)."""
    return {lv: _IntervalSums(lv).add(scored).scores() for lv in levels}


class _IntervalSums:
    """Hits, widths and Winkler scores of one level, summed over the scored points with an interval."""

    def __init__(self, level: str):
        self.level, self.n, self.hits, self.width, self.winkler = level, 0, 0.0, 0.0, 0.0

    def add(self, scored: pl.DataFrame) -> _IntervalSums:
        lv = self.level
        rows = scored.filter(pl.col(f"lo_{lv}").is_not_nan() & pl.col(f"hi_{lv}").is_not_nan())
        y, lo, hi = (rows[c].to_numpy() for c in ("y", f"lo_{lv}", f"hi_{lv}"))
        self.n += len(y)
        self.hits += float(((y >= lo) & (y <= hi)).sum())
        self.width += float((hi - lo).sum())
        self.winkler += float(winkler(y, lo, hi, float(lv) / 100).sum())
        return self

    def scores(self) -> dict[str, float | None]:
        n = self.n
        return {
            "coverage": self.hits / n if n else None,
            "mean_width": self.width / n if n else None,
            "winkler": self.winkler / n if n else None,
            "n": n,
        }


def _first(frame: pl.DataFrame, column: str, count: int) -> pl.DataFrame:
    """The rows of ``frame`` at its first ``count`` distinct values of ``column``."""
    stamps = frame[column].unique().sort()
    return frame.filter(pl.col(column) <= stamps[count - 1]) if len(stamps) > count else frame


class _EventRows:
    """The rows one labelled event is scored on: forecasts *for* its first steps (scored ones) and
    forecasts issued in its first steps (all, as the post-event error counts issue times)."""

    def __init__(self, event: dict[str, Any]):
        self.event = event
        self.start = datetime.fromisoformat(event["start"])
        self.on_series = pl.col("series").is_in(event["series"])
        self.after: pl.DataFrame | None = None
        self.issued: pl.DataFrame | None = None

    def add(self, chunk: pl.DataFrame) -> None:
        after = chunk.filter(self.on_series & (pl.col("ts") >= self.start)).drop_nulls("y")
        self.after = _first(_stack(self.after, after), "ts", COVERAGE_AFTER_STEPS)
        issued = chunk.filter(self.on_series & (pl.col("issued_at") >= self.start))
        self.issued = _first(_stack(self.issued, issued), "issued_at", AFTER_EVENT_STEPS)

    def issued_scored(self) -> pl.DataFrame:
        return self.issued.drop_nulls("y") if self.issued is not None else pl.DataFrame()

    def scores(self, stamps: np.ndarray, events: pl.DataFrame, levels: tuple[str, ...]) -> dict[str, Any]:
        """Detection delay (steps from the event to the first drift alarm) and MAE over the next 50 steps.

        ``mae_after_50`` scores forecasts *for* those steps (some issued before the event);
        ``mae_after_issued`` those issued in them, every lead.
        """
        ev, start = self.event, self.start
        alarms = events.filter((pl.col("event") == "drift") & (pl.col("ts") >= start)).sort("ts")
        after = self.after if self.after is not None else pl.DataFrame()
        window = _first(after, "ts", AFTER_EVENT_STEPS) if after.height else after
        issued = self.issued_scored()
        delay = None
        if alarms.height:
            later = stamps[stamps > _ms(start)]
            delay = int(np.searchsorted(later, _ms(alarms["ts"][0]), side="left") + 1)

        def err(rows: pl.DataFrame, column: str) -> float | None:
            return mae(rows["y"].to_numpy(), rows[column].to_numpy()) if rows.height else None

        return {
            "kind": ev["kind"],
            "start": ev["start"],
            "series": len(ev["series"]),
            "detection_delay_steps": delay,
            "mae_after_50": err(window, "yhat"),
            "mae_base_after_50": err(window, "yhat_base"),
            "mae_after_issued": err(issued, "yhat"),
            "mae_base_after_issued": err(issued, "yhat_base"),
            "intervals_after_100": interval_scores(after, levels) if after.height else _no_intervals(levels),
        }


def _no_intervals(levels: tuple[str, ...]) -> dict[str, dict[str, float | None]]:
    return {lv: _IntervalSums(lv).scores() for lv in levels}


def _stack(kept: pl.DataFrame | None, new: pl.DataFrame) -> pl.DataFrame:
    return new if kept is None else pl.concat([kept, new])


def _ms(when: datetime) -> int:
    return int(pl.Series([when]).cast(pl.Datetime("ms")).dt.epoch("ms")[0])


class ScoreBoard:
    """Everything the summary reports about one configuration's forecasts, fed chunk by chunk."""

    def __init__(self, levels: tuple[str, ...], labelled: list[dict[str, Any]]):
        self.levels = levels
        self.n = 0
        self.abs_err = self.abs_err_base = self.sq_err = self.smape = 0.0
        self.intervals = [_IntervalSums(lv) for lv in levels]
        self.stamps: set[int] = set()  # every forecast timestamp: the steps a detection delay counts
        self.labelled = [_EventRows(ev) for ev in labelled]

    def add(self, chunk: pl.DataFrame) -> None:
        self.stamps.update(chunk["ts"].dt.epoch("ms").unique().to_list())
        scored = chunk.drop_nulls("y")
        y, yhat, base = (scored[c].to_numpy() for c in ("y", "yhat", "yhat_base"))
        self.n += len(y)
        err = np.abs(y - yhat)
        self.abs_err += float(err.sum())
        self.abs_err_base += float(np.abs(y - base).sum())
        self.sq_err += float(((y - yhat) ** 2).sum())
        denom = np.abs(y) + np.abs(yhat)
        self.smape += float(np.divide(2 * err, denom, out=np.zeros_like(denom), where=denom > 0).sum())
        for sums in self.intervals:
            sums.add(scored)
        for rows in self.labelled:
            rows.add(chunk)

    def errors(self, scale: float) -> dict[str, float | None]:
        """MAE (corrected and base), MSE, sMAPE and MASE over every scored point; None when none was."""
        if not self.n:
            return dict.fromkeys(("mae", "mae_base", "mse", "smape", "mase"))
        m = self.abs_err / self.n
        return {
            "mae": m,
            "mae_base": self.abs_err_base / self.n,
            "mse": self.sq_err / self.n,
            "smape": 100 * self.smape / self.n,
            "mase": m / scale if scale > 0 else float("nan"),
        }

    def interval_scores(self) -> dict[str, dict[str, float | None]]:
        return {sums.level: sums.scores() for sums in self.intervals}

    def event_scores(self, events: pl.DataFrame) -> list[dict[str, Any]]:
        stamps = np.array(sorted(self.stamps), dtype=np.int64)
        return [rows.scores(stamps, events, self.levels) for rows in self.labelled]

    def post_event(self) -> dict[str, Any] | None:
        """Error of the forecasts issued just after the labelled events, overall and per lead.

        Pooled over every event except ``UNCORRECTABLE`` kinds; None when there is no such event.
        """
        kept = [rows for rows in self.labelled if rows.event["kind"] not in UNCORRECTABLE]
        if not kept:
            return None
        parts = [part for part in (r.issued_scored() for r in kept) if part.height]
        if not parts:
            return None
        rows = pl.concat(parts)
        err = rows.with_columns(
            (pl.col("y") - pl.col("yhat")).abs().alias("ae"),
            (pl.col("y") - pl.col("yhat_base")).abs().alias("ae_base"),
        )
        lead = err.group_by("step").agg(pl.col("ae").mean(), pl.col("ae_base").mean()).sort("step")
        return {
            "steps": AFTER_EVENT_STEPS,
            "events": len(kept),
            "n_scored": rows.height,
            "mae": float(err["ae"].mean()),
            "mae_base": float(err["ae_base"].mean()),
            "mae_by_lead": lead["ae"].to_list(),
            "mae_base_by_lead": lead["ae_base"].to_list(),
        }
