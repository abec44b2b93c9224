"""Online conformal intervals (ACI, DtACI): coverage on exchangeable data, recovery after a shift, reseeding,
state."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.drift import load_state, save_state
from adaptcast.drift.conformal import (
    DEFAULT_GAMMAS,
    MIN_PRIOR,
    MIN_SCALE,
    ConformalParams,
    OnlineConformal,
    _quantile,
    _realised_level,
    level_name,
    winkler,
)

LEVELS = (0.8, 0.95)


def _run(cal: OnlineConformal, residuals: np.ndarray, series: str = "s") -> np.ndarray:
    """Feed one-lead residuals one by one; ``[n, L]``: whether each fell inside the interval issued for it."""
    hits = np.zeros((len(residuals), len(cal.params.levels)), dtype=bool)
    for i, r in enumerate(residuals):
        half = cal.half_widths([series])[0][:, 0, :]  # [L, T]
        hits[i] = np.abs(r) <= half[:, 0]
        cal.update(series, 1, np.array([r]), half)
    return hits


def _seeded(gammas: tuple[float, ...], rng: np.random.Generator) -> OnlineConformal:
    cal = OnlineConformal(1, 1, ConformalParams(LEVELS, gammas))
    cal.reseed(rng.normal(size=(200, 1, 1)))
    return cal


ACI, DTACI = (), DEFAULT_GAMMAS  # experts; both with the outer ACI step 0.005


@pytest.mark.parametrize("gammas", [ACI, DTACI], ids=["aci", "dtaci"])
@pytest.mark.parametrize("noise", ["normal", "student"])
def test_coverage_within_two_points_on_exchangeable_data(noise: str, gammas: tuple[float, ...]) -> None:
    rng = np.random.default_rng(1)
    draw = rng.normal if noise == "normal" else (lambda size: rng.standard_t(3, size=size))
    hits = _run(_seeded(gammas, rng), draw(size=6000))
    for j, level in enumerate(LEVELS):
        assert abs(hits[:, j].mean() - level) <= 0.02, (level, hits[:, j].mean())


@pytest.mark.parametrize("gammas", [ACI, DTACI], ids=["aci", "dtaci"])
def test_recovers_after_a_variance_shift_where_a_static_interval_does_not(gammas: tuple[float, ...]) -> None:
    rng = np.random.default_rng(2)
    before, after = rng.normal(size=1000), 4.0 * rng.normal(size=2000)
    adaptive = _run(_seeded(gammas, rng), np.r_[before, after])[1000:]
    static_half = np.quantile(np.abs(before[:200]), LEVELS)  # split conformal fitted at the start
    static = np.abs(after)[:, None] <= static_half[None]
    assert (adaptive[:100].mean(axis=0) > static[:100].mean(axis=0) + 0.2).all()
    for j, level in enumerate(LEVELS):
        assert abs(adaptive[300:, j].mean() - level) <= 0.03


def test_dtaci_covers_more_than_one_small_step_right_after_a_variance_shift() -> None:
    rng = np.random.default_rng(5)
    before, after = rng.normal(size=1000), 4.0 * rng.normal(size=300)
    fast = _run(_seeded(DTACI, rng), np.r_[before, after])[1000:1100].mean(axis=0)
    slow = _run(_seeded(ACI, rng), np.r_[before, after])[1000:1100].mean(axis=0)
    assert (fast > slow + 0.04).all(), (fast, slow)


def test_a_glitchs_outcomes_widen_no_band_but_a_change_repeated_does() -> None:
    """Outcomes a thousand times beyond the rest (their truth was a sensor's 1e12) pulled a steered
    95 % band out to 1e12 for a dozen outcomes; REPEATS of them are a change, and are reached."""
    from adaptcast.drift.conformal import REPEATS

    rng = np.random.default_rng(7)
    cal = _seeded(DTACI, rng)
    _run(cal, rng.normal(size=100))
    _run(cal, np.full(REPEATS - 1, 1e12))
    for _ in range(40):
        assert cal.half_widths(["s"]).max() < 10
        _run(cal, rng.normal(size=1))
    _run(cal, np.full(REPEATS, 1e12))
    assert cal.half_widths(["s"]).max() >= 1e12


def test_no_step_size_is_a_rolling_split_conformal_quantile() -> None:
    cal = OnlineConformal(1, 1, ConformalParams((0.8,), (), 0.0, window=20))
    for r in range(1, 21):
        cal.update("s", 1, np.array([float(r)]), None)
    assert cal.half_widths(["s"])[0, 0, 0, 0] == 17.0  # ceil(0.8 * 21) = 17th smallest of 1..20


def test_a_series_reads_the_pool_rescaled_to_its_own_errors_until_its_own_ring_is_full() -> None:
    cal = OnlineConformal(2, 1, ConformalParams((0.8,), (), 0.0, window=40))
    cal.reseed(np.ones((40, 2, 1)))
    assert np.allclose(cal.half_widths(["new"]), 1.0)
    for _ in range(10):
        cal.update("small", 1, np.array([0.1]), None)
    # 10 of its own (< MIN_SCALE): the pool as it is (30 ones and its 10 residuals; 80 % = rank 33 of 40)
    assert cal.half_widths(["small"])[0, 0, 0, 0] == 1.0
    for _ in range(29):
        cal.update("big", 1, np.array([10.0]), None)
        cal.update("small", 1, np.array([0.1]), None)
    # 39 of its own: the pool (20 of "big"'s 10.0 above 20 of "small"'s 0.1) rescaled to each series'
    # own at the highest quantile it can say, its 5th largest (35th of 39), over the pool's at the same
    # quantile (36th of 40: 10.0); "new" (none of its own) reads the pool as it is
    half = cal.half_widths(["small", "big", "new"])[:, 0, 0, 0]
    assert np.allclose(half, [10.0 * 0.1 / 10.0, 10.0 * 10.0 / 10.0, 10.0])
    cal.update("small", 1, np.array([0.1]), None)
    half = cal.half_widths(["small"])[0, 0, :, 0]
    assert half[0] == 0.1 and half[1] == 1.0  # a full ring of its own at lead 1; none at lead 2


def test_a_series_on_another_scale_than_the_pool_keeps_its_coverage_and_width() -> None:
    """One series 100x and one 0.01x the scale of twenty others, swapped every 120 outcomes (three
    runs): each keeps 95 % coverage and a width near its own normal quantile (1.96 sigma), not the
    pool's."""
    scale = np.array([1.0] * 20 + [100.0, 0.01])
    names = [f"s{i}" for i in range(len(scale))]
    hits, widths = [], []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        cal = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
        for t in range(1600):
            if t % 120 == 0:
                cal.reseed(rng.normal(size=(len(scale), 1, 1)) * scale[:, None, None])
            half = cal.half_widths(names)[:, :, 0, :]  # [S, L, T]
            r = (rng.normal(size=len(scale)) * scale)[:, None]
            if t >= 200:
                hits.append(np.abs(r[-2:, 0])[:, None] <= half[-2:, :, 0])
                widths.append(half[-2:, -1, 0] / scale[-2:])
            cal.update_many(names, np.arange(len(names)), np.ones(len(names), dtype=np.int64), r, half)
    covered = np.mean(hits, axis=0)  # [2 series, levels]
    assert (np.abs(covered[:, -1] - LEVELS[-1]) <= 0.02).all(), covered
    assert (np.median(widths, axis=0) < 3.0).all()  # not the pool's scale (100x or 0.01x off)


def _right_after_swaps(labelled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Coverage ``[S, L]`` and median 95 % width over sigma ``[S]`` of three series of scales 1, 100 and
    0.01, over the first ``MIN_SCALE - 1`` outcomes after each swap (every 60), when the validation
    residuals the calibrator is reseeded with (50 a series) say whose they are or not."""
    rng = np.random.default_rng(11)
    scale = np.array([1.0, 100.0, 0.01])
    names = ["one", "hundred", "hundredth"]
    cal = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    hits, widths = [], []
    for t in range(1200):
        if t % 60 == 0:
            residuals = rng.normal(size=(len(scale), 50)) * scale[:, None]
            cal.reseed(residuals.reshape(-1, 1, 1), np.repeat(names, 50).tolist() if labelled else None)
        half = cal.half_widths(names)[:, :, 0, :]  # [S, L, T]
        r = (rng.normal(size=len(scale)) * scale)[:, None]
        if t % 60 < MIN_SCALE - 1:
            hits.append(np.abs(r) <= half[:, :, 0])
            widths.append(half[:, -1, 0] / scale)
        cal.update_many(names, np.arange(len(names)), np.ones(len(names), dtype=np.int64), r, half)
    return np.mean(hits, axis=0), np.median(widths, axis=0)


def test_validation_residuals_that_say_whose_they_are_give_each_series_its_scale_at_once() -> None:
    """Right after a swap, before a series has MIN_SCALE residuals of its own, it reads the pool at its
    own validation residuals' scale (its prior): 95 % of a normal is 1.96 sigma. Unlabelled, the pool
    is a mixture of three scales, and every series reads the same width."""
    covered, width = _right_after_swaps(labelled=True)
    assert (np.abs(covered[:, -1] - LEVELS[-1]) <= 0.04).all(), covered
    assert (np.abs(width - 1.96) < 0.6).all(), width
    _, mixed = _right_after_swaps(labelled=False)
    assert mixed[0] > 10 and mixed[2] > 1000  # the hundred's errors set everyone's width


def test_a_tail_the_validation_residuals_lacked_is_covered_from_the_series_own() -> None:
    """A labelled pool holds only validation residuals; a series whose live errors burst (15 % of them
    10x the rest) has about their median, so it reads the pool at its own scale, but the pool's tail
    has no burst, and no steering reaches past its widest residual (0.889 at 95 %). Once the series
    has MIN_SCALE residuals of its own, their quantile floors the band, and 95 % holds again."""
    rng = np.random.default_rng(13)
    names = ["calm", "bursts"]
    cal = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    hits = []
    for t in range(2000):
        if t % 100 == 0:
            cal.reseed(rng.normal(size=(100, 1, 1)), np.repeat(names, 50).tolist())
        half = cal.half_widths(names)[:, :, 0, :]  # [S, L, T]
        r = (rng.normal(size=2) * [1.0, 10.0 if rng.random() < 0.15 else 1.0])[:, None]
        if t % 100 >= MIN_SCALE:
            hits.append(np.abs(r) <= half[:, :, 0])
        cal.update_many(names, np.arange(2), np.ones(2, dtype=np.int64), r, half)
    covered = np.mean(hits, axis=0)  # [S, L]
    assert (covered[:, -1] >= LEVELS[-1] - 0.03).all(), covered


def test_levels_learnt_on_a_prior_are_not_counted_again_at_the_series_own_scale() -> None:
    """A series' errors grew 4x after its validation stretch; the pool beside it is heavy-tailed. While
    it reads the pool at its prior its bands miss, and the experts widen them. Once it holds
    MIN_SCALE residuals it reads the pool at its own scale, which has taken the growth up: its experts
    start afresh rather than widen again. Without that, its bands were 10-55x its sigma for days."""
    for seed in range(3):
        rng = np.random.default_rng(seed)
        names = ["grew", "other"]
        cal = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
        validation = np.concatenate([rng.normal(size=100), rng.standard_t(2, size=100)])
        cal.reseed(validation.reshape(-1, 1, 1), ["grew"] * 100 + ["other"] * 100)
        widths, hits = [], []
        for _ in range(MIN_SCALE + 100):
            half = cal.half_widths(names)[:, :, 0, :]  # [S, L, T]
            r = np.array([[rng.normal() * 4.0], [rng.standard_t(2)]])
            widths.append(half[0, -1, 0] / 4.0)
            hits.append(abs(r[0, 0]) <= half[0, -1, 0])
            cal.update_many(names, np.arange(2), np.ones(2, dtype=np.int64), r, half)
        assert max(widths[MIN_SCALE : MIN_SCALE + 40]) < 5.0, widths[MIN_SCALE : MIN_SCALE + 40]
        assert np.mean(hits[MIN_SCALE:]) >= 0.93


def test_a_prior_outlives_a_swap_without_enough_residuals_and_a_snapshot(tmp_path) -> None:
    cal = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    cal.reseed(np.full((2 * MIN_PRIOR, 1, 1), 4.0), ["a"] * MIN_PRIOR + ["b"] * MIN_PRIOR)
    assert cal.priors["a"] == pytest.approx(4.0)
    few = np.concatenate([np.full((MIN_PRIOR - 1, 1, 1), 8.0), np.full((MIN_PRIOR, 1, 1), 1.0)])
    cal.reseed(few, ["a"] * (MIN_PRIOR - 1) + ["b"] * MIN_PRIOR)
    assert cal.priors["a"] == pytest.approx(4.0) and cal.priors["b"] == pytest.approx(1.0)
    save_state(tmp_path / "c.npz", {"conformal": cal.state_dict()})
    back = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    back.load_state_dict(load_state(tmp_path / "c.npz")["conformal"])
    assert back.priors.keys() == cal.priors.keys() and np.array_equal(back.unit, cal.unit)
    assert np.array_equal(back.half_widths(["a", "b", "c"]), cal.half_widths(["a", "b", "c"]))


def test_one_series_reads_its_validation_residuals_alike_labelled_or_not() -> None:
    rng = np.random.default_rng(12)
    residuals = rng.normal(size=(60, 2, 1))
    plain, labelled = (OnlineConformal(2, 1, ConformalParams(LEVELS, DTACI)) for _ in range(2))
    plain.reseed(residuals)
    labelled.reseed(residuals, ["s"] * len(residuals))
    assert np.array_equal(plain.half_widths(["s"]), labelled.half_widths(["s"]))


def _swapped_often(seed: int) -> np.ndarray:
    """Coverage per level of 4 series whose errors drift slowly (AR(1), φ = 0.99), under a model swapped
    every 80 outcomes whose live error scale differs from its validation residuals' by 0.6–1.6×."""
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(4)]
    cal = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    err, hits = np.zeros(len(names)), []
    for t in range(2000):
        if t % 80 == 0:
            scale = rng.uniform(0.6, 1.6)
            cal.reseed(rng.normal(size=(200, 1, 1)))
        half = cal.half_widths(names)[:, :, 0, :]  # [S, L, T]
        err = 0.99 * err + np.sqrt(1 - 0.99**2) * rng.normal(size=len(names))
        hits.append(np.abs(scale * err)[:, None] <= half[:, :, 0])
        leads = np.ones(len(names), dtype=np.int64)
        cal.update_many(names, np.arange(len(names)), leads, scale * err[:, None], half)
    return np.array(hits[200:]).mean(axis=(0, 1))


def test_coverage_holds_through_frequent_swaps_when_errors_persist() -> None:
    """After a swap a series' few newest residuals are alike when errors persist, so an interval drawn
    from them alone (its largest, at 95 % with 20) covers too little; the pool holds the tail (0.936
    at 95 % when a series read its own ring from 20 residuals)."""
    covered = np.mean([_swapped_often(seed) for seed in range(3)], axis=0)
    for level, got in zip(LEVELS, covered, strict=True):
        assert abs(got - level) <= 0.01, (level, got)


def test_no_interval_before_any_residual() -> None:
    assert np.isnan(OnlineConformal(3, 2).half_widths(["s"])).all()


def test_reseed_forgets_residuals_and_experts_but_keeps_each_series_offset(tmp_path) -> None:
    rng = np.random.default_rng(3)
    cal = _seeded(DTACI, rng)
    # far wider than seeded, fewer than MIN_SCALE of its own (the pool is not rescaled yet): the
    # offset moves down (wider)
    _run(cal, 5.0 * rng.normal(size=MIN_SCALE - 1))
    offset = cal.experts["s"].offset.copy()
    assert (offset < 0).all()
    cal.reseed(np.full((10, 1, 1), 0.5))
    assert not cal.series  # its residuals are gone: the pooled validation ones serve
    assert np.allclose(cal.half_widths(["s"]), 0.5)
    ex = cal.experts["s"]
    assert (ex.alpha == 1.0 - np.asarray(LEVELS)[:, None, None]).all()  # every expert back at nominal
    assert (ex.weight == 1.0 / len(ex.weight)).all()
    assert np.array_equal(ex.offset, offset)
    save_state(tmp_path / "c.npz", {"conformal": cal.state_dict()})
    back = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    back.load_state_dict(load_state(tmp_path / "c.npz")["conformal"])
    assert np.array_equal(back.experts["s"].offset, offset)
    cal.forget(["s"])
    assert not cal.experts


def test_state_round_trip_gives_identical_intervals(tmp_path) -> None:
    rng = np.random.default_rng(4)
    cal = _seeded(DTACI, rng)
    _run(cal, rng.normal(size=300), "a")
    _run(cal, rng.normal(size=30), "b")
    save_state(tmp_path / "c.npz", {"conformal": cal.state_dict()})
    back = OnlineConformal(1, 1, ConformalParams(LEVELS, DTACI))
    back.load_state_dict(load_state(tmp_path / "c.npz")["conformal"])
    names = ["a", "b", "c"]
    assert np.array_equal(back.half_widths(names), cal.half_widths(names))
    other = OnlineConformal(1, 1, ConformalParams(LEVELS, ACI))  # other step sizes: rings kept, levels reset
    other.load_state_dict(cal.state_dict())
    assert not other.experts and np.array_equal(other.series["a"].values, cal.series["a"].values)
    with pytest.raises(ValueError, match="differ"):
        OnlineConformal(1, 1, ConformalParams((0.9,))).load_state_dict(cal.state_dict())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"levels": ()},
        {"levels": (1.0,)},
        {"gammas": (-0.1,)},
        {"gammas": (float("nan"),)},
        {"gamma": -0.1},
        {"window": 5},
        {"interval": 0},
    ],
)
def test_bad_parameters_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ConformalParams(**kwargs)


def test_level_names_and_winkler_score() -> None:
    assert [level_name(v) for v in (0.8, 0.95, 0.975)] == ["80", "95", "97.5"]
    y, lo, hi = np.array([0.0, -3.0, 3.0]), np.full(3, -1.0), np.full(3, 1.0)
    assert winkler(y, lo, hi, 0.8) == pytest.approx([2.0, 22.0, 22.0])


def test_realised_level_is_where_the_interval_stops_holding_the_truth() -> None:
    """DtACI's β: a level ``a`` holds the score exactly when ``a < β`` (the interval the loop would issue)."""
    rng = np.random.default_rng(6)
    ring = np.full((1, 1, 50), np.nan)
    ring[0, 0, :30] = np.abs(rng.normal(size=30))
    sorted_ = np.sort(ring, axis=2)
    pooled, zero = (sorted_, np.array([30])), np.zeros(1, dtype=np.int64)  # the ring of one series and lead
    for score in [1e-9, *np.abs(rng.normal(size=40)), 99.0]:
        no_prior = np.full((1, 1, 1), np.nan)
        beta = _realised_level(
            ring[None], np.array([[30]]), pooled, no_prior, zero, zero, np.array([[score]])
        )[0, 0]
        for a in np.linspace(-0.1, 1.1, 61):
            half = _quantile(sorted_[None], np.array([[30]]), np.full((1, 1, 1, 1), a))[0, 0, 0, 0]
            assert (score <= half) == (a < beta), (score, a, beta, half)


def test_bands_are_nested_across_levels() -> None:
    rng = np.random.default_rng(7)
    cal = OnlineConformal(1, 1, ConformalParams((0.95, 0.5, 0.8), DTACI))
    cal.reseed(np.abs(rng.normal(size=(200, 1, 1))))
    _run(cal, rng.normal(size=300))
    cal.experts["s"].offset[0] += 0.6  # the 95 % level steered past the 80 % one, as after a run of hits
    half = cal.half_widths(["s"])[0, :, 0, 0]
    assert half[1] <= half[2] == half[0], half
