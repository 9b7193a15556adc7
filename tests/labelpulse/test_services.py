"""Each component's service entry, and `labelpulse up` described as a list of services: what runs
each part, when it counts as ready, what it must not outlive, and the settings it is given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from labelpulse import up
from labelpulse.up import UpSettings, app_services, backing_services
from streams.settings import WorkerSettings
from tests.support.services import REPO_ROOT

EXTERNAL = {"LABELPULSE_KAFKA_BOOTSTRAP_SERVERS": "kafka-1:9092,kafka-2:9092"}


def names(services: list[Any]) -> list[str]:
    return [service.name for service in services]


def test_up_starts_clickhouse_and_the_broker_then_worker_evaluator_dashboard_ingest_api_and_simulator() -> None:
    settings = UpSettings.from_env({})
    assert names(backing_services(settings)) == ["ClickHouse", "broker"]
    assert names(app_services(settings, {})) == ["worker", "alert evaluator", "dashboard", "ingest", "api", "simulator"]
    assert "  ingest      http://127.0.0.1:8090  (POST /v1/events" in up.summary(settings)


def test_with_an_external_kafka_up_starts_no_broker() -> None:
    settings = UpSettings.from_env(EXTERNAL)
    assert names(backing_services(settings)) == ["ClickHouse"]
    assert settings.child_env(EXTERNAL)["LABELPULSE_KAFKA_BOOTSTRAP_SERVERS"] == "kafka-1:9092,kafka-2:9092"


def test_without_the_demo_up_starts_no_simulator() -> None:
    settings = UpSettings.from_env({}, demo_rate=None)
    assert "simulator" not in names(app_services(settings, {}))
    assert "  simulator   off (--no-demo)\n" in up.summary(settings)


def test_clickhouse_and_the_broker_are_ready_once_they_answer_the_rest_once_started() -> None:
    settings = UpSettings.from_env({})
    assert all(service.ready is not None for service in backing_services(settings))
    assert all(service.ready is None for service in app_services(settings, {}))


def test_only_the_worker_ingest_and_the_simulator_must_not_outlive_the_broker() -> None:
    restart_after = {service.name: service.restart_after for service in app_services(UpSettings.from_env({}), {})}
    assert restart_after == {
        "worker": ("broker",),
        "alert evaluator": (),
        "dashboard": (),
        "ingest": ("broker",),
        "api": (),
        "simulator": ("broker",),
    }


def test_every_app_service_runs_its_command_with_its_own_log_and_the_child_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: dict[str, tuple[list[str], Path, dict[str, str]]] = {}

    def spawn(command: list[str], log_path: Path, env: dict[str, str]) -> object:
        started[log_path.name] = (list(command), log_path, dict(env))
        return object()

    monkeypatch.setattr("labelpulse.runtime.spawn", spawn)
    settings = UpSettings.from_env({"LABELPULSE_CLICKHOUSE_PORT": "18123"}, data_dir=tmp_path, demo_rate=5)
    env = settings.child_env({"PATH": "/bin"})
    for service in app_services(settings, env):
        service.spawn()
    labelpulse = [sys.executable, "-m", "labelpulse"]
    assert started["worker.log"][0] == [*labelpulse, "worker", "--loglevel", "warn"]
    assert started["alerts.log"][0] == [*labelpulse, "alerts", "run"]
    assert started["api.log"][0] == [*labelpulse, "api"]
    assert started["dashboard.log"][0][1:4] == ["-m", "streamlit", "run"]
    assert started["simulator.log"][0][:8] == [*labelpulse, "generate", "--quiet", "--rate", "5", "--seed"]
    assert started["ingest.log"][0] == [*labelpulse, "ingest", "--loglevel", "warning"]
    # The embedded broker has no idempotent producer; an external Kafka keeps ingest's default (on).
    assert started["ingest.log"][2]["LABELPULSE_INGEST_IDEMPOTENCE"] == "false"
    assert "LABELPULSE_INGEST_IDEMPOTENCE" not in up.ingest_env(UpSettings.from_env(EXTERNAL), EXTERNAL)
    for _, log_path, child_env in started.values():
        assert log_path.parent == tmp_path / "logs"
        assert child_env["LABELPULSE_CLICKHOUSE_PORT"] == "18123"
        assert child_env["LABELPULSE_DATA_DIR"] == str(tmp_path)
        assert child_env["LABELPULSE_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9092"
        assert child_env["PATH"] == "/bin"


def test_a_restarted_simulator_gets_a_fresh_seed() -> None:
    first, second = up.simulator_command(20), up.simulator_command(20)
    assert first[:-1] == second[:-1] and first[-1] != second[-1]


def test_importing_the_worker_app_builds_nothing_yet_faust_still_finds_the_app(tmp_path: Path) -> None:
    check = """
import os, streams.settings
built = []
from_env = streams.settings.WorkerSettings.from_env
streams.settings.WorkerSettings.from_env = lambda env=os.environ: built.append(1) or from_env(env)
import streams.app
assert built == [] and "app" not in vars(streams.app), "importing streams.app built settings or an app"
from faust.cli.base import find_app
app = find_app("streams.app")
assert built == [1] and find_app("streams.app") is app, "faust -A streams.app builds one app, once"
"""
    env = {**os.environ, "LABELPULSE_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr


def test_labelpulse_worker_builds_its_settings_once_and_the_app_from_them(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from labelpulse.cli import main
    from streams import service

    built: list[WorkerSettings] = []
    from_env = WorkerSettings.from_env
    monkeypatch.setattr(WorkerSettings, "from_env", lambda env=os.environ: built.append(from_env(env)) or built[-1])
    monkeypatch.setenv("LABELPULSE_WORKER_METRICS_PORT", "0")
    monkeypatch.setenv("LABELPULSE_DATA_DIR", str(tmp_path))
    apps: list[WorkerSettings] = []

    class App:
        def main(self) -> None:
            raise SystemExit(0)

    async def create_topics(kafka: object) -> dict[str, int]:
        return {}

    monkeypatch.setattr(service, "create_topics", create_topics)
    monkeypatch.setattr(service, "create_app", lambda settings: apps.append(settings) or App())
    monkeypatch.setattr(sys, "argv", sys.argv[:])  # Faust's command line reads the worker's arguments there
    with pytest.raises(SystemExit):
        main(["worker"])
    assert len(built) == 1 and apps == built
