"""Publishing a model trained off the serving path: a new store version, marked serving if it validates.

The rule is the live loop's own: the candidate serves unless its error over every lead on the
held-out windows is more than ``VALIDATE_MARGIN`` worse than the serving model's on the same windows.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from adaptcast.forecast.base import BaseForecaster
from adaptcast.forecast.checkpoint import CheckpointStore
from adaptcast.streams.adaptation import VALIDATE_MARGIN
from adaptcast.streams.assess import validation_error


@dataclass(frozen=True)
class Published:
    """The version written, whether it was marked serving, and the errors that decided it."""

    version: str
    marked_serving: bool
    candidate_error: float
    compared_with: str | None
    serving_error: float | None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def publish(store: CheckpointStore, model: BaseForecaster, X: np.ndarray, Y: np.ndarray) -> Published:
    """Save ``model`` as a new version; mark it serving unless it is worse than the serving one on X, Y.

    The serving model is what a worker would load now (the marked version, else the newest). One
    whose shape does not fit ``X`` (the configuration changed) cannot be compared and gives way.
    """
    candidate_error = validation_error(model, X, Y, every_lead=True)
    try:
        serving = store.load()
    except FileNotFoundError:
        serving = None
    serving_error = None
    shape = ("lookback", "n_features", "n_targets")
    if serving is not None and all(getattr(serving, a) == getattr(model, a) for a in shape):
        serving_error = validation_error(serving, X, Y, units=model, every_lead=True)  # candidate's units
    parent = None if serving is None else serving.version
    version = store.save(model, parent=parent)
    better = serving_error is None or candidate_error <= serving_error * (1 + VALIDATE_MARGIN)
    if better:
        store.mark_serving(version, "trained")
    return Published(version, better, candidate_error, parent, serving_error)
