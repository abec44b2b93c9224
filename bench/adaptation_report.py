"""The adaptation bench's tables (markdown for docs/benchmarks.md) and Pareto charts (a PNG per dataset)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adaptcast.streams.report import ParetoPoint, plot_pareto


def _bounds(ci: dict | None) -> tuple[float, float] | None:
    return None if ci is None or ci["low"] is None else (ci["low"], ci["high"])


def pareto_pngs(result: dict[str, Any], folder: Path, stem: str) -> list[Path]:
    """One error-against-compute chart per dataset: every configuration's paired ratios to the baseline."""
    base = result["names"]["periodic"]
    labels = (f"MAE / {base}", f"training work / {base}", f"compute CPU s / {base}")
    paths = []
    for ds, configs in result["ratios"].items():
        points = [
            ParetoPoint(
                name,
                r["mae"]["mean"],
                r["samples_seen"]["mean"],
                r["compute_s"]["mean"],
                _bounds(r["mae"]),
                _bounds(r["samples_seen"]),
                _bounds(r["compute_s"]),
            )
            for name, r in configs.items()
            if r["mae"] and r["samples_seen"] and r["compute_s"]
        ]
        if not points:  # no configuration has ratios to the baseline (it was not run)
            continue
        seeds = max(p["mae"]["n"] for p in configs.values() if p["mae"])
        title = f"{ds}: geometric mean over {seeds} seeds of the paired ratios, 95 % CI"
        paths.append(plot_pareto(points, folder / f"{stem}_pareto_{ds}.png", title, labels))
    return paths


def _ci(ci: dict | None, fmt: str = ".3f") -> str:
    if ci is None or ci["mean"] is None:
        return "–"
    if ci["low"] is None:
        return format(ci["mean"], fmt)
    return f"{ci['mean']:{fmt}} ({ci['low']:{fmt}}–{ci['high']:{fmt}})"


def markdown(result: dict[str, Any]) -> str:
    """Per dataset one table of every configuration, then the target checks."""
    base = result["names"]["periodic"]
    repeats = result["args"]["repeats"]
    lines = []
    for ds, configs in result["summary"].items():
        r = result["ratios"][ds]
        lines += [
            f"**{ds}**",
            "",
            f"| config | MAE | MAE / {base} | post-event MAE | training work (samples seen) | work / {base} "
            f"| fits / swaps | train CPU s (median of {repeats}) | compute CPU s |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, s in configs.items():
            lines.append(
                f"| {name} | {_ci(s['mae'])} | {_ci(r[name]['mae'])} | {_ci(s['post_event_mae'])} "
                f"| {_ci(s['samples_seen'], '.3g')} | {_ci(r[name]['samples_seen'], '.3g')} "
                f"| {s['n_fits']['mean']:.1f} / {s['n_swaps']['mean']:.1f} | {s['train_s_median']:.2f} "
                f"| {_ci(s['compute_s'], '.2f')} |"
            )
        lines.append("")
    lines += [
        "| target | dataset | measure | value (95 % CI) | goal | met | whole CI meets it |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in result["targets"]:
        value = "–" if c["value"] is None else f"{c['value']:.3f}"
        if c["ci"]:
            value += f" ({c['ci'][0]:.3f}–{c['ci'][1]:.3f})"
        lines.append(
            f"| {c['target']} | {c['dataset']} | {c['measure']} | {value} | {c['goal']} "
            f"| {_mark(c['met'])} | {_mark(c['ci_met'])} |"
        )
    return "\n".join(lines) + "\n"


def _mark(ok: bool | None) -> str:
    return "–" if ok is None else "✔" if ok else "✘"
