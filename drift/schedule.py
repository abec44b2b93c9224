"""Change-aware refit times: wait until a change has post-change data, then refit as that data doubles."""

from __future__ import annotations

from typing import Any


class ChangeSchedule:
    """When to refit after a change detected at ``change_step``.

    A refit right at the alarm trains on data from before the change; so the first refit waits
    ``defer`` steps (one model span plus some windows of post-change data), and each later one
    comes when the post-change stretch has doubled since the previous refit, until it is ``cap``
    steps long (from then on the window rule sees only post-change data anyway); a first refit
    brought forward (:meth:`hasten`) starts the doubling from its own length. A rejected
    candidate is retried on the same doubling schedule. Alarms before the first refit belong to
    the same change (the serving model is still the one that drifted), so they do not restart it.
    """

    def __init__(self, defer: int, cap: int) -> None:
        if defer < 0 or cap < 1:
            raise ValueError(f"defer must be >= 0 and cap >= 1, got defer={defer}, cap={cap}")
        self.defer, self.cap = int(defer), int(cap)
        self.change_step: int | None = None
        self.next_step: int | None = None
        self.refits = 0  # refits since the change was detected
        self.hastened = False  # the first refit came early: later ones double from it

    def start(self, change_step: int) -> None:
        """A change was detected at ``change_step``: the first refit is ``defer`` steps later."""
        self.change_step = int(change_step)
        self.next_step = self.change_step + self.defer
        self.refits = 0
        self.hastened = False

    def hasten(self) -> None:
        """The first refit of this change runs now, before ``defer``; later ones double from it."""
        self.hastened = True

    @property
    def awaiting_refit(self) -> bool:
        """A change is known and nothing has been refitted for it yet."""
        return self.change_step is not None and self.refits == 0

    def due(self, step: int) -> bool:
        return self.next_step is not None and step >= self.next_step

    def refitted(self, step: int) -> None:
        """A refit ran (swapped or rejected) at ``step``: the next one when the post-change data doubles."""
        if self.change_step is None:
            return
        self.refits += 1
        post = max(step - self.change_step, 0 if self.hastened else self.defer, 1)
        if 2 * post > self.cap:
            self.change_step = self.next_step = None
        else:
            self.next_step = self.change_step + 2 * post

    def state_dict(self) -> dict[str, Any]:
        return {
            "change_step": self.change_step,
            "next_step": self.next_step,
            "refits": self.refits,
            "hastened": self.hastened,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.change_step = None if state.get("change_step") is None else int(state["change_step"])
        self.next_step = None if state.get("next_step") is None else int(state["next_step"])
        self.refits = int(state.get("refits", 0))
        self.hastened = bool(state.get("hastened", False))
