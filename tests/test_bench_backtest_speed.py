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
    assert cfg.adaptation.memory is False and cfg.intervals.method == "off"
