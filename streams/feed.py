"""The offline feed: the configured file or scenario as record batches, one batch per timestamp.

The embedded run and the backtest read the same feed in the same batches, so given the same
configuration they make the same forecasts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from adaptcast.forecast.base import InputError
from adaptcast.forecast.data import SeriesFrame, read_series, read_table, value_columns
from adaptcast.streams.calendar import describe
from adaptcast.streams.config import Config
from adaptcast.streams.rate import is_rate
from adaptcast.streams.records import Record
from adaptcast.streams.regular import file_period
from adaptcast.streams.scenarios import make_scenario
from adaptcast.streams.schedule import Schedule, is_scheduled

log = logging.getLogger("adaptcast.feed")


def load_feed(cfg: Config) -> SeriesFrame:
    """``backtest.data`` if set (targets and features from ``model``, or :func:`sole_value`), else the
    scenario section's feed."""
    b, m = cfg.backtest, cfg.model
    if b.data is not None:
        table = read_table(Path(b.data), cfg.serving.otlp_quantiles)
        sole = None if b.series_cols or b.series_rows else sole_value(cfg, table, b.data, b.series_col)
        data = read_series(
            b.data,
            sole or m.targets,
            m.features,
            b.series_col,
            b.time_col,
            b.series_cols,
            row_step(cfg),
            b.series_rows,
            table,
            cfg.serving.otlp_quantiles,
        )
        for note in data.notes():
            log.warning("%s: %s", b.data, note)
    else:
        data = scenario_feed(cfg)
    return data.head(b.limit) if b.limit else data


def sole_value(
    cfg: Config, table: pl.DataFrame, path: str | Path, series_col: str | None
) -> list[str] | None:
    """The one column of values of the file at ``path`` (its ``table``), where no target was named and
    the default's column (``y``) is not in it: a ``time,value`` export needs no ``--target``. Else
    None (several columns of values: which is the user's to say)."""
    m = cfg.model
    if "target" in m.model_fields_set or set(m.targets) <= set(table.columns):
        return None
    values = [c for c in value_columns(table, Path(path), series_col) if c not in m.features]
    if len(values) != 1:
        return None
    log.warning("%s: forecasting its one column of values, %r (--target names another)", path, values[0])
    return values


def forecasting(cfg: Config, targets: list[str]) -> Config:
    """``cfg`` with ``targets`` as the model's, where none was named (:func:`sole_value`'s choice,
    or the feed :func:`load_feed` read with it)."""
    if "target" in cfg.model.model_fields_set or targets == cfg.model.targets:
        return cfg
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"target": list(targets)})})


def row_step(cfg: Config) -> int | None:
    """The declared fixed period, which a file without a time column is numbered by (else None)."""
    period = cfg.grid.rules(cfg.model.lookback).period_ms
    return period if period is not None and period > 0 and not is_rate(period) else None


def declare_schedules(cfg: Config, data: SeriesFrame) -> Config:
    """``cfg`` with the weekly schedule within the day (business hours, a market's week) that a
    series' rows follow declared for it, unless the configuration declares a period. A live series
    finds business days from its first records itself, but hours only show over weeks of records:
    a file holds them, a worker starting on a feed does not, so the run says what to declare."""
    if cfg.grid.frequency is not None:
        return cfg
    rules = cfg.grid.rules(cfg.model.lookback)
    found: dict[str, str] = {}
    names = [n for n in _irregular_series(data.frame) if str(n) not in cfg.grid.series_frequency]
    rows = data.frame.select("series", "ts").filter(pl.col("series").is_in(names))
    for (name,), part in rows.group_by("series", maintain_order=True):
        ts = part["ts"].cast(pl.Datetime("ms")).to_physical().to_numpy()
        try:
            period = file_period(ts, rules)
        except InputError:
            continue
        if is_scheduled(period) and not Schedule.of(period).daily:
            found[str(name)] = describe(period)
    for text in sorted(set(found.values())):
        n = sum(v == text for v in found.values())
        log.warning(
            "%s: %d series follow the weekly schedule %r, found from their first weeks; a live worker "
            "needs it declared (grid.frequency: %r) or it restarts them at every closure",
            data.name,
            n,
            text,
            text,
        )
    if not found:
        return cfg
    grid = cfg.grid.model_copy(update={"series_frequency": {**cfg.grid.series_frequency, **found}})
    return cfg.model_copy(update={"grid": grid})


def _irregular_series(frame: pl.DataFrame) -> list[object]:
    """The series of a long ``frame`` whose rows keep no one interval (three rows at least), in order
    of appearance: the only ones a schedule can be found in. One pass over the columns; no series is
    copied out."""
    steps = frame.group_by("series", maintain_order=True).agg(
        rows=pl.len(), intervals=pl.col("ts").cast(pl.Datetime("ms")).diff().drop_nulls().n_unique()
    )
    return steps.filter((pl.col("rows") >= 3) & (pl.col("intervals") > 1))["series"].to_list()


def scenario_feed(cfg: Config) -> SeriesFrame:
    """The configured scenario, its one value named after the model's target."""
    s, m = cfg.scenario, cfg.model
    if len(m.channels) != 1:
        raise InputError(
            f"scenario {s.name!r} carries one value per record, but the model reads {m.channels}; "
            "set one model.target and no model.features, or replay a file with backtest.data"
        )
    try:
        sc = make_scenario(s.name, series=s.series, steps=s.steps, seed=s.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    frame = sc.frame.rename({sc.target: m.targets[0]}) if sc.target != m.targets[0] else sc.frame
    return SeriesFrame(sc.name, frame, list(m.channels), 1, [e.to_dict() for e in sc.events])


def time_batches(data: SeriesFrame) -> list[tuple[int, list[Record]]]:
    """Records grouped by timestamp (epoch ms), in time order: one batch is one step of the clock."""
    return list(iter_time_batches(data))


def iter_time_batches(data: SeriesFrame, slice_rows: int = 65_536) -> Iterator[tuple[int, list[Record]]]:
    """:func:`time_batches` one at a time, made from the frame a slice at a time (a long run's records
    never exist all at once)."""
    batch: tuple[int, list[Record]] | None = None
    for part in data.frame.select("ts", "series", *data.channels).iter_slices(slice_rows):
        ts_ms = part["ts"].dt.epoch("ms").to_numpy()
        series = part["series"].to_list()
        values = part.select(data.channels).to_numpy()
        for i, t in enumerate(ts_ms):
            rec = Record(series[i], int(t), dict(zip(data.channels, map(float, values[i]), strict=True)))
            if batch is not None and batch[0] == t:
                batch[1].append(rec)
                continue
            if batch is not None:
                yield batch
            batch = (int(t), [rec])
    if batch is not None:
        yield batch
