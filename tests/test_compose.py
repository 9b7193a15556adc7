"""docker-compose.yml, checked without Docker: the properties production needs, and agreement with
what the code reads (topics, ports, settings). The Prometheus and Alertmanager configs it mounts
are checked by the real promtool and amtool; `docker compose config` runs where a Docker client
with the compose plugin exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from access import policy
from api.settings import ApiSettings
from config.env import ConfigError
from kafka_admin.settings import KafkaSettings
from tests.support.services import system_tool

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
OURS = ("init", "worker", "ingest", "dashboard", "evaluator", "api")  # the Python services, one image
LONG_RUNNING = [name for name in SERVICES if name != "init"]
VARIABLE = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


def env(service: str) -> dict[str, str]:
    return {name: str(value) for name, value in (SERVICES[service].get("environment") or {}).items()}


def default_of(value: str) -> str:
    """`${NAME:-default}` -> default; a plain value as it is."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    return match.group(1) if match else value


def test_the_production_shape_is_all_there() -> None:
    assert set(SERVICES) == {
        "kafka", "clickhouse", "init", "worker", "ingest", "dashboard", "evaluator", "prometheus", "alertmanager",
        "grafana", "api",
        "superset",
    }  # fmt: skip
    assert "KAFKA_PROCESS_ROLES" in env("kafka") and "controller" in env("kafka")["KAFKA_PROCESS_ROLES"], "KRaft"


@pytest.mark.parametrize("service", SERVICES)
def test_images_are_pinned_to_a_version(service: str) -> None:
    image = SERVICES[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and re.search(r"\d", tag), f"{service}: {image} is not pinned"


def test_one_image_built_from_one_dockerfile_serves_every_python_service() -> None:
    assert {SERVICES[name]["image"] for name in OURS} == {SERVICES["worker"]["image"]}
    assert all(SERVICES[name]["build"] == "." for name in OURS)
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11[\w.-]*$", dockerfile, re.M)
    assert 'ENTRYPOINT ["labelpulse"]' in dockerfile and re.search(r"^USER labelpulse$", dockerfile, re.M)


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck_and_restarts(service: str) -> None:
    assert SERVICES[service]["healthcheck"]["test"], service
    assert SERVICES[service]["restart"] == "unless-stopped"


def test_start_order_waits_for_health_and_for_the_init_job() -> None:
    for name, service in SERVICES.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert isinstance(condition, dict) and condition["condition"] in (
                "service_healthy",
                "service_completed_successfully",
            ), f"{name} -> {dependency}"
    assert SERVICES["init"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "clickhouse": {"condition": "service_healthy"},
    }
    for name in ("worker", "ingest", "dashboard", "evaluator", "prometheus"):
        assert SERVICES[name]["depends_on"]["init"] == {"condition": "service_completed_successfully"}
    assert SERVICES["init"]["restart"] == "no"


def test_the_init_job_creates_topics_schema_users_and_rules() -> None:
    script = " ".join(SERVICES["init"]["entrypoint"])
    for step in ("labelpulse topics", "labelpulse migrate", "labelpulse access apply", "render-prometheus"):
        assert step in script


def test_nothing_is_published_beyond_loopback() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports") or []:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_workers_scale() -> None:
    worker = SERVICES["worker"]
    assert not {"container_name", "ports", "hostname"} & set(worker), "fixed names or ports stop --scale worker=N"
    assert not worker.get("volumes"), "scaled workers would share one volume"
    partitions = default_of(env("worker")["LABELPULSE_EVENTS_PARTITIONS"])
    assert int(partitions) >= 3, "room for a few workers"


def test_volumes_are_named_and_declared() -> None:
    declared = set(COMPOSE["volumes"])
    used = set()
    for service in SERVICES.values():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                used.add(source)
            else:
                assert (ROOT / source).exists(), f"{source} is mounted but not in the repository"
    assert used == declared


def test_topics_and_ports_agree_with_the_code() -> None:
    worker = env("worker")
    defaults = KafkaSettings()
    assert default_of(worker["LABELPULSE_EVENTS_TOPIC"]) == defaults.events_topic
    assert default_of(worker["LABELPULSE_DEAD_LETTER_TOPIC"]) == defaults.dead_letter_topic
    assert worker["LABELPULSE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert "INTERNAL://kafka:9092" in env("kafka")["KAFKA_ADVERTISED_LISTENERS"]
    assert env("kafka")["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from `labelpulse topics`"
    assert (worker["LABELPULSE_CLICKHOUSE_HOST"], worker["LABELPULSE_CLICKHOUSE_PORT"]) == ("clickhouse", "8123")
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    workers = jobs["labelpulse-worker"]["dns_sd_configs"][0]
    assert (workers["names"], workers["type"]) == (["worker"], "A"), "every scaled worker, by the service's DNS name"
    assert workers["port"] == int(worker["LABELPULSE_WORKER_METRICS_PORT"])
    assert jobs["labelpulse-evaluator"]["static_configs"][0]["targets"] == [
        f"evaluator:{env('evaluator')['LABELPULSE_ALERTS_METRICS_PORT']}"
    ]
    assert jobs["labelpulse-ingest"]["static_configs"][0]["targets"] == [f"ingest:{SERVICES['ingest']['command'][-1]}"]
    api = jobs["labelpulse-api"]["dns_sd_configs"][0]
    assert (api["names"], api["type"]) == (["api"], "A"), "by DNS: no target while the `api` profile is off"
    assert api["port"] == ApiSettings().metrics_port and "LABELPULSE_API_METRICS_PORT" not in env("api")
    assert env("evaluator")["LABELPULSE_ALERTMANAGER_URL"] == "http://alertmanager:9093"
    rules_out = SERVICES["init"]["entrypoint"][-1].rsplit("-o ", 1)[1]
    assert rules_out.startswith("/prometheus-rules/") and "/etc/prometheus/rules/*.yml" in prometheus["rule_files"]
    assert "prometheus-rules:/etc/prometheus/rules:ro" in SERVICES["prometheus"]["volumes"]


SOURCES = "\n".join(
    path.read_text()
    for package in ("labelpulse", "schema", "streams", "dashboard", "alerts", "ingest", "api")
    for path in (ROOT / package).rglob("*.py")
)


def code_reads(setting: str) -> bool:
    """True if some package reads LABELPULSE_<name> (settings are read by their name without the prefix)."""
    name = setting.removeprefix("LABELPULSE_")
    return f'"{name}"' in SOURCES or f"'{name}'" in SOURCES or setting in SOURCES


def test_every_setting_given_to_our_services_is_one_the_code_reads() -> None:
    passwords = {user["password_env"] for user in yaml.safe_load((ROOT / "deploy/access.yml").read_text())["users"]}
    for name in OURS:
        for setting in env(name):
            if setting in passwords:
                continue  # read through the access file
            assert code_reads(setting), f"{name}: {setting} is read by nothing"


def test_every_variable_of_the_compose_file_is_documented() -> None:
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    example = (ROOT / "deploy/env.example").read_text()
    readme = (ROOT / "README.md").read_text() + (ROOT / "docs/production.md").read_text()
    for name in used:
        assert name in readme or name in example, f"{name} is documented nowhere"
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required <= set(re.findall(r"^(\w+)=", example, re.M)), "every required variable is in env.example"


def test_the_access_file_loads_and_its_passwords_reach_the_init_job(tmp_path: Path) -> None:
    path = ROOT / "deploy/access.yml"
    names = {user["password_env"] for user in yaml.safe_load(path.read_text())["users"]}
    loaded = policy.load(path, {name: "x" * 16 for name in names})
    assert {user.role for user in loaded.users} == {"writer", "reader", "evaluator", "analyst"}
    assert names <= set(env("init"))
    for service, role in (("worker", "writer"), ("dashboard", "reader"), ("evaluator", "evaluator"), ("api", "reader")):
        user = loaded.user(env(service)["LABELPULSE_CLICKHOUSE_USER"])
        assert user is not None and user.role == role, service


def test_prometheus_config_is_valid() -> None:
    promtool = system_tool("promtool", "prometheus")
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(ROOT / "deploy/prometheus/prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_is_valid() -> None:
    amtool = system_tool("amtool", "prometheus-alertmanager")
    result = subprocess.run(
        [amtool, "check-config", str(ROOT / "deploy/alertmanager/alertmanager.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_docker_compose_config_accepts_it(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "compose", "version"], capture_output=True).returncode != 0:
        pytest.skip("no Docker client with the compose plugin here")
    example = (ROOT / "deploy/env.example").read_text()
    filled = re.sub(r"^(\w*PASSWORD)=$", r"\1=test-password", example, flags=re.M)
    (tmp_path / ".env").write_text(filled)
    result = subprocess.run(
        [
            docker,
            "compose",
            "-f",
            str(ROOT / "docker-compose.yml"),
            "--env-file",
            str(tmp_path / ".env"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_the_dashboard_signs_people_in_and_refuses_the_example_hash() -> None:
    from dashboard.auth import load_users

    dashboard = env("dashboard")
    assert default_of(dashboard["LABELPULSE_DASHBOARD_AUTH"]) == "password"
    assert "./deploy/dashboard-users.yml:/etc/labelpulse/dashboard-users.yml:ro" in SERVICES["dashboard"]["volumes"]
    with pytest.raises(ConfigError, match="labelpulse hash-password"):
        load_users(ROOT / "deploy/dashboard-users.yml", "password")


def test_grafana_has_its_clickhouse_plugin_baked_into_a_pinned_image() -> None:
    dockerfile = (ROOT / "deploy/grafana/Dockerfile").read_text()
    grafana = re.search(r"^FROM grafana/grafana:(\d+\.\d+\.\d+)$", dockerfile, re.M)
    plugin = re.search(r"plugins install grafana-clickhouse-datasource (\d+\.\d+\.\d+)", dockerfile)
    assert grafana and plugin, "Grafana and the plugin are pinned to exact versions"
    # A new version in the Dockerfile is a new image name: `docker compose up --build` cannot keep an old one.
    assert SERVICES["grafana"]["image"] == f"labelpulse-grafana:{grafana[1]}-clickhouse-{plugin[1]}"
    assert SERVICES["grafana"]["build"] == "./deploy/grafana"
    assert "GF_PLUGINS_PREINSTALL_DISABLED=true" in dockerfile, "no plugin downloads when Grafana starts"
    assert not any(name.startswith("GF_INSTALL_PLUGINS") for name in env("grafana"))


def test_grafana_reads_its_provisioning_read_only_and_starts_after_its_data_sources() -> None:
    grafana = SERVICES["grafana"]
    mounts = [volume for volume in grafana["volumes"] if volume.startswith("./")]
    assert mounts and all(volume.endswith(":ro") for volume in mounts)
    assert {source.split(":")[0] for source in mounts} == {
        "./deploy/grafana/provisioning/datasources",
        "./deploy/grafana/provisioning/dashboards",
        "./deploy/grafana/dashboards",
    }
    assert grafana["depends_on"] == {
        "clickhouse": {"condition": "service_healthy"},
        "prometheus": {"condition": "service_healthy"},
    }
    assert env("grafana")["GF_SECURITY_ADMIN_PASSWORD"].startswith("${LABELPULSE_GRAFANA_ADMIN_PASSWORD:?")


def test_grafana_reads_clickhouse_as_a_reader_with_that_users_password() -> None:
    grafana = env("grafana")
    users = {user["name"]: user for user in yaml.safe_load((ROOT / "deploy/access.yml").read_text())["users"]}
    user = users[grafana["LABELPULSE_CLICKHOUSE_USER"]]
    assert user["role"] == "reader", "read-only, and free to send the per-query settings the plugin sends"
    assert grafana["LABELPULSE_CLICKHOUSE_PASSWORD"].startswith("${" + user["password_env"] + ":?")
    assert default_of(grafana["LABELPULSE_CLICKHOUSE_DATABASE"]) == default_of(
        env("worker")["LABELPULSE_CLICKHOUSE_DATABASE"]
    )
