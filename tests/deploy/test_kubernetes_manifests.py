"""The DaemonSet manifests and the Helm chart, checked by the real helm (v4.1.4) and kubectl (v1.33)
and, object by object, against the Kubernetes 1.33 schemas (kubernetes-validate, offline, strict:
an unknown field is an error). The pipelines they carry pass `logpipe check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.paths import CONFIGS, REPO
from tests.support.k8s_tools import tool

CHART = CONFIGS / "helm" / "logpipe"
MANIFESTS = CONFIGS / "kubernetes"
K8S_VERSION = "1.33.0"


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=120)


def validate_all(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d]
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    return docs


def logpipe_check(files: dict[str, str], tmp_path: Path) -> None:
    conf_dir = tmp_path / "etc-logpipe"
    conf_dir.mkdir()
    for name, text in files.items():
        (conf_dir / name).write_text(text)
    result = run(sys.executable, "-m", "logpipe.cli", "check", "-f", str(conf_dir), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def test_helm_lint() -> None:
    result = run(str(tool("helm")), "lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_template_defaults_valid_and_complete(tmp_path: Path) -> None:
    out = run(str(tool("helm")), "template", "logpipe", str(CHART), "--namespace", "logging").stdout
    docs = validate_all(out)
    assert sorted(d["kind"] for d in docs) == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
                                                "PriorityClass", "ServiceAccount"]
    ds = by_kind(docs, "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:3] == ["run", "-f", "/etc/logpipe/"] and "0.0.0.0" in container["args"]
    assert container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"]: m.get("readOnly", False) for m in container["volumeMounts"]}
    assert mounts == {"/etc/logpipe": True, "/var/log": True, "/var/lib/docker/containers": True,
                      "/var/lib/logpipe": False}
    assert pod["tolerations"] == [{"operator": "Exists"}]
    shutdown = int(container["args"][container["args"].index("--shutdown-timeout") + 1])
    assert pod["terminationGracePeriodSeconds"] > shutdown
    assert ds["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert "checksum/config" in ds["spec"]["template"]["metadata"]["annotations"]
    rules = by_kind(docs, "ClusterRole")["rules"]
    assert rules == [{"apiGroups": [""], "resources": ["pods", "namespaces"], "verbs": ["get", "list", "watch"]}]
    logpipe_check(by_kind(docs, "ConfigMap")["data"], tmp_path)


def test_helm_template_non_default_values(tmp_path: Path) -> None:
    out = run(str(tool("helm")), "template", "ship", str(CHART), "--namespace", "obs",
              "--set", "containerRuntime=docker", "--set", "outputs.elasticsearch.enabled=false",
              "--set", "outputs.forward.enabled=true", "--set", "outputs.forward.host=agg.obs.svc",
              "--set", "multilinePreset=java", "--set", "kubernetesMetadata.ecsCompatibility=v8",
              "--set", "priorityClass.create=false", "--set", "priorityClass.name=",
              "--set-string", "extraConfig=filter { mutate { add_tag => [\"k8s\"] } }",
              "--set", "image.tag=9.9.9").stdout
    docs = validate_all(out)
    assert "PriorityClass" not in [d["kind"] for d in docs]
    data = by_kind(docs, "ConfigMap")["data"]
    assert 'format => "docker"' in data["10-pipeline.conf"] and "forward {" in data["10-pipeline.conf"]
    assert "elasticsearch {" not in data["10-pipeline.conf"] and "20-extra.conf" in data
    ds = by_kind(docs, "DaemonSet")
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":9.9.9")
    assert "priorityClassName" not in ds["spec"]["template"]["spec"]
    logpipe_check(data, tmp_path)


def test_values_schema_refuses_bad_values() -> None:
    result = run(str(tool("helm")), "template", "x", str(CHART), "--set", "containerRuntime=podman", check=False)
    assert result.returncode != 0 and "containerRuntime" in result.stderr


def test_plain_manifests_via_kustomize_are_valid(tmp_path: Path) -> None:
    out = run(str(tool("kubectl")), "kustomize", str(MANIFESTS)).stdout
    docs = validate_all(out)
    assert sorted(d["kind"] for d in docs) == ["ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
                                                "Namespace", "PriorityClass", "ServiceAccount"]
    config = by_kind(docs, "ConfigMap")["data"]["pipeline.conf"]
    assert config == (MANIFESTS / "pipelines" / "containers-es.conf").read_text()
    logpipe_check({"pipeline.conf": config}, tmp_path)


@pytest.mark.parametrize("name", ["containers-es.conf", "containers-forward.conf"])
def test_example_pipelines_check(name: str, tmp_path: Path) -> None:
    logpipe_check({name: (MANIFESTS / "pipelines" / name).read_text()}, tmp_path)


def test_dockerfile_is_conventional() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("# syntax") or "FROM python:" in text
    assert "pip install" in text and ".[speed]" in text
    assert 'ENTRYPOINT ["logpipe"]' in text and '"run", "-f", "/etc/logpipe/"' in text
    assert "VOLUME" in text and "/var/lib/logpipe" in text
