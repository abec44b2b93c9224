"""``bench/series_churn.py``: forgetting silent series bounds what the loop holds and loses no forecast."""

from __future__ import annotations

from bench_module import load

BENCH = load("series_churn")


def test_forgetting_holds_the_live_series_and_forecasts_the_same():
    model = BENCH.trained_arnet(12, 3, epochs=2)
    polls = BENCH.churn(live=4, life=30, steps=400)
    runs = {}
    for name, after in (("never", BENCH.NEVER), ("forget", 40)):
        loop = BENCH.make_loop(model, intervals="dtaci")
        loop.forget_after = after
        runs[name] = BENCH.run(loop, polls, every=100)
    assert runs["never"]["series_held_at_end"] == len({r.series for p in polls for r in p})
    assert runs["forget"]["series_held_at_end"] <= 4 * (1 + (40 + 64) // 30 + 1)
    assert runs["forget"]["forecasts"] == runs["never"]["forecasts"]
