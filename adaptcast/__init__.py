"""adaptcast: drift-adaptive streaming time-series forecasting.

The public API is small; everything else lives in the subpackages ``adaptcast.forecast`` (models),
``adaptcast.drift`` (detectors, policies, error memory), ``adaptcast.streams`` (the loop and its
front ends) and ``adaptcast.deploy`` (the local Kafka broker). Names load on first use, so
``import adaptcast`` stays fast and does not import torch.

>>> import adaptcast
>>> cfg = adaptcast.load_config(overrides={"model": {"kind": "naive"}})
>>> cfg.model.kind
'naive'
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["backtest", "create_forecaster", "load_config", "load_forecaster"]

_PUBLIC = {
    "create_forecaster": ("adaptcast.forecast", "create_forecaster"),
    "load_forecaster": ("adaptcast.forecast", "load_forecaster"),
    "load_config": ("adaptcast.streams.config", "load_config"),
    "backtest": ("adaptcast.streams.backtest", "backtest"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'adaptcast' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
