"""``bench/retrain_stall.py``: a retrain's windows and assessment are not the serving thread's work."""

from __future__ import annotations

import argparse

from bench_module import load

BENCH = load("retrain_stall")


def test_a_round_counts_the_work_it_moved_and_what_the_child_is_handed():
    args = argparse.Namespace(series=3, rows=700, model="arnet", lookback=12, horizon=3)
    got = BENCH.one_round(args, seed=0)
    assert got["event"] == "Retrained"
    assert got["windows"] == 3 * (700 - 12 - 3 + 1)
    assert 0 < got["validation_windows"] < got["windows"]
    assert got["bytes_to_child"] == 3 * 700 * 4  # the float32 histories, one channel
    assert got["bytes_as_windows"] > 12 * got["bytes_to_child"]  # each row is in ~lookback + horizon windows
