"""KSWIN: a two-sample Kolmogorov-Smirnov test between a sliding window's newest and older values."""

from __future__ import annotations

import collections
import itertools
import math
import random
from fractions import Fraction
from functools import lru_cache
from typing import Any

from .base import DriftDetector

__all__ = ["KSWIN", "ks_pvalue_equal_n", "ks_statistic_count"]


def ks_statistic_count(a: list[float], b: list[float]) -> int:
    """``n * D`` for two samples of equal size ``n``: the largest gap between their step ECDFs."""
    sa, sb = sorted(a), sorted(b)
    n = len(sa)
    i = j = d = 0
    while i < n and j < n:
        v = sa[i] if sa[i] < sb[j] else sb[j]
        while i < n and sa[i] <= v:
            i += 1
        while j < n and sb[j] <= v:
            j += 1
        g = i - j if i > j else j - i
        if g > d:
            d = g
    return d


@lru_cache(maxsize=64)
def _pvalue_table(n: int) -> tuple[float, ...]:
    """Exact two-sided P(D >= h/n) for h = 0..n, two continuous samples of size n each.

    Uses the reflection formula P = 2 * sum_{j>=1} (-1)^(j+1) C(2n, n - j h) / C(2n, n)
    (Gnedenko & Korolyuk), in exact rational arithmetic.
    """
    total = math.comb(2 * n, n)
    out = [1.0]
    for h in range(1, n + 1):
        s = 0
        j = 1
        while n - j * h >= 0:
            s += (-1) ** (j + 1) * math.comb(2 * n, n - j * h)
            j += 1
        out.append(min(1.0, float(Fraction(2 * s, total))))
    return tuple(out)


def ks_pvalue_equal_n(h: int, n: int) -> float:
    """Exact two-sided p-value of ``D = h/n`` for two samples of size ``n`` (no ties assumed)."""
    if not 0 <= h <= n:
        raise ValueError(f"h must be in [0, {n}], got {h}")
    return _pvalue_table(n)[h]


class KSWIN(DriftDetector):
    """Kolmogorov-Smirnov windowing (Raab et al., 2020) with River's sampling scheme.

    Keeps the last ``window_size`` values.  Once full, every update compares the newest
    ``stat_size`` values with ``stat_size`` values drawn without replacement (``random.Random
    (seed).sample``) from the older part, using the exact two-sample KS p-value; a change is
    flagged when ``p <= alpha`` and ``D > 0.1``.  Same parameters, random draws and decisions
    as ``river.drift.KSWIN`` (including re-seeding the sampler at every reset).  It tests at
    every step, so it raises some false alarms on stationary data (see docs/adaptation.md).
    """

    name = "kswin"

    def __init__(
        self,
        alpha: float = 0.005,
        window_size: int = 100,
        stat_size: int = 30,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        if stat_size < 1 or window_size < 2 * stat_size:
            raise ValueError(
                f"need 1 <= stat_size and window_size >= 2*stat_size, got {window_size=}, {stat_size=}"
            )
        self.alpha = float(alpha)
        self.window_size = int(window_size)
        self.stat_size = int(stat_size)
        self.seed = None if seed is None else int(seed)
        table = _pvalue_table(self.stat_size)
        # p-value is non-increasing in h, so the test reduces to h >= h_crit.
        self._h_crit = next(
            (h for h in range(self.stat_size + 1) if table[h] <= self.alpha and h / self.stat_size > 0.1),
            self.stat_size + 1,
        )
        self.reset()

    def _fresh_state(self) -> dict[str, Any]:
        # River re-seeds the sampler at every reset, so the same stream gives the same draws
        return {
            "_window": collections.deque(maxlen=self.window_size),
            "_rng": random.Random(self.seed),
            "p_value": 1.0,
        }

    def _update_one(self, v: float) -> bool:
        if self._drift:
            self._drift = False
            self._restart()
        self.n_updates += 1
        w = self._window
        w.append(v)
        ws, ss = self.window_size, self.stat_size
        if len(w) < ws:
            return False
        picks = self._rng.sample(range(ws - ss), ss)
        old = [w[r] for r in picks]
        recent = list(itertools.islice(w, ws - ss, ws))
        h = ks_statistic_count(old, recent)
        self.p_value = _pvalue_table(ss)[h]
        if h >= self._h_crit:
            self._drift = True
            self.n_detections += 1
            self._window = collections.deque(recent, maxlen=ws)
            return True
        return False
