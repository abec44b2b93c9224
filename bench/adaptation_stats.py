"""Means over seeds with 95 % t-intervals; paired geometric ratios and differences of two configurations."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

LEVEL = 0.95


def mean_ci(values: Sequence[float]) -> dict[str, float | None] | None:
    """Mean with its 95 % Student-t interval (``low``/``high`` None with one value); None without values."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return None
    mean = float(x.mean())
    if x.size < 2:
        return {"mean": mean, "low": None, "high": None, "n": 1}
    half = float(stats.t.ppf(0.5 + LEVEL / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": int(x.size)}


def paired(
    a: dict[int, float | None], b: dict[int, float | None], how: str
) -> dict[str, float | None] | None:
    """``a`` against ``b`` on their common seeds: the ``ratio`` a / b or the difference a − b, with its CI.

    A ratio is the geometric mean of the per-seed ratios, its interval the t-interval of their
    logarithms taken back (always positive; seeds where either side is 0 are left out).
    """
    seeds = [s for s in a if s in b and a[s] is not None and b[s] is not None]
    if how != "ratio":
        return mean_ci([a[s] - b[s] for s in seeds])
    logs = mean_ci([math.log(a[s] / b[s]) for s in seeds if a[s] > 0 and b[s] > 0])
    if logs is None:
        return None
    return {k: v if k == "n" or v is None else math.exp(v) for k, v in logs.items()}


def complement(ci: dict[str, float | None] | None) -> dict[str, float | None] | None:
    """1 − x for a mean and its interval (a ratio of cost turned into the share saved)."""
    if ci is None:
        return None
    flip = {k: None if ci[k] is None else 1 - ci[k] for k in ("mean", "high", "low")}
    return {"mean": flip["mean"], "low": flip["high"], "high": flip["low"], "n": ci["n"]}
