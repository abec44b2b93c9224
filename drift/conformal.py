"""Online conformal prediction intervals per series, lead and target: adaptive conformal inference with
step sizes tuned online (DtACI).

ACI (Gibbs & Candès, NeurIPS 2021): the interval at level ``1 - a`` is the forecast ± the
``(1 - a_t)`` quantile of recent absolute residuals, and after each outcome
``a_t ← a_t + γ (a − miss)``; the long-run miss rate stays within ``(1 + γ) / (γ T)`` of ``a`` whatever
the data do. The step γ trades tracking for noise: a small one barely moves after a change, a large
one makes widths jumpy on stationary data. DtACI (Gibbs & Candès, "Conformal inference for online
prediction with arbitrary distribution shifts", JMLR 2024) runs one ACI expert per γ of a grid and
weighs them by exponential weights on the pinball loss of their miss levels against the realised
level ``β_t`` (the largest ``a`` whose interval would still have held the truth), with a fixed-share
mix so that a fast expert can take over within a local interval of ``I`` outcomes after a change.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptcast.drift.passes import occurrence
from adaptcast.drift.rows import Rows, as_index

__all__ = ["ConformalParams", "OnlineConformal", "level_name", "winkler"]

DEFAULT_GAMMA = 0.005  # the outer ACI step on the issued intervals' own misses (see OnlineConformal)
# The paper's grid: 0.001 (steady, ~ the single γ of the 2021 experiments) to 0.128 (after a change
# that makes every forecast miss, an 80 % level reaches the widest residual held within ~8 misses).
DEFAULT_GAMMAS = (0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128)
# Local interval I of the regret bound, here the horizon the after-event coverage is judged on; it
# sets the fixed-share rate σ = 1 / (2I) and the learning rate η of the paper.
DEFAULT_INTERVAL = 100
DEFAULT_WINDOW = 200  # residuals kept per (series, lead, target): enough for a 95 % quantile's tail
# Fewest residuals a ring may keep: with fewer than 20 a 95 % quantile is always the largest residual.
MIN_WINDOW = 20
# Own residuals a series needs before the pooled ring it reads is rescaled to its own errors.
MIN_SCALE = 20
# Validation residuals a series needs at a reseed for their mean to stand for its scale until it has
# MIN_SCALE of its own (and for its share of the pool to be rescaled to the pool's unit).
MIN_PRIOR = 10
# A residual more than this many times the ring's REPEATS-th largest is a glitch's (the outcome was a
# sensor's 1e12): no interval reaches it, as one such outcome would otherwise widen a steered 95 %
# band to it until the ring forgets it. REPEATS of them are a change, and are reached.
IMPLAUSIBLE = 1000.0
REPEATS = 5
# Own residuals above the one a ring matches the pool's quantile at: the highest quantile its residuals
# can say (at MIN_SCALE, the 80th percentile), and never a glitch's (at most REPEATS - 1 of those).
SCALE_RANK = REPEATS - 1
PASSES_PER_BLOCK = 32  # outcomes per ring counted against one sorted copy of the rings (bounds memory)


def level_name(level: float) -> str:
    """``0.8`` → ``"80"``, ``0.975`` → ``"97.5"``: the key of a level in records, columns and labels."""
    return f"{level * 100:g}"


def winkler(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> np.ndarray:
    """Interval (Winkler) score per point: width plus ``2/a`` times the distance outside (lower is better)."""
    a = 1.0 - level
    return (hi - lo) + (2.0 / a) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))


@dataclass(frozen=True)
class ConformalParams:
    """Levels, the DtACI experts' step sizes (none: no experts), the outer ACI step on the issued
    intervals' misses (0 with no experts: a rolling split-conformal quantile), DtACI's local
    interval I, and the residuals kept per lead."""

    levels: tuple[float, ...] = (0.8, 0.95)
    gammas: tuple[float, ...] = DEFAULT_GAMMAS
    gamma: float = DEFAULT_GAMMA
    window: int = DEFAULT_WINDOW
    interval: int = DEFAULT_INTERVAL

    def __post_init__(self) -> None:
        if not self.levels or any(not 0.0 < lv < 1.0 for lv in self.levels):
            raise ValueError(f"levels must lie strictly between 0 and 1, got {list(self.levels)}")
        if any(not (math.isfinite(g) and 0.0 < g < 1.0) for g in self.gammas):
            raise ValueError(f"every gamma must be in (0, 1), got {list(self.gammas)}")
        if not (math.isfinite(self.gamma) and 0.0 <= self.gamma < 1.0):
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if self.window < MIN_WINDOW:
            raise ValueError(f"window must be >= {MIN_WINDOW}, got {self.window}")
        if self.interval < 1:
            raise ValueError(f"interval must be >= 1, got {self.interval}")

    def eta(self) -> np.ndarray:
        """DtACI's learning rate per level, ``sqrt(3/I) sqrt((log(k I) + 2) / ((1 − a)² a³))``."""
        a = 1.0 - np.asarray(self.levels)
        k, i = max(len(self.gammas), 1), self.interval
        return np.sqrt(3.0 / i) * np.sqrt((math.log(k * i) + 2.0) / ((1.0 - a) ** 2 * a**3))


class _Scores:
    """Fixed-size rings of absolute residuals ``[horizon, n_targets, window]`` filled lead by lead."""

    def __init__(self, values: np.ndarray, count: np.ndarray):
        self.values = values
        self.count = count  # residuals ever added per lead
        self._ordered: np.ndarray | None = None  # ``values`` sorted, until they change

    @classmethod
    def empty(cls, horizon: int, n_targets: int, window: int) -> _Scores:
        return cls(np.full((horizon, n_targets, window), np.nan), np.zeros(horizon, dtype=np.int64))

    def add(self, lead: int, scores: np.ndarray) -> None:
        """Append ``scores [n, n_targets]`` at ``lead`` (0-based), oldest first; the ring keeps the newest."""
        w = self.values.shape[2]
        kept = scores[-w:]
        self.values[lead, :, (self.count[lead] + np.arange(len(kept))) % w] = kept
        self.count[lead] += len(kept)
        self._ordered = None

    def put(self, values: np.ndarray, count: np.ndarray) -> None:
        """Replace the rings and counts with ones appended to elsewhere."""
        self.values[...], self.count[...] = values, count
        self._ordered = None

    def ordered(self) -> np.ndarray:
        """The rings sorted ascending, NaN last (read-only), sorted once per change however often read."""
        if self._ordered is None:
            self._ordered = np.sort(self.values, axis=2)
            self._ordered.flags.writeable = False
        return self._ordered

    @property
    def filled(self) -> np.ndarray:
        """Residuals held per lead, ``[horizon]``."""
        return np.minimum(self.count, self.values.shape[2])


@dataclass(frozen=True)
class _Experts:
    """One series' miss levels (views of the calibrator's rows): per expert (γ), level, lead and
    target its level and weight, and per level, lead and target the outer ACI offset."""

    alpha: np.ndarray  # [K, L, H, T]
    weight: np.ndarray  # [K, L, H, T]
    offset: np.ndarray  # [L, H, T]


# What a series' own residuals and its miss levels are made of, each started afresh on its own.
_RING_FIELDS = ("values", "count", "fresh")
_EXPERT_FIELDS = ("alpha", "weight", "offset")
_LEVEL_FIELDS = ("alpha", "weight")  # what a new reading starts afresh; the offset outlives it


class OnlineConformal:
    """Intervals around (corrected) forecasts for many series, calibrated online by DtACI.

    Per series, lead and target: a ring of the last ``window`` absolute residuals and, per level and
    γ, an ACI miss level with its weight; the interval is drawn at their weighted mean plus an outer
    ACI offset stepped by ``gamma`` on the issued interval's own misses. The experts learn from
    ``β`` on the ring at the outcome (a forecast at lead h was issued h outcomes earlier, from a
    slightly different ring) and their weighted mean carries no coverage guarantee of its own; the
    offset restores ACI's long-run guarantee on the intervals actually issued, and is all there is
    without experts (plain ACI). A series' lead uses its own residuals once its ring is full
    (``window`` of them) and a pooled ring before (seeded from a new model's validation residuals by
    :meth:`reseed`, then taking every series' residuals): a ring of a few residuals, which after a
    swap are also the few newest and so alike when errors persist, puts a high level's quantile at or
    near its largest residual, which understates the tail and leaves the steering no room to widen
    it (at 95 % with 20 residuals, none). The pool it reads is rescaled to the series' scale: once it
    holds ``MIN_SCALE``, its own residuals over the pool's at the highest quantile they can say
    (``SCALE_RANK``); before that, when the validation residuals said whose they were, the mean of
    its own among them (its prior, kept across swaps) over the pool's unit. The pool then gives the
    tail's shape and the series its scale. Once the series holds ``MIN_SCALE``, its own ring's
    quantile floors the band, so a tail the pool lacks (a series whose errors burst) is still
    reached, and its experts' levels start afresh, the reading they were learnt on being gone. An
    expert's level is kept in ``[−γ, 1 + γ]``, the range ACI's own updates stay in when a level at or
    below 0 gives an interval that never misses (Gibbs & Candès 2021, Lemma 4.1): here it gives the
    widest residual held, which can miss, and an unbounded level would keep the interval there long
    after a change has passed; clipping at 0 instead would forget part of each miss and under-cover
    at 95 %. The interval uses the weighted mean of the experts' levels (the paper's deterministic
    variant: the same inputs give the same records).
    """

    def __init__(self, horizon: int, n_targets: int = 1, params: ConformalParams | None = None):
        self.params = params or ConformalParams()
        self.horizon, self.n_targets = int(horizon), int(n_targets)
        self._nominal = 1.0 - np.asarray(self.params.levels)[:, None, None]  # [L, 1, 1]
        # shaped for the steps' arrays, which hold the rings on their last axis: [K, L, T, rings]
        self._gammas = np.asarray(self.params.gammas)[:, None, None, None]  # [K, 1, 1, 1]
        self._eta = self.params.eta()[:, None, None]  # [L, 1, 1]
        self._share = 1.0 / (2.0 * self.params.interval)  # DtACI's σ
        # an expert's ACI step after a miss (a hit steps γ less), and the range its level is kept in
        self._minus_gammas = -self._gammas  # [K, 1, 1, 1]
        self._step_miss = self._gammas * self._nominal  # [K, L, 1, 1]
        self._floor, self._ceiling = -self._gammas, 1.0 + self._gammas
        self.pooled = self._new_scores()
        self.unit = np.full((self.horizon, self.n_targets), np.nan)  # the pool's scale: what priors read
        h, t, w, k = self.horizon, self.n_targets, self.params.window, len(self.params.gammas)
        experts = (k, len(self.params.levels), h, t)
        # every series' state, a row each: its own residuals (``ring``: it has some) and their sorted
        # copy (``fresh``: up to date), its experts' miss levels (``steered``: it has them)
        self._rows = Rows(
            {
                "ring": np.array(False),
                "prior": np.full((h, t), np.nan),  # its validation residuals' mean, NaN: none
                "values": np.full((h, t, w), np.nan),
                "count": np.zeros(h, dtype=np.int64),
                "fresh": np.array(False),
                "sorted": np.full((h, t, w), np.nan),
                "steered": np.array(False),
                "alpha": np.broadcast_to(self._nominal[None], experts).copy(),
                "weight": np.full(experts, 1.0 / max(k, 1)),
                "offset": np.zeros(experts[1:]),
            }
        )

    def _new_scores(self) -> _Scores:
        return _Scores.empty(self.horizon, self.n_targets, self.params.window)

    @property
    def series(self) -> dict[str, _Scores]:
        """Each series' own residual rings, for inspection (read-only views of its row)."""
        rows = self._rows
        out = {}
        for s, r in rows.index.items():
            if rows["ring"][r]:
                values, count = rows["values"][r], rows["count"][r]
                values.flags.writeable = count.flags.writeable = False
                out[s] = _Scores(values, count)
        return out

    @property
    def experts(self) -> dict[str, _Experts]:
        """Each steered series' miss levels and weights (views of its row)."""
        rows = self._rows
        return {
            s: _Experts(rows["alpha"][r], rows["weight"][r], rows["offset"][r])
            for s, r in rows.index.items()
            if rows["steered"][r]
        }

    @property
    def priors(self) -> dict[str, np.ndarray]:
        """Each series' prior scale ``[horizon, n_targets]``, where it has one (copies)."""
        prior = self._rows["prior"]
        return {s: prior[r].copy() for s, r in self._rows.index.items() if np.isfinite(prior[r]).any()}

    def _own(self, names: Sequence[str], flag: str, fields: Sequence[str]) -> np.ndarray:
        """Rows of ``names`` with ``flag`` set, added where new; those without it start ``fields`` afresh."""
        rows = self._rows.add(names)
        new = rows[~self._rows[flag][rows]]
        if len(new):
            self._rows.reset(new, fields)
            self._rows[flag][new] = True
        return rows

    def _sorted(self, rows: np.ndarray) -> np.ndarray:
        """The rings of ``rows`` sorted ascending, NaN last ``[n, H, T, W]``: a poll reads them twice
        between changes (its outcomes' levels, then the next intervals), so each is sorted once per
        change, the changed ones in one call."""
        r = self._rows
        stale = as_index(rows[~r["fresh"][rows]])
        if isinstance(stale, slice):  # in place: no array the size of the rings is allocated
            r["sorted"][stale] = r["values"][stale]
            r["sorted"][stale].sort(axis=3)
        elif len(stale):
            r["sorted"][stale] = np.sort(r["values"][stale], axis=3)
        r["fresh"][stale] = True
        return r["sorted"][as_index(rows)]

    # ---- intervals ------------------------------------------------------------------------------
    def half_widths(self, series: Sequence[str]) -> np.ndarray:
        """Half-widths ``[B, levels, horizon, n_targets]`` for the next forecasts of ``series``, never
        narrower at a higher level than at a lower one (nested bands).

        NaN where no residual of that lead is known yet (no model has been validated).
        """
        b, h, w = len(series), self.horizon, self.params.window
        alpha = np.broadcast_to(self._nominal, (b, len(self.params.levels), h, self.n_targets)).copy()
        ratio = np.ones((b, h, self.n_targets))  # what each reads the pool at (its own scale, once known)
        state = self._rows
        found = state.find(series)  # each series' row, −1 without one
        known = np.flatnonzero(found >= 0)
        own = known[state["ring"][found[known]]]
        pooled, pool_n = self.pooled.ordered(), self.pooled.filled
        ratio[known] = _prior_ratio(state["prior"][found[known]], self.unit)
        if len(own):
            rows = found[own]
            filled = np.minimum(state["count"][rows], w)  # [S, H]
            values = self._sorted(rows)  # [S, H, T, W]
            use = filled >= w
            if not use.all():
                ratio[own] = self._pool_ratio(values, filled, (pooled, pool_n), ratio[own])
        steered = known[state["steered"][found[known]]]
        if len(steered):
            rows = found[steered]
            mixed = (
                (state["weight"][rows] * state["alpha"][rows]).sum(axis=1)
                if self.params.gammas
                else self._nominal
            )
            alpha[steered] = mixed + state["offset"][rows]
        # each quantile is read where it lives: a full ring's own, else the pool's, scaled
        n = np.broadcast_to(pool_n, (b, h))
        out = _quantile(np.broadcast_to(pooled, (b, *pooled.shape)), n, alpha) * ratio[:, None]
        if len(own):
            mine = _quantile(values, filled, alpha[own])
            floor = (filled >= MIN_SCALE)[:, None, :, None]
            out[own] = np.where(
                use[:, None, :, None], mine, np.where(floor, np.fmax(out[own], mine), out[own])
            )
        # levels are steered apart, so a higher one could come out narrower: widen it to the lower's
        order = np.argsort(self.params.levels)
        out[:, order] = np.maximum.accumulate(out[:, order], axis=1)
        return out

    def _pool_ratio(
        self,
        values: np.ndarray,
        filled: np.ndarray,
        pooled: tuple[np.ndarray, np.ndarray],
        otherwise: np.ndarray,
    ) -> np.ndarray:
        """``[S, H, T]``: what series with rings ``values`` (sorted, holding ``filled`` ``[S, H]``) scale
        the pool (its rings sorted ``[H, T, W]`` and how many each holds) by while not full
        (``_pool_scale``), else ``otherwise`` ``[S, H, T]`` (their prior's)."""
        s, h = filled.shape
        flat_rings = values.reshape(-1, *values.shape[2:])  # [S * H, T, W]
        return _pool_scale(
            flat_rings,
            np.arange(len(flat_rings)),
            filled.ravel(),
            pooled,
            np.tile(np.arange(h), s),
            self.params.window,
            otherwise.reshape(s * h, -1),
        ).reshape(s, h, -1)

    def intervals(self, series: Sequence[str], yhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lo, hi`` ``[B, levels, horizon, n_targets]`` around ``yhat`` ``[B, horizon, n_targets]``."""
        half = self.half_widths(series)
        return yhat[:, None] - half, yhat[:, None] + half

    # ---- learning from outcomes -----------------------------------------------------------------------
    def update(self, series: str, lead: int, residual: np.ndarray, half_width: np.ndarray | None) -> None:
        """One outcome at ``lead`` (1-based): ``residual = y − yhat`` ``[n_targets]``, and the
        half-widths ``[levels, n_targets]`` the forecast was issued with (None: it had none, and
        only the residual is kept)."""
        half = None if half_width is None else np.asarray(half_width, dtype=np.float64)[None]
        self.update_many(
            [series], np.zeros(1, dtype=np.int64), np.array([lead]), np.atleast_2d(residual), half
        )

    def update_many(
        self,
        names: Sequence[str],
        which: np.ndarray,
        leads: np.ndarray,
        residuals: np.ndarray,
        half_widths: np.ndarray | None,
    ) -> None:
        """Outcomes of one call, in order: outcome ``i`` is of
        series ``names[which[i]]`` at ``leads[i]`` (1-based), ``residuals`` ``[n, n_targets]`` and the
        half-widths ``[n, levels, n_targets]`` its forecast was issued with (None: none had any).

        Outcomes of one call arrive together, so they learn from the pooled ring as it was when the
        call began; each (series, lead)'s own ring takes its outcomes in order, and the pooled ring
        takes them all at the end, in order. One outcome per call is exactly :meth:`update`. Each
        outcome's realised level is counted against its ring as the call began, adjusted for the
        values its ring's earlier outcomes replaced; only the miss levels go pass by pass (the k-th
        outcome of every (series, lead) in pass k).
        """
        if not len(which):
            return
        scores = np.abs(np.asarray(residuals, dtype=np.float64))  # [n, T]
        lead0 = np.asarray(leads, dtype=np.int64) - 1
        which = np.asarray(which, dtype=np.int64)
        used, slot = np.unique(which, return_inverse=True)  # slot: each outcome's series in ``rings``
        series = [names[u] for u in used]
        rows = self._own(series, "ring", _RING_FIELDS)
        ordered: np.ndarray | None = self._sorted(rows)  # as the call began
        at_rows = as_index(rows)  # a slice, usually: the rings are then appended to in place
        values, counts = self._rows["values"][at_rows], self._rows["count"][at_rows]  # [U, H, T, W], [U, H]
        scaled_before = counts >= MIN_SCALE
        ring = slot * self.horizon + lead0  # each outcome's (series, lead), flat
        rank = occurrence(ring)  # its place among that ring's outcomes of this call
        pooled = self.pooled.ordered(), self.pooled.filled  # as the call began
        prior = _prior_ratio(self._rows["prior"][at_rows], self.unit)  # [U, H, T]
        beta = np.empty_like(scores)
        block = min(values.shape[3], PASSES_PER_BLOCK)  # within a block no ring slot is written twice
        for first in range(0, int(rank.max()) + 1, block):
            at = np.flatnonzero((rank >= first) & (rank < first + block))
            beta[at] = _realised_level(
                values, counts, pooled, prior, ring[at], rank[at] - first, scores[at], ordered
            )
            _append(values, counts, slot[at], lead0[at], scores[at], rank[at] - first)
            ordered = None  # the next block's rings have changed
        if not isinstance(at_rows, slice):
            self._rows["values"][at_rows], self._rows["count"][at_rows] = values, counts
        self._rows["fresh"][at_rows] = False
        if not np.isfinite(self.unit).any():  # a pool of validation residuals in a unit stays as seeded
            all_v, all_c = self.pooled.values[None], self.pooled.count[None]  # appended to in place
            _append(all_v, all_c, np.zeros_like(slot), lead0, scores)
            self.pooled.put(all_v[0], all_c[0])
        if half_widths is not None and (self.params.gammas or self.params.gamma):
            half = np.asarray(half_widths, dtype=np.float64)
            self._learn_levels(series, ring, rank, scores, beta, half)
        self._rescaled(rows, ~scaled_before & (self._rows["count"][at_rows] >= MIN_SCALE))

    def _rescaled(self, rows: np.ndarray, crossed: np.ndarray) -> None:
        """Restart the experts' levels and weights of the (row, lead)s ``crossed`` ``[U, H]``, which now
        read the pool at their own scale (before: at their prior's, or as it is): levels learnt against
        the old reading would count again a scale the new one has taken up (after a change of variance,
        bands 3-4x too wide for days). The outer offset is kept, as at a swap."""
        u, lead = np.nonzero(crossed)
        r = rows[u]
        keep = self._rows["steered"][r]
        r, lead = r[keep], lead[keep]
        if not len(r):
            return
        for name in _LEVEL_FIELDS:
            start = self._rows.start(name)[:, :, lead]  # [K, L, n, T]: the experts' start at those leads
            self._rows[name][r, :, :, lead] = np.moveaxis(start, 2, 0)

    def _learn_levels(
        self,
        series: list[str],
        ring: np.ndarray,
        rank: np.ndarray,
        scores: np.ndarray,
        beta: np.ndarray,
        half: np.ndarray,
    ) -> None:
        """The experts' and the outer offset's steps for outcomes at flat (series, lead) ``ring``, the
        ``rank``-th of it, with realised levels ``beta`` ``[n, T]`` and issued half-widths ``half``
        ``[n, L, T]``. The levels of the (series, lead)s with most outcomes come first, so that pass k
        updates a leading slice of them in place."""
        rows = self._own(series, "steered", _EXPERT_FIELDS)
        alpha, weight, offset = self._rows["alpha"], self._rows["weight"], self._rows["offset"]
        rings, which, size = np.unique(ring, return_inverse=True, return_counts=True)
        order = np.argsort(-size, kind="stable")
        place = np.empty_like(order)
        place[order] = np.arange(len(order))
        slot, ld = np.divmod(rings[order], self.horizon)
        s = rows[slot]  # each (series, lead)'s row in the state, and its lead
        # the steps run with the rings on the last axis (a contiguous inner loop for every broadcast)
        a = np.ascontiguousarray(np.moveaxis(alpha[s, :, :, ld], 0, -1))  # [K, L, T, G]
        wt = np.ascontiguousarray(np.moveaxis(weight[s, :, :, ld], 0, -1))
        off = np.ascontiguousarray(np.moveaxis(offset[s, :, ld], 0, -1))  # [L, T, G]
        active = (size[order][:, None] > np.arange(int(rank.max()) + 1)).sum(axis=0)  # rings in each pass
        seq = np.lexsort((place[which], rank))  # outcomes pass by pass, each pass in the rings' order
        h, b = half[seq], beta[seq]  # [n, L, T], [n, T]
        known = np.isfinite(h) & np.isfinite(b)[:, None]
        miss = np.moveaxis(scores[seq][:, None] > h, 0, -1)  # [L, T, n]
        known, b = np.moveaxis(known, 0, -1), np.nan_to_num(b).T  # [L, T, n], [T, n]
        ends = np.cumsum(active).tolist()
        for m, first, end in zip(active.tolist(), [0, *ends[:-1]], ends, strict=True):
            if self.params.gammas:
                self._learn(a[..., :m], wt[..., :m], b[:, first:end], known[..., first:end])
            self._steer(off[..., :m], miss[..., first:end], known[..., first:end])
        alpha[s, :, :, ld], weight[s, :, :, ld] = np.moveaxis(a, -1, 0), np.moveaxis(wt, -1, 0)
        offset[s, :, ld] = np.moveaxis(off, -1, 0)

    def _steer(self, offset: np.ndarray, miss: np.ndarray, known: np.ndarray) -> None:
        """Outer ACI step, in place, of ``offset`` ``[L, T, P]`` on the issued intervals' misses
        ``[L, T, P]`` where ``known``; the offset is kept in ``[−1, 1]``, which bounds the long-run miss
        rate's distance from nominal by ``(2 + γ) / (γ T)`` and keeps a stretch of misses from pinning
        it for long."""
        stepped = self._nominal - miss
        stepped *= self.params.gamma
        stepped += offset
        np.clip(stepped, -1.0, 1.0, out=stepped)
        _put(offset, stepped, known)

    def _learn(self, alpha: np.ndarray, weight: np.ndarray, beta: np.ndarray, known: np.ndarray) -> None:
        """DtACI step, in place, of ``alpha``/``weight`` ``[K, L, T, P]`` for realised levels ``beta``
        ``[T, P]`` where ``known`` ``[L, T, P]``: exponential weights on each expert's pinball loss with
        a fixed share, then each expert's ACI step."""
        gap = beta - alpha
        # −η × pinball loss (nominal·gap − min(gap, 0)), then the weights it leaves, all in place
        mixed = np.minimum(gap, 0.0)
        mixed -= gap * self._nominal
        mixed *= self._eta
        np.exp(mixed, out=mixed)
        mixed *= weight
        # the fixed share, normalised: ((1 − σ) w + σ Σw / K) / Σw, whose own sum is Σw
        mixed *= (1.0 - self._share) / mixed.sum(axis=0)
        mixed += self._share / len(self.params.gammas)
        # each expert's ACI step a + γ (nominal − [a ≥ β]), kept in [−γ, 1 + γ]
        stepped = np.less_equal(gap, 0.0) * self._minus_gammas
        stepped += self._step_miss
        stepped += alpha
        np.maximum(stepped, self._floor, out=stepped)
        np.minimum(stepped, self._ceiling, out=stepped)
        _put(alpha, stepped, known)
        _put(weight, mixed, known)

    def reseed(self, residuals: np.ndarray, series: Sequence[str] | None = None) -> None:
        """A new model serves: forget every residual and every expert's level and weight; pool its
        validation residuals ``[n, horizon, n_targets]`` (``y − yhat`` on windows it was not fitted
        on, oldest first; ``series``: whose each one is, when known). Each series keeps its outer
        offset: it tracks how far intervals drawn from fresh residuals miss, a bias (validation
        residuals of a new model understate its live errors) that a swap does not remove, and a
        model that swaps often would never let a reset offset gather the outcomes to correct it.

        With ``series``, one with ``MIN_PRIOR`` residuals here gets their mean as its prior scale;
        the pool's unit is the mean of them all, and each series' share is rescaled to it: the pool
        of series of unlike scales then holds one tail's shape, not a mixture whose tail is the
        noisiest series'. The mean, not the median: a series idle half the time (a solar plant at
        night) has a median error near 0, and its share divided by it would be all tail. Such a
        pool takes no live residual (each would need its series' scale, and a scale learnt on a
        calm stretch makes the next busy one's errors the pool's tail for every series); without
        ``series`` the pool holds raw residuals and takes every live one."""
        scores = np.abs(np.asarray(residuals, dtype=np.float64))
        self.unit = np.full((self.horizon, self.n_targets), np.nan)  # no unit: the pool holds raw residuals
        if series is not None and len(scores):
            scores = self._set_priors(scores, series)
        self.pooled = self._new_scores()
        for lead in range(self.horizon):
            self.pooled.add(lead, scores[:, lead, :])
        self.restart()

    def restart(self) -> None:
        """A new model serves: forget every series' residuals and every expert's level and weight,
        keep each series' offset (see :meth:`reseed`). A model served as given (a checkpoint, a hot
        swap) has no validation residuals: the pool, its unit and the priors are kept, the old
        model's errors being a better guess of the new one's than none (its first forecasts would
        have no bounds)."""
        state = self._rows
        state["ring"][:] = False
        steered = np.flatnonzero(state["steered"])
        state.reset(steered, _LEVEL_FIELDS)

    def _set_priors(self, scores: np.ndarray, series: Sequence[str]) -> np.ndarray:
        """Each series' prior from its absolute residuals among ``scores`` ``[n, H, T]`` (``series``
        ``[n]``; one with fewer than ``MIN_PRIOR`` keeps the prior it had), the pool's unit, and
        ``scores`` in it."""
        names, group, size = np.unique(np.asarray(series), return_inverse=True, return_counts=True)
        rows = self._rows.add([str(n) for n in names])
        prior = self._rows["prior"]
        starts = np.concatenate([[0], np.cumsum(size)[:-1]])  # each series' first in ``group`` order
        sums = np.add.reduceat(scores[np.argsort(group, kind="stable")], starts, axis=0)  # [G, H, T]
        enough = size >= MIN_PRIOR
        prior[rows[enough]] = sums[enough] / size[enough, None, None]
        self.unit = scores.mean(axis=0)
        return scores / _prior_ratio(prior[rows], self.unit)[group]

    def forget(self, names: Sequence[str]) -> None:
        """Drop series this process no longer serves."""
        self._rows.drop(names)

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every ring, miss level and weight as arrays and numbers (pickle-free; see drift.serialize)."""
        p = self.params
        return {
            "kind": "online_conformal",
            "params": {
                "levels": list(p.levels),
                "window": p.window,
                "gammas": list(p.gammas),
                "gamma": p.gamma,
            },
            "shape": [self.horizon, self.n_targets],
            "pooled": _scores_state(self.pooled),
            "series": {s: _scores_state(sc) for s, sc in self.series.items()},
            "alpha": {s: ex.alpha.copy() for s, ex in self.experts.items()},
            "weight": {s: ex.weight.copy() for s, ex in self.experts.items()},
            "offset": {s: ex.offset.copy() for s, ex in self.experts.items()},
            "prior": {s: prior.copy() for s, prior in self.priors.items()},
            "unit": self.unit.copy(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` of a calibrator with the same levels, window and shape. Miss
        levels saved under other step sizes (or by the single-γ calibrator) restart at nominal."""
        if state.get("kind") != "online_conformal":
            raise ValueError("not an online-conformal state")
        saved = state["params"]
        if (
            [float(v) for v in saved["levels"]] != list(self.params.levels)
            or int(saved["window"]) != self.params.window
            or [int(v) for v in state["shape"]] != [self.horizon, self.n_targets]
        ):
            raise ValueError(f"calibrator settings differ: {saved}, shape {state['shape']}")
        pooled = self._new_scores()
        pooled.put(state["pooled"]["values"], state["pooled"]["count"])
        self.pooled = pooled
        self._rows.clear()
        rows = self._rows
        for s, d in state["series"].items():
            (r,) = self._own([s], "ring", _RING_FIELDS)
            rows["values"][r], rows["count"][r] = d["values"], d["count"]
        self.unit = np.asarray(state.get("unit", np.full_like(self.unit, np.nan)), dtype=np.float64)
        for s, prior in state.get("prior", {}).items():  # none in a state saved before priors
            (r,) = rows.add([s])
            rows["prior"][r] = prior
        if [float(g) for g in saved.get("gammas", [])] == list(self.params.gammas) and "offset" in state:
            for s, alpha in state["alpha"].items():
                (r,) = self._own([s], "steered", _EXPERT_FIELDS)
                rows["alpha"][r], rows["weight"][r], rows["offset"][r] = (
                    alpha,
                    state["weight"][s],
                    state["offset"][s],
                )


def _scores_state(sc: _Scores) -> dict[str, np.ndarray]:
    return {"values": sc.values.copy(), "count": sc.count.copy()}


def _put(dst: np.ndarray, new: np.ndarray, where: np.ndarray) -> None:
    """``dst[...] = new`` where ``where`` (broadcast against ``dst``), unchanged elsewhere."""
    if where.all():  # the common case: every outcome had an interval and a level
        dst[...] = new
    else:
        np.copyto(dst, new, where=np.broadcast_to(where, dst.shape))


def _realised_level(
    values: np.ndarray,
    counts: np.ndarray,
    pooled: tuple[np.ndarray, np.ndarray],
    prior: np.ndarray,
    ring: np.ndarray,
    rank: np.ndarray,
    scores: np.ndarray,
    ordered: np.ndarray | None = None,
) -> np.ndarray:
    """DtACI's ``β`` ``[P, T]`` of outcomes ``scores`` ``[P, T]``, the ``rank``-th of their flat (series,
    lead) ``ring`` in a block of passes, from the rings ``values`` ``[U, H, T, W]`` (``counts``
    ``[U, H]``; ``ordered``: them sorted, if the caller has it) as the block began, or from
    ``pooled`` (its rings sorted ``[H, T, W]`` and how many each holds) while a ring is not yet full,
    rescaled as :meth:`OnlineConformal.half_widths` reads it (``prior``: each ring's prior over the
    pool's unit ``[U, H, T]``, :func:`_prior_ratio`).

    β is the level below which the interval from the ``n`` residuals held holds the score; NaN
    without residuals. With :func:`_quantile`'s rank ``⌈(1 − a)(n + 1)⌉`` a level ``a`` holds it iff
    ``a < 1 − c / (n + 1)``, ``c`` the residuals below it; past the largest no level does, and
    ``β = −1`` lies below every expert's (each ≥ −γ), which shifts every expert's pinball loss alike.
    An outcome's ring has taken the ring's earlier outcomes in the block, each over the oldest value.
    """
    h, t, w = values.shape[1:]
    flat = values.reshape(-1, t, w)
    start = counts.ravel()[ring]  # residuals the ring had taken when the block began
    own = np.minimum(start + rank, w)
    use_own = own >= w
    floor = ~use_own & (own >= MIN_SCALE)  # a ring not full whose own quantile floors the pool's
    below = np.zeros(scores.shape, dtype=np.int64)
    sub = np.flatnonzero(~use_own & (np.minimum(start, w) >= MIN_SCALE))  # read the pool, rescaled
    if ordered is not None:
        ordered = ordered.reshape(-1, t, w)
    elif use_own.any() or floor.any() or len(sub):
        ordered = np.sort(flat, axis=2)
    else:
        ordered = flat
    if use_own.any() or floor.any():
        below = _count_below(ordered, ring, scores)
        if rank.max() > 0:
            below += _replaced_below(flat, counts.ravel(), ring, rank, scores)
    n_own = own.astype(np.float64)[:, None]
    beta = np.where(below < n_own, 1.0 - below / (n_own + 1), -1.0)  # read where use_own or floor
    if not use_own.all():
        lead0 = ring % h
        # [P, T]: the pool rescaled to the ring's own residuals if enough, else to its prior
        ratio = prior.reshape(-1, t)[ring]
        if len(sub):  # each ring's values as the block began: min(start, w) of them
            ratio[sub] = _pool_scale(
                ordered, ring[sub], np.minimum(start[sub], w), pooled, lead0[sub], w, ratio[sub]
            )
        from_pool = _count_below(pooled[0], lead0, scores / np.where(ratio > 0, ratio, np.inf))
        n_pool = pooled[1][lead0].astype(np.float64)[:, None]
        beta_pool = np.where(from_pool < n_pool, 1.0 - from_pool / (n_pool + 1), -1.0)
        beta_pool = np.where(n_pool > 0, beta_pool, np.nan)
        # an interval the larger of two holds the score below the larger of their two levels
        beta = np.where(use_own[:, None], beta, np.where(floor[:, None], np.fmax(beta, beta_pool), beta_pool))
    return beta


def _prior_ratio(prior: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """``prior`` over ``unit`` (broadcast alike) where both are positive, else 1: what a series without
    ``MIN_SCALE`` residuals of its own scales the pool by, and divides its residuals by in the pool."""
    ok = (prior > 0) & (unit > 0)  # False for NaN
    return np.where(ok, prior / np.where(ok, unit, 1.0), 1.0)


def _pool_scale(
    rings: np.ndarray,
    rows: np.ndarray,
    n: np.ndarray,
    pooled: tuple[np.ndarray, np.ndarray],
    lead0: np.ndarray,
    window: int,
    otherwise: np.ndarray,
) -> np.ndarray:
    """``[k, T]``: what rings ``rows`` of ``rings`` ``[R, T, W]`` (sorted ascending, NaN last; holding
    ``n`` ``[k]`` values each, of leads ``lead0``) scale their reading of ``pooled`` (its rings sorted
    ``[H, T, W]`` and how many each holds) by while not full: once they hold ``MIN_SCALE``, their
    ``SCALE_RANK + 1``-th largest residual over the pool's value at the same quantile, else
    ``otherwise`` ``[k, T]`` (:func:`_prior_ratio`). The pool gives the tail's shape, the series its
    scale, matched at the highest quantile its own residuals can say: a pool whose tail is heavier
    than the series' (its validation windows held a shift's errors) would, matched at the median,
    widen every band read from its tail."""
    ratio = otherwise.copy()
    scaled = np.flatnonzero((n >= MIN_SCALE) & (n < window))
    if len(scaled):
        t = np.arange(rings.shape[1])[None, :]
        k = n[scaled]
        at = k - SCALE_RANK - 1  # [k]: the own value's place, ascending
        mine = rings[rows[scaled][:, None], t, at[:, None]]  # [k, T]
        lead = lead0[scaled]
        held = pooled[1][lead]
        place = np.clip(np.rint(at / (k - 1) * (held - 1)), 0, None).astype(np.int64)
        theirs = np.where((held > 0)[:, None], pooled[0][lead[:, None], t, place[:, None]], np.nan)
        ok = theirs > 0
        ratio[scaled] = np.where(ok, mine / np.where(ok, theirs, 1.0), 1.0)
    return ratio


def _replaced_below(
    rings: np.ndarray, counts: np.ndarray, ring: np.ndarray, rank: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """``[P, T]``: for the ``rank``-th outcome of flat ring ``ring`` in a block, how many of its ring's
    earlier outcomes in the block are below its score, less how many of the values they replaced
    (the oldest of ``rings`` ``[G, T, W]``, which had taken ``counts`` ``[G]``) were."""
    t, w = rings.shape[1:]
    used, which = np.unique(ring, return_inverse=True)
    steps = int(rank.max()) + 1
    mine = np.full((t, steps, len(used)), np.nan)  # [T, rank, ring]: rings last, for long inner loops
    mine[:, rank, which] = scores.T
    slots = (counts[used][None, :] + np.arange(steps)[:, None]) % w  # [rank, ring]
    old = rings[used[None, :], :, slots].transpose(2, 0, 1)  # [T, rank, ring]: what each one replaced
    out = np.zeros(mine.shape, dtype=np.int64)
    for j in range(steps - 1):
        later = mine[:, j + 1 :]
        out[:, j + 1 :] += (mine[:, j : j + 1] < later).view(np.int8)
        out[:, j + 1 :] -= (old[:, j : j + 1] < later).view(np.int8)
    return out[:, rank, which].T


def _count_below(sorted_: np.ndarray, ring: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """``[P, T]``: how many of ring ``ring[i]``'s values ``sorted_[ring[i], t]`` (ascending, NaN last)
    are below ``scores[i, t]``, by a binary search of every outcome at once."""
    t, w = sorted_.shape[1:]
    base = ((ring * t)[:, None] + np.arange(t)) * w  # [P, T] where each searched row starts
    flat = sorted_.ravel()
    below = np.zeros(scores.shape, dtype=np.int64)
    step = 1 << (w.bit_length() - 1)
    while step:
        probe = below + step  # is the probe-th smallest value below the score? then so are all before
        hit = (probe <= w) & (flat[base + np.minimum(probe, w) - 1] < scores)
        below = np.where(hit, probe, below)
        step >>= 1
    return below


def _append(
    values: np.ndarray,
    counts: np.ndarray,
    slot: np.ndarray,
    lead0: np.ndarray,
    scores: np.ndarray,
    occ: np.ndarray | None = None,
) -> None:
    """Append ``scores`` ``[n, T]`` in order to rings ``values`` ``[U, H, T, W]`` (``counts`` ``[U, H]``) at
    ``(slot, lead0)``: what :meth:`_Scores.add` does row by row, for many rings at once. ``occ``: each
    score's place among its ring's, when known."""
    w = values.shape[3]
    key = slot * values.shape[1] + lead0
    occ = occurrence(key) if occ is None else occ
    total = np.bincount(key, minlength=counts.size).reshape(counts.shape)
    kept = occ >= total[slot, lead0] - w  # a ring keeps only its newest ``w``
    s, ld = slot[kept], lead0[kept]
    values[s, ld, :, (counts[s, ld] + occ[kept]) % w] = scores[kept]
    counts += total


def _plausible(sorted_: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``[B, H, T]``: how many of each ring's ``n`` residuals (``sorted_`` ascending ``[B, H, T, W]``)
    are not a glitch's, those above IMPLAUSIBLE times the REPEATS-th largest (at most REPEATS - 1
    of them; none in a ring of fewer than 2·REPEATS)."""
    k = REPEATS
    n_ = np.broadcast_to(n[:, :, None], sorted_.shape[:3])  # [B, H, T]
    idx = np.clip(n_[..., None] - np.arange(k, 0, -1), 0, sorted_.shape[-1] - 1)  # the k largest
    top = np.take_along_axis(sorted_, idx, axis=3)  # [B, H, T, k], ascending
    with np.errstate(invalid="ignore"):
        wild = (top[..., 1:] > IMPLAUSIBLE * top[..., :1]) & (top[..., :1] > 0)
    return np.where(n_ >= 2 * k, n_ - wild.sum(axis=3), n_)


def _quantile(sorted_: np.ndarray, n: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Split-conformal quantile ``[B, L, H, T]``: the ``⌈(1 − a)(n + 1)⌉``-th smallest of ``n`` residuals.

    ``sorted_`` ``[B, H, T, window]`` holds each lead's residuals ascending with NaN after them, ``n``
    ``[B, H]`` how many there are and ``alpha`` ``[B, L, H, T]`` the miss levels; a rank past ``n``
    takes the largest that is not a glitch's (:func:`_plausible`), and a level with ``a = 1`` gives
    width 0.
    """
    n_ = n[:, None, :, None]  # [B, 1, H, 1]
    rank = np.ceil((1.0 - alpha) * (n_ + 1)).astype(np.int64)
    idx = np.clip(rank, 1, np.maximum(_plausible(sorted_, n), 1)[:, None]) - 1  # [B, L, H, T]
    q = np.take_along_axis(
        np.broadcast_to(sorted_[:, None], (*alpha.shape, sorted_.shape[-1])), idx[..., None], axis=4
    )[..., 0]
    q = np.where(rank <= 0, 0.0, q)
    return np.where(n_ > 0, q, np.nan)
