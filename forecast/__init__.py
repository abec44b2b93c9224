"""Forecasting models behind one protocol, their training, data utilities and checkpoints."""

from adaptcast.forecast import models  # noqa: F401  (registers every model kind)
from adaptcast.forecast.base import (
    FORECASTERS,
    BaseForecaster,
    FitReport,
    InputError,
    create_forecaster,
    load_forecaster,
)

Forecaster = BaseForecaster

__all__ = [
    "FORECASTERS",
    "BaseForecaster",
    "FitReport",
    "Forecaster",
    "InputError",
    "create_forecaster",
    "load_forecaster",
]
