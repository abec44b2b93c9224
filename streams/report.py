"""Backtest report: PNG plots and one self-contained HTML page that shows them beside the summary."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

REPORT_FILE = "report.html"
FORECAST_PLOT = "forecast_{}.png"  # one per configuration, numbered in order
WORST_PLOT = "forecast_worst_{}.png"  # the same, of the series where the first configuration lost most
SERIES_SHOWN = 10  # the per-series table lists this many series at each end of the ratio's range
SERIES_BOUND = 1.02  # a series counts as worse under the first configuration above this MAE ratio
COVERAGE_PLOT = "coverage.png"  # interval coverage over time and per lead, when the forecasts carry intervals
COVERAGE_WINDOW = 100  # forecast times in the rolling coverage
ZOOM_POINTS = 336  # the forecast plot's enlarged last stretch: two weeks of an hourly feed
ZOOM_MIN_FACTOR = 4  # ... drawn once a run has more than this many times as many forecasts
GAP_STEPS = 3  # the forecast plot's lines break where more than this many usual steps pass without one
SUMMARY_COLUMNS = (  # the summary figures the report's table shows for each configuration
    "mae",
    "mse",
    "smape",
    "mase",
    "mae_persistence",
    "n_forecasts",
    "n_retrains",
    "n_fits",
    "train_seconds",
    "train_samples",
    "samples_seen",
    "predict_seconds",
    "error_x_compute",
)
COMPUTE_PHASES = ("train", "correct", "detect")  # training, error memory, detector: the compute figure


@dataclass
class ConfigRun:
    """One compared configuration: its per-step forecasts, its events, its summary entry, its compute."""

    name: str
    forecasts: pl.DataFrame | pl.LazyFrame  # series, issued_at, step, ts, y, yhat_base, yhat, model_version
    events: pl.DataFrame  # ts, event, reason, detector, window, train_seconds
    summary: dict[str, Any]
    phases: dict[str, dict[str, float]] = field(default_factory=dict)  # the loop's ComputeLedger totals

    @property
    def compute_seconds(self) -> float:
        """CPU seconds of training, error memory and drift detection (the phases the loop measured)."""
        return sum(self.phases.get(p, {}).get("cpu_s", 0.0) for p in COMPUTE_PHASES)


@dataclass(frozen=True)
class ParetoPoint:
    """One configuration on the error-against-compute chart; each ``*_ci`` is (low, high) or None."""

    name: str
    error: float
    work: float  # samples seen in training, summed over fits
    seconds: float  # CPU seconds of training, error memory and detection
    error_ci: tuple[float, float] | None = None
    work_ci: tuple[float, float] | None = None
    seconds_ci: tuple[float, float] | None = None


def pareto_front(costs: list[float], errors: list[float]) -> list[bool]:
    """Whether each (cost, error) point is on the front: no other is as good in both and better in one."""
    pts = list(zip(costs, errors, strict=True))
    return [not any(c2 <= c and e2 <= e and (c2 < c or e2 < e) for c2, e2 in pts) for c, e in pts]


def _span(value: float, ci: tuple[float, float] | None) -> list[float]:
    return [0.0, 0.0] if ci is None else [max(value - ci[0], 0.0), max(ci[1] - value, 0.0)]


PARETO_LABELS = ("MAE", "training work (samples seen)", "compute (CPU s: train + memory + detector)")


def plot_pareto(
    points: list[ParetoPoint], path: Path, title: str, labels: tuple[str, str, str] = PARETO_LABELS
) -> Path:
    """Error against training work and against compute seconds, one point per configuration with its CIs.

    ``labels`` name the error, work and seconds axes. Points on the Pareto front (lowest error for
    their cost) are filled and joined by a line.
    """
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, axis, xlabel in zip(axes, ("work", "seconds"), labels[1:], strict=True):
        xs = [getattr(p, axis) for p in points]
        front = pareto_front(xs, [p.error for p in points])
        for i, p in enumerate(points):
            ax.errorbar(
                xs[i],
                p.error,
                xerr=[[v] for v in _span(xs[i], getattr(p, f"{axis}_ci"))],
                yerr=[[v] for v in _span(p.error, p.error_ci)],
                fmt="o",
                color=f"C{i % 10}",
                mfc=f"C{i % 10}" if front[i] else "white",
                capsize=3,
                label=p.name,
            )
            ax.annotate(p.name, (xs[i], p.error), textcoords="offset points", xytext=(4, 4), fontsize=7)
        line = sorted((x, p.error) for x, p, on in zip(xs, points, front, strict=True) if on)
        ax.plot([x for x, _ in line], [e for _, e in line], color="grey", lw=0.8, ls="--", zorder=0)
        if all(x > 0 for x in xs):
            ax.set_xscale("log")
        ax.margins(x=0.15, y=0.08)  # room for the labels
        ax.set_xlabel(xlabel)
    axes[0].set_ylabel(labels[0])
    _legend(axes[1], fontsize=7, loc="best")
    fig.suptitle(f"{title} (filled: on the Pareto front)")
    return _save(fig, path)


def _lead_one(run: ConfigRun, series: str) -> pl.DataFrame:
    df = (
        run.forecasts.lazy()
        .filter((pl.col("series") == series) & (pl.col("step") == 1))
        .collect(engine="streaming")
    )
    if "target" in df.columns and df.height:  # several targets: the first one's forecasts
        df = df.filter(pl.col("target") == df["target"].unique().sort()[0])
    return df.sort("ts")


def interval_levels(forecasts: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """The levels (``"80"``, ``"95"``…) whose ``lo_<level>`` and ``hi_<level>`` columns ``forecasts`` has,
    widest last."""
    columns = forecasts.lazy().collect_schema().names()
    found = [c[3:] for c in columns if c.startswith("lo_") and f"hi_{c[3:]}" in columns]
    return sorted(found, key=float)


def _hits(forecasts: pl.DataFrame | pl.LazyFrame, level: str) -> pl.LazyFrame:
    """The scored forecasts with a bound at ``level``, and whether each truth fell inside (``hit``)."""
    lo, hi = pl.col(f"lo_{level}"), pl.col(f"hi_{level}")
    return (
        forecasts.lazy()
        .filter(pl.col("y").is_not_null() & lo.is_not_nan() & hi.is_not_nan())
        .with_columns(((pl.col("y") >= lo) & (pl.col("y") <= hi)).cast(pl.Float64).alias("hit"))
    )


def zoom_rows(n: int) -> int:
    """How many of a run's ``n`` newest one-step forecasts the forecast plot shows again, enlarged (0:
    none): a long run drawn whole is a smear of lines, and its last stretch is what serves now."""
    return ZOOM_POINTS if n > ZOOM_MIN_FACTOR * ZOOM_POINTS else 0


def plot_forecast(run: ConfigRun, series: str, labelled: list[dict[str, Any]], path: Path) -> Path:
    """Actual vs one-step forecast (base and corrected) with retrain, drift and labelled-event marks, and
    the prediction intervals as shaded bands when the forecasts carry them; a long run gets a second
    panel with its last :data:`ZOOM_POINTS` forecasts, their span shaded on the whole run's."""
    df = _lead_one(run, series)
    zoom = zoom_rows(df.height)
    fig, axes = plt.subplots(2 if zoom else 1, 1, figsize=(11, 7 if zoom else 4), squeeze=False)
    _draw_forecast(axes[0, 0], df, run.events, labelled)
    axes[0, 0].set_title(f"{run.name}: series {series}, one-step-ahead forecast")
    _legend(axes[0, 0], loc="upper left", fontsize=8, ncol=3)
    if zoom:
        tail = df.tail(zoom)
        start, end = tail["ts"][0], tail["ts"][-1]
        axes[0, 0].axvspan(start, end, color="grey", alpha=0.15, lw=0)
        _draw_forecast(axes[1, 0], tail, run.events.filter(pl.col("ts").is_between(start, end)), labelled)
        axes[1, 0].set_xlim(start, end)  # labelled events outside the stretch fall out of view
        axes[1, 0].set_title(f"the last {zoom} forecasts (shaded above)", fontsize=10)
    for ax in axes[:, 0]:  # autofmt_xdate would hide the upper panel's dates: the panels share no axis
        plt.setp(ax.get_xticklabels(), rotation=30, ha="right")
    return _save(fig, path)


def break_gaps(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` (sorted by ``ts``) with an empty row one usual step after each forecast followed by a gap
    of more than :data:`GAP_STEPS` usual steps (the median spacing), so that lines and bands drawn from
    it stop at the gap instead of joining its two sides with a straight line that no data made. A
    weekend of a business-day feed (three steps) is not a gap."""
    if df.height < 3:
        return df
    spacing = df["ts"].diff().dt.total_milliseconds()
    step = spacing.median()
    if not step:
        return df
    before = spacing.shift(-1) > GAP_STEPS * step  # the row after which a gap opens
    if not before.any():
        return df
    breaks = df.filter(before).select(pl.col("ts") + pl.duration(milliseconds=step))
    return pl.concat([df, breaks], how="diagonal_relaxed").sort("ts")


def _draw_forecast(ax: Any, df: pl.DataFrame, ev: pl.DataFrame, labelled: list[dict[str, Any]]) -> None:
    """One panel of :func:`plot_forecast`: bands, truth and forecasts of ``df``, retrain and drift marks
    of ``ev``, and the labelled events."""
    df = break_gaps(df)
    levels = interval_levels(df)
    for i, lv in enumerate(reversed(levels)):  # widest first, so the narrower band is drawn over it
        alpha = 0.15 + 0.15 * i / max(len(levels) - 1, 1)  # NaN bounds (no interval yet) leave a gap
        lo, hi = df[f"lo_{lv}"].to_numpy(), df[f"hi_{lv}"].to_numpy()
        ax.fill_between(
            df["ts"].to_numpy(), lo, hi, color="tab:orange", alpha=alpha, lw=0, label=f"{lv} % interval"
        )
    ax.plot(df["ts"], df["y"].to_numpy(), color="black", lw=1.0, label="actual")  # null: NaN, a break
    ax.plot(
        df["ts"], df["yhat_base"].to_numpy(), color="tab:blue", lw=0.8, alpha=0.7, label="forecast (model)"
    )
    if (df["yhat"] != df["yhat_base"]).any():
        ax.plot(df["ts"], df["yhat"].to_numpy(), color="tab:orange", lw=0.8, label="forecast (corrected)")
    for i, ts in enumerate(ev.filter(pl.col("event") == "retrain")["ts"]):
        ax.axvline(ts, color="tab:green", ls="--", lw=0.8, label="retrain" if i == 0 else None)
    for i, ts in enumerate(ev.filter(pl.col("event") == "drift")["ts"]):
        ax.axvline(ts, color="tab:red", ls=":", lw=1.0, label="drift alarm" if i == 0 else None)
    for i, e in enumerate(labelled):
        start, end = datetime.fromisoformat(e["start"]), datetime.fromisoformat(e["end"])
        if end > start:
            ax.axvspan(start, end, color="tab:red", alpha=0.12, label="labelled event" if i == 0 else None)
        else:
            ax.axvline(start, color="tab:red", alpha=0.3, lw=4, label="labelled event" if i == 0 else None)


def plot_error(runs: list[ConfigRun], path: Path, window: int = 48) -> Path:
    """Rolling MAE of one-step forecasts over time, one line per configuration."""
    fig, ax = plt.subplots(figsize=(11, 4))
    for run in runs:
        df = (
            run.forecasts.lazy()
            .filter(pl.col("step") == 1)
            .with_columns((pl.col("y") - pl.col("yhat")).abs().alias("ae"))
            .group_by("ts")
            .agg(pl.col("ae").mean())
            .sort("ts")
            .with_columns(pl.col("ae").rolling_mean(window, min_samples=1))
            .collect(engine="streaming")
        )
        ax.plot(df["ts"], df["ae"], lw=1.0, label=run.name)
    ax.set_title(f"Rolling MAE ({window} steps) of one-step forecasts")
    ax.set_ylabel("MAE")
    _legend(ax, fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_compute(runs: list[ConfigRun], path: Path) -> Path:
    """Cumulative training seconds over time, one step line per configuration."""
    fig, ax = plt.subplots(figsize=(11, 4))
    for run in runs:
        tr = run.events.filter(pl.col("event") == "retrain").sort("ts")
        if tr.height == 0:
            continue
        ax.step(tr["ts"], tr["train_seconds"].cum_sum(), where="post", label=run.name)
    ax.set_title("Cumulative training compute")
    ax.set_ylabel("train seconds (CPU)")
    _legend(ax, fontsize=8)
    fig.autofmt_xdate()
    return _save(fig, path)


def plot_comparison(runs: list[ConfigRun], path: Path) -> Path:
    """MAE, training seconds and MAE × train seconds per configuration, side by side."""
    names = [r.name for r in runs]
    panels = [("mae", "MAE"), ("train_seconds", "train seconds"), ("error_x_compute", "MAE × train seconds")]
    fig, axes = plt.subplots(1, 3, figsize=(12, max(3, 0.45 * len(runs) + 1.5)))
    for ax, (key, title) in zip(axes, panels, strict=False):
        vals = [float(r.summary.get(key) or 0.0) for r in runs]
        ax.barh(names, vals, color="tab:blue")
        ax.set_title(title)
        ax.invert_yaxis()
        for i, v in enumerate(vals):
            ax.text(v, i, f" {v:.3g}", va="center", fontsize=8)
    for ax in axes[1:]:
        ax.set_yticklabels([])
    fig.suptitle("Policy comparison")
    return _save(fig, path)


def plot_coverage(runs: list[ConfigRun], path: Path, window: int = COVERAGE_WINDOW) -> Path | None:
    """Interval coverage: rolling over time (one-step forecasts, ``window`` forecast times) and per lead,
    one line per configuration and level, the nominal levels dotted. ``None`` when no run has intervals."""
    curves = [(run, lv) for run in runs for lv in interval_levels(run.forecasts)]
    if not curves:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [2, 1]})
    levels = sorted({lv for _, lv in curves}, key=float)
    styles = ("-", "--", "-.", ":")
    for run, lv in curves:
        color, ls = f"C{runs.index(run) % 10}", styles[levels.index(lv) % len(styles)]
        hits = _hits(run.forecasts, lv)
        over_time = (
            hits.filter(pl.col("step") == 1)
            .group_by("ts")
            .agg(pl.col("hit").mean())
            .sort("ts")
            .with_columns(pl.col("hit").rolling_mean(window, min_samples=1))
            .collect(engine="streaming")
        )
        left.plot(over_time["ts"], over_time["hit"], color=color, ls=ls, lw=1.0, label=f"{run.name}, {lv} %")
        per_lead = hits.group_by("step").agg(pl.col("hit").mean()).sort("step").collect(engine="streaming")
        right.plot(per_lead["step"], per_lead["hit"], color=color, ls=ls, marker="o", ms=3, lw=1.0)
    for lv in levels:  # the nominal levels
        for ax in (left, right):
            ax.axhline(float(lv) / 100, color="grey", ls=":", lw=0.8)
    left.set_title(f"Interval coverage, one-step forecasts (rolling {window} steps)")
    left.set_ylabel("coverage")
    _legend(left, fontsize=7, loc="lower left", ncol=2)
    right.set_title("Interval coverage per lead")
    right.set_xlabel("lead (steps)")
    plt.setp(left.get_xticklabels(), rotation=30, ha="right")
    return _save(fig, path)


COMPARISON_PLOTS = (  # (file, caption, plot) of the figures that show every configuration at once
    ("error.png", "Error over time", plot_error),
    ("compute.png", "Compute over time", plot_compute),
    ("comparison.png", "Policy comparison", plot_comparison),
)


def series_mae(forecasts: pl.DataFrame | pl.LazyFrame, by: Sequence[str], **columns: str) -> pl.DataFrame:
    """MAE against the truth ``y`` per group ``by`` (e.g. series, config) of each forecast column,
    named by its keyword (``mae="yhat", bare="yhat_base"``), over the points whose truth is known."""
    return (
        forecasts.lazy()
        .filter(pl.col("y").is_not_null())
        .group_by(*by)
        .agg(*((pl.col("y") - pl.col(col)).abs().mean().alias(name) for name, col in columns.items()))
        .collect(engine="streaming")
    )


def series_errors(runs: list[ConfigRun]) -> pl.DataFrame:
    """Per series, each configuration's MAE (a column per run, in order) and the first's ÷ the second's
    (``ratio``), highest first: where, and on which series, the first configuration loses."""
    maes = [series_mae(run.forecasts, ["series"], **{run.name: "yhat"}) for run in runs]
    table = maes[0]
    for other in maes[1:]:
        table = table.join(other, on="series", how="full", coalesce=True)
    first, second = runs[0].name, runs[1].name
    return table.with_columns((pl.col(first) / pl.col(second)).alias("ratio")).sort(
        "ratio", descending=True, nulls_last=True
    )


def _series_section(runs: list[ConfigRun], table: pl.DataFrame) -> str:
    """The per-series comparison as HTML: how many series lose, and the extremes of the ratio."""
    shown = (
        table
        if table.height <= 2 * SERIES_SHOWN
        else pl.concat([table.head(SERIES_SHOWN), table.tail(SERIES_SHOWN)])
    )
    worse = int((table["ratio"] > SERIES_BOUND).sum())
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["series", *(r.name for r in runs), "ratio"])
    body = "".join(
        "<tr>"
        + f"<th>{html.escape(str(row[0]))}</th>"
        + "".join(f"<td>{_fmt(v)}</td>" for v in row[1:])
        + "</tr>"
        for row in shown.iter_rows()
    )
    which = (
        "every series" if shown.height == table.height else f"the {SERIES_SHOWN} highest and lowest ratios"
    )
    return (
        f"<h2>Per series</h2><p>MAE of each configuration; ratio = {html.escape(runs[0].name)} ÷ "
        f"{html.escape(runs[1].name)}. {worse} of {table.height} series above {SERIES_BOUND}×; "
        f"{which} below.</p><table><tr>{head}</tr>{body}</table>"
    )


def _legend(ax: Any, **kwargs: Any) -> None:
    """A legend of what the axes show, or a note that they show nothing (a run with no forecasts
    or no retrains), instead of matplotlib's warning about an empty legend."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**kwargs)
    else:
        ax.text(0.5, 0.5, "nothing to show", transform=ax.transAxes, ha="center", va="center", color="grey")


def _save(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(
    out: Path, runs: list[ConfigRun], labelled: list[dict[str, Any]], title: str, meta: dict[str, Any]
) -> Path:
    """Write the PNGs and :data:`REPORT_FILE` into ``out``; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    series = (
        runs[0]
        .forecasts.lazy()
        .select(pl.col("series").unique().sort())
        .collect(engine="streaming")["series"]
        .to_list()
    )
    images: list[tuple[str, str]] = []

    def forecast_plots(name: str, files: str, caption: str) -> None:
        """Each configuration's forecast of series ``name`` against the truth, with its events."""
        events = [e for e in labelled if name in e.get("series", [name])]
        for i, run in enumerate(runs):
            p = plot_forecast(run, name, events, out / files.format(i))
            images.append((f"Forecast vs actual — {run.name}{caption}", p.name))

    if series:
        forecast_plots(series[0], FORECAST_PLOT, "")
    section = ""
    if len(series) > 1 and len(runs) > 1:  # which series a configuration loses on, and what that looks like
        table = series_errors(runs)
        section = _series_section(runs, table)
        worst = table["series"][0]
        forecast_plots(worst, WORST_PLOT, f", series {worst} (the highest ratio)")
    for name, caption, plot in COMPARISON_PLOTS:
        images.append((caption, plot(runs, out / name).name))
    coverage = plot_coverage(runs, out / COVERAGE_PLOT)
    if coverage is not None:
        images.append(("Interval coverage over time and per lead", coverage.name))
    points = [
        ParetoPoint(r.name, r.summary["mae"], r.summary["samples_seen"], r.compute_seconds)
        for r in runs
        if r.summary.get("mae") is not None
    ]
    if points:
        images.append(
            ("Error against compute", plot_pareto(points, out / "pareto.png", "Error against compute").name)
        )
    rows = "".join(
        "<tr><th>"
        + html.escape(r.name)
        + "</th>"
        + "".join(f"<td>{_fmt(r.summary.get(k))}</td>" for k in SUMMARY_COLUMNS)
        + "</tr>"
        for r in runs
    )
    figs = "".join(
        f'<figure><img src="{html.escape(src)}" alt="{html.escape(cap)}">'
        f"<figcaption>{html.escape(cap)}</figcaption></figure>"
        for cap, src in images
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}th{{text-align:left}}img{{max-width:100%}}
figure{{margin:1.5em 0}}figcaption{{color:#555}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head>
<body><h1>{html.escape(title)}</h1>
<table><tr><th>configuration</th>{"".join(f"<th>{k}</th>" for k in SUMMARY_COLUMNS)}</tr>{rows}</table>
{section}
{figs}
<h2>Run</h2><pre>{html.escape(json.dumps(meta, indent=2, default=str))}</pre>
</body></html>
"""
    path = out / REPORT_FILE
    path.write_text(page)
    return path


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))
