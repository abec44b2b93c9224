"""Whether the served forecasts are bridging a detected change until its deferred refit, or not.

After an alarm the first refit waits for post-change data (:class:`~adaptcast.drift.schedule.
ChangeSchedule`). Meanwhile the error memory bridges the gap where it can: after a level shift its
level term catches up in a few steps. Where it cannot (a seasonal shape that appeared or changed),
the served error stays high for the whole wait; there refitting early, on what post-change data
there is, pays for itself, and elsewhere it would only cost work. Nor can it where the model's
far leads broke (a linear model fitted on a bubble forecasts its crash with the bubble's
momentum): the memory corrects every lead by lead 1's residual, so lead 1 looks bridged while the
forecasts as a whole are far worse than repeating the last value. That test reads the model's own
forecasts, not the served ones: a model three times worse than persistence over every lead is
broken however much of it the memory patches for a while (on a random walk the memory kept the
served forecasts at 1.1-2.3x persistence's while the model's reached 3x, and the deferred refit
came 47 steps later than it would have without the memory; docs/benchmarks.md, "A twenty-seventh
held-out set").
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np


class BridgeWatch:
    """Says when, since a change, the served error has stayed above ``ratio`` × its level before it,
    or the model's own forecasts over every lead above ``ratio`` × those of persistence (the last value).

    ``span`` steps after the change, and at every step until its deferred refit, the mean served
    error of the last ``span`` steps (the mean over series at each step) is compared with the
    reference: an exponential mean of the per-step served error while no change was pending,
    over about ``memory`` steps; and the summed error of every lead's forecasts (the model's own) scored in
    those ``span`` steps with the same outcomes' persistence error. Asking once per change is the
    caller's part (the policy's schedule records that its first refit was brought forward).
    """

    def __init__(self, span: int, ratio: float, memory: int | None = None) -> None:
        if span < 1 or not ratio > 1:
            raise ValueError(f"bridge watch needs span >= 1 and ratio > 1, got span={span}, ratio={ratio}")
        self.span, self.ratio = int(span), float(ratio)
        self.alpha = 2.0 / ((memory or 8 * self.span) + 1)
        self.reference: float | None = None
        self.recent: deque[float] = deque(maxlen=self.span)
        self.against: deque[tuple[float, float]] = deque(maxlen=self.span)  # (served, persistence) per step
        self.change_step: int | None = None  # the change being watched (None: none pending)

    def start(self, change_step: int) -> None:
        """A change was detected at ``change_step``: watch the served error from here."""
        self.change_step = int(change_step)
        self.recent.clear()
        self.against.clear()

    def stop(self) -> None:
        """The change's deferred refit has come: the watch ends, and the reference learns again."""
        self.change_step = None

    def observe(self, errors: np.ndarray, against: tuple[float, float] | None = None) -> None:
        """This step's served lead-1 errors (one per series scored; none: nothing to learn) and the
        summed errors of every lead scored, the model's own and persistence's (``against``)."""
        if against is not None and self.change_step is not None:
            self.against.append((float(against[0]), float(against[1])))
        if not len(errors):
            return
        e = float(np.mean(errors))
        if self.change_step is not None:
            self.recent.append(e)
        elif self.reference is None:
            self.reference = e
        else:
            self.reference += self.alpha * (e - self.reference)

    def due(self, step: int) -> bool:
        """Whether an early refit is due now: over the last ``span`` steps since the change, the
        model's error over every lead stayed above ``ratio`` × persistence's, or the served lead 1's
        above ``ratio`` × its level before the change."""
        c = self.change_step
        if c is None or step - c < self.span:
            return False
        if len(self.against) == self.span:
            served, persistence = np.sum(list(self.against), axis=0)
            if persistence > 0 and served > self.ratio * persistence:
                return True
        if self.reference is None or len(self.recent) < self.span:
            return False
        return bool(np.mean(self.recent) > self.ratio * self.reference)

    def state_dict(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "recent": list(self.recent),
            "against": [list(a) for a in self.against],
            "change_step": self.change_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reference = None if state.get("reference") is None else float(state["reference"])
        self.recent = deque((float(e) for e in state.get("recent", [])), maxlen=self.span)
        self.against = deque(((float(s), float(p)) for s, p in state.get("against", [])), maxlen=self.span)
        self.change_step = None if state.get("change_step") is None else int(state["change_step"])
