"""ADWIN (Bifet & Gavaldà, 2007): adaptive windowing with exponential-histogram buckets."""

from __future__ import annotations

import math
from typing import Any

from .base import DriftDetector

__all__ = ["ADWIN"]


class ADWIN(DriftDetector):
    """Detect a change in the mean of a stream by testing every cut of an adaptive window.

    The window is compressed ADWIN2-style: row ``i`` holds up to ``max_buckets`` summaries
    (sum, sum of squared deviations) of ``2**i`` values each; new values enter row 0 and a
    full row merges its two oldest summaries into the next row.  Every ``clock`` values
    (once more than ``grace_period`` are held) each cut between summaries splits the window
    into older ``W0`` and newer ``W1``; with ``n = |W|``, ``v`` the window variance,
    ``d' = ln(2 ln(n) / delta)`` and ``m = 1/(n0-mwl+1) + 1/(n1-mwl+1)``, the cut is a
    change when ``|mean0 - mean1| > sqrt(2 m v d') + (2/3) m d'`` with both sides at least
    ``min_window_length`` long; the oldest summary is then dropped and the scan repeats.
    Parameters and defaults as ``river.drift.ADWIN``; fires at the same indices.

    >>> import numpy as np
    >>> from adaptcast.drift import ADWIN
    >>> rng = np.random.default_rng(0)
    >>> stream = np.r_[rng.normal(0, 1, 1000), rng.normal(3, 1, 200)]  # the mean moves at 1,000
    >>> detector = ADWIN()
    >>> [i for i, x in enumerate(stream) if detector.update(float(x))]
    [1023]
    """

    name = "adwin"

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        super().__init__()
        if not 0.0 < delta < 1.0:
            raise ValueError(f"delta must be in (0, 1), got {delta}")
        if clock < 1 or max_buckets < 2 or min_window_length < 1 or grace_period < 0:
            raise ValueError("need clock >= 1, max_buckets >= 2, min_window_length >= 1, grace_period >= 0")
        self.delta = float(delta)
        self.clock = int(clock)
        self.max_buckets = int(max_buckets)
        self.min_window_length = int(min_window_length)
        self.grace_period = int(grace_period)
        self.reset()

    # -- read-only statistics ---------------------------------------------------------------
    @property
    def width(self) -> int:
        """Number of values currently in the adaptive window."""
        return int(self._width)

    @property
    def estimation(self) -> float:
        """Mean of the current window (0.0 when empty)."""
        return self._total / self._width if self._width else 0.0

    @property
    def variance(self) -> float:
        """Sum of squared deviations from the mean over the current window."""
        return self._var

    # -- state machine ------------------------------------------------------------------------
    def _fresh_state(self) -> dict[str, Any]:
        # _totals[i] / _vars[i]: row i of summaries (sum, squared deviations), oldest first, 2**i values each
        return {"_totals": [[]], "_vars": [[]], "_total": 0.0, "_var": 0.0, "_width": 0.0, "_tick": 0}

    def _update_one(self, v: float) -> bool:
        if self._drift:
            self._drift = False
            self._restart()
        self.n_updates += 1
        # insert (streaming variance of the whole window)
        w = self._width + 1.0
        if w > 1.0:
            d = v - self._total / (w - 1.0)
            self._var += (w - 1.0) * d * d / w
        self._width = w
        self._total += v
        tot0 = self._totals[0]
        tot0.append(v)
        self._vars[0].append(0.0)
        if len(tot0) > self.max_buckets:
            self._compress()
        self._tick += 1
        if self._tick % self.clock == 0 and self._width > self.grace_period and self._detect():
            self._drift = True
            self.n_detections += 1
            return True
        return False

    def _compress(self) -> None:
        totals, variances, mb = self._totals, self._vars, self.max_buckets
        i = 0
        while len(totals[i]) > mb:
            size = float(1 << i)
            t0, t1 = totals[i][0], totals[i][1]
            v0, v1 = variances[i][0], variances[i][1]
            diff = t0 / size - t1 / size
            merged_var = v0 + v1 + size * 0.5 * diff * diff
            del totals[i][:2]
            del variances[i][:2]
            if i + 1 == len(totals):
                totals.append([])
                variances.append([])
            totals[i + 1].append(t0 + t1)
            variances[i + 1].append(merged_var)
            i += 1

    def _drop_oldest(self) -> None:
        last = len(self._totals) - 1
        n = float(1 << last)
        u = self._totals[last].pop(0)
        var = self._vars[last].pop(0)
        self._width -= n
        self._total -= u
        mu_w = self._total / self._width
        diff = u / n - mu_w
        self._var -= var + n * self._width * diff * diff / (n + self._width)
        if not self._totals[last] and last > 0:
            self._totals.pop()
            self._vars.pop()

    def _detect(self) -> bool:
        found = False
        mwl = float(self.min_window_length)
        log_delta = self.delta
        while True:
            width = self._width
            dprime = math.log(2.0 * math.log(width) / log_delta)
            var_w = self._var / width
            n0 = 0.0
            n1 = width
            u0 = 0.0
            u1 = self._total
            cut = False
            totals = self._totals
            for i in range(len(totals) - 1, -1, -1):
                size = float(1 << i)
                row = totals[i]
                last_k = len(row) - 1
                for k, t in enumerate(row):
                    n0 += size
                    n1 -= size
                    u0 += t
                    u1 -= t
                    if i == 0 and k == last_k:
                        break
                    if n1 >= mwl and n0 >= mwl:
                        m = 1.0 / (n0 - mwl + 1.0) + 1.0 / (n1 - mwl + 1.0)
                        eps = math.sqrt(2.0 * m * var_w * dprime) + 2.0 / 3.0 * dprime * m
                        if abs(u0 / n0 - u1 / n1) > eps:
                            cut = True
                            break
                if cut:
                    break
            if not cut:
                return found
            found = True
            self._drop_oldest()
