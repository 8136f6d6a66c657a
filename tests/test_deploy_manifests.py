"""deploy/containers/compose.yaml and deploy/k8s: parse them and check what the platform relies on
(fast, in the normal suite; tests/containers/test_compose.py runs the compose stack for real)."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from newsletter.config import QUEUES

# one_pass (tests/conftest.py): it parses files.
pytestmark = pytest.mark.one_pass

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
CONTAINERS = ROOT / "deploy" / "containers"
APP_IMAGE = "localhost/newsletter"
PROCESS_DEPLOYMENTS = {"newsletter-web": "web", "newsletter-worker-bulk": "worker",
                       "newsletter-worker-transactional": "worker-transactional", "newsletter-beat": "beat",
                       "newsletter-flower": "flower"}


def _entrypoint_commands() -> set[str]:
    text = (CONTAINERS / "entrypoint.sh").read_text()
    return set(re.findall(r"^    ([a-z-]+)\)$", text, re.M))


def _compose() -> dict:
    return yaml.safe_load((CONTAINERS / "compose.yaml").read_text())


def _k8s_documents() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def _by_kind(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in _k8s_documents() if doc["kind"] == kind}


def test_compose_has_every_process_with_health_checks_and_the_migration_step():
    services = _compose()["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker-bulk", "worker-transactional", "beat",
                             "flower", "proxy"}
    commands = _entrypoint_commands()
    for name, service in services.items():
        assert service["network_mode"] == "host", name  # loopback only, see the file's header
        assert service["image"].startswith("localhost/newsletter"), name
        if service["image"].startswith(APP_IMAGE + ":"):
            assert service["command"][0] in commands, name
            # The app waits for the servers, and for the migration step (the entrypoint's
            # WAIT_FOR_MIGRATION): podman cannot start a container that depends on an exited one.
            assert {dep: c["condition"] for dep, c in service["depends_on"].items()} == {
                "postgres": "service_healthy", "redis": "service_healthy"}, name
            assert service["environment"]["WAIT_FOR_MIGRATION"] == "1", name
        if name not in ("migrate", "beat"):
            test = service["healthcheck"]["test"]
            assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    entrypoint = (CONTAINERS / "entrypoint.sh").read_text()
    assert "wait_for_services\n        exec flask db upgrade" in entrypoint
    assert re.search(r"web\|worker\|worker-transactional\|beat\)\n\s+if \[ \"\$\{WAIT_FOR_MIGRATION", entrypoint)
    assert "/readyz" in " ".join(services["web"]["healthcheck"]["test"])
    assert services["proxy"]["depends_on"]["web"]["condition"] == "service_healthy"
    # The servers listen on loopback: only the proxy's BIND_ADDRESS may be widened.
    assert services["postgres"]["environment"]["POSTGRES_LISTEN"] == "127.0.0.1"
    assert services["redis"]["environment"]["REDIS_BIND"] == "127.0.0.1"
    assert services["flower"]["environment"]["FLOWER_ADDRESS"] == "127.0.0.1"
    assert services["web"]["environment"]["WEB_BIND"].startswith("127.0.0.1:")
    assert services["web"]["environment"]["NEWSLETTER_ENV"] == "production"


def test_containerfiles_build_from_the_debian_base_and_the_app_runs_unprivileged():
    files = [CONTAINERS / "Dockerfile", *CONTAINERS.glob("*.Containerfile")]
    assert {f.name for f in files} == {"Dockerfile", "proxy.Containerfile", "postgres.Containerfile",
                                       "redis.Containerfile"}
    for path in files:
        text = path.read_text()
        assert "ARG BASE_IMAGE=localhost/newsletter-debian-base:latest" in text, path.name
        froms = [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")]
        assert froms and set(froms) == {"${BASE_IMAGE}"}, path.name
        user = [line for line in text.splitlines() if line.startswith("USER ")]
        assert user and user[-1].split()[1] not in ("root", "0", "0:0"), path.name
    app = (CONTAINERS / "Dockerfile").read_text()
    assert app.count("FROM ") == 2 and "AS builder" in app and "COPY --from=builder /opt/venv" in app


def test_every_k8s_document_has_the_required_fields():
    docs = _k8s_documents()
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc["metadata"].get("name"), doc
    kinds = sorted(doc["kind"] for doc in docs)
    assert kinds.count("Deployment") == len(PROCESS_DEPLOYMENTS)
    assert {"ConfigMap", "Secret", "Job", "ScaledObject", "Namespace"} <= set(kinds)
    assert set(_by_kind("Service")) == {"newsletter-web", "newsletter-flower"}


def test_one_deployment_per_process_type_with_probes_and_settings():
    deployments = _by_kind("Deployment")
    assert set(deployments) == set(PROCESS_DEPLOYMENTS)
    commands = _entrypoint_commands()
    for name, deployment in deployments.items():
        spec = deployment["spec"]
        template = spec["template"]
        assert spec["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items(), name
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        app = next(c for c in pod["containers"] if c["image"].startswith(APP_IMAGE + ":"))
        assert app["args"] == [PROCESS_DEPLOYMENTS[name]] and app["args"][0] in commands, name
        assert {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in app["envFrom"]} == {
            "newsletter-config", "newsletter-secrets"}, name
        assert app["resources"]["requests"] and app["resources"]["limits"]["memory"], name
        if name != "newsletter-flower":
            assert [c["args"] for c in pod["initContainers"]] == [["wait-migrated"]], name
        if name.startswith("newsletter-worker"):
            assert app["livenessProbe"]["exec"]["command"][:3] == ["newsletter-entrypoint", "probe", "worker"], name
    web = deployments["newsletter-web"]["spec"]["template"]["spec"]
    proxy = next(c for c in web["containers"] if c["name"] == "proxy")
    assert proxy["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert proxy["readinessProbe"]["httpGet"]["path"] == "/readyz"
    beat = deployments["newsletter-beat"]["spec"]
    assert beat["replicas"] == 1 and beat["strategy"]["type"] == "Recreate"  # never two schedulers
    job = _by_kind("Job")["newsletter-migrate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["args"] == ["migrate"] and job["restartPolicy"] == "Never"


def test_settings_in_the_configmap_and_secret_are_ones_the_platform_reads():
    keys = set(_by_kind("ConfigMap")["newsletter-config"]["data"]) | set(
        _by_kind("Secret")["newsletter-secrets"]["stringData"])
    sources = " ".join(p.read_text() for p in (ROOT / "newsletter").rglob("*.py"))
    sources += (CONTAINERS / "entrypoint.sh").read_text()
    unknown = {key for key in keys if f'"{key}"' not in sources and key not in sources}
    assert unknown == set()
    assert {"SECRET_KEY", "DATABASE_URL", "FLOWER_BASIC_AUTH"} <= keys


def test_keda_scales_the_bulk_worker_on_the_bulk_queue():
    scaled = _by_kind("ScaledObject")["newsletter-worker-bulk"]["spec"]
    assert scaled["scaleTargetRef"]["name"] == "newsletter-worker-bulk"
    assert 1 <= scaled["minReplicaCount"] < scaled["maxReplicaCount"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"] == "bulk" and "bulk" in QUEUES
    assert int(trigger["metadata"]["listLength"]) > 0


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl not installed")
def test_kustomize_renders_the_manifests():
    result = subprocess.run(["kubectl", "kustomize", str(K8S)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    rendered = list(yaml.safe_load_all(result.stdout))
    assert all(doc["metadata"].get("namespace") == "newsletter" for doc in rendered if doc["kind"] != "Namespace")
