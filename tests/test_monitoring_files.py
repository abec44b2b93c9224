"""deploy/prometheus and deploy/grafana: current with their source, valid for promtool, documented."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from adaptcast.deploy.monitoring import generate
from adaptcast.deploy.monitoring.queries import all_expressions
from adaptcast.deploy.monitoring.rules import ALERTS
from adaptcast.streams.metrics import Metrics

DEPLOY = generate.DEPLOY
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
OPERATIONS = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def test_generated_files_are_current():
    assert generate.stale() == [], (
        "deploy/ differs from deploy/monitoring/rules.py and dashboards.py: "
        "run `python -m adaptcast.deploy.monitoring generate` and commit the result"
    )


def test_dashboards_have_stable_uids_and_pick_workers_by_job_and_instance():
    assert {json.loads(p.read_text())["uid"] for p in DASHBOARDS} == {
        "adaptcast-overview",
        "adaptcast-adaptation",
    }
    for path in DASHBOARDS:
        model = json.loads(path.read_text())
        assert path.stem == model["uid"]
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert {"datasource", "job", "instance"} <= set(variables)
        assert "$job" in variables["instance"]["query"]
        ids = [p["id"] for p in model["panels"]]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                assert 'job=~"$job"' in target["expr"] and 'instance=~"$instance"' in target["expr"], (
                    f"{path.name} / {panel['title']}: {target['expr']}"
                )
            if panel["type"] != "row":
                assert panel["datasource"]["uid"] == "${datasource}" and panel["description"]


def test_every_metric_is_on_a_dashboard_or_in_a_rule():
    text = "\n".join(e.expr for e in all_expressions())
    unused = [
        fam.name
        for fam in Metrics().registry.collect()
        if not re.search(rf"\b{fam.name}(_total|_bucket|_sum|_count|_info)?\b", text)
    ]
    assert unused == [], f"metrics no panel or rule reads: {unused}"


def test_every_alert_has_a_summary_a_description_and_a_runbook_section():
    doc = OPERATIONS.read_text()
    sections = set(re.findall(r"^### (\w+)$", doc, flags=re.MULTILINE))
    (group,) = yaml.safe_load((PROMETHEUS / "rules" / "adaptcast-alerts.yml").read_text())["groups"]
    assert [r["alert"] for r in group["rules"]] == [a.name for a in ALERTS]
    for rule in group["rules"]:
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"]
        assert notes["runbook"] == f"docs/operations.md#{rule['alert'].lower()}"
        assert rule["alert"] in sections, f"docs/operations.md lacks a '### {rule['alert']}' runbook section"


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards():
    (source,) = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/adaptcast.yml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["url"].startswith("http")
    (provider,) = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/adaptcast.yml").read_text())[
        "providers"
    ]
    assert provider["type"] == "file" and provider["options"]["path"]


def _promtool(binary: str, *args: str) -> str:
    promtool = str(Path(binary).with_name("promtool"))
    done = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=PROMETHEUS)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.mark.prometheus
def test_promtool_accepts_the_config_and_the_rules(prometheus_binary):
    assert "SUCCESS" in _promtool(prometheus_binary, "check", "config", "prometheus.yml")
    rules = sorted(str(p.relative_to(PROMETHEUS)) for p in (PROMETHEUS / "rules").glob("*.yml"))
    assert _promtool(prometheus_binary, "check", "rules", *rules).count("SUCCESS") == len(rules)


@pytest.mark.prometheus
def test_promtool_unit_tests_fire_and_silence_every_alert(prometheus_binary):
    tests = sorted(PROMETHEUS.glob("tests/*.yml"))
    cases = [
        case
        for path in tests
        for t in yaml.safe_load(path.read_text())["tests"]
        for case in t["alert_rule_test"]
    ]
    covered = {case["alertname"] for case in cases if case["exp_alerts"]}
    silent = {case["alertname"] for case in cases if not case["exp_alerts"]}
    names = {a.name for a in ALERTS}
    assert covered == names and silent == names, f"untested: {names - covered} fire, {names - silent} silent"
    _promtool(prometheus_binary, "test", "rules", *(str(p.relative_to(PROMETHEUS)) for p in tests))
