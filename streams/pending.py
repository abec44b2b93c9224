"""Forecasts awaiting truth for every series at once: parallel arrays keyed by grid position.

A series' grid points are numbered (:class:`~adaptcast.streams.state.Pending`): a forecast issued at
point ``p`` meets the truth of point ``p + lead`` for ``lead`` in ``1..horizon``. Keeping every
series' forecasts in one set of arrays lets a whole poll's truths be matched with one sorted search
instead of a Python loop over each series' forecasts.
"""

from __future__ import annotations

import numpy as np


class ForecastStore:
    """Issued forecasts not yet past their horizon: ``pos`` ``[N]`` and named columns ``[N, ...]``."""

    def __init__(self) -> None:
        self.pos = np.empty(0, dtype=np.int64)
        self.cols: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return int(self.pos.size)

    def add(self, pos: np.ndarray, **cols: np.ndarray) -> None:
        """Append forecasts issued at grid positions ``pos``; every call passes the same columns.

        A column whose trailing shape changed (e.g. error-memory keys of a new model) replaces the
        stored one, zero-filled for the older forecasts: those belong to a model no longer serving.
        """
        n_old = self.pos.size
        self.pos = np.concatenate([self.pos, np.asarray(pos, dtype=np.int64)])
        for name, new in cols.items():
            old = self.cols.get(name)
            if old is None or old.shape[1:] != new.shape[1:] or old.dtype != new.dtype:
                old = np.zeros((n_old, *new.shape[1:]), dtype=new.dtype)
            self.cols[name] = np.concatenate([old, new])

    def match(self, pos: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored forecast the truths at positions ``pos`` ``[n]`` score: ``(truth, forecast, lead)``.

        Ordered by truth, then by lead from ``horizon`` down to 1 (the oldest forecast first), the
        order in which one series' forecasts were issued.
        """
        if not self.pos.size or not len(pos):
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        order = np.argsort(self.pos, kind="stable")
        ordered = self.pos[order]
        leads = np.arange(horizon, 0, -1, dtype=np.int64)
        wanted = (np.asarray(pos, dtype=np.int64)[:, None] - leads[None, :]).ravel()
        at = np.minimum(np.searchsorted(ordered, wanted), ordered.size - 1)
        hit = np.flatnonzero(ordered[at] == wanted)
        return hit // horizon, order[at[hit]], leads[hit % horizon]

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the forecasts where ``mask`` is true."""
        self.pos = self.pos[mask]
        self.cols = {name: col[mask] for name, col in self.cols.items()}
