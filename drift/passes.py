"""Batched sequential updates: which pass handles each element, so that one key's updates keep their order."""

from __future__ import annotations

import numpy as np

__all__ = ["occurrence"]


def occurrence(keys: np.ndarray) -> np.ndarray:
    """For each element of ``keys`` ``[n]``, how many equal keys come before it (0 for the first of each).

    Updating every key's k-th element in pass k handles all keys at once and each key's elements in order.
    """
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    first = np.r_[True, ordered[1:] != ordered[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(keys)), 0))
    out = np.empty(len(keys), dtype=np.int64)
    out[order] = np.arange(len(keys)) - start
    return out
