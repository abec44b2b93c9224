"""ReLoop2 error memory: bias correction, no harm when stationary, fixed memory, state, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adaptcast.drift import ErrorMemory, load_state, save_state
from adaptcast.drift.level import LevelTerm

D, H, T = 32, 24, 1


class Stream:
    """Non-centred embeddings (offset 5) with residuals = bias + N(0, noise)."""

    def __init__(self, seed: int = 0, noise: float = 0.5) -> None:
        self.rng = np.random.default_rng(seed)
        self.noise = noise

    def batch(self, b: int, bias: float = 0.0, t: int = T) -> tuple[np.ndarray, np.ndarray]:
        keys = (self.rng.normal(size=(b, D)) + 5.0).astype(np.float32)
        return keys, self.rng.normal(0.0, self.noise, (b, H, t)) + bias


def _mae_ratio(mem: ErrorMemory, keys: np.ndarray, res: np.ndarray) -> float:
    base = np.zeros_like(res)  # residual = y - yhat with yhat = 0
    corrected = mem.correct(keys, base)
    return float(np.abs(res - corrected).mean() / np.abs(res).mean())


def test_constant_bias_after_shift_is_corrected_within_50_updates() -> None:
    s = Stream(0)
    mem = ErrorMemory(dim=D, horizon=H, n_targets=T, decay=0.999, seed=1)
    for _ in range(20):  # before the shift: zero-mean residuals
        mem.update(*s.batch(32))
    ratios = []
    for _ in range(50):
        ratios.append(_mae_ratio(mem, *s.batch(256, bias=3.0)))
        mem.update(*s.batch(32, bias=3.0))
    final = _mae_ratio(mem, *s.batch(512, bias=3.0))
    assert ratios[0] > 0.95  # nothing learnt yet about the bias
    assert final <= 0.30
    assert mem.hit_ratio > 0.99 and mem.mean_abs_correction > 0.5


def test_without_decay_bias_still_mostly_corrected() -> None:
    s = Stream(2)
    mem = ErrorMemory(dim=D, horizon=H, n_targets=T, seed=3)
    for _ in range(100):
        mem.update(*s.batch(32, bias=-2.0))
    assert _mae_ratio(mem, *s.batch(512, bias=-2.0)) <= 0.30


def test_stationary_zero_mean_residuals_change_mae_by_less_than_2_percent() -> None:
    s = Stream(4, noise=1.0)
    mem = ErrorMemory(dim=D, horizon=H, n_targets=T, seed=5)
    for _ in range(100):
        mem.update(*s.batch(32))
    ratio = _mae_ratio(mem, *s.batch(2000))
    assert abs(ratio - 1.0) < 0.02


def test_key_dependent_bias_uses_similarity() -> None:
    # two clusters of embeddings with opposite biases: one global mean would correct nothing
    rng = np.random.default_rng(7)
    centres = rng.normal(size=(2, D)) * 3 + 5.0
    mem = ErrorMemory(dim=D, horizon=4, n_targets=1, seed=8, tables=8, bits=4)

    def batch(b: int):
        c = rng.integers(0, 2, b)
        keys = centres[c] + rng.normal(size=(b, D)) * 0.5
        res = np.where(c == 0, 2.0, -2.0)[:, None, None] + rng.normal(0, 0.3, (b, 4, 1))
        return keys, res

    for _ in range(40):
        mem.update(*batch(64))
    k, r = batch(500)
    assert _mae_ratio(mem, k, r) < 0.25


def test_temperature_controls_table_weighting() -> None:
    s = Stream(16)
    mems = [ErrorMemory(dim=D, horizon=H, n_targets=T, seed=2, tau=tau, prior=0.0) for tau in (0.01, 1e6)]
    for _ in range(20):
        k, r = s.batch(32)
        r += (k[:, :1, None] - 5.0) * 2.0  # residual depends on the key: buckets disagree
        for m in mems:
            m.update(k, r)
    k, _ = s.batch(64)
    sharp, flat = (m.correction(k) for m in mems)
    assert not np.allclose(sharp, flat)
    # tau -> inf: plain average of the matched buckets' mean residuals
    m = mems[1]
    z = m._standardise(k.astype(np.float64))
    idx = m._buckets(z)
    c = m._counts[idx]
    occ = c > 0
    est = np.divide(m._sums[idx], c[..., None], out=np.zeros_like(m._sums[idx]), where=occ[..., None])
    expected = est.sum(axis=1) / np.maximum(occ.sum(axis=1), 1)[:, None]
    np.testing.assert_allclose(flat.reshape(64, -1), expected, rtol=1e-4, atol=1e-5)


def test_memory_is_fixed_by_configuration() -> None:
    mem = ErrorMemory(dim=D, horizon=H, n_targets=2, tables=4, bits=5)
    expected = (
        4 * 32 * (2 * H * 2 + D + 1) * 8 + D * 4 * 5 * 8 + 2 * D * 8
    )  # sums + value weights, key sums, count
    assert mem.nbytes == expected
    s = Stream(9)
    for _ in range(200):
        mem.update(*s.batch(64, t=2))
    assert mem.nbytes == expected
    bigger = ErrorMemory(dim=D, horizon=H, n_targets=2, tables=4, bits=6)
    assert bigger.nbytes > mem.nbytes


def test_reset_forgets_everything() -> None:
    s = Stream(10)
    mem = ErrorMemory(dim=D, horizon=H, n_targets=T)
    for _ in range(10):
        mem.update(*s.batch(32, bias=5.0))
    k, _r = s.batch(16, bias=5.0)
    assert np.abs(mem.correction(k)).mean() > 1.0
    mem.reset()
    assert np.array_equal(mem.correction(k), np.zeros((16, H, T)))
    assert mem.n_updates == 0 and mem.hit_ratio == 0.0


def test_misses_leave_forecast_unchanged_and_count() -> None:
    mem = ErrorMemory(dim=D, horizon=H, n_targets=T)
    k, _r = Stream(11).batch(8)
    y = np.arange(8 * H, dtype=float).reshape(8, H, 1)
    assert np.array_equal(mem.correct(k, y), y)
    assert mem.n_lookups == 8 and mem.n_hits == 0


def test_two_d_yhat_for_single_target_keeps_shape() -> None:
    mem = ErrorMemory(dim=D, horizon=H, n_targets=1)
    k, r = Stream(12, noise=0.01).batch(4, bias=1.0)
    mem.update(k, r[:, :, 0])
    out = mem.correct(k, np.zeros((4, H)))
    assert out.shape == (4, H) and np.isfinite(out).all() and (out > 0).all()


def test_decay_forgets_old_errors() -> None:
    s = Stream(13)
    fast = ErrorMemory(dim=D, horizon=H, n_targets=T, decay=0.99)
    slow = ErrorMemory(dim=D, horizon=H, n_targets=T)
    for mem in (fast, slow):
        for _ in range(30):
            mem.update(*s.batch(64, bias=4.0))
    for _ in range(20):
        kb, rb = s.batch(64, bias=0.0)
        fast.update(kb, rb)
        slow.update(kb, rb)
    k, _ = s.batch(200)
    assert np.abs(fast.correction(k)).mean() < 0.3 * np.abs(slow.correction(k)).mean()


def test_decay_renormalisation_keeps_values_finite() -> None:
    s = Stream(14)
    mem = ErrorMemory(dim=D, horizon=2, n_targets=1, decay=0.9, tables=2, bits=2, prior=0.0)
    for _ in range(60):
        k = (s.rng.normal(size=(256, D)) + 5).astype(np.float32)
        mem.update(k, np.full((256, 2, 1), 1.5))
    c = mem.correction(k)
    assert np.isfinite(c).all()
    np.testing.assert_allclose(c, 1.5 * mem.lam, rtol=0.05)


def test_state_round_trip_identical(tmp_path) -> None:
    s = Stream(15)
    mem = ErrorMemory(dim=D, horizon=H, n_targets=T, decay=0.995, seed=3)
    for _ in range(25):
        mem.update(*s.batch(32, bias=1.0))
    k, r = s.batch(64)
    mem.correct(k, np.zeros_like(r))
    path = save_state(tmp_path / "mem.npz", {"memory": mem.state_dict()})
    back = ErrorMemory.from_state(load_state(path)["memory"])
    a, b = mem.state_dict(), back.state_dict()
    for key in a:
        if isinstance(a[key], np.ndarray):
            assert np.array_equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key
    k2, r2 = s.batch(32, bias=2.0)
    mem.update(k2, r2)
    back.update(k2, r2)
    assert np.array_equal(mem.correct(k, np.zeros_like(r)), back.correct(k, np.zeros_like(r)))


def test_state_with_other_params_refused() -> None:
    with pytest.raises(ValueError, match="parameters differ"):
        ErrorMemory(dim=4, horizon=2).load_state_dict(ErrorMemory(dim=4, horizon=3).state_dict())


def test_shape_errors_are_clear() -> None:
    mem = ErrorMemory(dim=4, horizon=3, n_targets=2)
    with pytest.raises(ValueError, match=r"keys must have shape \[B, 4\]"):
        mem.update(np.zeros((2, 5)), np.zeros((2, 3, 2)))
    with pytest.raises(ValueError, match="residuals must have shape"):
        mem.update(np.zeros((2, 4)), np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="empty"):
        mem.correct(np.zeros((0, 4)), np.zeros((0, 3, 2)))
    with pytest.raises(ValueError):
        ErrorMemory(dim=4, horizon=3, bits=0)


bad = st.sampled_from([math.nan, math.inf, -math.inf])


@settings(max_examples=30, deadline=None)
@given(bad=bad, where=st.sampled_from(["key", "res", "yhat"]), b=st.integers(1, 8), pos=st.integers(0, 1000))
def test_non_finite_input_raises_and_never_leaks_nan(bad, where, b, pos) -> None:
    mem = ErrorMemory(dim=4, horizon=3, n_targets=1, seed=0)
    rng = np.random.default_rng(pos)
    mem.update(rng.normal(size=(16, 4)), rng.normal(size=(16, 3, 1)))
    keys, res, yhat = rng.normal(size=(b, 4)), rng.normal(size=(b, 3, 1)), rng.normal(size=(b, 3, 1))
    arr = {"key": keys, "res": res, "yhat": yhat}[where]
    arr.flat[pos % arr.size] = bad
    with pytest.raises(ValueError, match="NaN or inf"):
        if where == "yhat":
            mem.correct(keys, yhat)
        else:
            mem.update(keys, res)
    # the failed call left the memory usable and finite
    out = mem.correct(rng.normal(size=(b, 4)), rng.normal(size=(b, 3, 1)))
    assert np.isfinite(out).all()


def test_overflow_is_an_error_not_a_nan() -> None:
    mem = ErrorMemory(dim=4, horizon=2, n_targets=1, warmup=0, prior=0.0)
    k = np.ones((2, 4))
    with np.errstate(over="ignore"):
        mem.update(k, np.full((2, 2, 1), 1e308))
        mem.update(k, np.full((2, 2, 1), 1e308))  # bucket sum overflows to inf
    with pytest.raises(ValueError, match="overflow"):
        mem.correct(k, np.zeros((2, 2, 1)))


@settings(max_examples=25, deadline=None)
@given(
    scale=st.floats(1e-6, 1e6),
    b=st.integers(1, 40),
    prior=st.sampled_from([0.0, 2.0]),
    decay=st.sampled_from([1.0, 0.5]),
)
def test_extreme_but_finite_inputs_stay_finite(scale, b, prior, decay) -> None:
    mem = ErrorMemory(dim=4, horizon=2, n_targets=1, warmup=8, prior=prior, decay=decay)
    assert np.isfinite(mem.correct(np.ones((b, 4)), np.zeros((b, 2, 1)))).all()  # all misses
    rng = np.random.default_rng(b)
    keys = rng.normal(size=(b, 4)) * scale
    mem.update(keys, rng.normal(size=(b, 2, 1)) * scale)
    mem.update(np.zeros((b, 4)), np.zeros((b, 2, 1)))  # constant keys: zero variance dims
    assert np.isfinite(mem.correct(keys, np.zeros((b, 2, 1)))).all()


def test_partial_updates_correct_only_the_leads_that_are_known() -> None:
    mem = ErrorMemory(dim=D, horizon=H, n_targets=1, tables=4, bits=3, prior=0.0, warmup=0, tau=1.0)
    keys = np.random.default_rng(3).normal(size=(32, D))
    resid = np.full((32, H, 1), 2.0)
    mask = np.zeros((32, H, 1), dtype=bool)
    mask[:, 0] = True  # only lead 1 observed so far
    mem.update(keys, resid, mask)
    corr = mem.correction(keys)
    np.testing.assert_allclose(corr[:, 0, 0], 2.0)
    np.testing.assert_allclose(corr[:, 1:, :], 0.0)  # nothing known yet at leads 2..H
    mask[:] = True
    mem.update(keys, np.full((32, H, 1), 4.0), mask)
    corr = mem.correction(keys)
    np.testing.assert_allclose(corr[:, 0, 0], 3.0)  # lead 1 averages its two observations
    np.testing.assert_allclose(corr[:, 1:, 0], 4.0)
    with pytest.raises(ValueError, match="mask"):
        mem.update(keys, resid, mask[:, :1])


def test_step_decay_is_per_step_not_per_update() -> None:
    """Forgetting follows the clock: the same steps forget as much with 1 or 50 records per step."""
    keys = np.repeat(np.random.default_rng(5).normal(size=(1, D)), 50, axis=0)  # one bucket per table
    mems = [
        ErrorMemory(dim=D, horizon=H, n_targets=T, step_decay=0.9, warmup=0, prior=0.0, seed=2)
        for _ in range(2)
    ]
    for mem, per_step in zip(mems, (1, 50), strict=True):
        mem.update(keys[:per_step], np.full((per_step, H, T), 1.0))
        mem.advance(20)
        mem.update(keys[:per_step], np.full((per_step, H, T), -1.0))
    a, b = (m.correction(keys[:1]) for m in mems)
    old = 0.9**20  # the +1 records weigh this much of the -1 ones
    np.testing.assert_allclose(a, (old - 1) / (old + 1), rtol=1e-9)
    np.testing.assert_allclose(b, a, rtol=1e-9)


def test_level_term_switches_on_after_a_shift_and_stays_off_on_noise() -> None:
    rng = np.random.default_rng(6)
    level = LevelTerm(n_targets=1)
    for _ in range(200):
        level.update(["quiet"], rng.normal(size=(1, 1)))
    quiet_on = 0
    for _ in range(500):
        level.update(["quiet"], rng.normal(size=(1, 1)))
        quiet_on += level.offset(["quiet"])[0, 0] != 0.0
    assert quiet_on < 0.1 * 500  # noise rarely passes the gate
    for _ in range(10):
        level.update(["shifted"], 5.0 + 0.1 * rng.normal(size=(1, 1)))
    assert level.offset(["shifted"])[0, 0] > 4.0
    back = LevelTerm(n_targets=1)
    back.load_state_dict(level.state_dict())
    np.testing.assert_array_equal(back.offset(["quiet", "shifted"]), level.offset(["quiet", "shifted"]))


def test_clip_bounds_what_one_surprise_can_teach() -> None:
    """A residual beyond ``clip`` is stored as ``clip``: one jump after a still window cannot make the
    memory serve a correction of its size to every window keyed like it."""
    s = Stream(21, noise=0.0)
    keys, _ = s.batch(8)
    huge = np.full((8, H, T), 500.0)
    clipped, free = (
        ErrorMemory(dim=D, horizon=H, clip=3.0, prior=0.0),
        ErrorMemory(dim=D, horizon=H, prior=0.0),
    )
    for mem in (clipped, free):
        mem.update(keys, huge)
    assert np.allclose(clipped.correction(keys), 3.0) and np.allclose(free.correction(keys), 500.0)
    assert clipped.params()["clip"] == 3.0 and "clip" not in free.params()  # older states still load
    assert ErrorMemory.from_state(clipped.state_dict()).clip == 3.0
    with pytest.raises(ValueError, match="clip"):
        ErrorMemory(dim=D, horizon=H, clip=0.0)


def test_a_memory_in_window_deviations_is_clipped() -> None:
    """Under ``window_norm: standard`` the loop stores residuals in window deviations, so the new
    model's memory clips them (``WINDOW_UNITS_CLIP``); in the targets' units it does not."""
    from adaptcast.forecast.base import create_forecaster
    from adaptcast.streams.assess import WINDOW_UNITS_CLIP, fresh_memory

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 12, 1)).astype(np.float32)
    Y = rng.normal(size=(64, 4, 1)).astype(np.float32)
    for norm, clip in (("standard", WINDOW_UNITS_CLIP), ("none", None)):
        model = create_forecaster("naive", lookback=12, horizon=4, window_norm=norm)
        model.fit(X, Y)
        assert fresh_memory(model, {}, X).clip == clip, norm
    assert fresh_memory(model, {"clip": 1.0}, X).clip == 1.0  # a configured clip is kept
