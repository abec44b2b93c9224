"""Scenario generator: determinism, labelled events, and that each drift really happens."""

from __future__ import annotations

import numpy as np
import pytest

from adaptcast.streams.scenarios import SCENARIOS, make_scenario, shortest_path


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_deterministic_and_well_formed(name):
    a = make_scenario(name, seed=3, steps=400)
    b = make_scenario(name, seed=3, steps=400)
    c = make_scenario(name, seed=4, steps=400)
    assert a.frame.equals(b.frame)
    assert not a.frame.equals(c.frame)
    assert a.frame.columns == ["ts", "series", "y"]
    assert a.frame["y"].is_finite().all()
    per_series = a.frame.group_by("series").len()["len"]
    assert (per_series == 400).all()
    for ev in a.events:
        assert 0 < ev.start_step <= ev.end_step < 400
        assert set(ev.series) <= set(a.series)
    assert (name == "stationary") == (not a.events)


def _segment_stats(name, fn):
    sc = make_scenario(name, seed=0, steps=1000, series=3)
    ev = sc.events[0]
    wide = sc.wide().drop("date").to_numpy()
    before, after = wide[ev.start_step - 168 : ev.start_step], wide[ev.end_step + 1 : ev.end_step + 169]
    return fn(before), fn(after)


def test_level_shift_moves_the_mean():
    before, after = _segment_stats("level_shift", lambda x: x.mean(axis=0))
    assert (np.abs(after - before) > 3.0).all()


def test_variance_change_grows_the_noise():
    before, after = _segment_stats("variance", lambda x: np.diff(x, axis=0).std(axis=0))
    assert (after > 2.0 * before).all()


def test_seasonality_change_moves_the_daily_phase():
    sc = make_scenario("seasonality", seed=0, steps=1000, series=2)
    ev = sc.events[0]
    y = sc.wide().drop("date").to_numpy()[:, 0]
    before, after = y[ev.start_step - 48 : ev.start_step - 24], y[ev.start_step + 24 : ev.start_step + 48]
    # before the change, one day looks like the day before; across it, it does not
    same_day = np.abs(y[ev.start_step - 24 : ev.start_step] - before).mean()
    assert np.abs(after - before).mean() > 2 * same_day


def test_link_failure_zeroes_the_link_and_reroutes():
    sc = make_scenario("link_failure", seed=0, steps=600)
    wide = sc.wide()
    for ev in sc.events:
        down = ev.detail.split()[1]
        col = wide[down].to_numpy()
        assert (col[ev.start_step :] == 0).all() and (col[: ev.start_step] > 0).any()
        survivors = [s for s in ev.series if s != down]
        assert survivors, "a failure must shift load onto surviving links"
        jump = [abs(wide[s][ev.start_step] - wide[s][ev.start_step - 1]) for s in survivors]
        assert max(jump) > 0.5


def test_shortest_path_and_disconnected_error():
    edges = [("A", "B"), ("B", "C")]
    assert shortest_path(edges, "A", "C") == [("A", "B"), ("B", "C")]
    with pytest.raises(ValueError, match="disconnected"):
        shortest_path(edges, "A", "D")


def test_unknown_scenario_lists_choices():
    with pytest.raises(ValueError, match="level_shift"):
        make_scenario("nope")
