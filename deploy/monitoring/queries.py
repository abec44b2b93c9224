"""Every PromQL expression the monitoring files hold, named by where it comes from.

Dashboards: each panel target, annotation and ``label_values`` variable; rules: each recording
rule, each alert as written and each alert condition's signal (and a threshold that is a query).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from adaptcast.deploy.monitoring.generate import DEPLOY
from adaptcast.deploy.monitoring.rules import ALERTS

LABEL_VALUES = re.compile(r"^label_values\((.+),\s*\w+\)$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


@dataclass(frozen=True)
class Expression:
    """``expr`` from ``source``; ``must_match`` is False for a whole alert (empty while all is well)."""

    source: str
    expr: str
    must_match: bool = True

    def substituted(self, variables: dict[str, str]) -> str:
        """``expr`` with Grafana's ``$name`` variables replaced, longest names first."""
        out = self.expr
        for name in sorted(variables, key=len, reverse=True):
            out = out.replace(f"${name}", variables[name])
        return out


def _panels(panels: list[dict]) -> list[dict]:
    """Panels with those nested in collapsed rows."""
    out = []
    for p in panels:
        out.append(p)
        out.extend(_panels(p.get("panels", [])))
    return out


def dashboard_expressions(path: Path) -> list[Expression]:
    model = json.loads(path.read_text())
    name = model["title"]
    out = []
    for var in model["templating"]["list"]:
        match = LABEL_VALUES.match(var.get("query", "")) if var["type"] == "query" else None
        if match:
            out.append(Expression(f"{name} / variable ${var['name']}", match.group(1)))
    for ann in model["annotations"]["list"]:
        out.append(Expression(f"{name} / annotation {ann['name']}", ann["expr"]))
    for panel in _panels(model["panels"]):
        for target in panel.get("targets", []):
            out.append(Expression(f"{name} / {panel['title']} [{target['refId']}]", target["expr"]))
    return out


def rule_expressions(path: Path) -> list[Expression]:
    out = []
    for group in yaml.safe_load(path.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                label = ",".join(f"{k}={v}" for k, v in rule.get("labels", {}).items())
                out.append(
                    Expression(f"record {rule['record']}" + (f" {{{label}}}" if label else ""), rule["expr"])
                )
            else:
                out.append(Expression(f"alert {rule['alert']}", rule["expr"], must_match=False))
    return out


def alert_signals() -> list[Expression]:
    """What each alert watches: every condition's signal, and its threshold when that is a query too."""
    out = []
    for alert in ALERTS:
        for i, cond in enumerate(alert.conditions, 1):
            out.append(Expression(f"alert {alert.name} signal {i}", cond.signal))
            if not NUMBER.match(cond.threshold):
                out.append(Expression(f"alert {alert.name} threshold {i}", cond.threshold))
    return out


def all_expressions(root: Path = DEPLOY) -> list[Expression]:
    """The committed dashboards' and rule files' expressions, then the alerts' signals."""
    out = []
    for path in sorted((root / "grafana" / "dashboards").glob("*.json")):
        out.extend(dashboard_expressions(path))
    for path in sorted((root / "prometheus" / "rules").glob("*.yml")):
        out.extend(rule_expressions(path))
    return out + alert_signals()
