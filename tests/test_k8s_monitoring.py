"""k8s/base/monitoring/ holds the alert rules of deploy/prometheus/ and the dashboards of deploy/grafana/."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from test_k8s_manifests import crd_errors, crd_index

from adaptcast.deploy.k8s_monitoring import (
    DASHBOARDS,
    OUT,
    RULES,
    SIDECAR_LABEL,
    dashboards,
    render,
    rule_groups,
    write,
    written,
)

ROOT = Path(__file__).resolve().parents[1]
SCRAPE_CONFIG = Path("deploy/prometheus/prometheus.yml")
CPU = Path("k8s/overlays/cpu")
SAMPLE_RULES = {
    "groups": [
        {
            "name": "sample",
            "rules": [
                {"alert": "SampleDown", "expr": "up == 0", "for": "5m", "labels": {"severity": "page"}}
            ],
        }
    ]
}
SAMPLE_DASHBOARD = {"title": "Sample", "uid": "sample", "panels": []}


def prometheus_rule(objects: list[dict]) -> dict:
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    return rule


def dashboards_configmap(objects: list[dict]) -> dict:
    (cm,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"].get("labels", {}).get("grafana_dashboard")
    ]
    return cm


def test_generated_files_are_current():
    assert written(ROOT) == render(ROOT), f"{OUT} is stale: run python -m adaptcast.deploy.k8s_monitoring"


def test_prometheus_rule_equals_deploy_prometheus(kustomize_build):
    if not rule_groups(ROOT):
        pytest.skip(f"{ROOT / RULES} holds no *.yml rule files yet")
    assert prometheus_rule(kustomize_build(ROOT / CPU))["spec"]["groups"] == rule_groups(ROOT)


def test_dashboards_configmap_equals_deploy_grafana(kustomize_build):
    if not dashboards(ROOT):
        pytest.skip(f"{ROOT / DASHBOARDS} holds no *.json dashboards yet")
    cm = dashboards_configmap(kustomize_build(ROOT / CPU))
    assert cm["data"] == {p.name: p.read_text() for p in dashboards(ROOT)}
    for text in cm["data"].values():
        json.loads(text)


def test_workers_are_scraped_under_the_job_name_of_deploy_prometheus(kustomize_build):
    """The rules and dashboards select ``job``; in Kubernetes it is the Service's ``jobLabel`` label."""
    if not (ROOT / SCRAPE_CONFIG).is_file():
        pytest.skip(f"{ROOT / SCRAPE_CONFIG} is missing")
    jobs = {c["job_name"] for c in yaml.safe_load((ROOT / SCRAPE_CONFIG).read_text())["scrape_configs"]}
    objects = kustomize_build(ROOT / CPU)
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    selected = monitor["spec"]["selector"]["matchLabels"]
    (service,) = [
        o for o in objects if o["kind"] == "Service" and selected.items() <= o["metadata"]["labels"].items()
    ]
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] in jobs


def test_rules_and_dashboards_reach_the_build_through_the_generator(tmp_path, kustomize_build):
    """On a copy of k8s/ with one sample rule file and dashboard: what the real ones will give."""
    shutil.copytree(ROOT / "k8s", tmp_path / "k8s")
    (tmp_path / RULES).mkdir(parents=True)
    (tmp_path / RULES / "sample.yml").write_text(yaml.safe_dump(SAMPLE_RULES))
    (tmp_path / DASHBOARDS).mkdir(parents=True)
    (tmp_path / DASHBOARDS / "sample.json").write_text(json.dumps(SAMPLE_DASHBOARD))
    write(tmp_path)
    assert written(tmp_path) == render(tmp_path)
    objects = kustomize_build(tmp_path / CPU)
    rule = prometheus_rule(objects)
    assert rule["spec"]["groups"] == SAMPLE_RULES["groups"]
    assert rule["metadata"]["namespace"] == "adaptcast"
    cm = dashboards_configmap(objects)
    assert json.loads(cm["data"]["sample.json"]) == SAMPLE_DASHBOARD
    assert SIDECAR_LABEL.items() <= cm["metadata"]["labels"].items()
    crds = crd_index()
    assert not crd_errors(rule, crds[("monitoring.coreos.com", "PrometheusRule")])
