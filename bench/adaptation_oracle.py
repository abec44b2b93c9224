"""The benchmark's oracle: a retrain policy that knows where the labelled changes are (bench only)."""

from __future__ import annotations

from typing import Any

from adaptcast.drift.policy import Action, Decision, Reason, RetrainPolicy, StepInfo


class OraclePolicy(RetrainPolicy):
    """Retrain once per true change point, ``delay`` steps after it, on exactly the rows since the change.

    A perfect detector with a perfect window: the reference drift-triggered retraining is measured
    against. ``change_steps`` are row indices of the first changed row (``start_step`` of the labelled
    events); the loop counts that row's arrival as step ``change + 1``. Apart from the first model,
    it fits once per change that is due before the stream ends.
    """

    def __init__(self, change_steps: list[int], delay: int):
        super().__init__("never")
        self.delay = int(delay)
        self._pending = sorted(int(s) + 1 for s in change_steps)  # loop steps of the first changed rows

    @property
    def spec(self) -> str:
        return "oracle"

    def should_retrain(self, info: StepInfo) -> Decision:
        """Initial model as any policy; then RETRAIN once the oldest pending change is ``delay`` rows old."""
        decision = super().should_retrain(info)
        if decision.reason is not Reason.NEVER or not self._pending:
            return decision
        change = self._pending[0]
        rows = info.step - change + 1
        if rows < self.delay:
            return decision
        return Decision(Action.RETRAIN, Reason.DRIFT, rows, detector="oracle", change_step=change)

    def validates(self, decision: Decision) -> bool:
        """Never: an oracle refit is the upper reference, so the gate must not keep the stale model."""
        return False

    def notify_retrained(self, step: int, **kwargs: Any) -> None:
        """A fit has been installed: every change it has seen ``delay`` rows of is served."""
        super().notify_retrained(step, **kwargs)
        self._served(step)

    def notify_rejected(self, step: int) -> None:
        """A fit lost to the serving model: the oracle does not retry the same change."""
        super().notify_rejected(step)
        self._served(step)

    def _served(self, step: int) -> None:
        self._pending = [c for c in self._pending if step - c + 1 < self.delay]
