"""Online conformal prediction intervals: adaptive conformal inference (ACI) per series, lead and target.

Gibbs & Candès (NeurIPS 2021): the interval at level ``1 - a`` is the forecast ± the
``(1 - a_t)`` quantile of recent absolute residuals, and after each outcome
``a_t ← a_t + γ (a − miss)``. The long-run miss rate then stays within ``(1 + γ) / (γ T)`` of ``a``
whatever the data do, because every miss narrows the quantile level and every hit widens it back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ConformalParams", "OnlineConformal", "level_name", "winkler"]

# γ of Gibbs & Candès' experiments. Each miss moves the quantile level by γ·(1 − a): at 0.005 a shift
# that makes every forecast miss has pushed an 80 % level to its widest within ~40 misses per lead,
# while on stationary data a_t wanders by only about ±√(γ·a) (±0.03 at 80 %) around a, so widths
# stay close to a static split-conformal interval's.
DEFAULT_GAMMA = 0.005
DEFAULT_WINDOW = 200  # residuals kept per (series, lead, target): enough for a 95 % quantile's tail
MIN_OWN = 20  # a series uses its own residuals at a lead once it has this many; the pooled ones before


def level_name(level: float) -> str:
    """``0.8`` → ``"80"``, ``0.975`` → ``"97.5"``: the key of a level in records, columns and labels."""
    return f"{level * 100:g}"


def winkler(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> np.ndarray:
    """Interval (Winkler) score per point: width plus ``2/a`` times the distance outside (lower is better)."""
    a = 1.0 - level
    return (hi - lo) + (2.0 / a) * (np.maximum(lo - y, 0.0) + np.maximum(y - hi, 0.0))


@dataclass(frozen=True)
class ConformalParams:
    """Levels, ACI step size γ (0: a rolling split-conformal quantile) and residuals kept per lead."""

    levels: tuple[float, ...] = (0.8, 0.95)
    gamma: float = DEFAULT_GAMMA
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        if not self.levels or any(not 0.0 < lv < 1.0 for lv in self.levels):
            raise ValueError(f"levels must lie strictly between 0 and 1, got {list(self.levels)}")
        if not (math.isfinite(self.gamma) and 0.0 <= self.gamma < 1.0):
            raise ValueError(f"gamma must be in [0, 1), got {self.gamma}")
        if self.window < MIN_OWN:
            raise ValueError(f"window must be >= {MIN_OWN}, got {self.window}")


class _Scores:
    """Fixed-size rings of absolute residuals ``[horizon, n_targets, window]`` filled lead by lead."""

    def __init__(self, horizon: int, n_targets: int, window: int):
        self.values = np.full((horizon, n_targets, window), np.nan)
        self.count = np.zeros(horizon, dtype=np.int64)  # residuals ever added per lead

    def add(self, lead: int, scores: np.ndarray) -> None:
        """Append ``scores [n, n_targets]`` at ``lead`` (0-based), oldest first; the ring keeps the newest."""
        w = self.values.shape[2]
        kept = scores[-w:]
        self.values[lead, :, (self.count[lead] + np.arange(len(kept))) % w] = kept
        self.count[lead] += len(kept)

    @property
    def filled(self) -> np.ndarray:
        """Residuals held per lead, ``[horizon]``."""
        return np.minimum(self.count, self.values.shape[2])


class OnlineConformal:
    """Intervals around (corrected) forecasts for many series, calibrated online by ACI.

    Per series, lead and target: a ring of the last ``window`` absolute residuals and, per level,
    the running miss level ``a_t``. A series' lead uses its own residuals once it holds
    ``MIN_OWN`` of them and a pooled ring (every series' residuals, seeded from a new model's
    validation residuals by :meth:`reseed`) before. ``a_t`` is kept in ``[0, 1]``: below 0 the
    interval is already the widest residual held, and an unbounded ``a_t`` would keep it there
    long after a change has passed.
    """

    def __init__(self, horizon: int, n_targets: int = 1, params: ConformalParams | None = None):
        self.params = params or ConformalParams()
        self.horizon, self.n_targets = int(horizon), int(n_targets)
        self._nominal = 1.0 - np.asarray(self.params.levels)[:, None, None]  # [L, 1, 1]
        self.pooled = self._new_scores()
        self.series: dict[str, _Scores] = {}
        self.alpha: dict[str, np.ndarray] = {}  # [L, horizon, n_targets] per series

    def _new_scores(self) -> _Scores:
        return _Scores(self.horizon, self.n_targets, self.params.window)

    # ---- intervals ------------------------------------------------------------------------------
    def half_widths(self, series: Sequence[str]) -> np.ndarray:
        """Half-widths ``[B, levels, horizon, n_targets]`` for the next forecasts of ``series``.

        NaN where no residual of that lead is known yet (no model has been validated). All series
        at once: their rings are sorted in one call, and a lead with fewer than ``MIN_OWN`` own
        residuals reads the pooled ring instead.
        """
        shape = (len(self.params.levels), self.horizon, self.n_targets)
        pooled = np.sort(self.pooled.values, axis=2)[None]  # [1, H, T, W]
        n = np.broadcast_to(self.pooled.filled, (len(series), self.horizon)).copy()  # [B, H]
        sorted_ = np.broadcast_to(pooled, (len(series), *pooled.shape[1:])).copy()
        alpha = np.broadcast_to(self._nominal, (len(series), *shape)).copy()  # [B, L, H, T]
        own = [(i, self.series[s]) for i, s in enumerate(series) if s in self.series]
        if own:
            rows = np.array([i for i, _ in own])
            filled = np.stack([sc.filled for _, sc in own])  # [S, H]
            use = filled >= MIN_OWN
            mine = np.sort(np.stack([sc.values for _, sc in own]), axis=3)
            sorted_[rows] = np.where(use[:, :, None, None], mine, sorted_[rows])
            n[rows] = np.where(use, filled, n[rows])
        for i, s in enumerate(series):
            if s in self.alpha:
                alpha[i] = self.alpha[s]
        return _quantile(sorted_, n, alpha)

    def intervals(self, series: Sequence[str], yhat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``lo, hi`` ``[B, levels, horizon, n_targets]`` around ``yhat`` ``[B, horizon, n_targets]``."""
        half = self.half_widths(series)
        return yhat[:, None] - half, yhat[:, None] + half

    # ---- learning from outcomes -----------------------------------------------------------------------
    def update(self, series: str, lead: int, residual: np.ndarray, half_width: np.ndarray | None) -> None:
        """One outcome at ``lead`` (1-based): ``residual = y − yhat`` ``[n_targets]``, and the
        half-widths ``[levels, n_targets]`` the forecast was issued with (None: it had none)."""
        score = np.abs(np.asarray(residual, dtype=np.float64))[None]
        self._ring(series).add(lead - 1, score)
        self.pooled.add(lead - 1, score)
        if half_width is None or self.params.gamma == 0.0:
            return
        known = np.isfinite(half_width)
        miss = (score > half_width) & known  # [L, T]
        alpha = self._alpha(series)
        step = self.params.gamma * (self._nominal[:, 0] - miss)
        alpha[:, lead - 1] = np.clip(alpha[:, lead - 1] + np.where(known, step, 0.0), 0.0, 1.0)

    def _ring(self, series: str) -> _Scores:
        own = self.series.get(series)
        if own is None:
            own = self.series[series] = self._new_scores()
        return own

    def _alpha(self, series: str) -> np.ndarray:
        alpha = self.alpha.get(series)
        if alpha is None:
            alpha = self.alpha[series] = np.repeat(self._nominal, self.horizon, axis=1).repeat(
                self.n_targets, axis=2
            )
        return alpha

    def update_many(
        self,
        names: Sequence[str],
        which: np.ndarray,
        leads: np.ndarray,
        residuals: np.ndarray,
        half_widths: np.ndarray | None,
    ) -> None:
        """Outcomes in order, as :meth:`update` one by one would take them: outcome ``i`` is of series
        ``names[which[i]]`` at ``leads[i]`` (1-based), ``residuals`` ``[n, n_targets]`` and the
        half-widths ``[n, levels, n_targets]`` its forecast was issued with (None: none had any).

        Rings take each (series, lead)'s residuals in one write; miss levels move in passes, the
        k-th outcome of every (series, lead) in pass k, because each step is clipped to ``[0, 1]``.
        """
        if not len(which):
            return
        scores = np.abs(np.asarray(residuals, dtype=np.float64))
        lead0 = np.asarray(leads, dtype=np.int64) - 1
        which = np.asarray(which, dtype=np.int64)
        used = np.unique(which)
        rings = [self._ring(names[u]) for u in used]
        slot = np.searchsorted(used, which)  # position of each outcome's series in ``rings``
        values = np.stack([r.values for r in rings])  # [U, H, T, W]
        counts = np.stack([r.count for r in rings])  # [U, H]
        _append(values, counts, slot, lead0, scores)
        for r, v, c in zip(rings, values, counts, strict=True):
            r.values[...], r.count[...] = v, c
        pooled_v, pooled_c = self.pooled.values[None], self.pooled.count[None]
        _append(pooled_v, pooled_c, np.zeros_like(slot), lead0, scores)
        self.pooled.values[...], self.pooled.count[...] = pooled_v[0], pooled_c[0]
        if half_widths is None or self.params.gamma == 0.0:
            return
        half = np.asarray(half_widths, dtype=np.float64)
        alphas = [self._alpha(names[u]) for u in used]
        alpha = np.stack(alphas)  # [U, L, H, T]
        known = np.isfinite(half)
        step = np.where(
            known, self.params.gamma * (self._nominal[:, 0][None] - ((scores[:, None] > half) & known)), 0.0
        )
        occurrence = _occurrence(slot * self.horizon + lead0)
        for k in range(int(occurrence.max()) + 1):
            at = occurrence == k
            s, ld = slot[at], lead0[at]
            alpha[s, :, ld] = np.clip(alpha[s, :, ld] + step[at], 0.0, 1.0)
        for a, new in zip(alphas, alpha, strict=True):
            a[...] = new

    def reseed(self, residuals: np.ndarray) -> None:
        """A new model serves: forget every residual and miss level; pool its validation residuals
        ``[n, horizon, n_targets]`` (``y − yhat`` on windows it was not fitted on, oldest first)."""
        self.pooled = self._new_scores()
        for lead in range(self.horizon):
            self.pooled.add(lead, np.abs(residuals[:, lead, :]))
        self.series.clear()
        self.alpha.clear()

    def forget(self, names: Sequence[str]) -> None:
        """Drop series this process no longer serves."""
        for s in names:
            self.series.pop(s, None)
            self.alpha.pop(s, None)

    # ---- state -------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every ring and miss level as arrays and numbers (pickle-free; see drift.serialize.save_state)."""
        p = self.params
        return {
            "kind": "online_conformal",
            "params": {"levels": list(p.levels), "gamma": p.gamma, "window": p.window},
            "shape": [self.horizon, self.n_targets],
            "pooled": _scores_state(self.pooled),
            "series": {s: _scores_state(sc) for s, sc in self.series.items()},
            "alpha": {s: a.copy() for s, a in self.alpha.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` of a calibrator with the same levels, window and shape."""
        if state.get("kind") != "online_conformal":
            raise ValueError("not an online-conformal state")
        saved = state["params"]
        if (
            [float(v) for v in saved["levels"]] != list(self.params.levels)
            or int(saved["window"]) != self.params.window
            or [int(v) for v in state["shape"]] != [self.horizon, self.n_targets]
        ):
            raise ValueError(f"calibrator settings differ: {saved}, shape {state['shape']}")
        self.pooled = self._load_scores(state["pooled"])
        self.series = {s: self._load_scores(d) for s, d in state["series"].items()}
        self.alpha = {s: np.asarray(a, dtype=np.float64).copy() for s, a in state["alpha"].items()}

    def _load_scores(self, d: dict[str, Any]) -> _Scores:
        sc = self._new_scores()
        sc.values[...] = d["values"]
        sc.count[...] = d["count"]
        return sc


def _scores_state(sc: _Scores) -> dict[str, np.ndarray]:
    return {"values": sc.values.copy(), "count": sc.count.copy()}


def _occurrence(keys: np.ndarray) -> np.ndarray:
    """For each element, how many equal keys come before it (0 for the first of each key)."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))
    out = np.empty(len(keys), dtype=np.int64)
    out[order] = np.arange(len(keys)) - start
    return out


def _append(
    values: np.ndarray, counts: np.ndarray, slot: np.ndarray, lead0: np.ndarray, scores: np.ndarray
) -> None:
    """Append ``scores`` ``[n, T]`` in order to rings ``values`` ``[U, H, T, W]`` (``counts`` ``[U, H]``) at
    ``(slot, lead0)``: what :meth:`_Scores.add` does row by row, for many rings at once."""
    w = values.shape[3]
    key = slot * values.shape[1] + lead0
    occ = _occurrence(key)
    total = np.bincount(key, minlength=counts.size).reshape(counts.shape)
    kept = occ >= total[slot, lead0] - w  # a ring keeps only its newest ``w``
    s, ld = slot[kept], lead0[kept]
    values[s, ld, :, (counts[s, ld] + occ[kept]) % w] = scores[kept]
    counts += total


def _quantile(sorted_: np.ndarray, n: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Split-conformal quantile ``[B, L, H, T]``: the ``⌈(1 − a)(n + 1)⌉``-th smallest of ``n`` residuals.

    ``sorted_`` ``[B, H, T, window]`` holds each lead's residuals ascending with NaN after them, ``n``
    ``[B, H]`` how many there are and ``alpha`` ``[B, L, H, T]`` the miss levels; a rank past ``n``
    takes the largest, and a level with ``a = 1`` gives width 0.
    """
    n_ = n[:, None, :, None]  # [B, 1, H, 1]
    rank = np.ceil((1.0 - alpha) * (n_ + 1)).astype(np.int64)
    idx = np.clip(rank, 1, np.maximum(n_, 1)) - 1  # [B, L, H, T]
    q = np.take_along_axis(
        np.broadcast_to(sorted_[:, None], (*alpha.shape, sorted_.shape[-1])), idx[..., None], axis=4
    )[..., 0]
    q = np.where(rank <= 0, 0.0, q)
    return np.where(n_ > 0, q, np.nan)
