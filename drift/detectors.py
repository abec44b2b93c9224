"""Drift detectors behind one small API, and a registry to build them from names or saved state."""

from __future__ import annotations

from typing import Any

from .adwin import ADWIN
from .base import DriftDetector
from .feature import FeatureDrift
from .kswin import KSWIN
from .page_hinkley import PageHinkley
from .performance import PerformanceDrift

__all__ = [
    "ADWIN",
    "DETECTORS",
    "KSWIN",
    "DriftDetector",
    "FeatureDrift",
    "PageHinkley",
    "PerformanceDrift",
    "detector_from_state",
    "make_detector",
]

DETECTORS: dict[str, type[DriftDetector]] = {
    "performance": PerformanceDrift,
    "adwin": ADWIN,
    "page_hinkley": PageHinkley,
    "kswin": KSWIN,
    "feature": FeatureDrift,
}
_ALIASES = {
    "ph": "page_hinkley",
    "pagehinkley": "page_hinkley",
    "page-hinkley": "page_hinkley",
    "perf": "performance",
}


def canonical_detector_name(name: str) -> str:
    """Map a detector name or alias (case-insensitive) to its canonical name, or raise ValueError."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DETECTORS:
        valid = sorted(DETECTORS) + sorted(_ALIASES)
        raise ValueError(f"unknown drift detector {name!r}; valid: {', '.join(valid)}")
    return key


def make_detector(name: str, **params: Any) -> DriftDetector:
    """Build a detector from its name (``adwin``, ``ph``, ``kswin``, ``performance``, ``feature``)."""
    return DETECTORS[canonical_detector_name(name)](**params)


def detector_from_state(state: dict[str, Any]) -> DriftDetector:
    """Rebuild a detector (parameters and learned state) from its ``state_dict``."""
    det = make_detector(state["kind"], **state["params"])
    det.load_state_dict(state)
    return det
