"""Helpers for the suites generated over a registry (detectors, policy specs): cases and state comparison."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pytest

from adaptcast.drift.base import DriftDetector


def check_cases(subjects: Iterable[str], checks: list[Callable[..., None]]) -> list[Any]:
    """One ``pytest.param(subject, check)`` per pair, its id ``<subject>-<check name without check_>``."""
    return [
        pytest.param(subject, check, id=f"{subject}-{check.__name__.removeprefix('check_')}")
        for subject in subjects
        for check in checks
    ]


def state_equal(a: Any, b: Any) -> bool:
    """Nested ``state_dict`` equality: arrays compared by value, NaN equal to NaN."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(state_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(state_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def learned_state(det: DriftDetector) -> dict[str, Any]:
    """``state_dict`` without the lifetime detection count, which ``reset`` and ``rebase`` keep."""
    return {k: v for k, v in det.state_dict().items() if k != "n_detections"}
