"""Multi-event scenarios: events where they are said to be, of the stated size, each really happening."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from adaptcast.streams.scenarios import WEEK, change_steps, make_scenario

STEPS, SERIES = 2000, 3


def _wide(name: str):
    sc = make_scenario(name, series=SERIES, steps=STEPS, seed=0)
    return sc, sc.wide().drop("date").to_numpy()


def test_change_steps_leave_equal_segments():
    assert change_steps(400, 3) == [100, 200, 300]
    assert change_steps(3840, 3) == [960, 1920, 2880]


@pytest.mark.parametrize(
    "name", ["level_shifts", "level_shifts_subtle", "trend_breaks", "variance_shifts", "link_failures"]
)
def test_events_are_evenly_spaced(name):
    sc = make_scenario(name, series=SERIES, steps=STEPS, seed=1, events=4)
    assert [e.start_step for e in sc.events] == change_steps(STEPS, 4)
    assert sc.name == name and all(e.abrupt for e in sc.events)


def _noise_sd(segment: np.ndarray) -> np.ndarray:
    """Noise σ per column: a one-week difference cancels the daily and weekly cycles, leaving σ·√2."""
    return (segment[WEEK:] - segment[:-WEEK]).std(axis=0) / np.sqrt(2)


@pytest.mark.parametrize(("name", "low", "high"), [("level_shifts", 5, 10), ("level_shifts_subtle", 1, 3)])
def test_level_shifts_have_the_stated_size_in_noise_sigma(name, low, high):
    sc, y = _wide(name)
    _, base = _wide("stationary")  # the same draws without the shifts
    sigma = _noise_sd(base[:500])
    previous = np.zeros(SERIES)
    for ev in sc.events:
        total = (y - base)[ev.start_step + 10 : ev.start_step + 200].mean(axis=0)  # cumulative level step
        step = (total - previous) / sigma
        previous = total
        assert ((np.abs(step) > 0.8 * low) & (np.abs(step) < 1.2 * high)).all(), (ev.detail, step)


def test_variance_shifts_alternate_up_and_down():
    sc, y = _wide("variance_shifts")
    bounds = [0, *[e.start_step for e in sc.events], STEPS]
    sd = [_noise_sd(y[a + 1 : b]) for a, b in itertools.pairwise(bounds)]
    assert (sd[1] > 2 * sd[0]).all() and (sd[2] < 0.5 * sd[1]).all() and (sd[3] > 2 * sd[2]).all()


def test_trend_breaks_bend_the_series():
    sc, y = _wide("trend_breaks")
    _, base = _wide("stationary")
    drift = y - base
    ev = sc.events[0]
    assert np.abs(drift[: ev.start_step]).max() < 1e-9
    assert (np.abs(drift[ev.start_step + 240]) > np.abs(drift[ev.start_step + 24])).all()


def test_link_failures_cut_one_more_link_each_time():
    sc = make_scenario("link_failures", steps=STEPS, seed=0, events=3)
    wide = sc.wide()
    down = [ev.detail.split()[1] for ev in sc.events]
    assert len(set(down)) == 3
    for ev, link in zip(sc.events, down, strict=True):
        col = wide[link].to_numpy()
        assert (col[ev.start_step :] == 0).all() and (col[: ev.start_step] > 0).any()
