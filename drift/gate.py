"""Serve the error memory's correction to a series only while it has been beating the bare model there
(all of it, or half where half has been the best), and the value at issue instead while repeating it
has been beating them.

The memory and the level term earn their keep right after a change, when the model is off; on a
stream the model already forecasts well, their corrections are mostly noise and cost a few per
cent of error. The gate keeps, per series, exponentially weighted means of the absolute error of
the corrected forecast, of the model's own and of their midpoint (half the correction), each
scored on every outcome whatever was served, and serves the one whose mean is the lowest. After a
shift the bare model's error jumps, so the gate opens within a step or two of outcomes. Where the
correction is right in direction but noisy (a level it follows a little late, a seasonal shape
half learnt), half of it errs less than either end, and choosing only between the two ends lost
that (docs/benchmarks.md, "Half a correction").

The same means are kept for persistence (the value at issue repeated at every lead): where a
series is one no model of the loop forecasts better than its last value (a price, a random walk),
that is what it is served, until the model's forecasts err less again. Only once a series has
a half-life of outcomes scored for it: its first few outcomes say little, and a seasonal series
served its last value on their say-so would pay for it at every far lead. And never where, over
means ten times as long, the model has clearly erred less than the last value: a spell in which
the last value led (a plateau, a calm month) then ends on a series whose trait is the model's lead,
and the last value served through its end costs more than the spell saved.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["CorrectionGate", "midpoint"]

# Weight of one outcome: a half-life of ~350 outcomes, about 30 steps at a 12-step horizon, so the
# stationary comparison is not decided by noise, while a shift's errors outweigh it within a few.
DEFAULT_ALPHA = 0.002
CORRECTED, BARE, PERSISTENCE, HALF = range(4)  # the arms' columns (HALF last: older states lack it)
ARMS = 4
# the arms a forecast of the model can be served from, in the order ties go, and their share of the correction
SHARES = {CORRECTED: 1.0, BARE: 0.0, HALF: 0.5}
_SERVED_ARMS, _SERVED_SHARES = list(SHARES), np.array(list(SHARES.values()))
# Persistence is served only while it errs this much less than both: where the two are close, the
# model's recent losses are as likely a turning point it recovers from (a fleet of 148 monthly
# employment series lost 1 % with no margin, 0 % with this one; docs/benchmarks.md).
PERSIST_MARGIN = 0.95
# ... and never where the model has erred that much less than persistence over the series' longer
# run, means with a half-life this many times the gate's: whether a model beats its series' last
# value is a trait of the series, and a month in which the last value led (an outage's plateau) says
# more about that month than about the trait.
SLOW = 10


def _best_served(means: np.ndarray) -> np.ndarray:
    """Per row of arm means, the lowest of the arms the model could serve (NaN: none scored)."""
    served = means[:, _SERVED_ARMS]
    best = np.full(len(means), np.nan)
    scored = ~np.isnan(served).all(axis=1)
    best[scored] = np.nanmin(served[scored], axis=1)
    return best


def midpoint(bare: np.ndarray, corrected: np.ndarray) -> np.ndarray:
    """The forecast with half the memory's correction: the gate's third arm."""
    return (0.5 * (np.asarray(bare, np.float64) + corrected)).astype(np.float32)


class CorrectionGate:
    """Per-series EWMAs of |corrected error|, |model error|, |persistence's error| and |half-corrected
    error|, and the same over a ``SLOW`` times longer run; :meth:`share` says how much of the
    correction to serve, :meth:`persist` where to serve the value at issue instead."""

    def __init__(self, alpha: float = DEFAULT_ALPHA) -> None:
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        self.alpha = float(alpha)
        self._slot: dict[str, int] = {}
        self._ewma = np.zeros((0, ARMS))  # per series, one column per arm
        self._seen = np.zeros(0)  # per series: outcomes persistence was scored on
        # per series and arm, the longer-run means' weighted sums and weights (a mean is their ratio,
        # so it starts from the outcomes themselves, not from a prior)
        self._slow = np.zeros((0, ARMS, 2))
        self.evidence = math.log(2) / -math.log1p(-self.alpha)  # one half-life of outcomes

    def _scored(self, series: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per series, its row (-1: not scored yet) and whether it has one."""
        at = np.array([self._slot.get(s, -1) for s in series], dtype=np.int64)
        return at, at >= 0

    def share(self, series: Sequence[str]) -> np.ndarray:
        """The share of the memory's correction to serve, per series: 1, 0 or ½, whichever of the
        corrected, bare and half-corrected forecasts has erred least (ties in that order; a series not
        scored yet: 1)."""
        at, known = self._scored(series)
        out = np.ones(len(at))
        e = self._ewma[at[known]][:, _SERVED_ARMS]
        scored = ~np.isnan(e).all(axis=1)  # an arm not scored yet (NaN) never wins
        pick = np.ones(len(e))
        pick[scored] = _SERVED_SHARES[np.nanargmin(e[scored], axis=1)]
        out[known] = pick
        return out

    def persist(self, series: Sequence[str]) -> np.ndarray:
        """Whether to serve the value at issue, per series: persistence has erred less than
        ``PERSIST_MARGIN`` times every forecast of the model's that could be served (corrected,
        bare, half-corrected; one not scored yet does not count), over at least :attr:`evidence`
        outcomes (a series scored on fewer: no), unless over the longer run (``SLOW`` times the
        half-life) the model's best has erred less than ``PERSIST_MARGIN`` times persistence."""
        at, known = self._scored(series)
        out = np.zeros(len(at), dtype=bool)
        rows = at[known]
        lately = self._ewma[rows]
        with np.errstate(invalid="ignore", divide="ignore"):
            slow = self._slow[rows, :, 0] / self._slow[rows, :, 1]  # an arm never scored: NaN
            leads = lately[:, PERSISTENCE] < PERSIST_MARGIN * _best_served(lately)
            trails = _best_served(slow) < PERSIST_MARGIN * slow[:, PERSISTENCE]
            out[known] = leads & ~trails & (self._seen[rows] >= self.evidence)
        return out

    def update(
        self,
        names: Sequence[str],
        which: np.ndarray,
        err_corrected: np.ndarray,
        err_bare: np.ndarray,
        err_persistence: np.ndarray | None = None,
        err_half: np.ndarray | None = None,
    ) -> None:
        """Fold in outcomes: outcome ``i`` is of series ``names[which[i]]``, with its absolute error
        with and without the correction, and persistence's and with half the correction (an arm
        without its errors keeps its mean).

        A series' ``n`` outcomes of one call count as ``n`` arrivals of their mean, so a poll holding
        many steps weighs as much as those steps polled one by one.
        """
        which = np.asarray(which, dtype=np.int64)
        if not len(which):
            return
        for s in names:
            if s not in self._slot:
                self._slot[s] = len(self._slot)
        if len(self._slot) > len(self._ewma):
            more = len(self._slot) - len(self._ewma)
            self._ewma = np.r_[self._ewma, np.full((more, ARMS), np.nan)]
            self._seen = np.r_[self._seen, np.zeros(more)]
            self._slow = np.r_[self._slow, np.zeros((more, ARMS, 2))]
        n = np.bincount(which, minlength=len(names)).astype(np.float64)
        unscored = np.full(len(which), np.nan)
        errors = [
            err_corrected,
            err_bare,
            unscored if err_persistence is None else err_persistence,
            unscored if err_half is None else err_half,
        ]
        sums = np.stack(
            [np.bincount(which, weights=np.asarray(e, np.float64), minlength=len(names)) for e in errors],
            axis=1,
        )
        touched = np.flatnonzero(n)
        at = np.array([self._slot[names[i]] for i in touched.tolist()], dtype=np.int64)
        mean = sums[touched] / n[touched, None]
        keep = (1.0 - self.alpha) ** n[touched, None]
        old = self._ewma[at]
        # persistence's mean starts from the model's error, not from its own first outcomes: one
        # lucky forecast would weigh as much as a half-life of them against a model's bad start
        # (the model's arms start alike, from the same outcomes with the memory still empty)
        start = np.where(np.isnan(old), mean, old)
        start[:, PERSISTENCE] = np.where(np.isnan(old[:, PERSISTENCE]), start[:, BARE], old[:, PERSISTENCE])
        new = keep * start + (1.0 - keep) * mean
        self._ewma[at] = np.where(np.isnan(mean), old, new)  # an arm not scored keeps its mean
        if err_persistence is not None:
            self._seen[at] += n[touched]
        # the longer-run means: each arm's weighted sum and its weight decay alike, so their ratio
        # is a mean of the outcomes seen so far until they span many half-lives
        slow_keep = ((1.0 - self.alpha / SLOW) ** n[touched, None])[..., None]
        outcome = np.stack([mean, np.ones_like(mean)], axis=2)  # [series, arm, (sum, weight)]
        slow = self._slow[at]
        self._slow[at] = np.where(
            np.isnan(mean)[..., None], slow, slow_keep * slow + (1.0 - slow_keep) * outcome
        )

    def state_dict(self) -> dict[str, Any]:
        names = sorted(self._slot, key=self._slot.__getitem__)
        return {
            "alpha": self.alpha,
            "series": names,
            "ewma": self._ewma.copy(),
            "seen": self._seen.copy(),
            "slow": self._slow.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._slot = {str(s): i for i, s in enumerate(state["series"])}
        ewma = np.asarray(state["ewma"], dtype=np.float64).reshape(len(self._slot), -1)
        # a state saved before persistence's arm (two columns) or half's (three): those arms start unscored
        self._ewma = np.full((len(self._slot), ARMS), np.nan)
        self._ewma[:, : ewma.shape[1]] = ewma
        self._seen = np.asarray(state.get("seen", np.zeros(len(self._slot))), dtype=np.float64).reshape(-1)
        # a state saved before the longer-run means: they start empty, vetoing nothing until outcomes come
        slow = state.get("slow", np.zeros((len(self._slot), ARMS, 2)))
        self._slow = np.asarray(slow, np.float64).reshape(len(self._slot), ARMS, 2)
