"""Quantiles of a histogram's buckets, estimated as Prometheus' ``histogram_quantile`` does.

A histogram keeps counts per bucket, not observations, so a quantile is interpolated: the bucket
holding the ``q``-th fraction of the observations is found, and the value placed linearly inside
it. The first and last buckets of OpenTelemetry's explicit histograms are open; where the point
records its smallest and largest observation they close them (and bound the estimate), else they
are closed as Prometheus closes them (at 0 or the first bound, and at the last bound).
"""

from __future__ import annotations

from collections.abc import Sequence

Bucket = tuple[float, float, float]  # lower bound, upper bound, count


def quantile(
    q: float, buckets: Sequence[Bucket], low: float | None = None, high: float | None = None
) -> float | None:
    """The ``q``-quantile (0 ≤ q ≤ 1) of what ``buckets`` (in ascending order) counted; None where
    they counted nothing. ``low`` and ``high``, the smallest and largest observation where known,
    bound it."""
    total = sum(count for _, _, count in buckets)
    if not total > 0:
        return None
    rank, seen = q * total, 0.0
    value = buckets[-1][1]  # rounding can leave the rank just past the last count
    for lower, upper, count in buckets:
        if count > 0 and seen + count >= rank:
            value = lower + (upper - lower) * (rank - seen) / count
            break
        seen += count
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def explicit_buckets(
    bounds: Sequence[float], counts: Sequence[float], low: float | None = None, high: float | None = None
) -> list[Bucket]:
    """OpenTelemetry's explicit buckets: bucket ``i`` counts (bounds[i-1], bounds[i]], the first
    from below its bound and the last past the last bound. No bounds: one bucket, from ``low`` to
    ``high`` where both are known, else nothing to estimate from."""
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"{len(counts)} bucket counts for {len(bounds)} bounds (there must be one more)")
    if not bounds:
        return [] if low is None or high is None else [(low, high, counts[0])]
    first = low if low is not None else (0.0 if bounds[0] > 0 else bounds[0])
    last = high if high is not None else bounds[-1]
    edges = [min(first, bounds[0]), *bounds, max(last, bounds[-1])]
    return [(edges[i], edges[i + 1], counts[i]) for i in range(len(counts))]


def exponential_buckets(
    scale: int,
    zero_count: float,
    positive: tuple[int, Sequence[float]],
    negative: tuple[int, Sequence[float]] = (0, ()),
    zero_threshold: float = 0.0,
) -> list[Bucket]:
    """OpenTelemetry's exponential buckets, in ascending order: positive bucket ``i`` (``offset``
    plus its place) counts (base^i, base^(i+1)] with base 2^(2^-scale), negative ones the mirror
    image, and the zero bucket what lies within ``zero_threshold`` of 0."""

    def edge(index: int) -> float:
        try:
            return 2.0 ** (index * 2.0**-scale)
        except OverflowError:
            return float("inf")

    offset, counts = negative
    below = [(-edge(offset + k + 1), -edge(offset + k), c) for k, c in reversed(list(enumerate(counts)))]
    offset, counts = positive
    above = [(edge(offset + k), edge(offset + k + 1), c) for k, c in enumerate(counts)]
    return [*below, (-zero_threshold, zero_threshold, zero_count), *above]
