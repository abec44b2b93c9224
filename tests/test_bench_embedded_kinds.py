"""``bench/embedded_kinds.py``: each kind as a user runs it, timed in its own process, summary parsed."""

from __future__ import annotations

import json

import pytest
from bench_module import load

BENCH = load("embedded_kinds")


def test_the_summary_line_is_parsed():
    line = (
        "adaptcast run: scenario level_shift (4 series): 2688 records, 2208 forecasts, 26184 scored points, "
        "MAE 0.6849, 5 drift alarms, 18 retrains, 0 records rejected, model arnet v18, 2.0 s"
    )
    found = BENCH.SUMMARY.search(line)
    assert found and (found["mae"], found["alarms"], found["retrains"], found["seconds"]) == (
        "0.6849",
        "5",
        "18",
        "2.0",
    )


def test_a_kind_is_timed_in_a_fresh_process_and_judged_against_the_bound(tmp_path, capsys):
    out = tmp_path / "kinds.json"
    BENCH.main(["--kinds", "naive", "--seeds", "0", "--out", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    (run,) = printed["runs"]
    assert run["kind"] == "naive" and run["retrains"] >= 1 and run["mae"] > 0
    assert run["wall_s"] >= run["run_s"] > 0 and run["cpu_s"] > 0
    assert printed["every_kind_under_bound"] == (run["wall_s"] < printed["bound_s"])


def test_a_failing_run_stops_the_bench_with_its_error():
    with pytest.raises(
        SystemExit, match=r"(?s)adaptcast run --model naive failed \(exit 2\).*unknown scenario"
    ):
        BENCH.run_kind("naive", 0, "no_such_scenario")
