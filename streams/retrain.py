"""Retraining: build a training set from recent history, train a candidate inline or in the background.

Everything a retrain costs runs where its job runs (inline in a backtest, on the trainer's thread
or in its child process in the live worker): building the windows, the fits and the assessment
the install reads (:mod:`.assess`). The serving thread hands over the histories and gets numbers back.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import numpy as np

from adaptcast.drift.compute import ComputeLedger
from adaptcast.drift.policy import Decision, RetrainPolicy
from adaptcast.forecast.base import BaseForecaster, FitReport
from adaptcast.forecast.outliers import clean
from adaptcast.forecast.windows import segments, sliding_windows, split_train_val
from adaptcast.streams.assess import Assessment, Judge, assess

DEFER_WINDOWS = 16  # a post-change refit waits for one model span plus this many windows
# ``adaptation.growth: auto``: refit after every tenth more data where a fit is a one-pass least-squares
# solve (the defaults held within 1.02x of periodic:24 on 42 of 42 real-feed slices) or the model cannot
# extrapolate (a tree's forecasts are values it was trained on, so it needs the newest rows: on 104
# re-run XGBoost slices the same count within 1.02x, the worst 1.446 -> 1.221; docs/benchmarks.md,
# "A twenty-fifth held-out set, and growth 1.1 for trees"); at a doubling where fits cost real compute
# and the model extrapolates (a tenth made Informer's embedded run take 2 minutes instead of 1)
AUTO_GROWTH_OFTEN, AUTO_GROWTH = 1.1, 2.0
# early_refit_ratio "auto": on where fits are closed form (a least-squares refit learns from a
# horizon of high-error rows among all history); off for the other kinds, where it was measured to
# cost without gain (XGBoost on the eighth held-out set: battery 1.032 -> 1.111)
AUTO_EARLY_REFIT_CLOSED_FORM = 3.0


def make_policy(
    spec: str,
    window: str,
    lookback: int,
    horizon: int,
    history: int | None = None,
    *,
    defer: int | None = None,
    growth: float | None = None,
    min_growth: int | None = None,
    refit_mode: str = "cold",
    early_refit_ratio: float | None = None,
) -> RetrainPolicy:
    """A retrain policy whose Variance Horizon starts at four model spans (``4·(lookback+horizon)`` rows).

    Fewer rows than that leave a model data-starved, so a shorter window would measure starvation
    rather than how much history is still relevant; ``history`` caps the window from above.
    ``defer`` (None: one model span plus ``DEFER_WINDOWS``) is how long a drift refit waits for
    post-change data; 0 refits at the alarm. ``min_growth`` (None: the same span) is the fewest new
    rows a growth refit waits for, so that early on, when a tenth of the history is a handful of
    rows, a model whose fits cost real compute is not refitted every few steps; 0 for fits that
    cost next to nothing. ``refit_mode`` (cold, warm, auto) is how retrains start.
    ``early_refit_ratio`` (None: off) watches a horizon of served errors after each alarm
    (:class:`~adaptcast.drift.bridge.BridgeWatch`).
    """
    min_len = 4 * (lookback + horizon)
    vh = {"min_len": min_len, "max_len": max(history, min_len) if history else None}
    span = lookback + horizon + DEFER_WINDOWS
    return RetrainPolicy.parse(
        spec,
        window=window,
        vh_params=vh,
        defer=span if defer is None else defer,
        growth=growth,
        min_growth=span if min_growth is None else min_growth,
        refit_mode=refit_mode,
        bridge=None if early_refit_ratio is None else (horizon, early_refit_ratio),
    )


def solves_closed_form(refit_mode: str, template: BaseForecaster) -> bool:
    """Whether the loop fits ``template`` by one-pass least squares (``refit_mode: closed_form``)."""
    return refit_mode == "closed_form" and template.supports_closed_form


@dataclass
class TrainingSet:
    """Windows from the last ``rows`` of each series; ``val`` is the most recent slice of every series.

    ``full`` holds every window, the validation slice and the gap before it included: what a
    candidate is refitted on once validated, so it learns from the newest data too. ``val_age``
    is, per validation window, how many rows of its series arrived after its last target row, and
    ``val_owner`` which history (its place in the list) it is of.
    ``cleaned`` counts the glitches replaced in the histories before windowing
    (:func:`~adaptcast.forecast.outliers.clean`).
    """

    X: np.ndarray
    Y: np.ndarray
    val: tuple[np.ndarray, np.ndarray] | None
    rows: int
    full: tuple[np.ndarray, np.ndarray]
    val_age: np.ndarray | None = None
    val_owner: np.ndarray | None = None
    cleaned: int = 0

    @property
    def samples(self) -> int:
        return int(self.X.shape[0])


def training_set(
    histories: list[np.ndarray],
    rows: int,
    lookback: int,
    horizon: int,
    n_targets: int,
    val_fraction: float = 0.2,
) -> TrainingSet | None:
    """Per series: windows over its last ``rows`` rows, its glitches cleaned, split in time by
    :func:`split_train_val`. A history's runs between break rows (a restart after a long gap,
    :func:`~adaptcast.forecast.windows.joined`) give windows each; none crosses a break.

    Returns None when no series has enough rows for one training window.
    """
    xs, ys, xv, yv, xa, ya, age, owner = [], [], [], [], [], [], [], []
    cleaned = 0
    for i, h in enumerate(histories):
        runs = [run for run in segments(h[-rows:]) if len(run) >= lookback + horizon]
        if not runs:
            continue
        parts = []
        for run in runs:
            run, count = clean(run)
            cleaned += count
            parts.append(sliding_windows(run, lookback, horizon, n_targets))
        X, Y = parts[0] if len(parts) == 1 else (np.concatenate(p) for p in zip(*parts, strict=True))
        train_idx, val_idx = split_train_val(X.shape[0], horizon, val_fraction)
        xa.append(X)
        ya.append(Y)
        xs.append(X[train_idx])
        ys.append(Y[train_idx])
        if val_idx is not None:
            xv.append(X[val_idx])
            yv.append(Y[val_idx])
            age.append(X.shape[0] - 1 - np.arange(X.shape[0])[val_idx])
            owner.append(np.full(len(age[-1]), i, dtype=np.int64))
    if not xs:
        return None
    val = (np.concatenate(xv), np.concatenate(yv)) if xv else None
    full = (np.concatenate(xa), np.concatenate(ya))
    return TrainingSet(
        np.concatenate(xs),
        np.concatenate(ys),
        val,
        rows,
        full,
        val_age=np.concatenate(age) if age else None,
        val_owner=np.concatenate(owner) if owner else None,
        cleaned=cleaned,
    )


def window_count(histories: Sequence[np.ndarray], rows: int, lookback: int, horizon: int) -> int:
    """How many windows :func:`training_set` makes from ``histories`` (without making them)."""
    return sum(max(0, len(run) - lookback - horizon + 1) for h in histories for run in segments(h[-rows:]))


@dataclass
class TrainJob:
    """One retrain request: what to clone, on which histories' last ``rows`` rows, why, and when
    (step, newest record time), and what the candidate is judged against and starts with.

    Its :attr:`data` is built where the job runs, on first use, not where it is submitted.
    """

    template: BaseForecaster
    histories: list[np.ndarray]
    rows: int
    decision: Decision
    step: int
    ts_ms: int
    seq: int  # submission order: a model from a later job is never replaced by an earlier job's
    history_rows: int = 0  # rows of history there were when the job started (the growth trigger's base)
    refit: bool = True  # once validated, refit on every window (newest included) before serving
    warm_from: BaseForecaster | None = None  # continue from this (serving) model instead of a fresh clone
    closed_form: bool = False  # solve each fit in one pass (fit_closed_form), shrunk towards warm_from
    # the serving model's validated hyper-parameters: one fit on every window with them and no gated
    # fit before it (a routine refit of a recipe validation has already judged); None: gated
    recipe: dict[str, Any] | None = None
    judge: Judge | None = None  # what the candidate is compared with (None: it serves unjudged)
    memory: dict[str, Any] | None = None  # the new model's error-memory parameters (None: no memory)
    series: tuple[str, ...] = ()  # the histories' series, in order (empty: not known)

    @cached_property
    def data(self) -> TrainingSet:
        """The training set: windows over the histories' last ``rows`` rows (some history is long
        enough for one window: the submitter checks :func:`window_count`)."""
        t = self.template
        data = training_set(self.histories, self.rows, t.lookback, t.horizon, t.n_targets)
        if data is None:
            raise ValueError(f"no history holds {t.lookback + t.horizon} rows, one window")
        return data

    def owners(self, which: np.ndarray | None) -> list[str] | None:
        """The series of the histories at places ``which`` (None when either is not known)."""
        if which is None or len(self.series) != len(self.histories):
            return None
        return [self.series[i] for i in which.tolist()]

    @property
    def gated(self) -> bool:
        """Whether a fit held back from the newest windows is made first, for validation to judge."""
        return self.recipe is None


@dataclass
class TrainOutcome:
    """A finished job: the candidate to serve, its fit reports and assessment, or None and the error.

    ``gate`` is the model fitted without the validation slice, which validation judges; ``model``
    is the same recipe refitted on every window when the job asks for it (else ``gate`` itself).
    An ungated job has no ``gate``: its one fit on every window is ``model``.
    """

    job: TrainJob
    model: BaseForecaster | None
    report: FitReport | None
    error: str | None = None
    gate: BaseForecaster | None = None
    reports: list[FitReport] = field(default_factory=list)
    assessment: Assessment | None = None

    @property
    def cpu_seconds(self) -> float:
        return sum(r.cpu_seconds for r in self.reports)

    @property
    def samples_seen(self) -> int:
        return sum(r.samples_seen for r in self.reports)


def run_job(job: TrainJob, ledger: ComputeLedger) -> TrainOutcome:
    """Run ``job`` here and now: build its data, :func:`fit_candidate`, then :func:`assess` the
    candidate; failures are returned, not raised."""
    try:
        gate, model, reports = fit_candidate(
            job.template,
            job.data,
            ledger,
            refit=job.refit,
            warm_from=job.warm_from,
            closed_form=job.closed_form,
            recipe=job.recipe,
        )
        assessment = assess(job.data, model, gate, step=job.step, judge=job.judge, memory=job.memory)
    except Exception as exc:
        return TrainOutcome(job, None, None, f"{type(exc).__name__}: {exc}")
    return TrainOutcome(job, model, reports[0], gate=gate, reports=reports, assessment=assessment)


def fit_candidate(
    template: BaseForecaster,
    data: TrainingSet,
    ledger: ComputeLedger,
    *,
    refit: bool = True,
    warm_from: BaseForecaster | None = None,
    closed_form: bool = False,
    recipe: dict[str, Any] | None = None,
) -> tuple[BaseForecaster | None, BaseForecaster, list[FitReport]]:
    """Fit a fresh clone (or continue ``warm_from``) on the training slice, then refit on every window.

    Returns the gate (the fit validation judges), the model to serve and the fit reports. The
    refit holds no data back, so the served model has seen the newest windows: a model with
    ``refit_continues`` (a network) continues the gate with a warm fit (``warm_hparams``), others
    redo the work the validated fit found best (``refit_hparams``: boosting rounds). A warm job
    runs its gated fit as ``fit_warm`` from ``warm_from`` with the template's ``warm_hparams``
    (fewer epochs or rounds), and so its refit unless that continues the gate; a ``closed_form``
    job solves both in one pass each. With a ``recipe`` (the hyper-parameters an earlier validated
    fit found best) there is no gate: one fit on every window.
    """
    warm = template.warm_hparams() if warm_from is not None and not closed_form else {}

    def fit(
        model: BaseForecaster, X: np.ndarray, Y: np.ndarray, val: tuple | None, parent: BaseForecaster | None
    ) -> FitReport:
        with ledger.measure("train", samples=int(X.shape[0])):
            if closed_form:
                return model.fit_closed_form(X, Y, parent)
            return model.fit(X, Y, val) if parent is None else model.fit_warm(parent, X, Y, val)

    if recipe is not None:
        model = template.clone(**{**warm, **recipe})
        return None, model, [fit(model, *data.full, None, warm_from)]
    gate = template.clone(**warm)
    report = fit(gate, data.X, data.Y, data.val, warm_from)
    reports = [report]
    model = gate
    if refit and data.val is not None:
        if template.refit_continues and not closed_form:
            model = template.clone(**template.warm_hparams())
            reports.append(fit(model, *data.full, None, gate))
        else:
            model = template.clone(**{**warm, **gate.refit_hparams(report, len(data.full[0]))})
            reports.append(fit(model, *data.full, None, warm_from))
    return gate, model, reports


class Trainer(Protocol):
    """Where training runs; the loop submits jobs and collects outcomes with ``poll``."""

    @property
    def busy(self) -> bool: ...

    def submit(self, job: TrainJob) -> None: ...

    def poll(self) -> list[TrainOutcome]: ...

    def wait(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


class InlineTrainer:
    """Train synchronously inside ``submit`` (backtests: deterministic, reproducible)."""

    def __init__(self, ledger: ComputeLedger):
        self.ledger = ledger
        self._done: list[TrainOutcome] = []

    @property
    def busy(self) -> bool:
        return False

    def submit(self, job: TrainJob) -> None:
        self._done.append(run_job(job, self.ledger))

    def poll(self) -> list[TrainOutcome]:
        done, self._done = self._done, []
        return done

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def close(self) -> None:
        pass


class BackgroundTrainer:
    """Train on one worker thread while serving continues; at most one job at a time."""

    def __init__(self, ledger: ComputeLedger):
        self.ledger = ledger
        self._jobs: queue.Queue[TrainJob | None] = queue.Queue()
        self._done: queue.Queue[TrainOutcome] = queue.Queue()
        self._busy = threading.Event()
        self._thread = threading.Thread(target=self._work, name="adaptcast-trainer", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    def submit(self, job: TrainJob) -> None:
        if self.busy:
            raise RuntimeError("a training job is already running")
        self._busy.set()
        self._jobs.put(job)

    def poll(self) -> list[TrainOutcome]:
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the running job (if any) finishes; True when idle."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.busy:
            if end is not None and time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._done.put(self._run(job))
            finally:
                self._busy.clear()

    def _run(self, job: TrainJob) -> TrainOutcome:
        """Run one job on the worker thread (in this process: it shares the GIL with serving)."""
        return run_job(job, self.ledger)

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(timeout=5)
