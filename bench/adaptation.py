"""Error against compute for the adaptation policies, over seeds, with paired 95 % intervals.

Every dataset (multi-event scenarios, stationary, windows of ETTh1) and seed is replayed through
the backtest loop under each configuration: never, periodic at three cadences (full window), an
oracle that retrains after each labelled change, drift, periodic and drift on the Variance
Horizon, and drift + VH + error memory. Training work is the samples seen summed over fits
(deterministic); compute seconds are the CPU seconds of training, error memory and detection;
seed 0 is run ``--repeats`` times for the median training CPU seconds. Prints JSON: ratios to the
first periodic cadence run here, and the issue's target checks. Writes the full JSON, a markdown
summary and one Pareto PNG per dataset.

    python bench/adaptation.py                  # everything (about two hours on 2 busy cores)
    python bench/adaptation.py --quick          # seconds: 2 seeds, short streams, one-epoch AR-Net
    python bench/adaptation.py --datasets level_shifts etth1 --seeds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from adaptation_oracle import OraclePolicy
from adaptation_report import markdown, pareto_pngs
from adaptation_stats import mean_ci, paired
from adaptation_targets import DRIFT, DRIFT_VH, FULL_STACK, Names, targets
from tqdm import tqdm

from adaptcast.forecast.data import SeriesFrame, read_series
from adaptcast.streams.backtest import run_config
from adaptcast.streams.config import AdaptationConfig, Config, load_config
from adaptcast.streams.feed import time_batches
from adaptcast.streams.scenarios import make_scenario

ROOT = Path(__file__).resolve().parents[1]
ETT = ROOT.parent / "shared" / "data" / "ett" / "ETTh1.csv"
DATASETS = (
    "stationary",
    "level_shifts",
    "level_shifts_subtle",
    "trend_breaks",
    "variance_shifts",
    "link_failures",
    "etth1",
)
SEGMENTS = 4  # the multi-event scenarios put 3 changes into 4 equal segments
ORACLE = "oracle"
SUMMED = ("mae", "post_event_mae", "samples_seen", "compute_s", "n_fits", "n_swaps")


@dataclass(frozen=True)
class Setup:
    """One configuration: a product policy spec (or the bench's oracle), a window rule, error memory,
    how retrains start (``refit_mode``), the model's per-window normalisation (``window_norm``) and
    whether the memory's correction is gated on it beating the bare model (``memory_gate``)."""

    policy: str
    window: str
    memory: bool
    refit_mode: str = "cold"
    window_norm: str = "none"
    memory_gate: bool = True


MODIFIERS: dict[str, dict[str, Any]] = {  # "+name" suffixes of a configuration name and what each changes
    "vh": {"window": "vh"},
    "memory": {"memory": True},
    "cold": {"refit_mode": "cold"},
    "warm": {"refit_mode": "warm"},
    "auto": {"refit_mode": "auto"},
    "closed": {"refit_mode": "closed_form"},
    "norm": {"window_norm": "last"},
    "nogate": {"memory_gate": False},
}


def setups(
    every: list[int], refit_mode: str = "cold", window_norm: str = "none", extra: list[str] | None = None
) -> tuple[dict[str, Setup], Names]:
    """The compared configurations by name, and which of them the targets read.

    ``refit_mode`` and ``window_norm`` apply to every configuration that does not name its own;
    ``extra`` adds configurations spelled as a base (never, periodic:E, oracle, drift, defaults)
    followed by ``+`` modifiers (:data:`MODIFIERS`), e.g. ``defaults+norm+closed``.
    """
    periodic = [f"periodic:{e}" for e in every]
    base = {"refit_mode": refit_mode, "window_norm": window_norm}
    bases = {
        "never": Setup("never", "full", False, **base),
        **{p: Setup(p, "full", False, **base) for p in periodic},
        ORACLE: Setup(ORACLE, "full", False, **base),
        DRIFT: Setup("drift", "full", False, **base),
    }
    d = AdaptationConfig()
    defaults = Setup(d.policy, d.window, d.memory, d.refit_mode, memory_gate=d.memory_gate)  # no flags
    name = next((k for k, v in bases.items() if v == defaults), "defaults")
    bases.setdefault(name, defaults)
    names = [
        *bases,
        f"{periodic[0]}+vh",
        DRIFT_VH,
        FULL_STACK,  # issue 15's options beside the defaults: warm-started refits, level-invariant inputs
        f"{periodic[0]}+warm",
        f"{periodic[0]}+closed",
        f"{name}+auto",
        f"{name}+norm",
        *(extra or []),
    ]
    table = {n: compose(n, bases) for n in dict.fromkeys(names)}
    return table, Names(periodic[0], f"{periodic[0]}+vh", name)


def compose(name: str, bases: dict[str, Setup]) -> Setup:
    """The setup a name spells: its base configuration with each ``+modifier`` applied in turn."""
    head, *mods = name.split("+")
    if head not in bases or any(m not in MODIFIERS for m in mods):
        raise SystemExit(
            f"unknown configuration {name!r}: a base ({', '.join(bases)}) then +modifiers "
            f"({', '.join(MODIFIERS)}), e.g. drift+vh+memory"
        )
    out = bases[head]
    for m in mods:
        out = replace(out, **MODIFIERS[m])
    return out


def dataset(name: str, seed: int, args: argparse.Namespace) -> SeriesFrame:
    """A scenario generated with ``seed``, or for ``etth1`` the ``seed``-th of evenly spread windows of OT."""
    steps = SEGMENTS * args.segment
    if name != "etth1":
        sc = make_scenario(name, series=args.series, steps=steps, seed=seed)
        return SeriesFrame(name, sc.frame, [sc.target], 1, [e.to_dict() for e in sc.events])
    full = read_series(ETT, ["OT"])
    spare = full.frame.height - steps
    offset = round(seed * spare / max(args.seeds - 1, 1)) % (spare + 1)
    return replace(full, name="etth1", frame=full.frame.slice(offset, steps))


def config(args: argparse.Namespace, data: SeriesFrame, setup: Setup, seed: int) -> Config:
    return load_config(
        overrides={
            "model": {
                "kind": args.model,
                "target": data.targets[0],
                "lookback": args.lookback,
                "horizon": args.horizon,
                "seed": seed,
                "params": json.loads(args.params)
                | ({} if setup.window_norm == "none" else {"window_norm": setup.window_norm}),
            },
            "adaptation": {
                "policy": "never" if setup.policy == ORACLE else setup.policy,
                "window": setup.window,
                "memory": setup.memory,
                "memory_gate": setup.memory_gate,
                "refit_mode": setup.refit_mode,
                "min_train_rows": args.warmup,
                "history": 100_000,
            },
        },
        environ={},
    )


def run_one(data: SeriesFrame, batches: list, cfg: Config, setup: Setup, oracle_delay: int) -> dict[str, Any]:
    """One backtest run, reduced to what the benchmark compares."""
    policy = None
    if setup.policy == ORACLE:
        policy = OraclePolicy([e["start_step"] for e in data.events], oracle_delay)
    run, _ = run_config(data, cfg, batches, progress=False, policy=policy)
    s, phases = run.summary, run.phases
    post = s["post_event"] or {}
    return {
        "mae": s["mae"],
        "mae_base": s["mae_base"],
        "post_event_mae": post.get("mae"),
        "post_event_mae_base": post.get("mae_base"),
        "post_event_mae_by_lead": post.get("mae_by_lead"),
        "samples_seen": s["samples_seen"],
        "n_fits": s["n_fits"],
        "n_swaps": s["n_retrains"],
        "fit_outcomes": s["fit_outcomes"],
        "n_drift_alarms": s["n_drift_alarms"],
        "memory_samples": s["memory_samples"],
        "train_s": phases.get("train", {}).get("cpu_s", 0.0),
        "memory_s": phases.get("correct", {}).get("cpu_s", 0.0),
        "detect_s": phases["detect"]["cpu_s"] if "detect" in phases else None,
        "compute_s": run.compute_seconds,
        "detection_delays": [e["detection_delay_steps"] for e in s["events"]],
    }


def journal(path: Path, args: argparse.Namespace, resume: bool) -> list[dict[str, Any]]:
    """Rows an earlier run with the same arguments finished (with ``resume``); else a fresh journal.

    Each finished run is appended to the journal, so a long bench that is stopped can go on.
    """
    head = json.dumps(
        {k: v for k, v in vars(args).items() if k not in ("resume", "out", "merge")}, default=str
    )
    if resume and path.is_file():
        first, *rest = path.read_text().splitlines()
        if first == head:
            return [json.loads(line) for line in rest]
        print(f"{path} was written with other arguments: starting afresh", file=sys.stderr)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + "\n")
    return []


def run(args: argparse.Namespace, log: Path) -> dict[str, Any]:
    table, _ = setups(args.every, args.refit_mode, args.window_norm, args.configs)
    table = {k: v for k, v in table.items() if not args.configs or k in args.configs}
    data = {(ds, seed): dataset(ds, seed, args) for ds in args.datasets for seed in range(args.seeds)}
    jobs = [
        (ds, seed, rep, name)
        for ds in args.datasets
        for seed in range(args.seeds)
        for rep in range(args.repeats if seed == 0 else 1)
        for name in table
        if name != ORACLE or data[ds, seed].events
    ]
    rows = [r for r in journal(log, args, args.resume) if r["config"] in table]
    finished = {(r["dataset"], r["seed"], r["repeat"], r["config"]) for r in rows}
    jobs = [j for j in jobs if j not in finished]
    batches: dict[tuple[str, int], list] = {}
    for ds, seed, rep, name in tqdm(jobs, desc="adaptation bench", unit="run", file=sys.stderr):
        d = data[ds, seed]
        if (ds, seed) not in batches:
            batches.clear()  # one dataset's batches at a time
            batches[ds, seed] = time_batches(d)
        cfg = config(args, d, table[name], seed)
        rows.append(
            {"dataset": ds, "config": name, "seed": seed, "repeat": rep, "labelled_events": len(d.events)}
            | run_one(d, batches[ds, seed], cfg, table[name], args.oracle_delay)
        )
        with log.open("a") as f:
            f.write(json.dumps(rows[-1]) + "\n")
    return assemble(args, rows)


def assemble(args: argparse.Namespace, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The result document of finished ``rows``: summaries, paired ratios and the target checks."""
    table, names = setups(args.every, args.refit_mode, args.window_norm, args.configs)
    paired_ratios = ratios(rows, names.periodic)
    labelled = {ds: any(r["labelled_events"] for r in rows if r["dataset"] == ds) for ds in args.datasets}
    return {
        "args": vars(args),
        "method": METHOD,
        "configs": {k: asdict(v) for k, v in table.items()},
        "names": asdict(names),
        "summary": summarise(rows),
        "ratios": paired_ratios,
        "targets": targets(lambda ds, c, m: per_seed(rows, ds, c, m), paired_ratios, labelled, names),
        "rows": rows,
    }


METHOD = {
    "ci": "95 % Student-t interval over seeds (df = seeds - 1) of the mean or of the paired per-seed ratio",
    "training_work": "FitReport.samples_seen over every fit, kept or not (samples x epochs, rows x rounds)",
    "compute_s": "process CPU seconds of the loop's train, correct (error memory) and detect phases",
    "train_s_median": "median over the repeats of seed 0 of the training CPU seconds",
    "post_event": "MAE of forecasts issued in the 50 steps from each labelled change, variance excluded",
}


def per_seed(rows: list[dict], ds: str, config: str, metric: str) -> dict[int, float | None]:
    """``metric`` by seed for one dataset and configuration (the first repeat of each seed)."""
    return {
        r["seed"]: r[metric]
        for r in rows
        if r["dataset"] == ds and r["config"] == config and r["repeat"] == 0
    }


def summarise(rows: list[dict]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per dataset and configuration: means with CIs over seeds, and the repeat statistics of seed 0."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["dataset"], {}).setdefault(r["config"], {})
    for ds, configs in out.items():
        for name in configs:
            mine = [r for r in rows if r["dataset"] == ds and r["config"] == name]
            first = [r for r in mine if r["repeat"] == 0]
            repeats = [r for r in mine if r["seed"] == 0]
            configs[name] = {k: mean_ci([r[k] for r in first]) for k in SUMMED} | {
                "train_s_median": statistics.median(r["train_s"] for r in repeats),
                "train_s_repeats": [r["train_s"] for r in repeats],
                "repeats_agree": len({(r["mae"], r["samples_seen"], r["n_fits"]) for r in repeats}) == 1,
            }
    return out


def ratios(rows: list[dict], baseline: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Every configuration against ``baseline`` per dataset: paired ratios (and the MAE difference)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        for name in dict.fromkeys(r["config"] for r in rows if r["dataset"] == ds):

            def pair(metric: str, how: str = "ratio", ds: str = ds, name: str = name) -> dict | None:
                return paired(per_seed(rows, ds, name, metric), per_seed(rows, ds, baseline, metric), how)

            out.setdefault(ds, {})[name] = {
                "mae": pair("mae"),
                "mae_diff": pair("mae", "diff"),
                "post_event_mae": pair("post_event_mae"),
                "samples_seen": pair("samples_seen"),
                "compute_s": pair("compute_s"),
            }
    return out


def brief(result: dict[str, Any]) -> dict[str, Any]:
    """What the bench prints: ratios to the baseline (mean and CI) and the target checks."""

    def short(ci: dict | None) -> list | None:
        return (
            None
            if ci is None
            else [round(ci[k], 4) if ci[k] is not None else None for k in ("mean", "low", "high")]
        )

    checks = result["targets"]
    return {
        "baseline": result["names"]["periodic"],
        "ratios": {
            ds: {c: {k: short(v) for k, v in r.items()} for c, r in cs.items()}
            for ds, cs in result["ratios"].items()
        },
        "targets": checks,
        "targets_met": f"{sum(c['met'] for c in checks)} of {len(checks)}",
    }


def merge(paths: list[Path], out: Path | None) -> None:
    """One result from several runs that differ only in their datasets (e.g. run side by side).

    Each path is a result JSON or the journal (``.runs.jsonl``) of a run stopped early: its finished rows.
    """
    if out is None:
        raise SystemExit("--merge needs --out")
    parts = [read_part(p) for p in paths]
    args = argparse.Namespace(**{"refit_mode": "cold", "window_norm": "none", **parts[0]["args"], "out": out})
    args.every = list(args.every)
    args.datasets = [ds for part in parts for ds in part["args"]["datasets"]]
    result = assemble(args, [row for part in parts for row in part["rows"]])
    result["figures"] = [str(p) for p in pareto_pngs(result, out.parent, out.stem)]
    out.write_text(json.dumps(result, indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(result))
    print(json.dumps(brief(result), indent=1, default=str))


def read_part(path: Path) -> dict[str, Any]:
    """A result JSON, or a journal as ``{"args", "rows"}``."""
    if path.suffix != ".jsonl":
        return json.loads(path.read_text())
    head, *rows = path.read_text().splitlines()
    return {"args": json.loads(head), "rows": [json.loads(r) for r in rows]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny run for the smoke test")
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    ap.add_argument("--model", default="arnet")
    ap.add_argument("--params", default='{"epochs": 3}', help="model hyper-parameters as JSON")
    ap.add_argument("--seeds", type=int, help="seeds per dataset (default 5; 2 with --quick)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of seed 0, for the median CPU seconds")
    ap.add_argument("--series", type=int, default=4)
    ap.add_argument("--lookback", type=int, default=48)
    ap.add_argument("--horizon", type=int, default=12)
    ap.add_argument(
        "--segment", type=int, help="rows before the first change and after each (default 16 spans)"
    )
    ap.add_argument("--warmup", type=int, default=336, help="rows before the first model (two weeks hourly)")
    ap.add_argument("--every", type=int, nargs=3, default=[24, 96, 384], help="the periodic cadences")
    ap.add_argument("--oracle-delay", type=int, help="rows after a change before the oracle refits (4 spans)")
    ap.add_argument(
        "--configs",
        nargs="+",
        help="run only these configurations (default: all); a base then +modifiers adds one, "
        "e.g. defaults+norm+closed (modifiers: " + ", ".join(MODIFIERS) + ")",
    )
    ap.add_argument(
        "--refit-mode",
        default="cold",
        choices=["cold", "warm", "auto", "closed_form"],
        help="how every configuration without its own +cold/+warm/+auto/+closed starts a retrain",
    )
    ap.add_argument(
        "--window-norm",
        default="none",
        choices=["none", "last", "mean"],
        help="the model's per-window normalisation for every configuration without +norm",
    )
    ap.add_argument(
        "--resume", action="store_true", help="skip the runs the journal of these arguments holds"
    )
    ap.add_argument("--out", type=Path, help="results JSON (default bench/results/adaptation_MODEL.json)")
    ap.add_argument(
        "--merge", type=Path, nargs="+", help="combine result JSONs of runs with other datasets into --out"
    )
    args = ap.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    if args.quick:
        args.datasets = ["level_shifts", "etth1"]
        args.seeds = args.seeds or 2
        args.repeats, args.series, args.lookback, args.horizon = 2, 2, 8, 4
        args.params, args.segment, args.warmup, args.every = '{"epochs": 1}', 60, 36, [24, 48, 96]
    if "etth1" in args.datasets and not ETT.is_file():
        print(f"{ETT} not found: leaving etth1 out", file=sys.stderr)
        args.datasets.remove("etth1")
    args.seeds = args.seeds or 5
    span = args.lookback + args.horizon
    args.segment = args.segment or 16 * span  # four times the Variance Horizon's smallest window
    args.oracle_delay = args.oracle_delay or 4 * span
    out = (
        args.out
        or ROOT / "bench" / "results" / f"adaptation_{args.model}{'_quick' if args.quick else ''}.json"
    )
    result = run(args, out.with_suffix(".runs.jsonl"))
    out.parent.mkdir(parents=True, exist_ok=True)
    result["figures"] = [str(p) for p in pareto_pngs(result, out.parent, out.stem)]
    out.write_text(json.dumps(result, indent=1, default=str))
    out.with_suffix(".md").write_text(markdown(result))
    out.with_suffix(".runs.jsonl").unlink()  # every row is in the JSON now
    print(json.dumps(brief(result), indent=1, default=str))


if __name__ == "__main__":
    main()
