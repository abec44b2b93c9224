"""Variance Horizon: how many recent rows to train on — history beyond it adds compute, not information."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._params import Parametrised
from ._validate import finite_array

__all__ = ["VarianceHorizon"]


class VarianceHorizon(Parametrised):
    """Pick the shortest recent window whose variance already matches the next-longer window.

    Rule (``n`` rows of history, 1-D target or 2-D ``[rows, channels]``):

    1. ``cap = min(n, max_len)``; if ``cap <= min_len`` return ``cap`` (all that is allowed).
    2. Candidates grow geometrically: ``w = min_len, 2*min_len, 4*min_len, …``.
    3. For each ``w < cap`` compare the population variance ``v(w)`` of the last ``w`` rows with
       ``v(w2)`` of the last ``w2 = min(2w, n)`` rows, per channel:
       ``r(w) = max_c |v_c(w2) - v_c(w)| / v_c(w)`` (a constant channel that stays constant
       gives 0, one that stops being constant gives inf).
    4. Accept the first ``w`` with ``r(w) <= tolerance + noise_z / sqrt(w)`` and return it; the
       ``noise_z / sqrt(w)`` term is the sampling noise of ``r`` for weakly dependent data
       (≈ 1/sqrt(w) s.d. under Gaussian noise), so a stationary stretch is accepted at the
       first candidate instead of chasing noise.  If no ``w < cap`` is accepted, return ``cap``.

    Properties (each one is tested):

    - result in ``[min(min_len, cap), cap]``; deterministic; O(n) time via running sums over
      the last ``min(n, 2*cap)`` rows only.
    - stationary, weakly dependent series: ``min_len`` in the vast majority of cases
      (measured: 197/200 Gaussian seeds at defaults, the rest ``2*min_len``).
    - level shift ``k`` rows ago with ``k >= 4*min_len``, shift >= 2 sd: the post-shift
      stretch is accepted before ``2w`` reaches across, so ``min_len <= result <= k``
      (for ``2*min_len <= k < 4*min_len``: in >= 95 % of cases; a noise rejection at the
      first candidate can let the next one straddle the shift).
    - a variance shift (old regime noisier) behaves the same way.
    - seasonal series, ``min_len >= period``: at least one full cycle is inside.  With a
      shorter ``min_len`` the result depends on the phase at the end of the history:
      doubling a sub-cycle window usually adds variance, but near a flat peak a short window
      looks locally stationary (measured on noiseless sines, min_len 24: median over phases
      >= period/4, max >= period/2).  Choose ``min_len >= period`` for a full-cycle guarantee.
    - the rule is local (it never looks past ``2w``): a random walk can stop early, and
      old regimes beyond the accepted window never influence the result.
    """

    def __init__(
        self,
        min_len: int = 48,
        max_len: int | None = None,
        tolerance: float = 0.1,
        noise_z: float = 2.5,
    ) -> None:
        if min_len < 2:
            raise ValueError(f"min_len must be >= 2, got {min_len}")
        if max_len is not None and max_len < min_len:
            raise ValueError(f"max_len ({max_len}) must be >= min_len ({min_len})")
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
        if not (math.isfinite(noise_z) and noise_z >= 0):
            raise ValueError(f"noise_z must be finite and >= 0, got {noise_z}")
        self.min_len = int(min_len)
        self.max_len = None if max_len is None else int(max_len)
        self.tolerance = float(tolerance)
        self.noise_z = float(noise_z)
        self.last_trace: list[tuple[int, float, float]] = []

    def select(self, history: Any) -> int:
        """Return how many of the most recent rows of ``history`` to train on.

        ``last_trace`` afterwards holds ``(w, r(w), acceptance bound)`` per tested candidate.
        """
        x = finite_array(history, "history", ndim=(1, 2))
        if x.ndim == 1:
            x = x[:, None]
        n = x.shape[0]
        self.last_trace = []
        cap = n if self.max_len is None else min(n, self.max_len)
        if cap <= self.min_len:
            return cap
        tail = x[-min(n, 2 * cap) :][::-1]  # most recent first
        tail = tail - tail[: self.min_len].mean(axis=0)  # centre for numerically stable sums
        scale = np.abs(tail).max(axis=0)  # r(w) is scale-free; rescale so squares cannot overflow
        tail = tail / np.where(scale > 0, scale, 1.0)
        s1 = np.cumsum(tail, axis=0)
        s2 = np.cumsum(tail * tail, axis=0)

        def var(w: int) -> np.ndarray:
            m = s1[w - 1] / w
            return np.maximum(s2[w - 1] / w - m * m, 0.0)

        w = self.min_len
        while w < cap:
            w2 = min(2 * w, n)
            v1, v2 = var(w), var(w2)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(
                    v1 > 0, np.abs(v2 - v1) / np.where(v1 > 0, v1, 1.0), np.where(v2 > 0, np.inf, 0.0)
                )
            r = float(rel.max())
            bound = self.tolerance + self.noise_z / math.sqrt(w)
            self.last_trace.append((w, r, bound))
            if r <= bound:
                return w
            w *= 2
        return cap
