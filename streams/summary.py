"""One run summary, printed alike by ``adaptcast run`` (embedded or Kafka) and ``adaptcast backtest``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# what a model that errs more than persistence (the last value repeated) can try; backtest and train say it
BEAT_PERSISTENCE = (
    "--model naive forecasts the last value; a shorter --lookback (model.lookback) or "
    "--param window_norm='\"last\"' (changes from the last value) brings a model nearer to it"
)


@dataclass(frozen=True)
class RunSummary:
    """What one configuration did over one feed: volumes, error, adaptation and the model left serving."""

    source: str
    series: int
    records: int
    forecasts: int
    scored_points: int
    mae: float | None
    drift_alarms: int
    retrains: int
    rejected: int
    model: str
    model_version: str
    seconds: float | None = None
    config: str | None = None

    @classmethod
    def from_loop(
        cls, loop_summary: dict[str, Any], source: str, *, rejected: int = 0, **extra: Any
    ) -> RunSummary:
        """Build from ``ForecastLoop.summary()`` plus what only the front end knows."""
        keys = ("series", "records", "forecasts", "scored_points", "mae", "drift_alarms", "retrains")
        return cls(
            source=source,
            rejected=rejected,
            model=loop_summary["model"],
            model_version=str(loop_summary["model_version"]),
            **{k: loop_summary[k] for k in keys},
            **extra,
        )

    def line(self, command: str = "adaptcast run") -> str:
        """One human-readable line; the counts keep their words so scripts can pick them out."""
        mae = "n/a" if self.mae is None else _figure(self.mae)
        what = f"{self.source} ({self.series} series)" + (f" [{self.config}]" if self.config else "")
        secs = "" if self.seconds is None else f", {self.seconds:.1f} s"
        return (
            f"{command}: {what}: {self.records} records, {self.forecasts} forecasts, "
            f"{self.scored_points} scored points, MAE {mae}, {self.drift_alarms} drift alarms, "
            f"{self.retrains} retrains, {self.rejected} records rejected, "
            f"model {self.model} v{self.model_version}{secs}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _figure(x: float) -> str:
    """Four decimals in the usual range; four significant digits for a feed in tiny or huge units
    (a series of 1e-9 showed MAE 0.0000)."""
    return f"{x:.4f}" if x == 0 or 1e-3 <= abs(x) < 1e6 else f"{x:.4g}"
