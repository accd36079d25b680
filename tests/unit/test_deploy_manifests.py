"""docker compose, Kubernetes, Prometheus and Grafana provisioning files, checked as data.

No Docker engine or cluster here: the compose file and the Dockerfile are checked
structurally; the Kubernetes manifests are also validated against the Kubernetes OpenAPI
schemas that the kubernetes-validate wheel ships (offline, strict: unknown fields fail).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from deploy.grafana.dashboards import DATASOURCE_UID

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent
K8S_FILES = sorted((DEPLOY / "k8s").glob("*.yaml"))
K8S_VERSION = "1.30.0"
STREAMSENSE_SERVICES = ("models", "worker", "scheduler")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    return [
        (path.name, doc)
        for path in K8S_FILES
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if doc
    ]


COMPOSE = _yaml(DEPLOY / "docker-compose.yml")
PROM_LOCAL = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
PROM_COMPOSE = _yaml(DEPLOY / "prometheus" / "prometheus-compose.yml")
K8S = _k8s_objects()


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    return {str(k): str(v) for k, v in env.items()}


# -- Prometheus configs -------------------------------------------------------------------


def test_local_and_compose_prometheus_configs_differ_only_in_target_discovery() -> None:
    def without_targets(config: dict[str, Any]) -> dict[str, Any]:
        jobs = [
            {k: v for k, v in job.items() if not k.endswith(("_sd_configs", "static_configs"))}
            for job in config["scrape_configs"]
        ]
        return {**config, "scrape_configs": jobs}

    assert without_targets(PROM_LOCAL) == without_targets(PROM_COMPOSE)
    assert PROM_LOCAL["rule_files"] == ["rules.yml"]


def test_local_prometheus_scrapes_the_default_worker_and_scheduler_ports() -> None:
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in PROM_LOCAL["scrape_configs"]
    }
    # STREAMSENSE_METRICS_PORT's default (streams/settings.py) and the scheduler's 9465
    from streams.settings import Settings

    default_port = Settings.model_fields["metrics_port"].default
    assert targets == {
        "streamsense-worker": [f"127.0.0.1:{default_port}"],
        "streamsense-scheduler": ["127.0.0.1:9465"],
    }


# -- docker compose -----------------------------------------------------------------------


def test_compose_has_kafka_kraft_workers_scheduler_prometheus_grafana() -> None:
    services = COMPOSE["services"]
    assert {"kafka", "worker", "scheduler", "prometheus", "grafana"} <= set(services)
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in _env(kafka)["KAFKA_PROCESS_ROLES"]
    for name, service in services.items():
        assert service.get("image"), f"service {name} has no image"


@pytest.mark.parametrize("name", STREAMSENSE_SERVICES)
def test_compose_streamsense_services_build_the_image_and_reach_kafka(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    assert service.get("command"), f"{name} has no command"
    env = _env(service)
    assert env["STREAMSENSE_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["STREAMSENSE_METRICS_HOST"] == "0.0.0.0"


def test_compose_metrics_ports_match_what_prometheus_scrapes() -> None:
    services = COMPOSE["services"]
    jobs = {job["job_name"]: job for job in PROM_COMPOSE["scrape_configs"]}
    worker_sd = jobs["streamsense-worker"]["dns_sd_configs"][0]
    assert worker_sd["names"] == ["worker"]
    assert str(worker_sd["port"]) == _env(services["worker"])["STREAMSENSE_METRICS_PORT"]
    assert str(worker_sd["port"]) in services["worker"]["expose"]
    [target] = jobs["streamsense-scheduler"]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "scheduler"
    assert port == _env(services["scheduler"])["STREAMSENSE_METRICS_PORT"]
    assert port in services["scheduler"]["expose"]


def test_compose_mounts_exist_and_prometheus_uses_the_compose_config() -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    prom = services["prometheus"]
    assert "./prometheus:/etc/prometheus:ro" in prom["volumes"]
    assert "--config.file=/etc/prometheus/prometheus-compose.yml" in prom["command"]
    grafana = services["grafana"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./grafana/dashboards:/var/lib/grafana/dashboards/streamsense:ro" in grafana["volumes"]
    env = _env(grafana)
    assert env["STREAMSENSE_PROMETHEUS_URL"] == "http://prometheus:9090"
    assert env["STREAMSENSE_DASHBOARDS_DIR"] == "/var/lib/grafana/dashboards/streamsense"


def test_the_dockerfile_copies_files_that_exist_and_runs_streamsense() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11", text, re.M)
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        *sources, _dest = line.split()
        for source in sources:
            assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    assert 'ENTRYPOINT ["streamsense"]' in text
    assert "-c constraints.txt" in text
    assert re.search(r"^USER (?!root)", text, re.M)


# -- Grafana provisioning -----------------------------------------------------------------


def test_grafana_provisioning_points_at_the_dashboards_and_the_datasource_uid() -> None:
    prov = DEPLOY / "grafana" / "provisioning"
    [datasource] = _yaml(prov / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["uid"] == DATASOURCE_UID
    assert datasource["type"] == "prometheus"
    [provider] = _yaml(prov / "dashboards" / "streamsense.yml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "${STREAMSENSE_DASHBOARDS_DIR}"


# -- Kubernetes ---------------------------------------------------------------------------


def test_every_k8s_object_has_api_version_kind_metadata_and_namespace() -> None:
    assert K8S
    for name, obj in K8S:
        assert obj.get("apiVersion") and obj.get("kind"), name
        assert obj["metadata"].get("name"), name
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == "streamsense", name


@pytest.mark.parametrize("path", K8S_FILES, ids=lambda p: p.name)
def test_k8s_manifests_validate_against_the_kubernetes_schemas(path: Path) -> None:
    for obj in yaml.safe_load_all(path.read_text(encoding="utf-8")):
        if obj:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def _deployments() -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for _, obj in K8S if obj["kind"] == "Deployment"}


def test_several_workers_form_one_consumer_group_and_one_scheduler_runs() -> None:
    deployments = _deployments()
    worker = deployments["streamsense-worker"]
    scheduler = deployments["streamsense-scheduler"]
    assert worker["spec"]["replicas"] >= 2
    assert scheduler["spec"]["replicas"] == 1
    assert scheduler["spec"]["strategy"]["type"] == "Recreate"
    # one group: the app id comes from the shared ConfigMap, not per pod
    [env_map] = [o for _, o in K8S if o["metadata"]["name"] == "streamsense-env"]
    assert env_map["data"]["STREAMSENSE_APP_ID"]


@pytest.mark.parametrize(
    ("deployment", "port"), [("streamsense-worker", 9464), ("streamsense-scheduler", 9465)]
)
def test_k8s_pods_run_streamsense_with_kafka_env_and_a_scrapable_port(
    deployment: str, port: int
) -> None:
    template = _deployments()[deployment]["spec"]["template"]
    [container] = template["spec"]["containers"]
    assert container["image"] and container["command"] == ["streamsense"]
    env = {e["name"]: e for e in container["env"]}
    assert "STREAMSENSE_KAFKA_BOOTSTRAP" in env
    assert env["STREAMSENSE_METRICS_PORT"]["value"] == str(port)
    assert [p["containerPort"] for p in container["ports"]] == [port]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    services = [o for _, o in K8S if o["kind"] == "Service"]
    assert any(
        template["metadata"]["labels"] | s["spec"]["selector"] == template["metadata"]["labels"]
        and s["spec"]["ports"][0]["port"] == port
        for s in services
    ), f"no Service selects {deployment} on {port}"


def test_no_secret_is_inline() -> None:
    for name, obj in K8S:
        assert obj["kind"] != "Secret", f"{name}: secrets are created out of band"
        text = yaml.safe_dump(obj).lower()
        assert "password" not in text and "postgresql://" not in text, name
    for _, obj in K8S:
        for container in (
            obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        ):
            for env in container.get("env", []):
                if "URL" in env["name"] or "PASSWORD" in env["name"]:
                    assert "valueFrom" in env, f"{env['name']} must come from a Secret"


def test_the_operator_files_configmap_matches_deploy_config() -> None:
    [files] = [o for _, o in K8S if o["metadata"]["name"] == "streamsense-operator-files"]
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in (DEPLOY / "config").glob("*.toml")}
    assert files["data"] == on_disk, "copy deploy/config/*.toml into deploy/k8s/11-operator-files"


def test_install_prometheus_script_is_idempotent_and_uses_debian_package() -> None:
    text = (DEPLOY / "install-prometheus.sh").read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "command -v" in text and "apt-get install" in text and "prometheus" in text
    assert (DEPLOY / "install-prometheus.sh").stat().st_mode & 0o111
