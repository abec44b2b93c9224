"""``bench/backtest_speed.py``: each recipe reaches the configuration it names (the Darts side is not run)."""

from __future__ import annotations

import pytest
from bench_module import load

BENCH = load("backtest_speed")


@pytest.mark.parametrize("recipe", list(BENCH.RECIPES))
def test_each_recipe_changes_only_what_it_names(recipe: str) -> None:
    cfg = BENCH.adaptcast_config(200, 5, recipe)
    changes = BENCH.RECIPES[recipe]
    # the booster both sides share, whatever the recipe
    for key, value in BENCH.BOOSTER.items():
        assert cfg.model.params[key] == value
    assert cfg.model.params["n_estimators"] == 5 and cfg.backtest.limit == 200
    assert cfg.model.params.get("window_norm", "none") == changes.get("window_norm", "none")
    assert cfg.adaptation.policy == changes.get("policy", f"periodic:{BENCH.RETRAIN_EVERY}")
    assert cfg.adaptation.window == changes.get("window", "full")
    assert cfg.adaptation.refit == changes.get("refit", True)
    assert cfg.model.params["early_stopping_rounds"] == changes.get("early_stopping_rounds", 0)
    assert cfg.adaptation.memory is False and cfg.intervals.method == "off"


def test_peer_near_best_is_its_cheapest_run_within_two_percent_of_its_best_mae() -> None:
    points = {
        "darts": {"cpu_s": 49.0, "mae": 2.056},
        "darts@50": {"cpu_s": 28.0, "mae": 2.054},
        "darts@25": {"cpu_s": 16.0, "mae": 2.145},  # 4 % worse than the best: too far to count
    }
    assert BENCH.peer_near_best(points) == "darts@50"
    assert BENCH.peer_near_best({"darts": points["darts"]}) == "darts"
