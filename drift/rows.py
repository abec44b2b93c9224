"""Per-series state held as arrays with one row per series, so a batch of series is read and written
with one indexing operation instead of a Python object per series."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["Rows", "as_index"]


class Rows:
    """Named arrays with one row per key, grown by doubling; a dropped key's row is reused.

    ``fields`` maps each array's name to the value a new row starts with (its shape is the row's
    shape, its dtype the array's). Arrays are reallocated as rows are added: index them afresh after
    :meth:`add` rather than keeping a reference.
    """

    def __init__(self, fields: dict[str, np.ndarray]):
        self._start = {name: np.asarray(value) for name, value in fields.items()}
        self.index: dict[str, int] = {}  # key -> row, in the order keys were added
        self._free: list[int] = []
        self._arrays = {name: np.empty((0, *v.shape), v.dtype) for name, v in self._start.items()}

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def start(self, name: str) -> np.ndarray:
        """The value a row of ``name`` starts with (read-only): for starting part of a row afresh."""
        value = self._start[name].view()
        value.flags.writeable = False
        return value

    def find(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``keys`` ``[n]``, −1 for a key without one."""
        get = self.index.get
        return np.fromiter((get(k, -1) for k in keys), np.int64, len(keys))

    def add(self, keys: Sequence[str]) -> np.ndarray:
        """Rows of ``keys`` ``[n]``, given to those without one and started from ``fields``."""
        new = [k for k in dict.fromkeys(keys) if k not in self.index]
        if new:
            top = len(self.index) + len(self._free)  # rows handed out so far
            self._grow(top + max(len(new) - len(self._free), 0))
            rows = []
            for k in new:
                if self._free:
                    row = self._free.pop()
                else:
                    row, top = top, top + 1
                self.index[k] = row
                rows.append(row)
            self.reset(np.array(rows, dtype=np.int64))
        return self.find(keys)

    def reset(self, rows: np.ndarray, names: Iterable[str] | None = None) -> None:
        """Start ``rows`` afresh in the arrays ``names`` (all of them by default)."""
        for name in self._start if names is None else names:
            self._arrays[name][rows] = self._start[name]

    def drop(self, keys: Iterable[str]) -> None:
        """Forget ``keys``; their rows are reused (and started afresh) by later keys."""
        for k in keys:
            row = self.index.pop(k, None)
            if row is not None:
                self._free.append(row)

    def clear(self) -> None:
        """Forget every key."""
        self.index.clear()
        self._free.clear()
        self._arrays = {name: a[:0] for name, a in self._arrays.items()}

    def _grow(self, needed: int) -> None:
        """Room for ``needed`` rows (at least double the room, so adding n keys costs O(n) copies)."""
        have = len(next(iter(self._arrays.values())))
        if needed <= have:
            return
        size = max(needed, 2 * have, 8)
        for name, a in self._arrays.items():
            grown = np.empty((size, *a.shape[1:]), a.dtype)
            grown[: len(a)] = a
            self._arrays[name] = grown


def as_index(rows: np.ndarray) -> slice | np.ndarray:
    """``rows`` as a slice when they are consecutive and ascending (the usual case: the same series in
    the same order every call), so that indexing gives views to read and write in place rather than
    copies; else ``rows`` unchanged."""
    n = len(rows)
    if n and rows[0] >= 0 and rows[-1] - rows[0] == n - 1 and (n < 3 or (np.diff(rows) == 1).all()):
        return slice(int(rows[0]), int(rows[-1]) + 1)
    return rows
