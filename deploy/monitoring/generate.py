"""Write the generated monitoring files under ``deploy/``, or tell which are stale."""

from __future__ import annotations

from pathlib import Path

from adaptcast.deploy.monitoring import dashboards, rules

DEPLOY = Path(__file__).resolve().parents[1]  # the deploy/ folder: adaptcast.deploy
GENERATED_DIRS = ("prometheus/rules", "grafana/dashboards")


def files() -> dict[str, str]:
    """Every generated file: its path under ``deploy/`` → its text."""
    out = {
        "prometheus/rules/adaptcast-recording.yml": rules.recording_rules(),
        "prometheus/rules/adaptcast-alerts.yml": rules.alert_rules(),
    }
    for d in dashboards.DASHBOARDS:
        out[f"grafana/dashboards/{d.uid}.json"] = dashboards.build(d)
    return out


def stale(root: Path = DEPLOY) -> list[str]:
    """Generated files that are missing or differ under ``root``, and leftovers nothing generates."""
    want = files()
    found = {str(p.relative_to(root)) for d in GENERATED_DIRS for p in (root / d).glob("*") if p.is_file()}
    differ = [
        name
        for name, text in want.items()
        if not (root / name).is_file() or (root / name).read_text() != text
    ]
    return sorted(differ + sorted(found - set(want)))


def write(root: Path = DEPLOY) -> list[str]:
    """Write the files that are stale under ``root`` (removing leftovers); returns what changed."""
    changed = stale(root)
    want = files()
    for name in changed:
        path = root / name
        if name in want:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(want[name])
        else:
            path.unlink()
    return changed
