"""Variance Horizon: the documented properties of the window rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from adaptcast.drift import VarianceHorizon

VH = VarianceHorizon(min_len=48, max_len=4000)


def test_stationary_series_stops_at_min_len() -> None:
    res = [VH.select(np.random.default_rng(s).normal(0, 1, 3000)) for s in range(100)]
    assert np.mean(np.asarray(res) == 48) >= 0.95
    assert max(res) <= 96


def test_stationary_multichannel_stays_short() -> None:
    res = [VH.select(np.random.default_rng(s).normal(0, 1, (3000, 3))) for s in range(30)]
    assert np.median(res) == 48 and max(res) <= 192


@pytest.mark.parametrize("k", [300, 1000])
@pytest.mark.parametrize("shift", [2.0, 4.0])
def test_level_shift_long_regime_never_reaches_across(k: int, shift: float) -> None:
    for s in range(50):
        g = np.random.default_rng(s)
        x = np.r_[g.normal(0, 1, 3000 - k), g.normal(shift, 1, k)]
        w = VH.select(x)
        assert 48 <= w <= k


def test_level_shift_short_regime_mostly_stays_inside() -> None:
    k = 2 * 48
    res = []
    for s in range(100):
        g = np.random.default_rng(s)
        res.append(VH.select(np.r_[g.normal(0, 1, 3000 - k), g.normal(3.0, 1, k)]))
    assert np.mean(np.asarray(res) <= k) >= 0.95


def test_variance_shift_does_not_reach_across() -> None:
    for s in range(30):
        g = np.random.default_rng(s)
        x = np.r_[g.normal(0, 4, 2500), g.normal(0, 1, 500)]
        assert 48 <= VH.select(x) <= 500


def test_shift_is_what_stops_growth_not_noise() -> None:
    # without the shift the same seeds give min_len; with a shift inside 2*min_len the window grows
    g = np.random.default_rng(1)
    x = g.normal(0, 1, 3000)
    assert VH.select(x) == 48
    x2 = x.copy()
    x2[-70:] += 5.0  # shift 70 rows ago: first comparison (48 vs 96) sees it
    assert VH.select(x2) > 48
    assert VH.last_trace[0][1] > VH.last_trace[0][2]


@pytest.mark.parametrize("p", [200, 1000])
def test_seasonal_short_min_len_depends_on_phase_median_quarter_cycle(p: int) -> None:
    t = np.arange(4000)
    res = [
        VarianceHorizon(min_len=24).select(np.sin(2 * np.pi * t / p + ph))
        for ph in np.linspace(0, 2 * np.pi, 8, endpoint=False)
    ]
    assert np.median(res) >= p / 4
    assert max(res) >= p / 2


def test_min_len_one_period_contains_full_cycle() -> None:
    p = 96
    t = np.arange(3000)
    x = np.sin(2 * np.pi * t / p) + np.random.default_rng(0).normal(0, 0.1, t.size)
    assert VarianceHorizon(min_len=p).select(x) >= p


def test_clipping_and_short_history() -> None:
    vh = VarianceHorizon(min_len=50, max_len=200)
    assert vh.select(np.arange(30.0)) == 30  # less than min_len: all of it
    trend = np.arange(5000.0)  # variance keeps growing when doubling
    assert vh.select(trend) == 200
    assert VarianceHorizon(min_len=50).select(trend) == 5000


def test_constant_series() -> None:
    assert VarianceHorizon(min_len=10).select(np.ones(500)) == 10
    x = np.ones(500)
    x[:-15] = 0.0  # constant recent stretch of 15 after a step: doubling adds variance
    assert VarianceHorizon(min_len=10).select(x) > 10


def test_deterministic_and_linear_time() -> None:
    import time

    x = np.random.default_rng(0).normal(0, 1, 400_000).cumsum()
    vh = VarianceHorizon(min_len=64)
    assert vh.select(x) == vh.select(x.copy())
    t0 = time.perf_counter()
    vh.select(x)
    assert time.perf_counter() - t0 < 0.5


def test_scale_invariant_even_near_float_limits() -> None:
    g = np.random.default_rng(3)
    x = np.r_[g.normal(0, 1, 2800), g.normal(4, 1, 200)]
    w = VH.select(x)
    assert VH.select(x * 1e150) == w == VH.select(x * 1e-150)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        VarianceHorizon(min_len=1)
    with pytest.raises(ValueError):
        VarianceHorizon(min_len=100, max_len=50)
    with pytest.raises(ValueError):
        VarianceHorizon(tolerance=math.nan)


@settings(max_examples=40, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 300), elements=st.floats(-1e6, 1e6)),
    min_len=st.integers(2, 64),
    max_len=st.one_of(st.none(), st.integers(64, 400)),
)
def test_result_always_in_bounds(x, min_len, max_len) -> None:
    w = VarianceHorizon(min_len=min_len, max_len=max_len).select(x)
    cap = x.size if max_len is None else min(x.size, max_len)
    assert min(min_len, cap) <= w <= cap


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(np.float64, st.integers(1, 200), elements=st.floats(-10, 10)),
    pos=st.integers(0, 199),
    bad=st.sampled_from([math.nan, math.inf, -math.inf]),
)
def test_non_finite_history_raises(x, pos, bad) -> None:
    x = x.copy()
    x[pos % x.size] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        VH.select(x)


def test_empty_or_bad_rank_raises() -> None:
    with pytest.raises(ValueError, match="empty"):
        VH.select(np.zeros(0))
    with pytest.raises(ValueError):
        VH.select(np.zeros((2, 2, 2)))
