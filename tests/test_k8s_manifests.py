"""k8s/: every kustomization builds, every object validates, and the rendered objects agree with each other.

Built-in kinds are validated strictly by kubernetes-validate for a pinned Kubernetes version;
custom resources against the openAPIV3Schema of their operators' CRDs in ../shared/k8s-crds/.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner

from adaptcast.streams.cli import main as cli
from adaptcast.streams.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cpu": "k8s/overlays/cpu", "gpu": "k8s/overlays/gpu", "kafka": "k8s/kafka"}
OVERLAYS = ("cpu", "gpu")
KUBERNETES_VERSION = "1.33.0"  # the oldest Kubernetes docs/deploy.md asks for
CRDS = ROOT.parent / "shared" / "k8s-crds"
SECRET_WORDS = ("PASSWORD", "SECRET", "TOKEN", "KEY")


@pytest.fixture(scope="module")
def rendered(kustomize_build) -> dict[str, list[dict]]:
    return {name: kustomize_build(ROOT / path) for name, path in TARGETS.items()}


def one(objects: list[dict], kind: str, name: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def config_of(objects: list[dict]) -> Config:
    """The adaptcast configuration the rendered ConfigMap holds."""
    cm = next(o for o in objects if o["kind"] == "ConfigMap" and "adaptcast.yaml" in o.get("data", {}))
    return load_config(overrides=yaml.safe_load(cm["data"]["adaptcast.yaml"]), environ={})


def pod_specs(objects: list[dict]) -> dict[str, dict]:
    """``Kind/name`` → pod spec, for every workload in ``objects``."""
    out = {}
    for o in objects:
        spec = o.get("spec", {})
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            out[f"{o['kind']}/{o['metadata']['name']}"] = spec["template"]["spec"]
        elif o["kind"] == "CronJob":
            out[f"CronJob/{o['metadata']['name']}"] = spec["jobTemplate"]["spec"]["template"]["spec"]
    return out


def containers(objects: list[dict]) -> list[tuple[str, dict, dict]]:
    """(where, pod spec, container) for every container and init container."""
    return [
        (f"{where}/{c['name']}", pod, c)
        for where, pod in pod_specs(objects).items()
        for c in [*pod.get("initContainers", []), *pod["containers"]]
    ]


# ---- every object validates ---------------------------------------------------------------------------
def crd_index() -> dict[tuple[str, str], dict]:
    """(group, kind) → CustomResourceDefinition, for the CRDs in ../shared/k8s-crds/."""
    if not CRDS.is_dir():
        pytest.skip(f"{CRDS} is missing: the custom resources cannot be validated without their CRDs")
    index = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if crd and crd.get("kind") == "CustomResourceDefinition":
                index[(crd["spec"]["group"], crd["spec"]["names"]["kind"])] = crd
    return index


def closed(schema: Any) -> Any:
    """The schema with unknown fields forbidden wherever the API server would reject them (strict)."""
    if isinstance(schema, list):
        return [closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: closed(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_errors(obj: dict, crd: dict) -> list[str]:
    group_version = obj["apiVersion"].split("/")
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    if group_version[-1] not in served:
        return [f"apiVersion {obj['apiVersion']} is not served by the CRD (serves {sorted(served)})"]
    schema = closed(copy.deepcopy(served[group_version[-1]]["schema"]["openAPIV3Schema"]))
    schema["properties"].setdefault("metadata", {"type": "object"})
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)
    ]


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates(rendered, target):
    crds = crd_index()
    problems = []
    for obj in rendered[target]:
        what = f"{obj['kind']}/{obj['metadata']['name']}"
        group = obj["apiVersion"].rpartition("/")[0]
        crd = crds.get((group, obj["kind"]))
        if crd is not None:
            problems += [f"{what}: {e}" for e in crd_errors(obj, crd)]
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{what}: {'.'.join(map(str, exc.absolute_path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{what}: {exc}")
    assert not problems, "\n".join(problems)


def test_custom_resources_cover_every_operator(rendered):
    kinds = {o["kind"] for objects in rendered.values() for o in objects}
    expected = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "ScaledObject", "TriggerAuthentication"}
    assert expected | {"ServiceMonitor"} <= kinds, kinds


# ---- pods: probes, resources, security ----------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_resources_and_a_locked_down_security_context(rendered, overlay):
    found = containers(rendered[overlay])
    assert found
    for where, pod, c in found:
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{where}: {kind}"
        sc = c.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert sc.get("privileged") in (None, False), where
        assert (sc.get("runAsNonRoot") or pod.get("securityContext", {}).get("runAsNonRoot")) is True, where
        assert pod.get("automountServiceAccountToken") is False, where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_probe_healthz_and_readyz_on_the_configured_metrics_port(rendered, overlay):
    cfg = config_of(rendered[overlay])
    assert cfg.metrics.enabled and cfg.metrics.host == "0.0.0.0"  # probes come from outside the pod
    deployments = [(w, p, c) for w, p, c in containers(rendered[overlay]) if w.startswith("Deployment/")]
    assert deployments
    for where, _pod, c in deployments:
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        for probe, path in (
            ("startupProbe", "/healthz"),
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
        ):
            get = c[probe]["httpGet"]
            assert get["path"] == path, f"{where}: {probe}"
            assert ports[get["port"]] == cfg.metrics.port, f"{where}: {probe} port"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jobs_are_bounded_in_time(rendered, overlay):
    for o in rendered[overlay]:
        if o["kind"] == "CronJob":
            job = o["spec"]["jobTemplate"]["spec"]
            assert job["activeDeadlineSeconds"] > 0 and o["spec"]["concurrencyPolicy"] == "Forbid"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned_to_this_release(rendered, overlay):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for where, _pod, c in containers(rendered[overlay]):
        name, _, tag = c["image"].rpartition(":")
        assert name and "/" not in tag, f"{where}: {c['image']} has no tag"
        assert tag != "latest" and tag in (f"{version}-cpu", f"{version}-cuda"), f"{where}: {c['image']}"


def test_gpu_overlay_retrains_on_a_gpu_node_and_leaves_the_workers_alone(rendered):
    cpu, gpu = (one(rendered[o], "CronJob", "adaptcast-retrain") for o in OVERLAYS)
    pod = gpu["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (retrain,) = pod["containers"]
    assert retrain["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert retrain["image"].endswith("-cuda")
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    cpu_pod = cpu["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert "nodeSelector" not in cpu_pod and "nvidia.com/gpu" not in str(cpu_pod)
    assert one(rendered["cpu"], "Deployment") == one(rendered["gpu"], "Deployment")


# ---- the objects agree with the configuration ------------------------------------------------------------
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_config_is_accepted_by_config_show(rendered, overlay, tmp_path):
    cm = next(o for o in rendered[overlay] if o["kind"] == "ConfigMap" and "adaptcast.yaml" in o["data"])
    path = tmp_path / "adaptcast.yaml"
    path.write_text(cm["data"]["adaptcast.yaml"])
    env = {
        e["name"]: "set-by-the-pod"
        for _w, _p, c in containers(rendered[overlay])
        for e in c.get("env", [])
        if e["name"].startswith("ADAPTCAST__")
    }
    assert env, "the pods set no ADAPTCAST__ variable"  # their names must be config keys too
    res = CliRunner().invoke(cli, ["config", "show", "--config", str(path)], env=env)
    assert res.exit_code == 0, res.output
    assert yaml.safe_load(res.output)["kafka"]["sasl_password"] == "***"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_mount_what_the_config_names(rendered, overlay):
    cfg = config_of(rendered[overlay])
    configmap = next(
        o for o in rendered[overlay] if o["kind"] == "ConfigMap" and "adaptcast.yaml" in o["data"]
    )
    pvc = one(rendered[overlay], "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    for where, pod, c in containers(rendered[overlay]):
        volumes = {v["name"]: v for v in pod["volumes"]}
        mounts = {m["mountPath"]: volumes[m["name"]] for m in c["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in c["env"]}
        config_dir, _, config_file = env["ADAPTCAST_CONFIG"].rpartition("/")
        assert mounts[config_dir]["configMap"]["name"] == configmap["metadata"]["name"], where
        assert config_file == "adaptcast.yaml"
        assert mounts[cfg.state.dir]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"], where
        ca_dir, _, ca_file = cfg.kafka.ssl_cafile.rpartition("/")
        assert ca_file in [i["path"] for i in mounts[ca_dir]["secret"]["items"]], where
        assert "/tmp" in mounts, f"{where}: the root filesystem is read-only, /tmp must be a volume"


def test_scaled_object_follows_the_worker_group_within_the_partitions(rendered):
    cfg = config_of(rendered["cpu"])
    so = one(rendered["cpu"], "ScaledObject")
    target = so["spec"]["scaleTargetRef"]
    deployment = one(rendered["cpu"], "Deployment")
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert "replicas" not in deployment["spec"]  # KEDA owns the replica count
    (trigger,) = so["spec"]["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert meta["consumerGroup"] == cfg.kafka.group
    assert meta["topic"] == cfg.kafka.input_topic
    assert meta["bootstrapServers"] == cfg.kafka.bootstrap_servers
    assert meta.get("allowIdleConsumers", "false") == "false"
    topic = one(rendered["kafka"], "KafkaTopic", cfg.kafka.input_topic)
    assert 1 <= so["spec"]["minReplicaCount"] <= so["spec"]["maxReplicaCount"] <= topic["spec"]["partitions"]
    auth = one(rendered["cpu"], "TriggerAuthentication", trigger["authenticationRef"]["name"])
    for ref in auth["spec"]["configMapTargetRef"]:
        assert ref["key"] in one(rendered["cpu"], "ConfigMap", ref["name"])["data"]
    keda = {r["parameter"]: r for r in auth["spec"]["configMapTargetRef"]}
    assert (
        one(rendered["cpu"], "ConfigMap", keda["username"]["name"])["data"]["username"]
        == cfg.kafka.sasl_username
    )


def test_kafka_topics_and_user_match_the_config(rendered):
    cfg = config_of(rendered["cpu"])
    topics = {
        t["spec"].get("topicName", t["metadata"]["name"])
        for t in rendered["kafka"]
        if t["kind"] == "KafkaTopic"
    }
    assert topics == {cfg.kafka.input_topic, cfg.kafka.output_topic, cfg.kafka.dead_letter_topic}
    kafka = one(rendered["kafka"], "Kafka")
    for obj in rendered["kafka"]:
        if obj["kind"] in ("KafkaTopic", "KafkaUser", "KafkaNodePool"):
            assert obj["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert cfg.kafka.bootstrap_servers.startswith(f"{kafka['metadata']['name']}-kafka-bootstrap.")
    (listener,) = [
        lst
        for lst in kafka["spec"]["kafka"]["listeners"]
        if cfg.kafka.bootstrap_servers.endswith(f":{lst['port']}")
    ]
    assert listener["tls"] and cfg.kafka.security_protocol == "SASL_SSL"
    assert listener["authentication"]["type"] == cfg.kafka.sasl_mechanism.lower()
    assert one(rendered["kafka"], "KafkaUser", cfg.kafka.sasl_username)
    pool = one(rendered["kafka"], "KafkaNodePool")
    assert set(pool["spec"]["roles"]) == {"controller", "broker"}  # KRaft, no ZooKeeper


# ---- secrets are referenced, never inlined ------------------------------------------------------------
def test_secrets_are_referenced_never_inlined(rendered):
    kafka = one(rendered["kafka"], "Kafka")["metadata"]["name"]
    user = one(rendered["kafka"], "KafkaUser")["metadata"]["name"]
    created_by_strimzi = {user, f"{kafka}-cluster-ca-cert"}
    assert config_of(rendered["cpu"]).kafka.sasl_password is None
    for target, objects in rendered.items():
        assert not [o for o in objects if o["kind"] == "Secret"], f"{target} inlines a Secret"
        for where, pod, c in containers(objects):
            for e in c.get("env", []):
                if any(w in e["name"].upper() for w in SECRET_WORDS):
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], f"{where}: {e['name']}"
                    assert e["valueFrom"]["secretKeyRef"]["name"] in created_by_strimzi, where
            for v in pod["volumes"]:
                if "secret" in v:
                    assert v["secret"]["secretName"] in created_by_strimzi, where
        for auth in (o for o in objects if o["kind"] == "TriggerAuthentication"):
            assert {r["name"] for r in auth["spec"]["secretTargetRef"]} <= created_by_strimzi
