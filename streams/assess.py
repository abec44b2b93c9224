"""What installing a candidate needs, computed where the candidate was trained.

Judging a candidate and starting its error memory take predictions over every validation window;
on a long-running worker that is seconds of CPU per retrain (50 series × 10,000 rows: ~1.2 s).
:func:`assess` does that work beside the fit (on the trainer's thread or in its child process)
and returns an :class:`Assessment` of errors, residuals and a seeded memory, so the serving
thread only compares numbers and swaps. The rules that judge stay in :mod:`.adaptation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from adaptcast.drift.memory import ErrorMemory
from adaptcast.forecast.base import BaseForecaster

if TYPE_CHECKING:
    from adaptcast.streams.retrain import TrainingSet

# under window_norm "standard" the memory stores residuals in window deviations, which explode where a
# window barely moves (a flat night before dawn, a still sensor before a jump); past 3 deviations a
# residual is a surprise, not a bias the memory should serve to every window keyed like it
WINDOW_UNITS_CLIP = 3.0
FALLBACK_WINDOWS = 256  # without a validation slice, the newest training windows stand in for it
PROBE_WINDOWS = 1024  # training windows a new memory's key standardisation is estimated from


def validation_error(
    model: BaseForecaster,
    X: np.ndarray,
    Y: np.ndarray,
    pred: np.ndarray | None = None,
    units: BaseForecaster | None = None,
    every_lead: bool = False,
) -> float:
    """MAE in standardised target units: of lead 1 (the performance detector's reference scale) or,
    with ``every_lead``, of every lead (what forecasts are scored on, so what two models contest);
    ``pred``: ``model``'s forecasts of ``X``, when the caller has them; ``units``: the model whose
    scaler sets the units (default ``model``), so that two models' errors compare in one unit.

    Under ``window_norm: standard`` (series of unlike scales) each window's error is divided by its
    window's scale first, as the loop divides the live errors the detector reads: in pooled units
    the reference was the largest series' error (407 against live errors of 0.58 for series at 1
    and 1,000), and the detector could never fire; and the series weigh alike in a contest."""
    scale = units or model
    assert scale.scaler is not None
    pred = model.predict(X) if pred is None else pred
    std = scale.scaler.std[: model.n_targets]
    leads = slice(None) if every_lead else slice(0, 1)
    err = np.abs(pred[:, leads, :] - Y[:, leads, :]) / std
    if scale.window_norm == "standard":
        err = err / scale.output_scale(X)[:, None, :]
    return float(err.mean())


def fresh_memory(
    model: BaseForecaster, params: dict[str, Any], train_X: np.ndarray | None = None
) -> ErrorMemory:
    """An empty memory keyed on ``model``'s embeddings, its key scale estimated from ``train_X``."""
    probe = None
    if train_X is not None and len(train_X):
        probe = train_X[:: max(1, len(train_X) // PROBE_WINDOWS)]
    first = probe[:1] if probe is not None else np.zeros((1, model.lookback, model.n_features), np.float32)
    dim = model.embed(first).shape[1]
    if model.window_norm == "standard":  # residuals in window deviations: a near-flat window's are huge
        params = {"clip": WINDOW_UNITS_CLIP, **params}
    memory = ErrorMemory(dim=dim, horizon=model.horizon, n_targets=model.n_targets, **params)
    if probe is not None and len(probe) >= 2:
        z = model.embed(probe)
        memory.set_standardizer(z.mean(axis=0), np.maximum(z.std(axis=0), 1e-6))
    return memory


@dataclass
class Judge:
    """What a candidate is compared with: ``model`` on the validation windows its data did not reach.

    ``ended`` is the step its training data ended at (None: compare on every window). A gated job
    compares its gated fit with the serving recipe's; an ungated one its model with the serving one.
    ``serving``: the model that serves, when ``model`` is not it (the recipe's gated fit); a
    candidate then loses only to both, so a served refit that went wrong (one fitted across an
    outage) is replaced even where the fit that validated its recipe was sound.
    """

    model: BaseForecaster
    ended: int | None = None
    serving: BaseForecaster | None = None


@dataclass
class Assessment:
    """A finished fit's validation and start-up state, in the serving process's terms.

    ``gate_error``: the gated fit's lead-1 error on every validation window (None when ungated).
    ``contest``: (candidate, judge) errors on the windows compared (None: nothing to compare).
    ``residuals``: the gated fit's validation residuals, for the intervals; ``residual_owner``: the
    history (its place in the job's list) each is of, when known.
    ``reference``: the training inputs' last rows, standardised by the candidate (the feature
    detector's reference). ``held``: rows between the gated fit's data and the newest row.
    ``cleaned``: glitches replaced in the training histories.
    """

    rows: int
    samples: int
    windows: int
    held: int
    reference: np.ndarray
    gate_error: float | None = None
    contest: tuple[float, float] | None = None
    residuals: np.ndarray | None = None
    residual_owner: np.ndarray | None = None
    memory: ErrorMemory | None = None
    cleaned: int = 0

    def state_dict(self) -> dict[str, Any]:
        """Pickle-free (see :func:`adaptcast.drift.serialize.save_state`)."""
        return {
            "rows": self.rows,
            "samples": self.samples,
            "windows": self.windows,
            "held": self.held,
            "reference": self.reference,
            "gate_error": self.gate_error,
            "contest": None if self.contest is None else list(self.contest),
            "residuals": self.residuals,
            "residual_owner": self.residual_owner,
            "memory": None if self.memory is None else self.memory.state_dict(),
            "cleaned": self.cleaned,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Assessment:
        contest, memory = state["contest"], state["memory"]
        return cls(
            rows=int(state["rows"]),
            samples=int(state["samples"]),
            windows=int(state["windows"]),
            held=int(state["held"]),
            reference=np.asarray(state["reference"]),
            gate_error=state["gate_error"],
            contest=None if contest is None else (float(contest[0]), float(contest[1])),
            residuals=state["residuals"],
            residual_owner=state.get("residual_owner"),
            memory=None if memory is None else ErrorMemory.from_state(memory),
            cleaned=int(state["cleaned"]),
        )


def assess(
    data: TrainingSet,
    model: BaseForecaster,
    gate: BaseForecaster | None,
    *,
    step: int,
    judge: Judge | None,
    memory: dict[str, Any] | None,
) -> Assessment:
    """Validate ``gate`` (None: an ungated refit, judged by ``model``) against ``judge`` and start
    ``model``'s error memory (``memory``: its parameters; None: no memory), seeded from its
    errors on the newest windows, the ones just before it serves.

    The judge is compared on the validation windows whose targets arrived after its training
    data ended (``data.val_age``); an ungated candidate has seen them all, so the comparison
    there only catches a broken fit.
    """
    vx, vy = data.val if data.val is not None else (data.X[-FALLBACK_WINDOWS:], data.Y[-FALLBACK_WINDOWS:])
    assert model.scaler is not None
    out = Assessment(
        rows=data.rows,
        samples=data.samples,
        windows=len(data.full[0]),
        held=0 if data.val_age is None else int(data.val_age.max()) + model.horizon,
        reference=model.scaler.transform(data.X[:, -1, :]),  # the training inputs, standardised
        cleaned=data.cleaned,
    )
    judged = gate if gate is not None else model
    pred = judged.predict(vx)
    if gate is not None:
        out.gate_error = validation_error(gate, vx, vy, pred)
        out.residuals = vy - pred  # in the forecasts' units, as the calibrator keeps them
        out.residual_owner = data.val_owner if data.val is not None else None
    if judge is not None:
        unseen = np.ones(len(vx), dtype=bool)
        if gate is not None and judge.ended is not None and data.val_age is not None:
            unseen = data.val_age < step - judge.ended
        if unseen.any():
            x, y = vx[unseen], vy[unseen]
            bar = validation_error(judge.model, x, y, units=judged, every_lead=True)
            if judge.serving is not None:
                bar = max(bar, validation_error(judge.serving, x, y, units=judged, every_lead=True))
            out.contest = (validation_error(judged, x, y, pred[unseen], every_lead=True), bar)
    if memory is not None:
        out.memory = fresh_memory(model, memory, data.X)
        if data.val is not None and len(data.val[0]):
            yhat, keys = model.predict_embed(vx)
            out.memory.update(keys, (vy - yhat) / model.output_scale(vx)[:, None, :])  # the loop's units
    return out
