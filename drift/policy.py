"""Retrain policies: a trigger (never / periodic / on drift) combined with a window rule.

The window rule is full history, a fixed number of rows, or the Variance Horizon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from ._validate import finite_array
from .base import DriftDetector
from .bridge import BridgeWatch
from .detectors import canonical_detector_name, detector_from_state, make_detector
from .schedule import ChangeSchedule
from .variance_horizon import VarianceHorizon

__all__ = ["ROUTINE_REASONS", "Action", "Decision", "Reason", "RetrainPolicy", "StepInfo", "WindowRule"]

POLICY_FORMS = (
    "never | periodic:EVERY | drift[:DETECTOR]"
    " (DETECTOR: performance, adwin, page_hinkley|ph, kswin, feature)"
)
WINDOW_FORMS = "full | fixed:N | vh"
# A change at least this many Variance-Horizon ``min_len`` back is one the horizon's own rule stops
# before; a younger one it can straddle, so the window is kept to the whole regime only that far.
REGIME_REACH = 4


@dataclass(frozen=True)
class StepInfo:
    """What the serving/backtest loop knows at one step, filled by the loop for the policy.

    ``errors`` are the live errors that became known at this step (detector input, e.g. |e|), one
    observation per time step (the loop gives the mean over the series scored at it);
    ``features`` the new input rows (for the feature-drift detector); ``history`` the target
    (or ``[rows, channels]``) history the Variance Horizon chooses from, or a function that
    builds it, called only when a retrain needs its window (most steps need none).  The policy counts
    steps since the last :meth:`RetrainPolicy.notify_retrained` itself; a loop that knows
    better (e.g. after a restore) can pass ``steps_since_retrain``.
    """

    step: int
    rows_available: int
    has_model: bool = True
    errors: float | Sequence[float] | np.ndarray | None = None
    served_errors: np.ndarray | None = None  # the same, of the forecasts served (None: as ``errors``)
    # summed errors of every lead scored at this step: the model's own forecasts' and persistence's
    # (the value at issue repeated), in the units of ``errors``; read by the early-refit watch
    against_persistence: tuple[float, float] | None = None
    features: np.ndarray | None = None
    history: np.ndarray | Callable[[], np.ndarray] | None = None
    time: float | None = None
    steps_since_retrain: int | None = None  # overrides the policy's own count when given


class Action(Enum):
    """What the policy tells the loop to do at a step."""

    WAIT = "wait"
    RETRAIN = "retrain"


REFIT_MODES = ("cold", "warm", "auto", "closed_form")  # how a retrain starts (see RetrainPolicy.warm_start)


class Reason(Enum):
    """Why the policy decided as it did; the value is the metric label / report spelling."""

    INITIAL = "initial"  # no model yet
    PERIODIC = "periodic"  # the retrain period elapsed
    DRIFT = "drift"  # the detector fired
    NO_DATA = "no-data"
    NEVER = "never"
    PERIODIC_WAIT = "periodic-wait"
    COOLDOWN = "cooldown"  # too soon after the last retrain for the detector to be fed
    NO_DRIFT = "no-drift"
    POST_CHANGE = "post-change"  # a scheduled refit on the data that arrived since a detected change
    UNBRIDGED = "unbridged"  # an early refit: the served error stayed high while a post-change refit waited
    GROWTH = "growth"  # the history grew by the growth factor since the serving model was trained


# Refits that follow no detected change: "auto" runs them warm, and the validation gate only stops a
# broken candidate there (the same recipe on more data; see streams.adaptation).
ROUTINE_REASONS = frozenset({Reason.PERIODIC, Reason.GROWTH})


@dataclass(frozen=True)
class Decision:
    """A policy's answer: the action, why, on how many recent rows, and for drift which detector and when.

    ``change_step`` is the step at which the change is estimated to start (the alarm step for now).
    A ``DRIFT`` decision may ``WAIT``: the change is recorded and its refit is scheduled for when
    there is post-change data to learn from (``POST_CHANGE``).
    """

    action: Action
    reason: Reason
    window: int | None = None
    detector: str | None = None
    change_step: int | None = None

    def __post_init__(self) -> None:
        if self.reason is Reason.DRIFT and not self.detector:
            raise ValueError("a drift decision names its detector")

    @classmethod
    def wait(cls, reason: Reason) -> Decision:
        """Do nothing this step, because of ``reason``."""
        return cls(Action.WAIT, reason)

    @property
    def retrain(self) -> bool:
        return self.action is Action.RETRAIN

    @property
    def label(self) -> str:
        """The reason as metric labels and reports spell it: ``initial``, ``periodic``, ``drift:adwin``…"""
        return f"drift:{self.detector}" if self.reason is Reason.DRIFT else self.reason.value


@dataclass(frozen=True)
class WindowRule:
    """How many recent rows to train on: ``full``, ``fixed`` (``n`` rows) or ``vh`` (Variance Horizon)."""

    kind: str = "full"
    n: int | None = None
    vh: VarianceHorizon | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in ("full", "fixed", "vh"):
            raise ValueError(f"invalid window kind {self.kind!r}; valid: {WINDOW_FORMS}")
        if self.kind == "fixed" and (self.n is None or self.n < 1):
            raise ValueError(f"fixed window needs n >= 1, got {self.n}")
        if self.kind == "vh" and self.vh is None:
            object.__setattr__(self, "vh", VarianceHorizon())

    @classmethod
    def parse(cls, spec: str | WindowRule, **vh_params: Any) -> WindowRule:
        """Parse ``full``, ``fixed:N`` or ``vh`` (``vh_params`` go to :class:`VarianceHorizon`)."""
        if isinstance(spec, WindowRule):
            return spec
        s = str(spec).strip().lower()
        if s == "full":
            return cls("full")
        if s in ("vh", "variance_horizon"):
            return cls("vh", vh=VarianceHorizon(**vh_params))
        if s.startswith("fixed:"):
            try:
                n = int(s.split(":", 1)[1])
            except ValueError:
                n = 0
            if n >= 1:
                return cls("fixed", n=n)
        raise ValueError(f"invalid window spec {spec!r}; valid forms: {WINDOW_FORMS}")

    @property
    def spec(self) -> str:
        """The spec string this rule parses from."""
        return {"full": "full", "fixed": f"fixed:{self.n}", "vh": "vh"}[self.kind]

    def rows(self, info: StepInfo, regime: int | None = None) -> int:
        """Rows to train on at this step (never more than ``info.rows_available``).

        ``regime`` is how many recent rows belong to the current regime (since the last detected
        change); the Variance Horizon may reach further back than that, and never less far while
        the regime is younger than ``REGIME_REACH`` times its ``min_len``. Beyond that its own rule
        finds a change (a tested property of :class:`VarianceHorizon`), and a long stable regime's
        older rows add compute, not information.
        """
        avail = int(info.rows_available)
        if self.kind == "full":
            return avail
        if self.kind == "fixed":
            assert self.n is not None
            return min(self.n, avail)
        if info.history is None:
            raise ValueError("window 'vh' needs StepInfo.history")
        assert self.vh is not None
        history = info.history() if callable(info.history) else info.history
        floor = min(regime or 0, REGIME_REACH * self.vh.min_len)
        return min(max(self.vh.select(history), floor), avail)


class RetrainPolicy:
    """When to retrain and on how much history; the same object drives backtest and live.

    Deterministic: the decision depends only on the sequence of :class:`StepInfo` values and
    :meth:`notify_retrained` calls. Rules, in order: no data → ``NO_DATA``; no model yet → retrain,
    ``INITIAL``; otherwise the trigger — ``never`` never retrains (``NEVER``), ``periodic`` retrains
    once ``step - last_retrain >= every`` (``PERIODIC``, else ``PERIODIC_WAIT``); ``drift`` first
    retrains when a scheduled post-change refit is due (``POST_CHANGE``) or ``growth - 1`` times the
    rows the serving model was trained on have arrived since it was, and as many (at least
    ``min_growth``) since the last fit, kept or not, and no post-change refit waits (``GROWTH``:
    the history has grown ``growth``-fold, or would have without its cap), then feeds ``errors``
    (or ``features`` for the feature detector) to its detector — except during ``cooldown`` steps
    after a retrain (``COOLDOWN``) — and on an alarm retrains at once (``DRIFT``) or, with
    ``defer > 0``, records it and schedules the refit
    (:class:`~adaptcast.drift.schedule.ChangeSchedule`); with ``bridge``
    (span, ratio), while that first refit waits, a served error that stays above ratio × its level
    before the alarm for a span of steps brings it forward (``UNBRIDGED``,
    :class:`~adaptcast.drift.bridge.BridgeWatch`).
    After a swap the loop calls :meth:`notify_retrained`, after a rejected candidate
    :meth:`notify_rejected`.

    >>> from adaptcast.drift.policy import RetrainPolicy, StepInfo
    >>> policy = RetrainPolicy.parse("periodic:24")
    >>> policy.should_retrain(StepInfo(step=0, rows_available=100, has_model=False)).label
    'initial'
    >>> policy.notify_retrained(0)
    >>> fired = []
    >>> for step in range(1, 60):
    ...     if policy.should_retrain(StepInfo(step=step, rows_available=100 + step)).retrain:
    ...         fired.append(step)
    ...         policy.notify_retrained(step)
    >>> fired
    [24, 48]
    """

    def __init__(
        self,
        trigger: str = "never",
        *,
        every: int | None = None,
        detector: DriftDetector | None = None,
        window: str | WindowRule = "full",
        cooldown: int = 0,
        vh_params: dict[str, Any] | None = None,
        defer: int = 0,
        growth: float | None = None,
        min_growth: int = 0,
        refit_mode: str = "cold",
        bridge: tuple[int, float] | None = None,
    ) -> None:
        if trigger not in ("never", "periodic", "drift"):
            raise ValueError(f"invalid trigger {trigger!r}; valid forms: {POLICY_FORMS}")
        if trigger == "periodic" and (every is None or int(every) < 1):
            raise ValueError(f"periodic trigger needs every >= 1, got {every}")
        if trigger == "drift" and detector is None:
            raise ValueError("drift trigger needs a detector")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown}")
        if growth is not None and not growth > 1:
            raise ValueError(f"growth must be > 1 (or None), got {growth}")
        if refit_mode not in REFIT_MODES:
            raise ValueError(f"refit_mode must be one of {', '.join(REFIT_MODES)}, got {refit_mode!r}")
        self.trigger = trigger
        self.every = None if every is None else int(every)
        self.detector = detector if trigger == "drift" else None
        self.window = WindowRule.parse(window, **(vh_params or {}))
        self.cooldown = int(cooldown)
        self.growth = None if growth is None else float(growth)
        self.min_growth = int(min_growth)
        self.refit_mode = refit_mode
        cap = (self.window.vh.max_len if self.window.vh is not None else None) or self.window.n or 10**9
        self.schedule = ChangeSchedule(int(defer), int(cap))
        self.bridge = BridgeWatch(*bridge) if bridge and trigger == "drift" and bridge[0] < defer else None
        self.last_retrain_step: int | None = None
        self.trained_rows: int | None = None  # history rows at the last fit, kept or not
        self.served_rows: int | None = None  # history rows the serving model was fitted from (growth's base)
        self.served_step: int | None = None  # the step it began serving
        self.last_change_step: int | None = None  # step of the last detected change

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def never(cls, window: str | WindowRule = "full") -> RetrainPolicy:
        """Train once (initial model), never again."""
        return cls("never", window=window)

    @classmethod
    def periodic(cls, every: int, window: str | WindowRule = "full") -> RetrainPolicy:
        """Retrain every ``every`` steps."""
        return cls("periodic", every=every, window=window)

    @classmethod
    def on_drift(
        cls,
        detector: DriftDetector | str = "performance",
        window: str | WindowRule = "full",
        cooldown: int = 0,
    ) -> RetrainPolicy:
        """Retrain when ``detector`` (an instance or a name) fires."""
        det = make_detector(detector) if isinstance(detector, str) else detector
        return cls("drift", detector=det, window=window, cooldown=cooldown)

    @classmethod
    def parse(
        cls,
        spec: str,
        window: str | WindowRule = "full",
        *,
        detector_params: dict[str, Any] | None = None,
        vh_params: dict[str, Any] | None = None,
        cooldown: int = 0,
        defer: int = 0,
        growth: float | None = None,
        min_growth: int = 0,
        refit_mode: str = "cold",
        bridge: tuple[int, float] | None = None,
    ) -> RetrainPolicy:
        """Build from the CLI spellings ``never``, ``periodic:EVERY``, ``drift[:DETECTOR]``.

        ``window`` is ``full``, ``fixed:N`` or ``vh``; ``refit_mode`` see :meth:`warm_start`.
        """
        s = str(spec).strip().lower()
        try:
            if s == "never":
                return cls("never", window=window, vh_params=vh_params, refit_mode=refit_mode)
            if s.startswith("periodic:"):
                every = int(s.split(":", 1)[1])
                if every < 1:
                    raise ValueError
                return cls("periodic", every=every, window=window, vh_params=vh_params, refit_mode=refit_mode)
            if s == "drift" or s.startswith("drift:"):
                name = s.split(":", 1)[1] if ":" in s else "performance"
                det = make_detector(canonical_detector_name(name), **(detector_params or {}))
                return cls(
                    "drift",
                    detector=det,
                    window=window,
                    cooldown=cooldown,
                    vh_params=vh_params,
                    defer=defer,
                    growth=growth,
                    min_growth=min_growth,
                    refit_mode=refit_mode,
                    bridge=bridge,
                )
        except ValueError as exc:
            if "window" in str(exc) or "refit_mode" in str(exc):
                raise
            raise ValueError(f"invalid policy spec {spec!r}; valid forms: {POLICY_FORMS}") from exc
        raise ValueError(f"invalid policy spec {spec!r}; valid forms: {POLICY_FORMS}")

    @property
    def spec(self) -> str:
        """Spec string of the trigger (``never``, ``periodic:24``, ``drift:adwin``)."""
        if self.trigger == "periodic":
            return f"periodic:{self.every}"
        if self.trigger == "drift":
            assert self.detector is not None
            return f"drift:{self.detector.name}"
        return "never"

    def __repr__(self) -> str:
        return f"RetrainPolicy({self.spec!r}, window={self.window.spec!r}, cooldown={self.cooldown})"

    # -- decisions ----------------------------------------------------------------------------
    def should_retrain(self, info: StepInfo) -> Decision:
        """Decide for this step; feeds the detector as a side effect (call once per step)."""
        if info.rows_available <= 0:
            return Decision.wait(Reason.NO_DATA)
        if not info.has_model:  # the first model gets every row there is: no window rule starves it
            return Decision(Action.RETRAIN, Reason.INITIAL, int(info.rows_available))
        if self.last_retrain_step is None:  # a model the policy was not told about: count from here
            self.last_retrain_step = int(info.step)
        since = (
            info.step - self.last_retrain_step
            if info.steps_since_retrain is None
            else int(info.steps_since_retrain)
        )
        if self.trigger == "never":
            return Decision.wait(Reason.NEVER)
        if self.trigger == "periodic":
            assert self.every is not None
            if since >= self.every:
                return Decision(Action.RETRAIN, Reason.PERIODIC, self._rows(info))
            return Decision.wait(Reason.PERIODIC_WAIT)
        det = self.detector
        assert det is not None
        cooling = self.cooldown > 0 and since <= self.cooldown
        fired = not cooling and self._feed(det, info)  # fed even while a refit is due or running
        if self.bridge is not None:
            served = info.errors if info.served_errors is None else info.served_errors
            self.bridge.observe(np.empty(0) if served is None else np.ravel(served), info.against_persistence)
        if fired and not self.schedule.awaiting_refit:  # else a repeat alarm of the change already scheduled
            self.last_change_step = int(info.step)
            if self.schedule.defer:
                self.schedule.start(info.step)
                if self.bridge is not None:
                    self.bridge.start(info.step)
                return Decision(Action.WAIT, Reason.DRIFT, None, det.name, change_step=int(info.step))
            return Decision(
                Action.RETRAIN, Reason.DRIFT, self._rows(info), det.name, change_step=int(info.step)
            )
        c = self.schedule.change_step
        if self.schedule.due(info.step):
            if self.bridge is not None:
                self.bridge.stop()
            return Decision(Action.RETRAIN, Reason.POST_CHANGE, self._rows(info), det.name, c)
        if (
            self.bridge is not None
            and self.schedule.awaiting_refit
            and not self.schedule.hastened
            and self.bridge.due(info.step)
        ):
            self.schedule.hasten()
            return Decision(Action.RETRAIN, Reason.UNBRIDGED, self._rows(info), det.name, c)
        if (
            self.growth
            and self.trained_rows
            and info.rows_available >= self.trained_rows
            and not self.schedule.awaiting_refit  # a refit now would fit across the change it waits out
        ):
            # rows that arrived since the last fit: ``since`` keeps counting once the history is capped;
            # a history shorter than the serving model's (a series restarted after a gap) never triggers
            new_rows = max(info.rows_available - self.trained_rows, since)
            served = self.served_rows or self.trained_rows
            grown = max(
                info.rows_available - served,
                since if self.served_step is None else info.step - self.served_step,
            )
            step_rows = (self.growth - 1) * served
            if new_rows >= max(self.min_growth, step_rows) and grown >= step_rows:
                return Decision(Action.RETRAIN, Reason.GROWTH, self._rows(info))
        return Decision.wait(Reason.COOLDOWN if cooling else Reason.NO_DRIFT)

    @staticmethod
    def _feed(det: DriftDetector, info: StepInfo) -> bool:
        """Give the detector this step's errors (or input rows); whether it fired."""
        if det.input_kind == "features":
            return info.features is not None and bool(det.update(info.features))
        if info.errors is None:
            return False
        return bool(det.update_many(finite_array(info.errors, "errors", allow_empty=True).ravel()).any())

    def warm_start(self, decision: Decision) -> bool:
        """Whether the retrain ``decision`` asks for continues from the serving model (else a fresh fit).

        ``refit_mode`` "cold" never, "warm" always (but the first model), "auto" for the refits
        that follow no detected change (periodic, growth): there the serving model is still right
        and only needs the new data, while after a change its weights hold the old regime.
        "closed_form" solves every fit in one pass where the model can (a linear AR-Net), each
        refit shrunk towards the serving model's weights, so it is warm too.
        """
        if decision.reason is Reason.INITIAL or self.refit_mode == "cold":
            return False
        return self.refit_mode in ("warm", "closed_form") or decision.reason in ROUTINE_REASONS

    def validates(self, decision: Decision) -> bool:
        """Whether a candidate from ``decision`` must beat the serving model on recent windows to serve."""
        return True

    def _rows(self, info: StepInfo) -> int:
        """The window rule's rows, given that the regime started at the last detected change.

        Before any change is detected the whole history is one regime; after one, the window
        covers at least the data since it and grows with it, as far as :meth:`WindowRule.rows`
        lets a regime reach. Triggers that detect no changes (never, periodic) use the rule as it is.
        """
        if self.trigger != "drift":
            return self.window.rows(info)
        regime = info.rows_available if self.last_change_step is None else info.step - self.last_change_step
        return self.window.rows(info, regime=max(int(regime), 0))

    def notify_retrained(
        self,
        step: int,
        val_error: float | None = None,
        reference_features: Any = None,
        rows: int | None = None,
    ) -> None:
        """Record a model swap at ``step``: rebase the detector, restart cooldown, move the schedule on.

        ``val_error`` becomes the performance detector's reference; ``reference_features``
        (the training inputs) the feature detector's reference; ``rows`` is the history the
        new model was trained from (the growth trigger's base).
        """
        self.last_retrain_step = self.served_step = int(step)
        self.schedule.refitted(step)
        if rows is not None:
            self.trained_rows = self.served_rows = int(rows)
        det = self.detector
        if det is None:
            return
        det.rebase(val_error=val_error, reference_features=reference_features)

    def notify_rejected(self, step: int, rows: int | None = None) -> None:
        """A candidate lost to the serving model at ``step``: retry when the post-change data doubles.

        The detector restarts but keeps its reference, the serving model's own validated error:
        taking the degraded live error as the new reference could silence it for good. ``rows``
        (the history the candidate was fitted from) is where the growth trigger counts new rows
        from, so a rejected refit is not retried at every step; its base stays the serving model's
        rows, so rejections do not keep a model serving while the history grows many times over.
        """
        self.last_retrain_step = int(step)
        self.schedule.refitted(step)
        if rows is not None:
            self.trained_rows = int(rows)
        if self.detector is not None:
            self.detector.rebase()

    # -- state --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Spec, window, counters and the detector's state (pickle-free)."""
        return {
            "kind": "retrain_policy",
            "spec": self.spec,
            "window": self.window.spec,
            "vh_params": None if self.window.vh is None else self.window.vh.params(),
            "every": self.every,
            "cooldown": self.cooldown,
            "defer": self.schedule.defer,
            "growth": self.growth,
            "min_growth": self.min_growth,
            "refit_mode": self.refit_mode,
            "last_retrain_step": self.last_retrain_step,
            "trained_rows": self.trained_rows,
            "served_rows": self.served_rows,
            "served_step": self.served_step,
            "last_change_step": self.last_change_step,
            "schedule": self.schedule.state_dict(),
            "bridge": None if self.bridge is None else [self.bridge.span, self.bridge.ratio],
            "bridge_state": None if self.bridge is None else self.bridge.state_dict(),
            "detector": None if self.detector is None else self.detector.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore counters and detector state saved from an equivalent policy."""
        if (
            state.get("kind") != "retrain_policy"
            or state["spec"] != self.spec
            or state["window"] != self.window.spec
        ):
            saved = f"{state.get('spec')!r}/{state.get('window')!r}"
            raise ValueError(f"state is for policy {saved}, not {self.spec!r}/{self.window.spec!r}")
        self.last_retrain_step = (
            None if state["last_retrain_step"] is None else int(state["last_retrain_step"])
        )
        self.trained_rows = None if state.get("trained_rows") is None else int(state["trained_rows"])
        self.served_rows = None if state.get("served_rows") is None else int(state["served_rows"])
        self.served_step = None if state.get("served_step") is None else int(state["served_step"])
        change = state.get("last_change_step")
        self.last_change_step = None if change is None else int(change)
        self.schedule.load_state_dict(state.get("schedule") or {})
        if self.bridge is not None:
            self.bridge.load_state_dict(state.get("bridge_state") or {})
        if self.detector is not None:
            self.detector.load_state_dict(state["detector"])

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> RetrainPolicy:
        """Rebuild a policy (including its detector) from ``state_dict`` alone."""
        window = WindowRule.parse(state["window"], **(state["vh_params"] or {}))
        trig = state["spec"].split(":", 1)[0]
        det = None if state["detector"] is None else detector_from_state(state["detector"])
        pol = cls(
            trig,
            every=state["every"],
            detector=det,
            window=window,
            cooldown=state["cooldown"],
            defer=int(state.get("defer", 0)),
            growth=state.get("growth"),
            min_growth=int(state.get("min_growth", 0)),
            refit_mode=state.get("refit_mode", "cold"),
            bridge=None
            if state.get("bridge") is None
            else (int(state["bridge"][0]), float(state["bridge"][1])),
        )
        pol.load_state_dict(state)
        return pol
