"""One validated configuration: defaults, a YAML file, ``ADAPTCAST__SECTION__KEY`` variables, CLI flags."""

from __future__ import annotations

import os
import re
from difflib import get_close_matches
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adaptcast.drift.conformal import (
    DEFAULT_GAMMA,
    DEFAULT_GAMMAS,
    DEFAULT_INTERVAL,
    DEFAULT_WINDOW,
    MIN_WINDOW,
    ConformalParams,
)
from adaptcast.streams.formats import NAMED_FIELDS, OWN_TIME_UNIT
from adaptcast.streams.grid import Fill, GridRules, parse_period
from adaptcast.streams.resample import Resample

ENV_PREFIX = "ADAPTCAST__"
# never printed: masked in `config show` and in error messages
SECRET_KEYS = ("sasl_password", "schema_registry_auth")


class ConfigError(ValueError):
    """The configuration is invalid; the message names the key (or file) and the reason."""


def _one_of(value: str, choices: list[str], what: str) -> str:
    if value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {', '.join(choices)}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class KafkaConfig(_Section):
    """Where the live service reads and writes; ``bootstrap_servers`` unset means the embedded default."""

    bootstrap_servers: str | None = Field(
        default=None, description="host:port[,host:port]; env KAFKA_BOOTSTRAP_SERVERS also works"
    )
    input_topic: str = "adaptcast.input"
    output_topic: str = "adaptcast.predictions"
    dead_letter_topic: str = "adaptcast.dead-letters"
    group: str = "adaptcast"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    schema_registry_url: str | None = Field(
        default=None,
        description="a Confluent-compatible Schema Registry (Confluent, Karapace, Redpanda, Apicurio), "
        "e.g. http://schema-registry:8081: Avro and Protobuf records in its framing are read with "
        "their writer's schema; None: only JSON is read",
    )
    schema_registry_auth: str | None = Field(
        default=None, description="user:password for the registry's HTTP basic auth (an API key and secret)"
    )
    isolation_level: Literal["read_committed", "read_uncommitted"] = Field(
        default="read_committed",
        description="read only records of committed transactions (what producers writing in "
        "transactions, e.g. exactly-once Flink or Kafka Streams, need), or every record written",
    )
    start_at: Literal["earliest", "latest"] = Field(
        default="earliest",
        description="where the group starts on a partition it has no committed offset for: earliest "
        "forecasts every record the topic still holds; latest forecasts from the end, reading the "
        "last state.warm_records records before it only to fill the windows (a new group on a topic "
        "with days of history serves live records at once instead of forecasting the past first)",
    )
    poll_max_records: int = Field(default=500, ge=1)
    poll_timeout_ms: int = Field(default=200, ge=1)
    session_timeout_s: float = Field(
        default=45.0,
        ge=6,
        le=1800,
        description="how long the group waits for a worker that went silent (killed, not stopped) "
        "before its partitions move; a restarted worker waits that long for them too",
    )
    delivery_timeout_s: float = Field(
        default=120.0,
        ge=5,
        le=86_400,
        description="how long a forecast or dead letter the broker has not acknowledged (an outage) is "
        "retried before the worker gives up, exits 1 and leaves its batch uncommitted for the next start",
    )
    startup_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="exit with code 2 when no broker answers at start within this long "
        "(unset: keep retrying)",
    )


class ModelConfig(_Section):
    """Which forecaster serves, and its shape; ``params`` are the kind's own hyper-parameters."""

    kind: str = "arnet"
    lookback: int = Field(default=48, ge=1)
    horizon: int = Field(default=12, ge=1)
    target: str | list[str] = Field(default="y", description="value(s) to forecast; a list for several")
    features: list[str] = Field(default_factory=list)
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int = Field(default=0, description="seeds the model's initial weights and the error memory")
    checkpoint: str | None = Field(
        default=None, description="serve this saved model directory when the state dir holds none"
    )

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        from adaptcast.forecast import FORECASTERS

        return _one_of(v, sorted(FORECASTERS), "model kind")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and not v:
            raise ValueError("name at least one target")
        return v

    @property
    def targets(self) -> list[str]:
        """The forecast values, in order."""
        return [self.target] if isinstance(self.target, str) else list(self.target)

    @property
    def channels(self) -> list[str]:
        """What the model reads from each record: the targets first, then the other features."""
        return [*self.targets, *[f for f in self.features if f not in self.targets]]


class AdaptationConfig(_Section):
    """When to retrain, on how much history, and the error memory (spellings as in ``adaptcast backtest``)."""

    policy: str = "drift"
    window: str = "full"
    memory: bool = True
    memory_params: dict[str, Any] = Field(
        default_factory=dict, description="error-memory settings (see adaptcast.drift.memory.ErrorMemory)"
    )
    memory_gate: bool = Field(
        default=True,
        description="serve a series the memory's correction, half of it or none, whichever has been "
        "erring least there (all three scored on every outcome); false: always serve all of it",
    )
    min_train_rows: int | None = Field(
        default=None,
        ge=1,
        description="rows of a series buffered before the first model is trained "
        "(unset: 2 x (lookback + horizon), capped by history)",
    )
    history: int = Field(default=10_000, ge=2, description="rows kept per series: the most a retrain can use")
    refit: bool = Field(
        default=True,
        description="refit a validated candidate on every window, the validation slice included, "
        "so the served model has learnt from the newest data",
    )
    validate_routine: bool = Field(
        default=False,
        description="also gate routine refits (periodic, growth) with a fit held back from the newest "
        "windows, as after a change; false (default): a routine refit of a kind whose fits cost real "
        "compute is one fit on every window with the serving recipe's validated epochs or rounds, "
        "swapped in unless broken (half the work)",
    )
    defer_rows: int | None = Field(
        default=None,
        ge=0,
        description="steps a drift refit waits for post-change data, then refits as it doubles "
        "(unset: one model span + 16; 0: refit at the alarm)",
    )
    early_refit_ratio: float | Literal["auto"] | None = Field(
        default="auto",
        description="after an alarm, bring the first post-change refit forward (and double later ones "
        "from it) if the served forecasts' lead-1 error over the last horizon steps stays above this "
        "multiple of its level before the alarm, or their error over every lead stays above this "
        "multiple of persistence's (the value at issue repeated): nothing, not even the error memory, "
        "is bridging the wait (e.g. a seasonal shape appeared, a model's far leads broke); auto: 3 "
        "where fits are closed form (AR-Net), off for the other kinds; null: off",
    )
    refit_mode: Literal["cold", "warm", "auto", "closed_form"] = Field(
        default="closed_form",
        description="how the loop makes its fits (the first model and every retrain; `adaptcast train` "
        "trains by the model's own recipe): closed_form (default: a model with an exact one-pass solution, "
        "the linear AR-Net, is solved by least squares shrunk to the serving model; other kinds are "
        "fitted cold), cold (a fresh model trained from scratch), warm (continue the serving model with "
        "fewer epochs / more boosting rounds), auto (warm for periodic and growth refits, cold after "
        "a change)",
    )
    growth: float | Literal["auto"] | None = Field(
        default="auto",
        description="drift policies also retrain once the rows that arrived since the serving model was "
        "trained reach (growth - 1) times the rows it was trained on, i.e. the history has grown this "
        "many times (not while a post-change refit waits); auto: 1.1 where fits are closed form (AR-Net, "
        "next to free) or the model cannot extrapolate (XGBoost: a tree forecasts values it was trained "
        "on, so it needs the newest), 2 for the neural nets, whose fits cost real compute; null: off",
    )

    @field_validator("growth", "early_refit_ratio")
    @classmethod
    def _above_one(cls, v: float | str | None, info: ValidationInfo) -> float | str | None:
        if isinstance(v, int | float) and not v > 1:
            raise ValueError(f"{info.field_name} must be > 1, auto or null, got {v}")
        return v

    @field_validator("memory_params")
    @classmethod
    def _memory_params(cls, v: dict[str, Any]) -> dict[str, Any]:
        """Names and values ErrorMemory takes (the loop sets its shape), checked here rather than at
        the first fit, where a bad one failed every fit and the run served nothing."""
        import inspect

        from adaptcast.drift.memory import ErrorMemory

        known = [
            p for p in inspect.signature(ErrorMemory).parameters if p not in ("dim", "horizon", "n_targets")
        ]
        for key, value in v.items():
            if key not in known:
                near = get_close_matches(key, known, n=1)
                hint = f"did you mean {near[0]!r}? " if near else ""
                raise ValueError(f"unknown key {key!r}; {hint}known: {', '.join(known)}")
            if isinstance(value, bool) or not (
                isinstance(value, int | float) or (key == "clip" and value is None)
            ):
                raise ValueError(f"{key} must be a number, got {value!r}")
        ErrorMemory(dim=1, horizon=1, **v)  # its own range checks, each naming the parameter
        return v

    @field_validator("policy")
    @classmethod
    def _policy(cls, v: str) -> str:
        from adaptcast.drift.policy import RetrainPolicy

        RetrainPolicy.parse(v)
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        from adaptcast.drift.policy import WindowRule

        WindowRule.parse(v)
        return v


class IntervalsConfig(_Section):
    """Prediction intervals around the corrected forecasts, calibrated online (adaptcast.drift.conformal)."""

    method: Literal["dtaci", "aci", "rolling", "off"] = Field(
        default="dtaci",
        description="dtaci: adaptive conformal inference over several step sizes, weighted online; "
        "aci: one step size (gamma); rolling: split-conformal quantile of the recent residuals alone; "
        "off: no intervals",
    )
    levels: list[float] = Field(default_factory=lambda: [0.8, 0.95], description="nominal coverages")
    gamma: float = Field(
        default=DEFAULT_GAMMA,
        gt=0,
        lt=1,
        description="aci step size on the issued intervals' misses (under dtaci: the outer correction)",
    )
    gammas: list[float] = Field(
        default_factory=lambda: list(DEFAULT_GAMMAS), min_length=1, description="dtaci step sizes"
    )
    interval: int = Field(
        default=DEFAULT_INTERVAL, ge=1, description="dtaci local interval: outcomes over which it re-weighs"
    )
    window: int = Field(
        default=DEFAULT_WINDOW,
        ge=MIN_WINDOW,
        description="absolute residuals kept per series, lead and target",
    )

    @field_validator("levels")
    @classmethod
    def _levels(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < lv < 1 for lv in v) or len(set(v)) < len(v):
            raise ValueError("give one or more distinct levels strictly between 0 and 1, e.g. [0.8, 0.95]")
        return sorted(v)

    @field_validator("gammas")
    @classmethod
    def _gammas(cls, v: list[float]) -> list[float]:
        if any(not 0 < g < 1 for g in v):
            raise ValueError("every step size must lie strictly between 0 and 1, e.g. [0.001, 0.01, 0.1]")
        return v

    def params(self) -> ConformalParams | None:
        """What the calibrator is built with (None: intervals off)."""
        if self.method == "off":
            return None
        gammas = tuple(self.gammas) if self.method == "dtaci" else ()
        gamma = 0.0 if self.method == "rolling" else self.gamma
        return ConformalParams(tuple(self.levels), gammas, gamma, self.window, self.interval)


class ScenarioConfig(_Section):
    """The embedded feed ``adaptcast run`` uses when no broker is configured."""

    name: str = "level_shift"
    series: int = Field(default=4, ge=1)
    steps: int = Field(default=24 * 7 * 4, ge=2)
    seed: int = 0

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        from adaptcast.streams.scenarios import SCENARIOS

        return _one_of(v, list(SCENARIOS), "scenario")


class BacktestConfig(_Section):
    """What ``adaptcast backtest`` replays; the model and its adaptation come from the other sections."""

    data: str | None = Field(
        default=None,
        description="CSV, Parquet, Feather, JSON or JSON-lines file to replay (unset: the scenario "
        "section's feed)",
    )
    series_col: str | None = Field(
        default=None,
        description="column holding the series id (long layout); several comma-separated (host,_field) "
        "make a series of each combination, named a/cpu",
    )
    series_cols: list[str] = Field(
        default_factory=list,
        description='wide layout with one series per column: these columns (["*"]: every numeric one) '
        "are series named after them, their values the model's one target",
    )
    series_rows: bool = Field(
        default=False,
        description="a series per row (M4's layout): its id the series_col or first text column, its "
        "values the numeric columns in order, a grid.frequency step apart from 1970-01-01",
    )
    time_col: str | None = Field(
        default=None,
        description="time column (unset: one named date, ts, timestamp, time, datetime or ds in any case, "
        "else the one holding dates)",
    )
    limit: int | None = Field(default=None, ge=2, description="replay only the first N time steps")
    compare: list[str] = Field(
        default_factory=list,
        description="further configurations, each KEY=VALUE[,KEY=VALUE] overrides of this one",
    )
    timings: bool = Field(default=True, description="false: leave measured seconds out of summary.json")
    pushgateway: str | None = Field(
        default=None, description="push each configuration's final numbers to this Pushgateway URL"
    )


class GridConfig(_Section):
    """Each series' time grid: its period, how far a record may sit off it, and what fills a gap."""

    frequency: str | None = Field(
        default=None,
        description="period of every series, e.g. 1h, 15min, 30s, 1d, calendar months 1mo, 3mo, 1y, a "
        "sensor's rate 64Hz (15.625 ms), or a "
        "weekly schedule: 1d Mon-Fri (1bd), 1h Mon-Fri 09:00-18:00, 1h Sun-Thu 22:00-22:00 (hours in "
        "UTC), 1h Mon-Fri 09:00-17:00 Europe/Berlin (hours on that zone's clock, daylight saving "
        "included) "
        "(unset: each series' most common interval over its first infer_records records; calendar "
        "months when those intervals vary as months do; business days when a daily series skips the "
        "same weekdays for three weeks; hours of business when three weeks of restarts at each closure "
        "show them; a whole number of hertz when the intervals are two neighbouring milliseconds)",
    )
    series_frequency: dict[str, str] = Field(
        default_factory=dict, description="periods of single series, overriding frequency (series: period)"
    )
    infer_records: int = Field(
        default=24,
        ge=2,
        description="records over which an undeclared period is inferred (provisional until then)",
    )
    tolerance: float = Field(
        default=0.1,
        gt=0,
        lt=0.5,
        description="a record within this fraction of the period of a grid point is moved onto it; "
        "one further off is dead-lettered as off_grid",
    )
    fill: Literal["linear", "last"] = Field(
        default="linear",
        description="how missing grid points are filled for the model's input: interpolated between "
        "the values either side of the gap, or the last value repeated",
    )
    max_fill: int | None = Field(
        default=None,
        ge=0,
        description="gaps of up to this many missing points are filled; a longer one restarts the "
        "series' window (unset: a quarter of model.lookback)",
    )
    forget_after: int | None = Field(
        default=None,
        ge=1,
        description="a series silent for more than this many of its periods, counted against the newest "
        "record of its partition, is forgotten (window, grid, pending forecasts, corrections): on a "
        "feed whose series come and go, state would otherwise grow for ever (unset: 4 × (lookback + "
        "horizon), the history a series keeps)",
    )
    change_records: int = Field(
        default=6,
        ge=3,
        description="records in a row, the first off the grid, whose intervals agree that move a series "
        "onto a new grid of that interval (at least 3: a lone stray record makes two agree)",
    )

    resample: Literal["off", "last", "mean"] = Field(
        default="off",
        description="for irregular feeds (reports on change, events): each period's records of a series "
        "become one record at the period's start, their last values or their mean; needs a declared "
        "grid.frequency: a fixed period, calendar months or a weekly schedule, whose closed hours' "
        "records are dead-lettered (off: every record is placed as it is)",
    )

    @field_validator("frequency", "series_frequency")
    @classmethod
    def _periods(cls, v: str | dict[str, str] | None) -> str | dict[str, str] | None:
        for text in v.values() if isinstance(v, dict) else [v] if v is not None else []:
            parse_period(text)
        return v

    @model_validator(mode="after")
    def _rules_hold(self) -> GridConfig:
        # what GridRules refuses (resampling without a declared period, or to a rate), as a config error
        self.rules(lookback=1)
        return self

    def rules(self, lookback: int) -> GridRules:
        """The typed rules the loop follows; ``max_fill`` unset is a quarter of the model's lookback."""
        return GridRules(
            tolerance=self.tolerance,
            max_fill=lookback // 4 if self.max_fill is None else self.max_fill,
            fill=Fill(self.fill),
            infer_records=self.infer_records,
            change_records=self.change_records,
            period_ms=None if self.frequency is None else parse_period(self.frequency),
            forget_after=self.forget_after,
            series_period_ms={s: parse_period(p) for s, p in self.series_frequency.items()},
            resample=Resample(self.resample),
        )


class ServingConfig(_Section):
    """Micro-batching and record policy of the serving loop."""

    max_batch: int = Field(default=256, ge=1, description="most windows per predict call")
    max_seconds: float | None = Field(
        default=None, gt=0, description="stop after this long (None: run until signalled)"
    )
    strict_series: list[str] | None = Field(
        default=None, description="if set, records of other series go to dead letters"
    )
    max_future_s: float = Field(
        default=86_400, gt=0, description="records stamped further ahead than this are rejected"
    )
    record_format: Literal[
        "adaptcast", "telegraf", "influx", "prometheus", "flat", "debezium", "cloudevents", "otlp"
    ] = Field(
        default="adaptcast",
        description="shape of the input records: adaptcast's own (series, ts, values), Telegraf's JSON "
        "serializer (name, tags, fields, timestamp), InfluxDB line protocol (influx: Telegraf's default "
        "data format, times in ns unless ts_unit is set), prometheus-kafka-adapter's JSON (name, labels, "
        "value, timestamp), flat (series, ts, and every other numeric field a value), debezium (a "
        "table's change events, the row after read as flat), cloudevents (structured JSON, data read "
        "as flat) or otlp (the OpenTelemetry Collector's Kafka exporter, otlp_proto or otlp_json: every "
        "data point a reading of value); see docs/architecture.md",
    )
    otlp_quantiles: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default=[],
        description="otlp records: the quantiles of each histogram and summary to forecast as series of "
        "their own, name{…,quantile=\"0.99\"} (a summary's own, a histogram's interpolated in its "
        "buckets as Prometheus' histogram_quantile does), e.g. [0.5, 0.99]; empty: _count and _sum only",
    )
    series_field: str | None = Field(
        default=None,
        min_length=1,
        description="flat, debezium and cloudevents records: the field naming the series, e.g. sensor_id, "
        "or several comma-separated, e.g. host,metric (a series of each combination, named a/cpu) "
        "(None: series)",
    )
    time_field: str | None = Field(
        default=None,
        min_length=1,
        description="flat, debezium and cloudevents records: the field holding the time, e.g. recorded_at "
        "(None: the first of ts, timestamp, time)",
    )
    series_from_key: bool = Field(
        default=False,
        description="a record without series takes its Kafka message key (producers that send the "
        "series id only as the key); off, such a record is dead-lettered as missing_field",
    )
    ts_from_message: bool = Field(
        default=False,
        description="a record without ts takes its Kafka message timestamp (producers that leave the "
        "time to Kafka); off, such a record is dead-lettered as missing_field",
    )
    ts_unit: Literal["ms", "s", "us", "ns"] = Field(
        default="ms",
        description="unit of a numeric ts in input records: epoch milliseconds, seconds, microseconds or "
        "nanoseconds (ISO-8601 text is read as it is; otlp records are always nanoseconds)",
    )
    threads: int = Field(
        default=1,
        ge=1,
        description="torch intra-op threads of the live worker (1 is fastest for small models)",
    )
    train_in: Literal["process", "thread"] = Field(
        default="process",
        description="where the live worker's retrains run: a child process at lower priority, so a fit "
        "takes neither the serving thread's GIL nor its core, or a thread of the worker",
    )

    @field_validator("otlp_quantiles")
    @classmethod
    def _each_quantile_once(cls, quantiles: list[float]) -> list[float]:
        """Ascending, each once: a quantile listed twice would give its series every reading twice."""
        return sorted(set(quantiles))

    @model_validator(mode="before")
    @classmethod
    def _line_protocol_counts_nanoseconds(cls, data: Any) -> Any:
        """Line protocol's times are nanoseconds unless its writer says otherwise: the default
        ``ts_unit`` of ``influx`` records (a set one is kept)."""
        if isinstance(data, dict) and data.get("record_format") == "influx" and "ts_unit" not in data:
            return {**data, "ts_unit": "ns"}
        return data

    @property
    def record_ts_unit(self) -> str:
        """The unit a record's numeric time is read in: ``ts_unit``, unless the record format converts
        its time itself (OTLP's nanoseconds)."""
        return OWN_TIME_UNIT.get(self.record_format, self.ts_unit)

    @model_validator(mode="after")
    def _fields_need_a_shape_with_fields(self) -> ServingConfig:
        named = [k for k in ("series_field", "time_field") if getattr(self, k) is not None]
        if named and self.record_format not in NAMED_FIELDS:
            raise ValueError(
                f"{' and '.join(named)} {'name fields' if len(named) > 1 else 'names a field'} of "
                f"{', '.join(NAMED_FIELDS)} records; set record_format to one of them (it is "
                f"{self.record_format})"
            )
        return self


class StateConfig(_Section):
    """Where the live service keeps model checkpoints and state snapshots (a PVC in Kubernetes)."""

    dir: str = "state"
    snapshot_interval_s: float = Field(default=10.0, gt=0)
    warm_records: int = Field(
        default=100_000,
        ge=0,
        description="without a snapshot, re-read this many records per partition to warm windows",
    )
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    model_poll_s: float = Field(
        default=10.0, gt=0, description="how often a worker looks for a newly published model in the store"
    )
    keep_versions: int | None = Field(
        default=10,
        ge=1,
        description="model versions kept in the store after each save; older ones are deleted, never the "
        "one marked serving (null: keep all)",
    )


class MetricsConfig(_Section):
    """Where ``/metrics``, ``/healthz`` and ``/readyz`` are served, and the thresholds they report."""

    enabled: bool = True
    host: str = Field(
        default="127.0.0.1", description="bind address (0.0.0.0 to be scraped from other hosts or pods)"
    )
    port: int = Field(default=9108, ge=0, le=65535)
    stale_after_s: float = Field(
        default=30.0, gt=0, description="/healthz answers 503 when the loop has not beaten for this long"
    )
    max_model_age_s: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="adaptcast_model_max_age_seconds: the AdaptcastModelTooOld alert fires above it",
    )


class Config(_Section):
    """The effective configuration of one adaptcast process."""

    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    adaptation: AdaptationConfig = Field(default_factory=AdaptationConfig)
    intervals: IntervalsConfig = Field(default_factory=IntervalsConfig)
    scenario: ScenarioConfig = Field(default_factory=ScenarioConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    grid: GridConfig = Field(default_factory=GridConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    state: StateConfig = Field(default_factory=StateConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)


def env_overrides(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``ADAPTCAST__MODEL__KIND=arnet`` → ``{"model": {"kind": "arnet"}}``; values parsed as YAML scalars."""
    out: dict[str, Any] = {}
    for key, raw in (os.environ if environ is None else environ).items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [p.lower() for p in key[len(ENV_PREFIX) :].split("__") if p]
        if not path:
            continue
        value = parse_scalar(raw)
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(
                    f"environment variable {key}: {'.'.join(path)} conflicts with another override"
                )
        node[path[-1]] = value
    return out


class _Loader(yaml.SafeLoader):
    """YAML as users write numbers: ``1e-3`` and ``1e9`` are floats (YAML 1.2), not the strings
    YAML 1.1 makes of an exponent without a dot ("ridge must be a share > 0, got '1e-3'")."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def read_yaml(text: str) -> Any:
    """YAML text (a config file, a variable, a ``--compare`` value) read with :class:`_Loader`."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader with one more float form


def parse_scalar(raw: str) -> Any:
    """Text (environment, ``--compare``) read as a YAML scalar: ``on`` → True, ``24`` → 24, ``1e-3`` →
    0.001."""
    if raw == "":
        return None
    try:
        return read_yaml(raw)
    except yaml.YAMLError:
        return raw


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins, nested dicts are merged key by key."""
    merged = dict(base)
    for k, v in override.items():
        merged[k] = deep_merge(merged[k], v) if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
    return merged


def _keys_at(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the configuration section at ``loc`` knows (none where ``loc`` is not a section)."""
    section: Any = Config
    for part in loc:
        field = section.model_fields.get(part) if isinstance(part, str) else None
        section = None if field is None else field.annotation
        if not (isinstance(section, type) and issubclass(section, BaseModel)):
            return []
    return list(section.model_fields)


def _describe(exc: ValidationError, source: str) -> str:
    """One line: the source, then each bad key with its reason and (except secrets) the value given."""
    problems = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            close = get_close_matches(str(err["loc"][-1]), _keys_at(err["loc"][:-1]), n=1, cutoff=0.7)
            problems.append(f"{key}: unknown key" + (f" (did you mean {close[0]}?)" if close else ""))
            continue
        given = "***" if key.rsplit(".", 1)[-1] in SECRET_KEYS else repr(err.get("input"))[:80]
        problems.append(f"{key}: {err['msg']} (got {given})")
    return f"invalid configuration ({source}): " + "; ".join(problems)


def load_config(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    """Defaults ← YAML file ← environment ← ``overrides`` (CLI flags); ConfigError names the bad key."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        try:
            loaded = read_yaml(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} cannot be read: {exc}") from None
        except yaml.YAMLError as exc:
            where = getattr(exc, "problem_mark", None)
            at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
            what = getattr(exc, "problem", None) or type(exc).__name__
            raise ConfigError(f"config file {p} is not valid YAML{at}: {what}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping of sections, got {type(loaded).__name__}")
        data, source = loaded, str(p)
    env = env_overrides(environ)
    if env:
        data = deep_merge(data, env)
        source += " + ADAPTCAST__* environment"
    if overrides:
        data = deep_merge(data, overrides)
        source += " + command-line flags"
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None


def to_yaml(cfg: Config) -> str:
    """The effective config as YAML, secrets masked."""
    data = cfg.model_dump(mode="json")
    for key in SECRET_KEYS:
        if data["kafka"].get(key):
            data["kafka"][key] = "***"
    return yaml.safe_dump(data, sort_keys=False)
