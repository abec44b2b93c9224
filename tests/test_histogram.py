"""Quantiles estimated from a histogram's buckets (forecast/histogram.py), checked against the
observations the buckets counted."""

from __future__ import annotations

import bisect
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adaptcast.forecast.histogram import explicit_buckets, exponential_buckets, quantile

OBSERVATIONS = st.lists(st.floats(0.001, 1000.0), min_size=1, max_size=200)
QUANTILE = st.floats(0.0, 1.0)


def _kth(values: list[float], q: float) -> float:
    """The observation the q-quantile's rank falls on: the k-th smallest, k = ⌈q·n⌉ (at least 1)."""
    return sorted(values)[max(math.ceil(q * len(values)), 1) - 1]


def test_the_quantile_is_interpolated_in_the_bucket_its_rank_falls_in_as_prometheus_does():
    buckets = explicit_buckets([0.1, 0.5, 1.0], [10, 20, 10, 0])
    assert buckets == [(0.0, 0.1, 10), (0.1, 0.5, 20), (0.5, 1.0, 10), (1.0, 1.0, 0)]
    assert quantile(0.5, buckets) == pytest.approx(0.3)  # rank 20: half-way through the second bucket
    assert quantile(0.99, buckets) == pytest.approx(0.98)
    assert quantile(0.0, buckets) == 0.0
    # past the last bound nothing is known: the last bound, as Prometheus answers
    assert quantile(0.99, explicit_buckets([0.1, 0.5, 1.0], [0, 0, 0, 5])) == 1.0
    assert quantile(0.5, explicit_buckets([0.1], [0, 0])) is None  # nothing counted: no quantile
    assert quantile(0.5, explicit_buckets([], [7])) is None  # one open bucket: no scale to place it on
    assert quantile(0.5, explicit_buckets([], [7], low=1.0, high=3.0)) == 2.0  # unless min and max close it
    with pytest.raises(ValueError, match="3 bucket counts for 1 bounds"):
        explicit_buckets([0.1], [1, 2, 3])


@given(
    values=OBSERVATIONS,
    q=QUANTILE,
    bounds=st.lists(st.floats(0.01, 900.0), min_size=1, max_size=12, unique=True),
)
def test_an_explicit_histograms_quantile_lies_in_the_bucket_of_the_observation_at_its_rank(values, q, bounds):
    bounds = sorted(bounds)
    counts = [0] * (len(bounds) + 1)
    for v in values:  # bucket i counts (bounds[i-1], bounds[i]]
        counts[bisect.bisect_left(bounds, v)] += 1
    low, high = min(values), max(values)
    estimate = quantile(q, explicit_buckets(bounds, counts, low, high), low, high)
    kth = _kth(values, q)
    i = bisect.bisect_left(bounds, kth)
    lower = low if i == 0 else max(bounds[i - 1], low)
    upper = high if i == len(bounds) else min(bounds[i], high)
    assert lower - 1e-9 <= estimate <= upper + 1e-9 and low <= estimate <= high


@given(values=OBSERVATIONS, q=QUANTILE, scale=st.integers(-2, 6), negate=st.booleans())
def test_an_exponential_histograms_quantile_lies_in_the_bucket_of_the_observation_at_its_rank(
    values, q, scale, negate
):
    base = 2.0 ** (2.0**-scale)
    index = [_bucket_index(v, base) for v in values]
    offset = min(index)
    counts = [0] * (max(index) - offset + 1)
    for i in index:
        counts[i - offset] += 1
    if negate:  # the same observations below zero: the mirror image
        values = [-v for v in values]
        buckets = exponential_buckets(scale, 0, (0, []), (offset, counts))
    else:
        buckets = exponential_buckets(scale, 0, (offset, counts))
    estimate = quantile(q, buckets)
    kth = _kth(values, q)
    i = _bucket_index(abs(kth), base)
    lower, upper = sorted(math.copysign(base**j, kth) for j in (i, i + 1))
    slack = 1e-9 * abs(kth)  # the edges are powers computed two ways
    assert lower - slack <= estimate <= upper + slack
    assert [lo <= hi for lo, hi, _ in buckets] == [True] * len(buckets)
    assert [b[0] for b in buckets] == sorted(b[0] for b in buckets)  # in ascending order


def _bucket_index(v: float, base: float) -> int:
    """The exponential bucket ``i`` holding ``v`` > 0: base^i < v ≤ base^(i+1)."""
    i = math.ceil(math.log(v, base)) - 1
    return i + 1 if base ** (i + 1) < v else i - 1 if v <= base**i else i


def test_an_exponential_histogram_counts_zeros_between_its_negative_and_positive_buckets():
    buckets = exponential_buckets(0, 2, (0, [2, 2]), (0, [2]))  # base 2: (-2, -1], zeros, (1, 2], (2, 4]
    assert buckets == [(-2.0, -1.0, 2), (0.0, 0.0, 2), (1.0, 2.0, 2), (2.0, 4.0, 2)]
    assert (
        quantile(0.25, buckets) == -1.0 and quantile(0.375, buckets) == 0.0 and quantile(0.75, buckets) == 2.0
    )
    assert (
        exponential_buckets(-20, 0, (40, [1]))[-1][1] == math.inf
    )  # an edge past floats: infinite, no error
