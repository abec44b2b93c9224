"""Adaptation: policy decision → training set → trainer → validation → swap → error-memory reset.

The loop owns one :class:`Adaptation`. It holds the serving model and its error memory (which
the loop predicts and corrects with), starts training jobs when the policy says so, installs
finished candidates, and records what happened as typed events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from adaptcast.drift.conformal import ConformalParams, OnlineConformal
from adaptcast.drift.memory import ErrorMemory
from adaptcast.drift.policy import ROUTINE_REASONS, Decision, Reason, RetrainPolicy, StepInfo
from adaptcast.forecast.base import BaseForecaster
from adaptcast.forecast.windows import auto_norm
from adaptcast.streams.assess import Assessment, Judge, fresh_memory
from adaptcast.streams.events import (
    DriftAlarm,
    Event,
    LoopEvent,
    Retrained,
    RetrainFailed,
    RetrainRejected,
    RetrainSuperseded,
)
from adaptcast.streams.metrics import MODEL_SERVING, Metrics
from adaptcast.streams.retrain import Trainer, TrainJob, TrainOutcome, solves_closed_form, window_count

log = logging.getLogger("adaptcast.adaptation")

MIN_TRAIN_WINDOWS = 32  # a window rule never trains on fewer rows than this many windows per series need
MEMORY_DECAY = 0.99  # per clock step: the error memory forgets with a half-life of ~69 steps
VALIDATE_MARGIN = 0.05  # a candidate may be this much worse than the serving model and still replace it
# After a routine refit (periodic, growth: no change detected) the candidate is the serving recipe on
# more and newer data, so it loses only when it is clearly broken; a tight margin there rejected sound
# fits on noise (9 of 37 periodic XGBoost refits against Darts, MAE 2.50 against 2.24 without a gate).
BROKEN_MARGIN = 0.5
# A validated recipe (epochs, boosting rounds) is trusted for ungated routine refits on up to this
# many times the windows it was validated on; beyond, the next routine refit is gated again, so a
# recipe found on the first few hundred rows (early stopping after one round, say) is not kept for ever.
RECIPE_GROWTH = 2.0


class Adaptation:
    """Retrains, validates and swaps the serving model for the loop; owns that model and its error memory.

    ``template`` (fitted or not) is cloned for every candidate. A finished candidate replaces the
    serving model when its validation error is at most ``1 + validate_margin`` times the serving
    model's on the same recent windows, and only if no model of a later job serves already.
    ``memory`` holds :class:`ErrorMemory` parameters (None: no error memory). ``on_swap`` is
    called with a candidate about to serve (e.g. to checkpoint it) and may return its version.
    ``intervals`` configures the serving model's interval calibrator (None: no intervals), which
    every swap re-seeds from the candidate's validation residuals.
    With ``refit`` a validated candidate is refitted on every window before it serves, so
    validation never costs it the newest data. Unless ``validate_routine``, a routine refit
    (periodic, growth: no change detected) of a kind whose fits cost real compute is then one fit on
    every window with the serving recipe's validated hyper-parameters (on at most ``RECIPE_GROWTH``
    times the windows they were validated on), checked only for being broken (:meth:`_loses`): the
    gated fit it skips would only have rejected a broken candidate anyway, and it cost as much as the
    refit itself.
    """

    def __init__(
        self,
        template: BaseForecaster,
        *,
        policy: RetrainPolicy,
        trainer: Trainer,
        metrics: Metrics,
        memory: dict[str, Any] | None = None,
        intervals: ConformalParams | None = None,
        on_swap: Callable[[BaseForecaster], str | None] | None = None,
        validate_margin: float = VALIDATE_MARGIN,
        refit: bool = True,
        validate_routine: bool = False,
    ):
        self.template = template
        self._auto_norm = template.window_norm == "auto"  # decided from the data, fit after fit
        self.policy = policy
        self.trainer = trainer
        self.metrics = metrics
        self.memory_params = None if memory is None else {"step_decay": MEMORY_DECAY, **memory}
        self.on_swap = on_swap
        self.validate_margin = validate_margin
        self.refit = refit
        self.validate_routine = validate_routine
        self.model: BaseForecaster | None = template if template.is_fitted else None
        self.model_version = (template.version or "0") if self.model else "none"
        self.model_number = 0
        self.memory: ErrorMemory | None = None
        self.intervals = (
            None if intervals is None else OnlineConformal(template.horizon, template.n_targets, intervals)
        )
        self.events: list[LoopEvent] = []  # the loop adds its series' grid events here too
        self.jobs_submitted = 0  # a job's sequence number is its position in submission order
        # the serving model's gated fit (trained without its validation slice) and the step its data
        # ended at: what a candidate's gated fit is compared with, both out of sample
        self._rival: BaseForecaster | None = None
        self._rival_step: int | None = None
        # the hyper-parameters the serving recipe's last validated fit found best (epochs, rounds) and
        # the windows it was fitted on: what an ungated routine refit trains with, and on how much
        # data it may; None until a validated candidate serves
        self._recipe: dict[str, Any] | None = None
        self._recipe_windows = 0
        self._recipe_warm = False  # whether it was found continuing a model (rounds added) or fitting afresh
        self._superseded_upto = 0  # jobs with this sequence number or lower may no longer be installed
        self._last_failure: str | None = None  # the error of the last failed fit that was logged
        if self.model is not None:
            self._reset_memory()

    # ---- public ---------------------------------------------------------------------------------------
    def serve(self, model: BaseForecaster) -> None:
        """Serve an already trained model (e.g. from a checkpoint); jobs still running are superseded."""
        if not model.is_fitted:
            raise ValueError("serve() needs a fitted model")
        self.model = model
        self.model_version = model.version or "0"
        if self._auto_norm:  # retrains continue in the served model's units (auto looks again at each)
            self.template.window_norm = model.window_norm
        self._rival = self._rival_step = self._recipe = None
        self._superseded_upto = self.jobs_submitted
        self.metrics.set_condition(MODEL_SERVING)
        self._reset_memory()
        if self.intervals is not None:
            self.intervals.restart()

    def decide(self, info: StepInfo, ts_ms: int) -> Decision:
        """Ask the policy about this step (newest record time ``ts_ms``); record a drift alarm."""
        decision = self.policy.should_retrain(info)
        if decision.reason is Reason.DRIFT:
            self._record(DriftAlarm(ts_ms=ts_ms, step=info.step, decision=decision))
        return decision

    def start(
        self,
        decision: Decision,
        histories: Sequence[np.ndarray],
        step: int,
        ts_ms: int,
        series: Sequence[str] = (),
    ) -> TrainJob | None:
        """Submit a job training on the last ``decision.window`` rows of each history (oldest row first;
        ``series``: their names, in order, when known: the intervals then learn each one's scale).

        The window is widened to give at least ``MIN_TRAIN_WINDOWS`` windows per series. Nothing
        is started (None) when the trainer is busy or no history is long enough. With no model
        serving yet this waits for the first one rather than let records go unforecast.
        """
        if not decision.retrain or self.trainer.busy:
            return None
        lookback, horizon = self.template.lookback, self.template.horizon
        rows = max((len(h) for h in histories), default=0)
        span = max(decision.window or rows, lookback + horizon + MIN_TRAIN_WINDOWS - 1)
        windows = window_count(histories, span, lookback, horizon)
        if not windows:
            return None
        new_units = self._auto_norm and self._choose_norm([h[-span:] for h in histories])
        self.metrics.retrains.labels(decision.reason.value).inc()
        self.metrics.vh_rows.set(span)
        self.jobs_submitted += 1
        closed = solves_closed_form(self.policy.refit_mode, self.template)
        warm = None
        same_units = self.model is not None and self.model.window_norm == self.template.window_norm
        if same_units and self.policy.warm_start(decision):
            # a fit in other units starts cold: the serving model's weights are in its own (a model
            # hot-swapped from the store, trained on a whole file, may have settled auto otherwise)
            warm = self.model
        if warm is not None and not (
            closed or (warm.supports_warm and self.policy.refit_mode != "closed_form")
        ):
            warm = None  # a model without a closed form is fitted cold under closed_form
        if warm is not None and not self.template.continues(warm):
            warm = None  # the serving model is as large as a cold fit may grow: start afresh
        # the rounds or epochs a warm fit found (added to a model) say nothing of a cold fit's, nor back
        other_start = (warm is not None) != self._recipe_warm
        gated = (
            self.validate_routine
            or new_units  # a recipe found in the old units says nothing of the new
            or closed  # a closed-form gated fit costs next to nothing and gives out-of-sample residuals
            or not self.refit
            or self._recipe is None
            or decision.reason not in ROUTINE_REASONS
            or other_start
            or windows > RECIPE_GROWTH * self._recipe_windows
        )
        judge = None
        if self.model is not None and not gated:
            judge = Judge(self.model)  # an ungated refit is only checked for being broken
        elif self.model is not None and self.policy.validates(decision):
            rival = self._rival or self.model
            judge = Judge(rival, self._rival_step, None if rival is self.model else self.model)
        job = TrainJob(
            self.template,
            [h[-span:] for h in histories],
            span,
            decision,
            step,
            ts_ms,
            self.jobs_submitted,
            rows,
            self.refit,
            warm,
            closed,
            recipe=None if gated or self._recipe is None else dict(self._recipe),
            judge=judge,
            memory=self.memory_params,
            series=tuple(series),
        )
        self.trainer.submit(job)
        if self.model is None:
            self.trainer.wait()
        return job

    def _choose_norm(self, histories: Sequence[np.ndarray]) -> bool:
        """Decide ``window_norm: auto`` from the data a fit is about to train on (``histories``):
        each window standardised when the series' step sizes differ by more than ten times, else the
        model's ``level_norm`` (none, or delta for trees; ``forecast.windows.auto_norm``).

        Decided before the first fit and looked at again before every later one, because series
        alike at first can grow apart (prices that sat together for a decade, one then rising a
        hundredfold), and one model then fits the largest and serves the others badly. Once
        standardised, windows stay so: that serves series of like scales too. True when the units
        change for a fit after the first.
        """
        norm, spread = auto_norm(list(histories), self.template.n_targets, self.template.level_norm)
        before = self.template.window_norm
        if before == norm or before == "standard":
            return False
        self.template.window_norm = norm
        if before == "auto":
            log.info("window_norm auto: %s (the series' step sizes differ by %.3g×)", norm, spread)
            return False
        log.info(
            "window_norm auto: %s → %s (the series' step sizes now differ by %.3g×); the next fit "
            "starts afresh in the new units",
            before,
            norm,
            spread,
        )
        return True

    def collect(self, step: int) -> list[Event]:
        """Install the candidates the trainer has finished, in order; one event each."""
        return [self._install(outcome, step) for outcome in self.trainer.poll()]

    def state_dict(self) -> dict[str, Any]:
        """Policy (with its detector), error memory, calibrator, recipe and model counters; pickle-free.

        Job sequence numbers are not saved: they order this process's jobs, which a restart ends.
        """
        return {
            "policy": self.policy.state_dict(),
            "memory": None if self.memory is None else self.memory.state_dict(),
            "intervals": None if self.intervals is None else self.intervals.state_dict(),
            "model_version": self.model_version,
            "model_number": self.model_number,
            "recipe": None
            if self._recipe is None
            else {"hparams": self._recipe, "windows": self._recipe_windows, "warm": self._recipe_warm},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from :meth:`state_dict`; the memory, calibrator and recipe are kept only if they
        belong to the serving model (the memory only if built with the same parameters too)."""
        self.policy.load_state_dict(state["policy"])
        self.model_number = int(state["model_number"])
        if (
            state.get("memory") is not None
            and self.memory is not None
            and state["model_version"] == self.model_version
            # a memory built otherwise (an older release's, without the clip) starts fresh, not refused
            and dict(state["memory"]["params"]) == self.memory.params()
        ):
            self.memory.load_state_dict(state["memory"])
        if (
            state.get("intervals") is not None
            and self.intervals is not None
            and state["model_version"] == self.model_version
        ):
            self.intervals.load_state_dict(state["intervals"])
        if state.get("model_version") == self.model_version and state.get("recipe") is not None:
            self._recipe = {str(k): v for k, v in dict(state["recipe"]["hparams"]).items()}
            self._recipe_windows = int(state["recipe"]["windows"])
            self._recipe_warm = bool(state["recipe"].get("warm", False))  # older snapshots: cold fits

    # ---- installing a candidate -----------------------------------------------------------------------
    def _install(self, outcome: TrainOutcome, step: int) -> Event:
        """Drop a superseded or failed candidate, reject a worse (or, ungated, a broken) one, else swap it in.

        Validation judges the fit that never saw the validation slice (``outcome.gate``); what
        serves is the refit on every window when the job made one. An ungated routine refit has no
        such fit: its errors on the newest windows are in-sample, so it is only checked for being
        broken, and it leaves the serving recipe's gated fit as the next candidate's rival, the
        detector's out-of-sample reference and the interval calibrator's residuals as they were.
        The errors were measured where the job ran (:func:`~adaptcast.streams.assess.assess`).
        """
        job, report, cand, found = outcome.job, outcome.report, outcome.model, outcome.assessment
        common = {
            "ts_ms": job.ts_ms,
            "step": step,
            "decision": job.decision,
            "window": job.rows,
            "train_samples": 0 if found is None else found.samples,
            "samples_seen": outcome.samples_seen,
            "cleaned": 0 if found is None else found.cleaned,
        }
        if job.seq <= self._superseded_upto:
            return self._record(RetrainSuperseded(serving_version=self.model_version, **common))
        if cand is None or report is None or found is None:
            self.policy.notify_rejected(step, rows=job.history_rows)
            self._log_failure(job.decision.label, step, outcome.error)
            return self._record(RetrainFailed(error=outcome.error, **common))
        self.metrics.train_duration.observe(report.wall_seconds)
        gate = (outcome.gate or cand) if job.gated else None
        loss = self._loses(job, found)
        if loss is not None:
            self.policy.notify_rejected(step, rows=job.history_rows)
            return self._record(
                RetrainRejected(
                    candidate_error=loss[0],
                    serving_error=loss[1],
                    train_seconds=outcome.cpu_seconds,
                    **common,
                )
            )
        try:
            version = None if self.on_swap is None else self.on_swap(cand)
        except OSError as exc:  # e.g. a full disk: the candidate is not saved, so it does not serve either
            self.policy.notify_rejected(step, rows=job.history_rows)
            return self._record(RetrainFailed(error=f"checkpoint: {type(exc).__name__}: {exc}", **common))
        self._swap(cand, job, version, gate, found)
        if gate is not None:
            self._recipe, self._recipe_windows = gate.refit_hparams(report, found.windows), found.windows
            self._recipe_warm = job.warm_from is not None
            if found.residuals is not None:  # a gated fit's validation residuals
                self._reseed_intervals(found.residuals, job.owners(found.residual_owner))
        self.policy.notify_retrained(
            step, val_error=found.gate_error, reference_features=found.reference, rows=job.history_rows
        )
        return self._record(
            Retrained(
                model_version=self.model_version,
                train_seconds=outcome.cpu_seconds,
                epochs=report.epochs,
                val_error=found.gate_error,
                **common,
            )
        )

    def _loses(self, job: TrainJob, found: Assessment) -> tuple[float, float] | None:
        """``(candidate, judge)`` errors when the candidate loses its contest, else None.

        A gated fit is judged against the serving recipe's own gated fit on the validation windows
        whose targets arrived after that rival's data ended: out of sample for both, the same
        recipe on older against newer data (a served model refitted on every window has seen most
        of the slice, and against it the gated fit would lose on in-sample error; with no such
        window there is nothing fair to compare and the candidate serves). A model served as given
        (restored from a checkpoint) is its own rival, over the whole slice. An ungated refit has
        seen every window; it loses only when broken: a non-finite error, or one above
        ``1 + BROKEN_MARGIN`` times the serving model's. A routine gated refit gets that margin too,
        and so does a refit after a change whose gated fit's data ended before the change was
        detected: two fits that have never seen the new regime cannot tell whether the refit, which
        has, is better (it was rejected on their noise, and a stale model served on).
        """
        if found.contest is None:
            return None
        cand, other = found.contest
        if job.gated:
            change = job.decision.change_step
            blind = change is not None and job.step - found.held <= change
            lenient = job.decision.reason in ROUTINE_REASONS or blind
            margin = max(self.validate_margin, BROKEN_MARGIN) if lenient else self.validate_margin
            return found.contest if cand > other * (1 + margin) else None
        return found.contest if not np.isfinite(cand) or cand > other * (1 + BROKEN_MARGIN) else None

    def _swap(
        self,
        cand: BaseForecaster,
        job: TrainJob,
        version: str | None,
        gate: BaseForecaster | None,
        found: Assessment,
    ) -> None:
        """Make ``cand`` the serving model under ``version`` (``gate``: its validated fit, the next
        candidate's rival; None keeps the current rival) with the memory ``found`` seeded; update the
        gauges."""
        self.model_number += 1
        cand.version = version or str(self.model_number)
        cand.parent_version = None if self.model is None else self.model.version
        self.model = cand
        self.model_version = cand.version
        if gate is not None:  # the gated fit's data ended before the validation slice and the gap
            self._rival, self._rival_step = gate, job.step - found.held
        self._superseded_upto = job.seq
        self.memory = found.memory
        self.metrics.model_swapped(self.model_number, time.time())

    def _reset_memory(self) -> None:
        """A model served as given means new embeddings: start an empty memory keyed on them."""
        if self.memory_params is not None and self.model is not None:
            self.memory = fresh_memory(self.model, self.memory_params)

    def _reseed_intervals(self, residuals: np.ndarray, series: list[str] | None = None) -> None:
        """A new model's errors differ: calibrate on its validation residuals ``y − yhat`` (``series``:
        whose each is, when known).

        They are the fit that never saw the validation windows, so they are out-of-sample errors.
        Under ``window_norm: standard`` (series of unlike scales) the calibrator learns each series'
        scale from its own and keeps a pool of their shape (:meth:`OnlineConformal.reseed`); series
        of like scales share one pool of raw residuals, which also takes every live one, so that
        every series' bands widen as soon as errors grow after a change.
        """
        if self.intervals is None:
            return
        unlike = self.model is not None and self.model.window_norm == "standard"
        self.intervals.reseed(residuals, series if unlike else None)

    def _log_failure(self, label: str, step: int, error: str | None) -> None:
        """Warn of a failed fit with its error, once per distinct error (a broken recipe fails every
        retrain alike; the metric counts them all)."""
        level = logging.DEBUG if error == self._last_failure else logging.WARNING
        log.log(level, "a %s retrain at step %d failed, the serving model stays: %s", label, step, error)
        self._last_failure = error

    def _record(self, event: Event) -> Event:
        self.events.append(event)
        self.metrics.count_event(event)
        return event
