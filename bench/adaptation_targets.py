"""The issue's targets, each checked per dataset on means over seeds with paired 95 % intervals."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from adaptation_stats import complement, paired

from adaptcast.streams.report import pareto_front

DRIFT, DRIFT_VH, FULL_STACK = "drift", "drift+vh", "drift+vh+memory"
REFERENCES = ("never", "oracle")  # reference points, not candidates for "lowest MAE × compute"
GOALS: dict[str, Callable[[float, float], bool]] = {"<=": operator.le, "<": operator.lt, ">=": operator.ge}


@dataclass(frozen=True)
class Names:
    """Which configurations the targets compare: the periodic baselines and what the defaults are."""

    periodic: str  # periodic retraining on the full window, at the cadence drift is held against
    periodic_vh: str  # the same cadence on the Variance Horizon
    defaults: str  # the configuration a user gets without flags


def check(target: str, dataset: str, measure: str, ci: dict | None, goal: str, threshold: float) -> dict:
    """A measured value against its goal: ``met`` on the mean, ``ci_met`` on the whole CI (None: no CI)."""
    ok = GOALS[goal]
    value = None if ci is None else ci["mean"]
    bounds = None if ci is None or ci["low"] is None else [ci["low"], ci["high"]]
    return {
        "target": target,
        "dataset": dataset,
        "measure": measure,
        "value": value,
        "ci": bounds,
        "goal": f"{goal} {threshold:g}",
        "met": value is not None and ok(value, threshold),
        "ci_met": None if bounds is None else all(ok(v, threshold) for v in bounds),
    }


def targets(
    seeds: Callable[[str, str, str], dict[int, float | None]],
    ratios: dict[str, dict[str, dict[str, Any]]],
    labelled: dict[str, bool],
    names: Names,
) -> list[dict]:
    """Every target on every dataset.

    ``seeds(dataset, config, metric)`` gives per-seed values; ``ratios[dataset][config][metric]``
    each configuration's paired ratio to the baseline; ``labelled[dataset]`` whether it has labelled changes.
    """
    out = []
    for ds in ratios:

        def ratio(a: str, b: str, metric: str, ds: str = ds) -> dict | None:
            return paired(seeds(ds, a, metric), seeds(ds, b, metric), "ratio")

        out += dataset_targets(ds, ratio, labelled[ds], names)
    return out + pareto_targets(ratios)


def dataset_targets(
    ds: str, ratio: Callable[[str, str, str], dict | None], labelled: bool, names: Names
) -> list:
    """Defaults, drift, Variance Horizon and error-memory targets on one dataset."""
    p = names.periodic
    out = [
        check("defaults are safe", ds, f"MAE / {p}", ratio(names.defaults, p, "mae"), "<=", 1.02),
        check(
            "drift vs periodic",
            ds,
            "training work saved",
            complement(ratio(DRIFT, p, "samples_seen")),
            ">=",
            0.8,
        ),
        check("drift vs periodic", ds, f"MAE / {p}", ratio(DRIFT, p, "mae"), "<=", 1.02),
    ]
    for vh, full in ((DRIFT_VH, DRIFT), (names.periodic_vh, p)):
        target, mae = f"Variance Horizon ({vh} vs {full})", ratio(vh, full, "mae")
        out.append(
            check(target, ds, "training work saved", complement(ratio(vh, full, "samples_seen")), ">=", 0.5)
        )
        out.append(check(target, ds, "MAE ratio", mae, "<=", 1.15))
        if labelled:
            out.append(check(target, ds, "MAE ratio where the data changed", mae, "<", 1.0))
    post = ratio(FULL_STACK, DRIFT_VH, "post_event_mae")
    if post is not None:
        out.append(check("error memory", ds, "post-event MAE reduction", complement(post), ">=", 0.25))
    if ds == "stationary":
        out.append(check("error memory", ds, "MAE ratio", ratio(FULL_STACK, DRIFT_VH, "mae"), "<=", 1.02))
    return out


def pareto_targets(ratios: dict[str, dict[str, dict[str, Any]]]) -> list[dict]:
    """drift + VH + memory on each dataset's front; its share of lowest MAE × compute (to the baseline)."""
    out, best = [], {}
    for ds, configs in ratios.items():
        have = [c for c, r in configs.items() if r["mae"] and r["compute_s"]]
        mae = {c: configs[c]["mae"]["mean"] for c in have}
        cost = {c: configs[c]["compute_s"]["mean"] for c in have}
        front = dict(zip(have, pareto_front([cost[c] for c in have], [mae[c] for c in have]), strict=True))
        on = _point(float(front[FULL_STACK]) if FULL_STACK in front else None)
        out.append(
            check("drift + VH + memory on the Pareto front", ds, "on the front (1 = yes)", on, ">=", 1)
        )
        candidates = [c for c in have if c not in REFERENCES]
        if candidates:  # a run of only references (or without the baseline's ratios) has none
            best[ds] = min(candidates, key=lambda c: mae[c] * cost[c])
    share = sum(b == FULL_STACK for b in best.values()) / len(best) if best else None
    measure = "share of datasets (best: " + ", ".join(f"{d}: {b}" for d, b in best.items()) + ")"
    out.append(
        check("drift + VH + memory has the lowest MAE × compute", "all", measure, _point(share), ">=", 0.8)
    )
    return out


def _point(value: float | None) -> dict | None:
    """A value with no interval (a count or a yes/no)."""
    return None if value is None else {"mean": value, "low": None, "high": None, "n": 1}
