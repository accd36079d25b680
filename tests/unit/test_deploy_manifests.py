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
from streams.runtime.liveness import HEALTH_PATH
from streams.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ROOT = DEPLOY.parent
K8S_FILES = sorted((DEPLOY / "k8s").glob("*.yaml"))
K8S_VERSION = "1.30.0"
STREAMSENSE_SERVICES = ("models", "worker", "scheduler")
# the setting each long-running process serves /metrics on (streams/compose.py for the
# worker, streams/cli/retrain.py for the scheduler; tests/integration/test_deploy_processes.py
# runs both)
PORT_SETTING = {"worker": "metrics_port", "scheduler": "scheduler_metrics_port"}
FEEDBACK_SECRET = "streamsense-feedback-db"


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


def _settings_from(env: dict[str, str]) -> Settings:
    """The settings a process would build from these ``STREAMSENSE_*`` variables."""
    prefix = "STREAMSENSE_"
    return Settings.model_validate(
        {k.removeprefix(prefix).lower(): v for k, v in env.items() if k.startswith(prefix)}
    )


def _unknown_variables(names: list[str]) -> list[str]:
    return [
        name
        for name in names
        if name.startswith("STREAMSENSE_")
        and name.removeprefix("STREAMSENSE_").lower() not in Settings.model_fields
    ]


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
    # the defaults of STREAMSENSE_METRICS_PORT and STREAMSENSE_SCHEDULER_METRICS_PORT
    ports = {name: Settings.model_fields[field].default for name, field in PORT_SETTING.items()}
    assert targets == {
        "streamsense-worker": [f"127.0.0.1:{ports['worker']}"],
        "streamsense-scheduler": [f"127.0.0.1:{ports['scheduler']}"],
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
    assert worker_sd["port"] == _settings_from(_env(services["worker"])).metrics_port
    [target] = jobs["streamsense-scheduler"]["static_configs"][0]["targets"]
    host, port = target.split(":")
    assert host == "scheduler"
    assert port == _env(services["scheduler"])["STREAMSENSE_SCHEDULER_METRICS_PORT"]
    assert int(port) == _settings_from(_env(services["scheduler"])).scheduler_metrics_port
    assert port in services["scheduler"]["expose"]


@pytest.mark.parametrize("name", STREAMSENSE_SERVICES)
def test_compose_sets_only_variables_that_streamsense_reads(name: str) -> None:
    env = _env(COMPOSE["services"][name])
    assert _unknown_variables(list(env)) == []


@pytest.mark.parametrize("name", ["worker", "scheduler"])
def test_compose_worker_and_scheduler_share_a_postgresql_feedback_store(name: str) -> None:
    services = COMPOSE["services"]
    service = services[name]
    settings = _settings_from(_env(service))
    assert settings.require_shared_store is True
    assert settings.feedback_db_url.startswith("postgresql://")
    host = settings.feedback_db_url.split("@", 1)[1].split(":", 1)[0]
    assert host in services and services[host]["image"].startswith("postgres:")
    assert service["depends_on"][host]["condition"] == "service_healthy"
    assert "healthcheck" in services[host]


def test_compose_worker_healthcheck_asks_healthz_on_its_metrics_port() -> None:
    worker = COMPOSE["services"]["worker"]
    port = _settings_from(_env(worker)).metrics_port
    probe = " ".join(worker["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}{HEALTH_PATH}" in probe


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
    assert _unknown_variables(re.findall(r"\b(STREAMSENSE_\w+)=", text)) == []
    [expose] = re.findall(r"^EXPOSE (.+)$", text, re.M)
    ports = {str(Settings.model_fields[field].default) for field in PORT_SETTING.values()}
    assert set(expose.split()) == ports
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


def _container(deployment: str) -> dict[str, Any]:
    [container] = _deployments()[deployment]["spec"]["template"]["spec"]["containers"]
    assert isinstance(container, dict)
    return container


def _k8s_settings(container: dict[str, Any]) -> Settings:
    """The settings the container's process builds: the ConfigMap, then the literal env."""
    [env_map] = [o for _, o in K8S if o["metadata"]["name"] == "streamsense-env"]
    literal = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return _settings_from({**env_map["data"], **literal})


@pytest.mark.parametrize(("component", "port"), [("worker", 9464), ("scheduler", 9465)])
def test_k8s_pods_run_streamsense_with_kafka_env_and_a_scrapable_port(
    component: str, port: int
) -> None:
    deployment = f"streamsense-{component}"
    template = _deployments()[deployment]["spec"]["template"]
    container = _container(deployment)
    assert container["image"] and container["command"] == ["streamsense"]
    env = {e["name"]: e for e in container["env"]}
    assert "STREAMSENSE_KAFKA_BOOTSTRAP" in env
    # the port the process really binds: the variable of the setting it reads, set here
    assert env[f"STREAMSENSE_{PORT_SETTING[component].upper()}"]["value"] == str(port)
    assert getattr(_k8s_settings(container), PORT_SETTING[component]) == port
    assert _k8s_settings(container).metrics_host == "0.0.0.0"
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


def test_k8s_pods_and_config_map_set_only_variables_that_streamsense_reads() -> None:
    [env_map] = [o for _, o in K8S if o["metadata"]["name"] == "streamsense-env"]
    names = list(env_map["data"])
    for deployment in _deployments():
        names += [e["name"] for e in _container(deployment)["env"]]
    assert _unknown_variables(names) == []


@pytest.mark.parametrize("deployment", ["streamsense-worker", "streamsense-scheduler"])
def test_k8s_worker_and_scheduler_require_the_shared_feedback_store(deployment: str) -> None:
    container = _container(deployment)
    env = {e["name"]: e for e in container["env"]}
    ref = env["STREAMSENSE_FEEDBACK_DB_URL"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == FEEDBACK_SECRET and ref["key"] == "url"
    assert not ref.get("optional", False), "without the Secret every pod writes its own SQLite"
    # and should the Secret hold a SQLite URL, the process refuses to start
    assert _k8s_settings(container).require_shared_store is True


def test_k8s_worker_probes_ask_the_event_loop_not_the_metrics_thread() -> None:
    container = _container("streamsense-worker")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (HEALTH_PATH, "metrics"), probe
    liveness = container["livenessProbe"]
    # a stall is noticed within the heartbeat limit plus the probe's failures
    assert liveness["periodSeconds"] * liveness.get("failureThreshold", 3) <= 60
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300, "model loading"
    [service] = [o for _, o in K8S if o["metadata"]["name"] == "streamsense-worker-metrics"]
    assert service["spec"]["publishNotReadyAddresses"] is True, "scrape stalled workers too"


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
    script = (DEPLOY / "install-prometheus.sh").read_text(encoding="utf-8")
    assert script.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in script
    assert '. "$(dirname "$0")/apt-install.sh"' in script  # the shared apt-get step
    text = script + (DEPLOY / "apt-install.sh").read_text(encoding="utf-8")
    assert "command -v" in text and "apt-get install" in text and "prometheus" in text
    assert (DEPLOY / "install-prometheus.sh").stat().st_mode & 0o111
