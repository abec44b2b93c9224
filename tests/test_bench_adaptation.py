"""Smoke test of bench/adaptation.py --quick: the structure of what it writes and invariants of its runs.

Never asserts on seconds or on which configuration wins.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from adaptcast.streams.config import AdaptationConfig

pytestmark = pytest.mark.slow  # about 20 s of CPU: a short bench run end to end

ROOT = Path(__file__).resolve().parents[1]
# the baselines, the oracle, the targets' configurations and one warm-started one (not all: time)
CONFIGS = [
    "never",
    "periodic:24",
    "oracle",
    "drift",
    "drift+vh",
    "drift+vh+memory",
    "defaults",
    "periodic:24+warm",
]


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[dict, dict, Path]:
    out = tmp_path_factory.mktemp("bench") / "adaptation.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "adaptation.py"),
            "--quick",
            "--out",
            str(out),
            "--configs",
            *CONFIGS,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout), json.loads(out.read_text()), out


def test_prints_ratios_to_the_baseline_and_the_target_checks(bench):
    printed, result, _ = bench
    base = printed["baseline"]
    assert base == result["names"]["periodic"]
    for ds, configs in printed["ratios"].items():
        assert configs[base]["mae"] == [1.0, 1.0, 1.0], ds  # the baseline against itself
        assert {"never", "drift", "drift+vh", "drift+vh+memory"} <= set(configs)
    assert printed["targets"] and {
        "target",
        "dataset",
        "measure",
        "value",
        "ci",
        "goal",
        "met",
        "ci_met",
    } <= set(printed["targets"][0])
    assert printed["targets_met"].endswith(f"of {len(printed['targets'])}")


def test_fit_counts_follow_the_policies(bench):
    _, result, _ = bench
    rows = result["rows"]
    assert {r["seed"] for r in rows} == {0, 1}
    for r in rows:
        assert r["n_fits"] == sum(r["fit_outcomes"].values()) >= r["n_swaps"] >= 1
        assert r["samples_seen"] > 0
        assert (r["memory_samples"] > 0) == result["configs"][r["config"]]["memory"]
        if r["config"] == "never":
            assert r["n_fits"] == 1
        if r["config"] == "oracle":
            assert r["labelled_events"] > 0 and r["n_fits"] == r["labelled_events"] + 1
            assert r["n_swaps"] == r["n_fits"]  # no gate: every oracle refit serves
    assert any(r["config"] == "oracle" for r in rows)
    assert all(r["config"] != "oracle" for r in rows if r["labelled_events"] == 0)


def test_repeats_reproduce_everything_but_seconds(bench):
    _, result, _ = bench
    for configs in result["summary"].values():
        for s in configs.values():
            assert len(s["train_s_repeats"]) == result["args"]["repeats"] == 2
            assert s["repeats_agree"]
            assert s["mae"]["n"] == 2 and s["mae"]["low"] <= s["mae"]["mean"] <= s["mae"]["high"]


def test_writes_the_markdown_and_a_pareto_chart_per_dataset(bench):
    _, result, out = bench
    text = out.with_suffix(".md").read_text()
    for ds in result["summary"]:
        assert f"**{ds}**" in text
        assert (out.parent / f"{out.stem}_pareto_{ds}.png").is_file()
    assert len(result["figures"]) == len(result["summary"])


def _setups():
    sys.path.insert(0, str(ROOT / "bench"))  # bench/adaptation.py imports its sibling modules
    import adaptation

    return adaptation.setups


def test_a_configuration_name_is_its_base_with_each_modifier_applied() -> None:
    table, names = _setups()([24, 96, 384], "warm", "none", ["defaults+norm+cold", "periodic:96+vh"])
    assert names.periodic == "periodic:24" and names.defaults in table
    assert table["periodic:24"].refit_mode == "warm"  # the bench-wide mode
    assert (
        table[names.defaults].refit_mode == AdaptationConfig().refit_mode
    )  # the product's defaults: their own
    both = table["defaults+norm+cold"]
    assert (both.window_norm, both.refit_mode, both.memory) == ("last", "cold", True)
    assert (table["periodic:96+vh"].window, table["periodic:96+vh"].policy) == ("vh", "periodic:96")
    assert table["drift+vh+memory"].window == "vh" and table["drift+vh+memory"].memory


@pytest.mark.parametrize("name", ["drift+fast", "hourly+vh"])
def test_an_unknown_base_or_modifier_names_the_valid_spellings(name: str) -> None:
    with pytest.raises(SystemExit, match=r"a base .* then \+modifiers"):
        _setups()([24, 96, 384], extra=[name])


def test_the_pareto_checks_of_a_run_with_only_reference_configurations_have_no_best() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import adaptation_targets

    point = {"mean": 1.0, "low": 0.9, "high": 1.1, "n": 3}
    checks = adaptation_targets.pareto_targets({"stationary": {"never": {"mae": point, "compute_s": point}}})
    share = checks[-1]
    assert share["value"] is None and share["met"] is False and "best: )" in share["measure"]
