"""The Grafana dashboards, built with the Grafana Foundation SDK: overview and adaptation.

Every query selects ``job=~"$job", instance=~"$instance"`` and reads the ``$datasource`` variable,
so the dashboards work in any Grafana with a Prometheus data source. Uids are stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders import common, dashboard, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import GraphDrawStyle, StackingMode
from grafana_foundation_sdk.models.dashboard import DataSourceRef, Threshold, ThresholdsMode, VariableRefresh
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from adaptcast.deploy.monitoring import rules

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
WORKER = 'job=~"$job", instance=~"$instance"'
RATE = "$__rate_interval"


def sel(metric: str, *matchers: str) -> str:
    """``metric`` restricted to the workers chosen in the dashboard's ``$job`` and ``$instance``."""
    return f"{metric}{{{', '.join((WORKER, *matchers))}}}"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = "{{instance}}"


@dataclass(frozen=True)
class Panel:
    """A panel: ``kind`` is timeseries, bars (stacked counts per interval), stat or heatmap."""

    kind: str
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    span: int = 8
    height: int = 8
    thresholds: tuple[tuple[float | None, str], ...] = ()


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


@dataclass(frozen=True)
class Annotation:
    name: str
    expr: str
    color: str


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    annotations: tuple[Annotation, ...]
    rows: tuple[Row, ...]


def _series(kind: str) -> timeseries.Panel:
    """Lines, or stacked bars for counts per interval."""
    b = timeseries.Panel()
    if kind == "bars":
        b.draw_style(GraphDrawStyle.BARS).stacking(common.StackingConfig().mode(StackingMode.NORMAL))
        b.fill_opacity(80)
    return b


def _panel(p: Panel, panel_id: int):
    """The SDK builder of one panel, its queries lettered A, B, …"""
    if p.kind in ("timeseries", "bars"):
        b = _series(p.kind)
    elif p.kind == "stat":
        b = stat.Panel().reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]))
    elif p.kind == "heatmap":
        b = heatmap.Panel().calculate(False)
    else:
        raise ValueError(f"unknown panel kind {p.kind!r}")
    b.id(panel_id).title(p.title).description(p.description).datasource(DATASOURCE).unit(p.unit)
    b.span(p.span).height(p.height)
    if p.thresholds:
        steps = [Threshold(value=v, color=c) for v, c in p.thresholds]
        b.thresholds(dashboard.ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps(steps))
    for i, q in enumerate(p.queries):
        target = prometheus.Dataquery().expr(q.expr).legend_format(q.legend).ref_id(chr(ord("A") + i))
        if p.kind == "heatmap":
            target.format(PromQueryFormat.HEATMAP)
        b.with_target(target)
    return b


def _variables() -> list:
    worker = dashboard.QueryVariable("job").label("job").query("label_values(adaptcast_build_info, job)")
    instance = dashboard.QueryVariable("instance").label("instance")
    instance.query('label_values(adaptcast_build_info{job=~"$job"}, instance)')
    for v in (worker, instance):
        v.datasource(DATASOURCE).refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        v.multi(True).include_all(True).all_value(".*")
    return [
        dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"),
        worker,
        instance,
    ]


def build(d: Dashboard) -> str:
    """The dashboard's JSON model (keys sorted, so regenerating an unchanged dashboard changes nothing)."""
    b = dashboard.Dashboard(d.title).uid(d.uid).description(d.description).tags(["adaptcast"])
    b.refresh("30s").time("now-3h", "now").timezone("browser").variables(_variables())
    for a in d.annotations:
        query = dashboard.AnnotationQuery().name(a.name).datasource(DATASOURCE).enable(True)
        b.annotation(query.icon_color(a.color).expr(a.expr))
    next_id = 1
    for row in d.rows:
        b.with_row(dashboard.Row(row.title).id(next_id))
        next_id += 1
        for p in row.panels:
            b.with_panel(_panel(p, next_id))
            next_id += 1
    return JSONEncoder(sort_keys=True, indent=2).encode(b.build()) + "\n"


def _rate(metric: str, by: str, *matchers: str) -> str:
    return f"sum by ({by}) (rate({sel(metric, *matchers)}[{RATE}]))"


def _increase(metric: str, by: str, *matchers: str, window: str = RATE) -> str:
    return f"sum by ({by}) (increase({sel(metric, *matchers)}[{window}]))"


def _mean(histogram: str, window: str = RATE) -> str:
    """Mean observation of ``histogram`` per worker over ``window``."""
    by = rules.BY
    return (
        f"sum by ({by}) (increase({sel(histogram + '_sum')}[{window}]))"
        f" / sum by ({by}) (increase({sel(histogram + '_count')}[{window}]))"
    )


def _quantile(q: str, histogram: str) -> Query:
    expr = f"histogram_quantile({q}, sum by ({rules.BY}, le) (rate({sel(histogram + '_bucket')}[{RATE}])))"
    return Query(expr, f"{{{{instance}}}} p{round(float(q) * 100)}")


READY = ((None, "red"), (1.0, "green"))

EVENTS = (  # drift alarms and swaps, marked on the time axis of both dashboards
    Annotation(
        "Drift alarms",
        _increase("adaptcast_drift_detections_total", "instance, detector", window="$__interval") + " > 0",
        "orange",
    ),
    Annotation(
        "Models swapped in",
        _increase(
            "adaptcast_retrain_outcomes_total",
            "instance, reason",
            'outcome="swapped"',
            window="$__interval",
        )
        + " > 0",
        "green",
    ),
)

OVERVIEW = Dashboard(
    uid="adaptcast-overview",
    title="adaptcast / overview",
    description="Is adaptcast forecasting, keeping up, and as accurate as when its model was validated?",
    annotations=EVENTS,
    rows=(
        Row(
            "Now",
            (
                Panel(
                    "stat",
                    "Ready",
                    "1 when /readyz answers 200: a model serves and (on Kafka) partitions are assigned.",
                    (Query(sel("adaptcast_ready")),),
                    span=4,
                    height=4,
                    thresholds=READY,
                ),
                Panel(
                    "stat",
                    "Model version",
                    "Models swapped in by this worker (the serving model's number).",
                    (Query(sel("adaptcast_model_version")),),
                    span=4,
                    height=4,
                ),
                Panel(
                    "stat",
                    "Model age",
                    "Since the serving model was trained; AdaptcastModelTooOld fires above the maximum.",
                    (
                        Query(sel("adaptcast_model_age_seconds"), "{{instance}} age"),
                        Query(sel("adaptcast_model_max_age_seconds"), "{{instance}} maximum"),
                    ),
                    unit="s",
                    span=4,
                    height=4,
                ),
                Panel(
                    "stat",
                    "Model trained at",
                    "When the serving model was trained.",
                    (Query(sel("adaptcast_model_trained_timestamp_seconds") + " * 1000"),),
                    unit="dateTimeAsIso",
                    span=4,
                    height=4,
                ),
                Panel(
                    "stat",
                    "Series",
                    "Series this worker holds windows for.",
                    (Query(sel("adaptcast_series_active")),),
                    span=4,
                    height=4,
                ),
                Panel(
                    "stat",
                    "Partitions",
                    "Input partitions assigned to this worker (Kafka only; 0 in the embedded run).",
                    (Query(sel("adaptcast_partitions_assigned")),),
                    span=4,
                    height=4,
                ),
            ),
        ),
        Row(
            "Throughput and lag",
            (
                Panel(
                    "timeseries",
                    "Records in, forecasts out",
                    "Input records read and forecasts produced per second (5-minute rates); and forecasts "
                    "the model answered far beyond their window's range, served the window's last value "
                    "instead (a window unlike any it trained on: a feed that jumped by orders of magnitude).",
                    (
                        Query(sel(rules.RECORDS_RATE), "{{instance}} records"),
                        Query(sel(rules.PREDICTIONS_RATE), "{{instance}} forecasts"),
                        Query(_rate("adaptcast_forecasts_clipped_total", rules.BY), "{{instance}} clipped"),
                    ),
                    unit="ops",
                ),
                Panel(
                    "timeseries",
                    "Consumer lag by partition",
                    "Records between the worker's position and the end of each input partition.",
                    (Query(sel("adaptcast_consumer_lag_records"), "{{instance}} {{topic}}/{{partition}}"),),
                ),
                Panel(
                    "bars",
                    "Dead letters by reason",
                    "Records rejected to the dead-letter topic per second, by rejection code; and input "
                    "records the topic's retention deleted before the group read them (never forecast).",
                    (
                        Query(sel(rules.REJECTED_RATE), "{{reason}}"),
                        Query(_rate("adaptcast_records_expired_total", rules.BY), "deleted by retention"),
                    ),
                    unit="ops",
                ),
                Panel(
                    "timeseries",
                    "Dead-letter ratio",
                    "Share of input records rejected; AdaptcastDeadLetterRateHigh fires above 5 %.",
                    (Query(sel(rules.REJECTED_RATIO)),),
                    unit="percentunit",
                ),
            ),
        ),
        Row(
            "Time grid",
            (
                Panel(
                    "bars",
                    "Grid points filled",
                    "Missing grid points filled for the model's input (grid.fill; never scored as truth).",
                    (Query(_increase("adaptcast_grid_filled_steps_total", rules.BY)),),
                    span=12,
                ),
                Panel(
                    "bars",
                    "Series restarts by reason",
                    "Series windows restarted: gap (longer than grid.max_fill) or grid_change (records "
                    "stopped falling on the series' grid; it moved onto a new one); series forgotten "
                    "after more than grid.forget_after of their periods without a record; and series met on "
                    "another input partition (records not keyed by series).",
                    (
                        Query(_increase("adaptcast_series_resets_total", "reason"), "{{reason}}"),
                        Query(_increase("adaptcast_series_forgotten_total", rules.BY), "forgotten"),
                        Query(
                            _increase("adaptcast_series_partition_moves_total", rules.BY), "moved partition"
                        ),
                    ),
                    span=12,
                ),
            ),
        ),
        Row(
            "Latency",
            (
                Panel(
                    "timeseries",
                    "End-to-end latency",
                    "Record received to forecast emitted: p50, p95, p99 over 5 minutes.",
                    (Query(sel(rules.LATENCY), "{{instance}} p{{quantile}}"),),
                    unit="s",
                ),
                Panel(
                    "timeseries",
                    "Predict call",
                    "One micro-batched model call: p50, p95, p99 over 5 minutes.",
                    (Query(sel(rules.PREDICT_LATENCY), "{{instance}} p{{quantile}}"),),
                    unit="s",
                ),
                Panel(
                    "timeseries",
                    "Windows per predict call",
                    "Mean micro-batch size: larger batches mean cheaper forecasts.",
                    (Query(_mean("adaptcast_predict_batch_size")),),
                ),
            ),
        ),
        Row(
            "Forecast error",
            (
                Panel(
                    "timeseries",
                    "Live vs validation error",
                    "The serving model's one-step error live and on its validation windows, in target "
                    "standard deviations. Live well above validation means the data moved away.",
                    (
                        Query(sel(rules.LIVE_ERROR), "{{instance}} live"),
                        Query(sel("adaptcast_validation_scaled_error"), "{{instance}} validation"),
                    ),
                ),
                Panel(
                    "timeseries",
                    "Live / validation",
                    "Ratio of the two; AdaptcastLiveErrorAboveValidation fires above 1.5 for 30 minutes.",
                    (Query(sel(rules.LIVE_TO_VALIDATION)),),
                    thresholds=((None, "green"), (1.5, "red")),
                ),
                Panel(
                    "timeseries",
                    "Live MAE (target units)",
                    "Rolling mean absolute error of the last 500 corrected one-step forecasts, beside "
                    "persistence's on the same points (the last value as the forecast). A model above "
                    "persistence forecasts worse than repeating the last value.",
                    (
                        Query(sel("adaptcast_live_mae"), "{{instance}} model"),
                        Query(sel("adaptcast_live_persistence_mae"), "{{instance}} persistence"),
                    ),
                ),
                Panel(
                    "timeseries",
                    "Interval coverage",
                    "Share of the last 500 scored forecast points inside their prediction interval, per "
                    "nominal level: it should sit near the level's value, and dips after a change as the "
                    "adaptive conformal calibration catches up.",
                    (Query(sel("adaptcast_interval_coverage"), "{{instance}} {{level}} %"),),
                    unit="percentunit",
                ),
                Panel(
                    "heatmap",
                    "Live error distribution",
                    "One-step absolute errors of the serving model, in target standard deviations.",
                    (
                        Query(
                            f"sum by (le) (increase({sel('adaptcast_live_scaled_error_bucket')}[{RATE}]))",
                            "{{le}}",
                        ),
                    ),
                    span=24,
                ),
            ),
        ),
        Row(
            "Adaptation",
            (
                Panel(
                    "bars",
                    "Drift alarms by detector",
                    "Alarms raised by the retrain policy's drift detector.",
                    (Query(_increase("adaptcast_drift_detections_total", "detector"), "{{detector}}"),),
                    span=12,
                ),
                Panel(
                    "bars",
                    "Retrains by reason and outcome",
                    "Finished training jobs: why they started (initial, periodic, drift) and how they ended "
                    "(swapped in, rejected by validation, failed, superseded).",
                    (
                        Query(
                            _increase("adaptcast_retrain_outcomes_total", "reason, outcome"),
                            "{{reason}} {{outcome}}",
                        ),
                    ),
                    span=12,
                ),
            ),
        ),
    ),
)

ADAPTATION = Dashboard(
    uid="adaptcast-adaptation",
    title="adaptcast / adaptation",
    description="How adaptcast adapts: training windows, error-memory corrections, and what training costs.",
    annotations=EVENTS,
    rows=(
        Row(
            "Variance Horizon",
            (
                Panel(
                    "timeseries",
                    "Training window",
                    "Rows per series the last retrain trained on: the Variance Horizon's choice (window vh).",
                    (Query(sel("adaptcast_variance_horizon_rows")),),
                ),
                Panel(
                    "bars",
                    "Retrains started by reason",
                    "Training jobs submitted: initial model, periodic, or a drift alarm.",
                    (Query(_increase("adaptcast_retrains_total", "reason"), "{{reason}}"),),
                ),
                Panel(
                    "bars",
                    "Retrains not swapped in, by stage",
                    "train: training raised; validation: the candidate was worse; superseded: a newer "
                    "model was installed first.",
                    (Query(_increase("adaptcast_retrain_failures_total", "stage"), "{{stage}}"),),
                ),
            ),
        ),
        Row(
            "Error memory",
            (
                Panel(
                    "timeseries",
                    "Hit ratio and share served",
                    "Share of corrections that found stored errors of similar past windows, share "
                    "of the correction served (all of it, half or none: whichever has been erring "
                    "least on that series), and share served the last value instead (persistence "
                    "has been erring clearly less than the model there).",
                    (
                        Query(sel("adaptcast_error_memory_hit_ratio"), "{{instance}} hit"),
                        Query(sel("adaptcast_error_memory_served_ratio"), "{{instance}} served"),
                        Query(sel("adaptcast_persistence_served_ratio"), "{{instance}} last value"),
                    ),
                    unit="percentunit",
                ),
                Panel(
                    "timeseries",
                    "Correction size",
                    "Mean absolute correction per forecast, target units: p50 and p95.",
                    (
                        _quantile("0.5", "adaptcast_error_memory_correction_abs"),
                        _quantile("0.95", "adaptcast_error_memory_correction_abs"),
                    ),
                ),
                Panel(
                    "timeseries",
                    "Correction time",
                    "Wall seconds per second spent looking up and storing errors (a share of one core), "
                    "and per window corrected.",
                    (
                        Query(sel(rules.CORRECTION_TIME), "{{instance}} s/s"),
                        Query(
                            _rate(
                                "adaptcast_compute_seconds_total", rules.BY, 'phase="correct"', 'clock="wall"'
                            )
                            + " / "
                            + _rate("adaptcast_compute_samples_total", rules.BY, 'phase="correct"'),
                            "{{instance}} s/window",
                        ),
                    ),
                    unit="s",
                ),
            ),
        ),
        Row(
            "Training and compute",
            (
                Panel(
                    "timeseries",
                    "Training time per retrain",
                    "Mean wall seconds of the retrains finished in the last hour.",
                    (Query(_mean("adaptcast_train_duration_seconds", window="1h")),),
                    unit="s",
                ),
                Panel(
                    "bars",
                    "Compute by phase",
                    "Seconds per second by loop phase (train, predict, correct) and clock (wall, cpu, cuda).",
                    (Query(_rate("adaptcast_compute_seconds_total", "phase, clock"), "{{phase}} {{clock}}"),),
                    unit="s",
                ),
                Panel(
                    "timeseries",
                    "Windows by phase",
                    "Windows trained on, predicted and corrected per second.",
                    (Query(_rate("adaptcast_compute_samples_total", "phase"), "{{phase}}"),),
                    unit="ops",
                ),
            ),
        ),
    ),
)

DASHBOARDS = (OVERVIEW, ADAPTATION)
