"""Forecasts awaiting truth for every series at once: parallel arrays keyed by grid position.

A series' grid points are numbered (:class:`~adaptcast.streams.state.Pending`): a forecast issued at
point ``p`` meets the truth of point ``p + lead`` for ``lead`` in ``1..horizon``. Keeping every
series' forecasts in one set of arrays lets a whole poll's truths be matched with one sorted search
instead of a Python loop over each series' forecasts. Rows are appended into spare capacity and the
sorted index is merged, not rebuilt, so a poll costs what it adds, not what the store holds.
"""

from __future__ import annotations

import numpy as np


class ForecastStore:
    """Issued forecasts not yet past their horizon: ``pos`` ``[N]`` and named columns ``[N, ...]``."""

    def __init__(self) -> None:
        self._pos = np.empty(0, dtype=np.int64)
        self._cols: dict[str, np.ndarray] = {}
        self._n = 0
        self._sorted = np.empty(0, dtype=np.int64)  # the rows' positions, ascending ...
        self._order = np.empty(0, dtype=np.int64)  # ... and the row each one is

    def __len__(self) -> int:
        return self._n

    @property
    def pos(self) -> np.ndarray:
        return self._pos[: self._n]

    @property
    def cols(self) -> dict[str, np.ndarray]:
        return {name: col[: self._n] for name, col in self._cols.items()}

    def add(self, pos: np.ndarray, **cols: np.ndarray) -> None:
        """Append forecasts issued at grid positions ``pos``; every call passes the same columns.

        A column whose trailing shape changed (e.g. error-memory keys of a new model) replaces the
        stored one, zero-filled for the older forecasts: those belong to a model no longer serving.
        """
        pos = np.asarray(pos, dtype=np.int64)
        start, end = self._n, self._n + len(pos)
        if end > len(self._pos):
            self._grow(max(end, 2 * len(self._pos)))
        for name, new in cols.items():
            old = self._cols.get(name)
            if old is None or old.shape[1:] != new.shape[1:] or old.dtype != new.dtype:
                old = self._cols[name] = np.zeros((len(self._pos), *new.shape[1:]), dtype=new.dtype)
            old[start:end] = new
        self._pos[start:end] = pos
        self._n = end
        order = np.argsort(pos, kind="stable")
        at = np.searchsorted(self._sorted, pos[order], side="right")
        self._sorted = np.insert(self._sorted, at, pos[order])
        self._order = np.insert(self._order, at, start + order)

    def _grow(self, capacity: int) -> None:
        grown = np.empty(capacity, dtype=np.int64)
        grown[: self._n] = self._pos[: self._n]
        self._pos = grown
        for name, col in self._cols.items():
            bigger = np.zeros((capacity, *col.shape[1:]), dtype=col.dtype)
            bigger[: self._n] = col[: self._n]
            self._cols[name] = bigger

    def match(self, pos: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every stored forecast the truths at positions ``pos`` ``[n]`` score: ``(truth, forecast, lead)``.

        Ordered by truth, then by lead from ``horizon`` down to 1 (the oldest forecast first), the
        order in which one series' forecasts were issued.
        """
        if not self._n or not len(pos):
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        leads = np.arange(horizon, 0, -1, dtype=np.int64)
        wanted = (np.asarray(pos, dtype=np.int64)[:, None] - leads[None, :]).ravel()
        at = np.minimum(np.searchsorted(self._sorted, wanted), self._n - 1)
        hit = np.flatnonzero(self._sorted[at] == wanted)
        return hit // horizon, self._order[at[hit]], leads[hit % horizon]

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the forecasts where ``mask`` ``[N]`` is true (in their order)."""
        rows = np.flatnonzero(mask)
        self._pos[: len(rows)] = self._pos[rows]
        for col in self._cols.values():
            col[: len(rows)] = col[rows]
        self._n = len(rows)
        self._order = np.argsort(self._pos[: self._n], kind="stable")
        self._sorted = self._pos[self._order]
