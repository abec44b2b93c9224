"""Per-feature input-distribution drift: Population Stability Index against the training window."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import finite_array
from .base import DriftDetector

__all__ = ["FeatureDrift"]


class FeatureDrift(DriftDetector):
    """Fire when any feature's PSI between the last ``window`` rows and the reference exceeds ``threshold``.

    The reference (normally the training window, via :meth:`set_reference`) fixes per-feature
    bin edges at its ``bins``-quantiles and the reference bin shares ``p``; live rows are binned
    on arrival and counted in a sliding window, so an update costs O(features).  With live
    shares ``q = (count + 0.5) / (n + 0.5 * bins)`` (Laplace-smoothed so an empty bin in a
    small window does not explode) and reference shares ``p`` (clipped at ``eps``),
    ``PSI = sum((q - p) * ln(q / p))``; the usual reading is < 0.1 stable, 0.1-0.25
    moderate, > 0.25 large shift.  Sampling noise alone gives PSI ≈ (bins - 1) / n, so
    decisions start after ``min_samples`` rows (default 250).  Without a reference, the first
    ``window`` rows become it (until the next reset).  ``update`` takes one row ``[features]``
    or a batch ``[rows, features]``.
    """

    name = "feature"
    input_kind = "features"

    def __init__(
        self,
        bins: int = 10,
        window: int = 500,
        threshold: float = 0.25,
        min_samples: int = 250,
        eps: float = 1e-4,
    ) -> None:
        super().__init__()
        if bins < 2 or window < 1 or min_samples < 1:
            raise ValueError("need bins >= 2, window >= 1, min_samples >= 1")
        if not (threshold > 0 and eps > 0):
            raise ValueError("threshold and eps must be > 0")
        self.bins = int(bins)
        self.window = int(window)
        self.threshold = float(threshold)
        self.min_samples = int(min(min_samples, window))
        self.eps = float(eps)
        self._auto = True  # no reference given: learn one from the stream
        self._edges: np.ndarray | None = None  # [F, bins-1], +inf padded
        self._p_ref: np.ndarray | None = None  # [F, bins]
        self.reset()

    @property
    def n_features(self) -> int | None:
        """Number of features of the reference (None before one is set)."""
        return None if self._edges is None else int(self._edges.shape[0])

    @property
    def drifted_features(self) -> np.ndarray:
        """Indices of features whose PSI exceeds the threshold at the last check."""
        return np.flatnonzero(self.psi > self.threshold)

    def set_reference(self, data: Any) -> None:
        """Fix bins and reference shares from ``data`` [rows, features] and restart the window."""
        self._auto = False
        self._fit_reference(data)
        self.reset()

    def rebase(self, val_error: float | None = None, reference_features: np.ndarray | None = None) -> None:
        """After a model swap: ``reference_features`` (training inputs) become the reference; else reset."""
        if reference_features is None:
            self.reset()
        else:
            self.set_reference(reference_features)

    def _fit_reference(self, data: Any) -> None:
        x = finite_array(data, "reference", ndim=(1, 2))
        if x.ndim == 1:
            x = x[:, None]
        qs = np.linspace(0, 1, self.bins + 1)[1:-1]
        edges = np.quantile(x, qs, axis=0).T.copy()  # [F, bins-1]
        # duplicate edges (discrete features) -> make later duplicates +inf so bins stay monotone
        dup = np.zeros_like(edges, dtype=bool)
        dup[:, 1:] = edges[:, 1:] <= edges[:, :-1]
        edges[dup] = np.inf
        edges.sort(axis=1)
        self._edges = edges
        b = self._bin(x)
        counts = np.zeros((x.shape[1], self.bins))
        np.add.at(counts, (np.broadcast_to(np.arange(x.shape[1]), b.shape), b), 1.0)
        self._p_ref = np.clip(counts / x.shape[0], self.eps, None)

    def _bin(self, x: np.ndarray) -> np.ndarray:
        assert self._edges is not None
        return (x[:, :, None] > self._edges[None, :, :]).sum(axis=2).astype(np.int64)

    def _fresh_state(self) -> dict[str, Any]:
        # a given reference survives a reset; one learned from the stream's first rows does not
        keep = not self._auto
        edges = self._edges if keep else None
        return {
            "_auto": self._auto,
            "_edges": edges,
            "_p_ref": self._p_ref if keep else None,
            "_auto_rows": [],
            **self._empty_window(0 if edges is None else edges.shape[0]),
        }

    def _empty_window(self, f: int) -> dict[str, Any]:
        """The sliding-window counts for ``f`` features, empty."""
        return {
            "_ring": np.zeros((self.window, f), dtype=np.int64),
            "_counts": np.zeros((f, self.bins)),
            "_pos": 0,
            "_filled": 0,
            "psi": np.zeros(f),
        }

    def _clear_window(self) -> None:
        """Empty the window and keep the reference (after a detection, or once the reference is learned)."""
        for k, v in self._empty_window(self.n_features or 0).items():
            setattr(self, k, v)

    def update(self, x: Any) -> bool:  # type: ignore[override]
        """Feed one row or a batch of rows; True when drift is detected after this call."""
        rows = finite_array(x, "feature row", ndim=(1, 2))
        if rows.ndim == 1:
            rows = rows[None, :]
        if self._drift:
            self._drift = False
            self._clear_window()
        if self._edges is None:
            self._auto_rows.append(rows)
            if sum(r.shape[0] for r in self._auto_rows) >= self.window:
                self._fit_reference(np.concatenate(self._auto_rows))
                self._auto_rows = []
                self._clear_window()
            self.n_updates += rows.shape[0]
            return False
        if rows.shape[1] != self._edges.shape[0]:
            raise ValueError(f"expected {self._edges.shape[0]} features, got {rows.shape[1]}")
        self.n_updates += rows.shape[0]
        if rows.shape[0] > self.window:
            rows = rows[-self.window :]
        b = self._bin(rows)  # [B, F]
        n = b.shape[0]
        fidx = np.broadcast_to(np.arange(b.shape[1]), b.shape)
        idx = (self._pos + np.arange(n)) % self.window
        ev = idx < self._filled  # slots holding older rows (pos == filled until the ring is full)
        if ev.any():
            np.subtract.at(self._counts, (fidx[ev], self._ring[idx[ev]]), 1.0)
        np.add.at(self._counts, (fidx, b), 1.0)
        self._ring[idx] = b
        self._pos = int((self._pos + n) % self.window)
        self._filled = min(self.window, self._filled + n)
        if self._filled < self.min_samples:
            return False
        assert self._p_ref is not None
        q = np.clip((self._counts + 0.5) / (self._filled + 0.5 * self.bins), self.eps, None)
        self.psi = ((q - self._p_ref) * np.log(q / self._p_ref)).sum(axis=1)
        if (self.psi > self.threshold).any():
            self._drift = True
            self.n_detections += 1
            return True
        return False

    def update_many(self, xs: Any) -> np.ndarray:
        """Row-by-row variant of ``update`` returning one flag per row."""
        rows = finite_array(xs, "feature rows", ndim=2, allow_empty=True)
        return np.fromiter((self.update(r) for r in rows), dtype=bool, count=rows.shape[0])

    def _update_one(self, v: float) -> bool:  # scalar input = one feature
        return self.update(np.asarray([v]))
